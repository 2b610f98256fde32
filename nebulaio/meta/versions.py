"""Object versions in the replica: noncurrent versions and delete markers.

The `objects` database keeps each key's current version (never a delete marker), so GET and
ListObjects never look at history. Everything else a versioned bucket keeps lives here:

    versions   bucket \\0 xxh3_128(key) inverted(seq)   -> OBJECT record (+ inline bytes),
                                                          or a delete marker record
    vkeys      bucket \\0 key suffix (as in `objects`)   -> {"key"}: the keys that have any

A key's versions share one fixed-length prefix (a key may hold any byte, \\0 included, so a
prefix of the key itself could not be told apart from a longer key's). `seq` is fixed at
apply time from the raft index, the same on every replica, and grows with every version
written, so a key's versions are walked newest first. A version id is `seq` in hex;
versions written while versioning was off or suspended are the `null` version.
`vkeys` holds the keys in S3 order for ListObjectVersions, which merges them with `objects`.

Invariant: when a key has no current version but has versions here, the newest is a delete
marker (deleting the versions above an object version makes that one current again).
"""

from __future__ import annotations

import struct

import lmdb
import xxhash

from nebulaio.meta.env import VERSIONS_DB, VKEYS_DB
from nebulaio.meta.keys import bucket_entries, bucket_prefix
from nebulaio.meta.records import OBJECT

NULL_VERSION = "null"
BATCH_SEQ_BITS = 20
"""seq = raft index << BATCH_SEQ_BITS | position of the version within its entry."""
_INVERTED = struct.Struct(">Q")
_MAX_SEQ = (1 << 64) - 1
_VERSION_ID_LENGTH = 16


def format_version(seq: int) -> str:
    return f"{seq:016x}"


def parse_version(text: str) -> int | None:
    """The seq of a version id, or None when `text` cannot be one (`null` included)."""
    if len(text) != _VERSION_ID_LENGTH:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def is_valid_version(text: str) -> bool:
    return text == NULL_VERSION or parse_version(text) is not None


def version_of(record: dict) -> str:
    """The public version id of a stored version."""
    return record.get("version") or NULL_VERSION


def versions_prefix(bucket: str, key: str) -> bytes:
    return bucket_prefix(bucket) + xxhash.xxh3_128_digest(key.encode())


def version_key(bucket: str, key: str, seq: int) -> bytes:
    return versions_prefix(bucket, key) + _INVERTED.pack(_MAX_SEQ - seq)


def history_of(lmdb_key: bytes) -> bytes:
    """The prefix an entry shares with every other entry of its key's history."""
    return lmdb_key[: -_INVERTED.size]


def open_version_databases(env: lmdb.Environment) -> tuple[lmdb._Database, lmdb._Database]:
    return env.open_db(VERSIONS_DB, create=False), env.open_db(VKEYS_DB, create=False)


class Versions:
    """Reads and writes of one key's history inside a transaction (read-only or the applier's)."""

    __slots__ = ("_versions", "_vkeys")

    def __init__(self, env: lmdb.Environment) -> None:
        self._versions, self._vkeys = open_version_databases(env)

    def history(self, txn: lmdb.Transaction, bucket: str, key: str) -> list[tuple[bytes, bytes]]:
        """The key's noncurrent versions and delete markers, newest first, as (LMDB key, value)."""
        prefix = versions_prefix(bucket, key)
        cursor = txn.cursor(db=self._versions)
        found = []
        if cursor.set_range(prefix):
            for lmdb_key, value in cursor.iternext():
                if not lmdb_key.startswith(prefix):
                    break
                found.append((lmdb_key, value))
        return found

    def newest(self, txn: lmdb.Transaction, bucket: str, key: str) -> tuple[bytes, bytes] | None:
        prefix = versions_prefix(bucket, key)
        cursor = txn.cursor(db=self._versions)
        if cursor.set_range(prefix) and cursor.key().startswith(prefix):
            return cursor.key(), cursor.value()
        return None

    def find(self, txn: lmdb.Transaction, bucket: str, key: str, version: str) -> tuple[bytes, bytes] | None:
        """A noncurrent version or delete marker by its id, as (LMDB key, value)."""
        seq = parse_version(version)
        if seq is not None:
            lmdb_key = version_key(bucket, key, seq)
            value = txn.get(lmdb_key, db=self._versions)
            return None if value is None else (lmdb_key, value)
        if version != NULL_VERSION:
            return None
        for lmdb_key, value in self.history(txn, bucket, key):
            if version_of(OBJECT.decode_header(value)) == NULL_VERSION:
                return lmdb_key, value
        return None

    def has_any(self, txn: lmdb.Transaction, bucket: str) -> bool:
        prefix = bucket_prefix(bucket)
        cursor = txn.cursor(db=self._vkeys)
        return cursor.set_range(prefix) and cursor.key().startswith(prefix)

    def keys_cursor(self, txn: lmdb.Transaction) -> lmdb.Cursor:
        return txn.cursor(db=self._vkeys)

    def entries(self, txn: lmdb.Transaction, bucket: str, after: bytes | None = None):
        """The bucket's stored versions as (LMDB key, value), key by key, each key's newest
        first, from just after the LMDB key `after` (which need no longer exist) on."""
        return bucket_entries(txn.cursor(db=self._versions), bucket, after)

    def newer_than(self, txn: lmdb.Transaction, lmdb_key: bytes, limit: int) -> int:
        """How many entries of the same key's history are newer than `lmdb_key`, counted up to `limit`."""
        cursor = txn.cursor(db=self._versions)
        cursor.set_range(history_of(lmdb_key))
        count = 0
        for found in cursor.iternext(values=False):
            if found == lmdb_key or count == limit:
                break
            count += 1
        return count

    def has_older(self, txn: lmdb.Transaction, lmdb_key: bytes) -> bool:
        """Whether the same key's history holds an entry older than `lmdb_key` (which exists)."""
        cursor = txn.cursor(db=self._versions)
        return cursor.set_key(lmdb_key) and cursor.next() and cursor.key().startswith(history_of(lmdb_key))

    # -- writes (the applier's transaction) ------------------------------------------------

    def add(self, txn: lmdb.Transaction, bucket: str, record: dict, value: bytes, object_lmdb_key: bytes) -> None:
        """Keep a version (or a delete marker) as noncurrent history."""
        txn.put(version_key(bucket, record["key"], record.get("seq", 0)), value, db=self._versions)
        txn.put(object_lmdb_key, OBJECT.encode({"key": record["key"]}), db=self._vkeys, overwrite=True)

    def rewrite(self, txn: lmdb.Transaction, lmdb_key: bytes, value: bytes) -> None:
        txn.put(lmdb_key, value, db=self._versions)

    def remove(self, txn: lmdb.Transaction, bucket: str, key: str, lmdb_key: bytes, object_lmdb_key: bytes) -> None:
        txn.delete(lmdb_key, db=self._versions)
        if self.newest(txn, bucket, key) is None:
            txn.delete(object_lmdb_key, db=self._vkeys)
