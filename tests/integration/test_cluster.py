"""A three-node cluster on loopback: one log, writes on any node, strong reads on every node,
a leader killed with SIGKILL under a stream of writes, and leaders removed through the Admin API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError
from conftest import ROOT_PASSWORD, ROOT_USER, admin_headers, cluster_status, registered, wait_for
from faults import leader_of, raft_status


@pytest.fixture(scope="module")
def trio(cluster_factory):
    return cluster_factory(3)


def test_every_node_reads_what_any_node_acknowledged(trio):
    clients = [node.client() for node in trio]
    bucket = f"cluster-{uuid.uuid4().hex[:12]}"
    clients[1].create_bucket(Bucket=bucket)
    for round_number in range(20):
        writer = clients[round_number % 3]
        body = f"round {round_number}".encode()
        writer.put_object(Bucket=bucket, Key="k", Body=body)
        for reader in clients:  # no pause: a read anywhere follows the acknowledged write
            assert reader.get_object(Bucket=bucket, Key="k")["Body"].read() == body
    for reader in clients:
        assert [o["Key"] for o in reader.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    clients[2].delete_object(Bucket=bucket, Key="k")
    for reader in clients:
        with pytest.raises(ClientError):
            reader.head_object(Bucket=bucket, Key="k")
    clients[0].delete_bucket(Bucket=bucket)


def registered_ids(node) -> list[str]:
    """The ids of the members a node's registry holds (raft members show before they register)."""
    return sorted(member["id"] for member in cluster_status(node)["members"] if member["id"])


def test_members_register_themselves(trio):
    assert cluster_status(trio[0])["node"]["id"] == "node0"
    wait_for(lambda: registered_ids(trio[0]) == ["node0", "node1", "node2"], 30, "three registered members")
    cluster = cluster_status(trio[0])
    assert sorted((m["id"], m["role"]) for m in cluster["members"]) == [(f"node{n}", "hybrid") for n in range(3)]
    assert {raft_status(node)["leader"] for node in trio} == {cluster["raft"]["leader"]}


def test_a_new_cluster_takes_writes_once_its_nodes_answer_ready(cluster_factory):
    nodes = cluster_factory(3, wait_registered=False)
    for number, node in enumerate(nodes):
        assert f"node{number}" in [member["id"] for member in registered(node)]  # ready: it knows itself
    client = nodes[0].client()
    client.create_bucket(Bucket="ready")
    for node in nodes:
        node.client().put_object(Bucket="ready", Key=node.data.name, Body=b"x")


def put_with_retries(client, bucket: str, key: str, body: bytes, deadline: float) -> bool:
    """What a client does through a failover: retry 5xx and broken connections until a deadline."""
    while time.monotonic() < deadline:
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body)
            return True
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] < 500:
                raise
        except (EndpointConnectionError, ConnectionError, requests.RequestException):
            pass
        except Exception as error:  # botocore wraps broken connections in several types
            if "connect" not in type(error).__name__.lower() and "connection" not in str(error).lower():
                raise
        time.sleep(0.05)
    return False


def test_killing_the_leader_loses_no_acknowledged_write(cluster_factory):
    nodes = cluster_factory(3)
    bucket = f"failover-{uuid.uuid4().hex[:12]}"
    nodes[0].client().create_bucket(Bucket=bucket)
    leader = leader_of(nodes)
    survivors = [node for node in nodes if node is not leader]
    acknowledged: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(number: int) -> None:
        client = survivors[number % 2].client() if number % 3 else leader.client()
        fallback = survivors[number % 2].client()
        sequence = 0
        while not stop.is_set():
            key, body = f"w{number}/{sequence}", f"{number}:{sequence}".encode() * 10
            target = client
            deadline = time.monotonic() + 20
            if not put_with_retries(target, bucket, key, body, time.monotonic() + 0.5):
                target = client = fallback  # its node is gone: go on through a live one
                if not put_with_retries(target, bucket, key, body, deadline):
                    continue
            with lock:
                acknowledged[key] = body
            sequence += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # let the writes flow before the crash
    killed_at = time.monotonic()
    leader.kill_group()
    new_leader = None
    while new_leader is None and time.monotonic() - killed_at < 20:
        new_leader = leader_of(survivors)
    election = time.monotonic() - killed_at
    assert new_leader is not None, "no new leader within 20 s"
    time.sleep(1.0)  # writes continue under the new leader
    stop.set()
    for thread in threads:
        thread.join(30)
    print(f"new leader elected {election:.2f} s after SIGKILL; {len(acknowledged)} writes acknowledged")
    assert len(acknowledged) > 20
    leader.start()  # same data directory: it rejoins and catches up
    for node in nodes:
        client = node.client()
        for key, body in acknowledged.items():
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body, (node.ports, key)


def admin_cli(node, token_file, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nebulaio", "admin", "--url", node.admin_url, "--token-file", str(token_file)]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=120, env=os.environ)


def test_the_raft_leader_is_removed_through_its_own_admin_api_and_a_followers_cli(cluster_factory, tmp_path):
    nodes = cluster_factory(3)
    ids = {id(node): f"node{position}" for position, node in enumerate(nodes)}
    everyone = sorted(ids.values())
    wait_for(lambda: all(registered_ids(node) == everyone for node in nodes), 60, "three members registered everywhere")
    bucket = f"leaving-{uuid.uuid4().hex[:12]}"
    nodes[0].client().create_bucket(Bucket=bucket)
    written = {"before": b"written by three voters" * 2000}
    nodes[1].client().put_object(Bucket=bucket, Key="before", Body=written["before"])

    def check_removed(removed, remaining) -> None:
        address = f"127.0.0.1:{removed.ports['raft']}"

        def forgotten_by(node) -> bool:
            members = cluster_status(node)["members"]
            return all(member["address"] != address and member["id"] != ids[id(removed)] for member in members)

        for node in remaining:  # neither a raft member nor a registered node anywhere
            wait_for(lambda node=node: forgotten_by(node), 30, f"{ids[id(node)]} to forget {ids[id(removed)]}")
        assert leader_of(remaining) is not None
        assert raft_status(removed)["state"] != "leader"  # out of raft: it leads nobody and wins no vote
        key = f"after-{ids[id(removed)]}"
        written[key] = key.encode() * 5000
        remaining[-1].client().put_object(Bucket=bucket, Key=key, Body=written[key])
        for node in remaining:
            client = node.client()
            for name, body in written.items():
                assert client.get_object(Bucket=bucket, Key=name)["Body"].read() == body, (ids[id(node)], name)

    # The leader asked through its own Admin API: another voter takes over and removes it.
    leader = leader_of(nodes)
    answer = requests.delete(
        f"{leader.admin_url}/api/v1/cluster/nodes/{ids[id(leader)]}", headers=admin_headers(leader), timeout=120
    )
    assert answer.status_code == 204, answer.text
    remaining = [node for node in nodes if node is not leader]
    check_removed(leader, remaining)

    # The new leader of two voters, removed with `nebulaio admin` through the other one.
    leader = leader_of(remaining)
    follower = next(node for node in remaining if node is not leader)
    token_file = tmp_path / "admin-token.json"
    login = admin_cli(follower, token_file, "login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    assert login.returncode == 0, login.stderr
    removal = admin_cli(follower, token_file, "cluster", "remove", ids[id(leader)])
    assert removal.returncode == 0, removal.stderr
    assert removal.stdout.strip() == f"node {ids[id(leader)]}: removed"
    check_removed(leader, [follower])
    assert raft_status(follower)["state"] == "leader"
