"""The read side of the replica, used by workers straight from the memory map.

Each call runs in its own short read transaction: a long-lived reader would pin old pages
and make the file grow under write load.
"""

from collections.abc import Iterator
from operator import itemgetter
from typing import NamedTuple

import lmdb

from nebulaio.meta.env import open_databases, read_applied
from nebulaio.meta.keys import bucket_prefix, is_long_suffix, long_key_group, object_key, seek_suffix, successor
from nebulaio.meta.records import BUCKET, OBJECT
from nebulaio.meta.uploads import UploadReader

COMMON_PREFIX = None
"""Marks a listing item that is a common prefix rather than an object (it has no value)."""


class ListPage(NamedTuple):
    """One page of a listing; `last` is what to pass as `after` to continue it."""

    entries: list[tuple[str, dict]]
    prefixes: list[str]
    truncated: bool
    last: str | None


EMPTY_PAGE = ListPage([], [], False, None)


class MetaReader:
    """Reads buckets and objects; opened in a worker after fork, never before."""

    __slots__ = ("_buckets", "_env", "_objects", "_system", "uploads")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._buckets, self._objects, self._system = open_databases(env)
        self.uploads = UploadReader(env)

    def applied_index(self) -> int:
        with self._env.begin(db=self._system) as txn:
            return read_applied(txn, self._system)

    def get_bucket(self, name: str) -> dict | None:
        with self._env.begin(db=self._buckets) as txn:
            value = txn.get(name.encode())
        return None if value is None else BUCKET.decode_header(value)

    def list_buckets(self) -> list[dict]:
        """Every bucket, sorted by name."""
        with self._env.begin(db=self._buckets) as txn:
            return [BUCKET.decode_header(value) for value in txn.cursor().iternext(keys=False)]

    def bucket_is_empty(self, name: str) -> bool:
        prefix = bucket_prefix(name)
        with self._env.begin(db=self._objects) as txn:
            cursor = txn.cursor()
            return not (cursor.set_range(prefix) and cursor.key().startswith(prefix))

    def get_object(self, bucket: str, key: str) -> tuple[dict, bytes | None] | None:
        """The current version's record, and its bytes when they are stored inline."""
        with self._env.begin(db=self._objects) as txn:
            value = txn.get(object_key(bucket, key))
        if value is None:
            return None
        record, inline = OBJECT.decode(value)
        return record, bytes(inline) if record["inline"] else None

    def file_versions(self, bucket: str) -> set[str]:
        """Files of the bucket's file-backed objects and open uploads' parts, for the sweeper.

        NOTE: one read transaction over the whole bucket; meant for start-up, not requests.
        """
        in_bucket = bucket_prefix(bucket)
        files = self.uploads.part_files(bucket)
        with self._env.begin(db=self._objects) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(in_bucket):
                return files
            for lmdb_key, value in cursor.iternext():
                if not lmdb_key.startswith(in_bucket):
                    break
                record = OBJECT.decode_header(value)
                if not record["inline"]:
                    files.add(record["vid"])
        return files

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of keys and common prefixes, merged in S3 order (max_keys counts both).

        `after` is exclusive, and a common prefix <= `after` counts as already returned, so
        passing back a page's `last` (a key or a common prefix) continues the listing.
        A missing bucket lists as empty.
        """
        if max_keys <= 0:
            return EMPTY_PAGE
        prefix_bytes = prefix.encode()
        after_bytes = None if after is None else after.encode()
        start = prefix_bytes
        if after_bytes is not None and after_bytes >= prefix_bytes:
            start = after_bytes + b"\0"  # the smallest key greater than `after`
        entries: list[tuple[str, dict]] = []
        prefixes: list[str] = []
        last = None
        with self._env.begin(db=self._objects) as txn:
            items = _listing(txn.cursor(), bucket_prefix(bucket), prefix_bytes, delimiter.encode(), start, after_bytes)
            for name, value in items:
                if len(entries) + len(prefixes) == max_keys:
                    return ListPage(entries, prefixes, True, last)
                last = name.decode()
                if value is COMMON_PREFIX:
                    prefixes.append(last)
                else:
                    entries.append((last, OBJECT.decode_header(value)))
        return ListPage(entries, prefixes, False, last)


def _listing(
    cursor: lmdb.Cursor, in_bucket: bytes, prefix: bytes, delimiter: bytes, start: bytes, after: bytes | None
) -> Iterator[tuple[bytes, bytes | None]]:
    """Keys (with their values) and common prefixes (with COMMON_PREFIX), from `start` on.

    PERF: after a common prefix the cursor seeks past its whole group in one step, without
    walking or decoding it, so a delimiter listing costs one seek per prefix.
    """
    target: bytes | None = start
    while target is not None:
        resume = None
        for key, value in _keys_from(cursor, in_bucket, target):
            if not key.startswith(prefix):
                return
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                yield key, value
                continue
            common = key[: cut + len(delimiter)]
            if after is None or common > after:
                yield common, COMMON_PREFIX
            resume = successor(common)
            break
        target = resume


def _keys_from(cursor: lmdb.Cursor, in_bucket: bytes, target: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The bucket's keys >= target in exact S3 order, as (UTF-8 key, stored value)."""
    if not cursor.set_range(in_bucket + seek_suffix(target)):
        return
    skip = len(in_bucket)
    group: list[tuple[bytes, bytes]] = []
    group_head = b""
    for lmdb_key, value in cursor.iternext():
        if not lmdb_key.startswith(in_bucket):
            break
        suffix = lmdb_key[skip:]
        if group and not suffix.startswith(group_head):
            yield from _sorted_group(group, target)
            group = []
        if is_long_suffix(suffix):
            if not group:
                group_head = long_key_group(suffix)
            group.append((OBJECT.decode_header(value)["key"].encode(), value))
        elif suffix >= target:
            yield suffix, value
    if group:
        yield from _sorted_group(group, target)


def _sorted_group(group: list[tuple[bytes, bytes]], target: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Long keys sharing their head are stored in digest order: put them in key order."""
    group.sort(key=itemgetter(0))
    for key, value in group:
        if key >= target:
            yield key, value
