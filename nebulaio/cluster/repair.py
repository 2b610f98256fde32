"""The repair loop: each storage node keeps its own share of the R copies, and only that.

Design: every node repairs what it should hold, rather than the raft leader deciding for all.

- Every node has the whole metadata replica, so it judges every placed file from local reads,
  with no coordinator and no round trip per file.
- Only a node sees cheaply that its own copy is gone (a wiped data directory, a new disk): for
  it that is one stat(); a leader would have to ask across the network, file by file.
- Each change touches one disk, the node's own: it copies a file in and then records "add me",
  or records "drop me" and then removes its file. No node writes or deletes on another's disk,
  so a peer that fails midway never leaves half-done work behind.
- The work spreads: every node copies over its own disk and link at once, and a node that comes
  back after an outage catches up by itself, without operator action.

The price is that every node walks every record (paged, local) and pings its peers once a
pass. For each placed file (see `plan`), with `wanted` the R holders that rendezvous hashing
picks among the storage nodes that are up and take new copies (a draining node does not):

- this node is wanted and lacks the file: it streams it from a live holder over the signed
  internal endpoint (1 MiB pieces, fsync, rename), then records itself (object.holders add);
- it is wanted and has a copy the record does not name (a holder that answered too late): it
  records itself, once that copy matches the file's recorded checksum (else it pulls one);
- the record names no holders at all (written while this node ran alone, before the cluster
  grew around it) and the file is here: it records itself, the one holder; the wanted nodes
  then copy it like any other file;
- it is a holder no longer wanted (a draining node is never wanted): once every wanted node is
  a holder it records its drop, with those nodes required (two nodes dropping at once can
  never undercut each other), and then removes its file; a holder whose copy is gone drops
  at once;
- a copy no record names, of a file this node is not wanted for, is removed.

The walk is a cycle over every bucket's placed files, cut into passes of `batch` records. A
cursor (bucket, source, LMDB key) is kept across passes, so each pass goes on where the last
one stopped and the walk wraps around at the end. The next pass starts at once while work is
left (the cycle is not over, or the pass changed something); after a cycle that changed
nothing the loop waits `interval` seconds. Each pass looks afresh at which peers are up.
Files are repaired TRANSFER_THREADS at a time, their bytes paced at `bandwidth` per second.

Liveness is `PeerClient.ping` (the internal endpoint answers within a second) until gossip
lands; `Repairer` takes it as one function, `is_live(node record)`, that gossip can replace.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor, wait
from typing import NamedTuple

from nebulaio.cluster.peers import READ_CHUNK, HolderStream, PeerClient, PeerError
from nebulaio.cluster.placement import STORAGE_ROLES, placement, takes_copies
from nebulaio.meta.holders import SOURCES, Placed
from nebulaio.storage.integrity import file_digest
from nebulaio.storage.objects import ObjectStore, key_hash

log = logging.getLogger("nebulaio.repair")

PAGE_SIZE = 500
"""Records read in one read transaction."""
TRANSFER_THREADS = 4
"""Files repaired at once: copies overlap their round trips, and their holders changes share
raft entries (the supervisor's group commit)."""
QUEUED_PER_THREAD = 2
NOT_READY_RETRY = 1.0
"""Seconds between two looks at whether this node has caught up with the log."""

KEEP, PULL, ADD, CLAIM, DROP, REMOVE = "keep", "pull", "add", "claim", "drop", "remove"


class Plan(NamedTuple):
    """What this node does about one file, and how the file stands."""

    action: str
    wanted: list[str]
    under_replicated: bool
    misplaced: bool


def plan(
    me: str,
    holders: Collection[str] | None,
    group: str,
    candidates: Collection[str],
    up: Collection[str],
    replicas: int,
    has_copy: bool,
) -> Plan:
    """This node's part in keeping a file on exactly its wanted holders (see the module's docstring).

    `candidates` are the storage nodes that are up and take new copies, `up` every storage
    node that is up (this node among them), `holders` None for a file written while its node
    ran alone, and `has_copy` whether this node's disk has the file.
    """
    wanted, _ = placement(candidates, group, replicas)
    if holders is None:
        return Plan(CLAIM if has_copy else KEEP, wanted, True, True)
    live_holders = sum(1 for node in holders if node in up)
    under = live_holders < len(wanted)
    misplaced = set(wanted) != set(holders)
    holder = me in holders
    if me in wanted:
        action = KEEP if holder and has_copy else ADD if has_copy else PULL
    elif holder:
        action = DROP if not has_copy or all(node in holders for node in wanted) else KEEP
    else:
        action = REMOVE if has_copy else KEEP
    return Plan(action, wanted, under, misplaced)


class Pace:
    """Keeps a pass's bytes under `rate` per second, over all its threads, by sleeping when ahead."""

    __slots__ = ("_lock", "_rate", "_sent", "_started")

    def __init__(self, rate: int):
        self._rate = rate
        self._sent = 0
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        with self._lock:
            self._sent += size
            ahead = self._sent / self._rate - (time.monotonic() - self._started)
        if ahead > 0:
            time.sleep(ahead)


def pull_copy(
    peers: PeerClient,
    store: ObjectStore,
    bucket: str,
    hashed: str,
    placed: Placed,
    directory: str,
    sources: list[str],
    pace: Pace,
) -> None:
    """Copy a file from the first holder that answers with a copy matching its recorded digest:
    temp/, check it against the SHA-256 the holder signed and against the recorded digest
    (`placed.digest`, when there is one), fsync, rename (over a damaged copy, if any), fsync
    the directory."""
    temp = store.new_temp()
    stream = None
    received = hashlib.sha256()
    try:
        file = (bucket, hashed, placed.file)
        stream = HolderStream(peers, sources, file, 0, placed.size, verified=True, expected=placed.digest)
        while chunk := stream.read(READ_CHUNK):
            temp.write(chunk)
            received.update(chunk)
            pace.take(len(chunk))
        if placed.size and received.hexdigest() != stream.content_hash:
            raise PeerError(f"the copy of {placed.file} does not match the SHA-256 its holder signed")
        if placed.digest is not None and temp.digest() != placed.digest:
            raise PeerError(f"the copy of {placed.file} does not match its recorded digest")
        temp.commit_to(directory, placed.file)
    except BaseException:
        temp.abort()
        raise
    finally:
        if stream is not None:
            stream.close()


def _intact_copy(directory: str, placed: Placed) -> bool:
    """Whether this node's copy of a file matches its recorded digest (an older record has none)."""
    if placed.digest is None:
        return True
    try:
        with open(os.path.join(directory, placed.file), "rb", buffering=0) as copy:
            return file_digest(copy.fileno()) == placed.digest
    except FileNotFoundError:
        return False


class Cursor(NamedTuple):
    """Where the walk goes on: a bucket, one of its SOURCES, and the LMDB key after which to read."""

    bucket: str = ""
    source: int = 0
    after: bytes | None = None


START = Cursor()


class Figures:
    """Counters that several threads add to, shown as one dict (`FIGURES` names them)."""

    FIGURES: tuple[str, ...] = ()
    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIGURES}


