"""The lifecycle sweeper: runs in the supervisor, acts only while this member leads raft.

Every `interval` seconds it walks each bucket that has a lifecycle configuration, in pages
read from the local replica (each page its own short read transaction, so no pass ever pins
old pages), and proposes what the rules call for through the log like any other command:

- a current version whose Expiration came due: object.delete with "if_vid" naming the
  version judged, so a version written after the sweeper looked is never deleted;
- an open upload past AbortIncompleteMultipartUpload: upload.abort.

NOTE: NoncurrentVersionExpiration and ExpiredObjectDeleteMarker are stored with the rules
but judged by nothing yet: until buckets keep versions there are no noncurrent versions or
delete markers. They become one more walk per bucket, over the versions database, beside
the two above.

A page's commands are submitted together (group commit makes them one raft entry) and
answered before the next page is read, so a pass holds at most one page in flight. A
command refused by apply (the object changed or went away) is simply left: the next pass
judges again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nebulaio.lifecycle.rules import Lifecycle
from nebulaio.meta import MetaReader

log = logging.getLogger("nebulaio.lifecycle")

PAGE_SIZE = 1000
SETTING = "lifecycle"

Submit = Callable[[dict], Awaitable[dict]]


class LifecycleSweeper:
    """Periodic passes over the buckets' lifecycle rules; `submit` proposes one command."""

    __slots__ = ("_clock", "_day_seconds", "_interval", "_is_leader", "_reader", "_submit")

    def __init__(
        self,
        reader: MetaReader,
        submit: Submit,
        is_leader: Callable[[], bool],
        interval: float,
        day_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._submit = submit
        self._is_leader = is_leader
        self._interval = interval
        self._day_seconds = day_seconds
        self._clock = clock

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._is_leader():
                continue
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                # NOTE: a task's exception is otherwise silent until the loop ends.
                log.exception("lifecycle pass failed; the next one starts in %s s", self._interval)

    async def sweep(self) -> None:
        """One pass over every bucket with a lifecycle configuration."""
        for bucket in await asyncio.to_thread(self._reader.list_buckets):
            configuration = bucket.get(SETTING)
            if not configuration:
                continue
            lifecycle = Lifecycle(configuration, self._day_seconds)
            if lifecycle.expires_objects:
                await self._expire_objects(bucket["name"], lifecycle)
            if lifecycle.aborts_uploads:
                await self._abort_uploads(bucket["name"], lifecycle)

    async def _expire_objects(self, bucket: str, lifecycle: Lifecycle) -> None:
        after = None
        while self._is_leader():
            page = await asyncio.to_thread(self._reader.list_objects, bucket, "", "", after, PAGE_SIZE)
            now = self._now_ms()
            await self._propose(
                {"op": "object.delete", "bucket": bucket, "key": key, "if_vid": record["vid"]}
                for key, record in page.entries
                if lifecycle.object_expired(key, record, now)
            )
            if not page.truncated:
                return
            after = page.last

    async def _abort_uploads(self, bucket: str, lifecycle: Lifecycle) -> None:
        key_marker = upload_marker = None
        uploads = self._reader.uploads
        while self._is_leader():
            page = await asyncio.to_thread(uploads.list_uploads, bucket, "", "", key_marker, upload_marker, PAGE_SIZE)
            now = self._now_ms()
            await self._propose(
                {"op": "upload.abort", "bucket": bucket, "key": upload["key"], "upload_id": upload["upload_id"]}
                for upload in page.uploads
                if lifecycle.upload_expired(upload, now)
            )
            if not page.truncated:
                return
            key_marker, upload_marker = page.next_key, page.next_upload_id

    async def _propose(self, commands) -> None:
        results = await asyncio.gather(*(self._submit(command) for command in commands))
        for result in results:
            if result.get("status") == "ServiceUnavailable":
                log.warning("lifecycle command not applied: %s", result.get("reason"))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
