"""Images of the metadata replica: taken at one raft index, installed into a live replica.

When raft compacts its log, a member too far behind receives an image of the leader's replica
instead of the entries it missed; a member whose newest LMDB commits were lost catches up from
its own. An image is a compacted LMDB data file written from one read transaction, so it holds
exactly the state of the moment that transaction began, whatever is applied meanwhile.

Workers keep the environment mapped in other processes, so its files are never swapped under
them: an image is loaded into the live environment in one write transaction (every named
database emptied and refilled), and a reader sees either the old replica or the new one.
"""

from __future__ import annotations

import lmdb

from nebulaio.meta.env import APPLIED_KEY, DATABASES, MAX_DBS, SYSTEM_DB, read_applied
from nebulaio.meta.records import SYSTEM


class FrozenReplica:
    """The replica as of the moment this was made, held until its image is written."""

    __slots__ = ("_env", "_txn")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._txn = env.begin()

    def write(self, fd: int) -> None:
        """Write the image to `fd`; from any one thread, while the writer keeps applying.

        NOTE: py-lmdb opens environments with MDB_NOTLS, so a read transaction begun in one
        thread may be used in another; the copy releases the GIL.
        """
        self._env.copyfd(fd, compact=True, txn=self._txn)

    def close(self) -> None:
        """Let go of the moment (its pages can be reused once no reader needs them)."""
        self._txn.abort()


class ReplicaImages:
    """Freezing and installing images of one environment (the writer's)."""

    __slots__ = ("_env", "_system")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._system = env.open_db(SYSTEM_DB, create=False)

    def applied_index(self) -> int:
        with self._env.begin(db=self._system) as txn:
            return read_applied(txn, self._system)

    def freeze(self) -> FrozenReplica:
        return FrozenReplica(self._env)

    def install(self, image_path: str, raft_index: int) -> None:
        """Make the replica the image's content, as applied up to `raft_index`, in one transaction.

        The index is recorded even when the image's own is lower: the entries between (no-ops,
        membership changes) changed nothing in LMDB, and a replay must not apply them twice.
        """
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
                target.put(APPLIED_KEY, SYSTEM.encode({"index": raft_index}), db=self._system)
        finally:
            image.close()
        self._env.sync(True)

    def reset(self) -> None:
        """Empty the replica, as applied up to no raft index, in one transaction: for a replica
        that can no longer be trusted, rebuilt from the raft log like a new member's."""
        with self._env.begin(write=True) as txn:
            for name in DATABASES:
                txn.drop(self._env.open_db(name, txn=txn), delete=False)
        self._env.sync(True)
