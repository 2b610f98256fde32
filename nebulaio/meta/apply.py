"""Deterministic apply of committed command batches: the replica's only writer.

Every node applies the same raft log, so a command's outcome must follow from the replica's
state alone: the proposer has already fixed timestamps and version ids. A batch is one write
transaction that also stores its raft index, which makes replaying the journal after a crash
a no-op for everything already applied.

NOTE: each handler validates and reads before its first write, so a command that fails
(a result code, or a malformed command) leaves nothing behind and never disturbs the others
in its batch. Apply never raises for a bad command: a raising apply would wedge the log.
"""

import logging
from collections.abc import Callable

import lmdb

from nebulaio.meta.env import APPLIED_KEY, open_databases, read_applied
from nebulaio.meta.keys import bucket_prefix, object_key
from nebulaio.meta.records import BUCKET, OBJECT, SYSTEM
from nebulaio.meta.uploads import UploadCommands

log = logging.getLogger(__name__)

Command = tuple[dict, bytes | None]
Release = Callable[[str, str, str], None]
"""release(bucket, key, vid): a file-backed version is no longer referenced."""


class _Batch:
    """State of one batch's write transaction."""

    __slots__ = ("released", "txn")

    def __init__(self, txn: lmdb.Transaction) -> None:
        self.txn = txn
        self.released: list[tuple[str, str, str]] = []


