"""Where object bytes live: this node's disk alone, or R holders across a cluster.

The object layer hands a received body (a temp file, or a small one's bytes held in memory) to
`place` (which always consumes it), opens the bytes a record points to with `open`, has a
multipart object built from its parts by `assemble`, and gives up copies no record will point
to with `discard`. `place` and `assemble` return the fields a record keeps about where its
file is. A lone node (`LocalData`) keeps the single-node path: a rename into objects/, no
network hop, no copy, nothing to record, and small bodies inline in their records. In a
cluster (`ClusterData`) every body, whatever its size, goes to the holders `placement` picks,
this node included when it is one, and the record keeps them as "holders": the log carries
metadata only.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from nebulaio.cluster.peers import READ_CHUNK, HolderStream, PeerClient, PeerError, content_digest
from nebulaio.cluster.placement import STORAGE_ROLES, takes_copies, write_quorum, write_targets
from nebulaio.cluster.view import MemberView
from nebulaio.engine.errors import S3Error
from nebulaio.storage.integrity import HASH_FIELD, DamagedPart, FileChecks, bytes_digest
from nebulaio.storage.objects import FileRange, ObjectStore, TempObject, file_size, key_hash

log = logging.getLogger("nebulaio.dataplane")

TRANSFER_THREADS = 16
Observer = Callable[[memoryview | bytes], None]
Received = TempObject | bytes | bytearray
"""A received body: a temp file, or the bytes of a small one held in memory."""
DAMAGED_MESSAGE = "The object's stored bytes do not match their recorded checksum; no intact copy could be read."
DAMAGED_PART_MESSAGE = "A part's stored bytes do not match their recorded checksum; the upload cannot be completed."


class LocalBody:
    """A version's bytes in a file of this node, open (so a later removal does not cut it short)."""

    __slots__ = ("file",)

    def __init__(self, file):
        self.file = file

    def range(self, start: int, length: int) -> FileRange:
        return FileRange(self.file, start, length)

    def copy_to(self, temp: TempObject, start: int, length: int, observe: Observer | None = None) -> None:
        """Append a range to `temp` inside the kernel; `observe` sees it through a read-only map."""
        temp.copy_from(self.file.fileno(), start, length)
        if observe is not None and length:
            with mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                with memoryview(mapped)[start : start + length] as view:
                    observe(view)

    def close(self) -> None:
        self.file.close()


class RemoteBody:
    """A version's bytes on other nodes: each range is read from the first holder that answers
    and whose copy matches `expected`, the file's recorded digest."""

    __slots__ = ("_peers", "_addresses", "_file", "_expected")

    def __init__(self, peers: PeerClient, addresses: list[str], file: tuple[str, str, str], expected: str | None):
        self._peers = peers
        self._addresses = addresses
        self._file = file
        self._expected = expected

    def range(self, start: int, length: int) -> HolderStream:
        try:
            return HolderStream(self._peers, self._addresses, self._file, start, length, expected=self._expected)
        except PeerError as exc:
            log.warning("reading %s: %s", "/".join(self._file), exc)
            raise S3Error("ServiceUnavailable", "No holder of the object's bytes answered; retry.") from None

    def copy_to(self, temp: TempObject, start: int, length: int, observe: Observer | None = None) -> None:
        stream = self.range(start, length)
        try:
            while chunk := stream.read(READ_CHUNK):
                temp.write(chunk)
                if observe is not None:
                    observe(chunk)
        except PeerError as exc:
            log.warning("reading %s: %s", "/".join(self._file), exc)
            raise S3Error("ServiceUnavailable", "The holders of the object's bytes failed; retry.") from None
        finally:
            stream.close()

    def close(self) -> None:
        """Nothing is open until a range is read."""


def _digest(body: Received) -> str:
    return body.digest() if isinstance(body, TempObject) else bytes_digest(body)


def _damaged(bucket: str, key: str, name: str, location: dict) -> dict:
    """What a damaged file's report says: enough for the scrub to check and heal it."""
    return {
        "bucket": bucket,
        "hashed": key_hash(key),
        "file": name,
        "size": file_size(location),
        "holders": location.get("holders"),
        HASH_FIELD: location[HASH_FIELD],
    }