class Progress(Figures):
    """The figures the Admin API, the console and /metrics show; counters since the supervisor
    started, the rest as of the last finished cycle (a walk over every placed file)."""

    FIGURES = (
        "bytes_moved",
        "checked",
        "claimed",
        "copied",
        "cycle_checked",
        "cycle_files",
        "cycles",
        "held",
        "held_at",
        "held_before",
        "held_before_at",
        "last_pass_finished",
        "last_pass_seconds",
        "misplaced",
        "passes",
        "position",
        "removed",
        "running",
        "unclaimed",
        "under_replicated",
    )
    __slots__ = FIGURES

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self.passes = self.cycles = self.checked = self.copied = self.removed = self.claimed = self.bytes_moved = 0
        self.under_replicated = self.misplaced = self.unclaimed = 0
        self.cycle_checked = 0
        """Files checked in the cycle under way."""
        self.cycle_files: int | None = None
        """Files the last finished cycle checked: how long a cycle is, to estimate what is left."""
        self.position: str | None = None
        """The bucket the walk stands in."""
        self.held: dict[str, list[int]] = {}
        """Node id -> [files, bytes] the records named it a holder of, in the last finished cycle."""
        self.held_at: int | None = None
        """Epoch milliseconds at which the cycle `held` counts began."""
        self.held_before: dict[str, list[int]] = {}
        self.held_before_at: int | None = None
        """The same for the cycle before it: two counts give a node's drain rate."""
        self.last_pass_finished: int | None = None
        """Epoch milliseconds."""
        self.last_pass_seconds: float | None = None