class Applier:
    """Applies committed batches to the replica and releases the object bytes they orphan."""

    __slots__ = ("_buckets", "_env", "_handlers", "_objects", "_release", "_system", "_uploads")

    def __init__(self, env: lmdb.Environment, release: Release) -> None:
        self._env = env
        self._release = release
        self._buckets, self._objects, self._system = open_databases(env)
        self._uploads = UploadCommands(env, self._buckets, self._object_put)
        self._handlers: dict[str, Callable[[_Batch, dict, bytes | None], dict]] = {
            "bucket.create": self._bucket_create,
            "bucket.delete": self._bucket_delete,
            "bucket.configure": self._bucket_configure,
            "object.put": self._object_put,
            "object.delete": self._object_delete,
            "object.delete_many": self._object_delete_many,
            "object.update": self._object_update,
            **self._uploads.handlers(),
        }

    def apply_batch(self, raft_index: int, commands: list[Command]) -> list[dict] | None:
        """Apply one raft entry; None when it was already applied (a replay after restart)."""
        with self._env.begin(write=True) as txn:
            if raft_index <= read_applied(txn, self._system):
                txn.abort()
                return None
            batch = _Batch(txn)
            results = [self._apply_one(batch, command, blob) for command, blob in commands]
            txn.put(APPLIED_KEY, SYSTEM.encode({"index": raft_index}), db=self._system)
        for bucket, key, vid in batch.released:
            try:
                self._release(bucket, key, vid)
            except Exception:
                log.exception("release of %s/%s version %s failed", bucket, key, vid)
        return results

    def _apply_one(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        try:
            handler = self._handlers.get(command["op"])
            if handler is None:
                log.error("unknown command %r", command.get("op"))
                return {"status": "InvalidRequest"}
            return handler(batch, command, blob)
        except lmdb.Error:
            raise  # the environment itself failed: the batch cannot commit
        except Exception:
            log.exception("malformed command %r", command)
            return {"status": "InvalidRequest"}

    def _bucket_create(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        name = command["bucket"]
        record = {
            "name": name,
            "owner": command["owner"],
            "created": command["created"],
            "region": command["region"],
            "versioning": None,
        }
        if "\0" in name:  # the keyspace separates bucket and key with \0
            return {"status": "InvalidBucketName"}
        existing = batch.txn.get(name.encode(), db=self._buckets)
        if existing is not None:
            if BUCKET.decode_header(existing)["owner"] == record["owner"]:
                return {"status": "BucketAlreadyOwnedByYou"}
            return {"status": "BucketAlreadyExists"}
        batch.txn.put(name.encode(), BUCKET.encode(record), db=self._buckets)
        return {"status": "ok"}

    def _bucket_delete(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        name = command["bucket"]
        if batch.txn.get(name.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        cursor = batch.txn.cursor(db=self._objects)
        prefix = bucket_prefix(name)
        if cursor.set_range(prefix) and cursor.key().startswith(prefix):
            return {"status": "BucketNotEmpty"}
        # NOTE: S3 deletes a bucket whose only content is open multipart uploads, with them.
        self._uploads.abort_all(batch, name)
        batch.txn.delete(name.encode(), db=self._buckets)
        return {"status": "ok"}

    def _bucket_configure(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """Set (or with a None value, remove) one of a bucket's settings."""
        name, setting, value = command["bucket"], command["setting"], command["value"]
        if setting not in BUCKET_SETTINGS:
            log.error("bucket.configure of unknown setting %r", setting)
            return {"status": "InvalidRequest"}
        stored = batch.txn.get(name.encode(), db=self._buckets)
        if stored is None:
            return {"status": "NoSuchBucket"}
        record = BUCKET.decode_header(stored)
        refusal = BUCKET_SETTINGS[setting](record, value)
        if refusal is not None:
            return {"status": refusal}
        if value is None:
            record.pop(setting, None)
        else:
            record[setting] = value
        batch.txn.put(name.encode(), BUCKET.encode(record), db=self._buckets)
        return {"status": "ok"}

    def _object_update(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """Change fields of a stored version in place (tags, retention, legal hold): not a new version.

        A field set to None is removed.
        """
        bucket, key = command["bucket"], command["key"]
        if batch.txn.get(bucket.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        lmdb_key = object_key(bucket, key)
        stored = batch.txn.get(lmdb_key, db=self._objects)
        if stored is None:
            return {"status": "NoSuchKey"}
        record, inline = OBJECT.decode(stored)
        for field, value in command["changes"].items():
            if value is None:
                record.pop(field, None)
            else:
                record[field] = value
        batch.txn.put(lmdb_key, OBJECT.encode(record, inline), db=self._objects)
        return {"status": "ok"}

    def _object_put(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        bucket, record = command["bucket"], command["record"]
        inline = record["inline"]
        if blob is not None and not inline:
            log.error("object.put of %s/%s carries bytes but is not inline", bucket, record["key"])
            return {"status": "InvalidRequest"}
        if batch.txn.get(bucket.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        value = OBJECT.encode(record, blob or b"")
        lmdb_key = object_key(bucket, record["key"])
        failure = self._write_condition_failure(batch, lmdb_key, command.get("condition"), record["vid"])
        if failure is not None:
            return {"status": failure}
        replaced = self._forget_current(batch, bucket, lmdb_key, keep_vid=record["vid"])
        batch.txn.put(lmdb_key, value, db=self._objects)
        return {"status": "ok", "replaced": replaced}

    def _object_delete(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """Delete the current version; with "if_vid", only while that is still the current one
        (a background expiry must not delete a version written after it looked)."""
        bucket, key = command["bucket"], command["key"]
        if batch.txn.get(bucket.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        lmdb_key = object_key(bucket, key)
        expected = command.get("if_vid")
        if expected is not None and self._current_vid(batch, lmdb_key) != expected:
            return {"status": "PreconditionFailed"}
        removed = self._forget_current(batch, bucket, lmdb_key, keep_vid=None)
        if removed is not None:
            batch.txn.delete(lmdb_key, db=self._objects)
        return {"status": "ok", "removed": removed}

    def _current_vid(self, batch: _Batch, lmdb_key: bytes) -> str | None:
        value = batch.txn.get(lmdb_key, db=self._objects)
        return None if value is None else OBJECT.decode_header(value)["vid"]

    def _object_delete_many(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """DeleteObjects: every key of one request in one command, so one raft entry."""
        bucket = command["bucket"]
        if batch.txn.get(bucket.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        removed = []
        for key in command["keys"]:
            lmdb_key = object_key(bucket, key)
            vid = self._forget_current(batch, bucket, lmdb_key, keep_vid=None)
            if vid is not None:
                batch.txn.delete(lmdb_key, db=self._objects)
            removed.append(vid)
        return {"status": "ok", "removed": removed}

    def _write_condition_failure(self, batch: _Batch, lmdb_key: bytes, condition: dict | None, vid: str) -> str | None:
        """The result code of a conditional write that must not land, else None.

        Decided here, on the state the write lands on, so of two racing writers with
        If-None-Match: * exactly one wins. A replay of the write that is already current
        (a timed-out proposal committed twice) succeeds again rather than failing its own test.
        """
        if not condition:
            return None
        value = batch.txn.get(lmdb_key, db=self._objects)
        current = None if value is None else OBJECT.decode_header(value)
        if current is not None and current["vid"] == vid:
            return None
        return write_condition_failure(current, condition)

    def _forget_current(self, batch: _Batch, bucket: str, lmdb_key: bytes, keep_vid: str | None) -> str | None:
        """The current version's id, queueing its bytes for release unless it is `keep_vid`.

        A put of the version that is already current (the same command committed twice after
        a timed-out proposal) replaces nothing and must not release the bytes it points at.
        """
        value = batch.txn.get(lmdb_key, db=self._objects)
        if value is None:
            return None
        current = OBJECT.decode_header(value)
        vid = current["vid"]
        if vid == keep_vid:
            return None
        if not current["inline"]:
            batch.released.append((bucket, current["key"], vid))
        return vid


def _any_value(record: dict, value) -> str | None:
    return None


BUCKET_SETTINGS: dict[str, Callable[[dict, object], str | None]] = {
    "cors": _any_value,
    "tagging": _any_value,
    "lifecycle": _any_value,
}
"""The bucket settings bucket.configure may change, each with its rule: (bucket record,
new value) -> the result code refusing the change, or None."""


def write_condition_failure(current: dict | None, condition: dict) -> str | None:
    """Whether a write's condition holds on the current record (None when absent).

    `condition` holds "if-none-match": "*" (the key must not exist) and/or "if-match": a bare
    ETag or "*" (the key must exist, with that ETag). Returns the result code S3 answers with.
    """
    if condition.get("if-none-match") is not None and current is not None:
        return "PreconditionFailed"
    expected = condition.get("if-match")
    if expected is not None:
        if current is None:
            return "NoSuchKey"
        if expected != "*" and expected != current["etag"]:
            return "PreconditionFailed"
    return None
