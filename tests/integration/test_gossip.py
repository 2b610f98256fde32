"""Gossip on a real cluster of 3 voters and 1 storage node: every member sees every other
alive; a stopped node is suspected, declared dead, and refutes once it runs again; a storage
node joins with only --join; a voter is added and removed through the Admin API; forged
gossip is refused."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid

import pytest
import requests
from conftest import CLUSTER_SECRET, ROOT_PASSWORD, ROOT_USER, Node, wait_for

from nebulaio.cluster.gossipnet import seal
from nebulaio.util.purposekeys import GOSSIP, derive

DETECTION_DEADLINE = 60.0


@pytest.fixture(scope="module")
def quad(cluster_factory):
    return cluster_factory(3, storage=1)


def token_of(node) -> str:
    login = {"username": ROOT_USER, "password": ROOT_PASSWORD}
    return requests.post(node.admin_url + "/api/v1/auth/login", json=login, timeout=10).json()["token"]


def members_seen_by(node) -> dict[str, dict]:
    headers = {"Authorization": f"Bearer {token_of(node)}"}
    status = requests.get(node.admin_url + "/api/v1/cluster/status", headers=headers, timeout=10).json()
    return {member["id"]: member for member in status["members"] if member["id"]}


def gossip_alive(node, node_id: str) -> bool:
    """Whether a node's gossip knows `node_id` alive (registered or not: a voter waiting to be added)."""
    try:
        members = cluster_status(node)["gossip"]["members"]
    except requests.RequestException:
        return False
    return any(member["id"] == node_id and member["state"] == "alive" for member in members)


def states_seen_by(node) -> dict[str, str]:
    try:
        return {ident: member["state"] for ident, member in members_seen_by(node).items()}
    except requests.RequestException:
        return {}


def test_every_member_sees_every_other_alive(quad):
    ids = {f"node{i}" for i in range(4)}

    def all_alive():
        return all(states_seen_by(node) == dict.fromkeys(ids, "alive") for node in quad)

    wait_for(all_alive, DETECTION_DEADLINE, "every member to see the four nodes alive")
    member = members_seen_by(quad[0])["node3"]
    assert member["role"] == "storage" and member["capacity"]["total"] >= member["capacity"]["free"] > 0
    assert member["memory"]["total"] >= member["memory"]["available"] > 0
    assert member["raftState"] == "follower" and member["term"] >= 1 and member["commitIndex"] >= 1
    ready = requests.get(quad[0].admin_url + "/health/ready", timeout=10).json()
    assert ready["members"] == {"alive": 4, "suspect": 0, "dead": 0}


def test_a_stopped_node_is_suspected_then_dead_and_refutes_when_it_runs_again(quad):
    stopped = quad[3]
    observers = quad[:3]
    wait_for(lambda: all(states_seen_by(n).get("node3") == "alive" for n in observers), DETECTION_DEADLINE, "alive")
    pids = stopped.group_pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        seen = set()

        def dead_everywhere():
            states = [states_seen_by(n).get("node3") for n in observers]
            seen.update(states)
            return all(state == "dead" for state in states)

        started = time.monotonic()
        wait_for(dead_everywhere, DETECTION_DEADLINE, "node3 declared dead by every observer", interval=0.2)
        print(f"node3 declared dead everywhere in {time.monotonic() - started:.1f} s")
        # A PUT does not wait for the dead node: its replacement holds the copy.
        client = quad[0].client()
        bucket = f"gossip-{uuid.uuid4().hex[:10]}"
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="k", Body=b"while node3 is dead")
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"while node3 is dead"
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert "suspect" in seen or "dead" in seen
    wait_for(
        lambda: all(states_seen_by(n).get("node3") == "alive" for n in observers),
        DETECTION_DEADLINE,
        "node3 alive again everywhere (refuted)",
    )


