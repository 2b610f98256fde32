"""Read leases: a follower of three voters reads without a round trip, yet never stale.

The leader exposes no write until both lease holders hold it; a follower cut from the leader
loses its lease within a second and goes back to the read index (503 while cut off); a lease
holder that dies holds writes back only until its lease ends.
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import CLUSTER_SECRET, wait_for
from faults import cluster_with_node0_behind_proxies, leader_of, move_leadership, raft_status
from test_cluster import put_with_retries

LEASE_WAIT = 30.0
HELD_BACK_BOUND = 5.0
"""Seconds within which a write is acknowledged after a lease holder died (its lease lasts 0.5 s)."""


@pytest.fixture(scope="module")
def trio(cluster_factory):
    """Three voters; node0 reaches its peers only through proxies the test can cut."""
    nodes, proxies, addresses = cluster_with_node0_behind_proxies(cluster_factory)
    yield nodes, proxies, addresses
    for proxy in proxies:
        proxy.close()


def followers_holding_leases(nodes) -> list:
    statuses = [raft_status(node) for node in nodes]
    return [node for node, status in zip(nodes, statuses, strict=True) if status["readLeaseHeld"]]


def test_followers_read_under_a_lease_with_no_round_and_see_every_write(trio):
    nodes, _, _ = trio
    leader = wait_for(lambda: leader_of(nodes), LEASE_WAIT, "a leader")
    followers = [node for node in nodes if node is not leader]
    wait_for(lambda: len(followers_holding_leases(followers)) == 2, LEASE_WAIT, "both followers to hold a lease")
    assert not raft_status(leader)["readLeaseHeld"]  # the leader's own reads take the read index
    assert raft_status(leader)["readLeasesGranted"] > 0

    bucket = f"lease-{uuid.uuid4().hex[:12]}"
    readers = [node.client() for node in followers]
    writer = readers[0]  # a follower's writes are fenced for their authentication by its lease too
    rounds = raft_status(leader)["readRounds"]
    writer.create_bucket(Bucket=bucket)
    for number in range(30):
        body = f"version {number}".encode()
        writer.put_object(Bucket=bucket, Key="k", Body=body)
        for reader in readers:  # no pause: the write is on the followers before it is acknowledged
            assert reader.get_object(Bucket=bucket, Key="k")["Body"].read() == body
            assert reader.head_object(Bucket=bucket, Key="k")["ContentLength"] == len(body)
    writer.delete_object(Bucket=bucket, Key="k")
    for reader in readers:
        assert reader.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # Fenced by the read index, each of those 154 requests would have cost the leader a round;
    # a lease lapses only when a supervisor misses its renewals (a machine loaded to a standstill).
    assert raft_status(leader)["readRounds"] - rounds < 12
    writer.delete_bucket(Bucket=bucket)


def test_a_cut_follower_loses_its_lease_and_serves_nothing_stale(trio):
    nodes, proxies, addresses = trio
    move_leadership(nodes, addresses, 1, CLUSTER_SECRET)
    leader = nodes[1]
    wait_for(lambda: nodes[0] in followers_holding_leases(nodes), LEASE_WAIT, "node0 to hold a lease")
    bucket = f"lease-cut-{uuid.uuid4().hex[:12]}"
    writer = leader.client()
    writer.create_bucket(Bucket=bucket)
    writer.put_object(Bucket=bucket, Key="k", Body=b"before the cut")
    cut = nodes[0].client(read_timeout=60)
    assert cut.get_object(Bucket=bucket, Key="k")["Body"].read() == b"before the cut"

    for proxy in proxies:
        proxy.cut()
    try:
        # The majority goes on writing once node0's lease has ended.
        assert put_with_retries(writer, bucket, "k", b"after the cut", time.monotonic() + 60)
        wait_for(lambda: not raft_status(nodes[0])["readLeaseHeld"], 10, "the cut follower's lease to end")
        try:
            body = cut.get_object(Bucket=bucket, Key="k")["Body"].read()
        except Exception as error:
            assert getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") == 503
        else:
            pytest.fail(f"the cut follower served a read: {body!r}")
    finally:
        for proxy in proxies:
            proxy.heal()
    wait_for(lambda: nodes[0] in followers_holding_leases(nodes), LEASE_WAIT, "node0's lease after healing")
    assert cut.get_object(Bucket=bucket, Key="k")["Body"].read() == b"after the cut"


def test_a_follower_back_from_a_cut_rejoins_without_deposing_the_leader(trio):
    """Pre-vote: node0's election timeout passes again and again while it is cut off with a
    log behind the others', yet once it is back the leader keeps leading in the same term."""
    nodes, proxies, addresses = trio
    move_leadership(nodes, addresses, 1, CLUSTER_SECRET)
    leader = nodes[1]
    term = raft_status(leader)["term"]
    asked = raft_status(nodes[0])["preVoteRounds"]
    bucket = f"lease-back-{uuid.uuid4().hex[:12]}"
    writer = leader.client()
    writer.create_bucket(Bucket=bucket)
    for proxy in proxies:
        proxy.cut()
    try:
        assert put_with_retries(writer, bucket, "k", b"while node0 is cut", time.monotonic() + 60)
        written = raft_status(leader)["commitIndex"]
        wait_for(lambda: raft_status(nodes[0])["preVoteRounds"] >= asked + 3, LEASE_WAIT, "node0's timeout thrice")
    finally:
        for proxy in proxies:
            proxy.heal()
    wait_for(lambda: raft_status(nodes[0])["appliedIndex"] >= written, LEASE_WAIT, "node0 to catch up")
    wait_for(lambda: nodes[0] in followers_holding_leases(nodes), LEASE_WAIT, "node0's lease")
    assert [raft_status(node)["term"] for node in nodes] == [term] * 3
    assert leader_of(nodes) is leader
    assert nodes[0].client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"while node0 is cut"


def test_a_dead_lease_holder_holds_writes_back_only_until_its_lease_ends(trio):
    nodes, _, _ = trio
    leader = wait_for(lambda: leader_of(nodes), LEASE_WAIT, "a leader")
    followers = [node for node in nodes if node is not leader]
    wait_for(lambda: len(followers_holding_leases(followers)) == 2, LEASE_WAIT, "both followers to hold a lease")
    victim, survivor = followers
    bucket = f"lease-dead-{uuid.uuid4().hex[:12]}"
    writer = leader.client()
    writer.create_bucket(Bucket=bucket)
    victim.kill_group()
    killed_at = time.monotonic()
    writer.put_object(Bucket=bucket, Key="first", Body=b"after the kill")
    # The lease ends 0.5 s after the dead holder's last request; the rest is a loaded machine's slack.
    assert time.monotonic() - killed_at < HELD_BACK_BOUND
    for number in range(5):
        body = f"with a holder dead {number}".encode()
        writer.put_object(Bucket=bucket, Key="k", Body=body)
        assert survivor.client().get_object(Bucket=bucket, Key="k")["Body"].read() == body
    assert raft_status(survivor)["readLeaseHeld"]
    victim.start()
    wait_for(lambda: len(followers_holding_leases(followers)) == 2, LEASE_WAIT, "the restarted follower's lease")
    assert victim.client().get_object(Bucket=bucket, Key="k")["Body"].read() == body
