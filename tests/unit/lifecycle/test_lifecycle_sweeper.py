"""The sweeper over a real replica: what it proposes, and that apply has the last word."""

import asyncio

from nebulaio.lifecycle.sweeper import PAGE_SIZE, LifecycleSweeper

BUCKET = "logs"
NOW = 1_800_000_000.0  # far past every record's mtime in these tests
NOW_MS = int(NOW * 1000)
DAY = 86400


def configure(replica, *rules: dict) -> None:
    value = {"rules": list(rules), "minimum_size": "all_storage_classes_128K"}
    command = {"op": "bucket.configure", "bucket": BUCKET, "setting": "lifecycle", "value": value}
    assert replica.apply(command) == [{"status": "ok"}]


def date_rule(prefix: str | None = None, enabled: bool = True, **extra) -> dict:
    selection = {"form": "filter", "prefix": prefix, "tags": [], "gt": None, "lt": None}
    return {"id": "r", "enabled": enabled, "filter": selection, "expiration": {"date": 0}, **extra}


def sweep(replica, submit=None, leader: bool = True, now: float = NOW) -> list[dict]:
    """Run one pass at `now`; returns the commands it proposed, each applied as its own raft entry."""
    proposed = []

    async def apply(command: dict) -> dict:
        proposed.append(command)
        return (submit or (lambda c: replica.apply(c)[0]))(command)

    sweeper = LifecycleSweeper(replica.reader, apply, lambda: leader, interval=1, day_seconds=DAY, clock=lambda: now)
    asyncio.run(sweeper.sweep())
    return proposed


def keys(replica) -> list[str]:
    return [key for key, _ in replica.reader.list_objects(BUCKET, max_keys=10_000).entries]


def test_expires_matching_current_versions_naming_the_version_judged(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["old/a", "old/b", "new/a"])
    configure(replica, date_rule("old/"))
    proposed = sweep(replica)
    assert proposed == [
        {"op": "object.delete", "bucket": BUCKET, "key": key, "if_vid": "v1", "mtime": NOW_MS}
        for key in ("old/a", "old/b")
    ]
    assert keys(replica) == ["new/a"]


def test_tag_filters_match_the_records_tags_field(replica):
    replica.create_bucket(BUCKET)
    for key, tags in (("tagged", {"env": "dev"}), ("other", {"env": "prod"}), ("bare", None)):
        record = replica.record(key)
        if tags is not None:
            record["tags"] = tags
        assert replica.apply({"op": "object.put", "bucket": BUCKET, "record": record})[0]["status"] == "ok"
    rule = date_rule()
    rule["filter"]["tags"] = [["env", "dev"]]
    configure(replica, rule)
    sweep(replica)
    assert keys(replica) == ["bare", "other"]


def test_a_version_written_after_the_sweeper_looked_survives(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["k"])
    configure(replica, date_rule())
    newer = dict(replica.record("k"), vid="v2")

    def overwrite_first(command: dict) -> dict:
        replica.apply({"op": "object.put", "bucket": BUCKET, "record": newer})
        return replica.apply(command)[0]

    proposed = sweep(replica, overwrite_first)
    assert [command["if_vid"] for command in proposed] == ["v1"]
    record, _ = replica.reader.get_object(BUCKET, "k")
    assert record["vid"] == "v2"


def test_disabled_rules_and_followers_propose_nothing(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["k"])
    configure(replica, date_rule(enabled=False))
    assert sweep(replica) == []
    configure(replica, date_rule())
    assert sweep(replica, leader=False) == []
    assert keys(replica) == ["k"]


def test_walks_a_bucket_page_by_page(replica):
    replica.create_bucket(BUCKET)
    names = [f"k{i:05d}" for i in range(PAGE_SIZE * 2 + 5)]
    replica.put_keys(BUCKET, names)
    configure(replica, date_rule())
    assert [command["key"] for command in sweep(replica)] == names
    assert keys(replica) == []


def test_aborts_old_uploads_under_the_rules_prefix(replica):
    replica.create_bucket(BUCKET)
    for key, upload_id in (("tmp/a", "0" * 32), ("keep/b", "1" * 32)):
        record = {"key": key, "upload_id": upload_id, "initiated": 0, "owner": "o", "ctype": None}
        replica.apply({"op": "upload.create", "bucket": BUCKET, "record": record})
    configure(replica, {**date_rule("tmp/"), "abort_days": 1})
    proposed = [command for command in sweep(replica) if command["op"] == "upload.abort"]
    assert proposed == [{"op": "upload.abort", "bucket": BUCKET, "key": "tmp/a", "upload_id": "0" * 32}]
    remaining = replica.reader.uploads.list_uploads(BUCKET, "", "", None, None, 10).uploads
    assert [upload["key"] for upload in remaining] == ["keep/b"]


# --- versioned buckets -------------------------------------------------------------------


def versioned(replica, state: str = "Enabled") -> None:
    replica.create_bucket(BUCKET)
    command = {"op": "bucket.configure", "bucket": BUCKET, "setting": "versioning", "value": state}
    assert replica.apply(command) == [{"status": "ok"}]


