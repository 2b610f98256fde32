"""Delivering queued bucket events: the raft leader's job.

Apply queues every event on every replica in the transaction of the change that caused it
(meta/notify.py), so the queue is as durable as the metadata: a kill -9 or a target outage
loses nothing. Only the leader delivers, so a cluster sends each event once per delivery
window, the life of one leader's deliverer. It sends a target's events in log order, then
proposes `notify.ack` up to the last one delivered, which drops them on every replica; until
that commits it remembers how far it got, so it never sends an event twice itself. A new
leader (or the same node after a restart) starts over from what is still queued: what was
delivered but not yet acknowledged is sent again, which is the "at least once".

A target that fails is retried with exponential backoff, each target on its own, so one
down target never holds up another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import orjson

from nebulaio.meta.notify import NotifyReader
from nebulaio.notify.targets import DeliveryError, open_channel

log = logging.getLogger("nebulaio.notify")

BATCH = 256
"""Events a target gets in one round (one pipelined write for Redis and NATS)."""
IDLE_POLL = 0.05
"""Seconds between two looks at an empty queue."""
TARGETS_POLL = 0.5
"""Seconds between two looks at which targets are defined."""
RETRY_FIRST = 0.2
RETRY_MAX = 10.0
"""The backoff after a failure: RETRY_FIRST, doubling with each failure in a row, at most RETRY_MAX seconds."""


def backoff(failures: int) -> float:
    return min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MAX)


def message(event: dict) -> bytes:
    """What a target receives: S3's event message, one record each."""
    return orjson.dumps({"Records": [event]})


class TargetFigures:
    """What /metrics tells of one target's delivery on this node."""

    __slots__ = ("delivered", "failures", "last_error", "position", "retrying")

    def __init__(self) -> None:
        self.delivered = 0
        self.failures = 0
        self.last_error: str | None = None
        self.retrying = False
        self.position: bytes | None = None
        """The queue position of the last event this node delivered (None: none yet)."""

    def as_dict(self) -> dict:
        return {
            "delivered": self.delivered,
            "failures": self.failures,
            "last_error": self.last_error,
            "retrying": self.retrying,
        }


class Deliverer:
    """One task a target, delivering while this node leads."""

    def __init__(
        self,
        reader: NotifyReader,
        submit: Callable[[dict], Awaitable[dict]],
        is_leader: Callable[[], bool],
    ):
        self._reader = reader
        self._submit = submit
        self._is_leader = is_leader
        self._tasks: dict[str, tuple[dict, asyncio.Task]] = {}
        self._acks: set[asyncio.Task] = set()
        self.figures: dict[str, TargetFigures] = {}

    def status(self) -> dict:
        """{arn: figures} of every target, with its backlog (queued, not yet acknowledged)."""
        backlog = self._reader.backlog()
        return {
            arn: {"backlog": count, **self.figures.get(arn, TargetFigures()).as_dict()}
            for arn, count in backlog.items()
        }

    async def run(self) -> None:
        try:
            while True:
                targets = {target["arn"]: target for target in self._reader.targets()}
                for arn in list(self._tasks):
                    defined, task = self._tasks[arn]
                    if targets.get(arn) != defined or task.done():
                        self._tasks.pop(arn)[1].cancel()
                for arn, target in targets.items():
                    if arn not in self._tasks:
                        self._tasks[arn] = (target, asyncio.create_task(self._serve(target)))
                await asyncio.sleep(TARGETS_POLL)
        finally:
            for _, task in self._tasks.values():
                task.cancel()

    async def _serve(self, target: dict) -> None:
        arn = target["arn"]
        figures = self.figures.setdefault(arn, TargetFigures())
        channel = open_channel(target)
        failures = 0
        try:
            while True:
                pending = self._reader.pending(arn, figures.position, BATCH) if self._is_leader() else []
                if not pending:
                    await asyncio.sleep(IDLE_POLL)
                    continue
                try:
                    delivered = await asyncio.to_thread(channel.deliver, [message(event) for _, event in pending])
                    error = None
                except DeliveryError as exc:
                    delivered, error = exc.delivered, exc
                if delivered:
                    figures.position = pending[delivered - 1][0]
                    figures.delivered += delivered
                    ack = asyncio.create_task(self._acknowledge(arn, figures.position))
                    self._acks.add(ack)
                    ack.add_done_callback(self._acks.discard)
                if error is None:
                    failures = 0
                    figures.retrying = False
                    continue
                failures += 1
                figures.failures += 1
                figures.last_error = str(error)
                figures.retrying = True
                if failures == 1:
                    log.warning("delivering events to %s failed: %s; retrying with backoff", arn, error)
                await asyncio.sleep(backoff(failures))
        except Exception:
            log.exception("the deliverer of %s stopped", arn)
            raise
        finally:
            await asyncio.to_thread(channel.close)

    async def _acknowledge(self, arn: str, position: bytes) -> None:
        """Drop delivered events everywhere; one that does not commit is covered by the next."""
        result = await self._submit({"op": "notify.ack", "target": arn, "upto": position.hex()})
        if result.get("status") != "ok":
            log.info("acknowledging events of %s did not commit (%s); the next one covers them", arn, result)
