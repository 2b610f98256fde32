"""A network partition of one node of three, through proxies on its raft and admin links.

The cut node neither acknowledges writes nor serves stale reads: it answers 503 within a
bounded time, whether it was a follower or the leader; after healing it catches up.
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import CLUSTER_SECRET, wait_for
from faults import cluster_with_node0_behind_proxies, leader_of, move_leadership, raft_status
from history import FAIL, UNKNOWN, Workload
from test_cluster import put_with_retries

ANSWER_BOUND = 15.0
"""Seconds within which the cut node must answer every request."""
HEAL_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def cut_cluster(cluster_factory):
    """Three voters; node0 reaches its peers only through proxies the test can cut."""
    nodes, proxies, addresses = cluster_with_node0_behind_proxies(cluster_factory)
    yield nodes, proxies, addresses
    for proxy in proxies:
        proxy.close()


def timed_answer(call) -> tuple[int, float, object]:
    """(HTTP status, seconds, result) of one request through a client that does not retry."""
    started = time.monotonic()
    try:
        result, status = call(), 200
    except Exception as error:
        response = getattr(error, "response", None) or {}
        result, status = error, response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status, time.monotonic() - started, result


def check_cut_node(node, bucket: str) -> None:
    """Every request on the cut node is a 503 within the bound: no acknowledged write, no read."""
    client = node.client(read_timeout=60)
    for attempt in range(3):
        key = f"minority-{attempt}"
        status, took, _ = timed_answer(lambda key=key: client.put_object(Bucket=bucket, Key=key, Body=b"x"))
        print(f"PUT on the cut node: {status} in {took:.2f} s")
        assert status == 503 and took < ANSWER_BOUND
        status, took, body = timed_answer(lambda: client.get_object(Bucket=bucket, Key="k")["Body"].read())
        print(f"GET on the cut node: {status} in {took:.2f} s")
        assert status == 503 and took < ANSWER_BOUND, f"the cut node served a read: {body!r}"


def heal_and_catch_up(nodes, proxies, bucket: str, latest: bytes) -> None:
    for proxy in proxies:
        proxy.heal()
    cut = nodes[0].client()

    def caught_up():
        try:
            return cut.get_object(Bucket=bucket, Key="k")["Body"].read() == latest
        except Exception:
            return False

    wait_for(caught_up, HEAL_TIMEOUT, "the healed node to serve the latest write")
    for attempt in range(3):
        assert put_with_retries(cut, bucket, f"healed-{attempt}", b"y", time.monotonic() + HEAL_TIMEOUT)


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_a_cut_node_answers_503_and_catches_up(cut_cluster, role):
    nodes, proxies, addresses = cut_cluster
    cut, majority = nodes[0], nodes[1:]
    move_leadership(nodes, addresses, 0 if role == "leader" else 1, CLUSTER_SECRET)
    bucket = f"cut-{role}-{uuid.uuid4().hex[:12]}"
    writer = majority[0].client()
    writer.create_bucket(Bucket=bucket)
    writer.put_object(Bucket=bucket, Key="k", Body=b"before the cut")
    wait_for(lambda: cut.client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"before the cut", 30, "k")

    for proxy in proxies:
        proxy.cut()
    cut_at = time.monotonic()
    latest = b"written by the majority"
    assert put_with_retries(writer, bucket, "k", latest, time.monotonic() + HEAL_TIMEOUT)
    new_leader = wait_for(lambda: leader_of(majority), HEAL_TIMEOUT, "a leader on the majority side")
    print(f"majority side led by {raft_status(new_leader)['leader']} {time.monotonic() - cut_at:.2f} s after the cut")
    check_cut_node(cut, bucket)
    heal_and_catch_up(nodes, proxies, bucket, latest)


def test_history_through_a_partition(cut_cluster):
    """Clients on every node while node0 is cut off and healed: no stale read, no lost write."""
    nodes, proxies, _ = cut_cluster
    bucket = f"history-cut-{uuid.uuid4().hex[:12]}"
    nodes[1].client().create_bucket(Bucket=bucket)
    clients = [(f"c{n}@node{n % 3}", nodes[n % 3].client(read_timeout=60)) for n in range(6)]
    workload = Workload(clients, bucket, [f"key{n}" for n in range(4)], seed=7).start()
    wait_for(lambda: len(workload.history.ops) > 100, 60, "traffic before the cut")
    for proxy in proxies:
        proxy.cut()
    cut_at = time.monotonic()
    wait_for(
        lambda: len([op for op in workload.history.ops if op.invoke > cut_at and op.outcome == UNKNOWN]) >= 6,
        120,
        "the cut node's clients to be answered 503",
    )
    for proxy in proxies:
        proxy.heal()
    wait_for(lambda: raft_status(nodes[0])["ready"], HEAL_TIMEOUT, "the healed node")
    healed_at = time.monotonic()
    wait_for(lambda: len([op for op in workload.history.ops if op.invoke > healed_at]) > 100, 120, "traffic after")
    workload.finish()
    workload.read_everything()
    ops = workload.history.ops
    assert not [op for op in ops if op.outcome == FAIL], "a write or read was refused with a 4xx"
    unknown = [op for op in ops if op.outcome == UNKNOWN]
    assert all(op.complete - op.invoke < ANSWER_BOUND for op in unknown)
    longest = max(op.complete - op.invoke for op in ops)
    print(f"{len(ops)} operations, {len(unknown)} answered 5xx or cut; the longest took {longest:.2f} s")
    assert workload.history.violations() == []