def put(replica, key: str, vid: str, mtime: int = 1_700_000_000_000, tags: dict | None = None) -> str:
    record = dict(replica.record(key, vid, inline=False), mtime=mtime)
    if tags:
        record["tags"] = tags
    [result] = replica.apply({"op": "object.put", "bucket": BUCKET, "record": record})
    assert result["status"] == "ok"
    return result["version"]


def delete(replica, key: str, version: str | None = None, mtime: int = 1_700_000_000_000) -> dict:
    [result] = replica.apply({"op": "object.delete", "bucket": BUCKET, "key": key, "version": version, "mtime": mtime})
    assert result["status"] == "ok"
    return result


def versions(replica, key: str | None = None) -> list[tuple[str, str, bool]]:
    """(key, vid or "marker", is latest) of every version, as ListObjectVersions lists them."""
    page = replica.reader.list_versions(BUCKET, max_keys=100_000)
    return [
        (record["key"], "marker" if record.get("marker") else record["vid"], latest)
        for record, latest in page.entries
        if key is None or record["key"] == key
    ]


def noncurrent_rule(days: int = 1, newer: int | None = None, prefix: str | None = None, tags=()) -> dict:
    selection = {"form": "filter", "prefix": prefix, "tags": [list(tag) for tag in tags], "gt": None, "lt": None}
    return {"id": "n", "enabled": True, "filter": selection, "noncurrent": {"days": days, "newer": newer}}


def marker_rule(**selection) -> dict:
    stored = {"form": "filter", "prefix": None, "tags": [], "gt": None, "lt": None, **selection}
    return {"id": "m", "enabled": True, "filter": stored, "expiration": {"delete_marker": True}}


def at(day: int, hour: int = 0) -> int:
    """Epoch ms of `hour` o'clock UTC on day `day` since the epoch."""
    return (day * DAY + hour * 3600) * 1000


def test_expiry_in_a_versioned_bucket_adds_a_delete_marker(replica):
    versioned(replica)
    put(replica, "k", "v1")
    configure(replica, date_rule())
    [command] = sweep(replica)
    assert command == {"op": "object.delete", "bucket": BUCKET, "key": "k", "if_vid": "v1", "mtime": NOW_MS}
    assert versions(replica) == [("k", "marker", True), ("k", "v1", False)]
    assert replica.reader.latest_marker(BUCKET, "k")["mtime"] == NOW_MS
    assert replica.released == []
    # The marker is the latest version but not the only one: the next pass leaves it alone.
    assert sweep(replica) == []


def test_expiry_in_a_suspended_bucket_replaces_the_null_version_with_a_null_marker(replica):
    versioned(replica)
    put(replica, "k", "kept")
    command = {"op": "bucket.configure", "bucket": BUCKET, "setting": "versioning", "value": "Suspended"}
    replica.apply(command)
    put(replica, "k", "null-1")
    configure(replica, date_rule())
    sweep(replica)
    assert versions(replica) == [("k", "marker", True), ("k", "kept", False)]
    assert replica.reader.latest_marker(BUCKET, "k")["version"] == "null"
    assert replica.released == [(BUCKET, "k", "null-1")]


def test_noncurrent_days_count_from_when_the_version_was_replaced(replica):
    versioned(replica)
    old = put(replica, "k", "v1", mtime=at(10, 9))
    put(replica, "k", "v2", mtime=at(20, 10))  # v1 noncurrent since day 20, 10:00
    configure(replica, noncurrent_rule(days=3))
    due = at(24)  # three days later, rounded up to the next midnight
    assert sweep(replica, now=due / 1000 - 0.001) == []
    assert sweep(replica, now=due / 1000) == [
        {"op": "object.delete", "bucket": BUCKET, "key": "k", "version": old, "mtime": due, "if_noncurrent": 0}
    ]
    assert versions(replica) == [("k", "v2", True)]
    assert replica.released == [(BUCKET, "k", "v1")]


def test_newer_noncurrent_versions_are_kept(replica):
    versioned(replica)
    for n in range(1, 6):
        put(replica, "current", f"c{n}")  # c5 current, c4 c3 c2 c1 noncurrent
    for n in range(1, 4):
        put(replica, "deleted", f"d{n}")
    delete(replica, "deleted")  # a marker is the latest: d3 d2 d1 are the noncurrent ones
    configure(replica, noncurrent_rule(newer=2))
    proposed = sweep(replica)
    assert {command["if_noncurrent"] for command in proposed} == {2}
    assert versions(replica) == [
        ("current", "c5", True),
        ("current", "c4", False),
        ("current", "c3", False),
        ("deleted", "marker", True),
        ("deleted", "d3", False),
        ("deleted", "d2", False),
    ]
    assert sweep(replica) == []


