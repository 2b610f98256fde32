"""Listings come back in exact S3 order, with long keys, odd bytes, delimiters and paging."""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BUCKET = "data"
SHARED_HEAD = "p/" * 200 + "q"  # 401 bytes: long keys with this head share one group


def reference(keys, prefix="", delimiter="", after=None):
    """S3 listing over sorted keys, the obvious way: [(name, is_common_prefix)]."""
    items: list[tuple[str, bool]] = []
    for key in sorted(set(keys)):  # str order is code point order, which is UTF-8 byte order
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        item = (key, False) if cut < 0 else (key[: cut + len(delimiter)], True)
        if not items or items[-1] != item:
            items.append(item)
    return [item for item in items if after is None or item[0] > after]


def page_items(page):
    """A page's keys and common prefixes merged back into one S3-ordered list."""
    return sorted([(key, False) for key, _ in page.entries] + [(p, True) for p in page.prefixes])


def list_all(reader, bucket, max_keys, **query):
    """Every item, paging with `last`; checks each page against S3's paging rules."""
    items, after = [], query.pop("after", None)
    while True:
        page = reader.list_objects(bucket, after=after, max_keys=max_keys, **query)
        got = page_items(page)
        assert len(got) == max_keys if page.truncated else len(got) <= max_keys
        assert page.last == (got[-1][0] if got else None)
        items += got
        if not page.truncated:
            return items
        assert after is None or page.last > after, "paging must advance"
        after = page.last


def long_key(head: str, n: int) -> str:
    """A key of up to 1024 bytes in `head`'s group."""
    return (head + "/" + "é" * (n % 7) + str(n)).ljust(1000 - n % 13, "z")


MIXED_KEYS = (
    [long_key(SHARED_HEAD, n) for n in range(60)]
    + [long_key("p/" * 200 + "r", n) for n in range(5)]
    + [SHARED_HEAD, SHARED_HEAD[:400], SHARED_HEAD + "/", "p/", "p/p", "a", "z" * 1024]
    + ["é" * 512, "é" * 200 + "x", "é" * 199 + "x" * 3]
)


def test_long_and_short_keys_list_in_byte_order(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, MIXED_KEYS)
    page = replica.reader.list_objects(BUCKET)
    assert [key for key, _ in page.entries] == sorted(MIXED_KEYS)
    assert all(record["key"] == key for key, record in page.entries)
    assert (page.truncated, page.last) == (False, max(MIXED_KEYS))
    for max_keys in (1, 7, 60):
        for query in ({}, {"delimiter": "/"}, {"prefix": SHARED_HEAD}, {"prefix": "p/", "delimiter": "/"}):
            assert list_all(replica.reader, BUCKET, max_keys, **query) == reference(MIXED_KEYS, **query)


def test_long_key_point_reads(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, MIXED_KEYS)
    for key in MIXED_KEYS:
        assert replica.reader.get_object(BUCKET, key)[0]["key"] == key
    assert replica.reader.get_object(BUCKET, long_key(SHARED_HEAD, 999)) is None


def test_resuming_inside_a_long_key_group(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, MIXED_KEYS)
    ordered = sorted(MIXED_KEYS)
    for index in (0, 10, 30, 64):
        page = replica.reader.list_objects(BUCKET, after=ordered[index], max_keys=3)
        assert [key for key, _ in page.entries] == ordered[index + 1 : index + 4]


ODD_KEYS = [
    "a\0b",
    "a\0",
    "a",
    "a\x01",
    "\x7f",
    "\t\n",
    "a//b",
    "a///",
    "a/../b",
    "../x",
    "./",
    "/",
    "//",
    "é/ü",
    "\U0001f600",
]


