"""Bucket event notifications in the replica: targets, and the queue of events owed to them.

An event is queued by apply, in the very transaction that makes the change it tells of, so a
committed change always has its events, on every replica, and a restart replays both or
neither. The raft leader delivers them (nebulaio.notify) and then proposes

    notify.ack     {"target": arn, "upto": key of the last event delivered, in hex}

which drops the target's events up to it everywhere. A target is defined with

    notify.target.put     {"target": {"arn", "id", "kind", ...its kind's fields}}
    notify.target.delete  {"arn"}   (refused with TargetInUse while a bucket names it)

Queue keys are `arn \\0 raft index (u64) ordinal (u32)`: a target's events sort in log order,
and each key is the same on every replica, so an acknowledgement means the same events
everywhere. Beside them, `\\0backlog\\0 arn` counts a target's queued events, so the backlog
reads in one get however long the queue grows.

A bucket's "notification" setting holds its rules: {"rules": [{"id", "arn", "kind" (Queue,
Topic or CloudFunction), "events", "prefix", "suffix"}]}.
"""

from __future__ import annotations

import struct
from urllib.parse import quote_plus

import lmdb

from nebulaio.meta.env import BUCKETS_DB, EVENTS_DB, TARGETS_DB
from nebulaio.meta.records import BUCKET, EVENT, TARGET
from nebulaio.util.timefmt import iso8601

TARGET_KINDS = ("webhook", "redis", "nats")
ARN_PREFIX = "arn:nebulaio:sqs:"
EVENT_NAMES = (
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
)
"""The events a rule may name: every one a NebulaIO node raises."""

_POSITION = struct.Struct(">QI")
_COUNT = struct.Struct(">Q")
BACKLOG_PREFIX = b"\0backlog\0"
"""Sorts before every ARN, so the counters never mix with a target's events."""


def target_arn(region: str, target_id: str, kind: str) -> str:
    """`arn:nebulaio:sqs:<region>:<id>:<kind>`: what a bucket's rules name a target by."""
    return f"{ARN_PREFIX}{region}:{target_id}:{kind}"


def rule_matches(rule: dict, event_name: str, key: str) -> bool:
    """Whether a rule asks for `event_name` (e.g. ObjectCreated:Put) of `key`."""
    if not key.startswith(rule.get("prefix") or "") or not key.endswith(rule.get("suffix") or ""):
        return False
    kind = event_name.partition(":")[0]
    return any(wanted == "s3:" + event_name or wanted == f"s3:{kind}:*" for wanted in rule["events"])


def _queue_key(arn: str, raft_index: int, ordinal: int) -> bytes:
    return arn.encode() + b"\0" + _POSITION.pack(raft_index, ordinal)


def _target_prefix(arn: str) -> bytes:
    return arn.encode() + b"\0"


def _backlog_key(arn: str) -> bytes:
    return BACKLOG_PREFIX + arn.encode()


def _add_backlog(txn: lmdb.Transaction, events_db, arn: str, change: int) -> None:
    key = _backlog_key(arn)
    stored = txn.get(key, db=events_db)
    count = (0 if stored is None else _COUNT.unpack(stored)[0]) + change
    if count:
        txn.put(key, _COUNT.pack(count), db=events_db)
    elif stored is not None:
        txn.delete(key, db=events_db)


def sequencer(raft_index: int, ordinal: int) -> str:
    """S3's `sequencer`: grows with the log, so a later event of a key compares greater."""
    return f"{raft_index:016X}{ordinal:08X}"


class Change:
    """What one applied change tells its bucket's notification rules about."""

    __slots__ = ("etag", "key", "mtime", "name", "principal", "size", "version")

    def __init__(
        self,
        name: str,
        key: str,
        mtime: int,
        principal: str | None,
        size: int | None = None,
        etag: str | None = None,
        version: str | None = None,
    ):
        self.name = name
        self.key = key
        self.mtime = mtime
        self.principal = principal
        self.size = size
        self.etag = etag
        self.version = version


def event_record(bucket: dict, rule: dict, change: Change, raft_index: int, ordinal: int) -> dict:
    """S3's event message record (eventVersion 2.1) for one change and the rule that asked for it."""
    principal = {"principalId": change.principal or bucket["owner"]}
    stored_object = {"key": quote_plus(change.key, safe="/"), "sequencer": sequencer(raft_index, ordinal)}
    if change.size is not None:  # a removal, as in S3, tells neither size nor ETag
        stored_object["size"] = change.size
    if change.etag is not None:
        stored_object["eTag"] = change.etag
    if change.version is not None:
        stored_object["versionId"] = change.version
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": bucket.get("region") or "",
        "eventTime": iso8601(change.mtime),
        "eventName": change.name,
        "userIdentity": principal,
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {"x-amz-request-id": sequencer(raft_index, ordinal)},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": rule["id"],
            "bucket": {
                "name": bucket["name"],
                "ownerIdentity": {"principalId": bucket["owner"]},
                "arn": "arn:aws:s3:::" + bucket["name"],
            },
            "object": stored_object,
        },
    }