def test_noncurrent_delete_markers_expire_and_count_like_versions(replica):
    versioned(replica)
    put(replica, "k", "v1")
    delete(replica, "k")
    put(replica, "k", "v2")  # the marker is noncurrent now, and newer than v1
    configure(replica, noncurrent_rule(newer=1))
    sweep(replica)
    assert versions(replica) == [("k", "v2", True), ("k", "marker", False)]
    configure(replica, noncurrent_rule())
    sweep(replica)
    assert versions(replica) == [("k", "v2", True)]


def test_a_long_history_is_walked_page_by_page(replica):
    versioned(replica)
    depth = PAGE_SIZE * 2 + 5
    commands = [
        ({"op": "object.put", "bucket": BUCKET, "record": replica.record(key, f"{key}{n}")}, None)
        for key, count in (("deep", depth), ("a", 3), ("b", 1), ("c", 4))
        for n in range(count)
    ]
    assert all(result["status"] == "ok" for result in replica.apply(*commands))
    configure(replica, noncurrent_rule(newer=2))
    sweep(replica)  # the deep key's history alone spans three pages
    kept = {key: [vid for _, vid, _ in versions(replica, key)] for key in ("deep", "a", "b", "c")}
    assert kept == {
        "deep": [f"deep{n}" for n in range(depth - 1, depth - 4, -1)],
        "a": ["a2", "a1", "a0"],
        "b": ["b0"],
        "c": ["c3", "c2", "c1"],
    }


def test_a_version_made_current_again_is_not_deleted(replica):
    versioned(replica)
    old = put(replica, "k", "v1")
    newer = put(replica, "k", "v2")
    configure(replica, noncurrent_rule())

    def delete_the_current_version_first(command: dict) -> dict:
        delete(replica, "k", newer)  # v1 is current again
        return replica.apply(command)[0]

    [command] = sweep(replica, delete_the_current_version_first)
    assert command["version"] == old
    assert versions(replica) == [("k", "v1", True)]


def test_only_delete_markers_alone_in_their_key_are_removed(replica):
    versioned(replica)
    v1 = put(replica, "alone", "a1")
    marker = delete(replica, "alone")["version"]
    delete(replica, "alone", v1)
    put(replica, "hidden", "h1")
    delete(replica, "hidden")
    configure(replica, marker_rule())
    [command] = sweep(replica)
    assert command == {
        "op": "object.delete",
        "bucket": BUCKET,
        "key": "alone",
        "version": marker,
        "mtime": command["mtime"],
        "if_sole": True,
    }
    assert versions(replica) == [("hidden", "marker", True), ("hidden", "h1", False)]


def test_a_marker_that_is_no_longer_alone_stays(replica):
    versioned(replica)
    v1 = put(replica, "k", "v1")
    delete(replica, "k")
    delete(replica, "k", v1)
    configure(replica, marker_rule())

    def write_over_it_first(command: dict) -> dict:
        put(replica, "k", "v2")
        return replica.apply(command)[0]

    assert len(sweep(replica, write_over_it_first)) == 1
    assert versions(replica) == [("k", "v2", True), ("k", "marker", False)]


def test_a_days_rule_removes_lone_markers_once_they_are_that_old(replica):
    versioned(replica)
    v1 = put(replica, "k", "v1")
    delete(replica, "k", mtime=at(30, 12))
    delete(replica, "k", v1)
    assert versions(replica) == [("k", "marker", True)]
    configure(replica, {**date_rule(), "expiration": {"days": 2}})
    assert sweep(replica, now=at(33) / 1000 - 0.001) == []
    assert len(sweep(replica, now=at(33) / 1000)) == 1
    assert versions(replica) == []


def test_markers_pass_size_filters_but_never_tag_filters(replica):
    versioned(replica)
    for key in ("small", "big", "tagged"):
        version = put(replica, key, key)
        delete(replica, key)
        delete(replica, key, version)
    configure(replica, marker_rule(prefix="s", lt=1), {**marker_rule(prefix="b", gt=100), "id": "big"})
    sweep(replica)
    assert versions(replica) == [("tagged", "marker", True)]
    rule = {**date_rule(), "id": "tags"}
    rule["filter"]["tags"] = [["class", "scratch"]]
    configure(replica, rule)
    assert sweep(replica) == []


def test_noncurrent_tag_filters_match_each_versions_own_tags(replica):
    versioned(replica)
    put(replica, "k", "scratch-1", tags={"class": "scratch"})
    put(replica, "k", "plain")
    put(replica, "k", "scratch-2", tags={"class": "scratch"})
    put(replica, "k", "current", tags={"class": "scratch"})
    configure(replica, noncurrent_rule(tags=[("class", "scratch")]))
    sweep(replica)
    assert versions(replica) == [("k", "current", True), ("k", "plain", False)]


def test_refused_deletions_are_normal_outcomes(replica, caplog):
    versioned(replica)
    put(replica, "k", "v1")
    put(replica, "k", "v2")
    configure(replica, noncurrent_rule(), date_rule())
    proposed = sweep(replica, lambda command: {"status": "AccessDenied"})  # e.g. a locked version
    assert len(proposed) == 2
    assert [record for record in caplog.records if record.levelname != "DEBUG"] == []
