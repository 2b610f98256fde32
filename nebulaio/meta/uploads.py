"""Multipart uploads in the replica: open uploads, their parts, and the commands that change them.

Two named databases keep them apart from objects, so neither listing walks the other:

    uploads   bucket \\0 key suffix \\0\\0 upload id              -> UPLOAD record
    parts     bucket \\0 upload id part number (u16, BE)       -> PART record

The key suffix is the UTF-8 key with every \\0 written as \\0\\1, closed by \\0\\0: an S3 key
may contain \\0, and this escape keeps (key, upload id) order exact, with each key's uploads
in upload id order, which is their time of initiation. The escape can double a key's length,
so it is applied first and the escaped key is then truncated and digested the way
`keys.key_suffix` does it, with a head short enough that every possible key fits LMDB's
limit: an escaped key longer than UPLOAD_HEAD_LIMIT is stored as its first UPLOAD_HEAD_LIMIT
bytes, 0xff and its digest. As for objects, long keys sharing a head form a group in digest
order that a listing reads whole and sorts by the full key kept in the record. Upload ids
are fixed-length hex made by the proposer, so a part key can name its upload without the key.

A part's bytes live beside the object's versions, at objects/<bucket>/<key hash>/<file>,
where `file` is `<upload id>.<part number>.<random>`: a part uploaded again never writes
over the file the committed part points at, and the supervisor's release of a version
file frees a part file the same way.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import NamedTuple

import lmdb

from nebulaio.meta.env import PARTS_DB, UPLOADS_DB
from nebulaio.meta.keys import (
    DIGEST_SIZE,
    LONG_KEY_MARK,
    MAX_BUCKET_PREFIX,
    MAX_LMDB_KEY,
    bucket_prefix,
    key_suffix,
    successor,
)
from nebulaio.meta.records import PART, UPLOAD
from nebulaio.meta.requests import UPLOAD_PREFIX, RequestTable

MIN_PART_SIZE = 5 * 1024 * 1024
"""Every part of a completed upload but the last must be at least this large."""

KEY_END = b"\0\0"
UPLOAD_ID_LENGTH = 32
UPLOAD_HEAD_LIMIT = (
    MAX_LMDB_KEY - MAX_BUCKET_PREFIX - len(LONG_KEY_MARK) - DIGEST_SIZE - len(KEY_END) - UPLOAD_ID_LENGTH
)
"""The longest escaped key stored whole; a longer one keeps this many bytes and its digest."""
_PART_NUMBER = struct.Struct(">H")


def _escaped(key: bytes) -> bytes:
    return key.replace(b"\0", b"\0\x01")


def upload_key(bucket: str, key: str, upload_id: str) -> bytes:
    suffix = key_suffix(_escaped(key.encode()), UPLOAD_HEAD_LIMIT)
    return bucket_prefix(bucket) + suffix + KEY_END + upload_id.encode()


def parts_prefix(bucket: str, upload_id: str) -> bytes:
    return bucket_prefix(bucket) + upload_id.encode()


def part_key(bucket: str, upload_id: str, number: int) -> bytes:
    return parts_prefix(bucket, upload_id) + _PART_NUMBER.pack(number)


COMPLETION_FIELDS = ("etag", "checksums", "checksum_type")
"""What CompleteMultipartUpload answers of the object, kept for a retried completion."""


def same_completion(completed: dict, bucket: str, key: str, parts: list) -> bool:
    """Whether a completion asks for what a recorded one did: the same object and part list."""
    return (completed["bucket"], completed["key"]) == (bucket, key) and [list(part) for part in parts] == completed[
        "parts"
    ]


def check_part_list(requested: list[tuple[int, str]], stored: dict[int, dict]) -> str | None:
    """Why a completion's part list cannot make the object, as an S3 error code; None if it can.

    `requested` is the client's (part number, ETag) list, `stored` the upload's parts by number.
    """
    previous = 0
    for number, _ in requested:
        if number <= previous:
            return "InvalidPartOrder"
        previous = number
    for number, etag in requested:
        part = stored.get(number)
        if part is None or part["etag"] != etag.strip('"'):
            return "InvalidPart"
    for number, _ in requested[:-1]:
        if stored[number]["size"] < MIN_PART_SIZE:
            return "EntityTooSmall"
    return None


class UploadPage(NamedTuple):
    """One page of ListMultipartUploads; `next_key` / `next_upload_id` continue it."""

    uploads: list[dict]
    prefixes: list[str]
    truncated: bool
    next_key: str | None
    next_upload_id: str | None


EMPTY_UPLOAD_PAGE = UploadPage([], [], False, None, None)


def open_upload_databases(env: lmdb.Environment) -> tuple[lmdb._Database, lmdb._Database]:
    return env.open_db(UPLOADS_DB, create=False), env.open_db(PARTS_DB, create=False)


def _stored_parts(txn: lmdb.Transaction, parts_db, bucket: str, upload_id: str) -> dict[int, dict]:
    prefix = parts_prefix(bucket, upload_id)
    parts = {}
    cursor = txn.cursor(db=parts_db)
    if cursor.set_range(prefix):
        for lmdb_key, value in cursor.iternext():
            if not lmdb_key.startswith(prefix):
                break
            record = PART.decode_header(value)
            parts[record["number"]] = record
    return parts


class UploadReader:
    """Reads uploads and parts for workers (each call its own short read transaction)."""

    __slots__ = ("_env", "_parts", "_uploads")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._uploads, self._parts = open_upload_databases(env)

    def get(self, bucket: str, key: str, upload_id: str) -> dict | None:
        with self._env.begin(db=self._uploads) as txn:
            value = txn.get(upload_key(bucket, key, upload_id))
        return None if value is None else UPLOAD.decode_header(value)

    def all_parts(self, bucket: str, upload_id: str) -> dict[int, dict]:
        with self._env.begin(db=self._parts) as txn:
            return _stored_parts(txn, self._parts, bucket, upload_id)

    def list_parts(self, bucket: str, upload_id: str, after: int, max_parts: int) -> tuple[list[dict], bool]:
        """Parts numbered above `after`, at most `max_parts`, and whether more follow."""
        prefix = parts_prefix(bucket, upload_id)
        parts: list[dict] = []
        with self._env.begin(db=self._parts) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix + _PART_NUMBER.pack(after + 1)):
                return parts, False
            for lmdb_key, value in cursor.iternext():
                if not lmdb_key.startswith(prefix):
                    break
                if len(parts) == max_parts:
                    return parts, True
                parts.append(PART.decode_header(value))
        return parts, False

    def part_files(self, bucket: str) -> set[str]:
        """File names of every part of the bucket's open uploads, for the start-up sweep."""
        prefix = bucket_prefix(bucket)
        files = set()
        with self._env.begin(db=self._parts) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for lmdb_key, value in cursor.iternext():
                    if not lmdb_key.startswith(prefix):
                        break
                    files.add(PART.decode_header(value)["file"])
        return files

    def list_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str | None,
        upload_id_marker: str | None,
        max_uploads: int,
    ) -> UploadPage:
        """One page of open uploads and common prefixes in (key, upload id) order.

        Without `upload_id_marker` the page starts after every upload of `key_marker`; with
        it, after that upload of that key. A common prefix <= `key_marker` counts as listed.
        """
        if max_uploads <= 0:
            return EMPTY_UPLOAD_PAGE
        prefix_bytes, delimiter_bytes = prefix.encode(), delimiter.encode()
        marker = None if key_marker is None else key_marker.encode()
        target = prefix_bytes if marker is None or marker < prefix_bytes else marker
        uploads: list[dict] = []
        prefixes: list[str] = []
        next_key = next_upload_id = None
        with self._env.begin(db=self._uploads) as txn:
            cursor = txn.cursor()
            while target is not None:
                resume = None
                for key, record in _uploads_from(cursor, bucket_prefix(bucket), target):
                    if not key.startswith(prefix_bytes):
                        return UploadPage(uploads, prefixes, False, next_key, next_upload_id)
                    if marker is not None and key <= marker:
                        if key < marker or upload_id_marker is None or record["upload_id"] <= upload_id_marker:
                            continue
                    cut = key.find(delimiter_bytes, len(prefix_bytes)) if delimiter_bytes else -1
                    common = key[: cut + len(delimiter_bytes)] if cut >= 0 else None
                    if common is not None and marker is not None and common <= marker:
                        resume = successor(common)
                        break
                    if len(uploads) + len(prefixes) == max_uploads:
                        return UploadPage(uploads, prefixes, True, next_key, next_upload_id)
                    if common is None:
                        uploads.append(record)
                        next_key, next_upload_id = record["key"], record["upload_id"]
                        continue
                    next_key, next_upload_id = common.decode(), None
                    prefixes.append(next_key)
                    resume = successor(common)
                    break
                target = resume
        return UploadPage(uploads, prefixes, False, next_key, next_upload_id)