def _open_intact(store: ObjectStore, checks: FileChecks, bucket: str, key: str, name: str, location: dict):
    """This node's copy of file `name`, open, or None when it does not match its recorded digest
    (reported). FileNotFoundError when there is none."""
    file = store.open(bucket, key, name)
    expected = location.get(HASH_FIELD)
    try:
        if checks.intact(file.fileno(), expected, None if expected is None else _damaged(bucket, key, name, location)):
            return file
    except BaseException:
        file.close()
        raise
    file.close()
    return None


def _keep_here(store: ObjectStore, body: Received, bucket: str, key: str, name: str) -> None:
    """Make a received body this node's durable file `name`; bytes go through a temp file too."""
    if isinstance(body, TempObject):
        body.commit(bucket, key, name)
        return
    temp = store.new_temp()
    try:
        temp.write(body)
        temp.commit(bucket, key, name)
    except BaseException:
        temp.abort()
        raise


class LocalData:
    """Every byte on this node's disk: the single-node path.

    Small bodies stay inline in their records (`keeps_inline`): this node is their only
    holder, and the record's LMDB transaction, shared by a group commit, is made durable
    anyway, so a small PUT costs a share of one fsync instead of a file's, its directory's and
    the record's. The log that carries them has no follower to send them to, and they leave
    it at its next compaction; a node that grows into a cluster keeps serving them from the
    replica every member receives.
    """

    __slots__ = ("store", "_checks")
    keeps_inline = True

    def __init__(self, store: ObjectStore, checks: FileChecks):
        self.store = store
        self._checks = checks

    def place(self, body: Received, bucket: str, key: str, name: str, group: str) -> dict:
        """Make a received body durable as `name` (placed by `group`); returns the record's fields."""
        try:
            digest = _digest(body)
            _keep_here(self.store, body, bucket, key, name)
        finally:
            _release(body)
        return {HASH_FIELD: digest}

    def open(self, bucket: str, key: str, name: str, location: dict) -> LocalBody:
        """The bytes of file `name`, which `location` (its record) placed (FileNotFoundError if it
        was just replaced).

        Raises:
            S3Error: ServiceUnavailable when they do not match the recorded digest: a lone
                node has no other copy (the damage is reported and counted).
        """
        file = _open_intact(self.store, self._checks, bucket, key, name, location)
        if file is None:
            raise S3Error("ServiceUnavailable", DAMAGED_MESSAGE)
        return LocalBody(file)

    def assemble(self, bucket: str, key: str, name: str, parts: list[dict], group: str) -> dict:
        """Build file `name` from part records, in order; returns the record's fields.

        Raises:
            FileNotFoundError: a part's file is gone (uploaded again meanwhile).
        """
        try:
            return {HASH_FIELD: self.store.concatenate(self.store.version_dir(bucket, key), name, _part_files(parts))}
        except DamagedPart as exc:
            self._checks.report(_damaged_part(bucket, key, parts, exc))
            raise S3Error("ServiceUnavailable", DAMAGED_PART_MESSAGE) from None

    def discard(self, bucket: str, key: str, name: str, location: dict) -> None:
        """Remove the copies of a file no record will point to."""
        self.store.remove(bucket, key, name)


