"""The private inter-node plane on a three-node cluster with mTLS made by `nebulaio cluster certs`:
object bytes move between the nodes on their own listener, which refuses anything without a
certificate of the cluster's CA; the Admin API's port knows nothing of /internal/; a signed
call cannot be replayed, and a body that does not match its signed hash is never kept. Raft
and gossip's TCP channel take the same mTLS, and a gossip datagram is taken only when sealed
with its sender's own key, which only certificate holders learn."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid

import psutil
import pytest
import requests
from conftest import CLUSTER_SECRET, Node, admin_headers, cluster_status, wait_for
from pysyncobj.utility import TcpUtility, UtilityException

from nebulaio.cluster import signing
from nebulaio.cluster.gossipnet import DATAGRAM_KEY, DATAGRAM_KEY_REQUEST, exchange, seal, seal_from
from nebulaio.cluster.peers import PING_PATH, PeerClient, PeerError, file_path
from nebulaio.cluster.rafttls import RaftTunnel
from nebulaio.storage.objects import key_hash
from nebulaio.util.purposekeys import GOSSIP, PEER_SIGNING, RAFT, KeyRing, derive

PEER_KEYS = KeyRing.of([CLUSTER_SECRET], PEER_SIGNING)
GOSSIP_KEYS = KeyRing.of([CLUSTER_SECRET], GOSSIP)
RAFT_PASSWORD = derive(CLUSTER_SECRET, RAFT).hex()

NODES = 3
NODE_IDS = [f"node{position}" for position in range(NODES)]
JOINER = f"node{NODES}"
REFUSALS_QUIET = 4.0
"""Seconds without a refused datagram that show a node's datagrams are taken (it sends a probe a second)."""
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
    make_certificates(directory, [*NODE_IDS, JOINER, "tester"])
    return directory


def certificate_flags(certs, name: str) -> list[str]:
    """A node's flags for mTLS between nodes, with the certificate made for `name`."""
    return [
        "--internal-tls-ca",
        str(certs / "ca.pem"),
        "--internal-tls-cert",
        str(certs / f"{name}.pem"),
        "--internal-tls-key",
        str(certs / f"{name}-key.pem"),
    ]


@pytest.fixture(scope="module")
def cluster(cluster_factory, certs):
    positions = itertools.count()

    def with_certificate(node) -> None:
        node.args += certificate_flags(certs, f"node{next(positions)}")

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


def raft_address(node) -> str:
    return f"127.0.0.1:{node.ports['raft']}"


def gossip_address(node) -> str:
    return f"127.0.0.1:{node.ports['gossip']}"


def every_link_up(status: dict) -> bool:
    """Whether a node's raft is connected to every voter and its gossip sees every node alive."""
    alive = {member["id"] for member in status["gossip"]["members"] if member["state"] == "alive"}
    return all(member["connected"] for member in status["members"]) and alive >= set(NODE_IDS)


def test_raft_and_gossip_run_over_mtls(cluster):
    def agreed() -> bool:
        statuses = [cluster_status(node) for node in cluster]
        leaders = {status["raft"]["leader"] for status in statuses}
        commits = {status["raft"]["commitIndex"] for status in statuses}
        return (
            len(leaders) == 1
            and leaders <= {raft_address(node) for node in cluster}
            and len(commits) == 1
            and all(every_link_up(status) for status in statuses)
        )

    bucket = new_bucket(cluster)
    cluster[2].client().put_object(Bucket=bucket, Key="committed", Body=b"through the raft tunnel")
    wait_for(agreed, 30, "one leader, one commit index, every raft link connected and every member alive")
    for node in cluster:
        assert node.client().get_object(Bucket=bucket, Key="committed")["Body"].read() == b"through the raft tunnel"


def raft_command(context: ssl.SSLContext, address: str, command: list):
    """A PySyncObj utility command to the raft member at `address`, sealed with the raft
    password, through a tunnel presenting `context`'s certificate; raises UtilityException
    when the connection is refused."""
    tunnel = RaftTunnel(context)
    try:
        port = tunnel.forwarder(address)
        return TcpUtility(password=RAFT_PASSWORD, timeout=5).executeCommand(f"127.0.0.1:{port}", command)
    finally:
        tunnel.close()


