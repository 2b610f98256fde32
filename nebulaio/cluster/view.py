"""A worker's copy of its supervisor's gossip view, refreshed at most once per VIEW_TTL.

PERF: placement asks on every PUT; one status call a second per worker keeps that free.
"""

from __future__ import annotations

import time

from nebulaio.cluster.gossip import DEAD
from nebulaio.cluster.ipc import SupervisorClient, SupervisorUnavailable

VIEW_TTL = 1.0
STATUS_TIMEOUT = 2.0


class MemberView:
    __slots__ = ("_supervisor", "_ttl", "_cached")

    def __init__(self, supervisor: SupervisorClient, ttl: float = VIEW_TTL):
        self._supervisor = supervisor
        self._ttl = ttl
        self._cached: tuple[float, dict[str, dict]] = (float("-inf"), {})

    def members(self) -> dict[str, dict]:
        """Member id -> what gossip says of it (state, capacity, addresses); the last view
        known while the supervisor does not answer."""
        fetched, members = self._cached
        now = time.monotonic()
        if now - fetched < self._ttl:
            return members
        try:
            status = self._supervisor.call({"type": "status"}, timeout=STATUS_TIMEOUT)
            members = {member["id"]: member for member in status.get("gossip", {}).get("members", ())}
        except SupervisorUnavailable:
            pass
        # NOTE: one tuple, replaced whole: threads of a worker share it without a lock.
        self._cached = (now, members)
        return members

    def dead(self) -> set[str]:
        """Members gossip has declared dead; one it has not heard of yet is not among them."""
        return {ident for ident, member in self.members().items() if member.get("state") == DEAD}
