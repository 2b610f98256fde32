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

from nebulaio.meta.env import APPLIED_KEY, STATS_DB, open_databases, raise_token_generation, read_applied
from nebulaio.meta.holders import Holders
from nebulaio.meta.iam import IamCommands
from nebulaio.meta.keys import bucket_prefix, object_key
from nebulaio.meta.kms import KmsCommands
from nebulaio.meta.nodes import Nodes
from nebulaio.meta.notify import Change, NotifyCommands
from nebulaio.meta.objectlock import default_retention, delete_refusal, retention_change_refusal, valid_rule
from nebulaio.meta.records import BUCKET, OBJECT, STATS, SYSTEM
from nebulaio.meta.requests import COMMAND_PREFIX, RequestTable
from nebulaio.meta.uploads import UploadCommands
from nebulaio.meta.versions import (
    BATCH_SEQ_BITS,
    NULL_VERSION,
    Versions,
    format_version,
    version_of,
)

log = logging.getLogger(__name__)

Command = tuple[dict, bytes | None]
Release = Callable[[str, str, str], None]
"""release(bucket, key, vid): a file-backed version is no longer referenced."""


class _Batch:
    """State of one batch's write transaction."""

    __slots__ = ("events_queued", "raft_index", "released", "txn", "versions_written")

    def __init__(self, txn: lmdb.Transaction, raft_index: int) -> None:
        self.txn = txn
        self.raft_index = raft_index
        self.released: list[tuple[str, str, str]] = []
        self.versions_written = 0
        self.events_queued = 0

    def next_seq(self) -> int:
        """The seq of a version written by this batch: the same on every replica, and growing."""
        self.versions_written += 1
        return (self.raft_index << BATCH_SEQ_BITS) | self.versions_written


