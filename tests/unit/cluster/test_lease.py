"""Read leases: the page workers read, the leader's cap on what it exposes, and who gets a lease."""

from __future__ import annotations

import time

from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.node import TCPNode

from nebulaio.cluster.lease import LEASE_ASK, LEASE_GRANT, LEASE_MARGIN, LEASE_SECONDS, ReadLeases
from nebulaio.cluster.leasepage import PAGE, LeasePage

LEADER, FOLLOWER, OTHER = TCPNode("127.0.0.1:1"), TCPNode("127.0.0.1:2"), TCPNode("127.0.0.1:3")


class Member:
    """The parts of a PySyncObj member read leases look at, as a leader of term 4."""

    def __init__(self):
        self.selfNode = LEADER
        self.otherNodes = {FOLLOWER, OTHER}
        self.raftCurrentTerm = 4
        self.raftLastApplied = 10
        self.leader = LEADER
        self._SyncObj__noopIDx = 9
        self._SyncObj__raftMatchIndex = {FOLLOWER: 10, OTHER: 10}
        self._SyncObj__lastResponseTime = {FOLLOWER: raft_clock(), OTHER: raft_clock()}
        self.leases = None

    def addOnTickCallback(self, callback) -> None:
        self.tick = callback

    def _isLeader(self) -> bool:
        return self.leader == self.selfNode

    def _getLeader(self):
        return self.leader


def leases_of(member: Member, tmp_path, sent: list) -> ReadLeases:
    page = LeasePage(str(tmp_path / "read-lease"))

    def send(address: str, message: dict) -> None:
        sent.append((address, message))

    return ReadLeases(member, page, send, "g-self", lambda: "g-lead")


def ask(term: int = 4, number: int = 1) -> dict:
    return {"type": LEASE_ASK, "id": number, "session": "s", "term": term, "raft": str(FOLLOWER), "reply": "g-f"}


def test_the_page_covers_a_read_while_a_lease_is_held_and_the_replica_applied_what_was_acknowledged(tmp_path):
    writer = LeasePage(str(tmp_path / "read-lease"))
    reader = LeasePage(str(tmp_path / "read-lease"))
    assert not reader.covers()  # no page yet
    writer.create(term=3)
    reader = LeasePage(str(tmp_path / "read-lease"))
    assert not reader.covers()
    writer.extend(3, time.monotonic() + 5)
    assert reader.covers() and writer.leased_index() == 0
    writer.acknowledging(12)
    assert not reader.covers() and writer.leased_index() == 12
    writer.applied(12)
    assert reader.covers()
    writer.new_term(4)
    assert not reader.covers() and writer.leased_index() is None
    writer.extend(3, time.monotonic() + 5)  # granted in a term that has passed
    assert not reader.covers()
    writer.extend(4, time.monotonic() - 0.01)  # already over
    assert not reader.covers()
    writer.extend(4, time.monotonic() + 5)
    assert reader.covers() and writer.leased_index() == 12


def test_a_restarted_supervisor_starts_its_page_with_no_lease(tmp_path):
    writer = LeasePage(str(tmp_path / "read-lease"))
    writer.create(term=3)
    writer.extend(3, time.monotonic() + 5)
    reader = LeasePage(str(tmp_path / "read-lease"))
    assert reader.covers()
    LeasePage(str(tmp_path / "read-lease")).create(term=3)
    assert not reader.covers()  # the same mapping sees the new page


def test_the_leader_exposes_no_entry_a_lease_holder_lacks(tmp_path):
    member, sent = Member(), []
    leases = leases_of(member, tmp_path, sent)
    assert leases.exposable(10) == 10  # settled (every follower holds the first entry), no holder
    leases.receive(ask(number=1))  # a first request only notes where the follower stands
    assert sent == []
    leases.receive(ask(number=2))
    assert [message["type"] for _, message in sent] == [LEASE_GRANT]
    member._SyncObj__raftMatchIndex[FOLLOWER] = 11
    assert leases.exposable(14) == 11
    member.raftLastApplied = 11
    member._SyncObj__raftMatchIndex[FOLLOWER] = 14
    assert leases.exposable(14) == 14
    assert not leases.holding_back()


