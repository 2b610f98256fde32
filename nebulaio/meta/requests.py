"""Commands already applied, by request id: a retried command answers what it answered first.

The worker that proposes a command fixes its "request_id" and "requested" (epoch ms) and
retries a command raft did not confirm in time with the same id. Apply records each id's
result in the same transaction as the change, and a command whose id is recorded changes
nothing and answers the recorded result. A completed multipart upload is kept the same way
under its upload id: a client that retries CompleteMultipartUpload sends a new request, but
the same upload id.

    requests       name -> REQUEST record {"at", and what was recorded}
    request_ages   at (u64, big-endian ms) + name -> b"" (oldest first, for pruning)

Entries older than RETENTION_MS (measured from the newest command's time, so every replica
prunes alike) go, and never more than MAX_REQUESTS stay; each recording prunes at most
PRUNE_PER_RECORD of them, so apply stays short and the table still shrinks faster than it grows.
"""

from __future__ import annotations

import struct

import lmdb

from nebulaio.meta.env import REQUEST_AGES_DB, REQUESTS_DB
from nebulaio.meta.records import REQUEST

RETENTION_MS = 10 * 60 * 1000
MAX_REQUESTS = 200_000
PRUNE_PER_RECORD = 4
_AT = struct.Struct(">Q")
COMMAND_PREFIX = "command:"
UPLOAD_PREFIX = "upload:"
"""Names of a command's request id and of a completed upload's id in one keyspace."""


class RequestTable:
    """The bounded table of recorded results; read by the applier and by workers."""

    __slots__ = ("_ages", "_env", "_requests")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._requests = env.open_db(REQUESTS_DB, create=False)
        self._ages = env.open_db(REQUEST_AGES_DB, create=False)

    def recall(self, txn: lmdb.Transaction, name: str) -> dict | None:
        """What was recorded under `name`, while it is kept."""
        value = txn.get(name.encode(), db=self._requests)
        return None if value is None else REQUEST.decode_header(value)

    def completed_upload(self, upload_id: str) -> dict | None:
        """A worker's look at the completion recorded for an upload (None when none is kept)."""
        with self._env.begin() as txn:
            return self.recall(txn, UPLOAD_PREFIX + upload_id)

    def record(self, txn: lmdb.Transaction, name: str, entry: dict, at: int) -> None:
        """Keep `entry` under `name`, then prune what is too old or too many."""
        key = name.encode()
        txn.put(key, REQUEST.encode({**entry, "at": at}), db=self._requests)
        txn.put(_AT.pack(at) + key, b"", db=self._ages)
        self._prune(txn, at - RETENTION_MS)

    def _prune(self, txn: lmdb.Transaction, cutoff: int) -> None:
        kept = txn.stat(self._requests)["entries"]
        cursor = txn.cursor(db=self._ages)
        pruned = 0
        while pruned < PRUNE_PER_RECORD and cursor.first():
            age_key = cursor.key()
            (at,) = _AT.unpack_from(age_key)
            if at >= cutoff and kept <= MAX_REQUESTS:
                return
            cursor.delete()
            txn.delete(age_key[_AT.size :], db=self._requests)
            kept -= 1
            pruned += 1
