"""`nebulaio cluster certs DIR --nodes a,b,c`: a small CA and one certificate per node, for mTLS
between the nodes of a cluster on their inter-node listeners (internal_tls_ca, _cert, _key).

Peers trust any certificate this CA signed, whatever name it carries, so the CA must sign
nothing but the cluster's nodes: it is made here for one cluster and its key stays with
whoever adds nodes. Each node's certificate names the node (a DNS name, or an IP address)
and serves both ends of a connection (server and client authentication).
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
VALID_DAYS = 825


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NebulaIO"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject_name(node: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(node))
    except ValueError:
        return x509.DNSName(node)


def _write(path: str, data: bytes, mode: int) -> None:
    """Write a new file; an existing one is never overwritten (a CA key replaced would orphan
    every certificate it signed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make(directory: str, nodes: list[str]) -> list[str]:
    """Write ca.pem, ca-key.pem and <node>.pem, <node>-key.pem for every node into `directory`
    (keys mode 0600); the paths written. Raises FileExistsError before writing anything when
    one of them is already there, ValueError for a node name that cannot be a file's name."""
    for node in nodes:
        if not node or node in (".", "..") or "/" in node or "\0" in node:
            raise ValueError(f"not a node name: {node!r}")
    files = [CA_FILE, CA_KEY_FILE] + [name for node in nodes for name in (f"{node}.pem", f"{node}-key.pem")]
    os.makedirs(directory, exist_ok=True)
    for name in files:
        if os.path.exists(os.path.join(directory, name)):
            raise FileExistsError(f"{os.path.join(directory, name)} exists")
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("NebulaIO cluster CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    written = []

    def write(name: str, data: bytes, mode: int) -> None:
        path = os.path.join(directory, name)
        _write(path, data, mode)
        written.append(path)

    write(CA_FILE, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    write(CA_KEY_FILE, _key_pem(ca_key), 0o600)
    for node in nodes:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(node))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([_subject_name(node)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write(f"{node}.pem", certificate.public_bytes(serialization.Encoding.PEM), 0o644)
        write(f"{node}-key.pem", _key_pem(key), 0o600)
    return written