def test_a_holder_that_fell_behind_since_its_last_request_loses_its_lease(tmp_path):
    member, sent = Member(), []
    leases = leases_of(member, tmp_path, sent)
    leases.exposable(10)
    leases.receive(ask(number=1))
    leases.receive(ask(number=2))
    assert len(sent) == 1
    assert leases.exposable(20) == 10  # committed by the leader and the other follower, held back
    assert leases.holding_back()  # the leader ticks again soon rather than idling
    leases.receive(ask(number=3))  # renewed: it must hold 20 by its next request
    assert len(sent) == 2
    leases.receive(ask(number=4))  # still at 10: no renewal
    assert len(sent) == 2


def test_a_follower_joining_the_holders_is_granted_only_once_it_holds_every_exposed_entry(tmp_path):
    member, sent = Member(), []
    leases = leases_of(member, tmp_path, sent)
    leases.exposable(10)
    leases.receive(ask(number=1))
    assert leases.exposable(12) == 12  # no holder yet
    member.raftLastApplied = 12
    leases.receive(ask(number=2))  # kept up with 10: a holder from now on, but it lacks 11 and 12
    assert sent == []
    assert leases.exposable(14) == 12  # exposure waits for it
    member._SyncObj__raftMatchIndex[FOLLOWER] = 14
    assert leases.exposable(14) == 14
    leases.receive(ask(number=3))
    assert [message["type"] for _, message in sent] == [LEASE_GRANT]


def test_no_lease_for_a_silent_follower_a_stale_term_or_a_non_member(tmp_path):
    member, sent = Member(), []
    leases = leases_of(member, tmp_path, sent)
    leases.exposable(10)
    leases.receive(ask(number=1))
    leases.receive(ask(term=3, number=2))
    member._SyncObj__lastResponseTime[FOLLOWER] = raft_clock() - 5
    leases.receive(ask(number=3))
    member._SyncObj__lastResponseTime[FOLLOWER] = raft_clock()
    leases.receive({**ask(number=4), "raft": "127.0.0.1:9"})
    member.leader = FOLLOWER
    leases.receive(ask(number=5))
    assert sent == []
    member.leader = LEADER
    leases.receive(ask(number=6))
    assert len(sent) == 1


def test_a_new_leader_exposes_nothing_new_while_an_earlier_leaders_lease_may_stand(tmp_path):
    member, sent = Member(), []
    leases = leases_of(member, tmp_path, sent)
    member.leader = OTHER
    member.raftCurrentTerm = 5
    leases._note_leader()  # OTHER led term 5
    member.raftCurrentTerm, member.leader = 6, LEADER
    member._SyncObj__noopIDx = 11
    member._SyncObj__raftMatchIndex = {FOLLOWER: 0, OTHER: 0}
    assert leases.exposable(12) == 10  # FOLLOWER has not answered in term 6
    member._SyncObj__raftMatchIndex[FOLLOWER] = 12
    assert leases.exposable(12) == 12  # and OTHER led the term before: it held no lease


def test_a_follower_counts_its_lease_from_when_it_asked(tmp_path):
    member, sent = Member(), []
    member.leader = OTHER
    leases = leases_of(member, tmp_path, sent)
    before = time.monotonic()
    leases._ask()
    ((address, request),) = sent
    assert address == "g-lead" and request["type"] == LEASE_ASK and request["term"] == 4
    page = LeasePage(str(tmp_path / "read-lease"))
    leases.receive({"type": LEASE_GRANT, "id": request["id"], "session": "other", "term": 4})
    assert not page.covers()  # another session's answer
    leases.receive({"type": LEASE_GRANT, "id": request["id"], "session": request["session"], "term": 4})
    assert page.covers()
    lease_end = PAGE.unpack_from(page._map)[1]
    assert before + LEASE_SECONDS - LEASE_MARGIN <= lease_end <= time.monotonic() + LEASE_SECONDS - LEASE_MARGIN
    leases.new_term(5)
    assert not page.covers()
