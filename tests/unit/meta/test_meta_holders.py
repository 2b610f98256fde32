"""Placed files in the replica: paged scans for the repair loop and the object.holders command."""

from hypothesis import given
from hypothesis import strategies as st

from nebulaio.meta.holders import CURRENT, HISTORY, UPLOADS, Placed, reassigned

BUCKET = "photos"
UPLOAD_ID = "0" * 31 + "1"


def placed_record(replica, key: str, vid: str, holders: list[str]) -> dict:
    return dict(replica.record(key, vid, inline=False, size=100), holders=holders)


def put(replica, key: str, vid: str, holders: list[str]) -> dict:
    [result] = replica.apply(
        {"op": "object.put", "bucket": BUCKET, "record": placed_record(replica, key, vid, holders)}
    )
    assert result["status"] == "ok"
    return result


def holders_command(key: str, file: str, version: str = "null", **change) -> dict:
    return {"op": "object.holders", "bucket": BUCKET, "key": key, "file": file, "version": version, **change}


def every_placed(replica, source: str, limit: int) -> list[Placed]:
    found, after = [], None
    while True:
        page, after = replica.reader.holders.page(BUCKET, source, after, limit)
        found += page
        if after is None:
            return found


def test_pages_walk_current_versions_and_skip_inline_ones(replica):
    replica.create_bucket(BUCKET)
    for number in range(7):
        put(replica, f"k{number}", f"v{number}", ["a", "b"])
    replica.apply({"op": "object.put", "bucket": BUCKET, "record": replica.record("small", "vs")})
    found = every_placed(replica, CURRENT, 3)
    assert sorted(placed.key for placed in found) == [f"k{number}" for number in range(7)]
    assert all(placed.holders == ("a", "b") and placed.group == placed.file for placed in found)
    assert every_placed(replica, HISTORY, 3) == []


def test_history_and_parts_are_placed_files_too(replica):
    replica.create_bucket(BUCKET)
    replica.apply({"op": "bucket.configure", "bucket": BUCKET, "setting": "versioning", "value": "Enabled"})
    put(replica, "doc", "v1", ["a"])
    put(replica, "doc", "v2", ["b"])
    [old] = every_placed(replica, HISTORY, 10)
    assert (old.file, old.holders) == ("v1", ("a",)) and old.version is not None
    upload = {
        "key": "big",
        "upload_id": UPLOAD_ID,
        "initiated": 1,
        "owner": "o",
        "ctype": "x/y",
        "headers": {},
        "meta": {},
        "checksum_algorithm": None,
    }
    part = {
        "number": 2,
        "etag": "e",
        "size": 5,
        "mtime": 1,
        "checksums": {},
        "file": f"{UPLOAD_ID}.2.f",
        "holders": ["c"],
    }
    replica.apply(
        {"op": "upload.create", "bucket": BUCKET, "record": upload},
        {"op": "upload.part", "bucket": BUCKET, "key": "big", "upload_id": UPLOAD_ID, "part": part},
    )
    [placed] = every_placed(replica, UPLOADS, 10)
    assert (placed.key, placed.group, placed.part, placed.holders) == ("big", UPLOAD_ID, 2, ("c",))
    assert replica.apply({"op": "object.holders", "bucket": BUCKET, **placed.target(), "add": "d"}) == [
        {"status": "ok", "holders": ["c", "d"]}
    ]
    assert replica.reader.uploads.all_parts(BUCKET, UPLOAD_ID)[2]["holders"] == ["c", "d"]


def test_a_holder_is_added_and_dropped_in_place(replica):
    replica.create_bucket(BUCKET)
    put(replica, "k", "v1", ["a", "b"])
    assert replica.apply(holders_command("k", "v1", add="c")) == [{"status": "ok", "holders": ["a", "b", "c"]}]
    assert replica.apply(holders_command("k", "v1", drop="a", require=["b", "c"])) == [
        {"status": "ok", "holders": ["b", "c"]}
    ]
    record, _ = replica.reader.get_object(BUCKET, "k")
    assert record["holders"] == ["b", "c"] and record["size"] == 100


def test_a_drop_that_would_leave_out_a_required_holder_is_refused(replica):
    replica.create_bucket(BUCKET)
    put(replica, "k", "v1", ["a", "b"])
    assert replica.apply(holders_command("k", "v1", drop="a", require=["b", "c"])) == [{"status": "PreconditionFailed"}]
    assert replica.reader.get_object(BUCKET, "k")[0]["holders"] == ["a", "b"]


def test_a_change_to_a_replaced_or_deleted_version_is_gone(replica):
    replica.create_bucket(BUCKET)
    put(replica, "k", "v2", ["a"])
    assert replica.apply(holders_command("k", "v1", add="b")) == [{"status": "Gone"}]
    assert replica.apply(holders_command("missing", "v1", add="b")) == [{"status": "Gone"}]
    assert replica.apply(holders_command("k", "v2", version="0000000000000001", add="b")) == [{"status": "Gone"}]
    assert replica.reader.get_object(BUCKET, "k")[0]["holders"] == ["a"]


def test_a_malformed_change_is_refused_without_raising(replica):
    replica.create_bucket(BUCKET)
    assert replica.apply({"op": "object.holders", "bucket": BUCKET}) == [{"status": "InvalidRequest"}]


NODES = st.sampled_from("abcdef")


@given(st.lists(NODES, unique=True), st.none() | NODES, st.none() | NODES, st.lists(NODES, unique=True))
def test_reassigned_adds_drops_and_never_loses_a_required_holder(holders, add, drop, require):
    changed = reassigned(holders, add, drop, require)
    if changed is None:
        assert drop is not None and not set(require) <= set(holders) - {drop} | {add}
        return
    assert len(changed) == len(set(changed))
    expected = set(holders) - {drop} | ({add} if add is not None else set())
    assert set(changed) == expected
    if drop is not None:
        assert set(require) <= set(changed)


def test_a_file_written_alone_names_no_holders_until_its_node_claims_it(replica):
    replica.create_bucket(BUCKET)
    alone = replica.record("k", "v1", inline=False, size=100)
    assert replica.apply({"op": "object.put", "bucket": BUCKET, "record": alone})[0]["status"] == "ok"
    [placed] = every_placed(replica, CURRENT, 10)
    assert placed.holders is None
    assert replica.apply(holders_command("k", "v1", drop="a")) == [{"status": "PreconditionFailed"}]
    assert replica.apply(holders_command("k", "v1", add="a")) == [{"status": "ok", "holders": ["a"]}]
    assert every_placed(replica, CURRENT, 10)[0].holders == ("a",)
