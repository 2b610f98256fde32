"""The read side of the replica, used by workers straight from the memory map.

Each call runs in its own short read transaction: a long-lived reader would pin old pages
and make the file grow under write load.
"""

import heapq
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter
from typing import NamedTuple

import lmdb

from nebulaio.meta.env import STATS_DB, open_databases, read_applied, read_token_generation
from nebulaio.meta.holders import Holders
from nebulaio.meta.iam import IamReader
from nebulaio.meta.keys import bucket_prefix, is_long_suffix, long_key_group, object_key, seek_suffix, successor
from nebulaio.meta.kms import KmsReader
from nebulaio.meta.nodes import Nodes
from nebulaio.meta.notify import NotifyReader
from nebulaio.meta.records import BUCKET, OBJECT, STATS
from nebulaio.meta.requests import RequestTable
from nebulaio.meta.uploads import UploadReader
from nebulaio.meta.versions import Versions, history_of, version_of
from nebulaio.util.memo import BoundedMemo

COMMON_PREFIX = None
"""Marks a listing item that is a common prefix rather than an object (it has no value)."""
LISTED_RECORDS = 16_384
"""Decoded records of listed objects a reader remembers (see MetaReader.list_objects): with the
XML layer's rendered elements, about 2 KB each, so up to 32 MB in a worker that lists much."""


class ListPage(NamedTuple):
    """One page of a listing; `last` is what to pass as `after` to continue it."""

    entries: list[tuple[str, dict]]
    prefixes: list[str]
    truncated: bool
    last: str | None


EMPTY_PAGE = ListPage([], [], False, None)


class VersionPage(NamedTuple):
    """One page of ListObjectVersions: (record, is latest) in S3 order, and where to go on."""

    entries: list[tuple[dict, bool]]
    prefixes: list[str]
    truncated: bool
    next_key: str | None
    next_version: str | None


EMPTY_VERSION_PAGE = VersionPage([], [], False, None, None)


class HistoryEntry(NamedTuple):
    """A noncurrent version or delete marker, and where it stands in its key's history."""

    record: dict
    newest: bool
    oldest: bool
    has_current: bool
    """The key has a current version, so even its newest history entry is noncurrent."""


class HistoryPage(NamedTuple):
    """One page of a bucket's history; `resume` is what to pass as `after` (None: walked)."""

    entries: list[HistoryEntry]
    resume: bytes | None


