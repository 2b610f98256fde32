"""Lifecycle rules: S3's day arithmetic and which objects and uploads a rule reaches."""

import calendar

import pytest

from nebulaio.lifecycle.rules import Lifecycle, due_ms

DAY = 86400
DAY_MS = DAY * 1000


def epoch_ms(*moment: int) -> int:
    return calendar.timegm((*moment, 0, 0, 0)) * 1000


def rule(expiration=None, prefix=None, tags=(), gt=None, lt=None, enabled=True, abort_days=None) -> dict:
    stored = {
        "id": "r",
        "enabled": enabled,
        "filter": {"form": "filter", "prefix": prefix, "tags": [list(t) for t in tags], "gt": gt, "lt": lt},
    }
    if expiration is not None:
        stored["expiration"] = expiration
    if abort_days is not None:
        stored["abort_days"] = abort_days
    return stored


def lifecycle(*rules: dict, day_seconds: int = DAY) -> Lifecycle:
    return Lifecycle({"rules": list(rules), "minimum_size": "all_storage_classes_128K"}, day_seconds)


def record(size: int = 10, mtime: int = 0, tags: dict | None = None) -> dict:
    found = {"size": size, "mtime": mtime, "vid": "v1"}
    if tags is not None:
        found["tags"] = tags
    return found


def test_days_round_up_to_the_next_midnight_utc():
    # S3's own example: created 2014-01-15 10:30 UTC, expires after 3 days on 2014-01-19 00:00 UTC.
    assert due_ms(epoch_ms(2014, 1, 15, 10, 30, 0), 3, DAY) == epoch_ms(2014, 1, 19, 0, 0, 0)
    assert due_ms(epoch_ms(2014, 1, 15, 0, 0, 0), 3, DAY) == epoch_ms(2014, 1, 18, 0, 0, 0)
    assert due_ms(1500, 1, 1) == 3000  # a one-second "day" for tests


def test_days_rule_expires_once_due():
    created = epoch_ms(2024, 3, 1, 12, 0, 0)
    rules = lifecycle(rule({"days": 1}))
    due = epoch_ms(2024, 3, 3, 0, 0, 0)
    assert not rules.object_expired("k", record(mtime=created), due - 1)
    assert rules.object_expired("k", record(mtime=created), due)


def test_date_rule_applies_from_that_date_on_whatever_the_age():
    date = epoch_ms(2024, 6, 1, 0, 0, 0)
    rules = lifecycle(rule({"date": date}))
    fresh = record(mtime=date + DAY_MS * 30)
    assert not rules.object_expired("k", record(), date - 1)
    assert rules.object_expired("k", fresh, date)


def test_expiration_names_the_first_rule_to_expire_an_object():
    created = epoch_ms(2014, 1, 15, 10, 30, 0)
    late = dict(rule({"days": 30}, prefix="docs/"), id="late")
    early = dict(rule({"date": epoch_ms(2014, 1, 17, 0, 0, 0)}), id="early")
    days = dict(rule({"days": 3}, prefix="docs/"), id="days")
    markers = dict(rule({"delete_marker": True}), id="markers")
    disabled = dict(rule({"days": 1}, enabled=False), id="disabled")
    assert lifecycle(late, days, markers, disabled).expiration("docs/a", record(mtime=created)) == (
        epoch_ms(2014, 1, 19, 0, 0, 0),
        "days",
    )
    assert lifecycle(late, early).expiration("docs/a", record(mtime=created)) == (
        epoch_ms(2014, 1, 17, 0, 0, 0),
        "early",
    )
    assert lifecycle(late, markers, disabled).expiration("other/a", record(mtime=created)) is None


