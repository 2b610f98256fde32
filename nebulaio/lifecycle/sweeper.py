"""The lifecycle sweeper: runs in the supervisor, acts only while this member leads raft.

Every `interval` seconds it walks each bucket that has a lifecycle configuration, in pages
read from the local replica (each page its own short read transaction, so no pass ever pins
old pages), and proposes what the rules call for through the log like any other command:

- a current version whose Expiration came due: object.delete with "if_vid" naming the
  version judged, so a version written after the sweeper looked is never deleted (in a
  versioned bucket that delete adds a delete marker, a null one while suspended);
- in a versioned bucket, over its history (noncurrent versions and delete markers): a
  noncurrent version past NoncurrentVersionExpiration, deleted for good with "if_noncurrent"
  (it must still be noncurrent, behind as many newer noncurrent versions as the rule keeps),
  and a delete marker that is its key's only version, with "if_sole";
- an open upload past AbortIncompleteMultipartUpload: upload.abort.

A page's commands are submitted together (group commit makes them one raft entry) and
answered before the next page is read, so a pass holds at most one page in flight. A
command refused by apply (the object changed or went away, or object lock protects the
version) is simply left: the next pass judges again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nebulaio.lifecycle.rules import Lifecycle
from nebulaio.meta import MetaReader
from nebulaio.meta.versions import version_of

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
            # A bucket that never had versioning has no history to walk.
            if bucket["versioning"] is not None and lifecycle.expires_history:
                await self._expire_history(bucket["name"], lifecycle)
            if lifecycle.aborts_uploads:
                await self._abort_uploads(bucket["name"], lifecycle)

    async def _expire_objects(self, bucket: str, lifecycle: Lifecycle) -> None:
        after = None
        while self._is_leader():
            page = await asyncio.to_thread(self._reader.list_objects, bucket, "", "", after, PAGE_SIZE)
            now = self._now_ms()
            await self._propose(
                # "mtime": the time of the delete marker this adds in a versioned bucket.
                {"op": "object.delete", "bucket": bucket, "key": key, "if_vid": record["vid"], "mtime": now}
                for key, record in page.entries
                if lifecycle.object_expired(key, record, now)
            )
            if not page.truncated:
                return
            after = page.last

    async def _expire_history(self, bucket: str, lifecycle: Lifecycle) -> None:
        after = None
        newer_noncurrent = 0  # noncurrent versions of the entry's key newer than it, across pages
        while self._is_leader():
            page = await asyncio.to_thread(self._reader.list_history, bucket, after, PAGE_SIZE)
            now = self._now_ms()
            commands = []
            for entry in page.entries:
                record = entry.record
                key = record["key"]
                # "mtime": now, which object lock compares a version's retention with.
                delete = {
                    "op": "object.delete",
                    "bucket": bucket,
                    "key": key,
                    "version": version_of(record),
                    "mtime": now,
                }
                if entry.newest:
                    newer_noncurrent = 0
                    if not entry.has_current:  # the key's latest version: a delete marker
                        if entry.oldest and lifecycle.lone_marker_expired(key, record, now):
                            commands.append({**delete, "if_sole": True})
                        continue
                kept = lifecycle.noncurrent_expired(key, record, newer_noncurrent, now)
                if kept is not None:
                    commands.append({**delete, "if_noncurrent": kept})
                newer_noncurrent += 1
            await self._propose(commands)
            if page.resume is None:
                return
            after = page.resume

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
        """Submit a page's commands; only a command the log could not take is worth a warning.

        Every other refusal (the version changed, went away, or is locked) is a normal outcome.
        """
        results = await asyncio.gather(*(self._submit(command) for command in commands))
        for result in results:
            if result.get("status") == "ServiceUnavailable":
                log.warning("lifecycle command not applied: %s", result.get("reason"))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