def _uploads_from(cursor: lmdb.Cursor, in_bucket: bytes, target: bytes) -> Iterator[tuple[bytes, dict]]:
    """The bucket's uploads of keys >= target, as (UTF-8 key, record), in (key, upload id) order.

    Long keys sharing their first UPLOAD_HEAD_LIMIT escaped bytes are stored in digest order:
    such a group is read whole and sorted, as the object listing does. Seeking to a long
    target's head lands at most one short key and one group early; those are filtered out.
    """
    if not cursor.set_range(in_bucket + _escaped(target)[:UPLOAD_HEAD_LIMIT]):
        return
    suffix_start, suffix_end = len(in_bucket), -len(KEY_END) - UPLOAD_ID_LENGTH
    group: list[tuple[bytes, str, dict]] = []
    group_head = b""
    for lmdb_key, value in cursor.iternext():
        if not lmdb_key.startswith(in_bucket):
            break
        record = UPLOAD.decode_header(value)
        key = record["key"].encode()
        suffix = lmdb_key[suffix_start:suffix_end]
        if group and not suffix.startswith(group_head):
            yield from _sorted_group(group, target)
            group = []
        if len(suffix) > UPLOAD_HEAD_LIMIT:
            group_head = suffix[: UPLOAD_HEAD_LIMIT + len(LONG_KEY_MARK)]
            group.append((key, record["upload_id"], record))
        elif key >= target:
            yield key, record
    if group:
        yield from _sorted_group(group, target)


