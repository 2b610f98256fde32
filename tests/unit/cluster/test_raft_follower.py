"""A follower's handling of the leader's entries (Raft's rule: keep what is held with the same
term, truncate only from the first entry whose term differs), on a real raft member fed the
messages a leader sends; and the journal's durable term and vote."""

from __future__ import annotations

import socket

import pytest
from pysyncobj import pickle as raft_pickle
from pysyncobj.node import TCPNode
from pysyncobj.syncobj import _COMMAND_TYPE

from nebulaio.cluster.journal import DurableJournal
from nebulaio.cluster.raft import MetadataLog, held_prefix, replica_ahead_of_log


def test_held_prefix_counts_the_leading_entries_held_with_the_same_term():
    held = {1: 1, 2: 1, 3: 2}
    assert held_prefix([], held.get) == 0
    assert held_prefix([("a", 1, 1), ("b", 2, 1)], held.get) == 2
    assert held_prefix([("a", 2, 1), ("b", 3, 2), ("c", 4, 2)], held.get) == 2  # 4 is not held
    assert held_prefix([("a", 2, 1), ("b", 3, 3), ("c", 4, 3)], held.get) == 1  # 3 differs: truncate there
    assert held_prefix([("a", 5, 2)], held.get) == 0


def test_a_replica_is_ahead_only_when_it_applied_beyond_the_log():
    assert replica_ahead_of_log(10, 9)
    assert not replica_ahead_of_log(9, 9)
    assert not replica_ahead_of_log(0, 9)


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class EmptyReplica:
    def applied_index(self) -> int:
        return 0

    def reset(self) -> None:
        raise AssertionError("an empty replica is never ahead of its log")

    def sync(self) -> None:
        """Nothing to make durable."""


def no_image(replica_index: int, source: str | None, path: str) -> None:
    raise AssertionError("a member whose replica holds every dumped entry fetches no image")


class Follower(MetadataLog):
    """A member driven by the test (no tick thread) that records its answers to the leader:
    (next index, success, whether its journal held unsynced changes when it answered)."""

    def _tick_loop(self) -> None:
        self._stopping.wait()

    def record_answers(self) -> None:
        self.answers = []
        journal = self._journal

        def send(node, message):
            if message["type"] == "next_node_idx":
                self.answers.append((message["next_node_idx"], message["success"], journal.unsynced))
            return False

        self._SyncObj__transport.send = send


@pytest.fixture
def follower(tmp_path):
    leader = free_address()
    member = Follower(
        free_address(), [leader], str(tmp_path), "secret", lambda i, c: [], EmptyReplica(), no_image, None, 10**6, 3600
    )
    member.record_answers()
    member.leader = TCPNode(leader)
    yield member
    member.stop()
    member._doDestroy()


def entry(index: int, term: int) -> tuple:
    return (f"command {index}".encode(), index, term)


def append(member: Follower, term: int, prev: tuple[int, int], entries: list, commit: int) -> None:
    message = {"type": "append_entries", "term": term, "commit_index": commit, "entries": entries}
    member._on_message(member.leader, {**message, "prevLogIdx": prev[0], "prevLogTerm": prev[1]})


def log_of(member: Follower) -> list[tuple[int, int]]:
    journal = member._journal
    return [(journal[i][1], journal[i][2]) for i in range(len(journal))]


def test_entries_sent_again_are_kept_not_truncated_and_appended_again(follower):
    append(follower, 1, (1, 0), [entry(2, 1), entry(3, 1), entry(4, 1)], commit=1)
    assert log_of(follower) == [(1, 0), (2, 1), (3, 1), (4, 1)]
    held = [follower._journal[i] for i in range(4)]
    # A leader's re-send that overlaps what the follower holds, with two new entries.
    append(follower, 1, (1, 0), [entry(i, 1) for i in range(2, 7)], commit=4)
    assert log_of(follower) == [(1, 0)] + [(i, 1) for i in range(2, 7)]
    assert all(follower._journal[i] is held[i] for i in range(4)), "held entries were truncated and re-appended"
    assert follower.raftCommitIndex == 4
    # An older, shorter message: nothing is truncated, and the answer vouches only for what it carried.
    append(follower, 1, (1, 0), [entry(2, 1), entry(3, 1)], commit=6)
    assert log_of(follower) == [(1, 0)] + [(i, 1) for i in range(2, 7)]
    assert follower.answers == [(5, True, False), (7, True, False), (4, True, False)]
    assert follower.raftCommitIndex == 4  # min(leader's commit, the message's last entry) did not move it


