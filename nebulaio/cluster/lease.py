"""Follower reads without a round trip: read leases the leader grants its two followers.

A fenced read must see every write acknowledged anywhere before it began. The read index
(readlink.py, raft.ReadIndex) proves that with a round trip to the leader for each batch of
reads, which held a follower's GETs to under half a single node's. A lease moves the cost to
writes, in the manner of quorum leases (Moraru, Andersen and Kaminsky, SoCC 2014):

- A follower of three voters asks the leader for a lease every LEASE_RENEW seconds over gossip's
  sealed datagrams. The leader counts it as a lease holder for LEASE_SECONDS from each request
  it takes (one from a follower that answers raft's messages and kept up since its last
  request), and grants the lease once that follower holds every entry exposed so far.
- The leader exposes an entry (applies it, acknowledges its writers, tells followers it is
  committed) only once it is committed and every lease holder has acknowledged it: the commit
  index it applies and sends is capped at the lease holders' match index (`exposable`).
- The follower counts its lease from the moment it sent its request, a little shorter than the
  leader does, and drops it at once when it sees a new term. While it holds one, a read waits
  for its own replica only: once the replica has applied every entry the follower had
  acknowledged when the read began, it holds every write exposed before.
- A new leader exposes nothing new until no follower can hold a lease from an earlier leader:
  each other voter has acknowledged the new term's first entry or led the term before, or
  LEASE_SECONDS have passed.

Workers see the lease on a shared page (LeasePage), so a leased read costs microseconds. A
follower that loses its link, its leader or its term falls back to the read index within
LEASE_SECONDS; a lease holder that dies or falls behind holds writes back as long at most.
Five voters, storage members and the leader's own reads always take the read index.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.node import TCPNode

from nebulaio.cluster.leasepage import LeasePage
from nebulaio.cluster.raft import MetadataLog

LEASE_ASK, LEASE_GRANT = "lease_ask", "lease_grant"
LEASE_TYPES = frozenset((LEASE_ASK, LEASE_GRANT))
LEASE_SECONDS = 0.5
"""How long the leader counts a follower as a lease holder after taking its request."""
LEASE_MARGIN = 0.05
"""The follower's lease is this much shorter, for clocks that run at slightly different rates."""
LEASE_RENEW = 0.1
"""Seconds between a follower's requests."""
ANSWERED_WITHIN = 0.3
"""A follower whose raft answers are older than this gets no lease (the append period is 0.1 s)."""


