"""The precondition rule of GET, HEAD and CopyObject's source, and the rule of conditional writes."""

import pytest

from nebulaio.engine.conditions import (
    COPY_SOURCE_CONDITIONS,
    NOT_MODIFIED,
    PRECONDITION_FAILED,
    REQUEST_CONDITIONS,
    etag_matches,
    evaluate,
)
from nebulaio.meta.apply import write_condition_failure
from nebulaio.util.timefmt import http_date

ETAG = "9e107d9d372bb6826bd81d3542a419d6"
MTIME_MS = 1_700_000_000_500  # Tue, 14 Nov 2023 22:13:20.500 GMT
MODIFIED = http_date(MTIME_MS)  # the Last-Modified a client saw
BEFORE = http_date(MTIME_MS - 1000)
AFTER = http_date(MTIME_MS + 1000)
OTHER = '"0123456789abcdef0123456789abcdef"'


def check(**headers) -> tuple[int, str] | None:
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return evaluate(ETAG, MTIME_MS, named, REQUEST_CONDITIONS)


def test_no_condition_proceeds():
    assert check() is None


@pytest.mark.parametrize(
    "header",
    [f'"{ETAG}"', ETAG, "*", f'{OTHER}, "{ETAG}"', f'W/"{ETAG}"', f' "{ETAG}" '],
)
def test_etag_lists_match(header):
    assert etag_matches(header, ETAG)


@pytest.mark.parametrize("header", [OTHER, '""', f'"{ETAG}x"', ""])
def test_other_etags_do_not_match(header):
    assert not etag_matches(header, ETAG)


def test_if_match():
    assert check(if_match=f'"{ETAG}"') is None
    assert check(if_match=OTHER) == (PRECONDITION_FAILED, "If-Match")


def test_if_none_match():
    assert check(if_none_match=OTHER) is None
    assert check(if_none_match=f'"{ETAG}"') == (NOT_MODIFIED, "If-None-Match")
    assert check(if_none_match="*") == (NOT_MODIFIED, "If-None-Match")


def test_if_modified_since_compares_whole_seconds():
    assert check(if_modified_since=BEFORE) is None
    assert check(if_modified_since=MODIFIED) == (NOT_MODIFIED, "If-Modified-Since")
    assert check(if_modified_since=AFTER) == (NOT_MODIFIED, "If-Modified-Since")


def test_if_unmodified_since_compares_whole_seconds():
    assert check(if_unmodified_since=MODIFIED) is None
    assert check(if_unmodified_since=AFTER) is None
    assert check(if_unmodified_since=BEFORE) == (PRECONDITION_FAILED, "If-Unmodified-Since")


def test_unparsable_dates_are_ignored():
    assert check(if_modified_since="yesterday") is None
    assert check(if_unmodified_since="Tue, 31 Feb 2023 00:00:00 GMT") is None


def test_if_match_true_overrides_if_unmodified_since_false():
    assert check(if_match=f'"{ETAG}"', if_unmodified_since=BEFORE) is None


def test_if_none_match_false_with_if_modified_since_true_is_not_modified():
    assert check(if_none_match=f'"{ETAG}"', if_modified_since=BEFORE) == (NOT_MODIFIED, "If-None-Match")


def test_if_none_match_true_overrides_if_modified_since_false():
    assert check(if_none_match=OTHER, if_modified_since=AFTER) is None


def test_precondition_failure_comes_before_not_modified():
    assert check(if_match=OTHER, if_none_match=f'"{ETAG}"') == (PRECONDITION_FAILED, "If-Match")
    assert check(if_unmodified_since=BEFORE, if_modified_since=AFTER) == (PRECONDITION_FAILED, "If-Unmodified-Since")


def test_copy_source_headers_are_read_under_their_own_names():
    headers = {"if-match": OTHER, "x-amz-copy-source-if-none-match": f'"{ETAG}"'}
    assert evaluate(ETAG, MTIME_MS, headers, COPY_SOURCE_CONDITIONS) == (
        NOT_MODIFIED,
        "x-amz-copy-source-if-none-match",
    )
    headers = {"x-amz-copy-source-if-match": f'"{ETAG}"', "x-amz-copy-source-if-unmodified-since": BEFORE}
    assert evaluate(ETAG, MTIME_MS, headers, COPY_SOURCE_CONDITIONS) is None


CURRENT = {"etag": ETAG, "vid": "v1"}


@pytest.mark.parametrize(
    "current, condition, failure",
    [
        (None, {"if-none-match": "*"}, None),
        (CURRENT, {"if-none-match": "*"}, "PreconditionFailed"),
        (CURRENT, {"if-match": ETAG}, None),
        (CURRENT, {"if-match": "*"}, None),
        (CURRENT, {"if-match": OTHER.strip('"')}, "PreconditionFailed"),
        (None, {"if-match": ETAG}, "NoSuchKey"),
        (None, {"if-match": "*"}, "NoSuchKey"),
        (CURRENT, {}, None),
    ],
)
def test_write_conditions(current, condition, failure):
    assert write_condition_failure(current, condition) == failure


def test_apply_decides_conditional_puts_in_batch_order(tmp_path):
    """Two creates of one key in one batch: the second sees the first; a replayed winner stays ok."""
    from nebulaio.meta import Applier, MetaReader, open_env

    env = open_env(str(tmp_path / "kv"), readonly=False, map_size=1 << 30)
    applier = Applier(env, lambda *version: None)
    create = {"op": "bucket.create", "bucket": "b", "owner": "o", "created": 1, "region": "us-east-1"}

    def put(vid: str, condition: dict) -> tuple[dict, bytes]:
        record = {"key": "k", "vid": vid, "size": 1, "etag": ETAG, "mtime": MTIME_MS, "ctype": "x"}
        record.update(headers={}, meta={}, checksums={}, inline=True)
        return {"op": "object.put", "bucket": "b", "record": record, "condition": condition}, b"x"

    create_only = {"if-none-match": "*"}
    results = applier.apply_batch(1, [(create, None), put("v1", create_only), put("v2", create_only)])
    assert [r["status"] for r in results] == ["ok", "ok", "PreconditionFailed"]
    results = applier.apply_batch(2, [put("v1", create_only), put("v3", {"if-match": OTHER.strip('"')})])
    assert [r["status"] for r in results] == ["ok", "PreconditionFailed"]
    results = applier.apply_batch(3, [put("v4", {"if-match": ETAG})])
    assert [r["status"] for r in results] == ["ok"]
    assert MetaReader(env).get_object("b", "k")[0]["vid"] == "v4"
    env.close()
