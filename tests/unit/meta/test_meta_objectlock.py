"""Object lock at apply time: buckets created with it, its setting, default retention, and the
deletions and retention changes it refuses, judged against the command's own time."""

import calendar

import pytest

from nebulaio.meta.objectlock import DAY_MS, add_years

BUCKET = "vault"
NOW = 1_700_000_000_000
HOUR_MS = 3_600_000


def create_locked(replica, bucket: str = BUCKET) -> None:
    command = {"op": "bucket.create", "bucket": bucket, "owner": "o", "created": 1, "region": "r", "object_lock": True}
    assert replica.apply(command) == [{"status": "ok"}]


def configure(replica, setting: str, value, bucket: str = BUCKET) -> str:
    command = {"op": "bucket.configure", "bucket": bucket, "setting": setting, "value": value}
    return replica.apply(command)[0]["status"]


def put(replica, key: str, vid: str, mtime: int = NOW, **lock) -> str:
    record = dict(replica.record(key, vid), mtime=mtime, **lock)
    result = replica.apply(({"op": "object.put", "bucket": BUCKET, "record": record}, b""))[0]
    assert result["status"] == "ok"
    return result["version"]


def delete(replica, key: str, version: str | None, now: int | None = NOW, bypass: bool = False) -> dict:
    command = {"op": "object.delete", "bucket": BUCKET, "key": key, "version": version, "bypass": bypass}
    if now is not None:
        command["mtime"] = now
    return replica.apply(command)[0]


def retain(replica, key: str, version: str | None, retention, now: int = NOW, bypass: bool = False) -> str:
    command = {
        "op": "object.update",
        "bucket": BUCKET,
        "key": key,
        "version": version,
        "changes": {"retention": retention},
        "now": now,
        "bypass": bypass,
    }
    return replica.apply(command)[0]["status"]


def governance(until: int) -> dict:
    return {"mode": "GOVERNANCE", "until": until}


def compliance(until: int) -> dict:
    return {"mode": "COMPLIANCE", "until": until}


def stored(replica, key: str, version: str) -> dict:
    return replica.reader.get_version(BUCKET, key, version)[0]


def test_a_bucket_created_with_lock_is_versioned_and_cannot_be_suspended(replica):
    create_locked(replica)
    record = replica.reader.get_bucket(BUCKET)
    assert (record["versioning"], record["object_lock"]) == ("Enabled", {"enabled": True})
    assert configure(replica, "versioning", "Suspended") == "InvalidBucketState"
    assert configure(replica, "object_lock", None) == "InvalidRequest"
    assert replica.reader.get_bucket(BUCKET)["versioning"] == "Enabled"


def test_lock_is_turned_on_only_where_versioning_is_enabled(replica):
    replica.create_bucket(BUCKET)
    enabled = {"enabled": True}
    assert configure(replica, "object_lock", enabled) == "InvalidBucketState"
    assert configure(replica, "versioning", "Suspended") == "ok"
    assert configure(replica, "object_lock", enabled) == "InvalidBucketState"
    assert configure(replica, "versioning", "Enabled") == "ok"
    assert configure(replica, "object_lock", enabled) == "ok"
    assert configure(replica, "versioning", "Suspended") == "InvalidBucketState"


@pytest.mark.parametrize(
    "value",
    [
        {"enabled": False},
        {"enabled": True, "rule": {"mode": "SOFT", "days": 1}},
        {"enabled": True, "rule": {"mode": "GOVERNANCE", "days": 0}},
        {"enabled": True, "rule": {"mode": "GOVERNANCE", "days": 1, "years": 1}},
        {"enabled": True, "rule": {"mode": "GOVERNANCE", "years": 101}},
        {"enabled": True, "rule": {"mode": "GOVERNANCE", "days": "1"}},
        {"enabled": True, "rule": {"mode": "GOVERNANCE"}},
        "on",
    ],
)
def test_a_malformed_lock_setting_is_never_stored(replica, value):
    create_locked(replica)
    assert configure(replica, "object_lock", value) == "InvalidRequest"
    assert replica.reader.get_bucket(BUCKET)["object_lock"] == {"enabled": True}


def test_default_retention_counts_from_the_version_creation(replica):
    create_locked(replica)
    rule = {"mode": "COMPLIANCE", "days": 3}
    assert configure(replica, "object_lock", {"enabled": True, "rule": rule}) == "ok"
    version = put(replica, "days", "v1")
    assert stored(replica, "days", version)["retention"] == compliance(NOW + 3 * DAY_MS)
    named = put(replica, "named", "v2", retention=governance(NOW + 5))
    assert stored(replica, "named", named)["retention"] == governance(NOW + 5)
    assert configure(replica, "object_lock", {"enabled": True, "rule": {"mode": "GOVERNANCE", "years": 2}}) == "ok"
    version = put(replica, "years", "v3")
    assert stored(replica, "years", version)["retention"] == governance(add_years(NOW, 2))
    assert configure(replica, "object_lock", {"enabled": True}) == "ok"
    version = put(replica, "none", "v4")
    assert "retention" not in stored(replica, "none", version)


