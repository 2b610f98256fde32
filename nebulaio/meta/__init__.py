"""The metadata model over LMDB: the only package that imports lmdb.

- `keys`: how bucket and object names become LMDB keys in exact S3 order.
- `records`: versioned values and their migration chains.
- `env`: opening the environment (one writer, many read-only workers after fork).
- `apply`: deterministic apply of committed command batches (the supervisor's writer).
- `reader`: point reads and listings for workers.
- `snapshot`: images of the replica, for members that catch up past raft's compacted log.
"""

from nebulaio.meta.apply import Applier
from nebulaio.meta.env import applied_index, open_env, reader_check
from nebulaio.meta.reader import ListPage, MetaReader
from nebulaio.meta.snapshot import ImageShelf, ReplicaImages

__all__ = [
    "Applier",
    "ListPage",
    "MetaReader",
    "ImageShelf",
    "ReplicaImages",
    "applied_index",
    "open_env",
    "reader_check",
]
