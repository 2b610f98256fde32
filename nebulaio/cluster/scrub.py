"""The scrub: each storage node's supervisor re-reads every file this node holds, at `rate`
bytes a second, and checks it against the digest recorded when it was written (see
`nebulaio.storage.integrity`).

A damaged copy is healed from another holder: pulled whole, checked against the SHA-256 its
holder signs and against the recorded digest, and renamed over the damaged one (the repair
loop's `pull_copy`). A lone node has no other copy: it logs and counts the damage, and its
GETs of that object keep answering an error rather than wrong bytes.

A GET (or a peer's read) that finds a damaged copy reports it through the worker IPC; the
report is checked again and healed at once, between two files of a pass under way.

Passes start `interval` seconds after the last one began (the first, `interval` seconds after
the supervisor started: a restart does not re-read the disk), or when asked (the Admin API's
POST).
It runs in the supervisor, not in the workers: one reader per node, paced once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from nebulaio.cluster.peers import PeerClient, PeerError
from nebulaio.cluster.placement import STORAGE_ROLES
from nebulaio.cluster.repair import NOT_READY_RETRY, PAGE_SIZE, Figures, Pace, pull_copy
from nebulaio.meta.holders import SOURCES, Placed
from nebulaio.storage.integrity import HASH_FIELD, file_digest
from nebulaio.storage.objects import ObjectStore, key_hash

log = logging.getLogger("nebulaio.scrub")


class Stopped(Exception):
    """The supervisor is stopping: a pass under way gives up."""


class ScrubProgress(Figures):
    """What the Admin API, the CLI, the console and /metrics show: the pass under way (or the
    last one) and counters since the supervisor started."""

    FIGURES = (
        "running",
        "passes",
        "files_total",
        "files_done",
        "bytes_total",
        "bytes_done",
        "unverifiable",
        "corrupt",
        "healed",
        "unhealed",
        "reported",
        "last_pass_started",
        "last_pass_finished",
        "last_pass_seconds",
        "rate",
        "interval",
    )
    __slots__ = FIGURES

    def __init__(self, rate: int = 0, interval: float = 0) -> None:
        super().__init__()
        self.running = False
        self.passes = self.files_total = self.files_done = self.bytes_total = self.bytes_done = 0
        self.unverifiable = 0
        """Files of the pass whose records carry no digest (written before digests were recorded)."""
        self.corrupt = self.healed = self.unhealed = 0
        """Damaged copies found (by a pass, or confirmed after a read reported them), healed, not healed."""
        self.reported = 0
        """Damaged copies that reads reported."""
        self.last_pass_started: int | None = None
        """Epoch milliseconds."""
        self.last_pass_finished: int | None = None
        self.last_pass_seconds: float | None = None
        self.rate, self.interval = rate, interval


class Scrubber:
    """Verifies and heals the files `node_id` holds (see the module's docstring)."""

    def __init__(self, node_id: str, reader, store: ObjectStore, peers: PeerClient, rate: int, interval: float) -> None:
        self._me = node_id
        self._reader = reader
        self._store = store
        self._peers = peers
        self._rate = rate
        self._interval = interval
        self._requested = False
        self._reports: dict[tuple[str, str, str], dict] = {}
        self._reports_lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._started = time.time()
        self.progress = ScrubProgress(rate, interval)

    # -- asked from the supervisor's loop -----------------------------------------------------

    def request_pass(self) -> None:
        """Start a pass now (or right after the one under way)."""
        self._requested = True
        if self._wake is not None:
            self._wake.set()

    def report(self, damaged: dict) -> None:
        """A read found a damaged copy here: check it again and heal it soon."""
        self.progress.add(reported=1)
        with self._reports_lock:
            self._reports[damaged["bucket"], damaged["hashed"], damaged["file"]] = damaged
        if self._wake is not None:
            self._wake.set()

    async def run(self, ready: Callable[[], bool]) -> None:
        self._wake = asyncio.Event()
        try:
            while True:
                if not ready():
                    await asyncio.sleep(NOT_READY_RETRY)
                    continue
                wait = self._next_pass() - time.time()
                try:
                    if wait <= 0 or self._requested:
                        self._requested = False
                        await asyncio.to_thread(self.scrub_pass)
                    else:
                        await asyncio.to_thread(self._heal_reported)
                except Exception:
                    # NOTE: a task's exception is otherwise silent until the loop ends.
                    log.exception("a scrub pass failed")
                wait = self._next_pass() - time.time()
                self._wake.clear()
                if self._reports or self._requested:
                    continue
                try:
                    await asyncio.wait_for(self._wake.wait(), max(wait, 0.0))
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            self._stopping.set()
            raise

    def _next_pass(self) -> float:
        """When the next pass is due (epoch seconds)."""
        started = self.progress.last_pass_started
        return (self._started if started is None else started / 1000) + self._interval

    # -- the pass (in a thread of its own) ------------------------------------------------------

    def _held(self) -> Iterator[tuple[str, Placed]]:
        """(bucket, file) of every file the records say this node holds (or that was written
        while it ran alone), each page read in a short transaction of its own."""
        for bucket in self._reader.list_buckets():
            name = bucket["name"]
            for source in SOURCES:
                after = None
                while True:
                    page, after = self._reader.holders.page(name, source, after, PAGE_SIZE)
                    for placed in page:
                        if placed.holders is None or self._me in placed.holders:
                            yield name, placed
                    if after is None:
                        break

    def scrub_pass(self) -> None:
        """Count what this node holds (the pass's length, for its progress), then verify it."""
        progress = self.progress
        progress.running = True
        progress.last_pass_started = int(time.time() * 1000)
        began = time.monotonic()
        pace = Pace(self._rate)

        def paced(size: int) -> None:
            if self._stopping.is_set():
                raise Stopped
            progress.add(bytes_done=size)
            pace.take(size)

        try:
            progress.files_done = progress.bytes_done = progress.unverifiable = 0
            progress.files_total = progress.bytes_total = 0
            for _, placed in self._held():
                progress.files_total += 1
                progress.bytes_total += placed.size
            for bucket, placed in self._held():
                self._heal_reported()
                self._verify(bucket, placed, paced, pace)
                progress.add(files_done=1)
        except Stopped:
            return
        finally:
            progress.running = False
        progress.passes += 1
        progress.last_pass_finished = int(time.time() * 1000)
        progress.last_pass_seconds = round(time.monotonic() - began, 3)
        log.info(
            "scrub pass %d: %d files (%d bytes) verified; %d damaged found so far, %d healed, %d not healed",
            progress.passes,
            progress.files_done,
            progress.bytes_done,
            progress.corrupt,
            progress.healed,
            progress.unhealed,
        )

    def _verify(self, bucket: str, placed: Placed, paced: Callable[[int], None], pace: Pace) -> None:
        if placed.digest is None:
            self.progress.add(unverifiable=1, bytes_done=placed.size)
            return
        hashed = key_hash(placed.key)
        path = os.path.join(self._store.file_dir(bucket, hashed), placed.file)
        try:
            with open(path, "rb", buffering=0) as file:
                intact = file_digest(file.fileno(), paced) == placed.digest
        except FileNotFoundError:
            # Replaced or removed meanwhile, or never copied here: the repair loop's work.
            self.progress.add(bytes_done=placed.size)
            return
        if not intact:
            self._heal(bucket, hashed, placed, pace)

    def _heal_reported(self) -> None:
        """Check again each copy reads reported damaged, and heal those that are."""
        while True:
            with self._reports_lock:
                if not self._reports:
                    return
                _, damaged = self._reports.popitem()
            bucket, hashed, name = damaged["bucket"], damaged["hashed"], damaged["file"]
            path = os.path.join(self._store.file_dir(bucket, hashed), name)
            try:
                with open(path, "rb", buffering=0) as file:
                    if file_digest(file.fileno()) == damaged[HASH_FIELD]:
                        continue  # healed meanwhile, or replaced
                    size = damaged.get("size") or os.fstat(file.fileno()).st_size
            except FileNotFoundError:
                continue
            holders = damaged.get("holders")
            placed = Placed("", name, size, None if holders is None else tuple(holders), "", digest=damaged[HASH_FIELD])
            self._heal(bucket, hashed, placed, Pace(self._rate))

    def _heal(self, bucket: str, hashed: str, placed: Placed, pace: Pace) -> None:
        """Replace a damaged copy with an intact one from another holder (any other storage
        node when the holders are not known); counted either way."""
        self.progress.add(corrupt=1)
        nodes = [node for node in self._reader.nodes.all() if node["role"] in STORAGE_ROLES and node["id"] != self._me]
        sources = [node["internal"] for node in nodes if placed.holders is None or node["id"] in placed.holders]
        where = f"{bucket}/{hashed}/{placed.file}"
        if not sources:
            log.error("%s does not match its recorded digest, and no other node holds a copy", where)
            self.progress.add(unhealed=1)
            return
        try:
            directory = self._store.file_dir(bucket, hashed)
            pull_copy(self._peers, self._store, bucket, hashed, placed, directory, sources, pace)
        except (PeerError, OSError, EOFError) as exc:
            log.error("%s does not match its recorded digest and could not be healed: %s", where, exc)
            self.progress.add(unhealed=1)
            return
        log.warning("%s did not match its recorded digest: healed from another holder", where)
        self.progress.add(healed=1)