def test_years_are_calendar_years():
    start = calendar.timegm((2024, 2, 29, 12, 30, 15)) * 1000 + 250
    assert add_years(start, 1) == calendar.timegm((2025, 3, 1, 12, 30, 15)) * 1000 + 250
    assert add_years(start, 4) == calendar.timegm((2028, 2, 29, 12, 30, 15)) * 1000 + 250


@pytest.mark.parametrize(
    ("lock", "now", "bypass", "allowed"),
    [
        ({}, NOW, False, True),
        ({"legal_hold": True}, NOW, True, False),
        ({"legal_hold": False}, NOW, False, True),
        ({"retention": compliance(NOW + 1)}, NOW, True, False),
        ({"retention": compliance(NOW)}, NOW, False, True),
        ({"retention": governance(NOW + 1)}, NOW, False, False),
        ({"retention": governance(NOW + 1)}, NOW, True, True),
        ({"retention": governance(NOW - 1)}, NOW, False, True),
        ({"retention": governance(NOW - 1)}, None, False, False),
        ({"retention": governance(NOW - 1), "legal_hold": True}, NOW, True, False),
    ],
)
@pytest.mark.parametrize("current", [True, False], ids=["current", "noncurrent"])
def test_deleting_a_version_respects_its_lock(replica, lock, now, bypass, allowed, current):
    create_locked(replica)
    version = put(replica, "k", "v1", **lock)
    if not current:
        put(replica, "k", "v2")
    result = delete(replica, "k", version, now, bypass)
    assert result["status"] == ("ok" if allowed else "AccessDenied")
    assert (replica.reader.get_version(BUCKET, "k", version) is None) is allowed


def test_a_locked_version_can_be_hidden_and_overwritten(replica):
    create_locked(replica)
    held = put(replica, "k", "v1", retention=compliance(NOW + HOUR_MS), legal_hold=True)
    marker = delete(replica, "k", None)
    assert marker["marker"] is True
    put(replica, "k", "v2")
    assert delete(replica, "k", marker["version"])["status"] == "ok"
    assert stored(replica, "k", held)["legal_hold"] is True


def test_delete_many_refuses_each_locked_version_alone(replica):
    create_locked(replica)
    held = put(replica, "held", "v1", retention=governance(NOW + HOUR_MS))
    free = put(replica, "free", "v2")
    command = {
        "op": "object.delete_many",
        "bucket": BUCKET,
        "objects": [["held", held], ["free", free], ["held", None]],
        "mtime": NOW,
    }
    result = replica.apply(command)[0]
    assert result["status"] == "ok"
    assert [entry["status"] for entry in result["deleted"]] == ["AccessDenied", "ok", "ok"]
    assert replica.reader.get_version(BUCKET, "held", held) is not None
    assert replica.reader.get_version(BUCKET, "free", free) is None
    result = replica.apply(dict(command, objects=[["held", held]], bypass=True))[0]
    assert [entry["status"] for entry in result["deleted"]] == ["ok"]


@pytest.mark.parametrize(
    ("held", "new", "bypass", "allowed"),
    [
        (None, governance(NOW + 1), False, True),
        (compliance(NOW + 10), compliance(NOW + 10), False, True),
        (compliance(NOW + 10), compliance(NOW + 20), False, True),
        (compliance(NOW + 10), compliance(NOW + 5), True, False),
        (compliance(NOW + 10), governance(NOW + 20), True, False),
        (compliance(NOW + 10), None, True, False),
        (compliance(NOW - 10), None, False, True),
        (compliance(NOW - 10), governance(NOW + 1), False, True),
        (governance(NOW + 10), governance(NOW + 20), False, True),
        (governance(NOW + 10), governance(NOW + 5), False, False),
        (governance(NOW + 10), compliance(NOW + 20), False, False),
        (governance(NOW + 10), None, False, False),
        (governance(NOW + 10), governance(NOW + 5), True, True),
        (governance(NOW + 10), compliance(NOW + 20), True, True),
        (governance(NOW + 10), None, True, True),
    ],
)
def test_retention_changes_as_s3_allows_them(replica, held, new, bypass, allowed):
    create_locked(replica)
    version = put(replica, "k", "v1", **({} if held is None else {"retention": held}))
    assert retain(replica, "k", version, new, bypass=bypass) == ("ok" if allowed else "AccessDenied")
    assert stored(replica, "k", version).get("retention") == (new if allowed else held)


def test_a_retention_change_without_a_time_never_weakens_a_lock(replica):
    create_locked(replica)
    version = put(replica, "k", "v1", retention=governance(NOW - 10))
    command = {"op": "object.update", "bucket": BUCKET, "key": "k", "version": version, "changes": {"retention": None}}
    assert replica.apply(command)[0]["status"] == "AccessDenied"
    command["changes"] = {"legal_hold": True}
    assert replica.apply(command)[0]["status"] == "ok"