def test_keys_with_nul_control_and_path_like_runs(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ODD_KEYS)
    assert [key for key, _ in replica.reader.list_objects(BUCKET).entries] == sorted(ODD_KEYS)
    for query in ({"delimiter": "/"}, {"delimiter": "\0"}, {"prefix": "a", "delimiter": "/"}, {"delimiter": "//"}):
        assert list_all(replica.reader, BUCKET, 2, **query) == reference(ODD_KEYS, **query)
    assert replica.reader.get_object(BUCKET, "a\0b")[0]["key"] == "a\0b"


def test_markers_and_common_prefixes(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["a/1", "a/2", "b", "c/1", "d"])
    reader = replica.reader
    page = reader.list_objects(BUCKET, delimiter="/", max_keys=2)
    assert (page.entries, page.prefixes, page.truncated, page.last)[1:] == (["a/"], True, "b")
    page = reader.list_objects(BUCKET, delimiter="/", after="a/")
    assert ([key for key, _ in page.entries], page.prefixes) == (["b", "d"], ["c/"])
    page = reader.list_objects(BUCKET, delimiter="/", after="a/1")
    assert page.prefixes == ["c/"]
    page = reader.list_objects(BUCKET, prefix="c", after="a")
    assert [key for key, _ in page.entries] == ["c/1"]
    assert reader.list_objects(BUCKET, prefix="a/", after="b").entries == []
    assert reader.list_objects(BUCKET, max_keys=0) == ([], [], False, None)
    assert reader.list_objects("no-such-bucket") == ([], [], False, None)
    last_page = reader.list_objects(BUCKET, after="c/1", max_keys=1)
    assert (last_page.truncated, last_page.last) == (False, "d")


def test_buckets_do_not_leak_into_each_other(replica):
    for bucket in ("a", "a0", "ab"):
        replica.create_bucket(bucket)
        replica.put_keys(bucket, [bucket + "-key"])
    assert [key for key, _ in replica.reader.list_objects("a").entries] == ["a-key"]
    assert [b["name"] for b in replica.reader.list_buckets()] == ["a", "a0", "ab"]


HEADS = ["", "a", "a/", "x" * 399, "x" * 400, "x" * 398 + "é", "x" * 399 + "é", "x/" * 200]
TAIL = st.text(alphabet=st.sampled_from("\0ab/é"), max_size=6)
KEY = st.builds(str.__add__, st.sampled_from(HEADS), TAIL).filter(bool)
QUERY_TEXT = st.builds(str.__add__, st.sampled_from(HEADS), st.text(alphabet=st.sampled_from("ab/é\0"), max_size=3))
buckets = (f"prop-{n}" for n in itertools.count())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(KEY, unique=True, max_size=30),
    prefix=QUERY_TEXT,
    delimiter=st.sampled_from(["", "/", "a", "é", "\0", "b/"]),
    after=st.none() | QUERY_TEXT,
    max_keys=st.integers(1, 6),
)
def test_paging_matches_reference(shared_replica, keys, prefix, delimiter, after, max_keys):
    bucket = next(buckets)
    shared_replica.create_bucket(bucket)
    shared_replica.put_keys(bucket, keys)
    query = {"prefix": prefix, "delimiter": delimiter, "after": after}
    expected = reference(keys, **query)
    first = shared_replica.reader.list_objects(bucket, max_keys=max_keys, **query)
    assert page_items(first) == expected[:max_keys]
    assert first.truncated == (len(expected) > max_keys)
    assert list_all(shared_replica.reader, bucket, max_keys, **query) == expected


def test_a_listing_remembers_unchanged_records_and_never_shows_a_replaced_one(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["kept", "replaced"])
    first = dict(replica.reader.list_objects(BUCKET).entries)
    newer = dict(replica.record("replaced", vid="v2", size=5), etag="0" * 32)
    assert replica.apply(({"op": "object.put", "bucket": BUCKET, "record": newer}, b"12345"))[0]["status"] == "ok"
    second = dict(replica.reader.list_objects(BUCKET).entries)
    assert second["kept"] is first["kept"]
    assert (second["replaced"]["vid"], second["replaced"]["size"], second["replaced"]["etag"]) == ("v2", 5, "0" * 32)