class ClusterData:
    """Bytes on the R storage nodes that rendezvous hashing picks; this node is one or not.

    Nothing is kept inline (`keeps_inline`): a small body goes to its holders as a large one
    does, so it is stored R times, not once in every replica, and never rides the log.
    """

    __slots__ = ("store", "_reader", "_view", "_node_id", "_replicas", "_peers", "_pool", "_checks")
    keeps_inline = False

    def __init__(
        self,
        store: ObjectStore,
        reader,
        view: MemberView,
        node_id: str,
        replicas: int,
        peers: PeerClient,
        checks: FileChecks,
    ):
        self.store = store
        self._checks = checks
        self._reader = reader
        self._view = view
        self._node_id = node_id
        self._replicas = replicas
        self._peers = peers
        self._pool = ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="transfer")

    def _addresses(self) -> dict[str, str]:
        """Every registered node's internal endpoint (its advertised admin address), by id."""
        return {node["id"]: node["internal"] for node in self._reader.nodes.all()}

    def _storage_nodes(self) -> dict[str, str]:
        """Every registered storage node's internal endpoint, by id, the dead included (they
        count towards R) and those being drained left out (they take no new copies)."""
        return {node["id"]: node["internal"] for node in self._reader.nodes.all() if takes_copies(node)}

    def holds_every_object(self) -> bool:
        """Whether this node is a storage node and R covers them all, so every object's bytes
        are on its disk (a copy missing until repair is read from a peer all the same)."""
        nodes = self._storage_nodes()
        return self._node_id in nodes and self._replicas >= len(nodes)

    def _on_holders(self, group: str, attempt: Callable[[str, str], None]) -> tuple[list[str], int]:
        """Run `attempt(node, address)` on the R holders of `group` in parallel, a failed holder
        replaced by the next node in rendezvous order; returns (nodes that succeeded, R).

        Nodes gossip has declared dead are not tried (a write does not wait for them to time
        out), but still count towards R (see `write_targets`).

        Raises:
            S3Error: ServiceUnavailable, before anything is written, when no storage node is
                registered or fewer than a write quorum of R are alive.
        """
        nodes = self._storage_nodes()
        wanted, chosen, spares = write_targets(nodes, self._view.dead(), group, self._replicas)
        if not wanted:
            raise S3Error("ServiceUnavailable", "No storage node has joined the cluster yet.")
        if len(chosen) < write_quorum(wanted):
            raise S3Error(
                "ServiceUnavailable",
                f"Only {len(chosen)} of the {wanted} storage nodes that would hold copies of the object are up,"
                f" {write_quorum(wanted)} are needed; retry.",
            )
        replacements = iter(spares)
        lock = threading.Lock()

        def run(node: str | None) -> str | None:
            while node is not None:
                try:
                    attempt(node, nodes[node])
                    return node
                except (PeerError, OSError, EOFError) as exc:
                    log.warning("node %s failed to take %s: %s", node, group, exc)
                with lock:
                    node = next(replacements, None)
            return None

        attempts = [self._pool.submit(run, node) for node in chosen]
        # NOTE: every attempt ends before any result is read, so none is still writing when
        # the caller gives up on the body.
        wait(attempts)
        done = [node for node in (future.result() for future in attempts) if node is not None]
        return done, wanted

    def _check_quorum(self, bucket: str, key: str, name: str, holders: list[str], wanted: int, digest: str) -> dict:
        """The record's fields once a write quorum holds the file; else its copies are removed."""
        location = {"holders": holders, HASH_FIELD: digest}
        if len(holders) < write_quorum(wanted):
            self.discard(bucket, key, name, location)
            raise S3Error(
                "ServiceUnavailable", f"Only {len(holders)} of {wanted} copies of the object could be stored; retry."
            )
        return location

    def place(self, body: Received, bucket: str, key: str, name: str, group: str) -> dict:
        """Store a received body on its holders, in parallel; done once a write quorum has it.

        A temp file is sent with sendfile from a descriptor of its own (this node's copy may
        be renamed into place meanwhile); bytes in memory are sent as they are. Either goes
        with its SHA-256, computed once, which each peer checks before keeping its copy.

        Raises:
            S3Error: ServiceUnavailable when fewer than a quorum could (their copies removed).
        """
        hashed = key_hash(key)
        source = os.open(body.path, os.O_RDONLY | os.O_CLOEXEC) if isinstance(body, TempObject) else None
        sent = body if source is None else (source, body.size)
        digest: list[str] = []
        digest_lock = threading.Lock()

        def store(node: str, address: str) -> None:
            if node == self._node_id:
                _keep_here(self.store, body, bucket, key, name)
                return
            with digest_lock:
                if not digest:
                    # NOTE: hashed once, before the first copy leaves, and only if one does.
                    digest.append(content_digest(sent))
            self._peers.store(address, bucket, hashed, name, sent, digest[0])

        try:
            file_digest = _digest(body)
            holders, wanted = self._on_holders(group, store)
        finally:
            if source is not None:
                os.close(source)
            _release(body)
        return self._check_quorum(bucket, key, name, holders, wanted, file_digest)

    def open(self, bucket: str, key: str, name: str, location: dict) -> LocalBody | RemoteBody:
        """Local bytes when this node holds them, else a reader of the other holders' copies.

        A record without holders was written while its node ran alone, and repair has not
        recorded its holders yet: that node is the one storage node with the bytes.
        """
        holders = location.get("holders")
        if holders is None:
            holders = [node["id"] for node in self._reader.nodes.all() if node["role"] in STORAGE_ROLES]
        if self._node_id in holders:
            try:
                file = _open_intact(self.store, self._checks, bucket, key, name, location)
                if file is not None:
                    return LocalBody(file)
            except FileNotFoundError:
                pass
        addresses = self._addresses()
        dead = self._view.dead()
        # Live holders first; a dead one is still tried last, gossip may be behind.
        ordered = sorted(holders, key=lambda node: node in dead)
        remote = [addresses[node] for node in ordered if node != self._node_id and node in addresses]
        return RemoteBody(self._peers, remote, (bucket, key_hash(key), name), location.get(HASH_FIELD))

    def assemble(self, bucket: str, key: str, name: str, parts: list[dict], group: str) -> dict:
        """Have every holder of the upload build the object from the parts it holds, in parallel."""
        hashed = key_hash(key)
        files = _part_files(parts)
        digests: list[str] = []
        digests_lock = threading.Lock()

        def assemble(node: str, address: str) -> None:
            if not all(node in part.get("holders", ()) for part in parts):
                raise PeerError(f"node {node} does not hold every part")
            if node == self._node_id:
                try:
                    digest = self.store.concatenate(self.store.file_dir(bucket, hashed), name, files)
                except DamagedPart as exc:
                    self._checks.report(_damaged_part(bucket, key, parts, exc))
                    raise PeerError(str(exc)) from None
            else:
                digest = self._peers.assemble(address, bucket, hashed, name, files)
            with digests_lock:
                digests.append(digest)
                if digest != digests[0]:
                    # NOTE: its copy is not recorded; the repair loop replaces or removes it.
                    raise PeerError(f"node {node} built other bytes than the first holder did")

        holders, wanted = self._on_holders(group, assemble)
        location = self._check_quorum(bucket, key, name, holders, wanted, digests[0] if digests else "")
        # NOTE: placed by the upload, not by its own name: the repair loop ranks nodes by this.
        return dict(location, placed_by=group)

    def discard(self, bucket: str, key: str, name: str, location: dict) -> None:
        """Remove the copies of a file no record will point to; a holder that cannot be reached
        keeps its copy until its start-up sweep."""
        addresses = self._addresses()
        for node in location.get("holders", ()):
            try:
                if node == self._node_id:
                    self.store.remove(bucket, key, name)
                else:
                    self._peers.remove(addresses[node], bucket, key_hash(key), name)
            except (PeerError, OSError, KeyError) as exc:
                log.warning("removing %s/%s from node %s failed: %s", bucket, name, node, exc)


def _release(body: Received) -> None:
    """Give up what is left of a received body: a temp file not renamed into place is removed
    (one that was has moved, and nothing is left of it)."""
    if isinstance(body, TempObject):
        body.abort()


def _part_files(parts: list[dict]) -> list[tuple[str, int, str | None]]:
    return [(part["file"], file_size(part), part.get(HASH_FIELD)) for part in parts]


def _damaged_part(bucket: str, key: str, parts: list[dict], damaged: DamagedPart) -> dict:
    """The report of a part file found damaged while an object was built from it."""
    part = next(part for part in parts if part["file"] == damaged.part)
    return _damaged(bucket, key, part["file"], part)
