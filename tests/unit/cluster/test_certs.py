"""`nebulaio cluster certs`: a CA and node certificates that OpenSSL (through Python's ssl)
accepts for mTLS between the nodes, never written over existing files."""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat

import pytest
from cryptography import x509

from nebulaio.cli import main
from nebulaio.cluster import certs


def test_the_certificates_are_signed_by_the_ca_and_serve_both_ends(tmp_path, capsys):
    assert main(["cluster", "certs", str(tmp_path), "--nodes", "node1,10.0.0.2"]) == 0
    assert "internal_tls_ca" in capsys.readouterr().out
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    for node, name in (
        ("node1", x509.DNSName("node1")),
        ("10.0.0.2", x509.IPAddress(ipaddress.ip_address("10.0.0.2"))),
    ):
        # The key matches the certificate, and the CA signed it.
        ssl.create_default_context().load_cert_chain(tmp_path / f"{node}.pem", tmp_path / f"{node}-key.pem")
        certificate = x509.load_pem_x509_certificate((tmp_path / f"{node}.pem").read_bytes())
        certificate.verify_directly_issued_by(ca)
        assert name in certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert stat.S_IMODE(os.stat(tmp_path / f"{node}-key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "ca-key.pem").st_mode) == 0o600


def test_existing_files_are_never_overwritten(tmp_path, capsys):
    (tmp_path / "node2.pem").write_text("kept")
    assert main(["cluster", "certs", str(tmp_path), "--nodes", "node1,node2"]) == 1
    assert "exists" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["node2.pem"]
    assert (tmp_path / "node2.pem").read_text() == "kept"


@pytest.mark.parametrize("node", ["..", "a/b", ""])
def test_a_node_name_that_is_no_file_name_is_refused(tmp_path, node):
    with pytest.raises(ValueError, match="not a node name"):
        certs.make(str(tmp_path), [node])
    assert not os.listdir(tmp_path)
