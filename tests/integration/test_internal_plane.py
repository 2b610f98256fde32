"""The private inter-node plane on a three-node cluster with mTLS made by `nebulaio cluster certs`:
object bytes move between the nodes on their own listener, which refuses anything without a
certificate of the cluster's CA; the Admin API's port knows nothing of /internal/; a signed
call cannot be replayed, and a body that does not match its signed hash is never kept."""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import ssl
import subprocess
import sys
import time
import uuid

import pytest
import requests
from conftest import CLUSTER_SECRET, wait_for

from nebulaio.cluster import signing
from nebulaio.cluster.peers import PING_PATH, PeerClient, PeerError, file_path
from nebulaio.storage.objects import key_hash
from nebulaio.util.purposekeys import PEER_SIGNING, KeyRing

PEER_KEYS = KeyRing.of([CLUSTER_SECRET], PEER_SIGNING)

NODES = 3
MIB = 1024 * 1024
REFUSED_AT_HANDSHAKE = (ssl.SSLError, OSError, http.client.HTTPException)


def make_certificates(directory, nodes: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "nebulaio", "cluster", "certs", str(directory), "--nodes", ",".join(nodes)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    make_certificates(directory, [f"node{position}" for position in range(NODES)] + ["tester"])
    return directory


@pytest.fixture(scope="module")
def cluster(cluster_factory, certs):
    positions = itertools.count()

    def with_certificate(node) -> None:
        name = f"node{next(positions)}"
        node.args += [
            "--internal-tls-ca",
            str(certs / "ca.pem"),
            "--internal-tls-cert",
            str(certs / f"{name}.pem"),
            "--internal-tls-key",
            str(certs / f"{name}-key.pem"),
        ]

    return cluster_factory(NODES, prepare=with_certificate)


def client_context(ca: str, certificate: tuple[str, str] | None) -> ssl.SSLContext:
    """How a caller of the inter-node listener connects: trusting `ca`, presenting `certificate`."""
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False  # node certificates name nodes; the listener is reached by address
    if certificate is not None:
        context.load_cert_chain(*certificate)
    return context


@pytest.fixture(scope="module")
def tester(certs) -> ssl.SSLContext:
    """A caller holding a certificate of the cluster's CA."""
    return client_context(str(certs / "ca.pem"), (str(certs / "tester.pem"), str(certs / "tester-key.pem")))


def internal_call(node, context, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", node.ports["internal"], timeout=10, context=context)
    try:
        conn.request(method, path, body=body, headers=dict(headers, **{"content-length": str(len(body))}))
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def signed(node, method: str, path: str, body: bytes | None = None) -> dict:
    """Headers of a call signed for `node`'s inter-node listener; a body to store goes with its SHA-256."""
    target = f"127.0.0.1:{node.ports['internal']}"
    content_hash = "" if body is None else hashlib.sha256(body).hexdigest()
    return signing.sign(PEER_KEYS.current, method, path, "tester", time.time(), target, content_hash)


def new_bucket(cluster) -> str:
    name = f"plane-{uuid.uuid4().hex[:16]}"
    cluster[0].client().create_bucket(Bucket=name)
    return name


def on_disk(node, bucket: str, key: str) -> list[str]:
    directory = node.data / "objects" / bucket / key_hash(key)
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_object_bytes_move_between_the_nodes_over_mtls(cluster):
    bucket = new_bucket(cluster)
    body = os.urandom(2 * MIB + 7)
    cluster[1].client().put_object(Bucket=bucket, Key="shared", Body=body)
    # Three nodes, three copies: every node received one over the inter-node listener but the
    # one that took the PUT.
    wait_for(lambda: all(on_disk(node, bucket, "shared") for node in cluster), 30, "a copy on every node")
    for node in cluster:
        assert node.client().get_object(Bucket=bucket, Key="shared")["Body"].read() == body


def test_the_admin_port_answers_404_for_the_internal_endpoint(cluster, tester):
    bucket = new_bucket(cluster)
    planted = file_path(bucket, key_hash("planted"), uuid.uuid4().hex)
    for node in cluster:
        assert (
            requests.get(node.admin_url + PING_PATH, headers=signed(node, "GET", PING_PATH), timeout=10).status_code
            == 404
        )
        answer = requests.put(
            node.admin_url + planted, data=b"x", headers=signed(node, "PUT", planted, b"x"), timeout=10
        )
        assert answer.status_code == 404
        # The same signed ping is served on the node's own inter-node listener.
        assert internal_call(node, tester, "GET", PING_PATH, signed(node, "GET", PING_PATH))[0] == 204
    assert not any(on_disk(node, bucket, "planted") for node in cluster)


def test_a_node_or_client_without_a_certificate_of_the_cluster_ca_is_refused(cluster, certs, tmp_path):
    ca = str(certs / "ca.pem")
    address = f"127.0.0.1:{cluster[0].ports['internal']}"
    make_certificates(tmp_path / "other", ["node0"])
    strangers = [
        client_context(ca, None),  # no certificate
        client_context(ca, (str(tmp_path / "other" / "node0.pem"), str(tmp_path / "other" / "node0-key.pem"))),
    ]
    for context in strangers:
        with pytest.raises(REFUSED_AT_HANDSHAKE):
            internal_call(cluster[0], context, "GET", PING_PATH, signed(cluster[0], "GET", PING_PATH))
        # A node holding the cluster secret, but not a certificate of the CA, is refused all the same.
        with pytest.raises(PeerError):
            PeerClient(PEER_KEYS, "intruder", context).ping(address)
    with pytest.raises(PeerError):
        PeerClient(PEER_KEYS, "intruder").ping(address)  # plain HTTP
    # The caller is refused, not the call: with the CA's certificate the same ping is served,
    # and a node also refuses a listener whose certificate another CA signed.
    member = client_context(ca, (str(certs / "tester.pem"), str(certs / "tester-key.pem")))
    PeerClient(PEER_KEYS, "tester", member).ping(address)
    other_ca = client_context(
        str(tmp_path / "other" / "ca.pem"), (str(certs / "tester.pem"), str(certs / "tester-key.pem"))
    )
    with pytest.raises(PeerError):
        PeerClient(PEER_KEYS, "tester", other_ca).ping(address)


def test_a_replayed_signed_transfer_is_refused(cluster, tester):
    bucket = new_bucket(cluster)
    path = file_path(bucket, key_hash("replayed"), uuid.uuid4().hex)
    body = b"a transfer seen on the wire"
    headers = signed(cluster[2], "PUT", path, body)
    assert internal_call(cluster[2], tester, "PUT", path, headers, body)[0] == 200
    assert internal_call(cluster[2], tester, "DELETE", path, signed(cluster[2], "DELETE", path))[0] == 204
    assert not on_disk(cluster[2], bucket, "replayed")
    # Sent again, on new connections (any of the node's workers may take them): refused.
    for _ in range(4):
        status, answer = internal_call(cluster[2], tester, "PUT", path, headers, body)
        assert status == 403 and b"replay" in answer
    # Nor does another node take it: it was signed for the first.
    status, answer = internal_call(cluster[0], tester, "PUT", path, headers, body)
    assert status == 403 and b"another node" in answer
    assert not any(on_disk(node, bucket, "replayed") for node in cluster)


def test_a_transfer_whose_body_does_not_match_its_hash_is_refused_and_leaves_no_file(cluster, tester):
    bucket = new_bucket(cluster)
    path = file_path(bucket, key_hash("swapped"), uuid.uuid4().hex)
    temp = cluster[0].data / "temp"
    before = set(os.listdir(temp))
    status, answer = internal_call(
        cluster[0],
        tester,
        "PUT",
        path,
        signed(cluster[0], "PUT", path, b"the bytes that were signed"),
        b"other bytes, same length",
    )
    assert status == 400 and b"SHA-256" in answer
    # Nor is a file kept that comes without a hash.
    assert internal_call(cluster[0], tester, "PUT", path, signed(cluster[0], "PUT", path), b"unhashed")[0] == 400
    assert not on_disk(cluster[0], bucket, "swapped")
    assert set(os.listdir(temp)) <= before