def _sorted_group(group: list[tuple[bytes, str, dict]], target: bytes) -> Iterator[tuple[bytes, dict]]:
    group.sort(key=itemgetter(0, 1))
    for key, _, record in group:
        if key >= target:
            yield key, record


class UploadCommands:
    """The upload.* commands of the applier; `put_object` is object.put's handler, which a
    completion applies to its object record (conditions included)."""

    __slots__ = ("_buckets", "_parts", "_put_object", "_requests", "_uploads")

    def __init__(self, env: lmdb.Environment, buckets_db, put_object: Callable, requests: RequestTable) -> None:
        self._buckets = buckets_db
        self._uploads, self._parts = open_upload_databases(env)
        self._put_object = put_object
        self._requests = requests

    def handlers(self) -> dict[str, Callable]:
        return {
            "upload.create": self.create,
            "upload.part": self.part,
            "upload.complete": self.complete,
            "upload.abort": self.abort,
        }

    def create(self, batch, command: dict, blob: bytes | None) -> dict:
        bucket, record = command["bucket"], command["record"]
        if batch.txn.get(bucket.encode(), db=self._buckets) is None:
            return {"status": "NoSuchBucket"}
        lmdb_key = upload_key(bucket, record["key"], record["upload_id"])
        batch.txn.put(lmdb_key, UPLOAD.encode(record), db=self._uploads)
        return {"status": "ok"}

    def part(self, batch, command: dict, blob: bytes | None) -> dict:
        """Record a part; a part of the same number uploaded before it gives up its file."""
        bucket, key, upload_id, record = command["bucket"], command["key"], command["upload_id"], command["part"]
        if batch.txn.get(upload_key(bucket, key, upload_id), db=self._uploads) is None:
            return {"status": "NoSuchUpload"}
        lmdb_key = part_key(bucket, upload_id, record["number"])
        previous = batch.txn.get(lmdb_key, db=self._parts)
        if previous is not None:
            previous_file = PART.decode_header(previous)["file"]
            if previous_file != record["file"]:
                batch.released.append((bucket, key, previous_file))
        batch.txn.put(lmdb_key, PART.encode(record), db=self._parts)
        return {"status": "ok"}

    def complete(self, batch, command: dict, blob: bytes | None) -> dict:
        """Check the part list against the stored parts, then commit the object and free the parts.

        The worker has already built the object's file from the parts it read; the parts may
        have changed since, so the list is checked again here, where the state is final.
        A completion is kept for a while under its upload id: the same completion again (a
        retry after a timeout) answers the first one's result, marked "repeated".
        """
        bucket, upload_id, record = command["bucket"], command["upload_id"], command["record"]
        key = record["key"]
        lmdb_key = upload_key(bucket, key, upload_id)
        upload = batch.txn.get(lmdb_key, db=self._uploads)
        if upload is None:
            completed = self._requests.recall(batch.txn, UPLOAD_PREFIX + upload_id)
            if completed is not None and same_completion(completed, bucket, key, command["parts"]):
                return {**completed["result"], "repeated": True}
            return {"status": "NoSuchUpload"}
        stored = _stored_parts(batch.txn, self._parts, bucket, upload_id)
        refused = check_part_list([tuple(part) for part in command["parts"]], stored)
        if refused is not None:
            return {"status": refused}
        put = {
            "op": "object.put",
            "bucket": bucket,
            "record": record,
            "condition": command.get("condition"),
            "event": "CompleteMultipartUpload",
        }
        result = self._put_object(batch, put, None)
        if result["status"] == "ok":
            self._forget(batch, bucket, key, upload_id, lmdb_key, stored)
            answered = {name: record[name] for name in COMPLETION_FIELDS if name in record}
            completion = {
                "result": result,
                "bucket": bucket,
                "key": key,
                "parts": command["parts"],
                "record": answered,
                "checksum_algorithm": UPLOAD.decode_header(upload)["checksum_algorithm"],
            }
            self._requests.record(batch.txn, UPLOAD_PREFIX + upload_id, completion, record["mtime"])
        return result

    def abort(self, batch, command: dict, blob: bytes | None) -> dict:
        bucket, key, upload_id = command["bucket"], command["key"], command["upload_id"]
        lmdb_key = upload_key(bucket, key, upload_id)
        if batch.txn.get(lmdb_key, db=self._uploads) is None:
            return {"status": "NoSuchUpload"}
        self._forget(batch, bucket, key, upload_id, lmdb_key, _stored_parts(batch.txn, self._parts, bucket, upload_id))
        return {"status": "ok"}

    def abort_all(self, batch, bucket: str) -> None:
        """Abort every open upload of a bucket that is being deleted."""
        in_bucket = bucket_prefix(bucket)
        cursor = batch.txn.cursor(db=self._uploads)
        found = []
        if cursor.set_range(in_bucket):
            for lmdb_key, value in cursor.iternext():
                if not lmdb_key.startswith(in_bucket):
                    break
                found.append((lmdb_key, UPLOAD.decode_header(value)))
        for lmdb_key, record in found:
            upload_id = record["upload_id"]
            parts = _stored_parts(batch.txn, self._parts, bucket, upload_id)
            self._forget(batch, bucket, record["key"], upload_id, lmdb_key, parts)

    def _forget(self, batch, bucket: str, key: str, upload_id: str, lmdb_key: bytes, parts: dict[int, dict]) -> None:
        for number, record in parts.items():
            batch.released.append((bucket, key, record["file"]))
            batch.txn.delete(part_key(bucket, upload_id, number), db=self._parts)
        batch.txn.delete(lmdb_key, db=self._uploads)