class ReadLeases:
    """Both sides of read leases on one member. The follower's requests and the leader's
    answers run on the supervisor's event loop; the raft hooks run in raft's tick thread."""

    def __init__(
        self,
        raft: MetadataLog,
        page: LeasePage,
        send: Callable[[str, dict], None],
        own_gossip: str,
        leader_gossip: Callable[[], str | None],
    ):
        """`send(gossip address, message)` seals and sends a datagram; `leader_gossip()` is the
        leader's gossip address while this member may hold a lease, else None."""
        self._raft = raft
        self._page = page
        self._send = send
        self._own_gossip = own_gossip
        self._leader_gossip = leader_gossip
        self._session = os.urandom(8).hex()
        self._ids = 0
        self._asked: dict[int, tuple[float, int]] = {}
        """The follower's requests in flight: id -> (when sent, term)."""
        self._lock = threading.Lock()
        self._holders: dict[TCPNode, float] = {}
        """The leader's lease holders: node -> end of its lease as the leader counts it."""
        self._kept_up_to: dict[TCPNode, int] = {}
        """The commit index at each follower's last request: it must hold it by the next."""
        self._committed = 0
        self._exposed = 0
        self._led_term = 0
        self._led_since = 0.0
        self._settled = True
        self._previous_leader: TCPNode | None = None
        self._leader_seen: tuple[int, TCPNode] | None = None
        self.granted = 0
        """Leases granted by this member as leader, renewals included."""
        raft.leases = self
        page.create(raft.raftCurrentTerm)
        raft.addOnTickCallback(self._note_leader)

    # -- raft's hooks (the tick thread) -------------------------------------------------------

    def acknowledging(self, log_end: int) -> None:
        self._page.acknowledging(log_end)

    def applied(self, index: int) -> None:
        self._page.applied(index)

    def new_term(self, term: int) -> None:
        self._page.new_term(term)

    def held(self) -> bool:
        """Whether this follower holds a lease now."""
        return self._page.leased_index() is not None

    def exposable(self, commit_index: int) -> int:
        """The leader's commit index capped at what every lease holder holds; nothing new while
        a follower may still hold a lease from an earlier leader."""
        raft = self._raft
        now = time.monotonic()
        applied = raft.raftLastApplied
        match = raft._SyncObj__raftMatchIndex
        with self._lock:
            self._committed = commit_index
            term = raft.raftCurrentTerm
            if term != self._led_term:
                seen = self._leader_seen
                self._led_term, self._led_since, self._settled = term, now, False
                self._previous_leader = seen[1] if seen is not None and seen[0] == term - 1 else None
            if not self._settled:
                first = raft._SyncObj__noopIDx
                self._settled = now >= self._led_since + LEASE_SECONDS or all(
                    node == self._previous_leader or (first is not None and match.get(node, 0) >= first)
                    for node in raft.otherNodes
                )
            exposed = min(commit_index, applied)
            if self._settled:
                cap = commit_index
                for node, end in self._holders.items():
                    if end > now:
                        cap = min(cap, match.get(node, 0))
                exposed = max(exposed, cap)
            self._exposed = exposed
            return exposed

    def holding_back(self) -> bool:
        """Whether the leader holds a committed entry back for a lease holder's acknowledgement."""
        return self._exposed < self._committed

    def _note_leader(self) -> None:
        """A tick callback: the last leader seen other than this member, with its term."""
        leader = self._raft._getLeader()
        if leader is not None and leader != self._raft.selfNode:
            self._leader_seen = (self._raft.raftCurrentTerm, leader)

    # -- the follower's side ------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            self._ask()
            await asyncio.sleep(LEASE_RENEW)

    def _ask(self) -> None:
        leader = self._leader_gossip()
        if leader is None:
            return
        now = time.monotonic()
        self._asked = {key: asked for key, asked in self._asked.items() if asked[0] > now - LEASE_SECONDS}
        self._ids += 1
        term = self._raft.raftCurrentTerm
        self._asked[self._ids] = (now, term)
        self._send(
            leader,
            {
                "type": LEASE_ASK,
                "id": self._ids,
                "session": self._session,
                "term": term,
                "raft": str(self._raft.selfNode),
                "reply": self._own_gossip,
            },
        )

    def _granted(self, message: dict) -> None:
        if message["session"] != self._session:
            return
        asked = self._asked.pop(message["id"], None)
        if asked is not None and asked[1] == message["term"]:
            self._page.extend(asked[1], asked[0] + LEASE_SECONDS - LEASE_MARGIN)

    # -- the leader's side --------------------------------------------------------------------

    def _answer(self, message: dict) -> None:
        raft = self._raft
        if not raft._isLeader() or raft.raftCurrentTerm != message["term"] or len(raft.otherNodes) != 2:
            return
        node = TCPNode(message["raft"])
        if node not in raft.otherNodes:
            return
        if raft._SyncObj__lastResponseTime.get(node, 0.0) < raft_clock() - ANSWERED_WITHIN:
            return
        now = time.monotonic()
        with self._lock:
            if self._led_term != message["term"] or not self._settled:
                return
            match = raft._SyncObj__raftMatchIndex.get(node, 0)
            kept_up = match >= self._kept_up_to.get(node, self._committed + 1)
            self._kept_up_to[node] = self._committed
            if not kept_up:
                return  # behind what was committed at its last request: writes do not wait for it
            self._holders[node] = now + LEASE_SECONDS
            if match < self._exposed:
                return  # exposure now waits for it; its next request is granted
        self.granted += 1
        grant = {"type": LEASE_GRANT, "id": message["id"], "session": message["session"], "term": message["term"]}
        self._send(message["reply"], grant)

    def receive(self, message: dict) -> None:
        """A sealed lease message from gossip's endpoint."""
        if message["type"] == LEASE_ASK:
            self._answer(message)
        else:
            self._granted(message)