@pytest.mark.parametrize(
    "selection, key, found, expected",
    [
        ({"prefix": "logs/"}, "logs/a", record(), True),
        ({"prefix": "logs/"}, "log/a", record(), False),
        ({"gt": 10}, "k", record(size=10), False),
        ({"gt": 10}, "k", record(size=11), True),
        ({"lt": 10}, "k", record(size=10), False),
        ({"lt": 10}, "k", record(size=9), True),
        ({"tags": [("env", "dev")]}, "k", record(tags={"env": "dev", "other": "x"}), True),
        ({"tags": [("env", "dev")]}, "k", record(tags={"env": "prod"}), False),
        ({"tags": [("env", "dev")]}, "k", record(), False),
        ({"tags": [("env", "dev"), ("team", "a")]}, "k", record(tags={"env": "dev"}), False),
        ({"tags": [("flag", "")]}, "k", record(tags={"flag": ""}), True),
        ({"prefix": "a/", "gt": 1, "lt": 5, "tags": [("t", "1")]}, "a/k", record(size=3, tags={"t": "1"}), True),
        ({"prefix": "a/", "gt": 1, "lt": 5, "tags": [("t", "1")]}, "a/k", record(size=5, tags={"t": "1"}), False),
    ],
)
def test_filters(selection, key, found, expected):
    rules = lifecycle(rule({"date": 0}, **selection))
    assert rules.object_expired(key, found, 1) is expected


def test_disabled_rules_and_rules_without_expiration_do_nothing():
    rules = lifecycle(rule({"date": 0}, enabled=False), rule(abort_days=1, enabled=False))
    assert not rules.expires_objects and not rules.aborts_uploads
    assert not rules.object_expired("k", record(), 10**15)
    noncurrent_only = lifecycle({**rule(), "noncurrent": {"days": 1, "newer": None}})
    assert not noncurrent_only.expires_objects and noncurrent_only.expires_history
    assert not lifecycle(rule({"delete_marker": False})).expires_history


def test_uploads_are_aborted_by_prefix_and_age():
    rules = lifecycle(rule(abort_days=2, prefix="tmp/"))
    assert rules.aborts_uploads and not rules.expires_objects
    upload = {"key": "tmp/u", "initiated": epoch_ms(2024, 1, 1, 8, 0, 0)}
    due = epoch_ms(2024, 1, 4, 0, 0, 0)
    assert not rules.upload_expired(upload, due - 1)
    assert rules.upload_expired(upload, due)
    assert not rules.upload_expired({**upload, "key": "keep/u"}, due)


def test_noncurrent_days_count_from_the_replacement_rounded_up_to_midnight():
    rules = lifecycle({**rule(), "noncurrent": {"days": 3, "newer": None}})
    replaced = record(mtime=epoch_ms(2014, 1, 1, 10, 30, 0))
    replaced["noncurrent_since"] = epoch_ms(2014, 1, 15, 10, 30, 0)
    due = epoch_ms(2014, 1, 19, 0, 0, 0)  # S3's own example
    assert rules.noncurrent_expired("k", replaced, 0, due - 1) is None
    assert rules.noncurrent_expired("k", replaced, 0, due) == 0


def test_newer_noncurrent_versions_kept_by_the_most_lenient_rule_that_expires():
    rules = lifecycle(
        {**rule(), "noncurrent": {"days": 1, "newer": 5}},
        {**rule(prefix="logs/"), "noncurrent": {"days": 1, "newer": 2}},
    )
    replaced = {**record(), "noncurrent_since": 0}
    assert rules.noncurrent_expired("logs/a", replaced, 1, DAY_MS) is None
    assert rules.noncurrent_expired("logs/a", replaced, 2, DAY_MS) == 2
    assert rules.noncurrent_expired("logs/a", replaced, 7, DAY_MS) == 2
    assert rules.noncurrent_expired("other", replaced, 4, DAY_MS) is None
    assert rules.noncurrent_expired("other", replaced, 5, DAY_MS) == 5


def test_lone_delete_markers():
    marker = {"mtime": epoch_ms(2024, 5, 1, 12, 0, 0), "marker": True}
    assert lifecycle(rule({"delete_marker": True}, lt=1)).lone_marker_expired("k", marker, 0)
    assert not lifecycle(rule({"delete_marker": False})).lone_marker_expired("k", marker, 10**15)
    assert not lifecycle(rule({"delete_marker": True}, prefix="a/")).lone_marker_expired("k", marker, 0)
    by_age = lifecycle(rule({"days": 1}))
    assert not by_age.lone_marker_expired("k", marker, epoch_ms(2024, 5, 3, 0, 0, 0) - 1)
    assert by_age.lone_marker_expired("k", marker, epoch_ms(2024, 5, 3, 0, 0, 0))
    assert not lifecycle(rule({"date": 0}, tags=[("a", "b")])).lone_marker_expired("k", marker, 1)
