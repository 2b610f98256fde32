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

The price is that every node walks every record each pass (paged, local) and pings its peers
once a pass. A pass, for each placed file (see `plan`), with `wanted` the R holders that
rendezvous hashing picks among the storage nodes that are up:

- this node is wanted and lacks the file: it streams it from a live holder over the signed
  internal endpoint (1 MiB pieces, fsync, rename), then records itself (object.holders add);
- it is wanted and has a copy the record does not name (a holder that answered too late): it
  records itself;
- it is a holder no longer wanted: once every wanted node is a holder it records its drop,
  with those nodes required (two nodes dropping at once can never undercut each other), and
  then removes its file; a holder whose copy is gone drops at once;
- a copy no record names, of a file this node is not wanted for, is removed.

Work is bounded: at most MAX_TRANSFERS copies and removals per pass, bytes paced at
`repair_bandwidth`, records read in pages of PAGE_SIZE (each its own read transaction).

Liveness is `PeerClient.ping` (the internal endpoint answers within a second) until gossip
lands; `Repairer` takes it as one function, `is_live(node record)`, that gossip can replace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Collection
from typing import NamedTuple

from nebulaio.cluster.peers import READ_CHUNK, HolderStream, PeerClient, PeerError
from nebulaio.cluster.placement import STORAGE_ROLES, placement
from nebulaio.meta.holders import SOURCES, Placed
from nebulaio.storage.objects import ObjectStore, key_hash

log = logging.getLogger("nebulaio.repair")

PAGE_SIZE = 500
MAX_TRANSFERS = 256
"""Copies and removals in one pass; the next pass goes on with the rest."""

KEEP, PULL, ADD, DROP, REMOVE = "keep", "pull", "add", "drop", "remove"


class Plan(NamedTuple):
    """What this node does about one file, and how the file stands."""

    action: str
    wanted: list[str]
    under_replicated: bool
    misplaced: bool


def plan(me: str, holders: Collection[str], group: str, live: Collection[str], replicas: int, has_copy: bool) -> Plan:
    """This node's part in keeping a file on exactly its wanted holders (see the module's docstring).

    `live` are the storage nodes that are up (this node among them), `has_copy` whether this
    node's disk has the file.
    """
    wanted, _ = placement(live, group, replicas)
    live_holders = sum(1 for node in holders if node in live)
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
    """Keeps a pass's bytes under `rate` per second by sleeping when ahead of it."""

    __slots__ = ("_rate", "_sent", "_started")

    def __init__(self, rate: int):
        self._rate = rate
        self._sent = 0
        self._started = time.monotonic()

    def take(self, size: int) -> None:
        self._sent += size
        ahead = self._sent / self._rate - (time.monotonic() - self._started)
        if ahead > 0:
            time.sleep(ahead)


class Progress:
    """The figures the Admin API and /metrics show; counters since the supervisor started."""

    __slots__ = (
        "bytes_moved",
        "checked",
        "copied",
        "last_pass_finished",
        "last_pass_seconds",
        "misplaced",
        "passes",
        "removed",
        "running",
        "under_replicated",
    )

    def __init__(self) -> None:
        self.running = False
        self.passes = self.checked = self.copied = self.removed = self.bytes_moved = 0
        self.under_replicated = self.misplaced = 0
        self.last_pass_finished: int | None = None
        """Epoch milliseconds."""
        self.last_pass_seconds: float | None = None

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Repairer:
    """Passes over every placed file, every `interval` seconds, by this storage node."""

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
        self.progress = Progress()

    async def run(self, ready: Callable[[], bool]) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not ready():
                continue
            try:
                await asyncio.to_thread(self.repair_pass)
            except asyncio.CancelledError:
                raise
            except Exception:
                # NOTE: a task's exception is otherwise silent until the loop ends.
                log.exception("repair pass failed; the next one starts in %s s", self._interval)

    def _live_nodes(self) -> dict[str, str] | None:
        """The storage nodes that are up, by id (their internal endpoints); None when this
        node has not registered as one yet."""
        storage = [node for node in self._reader.nodes.all() if node["role"] in STORAGE_ROLES]
        if not any(node["id"] == self._me for node in storage):
            return None
        return {node["id"]: node["admin"] for node in storage if node["id"] == self._me or self._is_live(node)}

    def _placed_files(self):
        """(bucket, placed file) of every bucket, read a page (one read transaction) at a time."""
        for bucket in self._reader.list_buckets():
            for source in SOURCES:
                after = None
                while True:
                    page, after = self._reader.holders.page(bucket["name"], source, after, PAGE_SIZE)
                    for placed in page:
                        yield bucket["name"], placed
                    if after is None:
                        break

    def repair_pass(self) -> None:
        """One pass over every bucket's placed files (see the module's docstring)."""
        live = self._live_nodes()
        if live is None:
            return
        progress = self.progress
        progress.running = True
        started = time.monotonic()
        pace = Pace(self._bandwidth)
        under = misplaced = transfers = 0
        try:
            for bucket, placed in self._placed_files():
                if transfers == MAX_TRANSFERS:
                    break
                judged = self._repair(bucket, placed, live, pace)
                progress.checked += 1
                under += judged.under_replicated
                misplaced += judged.misplaced
                transfers += judged.action != KEEP
        finally:
            progress.running = False
        progress.passes += 1
        progress.under_replicated, progress.misplaced = under, misplaced
        progress.last_pass_finished = int(time.time() * 1000)
        progress.last_pass_seconds = time.monotonic() - started

    def _repair(self, bucket: str, placed: Placed, live: dict[str, str], pace: Pace) -> Plan:
        directory = self._store.file_dir(bucket, key_hash(placed.key))
        has_copy = os.path.exists(os.path.join(directory, placed.file))
        judged = plan(self._me, placed.holders, placed.group, live, self._replicas, has_copy)
        try:
            if judged.action == PULL:
                sources = [live[node] for node in placed.holders if node != self._me and node in live]
                if not sources:
                    log.warning("no live holder of %s/%s to copy it from", bucket, placed.file)
                    return judged._replace(action=KEEP)
                self._pull(bucket, placed, directory, sources, pace)
            if judged.action in (PULL, ADD):
                self._record(bucket, placed, directory, {"add": self._me})
            elif judged.action == DROP:
                # The wanted nodes are counted on only when there is a copy here to give up.
                change = {"drop": self._me, "require": judged.wanted if has_copy else []}
                if self._record(bucket, placed, directory, change) and has_copy:
                    self._remove(directory, placed.file)
            elif judged.action == REMOVE:
                self._remove(directory, placed.file)
        except (PeerError, OSError, EOFError) as exc:
            log.warning("repairing %s/%s (%s) failed: %s", bucket, placed.key, placed.file, exc)
        return judged

    def _pull(self, bucket: str, placed: Placed, directory: str, sources: list[str], pace: Pace) -> None:
        """Copy a file from the first holder that answers: temp/, fsync, rename, fsync the directory."""
        temp = self._store.new_temp()
        stream = None
        try:
            stream = HolderStream(self._peers, sources, (bucket, key_hash(placed.key), placed.file), 0, placed.size)
            while chunk := stream.read(READ_CHUNK):
                temp.write(chunk)
                pace.take(len(chunk))
            temp.commit_to(directory, placed.file)
        except BaseException:
            temp.abort()
            raise
        finally:
            if stream is not None:
                stream.close()
        self.progress.copied += 1
        self.progress.bytes_moved += placed.size

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
        self.progress.removed += 1
