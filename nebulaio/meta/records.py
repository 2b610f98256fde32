"""Every LMDB value is a versioned record that decodes through its type's migration chain.

A value is framed as

    schema version (u8) | header length (u32, big-endian) | orjson header | inline bytes

The version sits in the frame, before the header, so a future release can change how the
header itself is encoded and still recognise old values. Decoding upgrades an old header one
version at a time through `upgrades[v]` (a function from a version-v header to a version
v+1 header), so a replica never needs a stop-the-world rewrite after an upgrade.
"""

import struct
from collections.abc import Callable

import orjson

_FRAME = struct.Struct(">BI")

Upgrade = Callable[[dict], dict]


class RecordType:
    """One kind of stored value: its current schema version and how older ones upgrade."""

    __slots__ = ("_upgrades", "name", "version")

    def __init__(self, name: str, version: int, upgrades: dict[int, Upgrade]) -> None:
        self.name = name
        self.version = version
        self._upgrades = upgrades

    def encode(self, header: dict, inline: bytes = b"") -> bytes:
        body = orjson.dumps(header)
        return b"".join((_FRAME.pack(self.version, len(body)), body, inline))

    def decode(self, value: bytes) -> tuple[dict, memoryview]:
        """The header and a view of the inline bytes (valid as long as `value` is)."""
        header, end = self._header(value)
        return header, memoryview(value)[end:]

    def decode_header(self, value: bytes) -> dict:
        return self._header(value)[0]

    @staticmethod
    def framed_header(value: bytes) -> bytes:
        """The value without its inline bytes: what `decode_header` reads, as a memo's key."""
        _, length = _FRAME.unpack_from(value)
        return value[: _FRAME.size + length]

    def _header(self, value: bytes) -> tuple[dict, int]:
        version, length = _FRAME.unpack_from(value)
        end = _FRAME.size + length
        header = orjson.loads(memoryview(value)[_FRAME.size : end])
        if version != self.version:
            header = self._upgrade(version, header)
        return header, end

    def _upgrade(self, version: int, header: dict) -> dict:
        if version > self.version:
            raise ValueError(
                f"{self.name} record has schema version {version}; this release reads up to {self.version}"
            )
        while version < self.version:
            header = self._upgrades[version](header)
            version += 1
        return header


BUCKET = RecordType("bucket", 1, {})
"""{"name", "owner", "created" (epoch ms), "region", "versioning"}, and the settings bucket.configure
sets, e.g. "tagging" ({key: value}) and "cors" ({"revision", "rules"})."""

OBJECT = RecordType("object", 1, {})
"""The current version of an object: {"key", "vid", "size", "etag", "mtime", "ctype",
"headers", "meta", "checksums", "inline", "tags" (when it has some), ...}; small objects'
bytes follow inline. An object built from parts also keeps "part_sizes" and, when its upload
named a checksum algorithm, "part_checksums" and "checksum_type" ("COMPOSITE" or "FULL_OBJECT";
a record without one is FULL_OBJECT). In a cluster a file-backed version keeps "holders": the ids
of the nodes that hold its file, and one built from parts "placed_by": the upload id its holders
were ranked by. A file-backed version (and a part) keeps "file_xxh3": the xxh3-64 of its file's
bytes as written, checked before they are served (absent in records written before it was)."""

STATS = RecordType("stats", 1, {})
"""A bucket's counters, kept by apply so that listing buckets with their usage reads one record
each: {"objects", "bytes"} of its current versions (delete markers and noncurrent versions aside)."""

SYSTEM = RecordType("system", 1, {})
"""Replica bookkeeping, e.g. {"index": n} under the key `applied`."""

UPLOAD = RecordType("upload", 1, {})
"""An open multipart upload: {"key", "upload_id", "initiated" (epoch ms), "owner", "ctype",
"headers", "meta", "checksum_algorithm" (and with one a "checksum_type"), "tags" (when given)};
the content fields become the object's."""

PART = RecordType("part", 1, {})
"""One part of an open upload: {"number", "etag", "size", "mtime", "checksums", "file"}, and in a
cluster "holders" (node ids)."""

NODE = RecordType("node", 1, {})
"""A cluster member: {"id", "role", "raft", "gossip", "internal"} (the addresses peers use)."""

IAM = RecordType("iam", 1, {})
"""Users, access keys, groups and managed policies (see meta/iam.py)."""

REQUEST = RecordType("request", 1, {})
"""What a command with a request id answered, {"result", "at"}, or what a completed multipart
upload answered, {"result", "at", "key", "parts", "record"} (see meta/requests.py)."""

TARGET = RecordType("target", 1, {})
"""A notification target the Admin API defined: {"arn", "id", "kind" ("webhook", "redis" or
"nats"), ...} and the kind's own fields (see meta/notify.py)."""

EVENT = RecordType("event", 1, {})
"""One queued notification: S3's event record as delivered inside {"Records": [...]}."""
