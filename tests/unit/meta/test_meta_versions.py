"""Versioning in the replica: history, delete markers, the null version, and ListObjectVersions."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from nebulaio.meta.versions import is_valid_version, parse_version

BUCKET = "history"
MTIME = 1_700_000_000_000


def put(replica, key: str, vid: str, inline: bool = False, bucket: str = BUCKET) -> dict:
    result = replica.apply(({"op": "object.put", "bucket": bucket, "record": replica.record(key, vid, inline)}, None))
    assert result[0]["status"] == "ok", result
    return result[0]


def delete(replica, key: str, version: str | None = None, bucket: str = BUCKET) -> dict:
    command = {"op": "object.delete", "bucket": bucket, "key": key, "version": version, "mtime": MTIME}
    return replica.apply(command)[0]


def versioning(replica, state: str, bucket: str = BUCKET) -> str:
    command = {"op": "bucket.configure", "bucket": bucket, "setting": "versioning", "value": state}
    return replica.apply(command)[0]["status"]


def listed(replica, bucket: str = BUCKET, **query) -> list[tuple[str, str, bool, bool]]:
    """Every (key, version id, is latest, is delete marker), page by page."""
    got = []
    key_marker = version_marker = None
    while True:
        page = replica.reader.list_versions(bucket, key_marker=key_marker, version_marker=version_marker, **query)
        items = [(r["key"], r.get("version", "null"), latest, bool(r.get("marker"))) for r, latest in page.entries]
        items += [(p, None, False, False) for p in page.prefixes]
        got += sorted(items, key=lambda item: item[0].encode())  # stable: a key's versions keep their order
        if not page.truncated:
            return got
        key_marker, version_marker = page.next_key, page.next_version


def test_enabled_keeps_every_version_and_deletes_with_a_marker(replica):
    replica.create_bucket(BUCKET)
    put(replica, "k", "before")  # written before versioning: the null version
    assert versioning(replica, "Enabled") == "ok"
    v1 = put(replica, "k", "f1")["version"]
    v2 = put(replica, "k", "f2")["version"]
    assert parse_version(v1) < parse_version(v2)
    assert replica.released == []
    assert replica.reader.get_object(BUCKET, "k")[0]["vid"] == "f2"
    marker = delete(replica, "k")
    assert marker["marker"] is True
    assert replica.reader.get_object(BUCKET, "k") is None
    assert replica.reader.latest_marker(BUCKET, "k")["version"] == marker["version"]
    assert listed(replica) == [
        ("k", marker["version"], True, True),
        ("k", v2, False, False),
        ("k", v1, False, False),
        ("k", "null", False, False),
    ]
    assert replica.reader.get_version(BUCKET, "k", "null")[0]["vid"] == "before"
    assert replica.apply({"op": "bucket.delete", "bucket": BUCKET})[0]["status"] == "BucketNotEmpty"

    # Deleting the marker brings v2 back; deleting v2 by id then makes v1 current.
    assert delete(replica, "k", marker["version"]) == {"status": "ok", "version": marker["version"], "marker": True}
    assert replica.reader.get_object(BUCKET, "k")[0]["vid"] == "f2"
    delete(replica, "k", v2)
    assert replica.reader.get_object(BUCKET, "k")[0]["vid"] == "f1"
    assert replica.released == [(BUCKET, "k", "f2")]
    assert replica.reader.file_versions(BUCKET) == {"f1", "before"}
    delete(replica, "k", "null")
    delete(replica, "k", v1)
    assert listed(replica) == []
    assert replica.apply({"op": "bucket.delete", "bucket": BUCKET})[0]["status"] == "ok"


def test_suspended_writes_replace_only_the_null_version(replica):
    replica.create_bucket(BUCKET)
    versioning(replica, "Enabled")
    kept = put(replica, "k", "kept")["version"]
    assert versioning(replica, "Suspended") == "ok"
    assert put(replica, "k", "null-1")["version"] == "null"
    assert put(replica, "k", "null-2")["version"] == "null"
    assert replica.released == [(BUCKET, "k", "null-1")]
    assert delete(replica, "k") == {"status": "ok", "marker": True, "version": "null"}
    assert replica.released == [(BUCKET, "k", "null-1"), (BUCKET, "k", "null-2")]
    assert listed(replica) == [("k", "null", True, True), ("k", kept, False, False)]
    put(replica, "k", "null-3")  # replaces the null delete marker
    assert listed(replica) == [("k", "null", True, False), ("k", kept, False, False)]


def test_versioning_cannot_be_turned_off(replica):
    replica.create_bucket(BUCKET)
    assert versioning(replica, "Off") == "IllegalVersioningConfigurationException"
    assert versioning(replica, "Suspended") == "ok"


def test_update_reaches_noncurrent_versions(replica):
    replica.create_bucket(BUCKET)
    versioning(replica, "Enabled")
    old = put(replica, "k", "f1", inline=True)["version"]
    put(replica, "k", "f2")
    update = {"op": "object.update", "bucket": BUCKET, "key": "k", "version": old, "changes": {"tags": {"a": "1"}}}
    assert replica.apply(update)[0] == {"status": "ok", "version": old}
    assert replica.reader.get_version(BUCKET, "k", old)[0]["tags"] == {"a": "1"}
    assert "tags" not in replica.reader.get_object(BUCKET, "k")[0]
    missing = dict(update, version="0" * 16)
    assert replica.apply(missing)[0]["status"] == "NoSuchVersion"
    marker = delete(replica, "k")["version"]
    assert replica.apply(dict(update, version=marker))[0]["status"] == "MethodNotAllowed"


def test_delete_many_reports_each_outcome(replica):
    replica.create_bucket(BUCKET)
    versioning(replica, "Enabled")
    v1 = put(replica, "a", "fa")["version"]
    command = {"op": "object.delete_many", "bucket": BUCKET, "objects": [["a", v1], ["b", None]], "mtime": MTIME}
    deleted = replica.apply(command)[0]["deleted"]
    assert deleted[0] == {"status": "ok", "version": v1}
    assert deleted[1]["marker"] is True
    assert listed(replica) == [("b", deleted[1]["version"], True, True)]


KEYS = st.lists(st.sampled_from(["a", "a/b", "a/c", "b", "b\0", "c/d/e", "é"]), max_size=12)
OPERATIONS = st.lists(st.tuples(st.sampled_from(["put", "delete", "suspend", "enable"]), KEYS), max_size=6)


BUCKET_NAMES = itertools.count()


def run(replica, bucket: str, operations) -> None:
    """Enable versioning on `bucket`, then apply the generated operations in order."""
    versioning(replica, "Enabled", bucket)
    for operation, keys in operations:
        if operation in ("suspend", "enable"):
            versioning(replica, "Suspended" if operation == "suspend" else "Enabled", bucket)
        for key in keys:
            if operation == "delete":
                delete(replica, key, bucket=bucket)
            else:
                put(replica, key, f"f{next(BUCKET_NAMES)}", inline=True, bucket=bucket)


@settings(max_examples=40, deadline=None)
@given(OPERATIONS, st.integers(1, 5), st.sampled_from(["", "/"]))
def test_paging_lists_every_version_once_in_order(shared_replica, operations, max_keys, delimiter):
    replica = shared_replica
    bucket = f"paging-{next(BUCKET_NAMES)}"
    replica.create_bucket(bucket)
    run(replica, bucket, operations)
    whole = listed(replica, bucket, max_keys=1000, delimiter=delimiter)
    assert listed(replica, bucket, max_keys=max_keys, delimiter=delimiter) == whole
    names = [name for name, *_ in whole]
    assert names == sorted(names, key=str.encode)
    latest = [name for name, _, is_latest, _ in whole if is_latest]
    assert len(latest) == len(set(latest))
    if not delimiter:
        current = {key for key, *_ in (replica.reader.list_objects(bucket, max_keys=1000).entries)}
        assert {name for name, _, is_latest, marker in whole if is_latest and not marker} == current


def test_version_ids_are_checked():
    assert is_valid_version("null")
    assert is_valid_version("0123456789abcdef")
    assert not is_valid_version("0123456789abcdeg")
    assert not is_valid_version("")


def since(replica, key: str, version: str):
    return replica.reader.get_version(BUCKET, key, version)[0].get("noncurrent_since")


def test_a_delete_marker_knows_since_when_it_is_noncurrent(replica):
    replica.create_bucket(BUCKET)
    versioning(replica, "Enabled")
    put(replica, "k", "f1")
    first = replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "k", "mtime": 10})[0]["version"]
    assert since(replica, "k", first) is None  # the latest version
    second = replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "k", "mtime": 20})[0]["version"]
    assert since(replica, "k", first) == 20
    record = dict(replica.record("k", "f2"), mtime=30)
    replica.apply({"op": "object.put", "bucket": BUCKET, "record": record})
    assert (since(replica, "k", first), since(replica, "k", second)) == (20, 30)
    # Deleting the current version makes the second marker the latest again.
    delete(replica, "k", replica.reader.get_object(BUCKET, "k")[0]["version"])
    assert since(replica, "k", second) is None


def guarded(replica, key: str, version: str, **guard) -> str:
    command = {"op": "object.delete", "bucket": BUCKET, "key": key, "version": version, **guard}
    return replica.apply(command)[0]["status"]


def test_background_deletes_of_a_version_check_where_it_stands(replica):
    replica.create_bucket(BUCKET)
    versioning(replica, "Enabled")
    v1, v2, v3 = (put(replica, "k", f"f{n}")["version"] for n in range(1, 4))
    assert guarded(replica, "k", v3, if_noncurrent=0) == "PreconditionFailed"  # current
    assert guarded(replica, "k", v2, if_noncurrent=1) == "PreconditionFailed"  # the newest noncurrent
    assert guarded(replica, "k", v1, if_noncurrent=2) == "PreconditionFailed"  # only v2 is newer
    assert guarded(replica, "k", v1, if_sole=True) == "PreconditionFailed"
    assert guarded(replica, "k", v1, if_noncurrent=1) == "ok"
    marker = delete(replica, "k")["version"]
    # Without a current version the marker is the latest: v3 is the newest noncurrent one.
    assert guarded(replica, "k", marker, if_noncurrent=0) == "PreconditionFailed"
    assert guarded(replica, "k", v2, if_noncurrent=1) == "ok"
    assert guarded(replica, "k", marker, if_sole=True) == "PreconditionFailed"
    delete(replica, "k", v3)
    assert guarded(replica, "k", marker, if_sole=True) == "ok"
    assert listed(replica) == []


def walked(replica, bucket: str, limit: int) -> list[tuple[str, str, bool, bool, bool]]:
    """Every history entry as (key, version, newest, oldest, key has a current version), page by page."""
    got, after = [], None
    while True:
        page = replica.reader.list_history(bucket, after, limit)
        got += [(e.record["key"], e.record.get("version"), e.newest, e.oldest, e.has_current) for e in page.entries]
        if page.resume is None:
            return got
        after = page.resume


@settings(max_examples=40, deadline=None)
@given(OPERATIONS, st.integers(1, 4))
def test_history_pages_tell_where_each_entry_stands(shared_replica, operations, limit):
    replica = shared_replica
    bucket = f"history-{next(BUCKET_NAMES)}"
    replica.create_bucket(bucket)
    run(replica, bucket, operations)
    whole = walked(replica, bucket, 1000)
    assert walked(replica, bucket, limit) == whole
    # What ListObjectVersions says, less the current versions (which are not history).
    expected = {}
    for key, version, latest, marker in listed(replica, bucket):
        expected.setdefault(key, []).append((version, latest and not marker))
    current = {key for key, history in expected.items() if history[0][1]}
    for key in current:
        expected[key].pop(0)
    got = {}
    for key, version, newest, oldest, has_current in whole:
        got.setdefault(key, []).append((version or "null", newest, oldest))
        assert has_current == (key in current)
    assert got == {
        key: [(version, n == 0, n == len(history) - 1) for n, (version, _) in enumerate(history)]
        for key, history in expected.items()
        if history
    }
