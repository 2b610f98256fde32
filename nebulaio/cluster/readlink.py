"""A follower's read index over gossip's sealed datagrams: the fast path of the read fence.

Raft's ReadIndex through PySyncObj's own messages (raft.ReadIndex) crosses two tick threads,
pickling and encrypting each message: about 300 µs of CPU a round, which held a follower's
reads to 0.6x a single node's. With three voters a follower needs no round of pings at all:
its request names its term, so it vouches for the leader by itself (see raft.ReadIndex), and
the leader only has to answer its commit index. That exchange is two small sealed datagrams
between the supervisors' event loops, with no tick thread in between.

The leader answers only while it leads in the asker's term, the asker is one of its two other
voters, and an entry of its own term is committed; it ignores the request otherwise. A follower
keeps one request in flight; reads that arrive meanwhile wait for the next, together. A request
not answered within FAST_ANSWER_TIMEOUT (a lost datagram, an unreachable gossip address, a
leader that cannot answer yet) hands its reads to raft.ReadIndex, and the fast path rests for
FAST_PATH_REST seconds. Five voters, storage members and the leader's own reads always take
raft.ReadIndex.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from pysyncobj.node import TCPNode

from nebulaio.cluster.raft import MetadataLog

log = logging.getLogger("nebulaio.readlink")

READ_ASK, READ_ANSWER = "read_ask", "read_answer"
READ_TYPES = frozenset((READ_ASK, READ_ANSWER))
FAST_ANSWER_TIMEOUT = 0.1
"""Seconds a follower waits for the leader's answer before its reads take raft's messages."""
FAST_PATH_REST = 5.0
"""Seconds the fast path rests after a request went unanswered."""

Settle = Callable[[str | None], None]
"""settle(None) once the read may go on; settle(reason) when it cannot."""


class ReadLink:
    """Both sides of the fast read index on one member; runs on the supervisor's event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        raft: MetadataLog,
        send: Callable[[str, dict], None],
        own_gossip: str,
        gossip_of: Callable[[str], str | None],
        timeout: float,
        leased_index: Callable[[], int | None],
    ):
        """`send(gossip address, message)` seals and sends a datagram; `gossip_of(raft address)`
        is a live member's gossip address; `timeout` bounds a read handed to raft.ReadIndex;
        `leased_index()` is the read index a read lease stands for (None: no lease held)."""
        self._loop = loop
        self._raft = raft
        self._send = send
        self._own_gossip = own_gossip
        self._gossip_of = gossip_of
        self._timeout = timeout
        self._leased_index = leased_index
        self._session = os.urandom(8).hex()
        self._ids = 0
        self._next: list[Settle] = []
        self._asked: tuple[int, list[Settle], asyncio.TimerHandle] | None = None
        self._applying: list[tuple[int, Settle, float]] = []
        """(read index, the read, its deadline): reads waiting for this replica to apply their index."""
        self._resting_until = 0.0
        self.answered = 0
        """Requests the leader answered over this path: what its reads cost the cluster."""
        raft.addOnTickCallback(self._after_tick)

    # -- the follower's side ------------------------------------------------------------------

    def ask(self, settle: Settle) -> bool:
        """Take a read onto the fast path (True), or leave it to raft.ReadIndex (False).

        Under a read lease the read waits for this replica alone: a worker asks only when the
        replica had not yet applied every entry this member acknowledged (lease.py).
        """
        index = self._leased_index()
        if index is not None:
            self._wait_for(index, [settle])
            return True
        leader = self._leader_gossip()
        if leader is None:
            return False
        self._next.append(settle)
        if self._asked is None:
            self._send_next(leader)
        return True

    def _leader_gossip(self) -> str | None:
        """The leader's gossip address while this member may take the fast path, else None."""
        if self._loop.time() < self._resting_until:
            return None
        return leader_gossip(self._raft, self._gossip_of)

    def _send_next(self, leader: str) -> None:
        self._ids += 1
        waiters, self._next = self._next, []
        timer = self._loop.call_later(FAST_ANSWER_TIMEOUT, self._unanswered, self._ids)
        self._asked = (self._ids, waiters, timer)
        self._send(
            leader,
            {
                "type": READ_ASK,
                "id": self._ids,
                "session": self._session,
                "term": self._raft.raftCurrentTerm,
                "raft": str(self._raft.selfNode),
                "reply": self._own_gossip,
            },
        )

    def _unanswered(self, request_id: int) -> None:
        """The leader did not answer in time: its reads, and those queued behind, take raft's path."""
        if self._asked is None or self._asked[0] != request_id:
            return
        _, waiters, _ = self._asked
        self._asked = None
        self._resting_until = self._loop.time() + FAST_PATH_REST
        log.info("the leader did not answer a read index request over gossip: raft's path for %.0f s", FAST_PATH_REST)
        self._to_raft(waiters + self._next)
        self._next = []

    def _from_tick_thread(self, settle: Settle) -> Settle:
        return lambda failure: self._loop.call_soon_threadsafe(settle, failure)

    def _answered(self, message: dict) -> None:
        if self._asked is None or message["id"] != self._asked[0] or message["session"] != self._session:
            return  # a late answer to a request handed to raft already
        _, waiters, timer = self._asked
        timer.cancel()
        self._asked = None
        self._wait_for(message["index"], waiters)
        if self._next:
            leader = self._leader_gossip()
            if leader is not None:
                self._send_next(leader)
            else:
                self._to_raft(self._next)
                self._next = []

    def _wait_for(self, index: int, waiters: list[Settle]) -> None:
        """Let `waiters` go once this replica has applied `index`, or fail them after the timeout."""
        deadline = self._loop.time() + self._timeout
        self._applying.extend((index, settle, deadline) for settle in waiters)
        self._release()
        if self._applying:
            self._loop.call_later(self._timeout, self._release)

    def _to_raft(self, waiters: list[Settle]) -> None:
        for settle in waiters:
            self._raft.read_index(self._from_tick_thread(settle), self._timeout)

    def _release(self) -> None:
        """Let the reads go whose read index this replica has applied; fail those past their deadline."""
        applied = self._raft.raftLastApplied if self._raft.replica_current() else 0
        now = self._loop.time()
        still = []
        for index, settle, deadline in self._applying:
            if index <= applied:
                settle(None)
            elif deadline <= now:
                settle("this replica did not apply the leader's read index in time")
            else:
                still.append((index, settle, deadline))
        self._applying = still

    def _after_tick(self) -> None:
        """A tick callback (the tick thread): wake the loop once a waited-for index is applied."""
        applying = self._applying
        if applying and self._raft.raftLastApplied >= min(index for index, _, _ in applying):
            self._loop.call_soon_threadsafe(self._release)

    # -- the leader's side --------------------------------------------------------------------

    def _answer(self, message: dict) -> None:
        raft = self._raft
        if not raft._isLeader() or raft.raftCurrentTerm != message["term"] or len(raft.otherNodes) != 2:
            return
        if TCPNode(message["raft"]) not in raft.otherNodes:
            return
        own_entry = raft._SyncObj__noopIDx
        index = raft.raftCommitIndex
        if own_entry is None or index < own_entry:
            return
        self.answered += 1
        self._send(
            message["reply"], {"type": READ_ANSWER, "id": message["id"], "session": message["session"], "index": index}
        )

    def receive(self, message: dict) -> None:
        """A sealed read message from gossip's endpoint."""
        if message["type"] == READ_ASK:
            self._answer(message)
        else:
            self._answered(message)


def leader_gossip(raft: MetadataLog, gossip_of: Callable[[str], str | None]) -> str | None:
    """The leader's gossip address while this member is a current follower of three voters, else None."""
    if raft.selfNode is None or len(raft.otherNodes) != 2 or raft._isLeader() or not raft.replica_current():
        return None
    leader = raft._getLeader()
    return None if leader is None else gossip_of(str(leader))