def tls_exchange(port: int, context: ssl.SSLContext) -> bytes:
    """A TLS connection's first bytes after sending a few; raises when the server refuses."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as conn:
        conn.sendall(b"\x00\x00\x00\x04ping")
        answer = conn.recv(64)
    if not answer:
        raise ConnectionError("closed without an answer")
    return answer


def test_raft_and_gossip_refuse_a_client_without_a_certificate_of_the_cluster_ca(cluster, certs, tester, tmp_path):
    ca = str(certs / "ca.pem")
    make_certificates(tmp_path / "other", ["node0"])
    strangers = [
        client_context(ca, None),  # no certificate
        client_context(ca, (str(tmp_path / "other" / "node0.pem"), str(tmp_path / "other" / "node0-key.pem"))),
        # A certificate of the cluster's CA, but trusting another CA: it refuses the node.
        client_context(str(tmp_path / "other" / "ca.pem"), (str(certs / "tester.pem"), str(certs / "tester-key.pem"))),
    ]
    key_request = {"type": DATAGRAM_KEY_REQUEST}
    for node in cluster:
        # A certificate of the cluster's CA is served, on both planes.
        assert str(raft_command(tester, raft_address(node), ["status"])["self"]) == raft_address(node)
        answer = exchange(gossip_address(node), GOSSIP_KEYS, key_request, tester)
        assert answer["type"] == DATAGRAM_KEY and len(bytes.fromhex(answer["key"])) == 32
        for context in strangers:
            with pytest.raises(REFUSED_AT_HANDSHAKE):
                tls_exchange(node.ports["raft"], context)
            with pytest.raises(UtilityException):
                raft_command(context, raft_address(node), ["status"])
            with pytest.raises(REFUSED_AT_HANDSHAKE):
                exchange(gossip_address(node), GOSSIP_KEYS, key_request, context)
    # Nor does plain TCP reach PySyncObj or gossip, with the cluster secret's keys or without.
    with pytest.raises(UtilityException):
        TcpUtility(password=RAFT_PASSWORD, timeout=5).executeCommand(raft_address(cluster[0]), ["status"])
    try:
        assert exchange(gossip_address(cluster[0]), GOSSIP_KEYS, key_request) is None  # read a TLS alert
    except ConnectionError:
        pass  # closed
    with socket.create_connection(("127.0.0.1", cluster[0].ports["raft"]), timeout=5) as conn:
        conn.sendall(b"\x00\x00\x00\x10not a handshake!")
        served = b""
        while chunk := conn.recv(4096):
            served += chunk
    # At most a TLS alert record (content type 21) came back before the connection closed.
    assert served == b"" or served[0] == 21


def test_a_datagram_is_taken_only_sealed_with_its_senders_own_key(cluster, tester):
    target = ("127.0.0.1", cluster[1].ports["gossip"])
    sender = gossip_address(cluster[0])
    ghost = {"kind": "alive", "member": {"id": "ghost", "gossip": "127.0.0.1:1", "role": "storage"}, "incarnation": 1}
    message = {"type": "sync", "from": {"id": "ghost", "gossip": "127.0.0.1:1"}, "updates": [ghost]}

    def refused() -> int:
        return cluster_status(cluster[1])["gossip"]["refused"]

    def knows_ghost() -> bool:
        return any(member["id"] == "ghost" for member in cluster_status(cluster[1])["gossip"]["members"])

    before = refused()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        # Sealed with the cluster secret's gossip key, as a node without mTLS seals: refused.
        udp.sendto(seal(GOSSIP_KEYS.current, message, time.time()), target)
        # Naming a member, sealed with a key that is not its own: refused.
        udp.sendto(seal_from(sender, GOSSIP_KEYS.current, message, time.time()), target)
    wait_for(lambda: refused() >= before + 2, 30, "both datagrams counted as refused")
    assert not knows_ghost()
    # The member's own key, which only a holder of a certificate of the cluster's CA learns
    # (over TLS, from the member itself), seals a datagram node1 takes.
    own_key = bytes.fromhex(exchange(sender, GOSSIP_KEYS, {"type": DATAGRAM_KEY_REQUEST}, tester)["key"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(seal_from(sender, own_key, message, time.time()), target)
    wait_for(knows_ghost, 30, "the datagram sealed with the member's own key taken")


def test_a_voter_joins_takes_the_lead_and_is_removed_over_mtls(cluster, certs, tester, tmp_path):
    """Membership changes and a leader's handover go through the raft tunnel too: a voter
    learns the voters over gossip's TLS channel and is added, the leadership moves to it, and
    its removal has it hand the leadership over first."""
    voter = Node(tmp_path / "data", tmp_path / "node.log")
    voter.args = ["--role", "management", "--node-id", JOINER, "--join", gossip_address(cluster[0])]
    voter.args += certificate_flags(certs, JOINER)
    voter.extra_env["NEBULAIO_CLUSTER_SECRET"] = CLUSTER_SECRET
    address = raft_address(voter)
    headers = admin_headers(cluster[0])

    def leader() -> str | None:
        return cluster_status(cluster[0])["raft"]["leader"]

    def joiner_leads() -> bool:
        current = leader()
        # No leader known (an election, or a handover under way): look again at the next turn.
        if current is not None and current != address:
            with contextlib.suppress(UtilityException):
                raft_command(tester, current, ["transfer", address])
        return current == address

    try:
        voter.start(wait=False)
        wait_for(
            lambda: any(member["id"] == JOINER for member in cluster_status(cluster[0])["gossip"]["members"]),
            60,
            "the new voter known to gossip",
        )
        added = requests.post(
            cluster[0].admin_url + "/api/v1/cluster/nodes", json={"raftAddress": address}, headers=headers, timeout=60
        )
        assert added.status_code == 200, added.text
        voter.wait_ready()
        wait_for(
            lambda: any(member["id"] == JOINER for member in cluster_status(cluster[0])["members"]),
            60,
            "the new voter registered",
        )
        wait_for(joiner_leads, 60, "the new voter leading", interval=0.5)
        removed = requests.delete(cluster[0].admin_url + f"/api/v1/cluster/nodes/{JOINER}", headers=headers, timeout=60)
        assert removed.status_code == 204, removed.text
        assert leader() in {raft_address(node) for node in cluster}
        assert all(member["address"] != address for member in cluster_status(cluster[0])["members"])
    finally:
        voter.stop()


def connections_from_here(node) -> int:
    """This process's established TCP connections to `node`'s inter-node listener."""
    port = node.ports["internal"]
    return sum(
        1
        for connection in psutil.Process().net_connections("tcp")
        if connection.raddr and connection.raddr.port == port and connection.status == psutil.CONN_ESTABLISHED
    )


def test_calls_to_a_peer_share_a_connection_that_outlives_the_peers_restart(cluster, tester):
    peers = PeerClient(PEER_KEYS, "tester", tester)
    node = cluster[1]
    address = f"127.0.0.1:{node.ports['internal']}"
    for _ in range(5):
        peers.ping(address)
    assert connections_from_here(node) == 1
    node.stop()
    node.start()
    # The restart closed the connection left open: the next call finds it closed and goes
    # again, on a new one.
    peers.ping(address)
    assert connections_from_here(node) == 1
    wait_for(lambda: all(every_link_up(cluster_status(member)) for member in cluster), 60, "the cluster whole again")


def test_a_restarted_node_is_heard_again_with_its_new_datagram_key(cluster):
    restarted, observers = cluster[2], cluster[:2]

    def refused() -> list[int]:
        return [cluster_status(node)["gossip"]["refused"] for node in observers]

    before = refused()
    restarted.stop()
    restarted.start()
    wait_for(
        lambda: all(every_link_up(cluster_status(node)) for node in cluster),
        60,
        "the restarted node alive and connected to raft everywhere",
    )
    # Its first datagrams, sealed with the key it made at its start, were refused until the
    # others asked it for that key; from then on its datagrams (a probe a second) are taken.
    counts = {"last": refused(), "since": time.monotonic()}

    def refusals_stopped() -> bool:
        now = refused()
        if now != counts["last"]:
            counts.update(last=now, since=time.monotonic())
        return time.monotonic() - counts["since"] >= REFUSALS_QUIET

    wait_for(refusals_stopped, 30, f"no datagram refused for {REFUSALS_QUIET} s")
    assert all(now > then for now, then in zip(counts["last"], before, strict=True))