class MetaReader:
    """Reads buckets and objects; opened in a worker after fork, never before."""

    __slots__ = (
        "_buckets",
        "_env",
        "_listed",
        "_objects",
        "_stats",
        "_system",
        "_versions",
        "holders",
        "iam",
        "kms",
        "nodes",
        "notify",
        "requests",
        "uploads",
    )

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._listed: BoundedMemo[dict] = BoundedMemo(LISTED_RECORDS)
        self._buckets, self._objects, self._system = open_databases(env)
        self._stats = env.open_db(STATS_DB, create=False)
        self._versions = Versions(env)
        self.uploads = UploadReader(env)
        self.nodes = Nodes(env)
        self.holders = Holders(env)
        self.iam = IamReader(env)
        self.kms = KmsReader(env)
        self.requests = RequestTable(env)
        self.notify = NotifyReader(env)

    def applied_index(self) -> int:
        with self._env.begin(db=self._system) as txn:
            return read_applied(txn, self._system)

    def token_generation(self, user: str) -> int:
        """Admin API tokens issued to `user` carry this; revoking them raises it."""
        with self._env.begin(db=self._system) as txn:
            return read_token_generation(txn, self._system, user)

    def get_bucket(self, name: str) -> dict | None:
        with self._env.begin(db=self._buckets) as txn:
            value = txn.get(name.encode())
        return None if value is None else BUCKET.decode_header(value)

    def list_buckets(self) -> list[dict]:
        """Every bucket, sorted by name."""
        with self._env.begin(db=self._buckets) as txn:
            return [BUCKET.decode_header(value) for value in txn.cursor().iternext(keys=False)]

    def bucket_usage(self) -> dict[str, dict]:
        """{bucket: {"objects", "bytes"}} of every bucket's current versions, from apply's counters."""
        with self._env.begin(db=self._stats) as txn:
            return {name.decode(): STATS.decode_header(value) for name, value in txn.cursor()}

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

    def get_version(self, bucket: str, key: str, version: str) -> tuple[dict, bytes | None] | None:
        """A version by id (a delete marker included), and its bytes when they are stored inline."""
        with self._env.begin() as txn:
            value = txn.get(object_key(bucket, key), db=self._objects)
            if value is not None:
                record, inline = OBJECT.decode(value)
                if version_of(record) == version:
                    return record, bytes(inline) if record["inline"] else None
            found = self._versions.find(txn, bucket, key, version)
            if found is None:
                return None
            record, inline = OBJECT.decode(found[1])
            return record, bytes(inline) if record.get("inline") else None

    def latest_marker(self, bucket: str, key: str) -> dict | None:
        """The delete marker that hides a key with no current version, if that is what hides it."""
        with self._env.begin() as txn:
            newest = self._versions.newest(txn, bucket, key)
        if newest is None:
            return None
        record = OBJECT.decode_header(newest[1])
        return record if record.get("marker") else None

    def file_versions(self, bucket: str) -> set[str]:
        """Files of the bucket's file-backed objects and open uploads' parts, for the sweeper.

        NOTE: one read transaction over the whole bucket; meant for start-up, not requests.
        """
        in_bucket = bucket_prefix(bucket)
        files = self.uploads.part_files(bucket)
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._objects)
            cursor.set_range(in_bucket)
            for lmdb_key, value in cursor.iternext():
                if not lmdb_key.startswith(in_bucket):
                    break
                record = OBJECT.decode_header(value)
                if not record["inline"]:
                    files.add(record["vid"])
            for _, value in self._versions.entries(txn, bucket):
                record = OBJECT.decode_header(value)
                if not record.get("marker") and not record["inline"]:
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
                    entries.append((last, self._listed_record(value)))
        return ListPage(entries, prefixes, False, last)

    def _listed_record(self, value: bytes) -> dict:
        """A listed object's record, the same dict while its stored header is unchanged.

        PERF: decoding was a third of a 1,000-key LIST page's CPU, and clients list the
        same keys again and again (sync tools, the console). The same dict for the same
        header also lets the XML layer keep what it rendered for it. Callers must not
        change it.
        """
        header = OBJECT.framed_header(value)
        return self._listed.get(header) or self._listed.put(header, OBJECT.decode_header(header))

    def list_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str | None = None,
        version_marker: str | None = None,
        max_keys: int = 1000,
    ) -> VersionPage:
        """One page of ListObjectVersions: each key's versions newest first; max_keys counts
        versions, delete markers and common prefixes.

        Keys come from the current versions and from the keys with history, merged; the key
        `key_marker` is skipped whole unless `version_marker` names where in it to go on.
        """
        if max_keys <= 0:
            return EMPTY_VERSION_PAGE
        prefix_bytes = prefix.encode()
        after = None if key_marker is None else key_marker.encode()
        start = prefix_bytes
        if after is not None and after >= prefix_bytes:
            start = after if version_marker is not None else after + b"\0"
        entries: list[tuple[dict, bool]] = []
        prefixes: list[str] = []
        last: tuple[str | None, str | None] = (None, None)
        in_bucket = bucket_prefix(bucket)
        delimiter_bytes = delimiter.encode()
        with self._env.begin() as txn:
            current = _listing(txn.cursor(db=self._objects), in_bucket, prefix_bytes, delimiter_bytes, start, after)
            history = _listing(self._versions.keys_cursor(txn), in_bucket, prefix_bytes, delimiter_bytes, start, after)
            for name, value in _merged(current, history):
                if value is COMMON_PREFIX:
                    if len(entries) + len(prefixes) == max_keys:
                        return VersionPage(entries, prefixes, True, *last)
                    last = (name.decode(), None)
                    prefixes.append(last[0])
                    continue
                key = name.decode()
                versions = self._key_versions(txn, bucket, key)
                skip = 0
                if name == after:  # resuming inside this key, after version_marker
                    ids = [version_of(record) for record in versions]
                    skip = ids.index(version_marker) + 1 if version_marker in ids else len(versions)
                for position in range(skip, len(versions)):
                    if len(entries) + len(prefixes) == max_keys:
                        return VersionPage(entries, prefixes, True, *last)
                    record = versions[position]
                    entries.append((record, position == 0))
                    last = (key, version_of(record))
        return VersionPage(entries, prefixes, False, None, None)

    def list_history(self, bucket: str, after: bytes | None = None, limit: int = 1000) -> HistoryPage:
        """One page of the bucket's noncurrent versions and delete markers, in stored order:
        key by key (in digest order, not S3's), each key's newest first.

        Unlike ListObjectVersions this never reads a key's whole history at once, so a page
        costs `limit` entries however many versions one key has.
        """
        entries: list[HistoryEntry] = []
        with self._env.begin() as txn:
            found = list(islice(self._versions.entries(txn, bucket, after), limit + 1))
            previous = None if after is None else history_of(after)
            has_current = False
            for position, (lmdb_key, value) in enumerate(found[:limit]):
                record = OBJECT.decode_header(value)
                history = history_of(lmdb_key)
                if position == 0 or history != previous:
                    has_current = txn.get(object_key(bucket, record["key"]), db=self._objects) is not None
                following = found[position + 1][0] if position + 1 < len(found) else None
                oldest = following is None or history_of(following) != history
                entries.append(HistoryEntry(record, history != previous, oldest, has_current))
                previous = history
        return HistoryPage(entries, found[limit - 1][0] if len(found) > limit else None)

    def _key_versions(self, txn: lmdb.Transaction, bucket: str, key: str) -> list[dict]:
        """Every version of a key, newest (the latest) first."""
        value = txn.get(object_key(bucket, key), db=self._objects)
        versions = [] if value is None else [OBJECT.decode_header(value)]
        versions.extend(OBJECT.decode_header(v) for _, v in self._versions.history(txn, bucket, key))
        return versions


def _merged(*streams: Iterator[tuple[bytes, bytes | None]]) -> Iterator[tuple[bytes, bytes | None]]:
    """Sorted (name, value) streams merged into one, each name once."""
    previous = None
    for name, value in heapq.merge(*streams, key=itemgetter(0)):
        if name != previous:
            previous = name
            yield name, value


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