def test_a_storage_node_joins_with_only_join(quad, tmp_path):
    joiner = Node(tmp_path / "data", tmp_path / "node.log")
    joiner.args = ["--role", "storage", "--node-id", "joiner", "--join", f"127.0.0.1:{quad[1].ports['gossip']}"]
    joiner.extra_env["NEBULAIO_CLUSTER_SECRET"] = CLUSTER_SECRET
    try:
        joiner.start()
        wait_for(
            lambda: all(states_seen_by(n).get("joiner") == "alive" for n in quad[:3]),
            DETECTION_DEADLINE,
            "the joined storage node alive everywhere",
        )
        bucket = f"joined-{uuid.uuid4().hex[:10]}"
        quad[0].client().create_bucket(Bucket=bucket)
        quad[0].client().put_object(Bucket=bucket, Key="k", Body=b"seen by the joiner")
        assert joiner.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"seen by the joiner"
        headers = {"Authorization": f"Bearer {token_of(quad[0])}"}
        answer = requests.delete(quad[0].admin_url + "/api/v1/cluster/nodes/joiner", headers=headers, timeout=30)
        assert answer.status_code == 204
        assert "joiner" not in members_seen_by(quad[0])
    finally:
        joiner.stop()


def test_a_voter_is_added_and_removed_through_the_admin_api(quad, tmp_path):
    voter = Node(tmp_path / "data", tmp_path / "node.log")
    voter.args = ["--role", "management", "--node-id", "voter4", "--join", f"127.0.0.1:{quad[2].ports['gossip']}"]
    voter.extra_env["NEBULAIO_CLUSTER_SECRET"] = CLUSTER_SECRET
    headers = {"Authorization": f"Bearer {token_of(quad[0])}"}
    raft_address = f"127.0.0.1:{voter.ports['raft']}"
    try:
        voter.start(wait=False)
        wait_for(lambda: gossip_alive(quad[0], "voter4"), DETECTION_DEADLINE, "the new voter known to gossip")
        added = requests.post(
            quad[0].admin_url + "/api/v1/cluster/nodes", json={"raftAddress": raft_address}, headers=headers, timeout=60
        )
        assert added.status_code == 200, added.text
        voter.wait_ready()
        wait_for(
            lambda: any(m["address"] == raft_address and m["connected"] for m in cluster_status(quad[0])["members"]),
            DETECTION_DEADLINE,
            "the leader's raft to reach the new voter",
        )
        bucket = f"voter-{uuid.uuid4().hex[:10]}"
        quad[1].client().create_bucket(Bucket=bucket)
        assert voter.client().head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
        wait_for(lambda: "voter4" in members_seen_by(quad[0]), DETECTION_DEADLINE, "the voter registered")
        removed = requests.delete(quad[0].admin_url + "/api/v1/cluster/nodes/voter4", headers=headers, timeout=60)
        assert removed.status_code == 204, removed.text
        assert all(m["address"] != raft_address for m in cluster_status(quad[0])["members"])
    finally:
        voter.stop()
    # The cluster of three goes on.
    quad[0].client().put_object(Bucket=bucket, Key="after", Body=b"three voters again")


def cluster_status(node) -> dict:
    headers = {"Authorization": f"Bearer {token_of(node)}"}
    return requests.get(node.admin_url + "/api/v1/cluster/status", headers=headers, timeout=10).json()


def gossip_refused(node) -> int:
    return cluster_status(node)["gossip"]["refused"]


def gossip_knows(node, ident: str) -> bool:
    return any(member["id"] == ident for member in cluster_status(node)["gossip"]["members"])


def test_forged_gossip_is_refused(quad):
    target = ("127.0.0.1", quad[0].ports["gossip"])
    ghost = {"kind": "alive", "member": {"id": "ghost", "gossip": "127.0.0.1:1", "role": "storage"}, "incarnation": 1}
    message = {"type": "sync", "from": {"id": "ghost", "gossip": "127.0.0.1:1"}, "updates": [ghost]}
    forged = seal(b"not-the-cluster-secret", message, time.time())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(forged, target)
        # The cluster secret itself is no gossip key: only the key derived from it for gossip is.
        udp.sendto(seal(CLUSTER_SECRET.encode(), message, time.time()), target)
        udp.sendto(b'{"type": "sync", "updates": []}', target)

    wait_for(lambda: gossip_refused(quad[0]) >= 3, DETECTION_DEADLINE, "the three messages counted as refused")
    assert "ghost" not in states_seen_by(quad[0])
    # The same message sealed with the cluster secret is taken: the refusal was the seal's doing.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(seal(derive(CLUSTER_SECRET, GOSSIP), message, time.time()), target)
    wait_for(lambda: gossip_knows(quad[0], "ghost"), DETECTION_DEADLINE, "the sealed message taken")
