"""Images of the metadata replica: made from one read transaction, installed into a live replica.

A member that needs entries the raft log no longer holds (a new member, a wiped disk, one too
far behind) fetches an image of a peer's replica over the internal endpoint instead. An image
is a compacted LMDB data file written from one read transaction, so it holds exactly the state
of the moment that transaction began, whatever is applied meanwhile; the raft index applied
in that state travels inside it (the system database).

Workers keep the environment mapped in other processes, so its files are never swapped under
them: an image is loaded into the live environment in one write transaction (every named
database emptied and refilled), and a reader sees either the old replica or the new one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time

import lmdb
import xxhash

from nebulaio.meta.env import DATABASES, MAX_DBS, SYSTEM_DB, read_applied

IMAGE_SUFFIX = ".mdb"
STALE_IMAGE = 3600.0
"""Seconds after which an image nobody removed (its fetcher gave up) is deleted."""
DIGEST_CHUNK = 1 << 20


class ImageBehind(Exception):
    """This replica has not applied the raft index an image was asked for."""

    def __init__(self, index: int):
        super().__init__(f"this replica has applied raft index {index} only")
        self.index = index


class FrozenReplica:
    """The replica as of the moment this was made, held until its image is written."""

    __slots__ = ("_env", "_txn", "index")

    def __init__(self, env: lmdb.Environment) -> None:
        system = env.open_db(SYSTEM_DB, create=False)
        self._env = env
        self._txn = env.begin()
        self.index = read_applied(self._txn, system)
        """The raft index of the last entry applied in this state."""

    def write(self, fd: int) -> None:
        """Write the image to `fd`; from any one thread, while the writer keeps applying.

        NOTE: py-lmdb opens environments with MDB_NOTLS, so a read transaction begun in one
        thread may be used in another; the copy releases the GIL.
        """
        self._env.copyfd(fd, compact=True, txn=self._txn)

    def close(self) -> None:
        """Let go of the moment (its pages can be reused once no reader needs them)."""
        self._txn.abort()


def image_digest(path: str) -> str:
    """The checksum an image is served and verified with: a fetched image is whole before LMDB maps it."""
    digest = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as image:
        while chunk := image.read(DIGEST_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ImageShelf:
    """Images of this replica written for peers that fetch them, by id, in as many pieces as
    their connections need: a transfer that breaks resumes on the same bytes."""

    __slots__ = ("_env", "_directory")

    def __init__(self, env: lmdb.Environment, directory: str) -> None:
        self._env = env
        self._directory = directory

    def path(self, image_id: str) -> str:
        return os.path.join(self._directory, image_id + IMAGE_SUFFIX)

    def make(self, at_least: int) -> dict:
        """Write an image of the replica as it is now: {"id", "index", "size", "digest"}.

        Raises ImageBehind when the replica has not applied `at_least` yet.
        """
        self._remove_stale()
        image_id = secrets.token_hex(16)
        partial = os.path.join(self._directory, image_id + ".partial")
        frozen = FrozenReplica(self._env)
        with contextlib.closing(frozen):
            if frozen.index < at_least:
                raise ImageBehind(frozen.index)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                frozen.write(fd)
                size = os.fstat(fd).st_size
            except BaseException:
                os.unlink(partial)
                raise
            finally:
                os.close(fd)
        os.rename(partial, self.path(image_id))
        return {"id": image_id, "index": frozen.index, "size": size, "digest": image_digest(self.path(image_id))}

    def remove(self, image_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(image_id))

    def _remove_stale(self) -> None:
        """Images are made only while a member catches up: a look at the directory then is enough."""
        limit = time.time() - STALE_IMAGE
        for entry in os.scandir(self._directory):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < limit:
                    os.unlink(entry.path)


class ReplicaImages:
    """What raft needs of the writer's environment to compact its log and to catch up."""

    __slots__ = ("_env", "_system")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._system = env.open_db(SYSTEM_DB, create=False)

    def applied_index(self) -> int:
        with self._env.begin(db=self._system) as txn:
            return read_applied(txn, self._system)

    def sync(self) -> None:
        """Make every commit durable: the writer commits without syncing LMDB's meta page."""
        self._env.sync(True)

    def install(self, image_path: str) -> int:
        """Make the replica the image's content in one transaction; the raft index it is applied up to."""
        image = lmdb.open(image_path, subdir=False, readonly=True, lock=False, max_dbs=MAX_DBS)
        try:
            with image.begin() as source, self._env.begin(write=True) as target:
                for name in DATABASES:
                    live = self._env.open_db(name, txn=target)
                    target.drop(live, delete=False)
                    try:
                        kept = image.open_db(name, txn=source, create=False)
                    except lmdb.NotFoundError:
                        continue  # the image predates this database: it was empty then
                    # PERF: keys arrive sorted into an empty database, so each put appends.
                    target.cursor(db=live).putmulti(source.cursor(db=kept).iternext(), append=True)
                index = read_applied(target, self._system)
        finally:
            image.close()
        self._env.sync(True)
        return index

    def reset(self) -> None:
        """Empty the replica, as applied up to no raft index, in one transaction: for a replica
        that can no longer be trusted, rebuilt from the raft log like a new member's."""
        with self._env.begin(write=True) as txn:
            for name in DATABASES:
                txn.drop(self._env.open_db(name, txn=txn), delete=False)
        self._env.sync(True)
