"""The raft log of a three-node cluster: under plain load no follower truncates entries it holds
and no election happens; writes resume soon after the leader's kill -9; a member whose replica
applied entries its log lost (a power cut before logs were synced) rebuilds it instead of
skipping the new entries that re-use those indices.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for
from faults import leader_of, raft_status

from nebulaio.cluster.journal import DurableJournal

LOAD_SECONDS = 20.0
WRITERS = 8
DIVERGED = "may have diverged"
FAILOVER_BOUND = 10.0
"""Seconds a write through a survivor may take to succeed after the leader's kill -9 (measured: well under 1 s)."""
LOST_ENTRIES = 15


@pytest.fixture(scope="module")
def trio(cluster_factory):
    return cluster_factory(3)


def log_text(node) -> str:
    return node.log_path.read_text(errors="replace")


def test_plain_load_truncates_no_follower_entry_and_elects_no_leader(trio):
    leader = leader_of(trio)
    terms = {raft_status(node)["term"] for node in trio}
    assert len(terms) == 1, terms
    bucket = f"load-{uuid.uuid4().hex[:12]}"
    trio[0].client().create_bucket(Bucket=bucket)
    written = []
    failures = []
    stop_at = time.monotonic() + LOAD_SECONDS

    def writer(number: int) -> None:
        client = trio[number % 3].client()
        sequence = 0
        while time.monotonic() < stop_at:
            try:
                client.put_object(Bucket=bucket, Key=f"w{number}/{sequence}", Body=os.urandom(1024))
                written.append(1)
            except ClientError as error:
                failures.append(error)
            sequence += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LOAD_SECONDS + 60)
    assert not failures, failures[:3]
    assert len(written) > 200, len(written)
    for node in trio:
        assert DIVERGED not in log_text(node), node.log_tail()
    assert {raft_status(node)["term"] for node in trio} == terms
    assert leader_of(trio) is leader


def test_writes_resume_soon_after_the_leader_is_killed(trio):
    bucket = f"failover-{uuid.uuid4().hex[:12]}"
    trio[0].client().create_bucket(Bucket=bucket)
    leader = leader_of(trio)
    survivor = next(node for node in trio if node is not leader)
    client = survivor.client()
    client.put_object(Bucket=bucket, Key="before", Body=b"before")
    killed_at = time.monotonic()
    leader.kill_group()
    attempts = 0
    while True:
        attempts += 1
        try:
            client.put_object(Bucket=bucket, Key="after", Body=b"after")
            break
        except ClientError as error:
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503, error.response
        assert time.monotonic() - killed_at < FAILOVER_BOUND, f"no write succeeded in {FAILOVER_BOUND} s"
        time.sleep(0.02)
    print(f"a write through a survivor succeeded {time.monotonic() - killed_at:.3f} s after kill -9 ({attempts} tries)")
    leader.start()  # the same data directory: it rejoins and catches up
    assert leader.client().get_object(Bucket=bucket, Key="after")["Body"].read() == b"after"


def drop_last_entries(journal_path: str, keep_until: int) -> None:
    """Make a journal end at index `keep_until`, as if the entries after it never reached its disk."""
    journal = DurableJournal(journal_path)
    try:
        first = journal[0][1]
        journal.deleteEntriesFrom(keep_until + 1 - first)
        journal.sync()
    finally:
        journal._destroy()


def journal_end(journal_path: str) -> int:
    journal = DurableJournal(journal_path)
    try:
        return journal[-1][1]
    finally:
        journal._destroy()


def test_a_replica_ahead_of_its_log_is_rebuilt_and_skips_no_new_entry(trio):
    bucket = f"ahead-{uuid.uuid4().hex[:12]}"
    client = trio[0].client()
    client.create_bucket(Bucket=bucket)
    for number in range(LOST_ENTRIES + 5):
        client.put_object(Bucket=bucket, Key=f"old/{number}", Body=b"old")
    for node in trio:
        node.stop()
    journals = [str(node.data / "metadata" / "raft" / "journal") for node in trio]
    # Every member loses the same newest entries of its log; their replicas keep them applied.
    keep_until = min(journal_end(path) for path in journals) - LOST_ENTRIES
    for path in journals:
        drop_last_entries(path, keep_until)
    for node in trio:
        node.start(wait=False)
    for node in trio:
        node.wait_ready()
    wait_for(lambda: leader_of(trio), 30, "a leader")
    # These re-use indices the replicas had applied: without the rebuild they were skipped (503).
    for number in range(LOST_ENTRIES + 5):
        client.put_object(Bucket=bucket, Key=f"new/{number}", Body=f"new {number}".encode())
    for node in trio:
        assert "emptying it" in log_text(node), node.log_tail()
        reader = node.client()
        for number in range(LOST_ENTRIES + 5):
            assert reader.get_object(Bucket=bucket, Key=f"new/{number}")["Body"].read() == f"new {number}".encode()