class Applier:
    """Applies committed batches to the replica and releases the object bytes they orphan."""

    __slots__ = (
        "_buckets",
        "_env",
        "_handlers",
        "_notify",
        "_objects",
        "_release",
        "_requests",
        "_stats",
        "_system",
        "_uploads",
        "_versions",
    )

    def __init__(self, env: lmdb.Environment, release: Release) -> None:
        self._env = env
        self._release = release
        self._buckets, self._objects, self._system = open_databases(env)
        self._stats = env.open_db(STATS_DB, create=False)
        self._requests = RequestTable(env)
        self._uploads = UploadCommands(env, self._buckets, self._object_put, self._requests)
        self._versions = Versions(env)
        self._notify = NotifyCommands(env)
        self._handlers: dict[str, Callable[[_Batch, dict, bytes | None], dict]] = {
            "bucket.create": self._bucket_create,
            "bucket.delete": self._bucket_delete,
            "bucket.configure": self._bucket_configure,
            "object.put": self._object_put,
            "object.delete": self._object_delete,
            "object.delete_many": self._object_delete_many,
            "object.update": self._object_update,
            "auth.revoke": self._auth_revoke,
            **self._uploads.handlers(),
            **Nodes(env).handlers(),
            **Holders(env).handlers(),
            **KmsCommands(env).handlers(),
            **IamCommands(env, self._system).handlers(),
            **self._notify.handlers(),
        }
        self._count_uncounted_buckets()

    def _count_uncounted_buckets(self) -> None:
        """Give every bucket that has no counters yet (a replica older than them) its counters.

        NOTE: derived from the replica's state alone, so every replica arrives at the same ones.
        """
        with self._env.begin(write=True) as txn:
            names = list(txn.cursor(db=self._buckets).iternext(values=False))
            for name in names:
                if txn.get(name, db=self._stats) is not None:
                    continue
                prefix = bucket_prefix(name.decode())
                objects = size = 0
                cursor = txn.cursor(db=self._objects)
                if cursor.set_range(prefix):
                    for key, value in cursor:
                        if not key.startswith(prefix):
                            break
                        objects += 1
                        size += OBJECT.decode_header(value)["size"]
                txn.put(name, STATS.encode({"objects": objects, "bytes": size}), db=self._stats)

    def _count(self, batch: _Batch, bucket: str, objects: int, size: int) -> None:
        """Move a bucket's counters by a change of its current versions."""
        name = bucket.encode()
        stored = batch.txn.get(name, db=self._stats)
        stats = STATS.decode_header(stored) if stored is not None else {"objects": 0, "bytes": 0}
        stats["objects"] += objects
        stats["bytes"] += size
        batch.txn.put(name, STATS.encode(stats), db=self._stats)

    def _announce(self, batch: _Batch, bucket: str | dict, change: Change) -> None:
        """Queue the events a change owes the bucket's notification targets, in the change's transaction."""
        record = self._bucket(batch, bucket) if isinstance(bucket, str) else bucket
        if record is not None and record.get("notification"):
            batch.events_queued = self._notify.queue(batch.txn, record, change, batch.raft_index, batch.events_queued)

    def apply_batch(self, raft_index: int, commands: list[Command]) -> list[dict] | None:
        """Apply one raft entry; None when it was already applied (a replay after restart)."""
        with self._env.begin(write=True) as txn:
            if raft_index <= read_applied(txn, self._system):
                txn.abort()
                return None
            batch = _Batch(txn, raft_index)
            results = [self._apply_one(batch, command, blob) for command, blob in commands]
            txn.put(APPLIED_KEY, SYSTEM.encode({"index": raft_index}), db=self._system)
        for bucket, key, vid in batch.released:
            try:
                self._release(bucket, key, vid)
            except Exception:
                log.exception("release of %s/%s version %s failed", bucket, key, vid)
        return results

    def _apply_one(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """Apply one command; one whose request id is recorded answers the recorded result."""
        try:
            handler = self._handlers.get(command["op"])
            if handler is None:
                log.error("unknown command %r", command.get("op"))
                return {"status": "InvalidRequest"}
            request_id = command.get("request_id")
            if request_id is None:
                return handler(batch, command, blob)
            name, requested = COMMAND_PREFIX + request_id, command["requested"]
            recorded = self._requests.recall(batch.txn, name)
            if recorded is not None:
                return recorded["result"]
            result = handler(batch, command, blob)
            self._requests.record(batch.txn, name, {"result": result}, requested)
            return result
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
        if command.get("object_lock"):
            # A bucket created with object lock is versioned from its first moment.
            record.update(versioning=ENABLED, object_lock={"enabled": True})
        if command.get("acl") is not None:
            record["acl"] = command["acl"]
        for setting in CREATE_SETTINGS:
            if command.get(setting) is not None:
                record[setting] = command[setting]
        if "\0" in name:  # the keyspace separates bucket and key with \0
            return {"status": "InvalidBucketName"}
        existing = batch.txn.get(name.encode(), db=self._buckets)
        if existing is not None:
            if BUCKET.decode_header(existing)["owner"] == record["owner"]:
                return {"status": "BucketAlreadyOwnedByYou"}
            return {"status": "BucketAlreadyExists"}
        batch.txn.put(name.encode(), BUCKET.encode(record), db=self._buckets)
        batch.txn.put(name.encode(), STATS.encode({"objects": 0, "bytes": 0}), db=self._stats)
        return {"status": "ok"}

    def _bucket_delete(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        name = command["bucket"]
        if batch.txn.get(name.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        cursor = batch.txn.cursor(db=self._objects)
        prefix = bucket_prefix(name)
        if (cursor.set_range(prefix) and cursor.key().startswith(prefix)) or self._versions.has_any(batch.txn, name):
            return {"status": "BucketNotEmpty"}
        # NOTE: S3 deletes a bucket whose only content is open multipart uploads, with them.
        self._uploads.abort_all(batch, name)
        batch.txn.delete(name.encode(), db=self._buckets)
        batch.txn.delete(name.encode(), db=self._stats)
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

    def _auth_revoke(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """Revoke every Admin API token issued to a user so far (logout)."""
        return {"status": "ok", "generation": raise_token_generation(batch.txn, self._system, command["user"])}

    def _object_update(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """Change fields of a stored version in place (tags, retention, legal hold): not a new version.

        "version" names the version (None: the current one); a field set to None is removed.
        """
        bucket, key, version = command["bucket"], command["key"], command.get("version")
        if batch.txn.get(bucket.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        lmdb_key = object_key(bucket, key)
        stored = batch.txn.get(lmdb_key, db=self._objects)
        current = True
        if stored is not None and version is not None and version_of(OBJECT.decode_header(stored)) != version:
            stored = None
        if stored is None and version is not None:
            found = self._versions.find(batch.txn, bucket, key, version)
            if found is None:
                return {"status": "NoSuchVersion"}
            lmdb_key, stored = found
            current = False
        if stored is None:
            return {"status": "NoSuchKey"}
        record, inline = OBJECT.decode(stored)
        if record.get("marker"):
            return {"status": "MethodNotAllowed"}
        changes = command["changes"]
        if "retention" in changes:
            refusal = retention_change_refusal(
                record.get("retention"), changes["retention"], command.get("now"), bool(command.get("bypass"))
            )
            if refusal is not None:
                return {"status": refusal}
        for field, value in changes.items():
            if value is None:
                record.pop(field, None)
            else:
                record[field] = value
        if current:
            batch.txn.put(lmdb_key, OBJECT.encode(record, inline), db=self._objects)
        else:
            self._versions.rewrite(batch.txn, lmdb_key, OBJECT.encode(record, inline))
        return {"status": "ok", "version": version_of(record)}

    def _bucket(self, batch: _Batch, bucket: str) -> dict | None:
        stored = batch.txn.get(bucket.encode(), db=self._buckets)
        return None if stored is None else BUCKET.decode_header(stored)

    def _versioning(self, batch: _Batch, bucket: str) -> str | None | bool:
        """The bucket's versioning state (None: never enabled), or False when there is no bucket."""
        record = self._bucket(batch, bucket)
        return False if record is None else record["versioning"]

    def _object_put(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        bucket, record = command["bucket"], command["record"]
        vid, inline = record["vid"], record["inline"]
        if blob is not None and not inline:
            log.error("object.put of %s/%s carries bytes but is not inline", bucket, record["key"])
            return {"status": "InvalidRequest"}
        bucket_record = self._bucket(batch, bucket)
        if bucket_record is None:
            return {"status": "NoSuchBucket"}
        versioning = bucket_record["versioning"]
        lmdb_key = object_key(bucket, record["key"])
        stored = batch.txn.get(lmdb_key, db=self._objects)
        current = None if stored is None else OBJECT.decode_header(stored)
        if current is not None and current["vid"] == vid:
            # The same command committed twice after a timed-out proposal: it is in place.
            return {"status": "ok", "version": current.get("version")}
        condition = command.get("condition")
        failure = write_condition_failure(current, condition) if condition else None
        if failure is not None:
            return {"status": failure}
        if "retention" not in record:
            retention = default_retention(bucket_record.get("object_lock"), record["mtime"])
            if retention is not None:
                record["retention"] = retention
        record["seq"] = seq = batch.next_seq()
        if versioning is not None:
            record["version"] = format_version(seq) if versioning == ENABLED else NULL_VERSION
        self._retire_current(batch, bucket, record["key"], lmdb_key, stored, current, versioning, record["mtime"])
        batch.txn.put(lmdb_key, OBJECT.encode(record, blob or b""), db=self._objects)
        if current is None:
            self._count(batch, bucket, 1, record["size"])
        else:
            self._count(batch, bucket, 0, record["size"] - current["size"])
        change = Change(
            "ObjectCreated:" + command.get("event", "Put"),
            record["key"],
            record["mtime"],
            record.get("owner"),
            record["size"],
            record["etag"],
            record.get("version"),
        )
        self._announce(batch, bucket_record, change)
        return {"status": "ok", "version": record.get("version")}

    def _object_delete(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """DeleteObject: of a named version, or of the key (a delete marker when versioned).

        Background expiry must not delete what changed after it looked, so it names what it
        judged: with "if_vid", the current version is deleted only while it is still that one;
        a named version only while it is still noncurrent with at least "if_noncurrent" newer
        noncurrent versions, or, with "if_sole", while it is the key's only version.
        """
        bucket = command["bucket"]
        versioning = self._versioning(batch, bucket)
        if versioning is False:
            return {"status": "NoSuchBucket"}
        expected = command.get("if_vid")
        if expected is not None:
            stored = batch.txn.get(object_key(bucket, command["key"]), db=self._objects)
            if stored is None or OBJECT.decode_header(stored)["vid"] != expected:
                return {"status": "PreconditionFailed"}
        if not self._standing_holds(batch, bucket, command):
            return {"status": "PreconditionFailed"}
        return self._delete_one(batch, bucket, versioning, command["key"], command.get("version"), command)

    def _standing_holds(self, batch: _Batch, bucket: str, command: dict) -> bool:
        """Whether a named version still stands where "if_noncurrent" or "if_sole" expects it."""
        newer_noncurrent, sole = command.get("if_noncurrent"), command.get("if_sole")
        if newer_noncurrent is None and not sole:
            return True
        key = command["key"]
        found = self._versions.find(batch.txn, bucket, key, command["version"])
        if found is None:  # the current version, or gone
            return False
        has_current = batch.txn.get(object_key(bucket, key), db=self._objects) is not None
        if sole:
            alone = not self._versions.newer_than(batch.txn, found[0], 1) and not self._versions.has_older(
                batch.txn, found[0]
            )
            return alone and not has_current
        # Without a current version the newest history entry is the latest (a delete marker).
        newer = self._versions.newer_than(batch.txn, found[0], newer_noncurrent + 1)
        return newer - (0 if has_current else 1) >= newer_noncurrent

    def _object_delete_many(self, batch: _Batch, command: dict, blob: bytes | None) -> dict:
        """DeleteObjects: every key (and version) of one request in one command, so one raft entry."""
        bucket = command["bucket"]
        versioning = self._versioning(batch, bucket)
        if versioning is False:
            return {"status": "NoSuchBucket"}
        deleted = [
            self._delete_one(batch, bucket, versioning, key, version, command) for key, version in command["objects"]
        ]
        return {"status": "ok", "deleted": deleted}

    def _delete_one(self, batch: _Batch, bucket: str, versioning, key: str, version: str | None, command: dict) -> dict:
        lmdb_key = object_key(bucket, key)
        if version is not None:
            return self._delete_version(batch, bucket, key, lmdb_key, version, command)
        stored = batch.txn.get(lmdb_key, db=self._objects)
        current = None if stored is None else OBJECT.decode_header(stored)
        if versioning is None:
            self._retire_current(batch, bucket, key, lmdb_key, stored, current, versioning, since=0)
            if current is not None:
                batch.txn.delete(lmdb_key, db=self._objects)
                self._count(batch, bucket, -1, -current["size"])
                self._announce(batch, bucket, _removal("Delete", key, command))
            return {"status": "ok"}
        seq = batch.next_seq()
        marker = {
            "key": key,
            "seq": seq,
            "version": format_version(seq) if versioning == ENABLED else NULL_VERSION,
            "mtime": command["mtime"],
            "owner": command.get("owner"),
            "marker": True,
        }
        self._retire_current(batch, bucket, key, lmdb_key, stored, current, versioning, marker["mtime"])
        if current is not None:
            batch.txn.delete(lmdb_key, db=self._objects)
            self._count(batch, bucket, -1, -current["size"])
        self._versions.add(batch.txn, bucket, marker, OBJECT.encode(marker), lmdb_key)
        self._announce(batch, bucket, _removal("DeleteMarkerCreated", key, command, marker["version"]))
        return {"status": "ok", "marker": True, "version": marker["version"]}

    def _delete_version(
        self, batch: _Batch, bucket: str, key: str, lmdb_key: bytes, version: str, command: dict
    ) -> dict:
        """Delete one version for good; the next one becomes current when it is not a delete marker.

        A version object lock holds stays: the command's "mtime" is when it was asked, and
        "bypass" whether it bypasses governance retention.
        """
        now, bypass = command.get("mtime"), bool(command.get("bypass"))
        stored = batch.txn.get(lmdb_key, db=self._objects)
        current = None if stored is None else OBJECT.decode_header(stored)
        if current is not None and version_of(current) == version:
            refusal = delete_refusal(current, now, bypass)
            if refusal is not None:
                return {"status": refusal}
            self._free(batch, bucket, current)
            batch.txn.delete(lmdb_key, db=self._objects)
            self._count(batch, bucket, -1, -current["size"])
            self._promote(batch, bucket, key, lmdb_key)
            self._announce(batch, bucket, _removal("Delete", key, command, version))
            return {"status": "ok", "version": version}
        found = self._versions.find(batch.txn, bucket, key, version)
        if found is None:
            return {"status": "ok", "version": version}
        history_key, value = found
        record = OBJECT.decode_header(value)
        refusal = delete_refusal(record, now, bypass)
        if refusal is not None:
            return {"status": refusal}
        self._free(batch, bucket, record)
        self._versions.remove(batch.txn, bucket, key, history_key, lmdb_key)
        if stored is None:
            self._promote(batch, bucket, key, lmdb_key)
        self._announce(batch, bucket, _removal("Delete", key, command, version))
        return {"status": "ok", "version": version, "marker": bool(record.get("marker"))}

    def _retire_current(
        self, batch: _Batch, bucket: str, key: str, lmdb_key: bytes, stored, current, versioning, since: int
    ) -> None:
        """What becomes of the current version, and of the null version, once a newer one lands.

        Unversioned, the current version is gone. Enabled, it is kept as history, noting since
        when (`since`, the newer version's time: lifecycle counts noncurrent days from it).
        Suspended, the new version is the null version: the old null version goes, others are kept.
        """
        if versioning == SUSPENDED:
            found = self._versions.find(batch.txn, bucket, key, NULL_VERSION)
            if found is not None:
                self._free(batch, bucket, OBJECT.decode_header(found[1]))
                self._versions.remove(batch.txn, bucket, key, found[0], lmdb_key)
        if current is None:
            if versioning is not None:
                self._retire_latest_marker(batch, bucket, key, since)
            return
        if versioning is None or (versioning == SUSPENDED and version_of(current) == NULL_VERSION):
            self._free(batch, bucket, current)
            return
        header, inline = OBJECT.decode(stored)
        header["noncurrent_since"] = since
        self._versions.add(batch.txn, bucket, header, OBJECT.encode(header, inline), lmdb_key)

    def _retire_latest_marker(self, batch: _Batch, bucket: str, key: str, since: int) -> None:
        """A key without a current version gets a newer version: the delete marker that was
        its latest becomes noncurrent (one already noncurrent keeps its time)."""
        newest = self._versions.newest(batch.txn, bucket, key)
        if newest is None:
            return
        header, inline = OBJECT.decode(newest[1])
        if "noncurrent_since" not in header:
            header["noncurrent_since"] = since
            self._versions.rewrite(batch.txn, newest[0], OBJECT.encode(header, inline))

    def _promote(self, batch: _Batch, bucket: str, key: str, lmdb_key: bytes) -> None:
        """Make the newest noncurrent version current; a delete marker stays history, as the latest."""
        newest = self._versions.newest(batch.txn, bucket, key)
        if newest is None:
            return
        header, inline = OBJECT.decode(newest[1])
        if header.get("marker"):
            if header.pop("noncurrent_since", None) is not None:
                self._versions.rewrite(batch.txn, newest[0], OBJECT.encode(header, inline))
            return
        header.pop("noncurrent_since", None)
        batch.txn.put(lmdb_key, OBJECT.encode(header, inline), db=self._objects)
        self._count(batch, bucket, 1, header["size"])
        self._versions.remove(batch.txn, bucket, key, newest[0], lmdb_key)

    @staticmethod
    def _free(batch: _Batch, bucket: str, record: dict) -> None:
        """Queue a version's file for removal once the batch commits (inline bytes and markers have none)."""
        if not record.get("marker") and not record["inline"]:
            batch.released.append((bucket, record["key"], record["vid"]))


ENABLED = "Enabled"
SUSPENDED = "Suspended"
LIFECYCLE_CONDITIONS = ("if_vid", "if_noncurrent", "if_sole")
"""A delete naming what it judged is the lifecycle sweeper's: S3 tells of it as LifecycleExpiration."""


def _removal(kind: str, key: str, command: dict, version: str | None = None) -> Change:
    """The Change a delete makes: an ObjectRemoved event, or LifecycleExpiration for an expiry."""
    cause = (
        "LifecycleExpiration"
        if any(command.get(name) is not None for name in LIFECYCLE_CONDITIONS)
        else "ObjectRemoved"
    )
    return Change(f"{cause}:{kind}", key, command.get("mtime") or 0, command.get("owner"), version=version)


def _any_value(record: dict, value) -> str | None:
    return None


def _versioning_change(record: dict, value) -> str | None:
    """Versioning, once enabled, can only be suspended, and not while object lock is on."""
    if value not in (ENABLED, SUSPENDED):
        return "IllegalVersioningConfigurationException"
    if value == SUSPENDED and record.get("object_lock"):
        return "InvalidBucketState"
    return None


def _object_lock_change(record: dict, value) -> str | None:
    """Object lock, once on, stays on; it is turned on only where versioning is Enabled."""
    if not isinstance(value, dict) or value.get("enabled") is not True or not valid_rule(value.get("rule")):
        return "InvalidRequest"
    if not record.get("object_lock") and record["versioning"] != ENABLED:
        return "InvalidBucketState"
    return None


CREATE_SETTINGS = ("ownership", "public_access_block")
"""Bucket settings a bucket.create command may give the new bucket."""

BUCKET_SETTINGS: dict[str, Callable[[dict, object], str | None]] = {
    "cors": _any_value,
    "tagging": _any_value,
    "lifecycle": _any_value,
    "policy": _any_value,
    "acl": _any_value,
    "public_access_block": _any_value,
    "ownership": _any_value,
    "encryption": _any_value,
    "logging": _any_value,
    "notification": _any_value,
    "versioning": _versioning_change,
    "object_lock": _object_lock_change,
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