class NotifyCommands:
    """The writer's side: queuing events in apply's transaction, the targets and acknowledgements."""

    __slots__ = ("_buckets", "_events", "_targets")

    def __init__(self, env: lmdb.Environment) -> None:
        self._buckets = env.open_db(BUCKETS_DB, create=False)
        self._targets = env.open_db(TARGETS_DB, create=False)
        self._events = env.open_db(EVENTS_DB, create=False)

    def handlers(self) -> dict:
        return {
            "notify.target.put": self._target_put,
            "notify.target.delete": self._target_delete,
            "notify.ack": self._ack,
        }

    def queue(self, txn: lmdb.Transaction, bucket: dict, change: Change, raft_index: int, ordinal: int) -> int:
        """Queue the events `change` owes the bucket's targets; returns the next free ordinal.

        One event per target, however many of the bucket's rules for it match; a target
        deleted since its rule was written gets none.
        """
        notified = set()
        for rule in (bucket.get("notification") or {}).get("rules", ()):
            arn = rule["arn"]
            if arn in notified or not rule_matches(rule, change.name, change.key):
                continue
            if txn.get(arn.encode(), db=self._targets) is None:
                continue
            notified.add(arn)
            record = event_record(bucket, rule, change, raft_index, ordinal)
            txn.put(_queue_key(arn, raft_index, ordinal), EVENT.encode(record), db=self._events)
            _add_backlog(txn, self._events, arn, 1)
            ordinal += 1
        return ordinal

    def _target_put(self, batch, command: dict, blob: bytes | None) -> dict:
        target = command["target"]
        if target["kind"] not in TARGET_KINDS or not target["arn"].startswith(ARN_PREFIX):
            return {"status": "InvalidArgument"}
        batch.txn.put(target["arn"].encode(), TARGET.encode(target), db=self._targets)
        return {"status": "ok"}

    def _target_delete(self, batch, command: dict, blob: bytes | None) -> dict:
        arn = command["arn"]
        txn = batch.txn
        if txn.get(arn.encode(), db=self._targets) is None:
            return {"status": "NoSuchTarget"}
        for value in txn.cursor(db=self._buckets).iternext(keys=False):
            rules = (BUCKET.decode_header(value).get("notification") or {}).get("rules", ())
            if any(rule["arn"] == arn for rule in rules):
                return {"status": "TargetInUse"}
        txn.delete(arn.encode(), db=self._targets)
        self._drop(txn, arn, None)
        return {"status": "ok"}

    def _ack(self, batch, command: dict, blob: bytes | None) -> dict:
        """Drop a target's events up to and including `upto`: delivered. Acknowledging again is harmless."""
        self._drop(batch.txn, command["target"], bytes.fromhex(command["upto"]))
        return {"status": "ok"}

    def _drop(self, txn: lmdb.Transaction, arn: str, upto: bytes | None) -> None:
        """Drop the target's queued events up to position `upto` (None: all of them)."""
        prefix = _target_prefix(arn)
        last = None if upto is None else prefix + upto
        dropped = 0
        cursor = txn.cursor(db=self._events)
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix) and (last is None or cursor.key() <= last):
                dropped += 1
                if not cursor.delete():
                    break
        if dropped:
            _add_backlog(txn, self._events, arn, -dropped)


class NotifyReader:
    """The read side: targets, a target's queued events and the backlog, for workers and the deliverer."""

    __slots__ = ("_env", "_events", "_targets")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._targets = env.open_db(TARGETS_DB, create=False)
        self._events = env.open_db(EVENTS_DB, create=False)

    def targets(self) -> list[dict]:
        with self._env.begin(db=self._targets) as txn:
            return [TARGET.decode_header(value) for value in txn.cursor().iternext(keys=False)]

    def target(self, arn: str) -> dict | None:
        with self._env.begin(db=self._targets) as txn:
            value = txn.get(arn.encode())
        return None if value is None else TARGET.decode_header(value)

    def pending(self, arn: str, after: bytes | None, limit: int) -> list[tuple[bytes, dict]]:
        """Up to `limit` of the target's queued events after position `after` (None: from the
        first), as (position, event record); a position is what notify.ack's "upto" names."""
        prefix = _target_prefix(arn)
        start = prefix if after is None else prefix + after + b"\0"
        found = []
        with self._env.begin(db=self._events) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(start):
                return found
            for key, value in cursor:
                if not key.startswith(prefix) or len(found) >= limit:
                    break
                found.append((key[len(prefix) :], EVENT.decode_header(value)))
        return found

    def backlog(self) -> dict[str, int]:
        """{target arn: events queued and not yet acknowledged} for every target."""
        counts = {target["arn"]: 0 for target in self.targets()}
        with self._env.begin(db=self._events) as txn:
            cursor = txn.cursor()
            if cursor.set_range(BACKLOG_PREFIX):
                for key, value in cursor:
                    if not key.startswith(BACKLOG_PREFIX):
                        break
                    counts[key[len(BACKLOG_PREFIX) :].decode()] = _COUNT.unpack(value)[0]
        return counts
