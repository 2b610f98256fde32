"""The log's front door: commands that arrive together become one raft entry.

Workers and the supervisor's own loops submit commands; the committer groups whatever arrived
together into one raft entry (one log append, one LMDB transaction, one fsync) and answers each
submitter once its command is applied here.
"""

from __future__ import annotations

import asyncio
import logging

from nebulaio.cluster.raft import MetadataLog, describe_failure
from nebulaio.cluster.readlink import ReadLink

log = logging.getLogger("nebulaio.groupcommit")

MAX_BATCH_COMMANDS = 512
MAX_BATCH_BYTES = 8 * 1024 * 1024
BATCHES_IN_FLIGHT = 2
FENCE_PASSED = {"status": "ok"}
FENCE_DEADLINE = 8.0
"""Seconds a read fence may wait for the leader's read index (a worker waits 10 s for its answer)."""
PROPOSAL_DEADLINE = 12.0
"""Seconds an entry may wait for raft to confirm it before its requests are answered 503."""
LEADER_GRACE = 3.0
"""Seconds without a reachable leader (several elections' worth) before requests fail fast."""
WATCH_INTERVAL = 0.25
NO_LEADER = {"status": "ServiceUnavailable", "reason": "no raft leader is reachable from this node"}
UNCONFIRMED = {
    "status": "ServiceUnavailable",
    "reason": "the raft leader did not confirm the entry in time; it may still be applied",
    "unconfirmed": True,
}
"""An answer whose command may still apply: the worker proposes it again under its request id."""


class Flight:
    """A batch handed to raft: settled once, by raft's callback or by giving up on it."""

    __slots__ = ("batch", "settled", "deadline")

    def __init__(self, batch: list):
        self.batch = batch
        self.settled = False
        self.deadline: asyncio.TimerHandle | None = None


class GroupCommitter:
    """Collects submitted commands and proposes them to the raft log in batches.

    Every request gets an answer within PROPOSAL_DEADLINE: PySyncObj can leave a callback
    uncalled for good (an entry forwarded to a leader over a connection that then broke), and
    on the minority side of a partition nothing commits until the partition heals. A command
    given up on may still commit later, so its answer is a 503 the client retries, never a
    refusal; once no leader has been reachable for LEADER_GRACE, requests fail at once
    without being proposed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, metadata_log: MetadataLog):
        self._loop = loop
        self._log = metadata_log
        self._pending: list[tuple[dict, bytes | None, asyncio.Future]] = []
        self._fences: set[asyncio.Future] = set()
        self._flights: set[Flight] = set()
        self._unreachable_since: float | None = None
        self._cut_off = False
        self._wakeup = asyncio.Event()
        self._landed = asyncio.Event()
        self.reads: ReadLink | None = None
        """The fast path of the read fence, once gossip runs (see readlink.py)."""

    def _still_cut_off(self) -> bool:
        """Whether requests fail at once: no leader reachable for LEADER_GRACE, and none now.

        A leader that is back is seen at the next request, not the next watch: a client told
        the node is ready must not be refused for a quarter of a second more.
        """
        if self._cut_off and self._log.leader_reachable():
            self._unreachable_since = None
            self._cut_off = False
        return self._cut_off

    def submit(self, command: dict, blob: bytes | None = None) -> asyncio.Future:
        future = self._loop.create_future()
        if self._still_cut_off():
            future.set_result(NO_LEADER)
            return future
        self._pending.append((command, blob, future))
        self._wakeup.set()
        return future

    def fence(self) -> asyncio.Future:
        """Resolves once this replica holds every write acknowledged anywhere before the call.

        Raft's read index: the leader confirms its commit index with one round of pings and
        this replica applies up to it. Nothing is appended to the log, and concurrent fences
        share the leader's round. A follower of three voters asks over gossip's datagrams
        (readlink.py), else over raft's connections.
        """
        future = self._loop.create_future()
        if self._still_cut_off():
            future.set_result(NO_LEADER)
            return future
        self._fences.add(future)

        def settled(failure: str | None) -> None:
            self._settle_fence(future, failure)

        if self.reads is None or not self.reads.ask(settled):
            self._log.read_index(lambda failure: self._loop.call_soon_threadsafe(settled, failure), FENCE_DEADLINE)
        return future

    def _settle_fence(self, future: asyncio.Future, failure: str | None) -> None:
        self._fences.discard(future)
        if not future.done():
            future.set_result(FENCE_PASSED if failure is None else {"status": "ServiceUnavailable", "reason": failure})

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                while len(self._flights) >= (BATCHES_IN_FLIGHT if self._log.otherNodes else 1):
                    self._landed.clear()
                    await self._landed.wait()
                batch = self._take_batch()
                flight = Flight(batch)
                self._flights.add(flight)
                flight.deadline = self._loop.call_later(PROPOSAL_DEADLINE, self._settle, flight, None, UNCONFIRMED)
                self._log.propose(
                    [(command, blob) for command, blob, _ in batch],
                    callback=lambda result, error, flight=flight: self._loop.call_soon_threadsafe(
                        self._resolve, flight, result, error
                    ),
                )

    async def watch(self) -> None:
        """Track whether a leader is reachable; past LEADER_GRACE without one, answer everything 503."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self._log.leader_reachable():
                self._unreachable_since = None
                self._cut_off = False
                continue
            now = self._loop.time()
            if self._unreachable_since is None:
                self._unreachable_since = now
            elif not self._cut_off and now - self._unreachable_since >= LEADER_GRACE:
                self._cut_off = True
                log.warning("no raft leader reachable for %.1f s: answering requests 503", LEADER_GRACE)
                self._fail_waiting()

    def _fail_waiting(self) -> None:
        for flight in list(self._flights):
            self._settle(flight, None, UNCONFIRMED)
        waiting = [future for _, _, future in self._pending] + list(self._fences)
        self._pending, self._fences = [], set()
        for future in waiting:
            if not future.done():  # a worker that went away cancels its wait
                future.set_result(NO_LEADER)

    def _take_batch(self) -> list:
        size = 0
        count = 0
        for _, blob, _ in self._pending:
            size += len(blob) if blob else 0
            count += 1
            if count >= MAX_BATCH_COMMANDS or size >= MAX_BATCH_BYTES:
                break
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    def _resolve(self, flight: Flight, results, error: int) -> None:
        """Answer each command with its result, or all with the failure.

        NOTE: a replay (results None) counts as a failure: the entry was applied before.
        """
        if error or results is None:
            reason = describe_failure(error) if error else "the entry was not applied"
            self._settle(flight, None, {"status": "ServiceUnavailable", "reason": reason, "unconfirmed": True})
        else:
            self._settle(flight, results, None)

    def _settle(self, flight: Flight, results: list | None, failure: dict | None) -> None:
        if flight.settled:
            return  # raft answered after the deadline, or the deadline after raft
        flight.settled = True
        flight.deadline.cancel()
        self._flights.discard(flight)
        self._landed.set()
        for position, (_, _, future) in enumerate(flight.batch):
            if future.done():
                continue
            future.set_result(failure if failure is not None else results[position])