class Cycle:
    """What one cycle counts as it walks, published to `Progress` when it ends."""

    __slots__ = ("files", "held", "misplaced", "started", "unclaimed", "under")

    def __init__(self) -> None:
        self.started = int(time.time() * 1000)
        self.files = self.under = self.misplaced = self.unclaimed = 0
        self.held: dict[str, list[int]] = {}

    def count(self, placed: Placed, judged: Plan) -> None:
        self.files += 1
        self.under += judged.under_replicated
        self.misplaced += judged.misplaced
        self.unclaimed += placed.holders is None
        for node in placed.holders or ():
            figures = self.held.setdefault(node, [0, 0])
            figures[0] += 1
            figures[1] += placed.size

    def publish(self, progress: Progress) -> None:
        progress.cycles += 1
        progress.cycle_files = self.files
        progress.under_replicated, progress.misplaced, progress.unclaimed = self.under, self.misplaced, self.unclaimed
        progress.held_before, progress.held_before_at = progress.held, progress.held_at
        progress.held, progress.held_at = self.held, self.started


class Repairer:
    """Walks every placed file, a pass of `batch` records at a time, as one storage node."""

    def __init__(
        self,
        node_id: str,
        reader,
        store: ObjectStore,
        peers: PeerClient,
        submit: Callable[[dict], dict],
        is_live: Callable[[dict], bool],
        replicas: int,
        bandwidth: int,
        interval: float,
        batch: int,
    ):
        self._me = node_id
        self._reader = reader
        self._store = store
        self._peers = peers
        self._submit = submit
        self._is_live = is_live
        self._replicas = replicas
        self._bandwidth = bandwidth
        self._interval = interval
        self._batch = batch
        self._cursor = START
        self._cycle = Cycle()
        self._pool = ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="repair")
        self.progress = Progress()

    async def run(self, ready: Callable[[], bool]) -> None:
        while True:
            if not ready():
                await asyncio.sleep(min(self._interval, NOT_READY_RETRY))
                continue
            work_left = False
            try:
                work_left = await asyncio.to_thread(self.repair_pass)
            except asyncio.CancelledError:
                raise
            except Exception:
                # NOTE: a task's exception is otherwise silent until the loop ends.
                log.exception("repair pass failed; the next one starts in %s s", self._interval)
            if not work_left:
                await asyncio.sleep(self._interval)

    def _members(self) -> tuple[list[str], dict[str, str]] | None:
        """(the storage nodes that are up and take new copies, every storage node that is up
        by id -> its internal endpoint); None when this node is not a registered storage node,
        or the only one (a lone node has nothing to repair)."""
        storage = [node for node in self._reader.nodes.all() if node["role"] in STORAGE_ROLES]
        if len(storage) < 2 or not any(node["id"] == self._me for node in storage):
            return None
        up = [node for node in storage if node["id"] == self._me or self._is_live(node)]
        return [node["id"] for node in up if takes_copies(node)], {node["id"]: node["internal"] for node in up}

    def _pages(self, budget: int):
        """(bucket, page of placed files) from the cursor on, for about `budget` records; the
        cursor follows each page, and is back at START once the last bucket is walked."""
        cursor = self._cursor
        for bucket in self._reader.list_buckets():
            name = bucket["name"]
            if name < cursor.bucket:
                continue
            if name > cursor.bucket:
                cursor = Cursor(name)
            for source in range(cursor.source, len(SOURCES)):
                after = cursor.after if source == cursor.source else None
                while True:
                    if budget <= 0:
                        return
                    limit = min(PAGE_SIZE, budget)
                    page, after = self._reader.holders.page(name, SOURCES[source], after, limit)
                    # A full page spends the whole limit; the last of a source only what it held.
                    budget -= limit if after is not None else max(len(page), 1)
                    self._cursor = Cursor(name, source, after) if after is not None else Cursor(name, source + 1)
                    self.progress.position = name
                    yield name, page
                    if after is None:
                        break
        self._cursor = START

    def repair_pass(self) -> bool:
        """Up to `batch` records from the cursor on (see the module's docstring); True when
        work is left: the cycle is not over, or this pass changed something."""
        members = self._members()
        if members is None:
            return False
        candidates, up = members
        progress = self.progress
        progress.running = True
        started = time.monotonic()
        pace = Pace(self._bandwidth)
        slots = threading.BoundedSemaphore(TRANSFER_THREADS * QUEUED_PER_THREAD)
        tasks = []
        if self._cursor == START:
            self._cycle = Cycle()
            progress.cycle_checked = 0
        try:
            for bucket, page in self._pages(self._batch):
                for placed in page:
                    directory = self._store.file_dir(bucket, key_hash(placed.key))
                    has_copy = os.path.exists(os.path.join(directory, placed.file))
                    judged = plan(self._me, placed.holders, placed.group, candidates, up, self._replicas, has_copy)
                    self._cycle.count(placed, judged)
                    progress.add(checked=1, cycle_checked=1)
                    if judged.action == KEEP:
                        continue
                    slots.acquire()
                    task = self._pool.submit(self._repair, bucket, placed, directory, judged, up, pace)
                    task.add_done_callback(lambda _: slots.release())
                    tasks.append(task)
        finally:
            wait(tasks)
            progress.running = False
        for task in tasks:
            if task.exception() is not None:
                log.error("a repair failed", exc_info=task.exception())
        cycle_over = self._cursor == START
        if cycle_over:
            self._cycle.publish(progress)
        progress.passes += 1
        progress.last_pass_finished = int(time.time() * 1000)
        progress.last_pass_seconds = time.monotonic() - started
        return bool(tasks) or not cycle_over

    def _repair(self, bucket: str, placed: Placed, directory: str, judged: Plan, up: dict[str, str], pace: Pace):
        """Carry out a file's plan (in a repair thread)."""
        try:
            if judged.action == ADD and not _intact_copy(directory, placed):
                # A copy that came too late is recorded only once it is known sound.
                judged = judged._replace(action=PULL)
            if judged.action == PULL:
                sources = [up[node] for node in placed.holders if node != self._me and node in up]
                if not sources:
                    log.warning("no live holder of %s/%s to copy it from", bucket, placed.file)
                    return
                self._pull(bucket, placed, directory, sources, pace)
            if judged.action in (PULL, ADD, CLAIM):
                if self._record(bucket, placed, directory, {"add": self._me}) and judged.action == CLAIM:
                    self.progress.add(claimed=1)
            elif judged.action == DROP:
                # The wanted nodes are counted on only when there is a copy here to give up.
                has_copy = os.path.exists(os.path.join(directory, placed.file))
                change = {"drop": self._me, "require": judged.wanted if has_copy else []}
                if self._record(bucket, placed, directory, change) and has_copy:
                    self._remove(directory, placed.file)
            elif judged.action == REMOVE:
                self._remove(directory, placed.file)
        except (PeerError, OSError, EOFError) as exc:
            log.warning("repairing %s/%s (%s) failed: %s", bucket, placed.key, placed.file, exc)

    def _pull(self, bucket: str, placed: Placed, directory: str, sources: list[str], pace: Pace) -> None:
        pull_copy(self._peers, self._store, bucket, key_hash(placed.key), placed, directory, sources, pace)
        self.progress.add(copied=1, bytes_moved=placed.size)

    def _record(self, bucket: str, placed: Placed, directory: str, change: dict) -> bool:
        """Propose a holders change; a file whose record went away meanwhile is not kept."""
        result = self._submit({"op": "object.holders", "bucket": bucket, **placed.target(), **change})
        status = result.get("status")
        if status == "Gone":
            self._store.remove_file(directory, placed.file)
        elif status != "ok":
            log.info("holders of %s/%s not changed: %s", bucket, placed.file, result.get("reason", status))
        return status == "ok"

    def _remove(self, directory: str, name: str) -> None:
        self._store.remove_file(directory, name)
        self.progress.add(removed=1)