def test_the_log_is_truncated_from_the_first_entry_whose_term_differs(follower):
    append(follower, 1, (1, 0), [entry(i, 1) for i in range(2, 7)], commit=3)
    kept = follower._journal[3]
    # A new leader (term 2) holds entry 4 of term 1, then entries of its own term from 5 on.
    append(follower, 2, (3, 1), [entry(4, 1), entry(5, 2)], commit=3)
    assert log_of(follower) == [(1, 0), (2, 1), (3, 1), (4, 1), (5, 2)]
    assert follower._journal[3] is kept
    assert follower.answers[-1] == (6, True, False)


def test_entries_after_a_missing_one_are_refused(follower):
    append(follower, 1, (1, 0), [entry(2, 1)], commit=1)
    append(follower, 1, (4, 1), [entry(5, 1)], commit=1)
    assert log_of(follower) == [(1, 0), (2, 1)]
    assert follower.answers[-1][1] is False


def test_term_and_vote_survive_reopening_the_journal(tmp_path):
    path = str(tmp_path / "journal")
    journal = DurableJournal(path)
    journal.setCurrentTerm(7, "127.0.0.1:9003")
    journal._destroy()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal", "journal.meta"]
    reopened = DurableJournal(path)
    assert (reopened.getCurrentTerm(), reopened.getVotedForNodeId()) == (7, "127.0.0.1:9003")
    reopened._destroy()


def test_compaction_keeps_the_later_entries_and_the_commit_index(tmp_path):
    path = str(tmp_path / "journal")
    journal = DurableJournal(path)
    for index in range(1, 11):
        journal.add(f"command {index}".encode(), index, 1)
    journal.sync()
    journal.setRaftCommitIndex(9)
    journal.deleteEntriesTo(6)
    assert [journal[i][1] for i in range(len(journal))] == [7, 8, 9, 10]
    assert not journal.unsynced
    journal.add(b"command 11", 11, 2)
    journal._destroy()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal", "journal.meta"]
    reopened = DurableJournal(path)
    assert [(reopened[i][0], reopened[i][1], reopened[i][2]) for i in range(len(reopened))] == [
        (f"command {index}".encode(), index, 1) for index in range(7, 11)
    ] + [(b"command 11", 11, 2)]
    assert reopened.getRaftCommitIndex() == 9
    reopened._destroy()


def membership_entry(action: str, address: str, index: int, term: int) -> tuple:
    """A membership change as PySyncObj's leader logs it."""
    node = TCPNode(address)
    return (bytes([_COMMAND_TYPE.MEMBERSHIP]) + raft_pickle.dumps([action, node.id, node]), index, term)


def test_a_membership_change_is_rolled_back_only_when_its_entry_is_truncated(follower):
    joining = free_address()
    change = membership_entry("add", joining, 3, 1)
    append(follower, 1, (1, 0), [entry(2, 1), change], commit=1)
    assert TCPNode(joining) in follower.otherNodes
    append(follower, 1, (1, 0), [entry(2, 1), change, entry(4, 1)], commit=1)  # sent again: kept
    assert TCPNode(joining) in follower.otherNodes
    assert log_of(follower) == [(1, 0), (2, 1), (3, 1), (4, 1)]
    # A new leader never had the change: its entry 3 differs, so the change is undone.
    append(follower, 2, (2, 1), [entry(3, 2)], commit=1)
    assert log_of(follower) == [(1, 0), (2, 1), (3, 2)]
    assert TCPNode(joining) not in follower.otherNodes
