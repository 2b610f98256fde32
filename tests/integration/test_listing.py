"""ListObjects (v1) and ListObjectsV2 against a real node.

A few thousand keys are stored once per module and paged through with small pages in many
ways: every way must give exactly the sorted keys, with IsTruncated right on every page.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, unquote_plus

import pytest
from botocore.exceptions import ClientError

WRITERS = 16
TREE_KEYS = sorted(
    [f"dir-{d}/sub-{s}/file-{f:03d}" for d in "abcde" for s in range(10) for f in range(40)]
    + [f"top-{i:03d}" for i in range(60)]
    + ["dir-c", "dir-c/", "dir-c/direct", "dir-f/", "zz/a/b/c"]
)
ODD_KEYS = sorted(
    [
        "a b",
        "a+b",
        "a%2Fb",
        "a%b",
        "a&b<c>",
        "a/b c/d",
        "caf\u00e9",
        "caf\u00e9/x",
        "\u65e5\u672c/\u8a9e",
        "\U0001f600/smile",
        "tab\there",
        "line\nbreak",
        "ctrl\x01char",
        "tilde~",
        "star*",
        "quote\"'",
    ]
)
SHARED_HEAD = "h" * 250 + "\u00e9" * 125  # 500 UTF-8 bytes, beyond the metadata store's short-key length
LONG_KEYS = sorted(
    [SHARED_HEAD + tail for tail in ("", "a", "b", "a/1", "a/2", "b/1", "z" * 100, "\u20ac", "/x", "0")]
    # 398 to 402 bytes: either side of where the store starts keeping a key's head and a digest
    + [
        SHARED_HEAD[:-1] + "f",
        SHARED_HEAD[:324],
        SHARED_HEAD[:324] + "q",
        SHARED_HEAD[:325],
        SHARED_HEAD[:325] + "q",
        SHARED_HEAD[:326],
    ]
)


def store(s3, bucket: str, keys) -> None:
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))


def new_bucket(s3) -> str:
    name = f"list-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def writer(node):
    return node.client(max_pool_connections=WRITERS)


@pytest.fixture(scope="module")
def tree(writer):
    """A bucket holding TREE_KEYS, shared by the tests that only read it.

    It is left to the node's temporary data directory rather than emptied key by key.
    """
    name = new_bucket(writer)
    store(writer, name, TREE_KEYS)
    return name


@pytest.fixture(scope="module")
def odd(writer):
    name = new_bucket(writer)
    store(writer, name, ODD_KEYS)
    return name


@pytest.fixture(scope="module")
def long_keys(writer):
    name = new_bucket(writer)
    store(writer, name, LONG_KEYS)
    return name


def v2_pages(s3, bucket: str, **params):
    """Every page of a V2 listing, following NextContinuationToken by hand."""
    pages = []
    token = None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, **params, **extra)
        pages.append(page)
        if not page["IsTruncated"]:
            return pages
        token = page["NextContinuationToken"]
        assert len(pages) < 10_000


def v1_pages(s3, bucket: str, **params):
    """Every page of a V1 listing: NextMarker when given, else the last key (as clients do)."""
    pages = []
    marker = ""
    while True:
        page = s3.list_objects(Bucket=bucket, Marker=marker, **params)
        pages.append(page)
        if not page["IsTruncated"]:
            return pages
        if "NextMarker" in page:
            marker = page["NextMarker"]
        else:
            assert not params.get("Delimiter")
            marker = page["Contents"][-1]["Key"]
        assert len(pages) < 10_000


def keys_of(pages) -> list[str]:
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def prefixes_of(pages) -> list[str]:
    return [item["Prefix"] for page in pages for item in page.get("CommonPrefixes", [])]


def expected_listing(keys, prefix: str = "", delimiter: str = "") -> tuple[list[str], list[str]]:
    """What S3 lists for `keys`: (keys, common prefixes)."""
    listed, common = [], []
    for key in sorted(keys):
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            listed.append(key)
        elif key[: cut + len(delimiter)] not in common:
            common.append(key[: cut + len(delimiter)])
    return listed, common


def assert_pages_consistent(pages, max_keys: int) -> None:
    """Every page but the last is full and truncated; the last is not truncated."""
    for page in pages[:-1]:
        assert page["IsTruncated"] is True
        assert len(page.get("Contents", [])) + len(page.get("CommonPrefixes", [])) == max_keys
    assert pages[-1]["IsTruncated"] is False
    assert "NextContinuationToken" not in pages[-1]
    assert "NextMarker" not in pages[-1]


# -- whole listings, paged -----------------------------------------------------------------


@pytest.mark.parametrize("max_keys", [7, 1000])
def test_v2_pages_give_exactly_the_sorted_keys(s3, tree, max_keys):
    pages = v2_pages(s3, tree, MaxKeys=max_keys)
    assert keys_of(pages) == TREE_KEYS
    assert_pages_consistent(pages, max_keys)
    for page in pages:
        assert page["KeyCount"] == len(page.get("Contents", []))
        assert page["MaxKeys"] == max_keys


@pytest.mark.parametrize("max_keys", [7])
def test_v1_pages_give_exactly_the_sorted_keys(s3, tree, max_keys):
    pages = v1_pages(s3, tree, MaxKeys=max_keys)
    assert keys_of(pages) == TREE_KEYS
    assert_pages_consistent(pages, max_keys)


def test_boto3_paginators_agree(s3, tree):
    for operation in ("list_objects", "list_objects_v2"):
        pages = s3.get_paginator(operation).paginate(Bucket=tree, PaginationConfig={"PageSize": 500})
        assert keys_of(pages) == TREE_KEYS


def test_default_page_is_1000_keys(s3, tree):
    page = s3.list_objects_v2(Bucket=tree)
    assert page["KeyCount"] == 1000
    assert page["MaxKeys"] == 1000
    assert page["IsTruncated"] is True
    assert keys_of([page]) == TREE_KEYS[:1000]


def test_max_keys_above_1000_is_capped(s3, tree):
    page = s3.list_objects_v2(Bucket=tree, MaxKeys=5000)
    assert page["KeyCount"] == 1000
    assert page["IsTruncated"] is True


def test_exactly_full_last_page_is_not_truncated(s3, bucket):
    store(s3, bucket, [f"k{i}" for i in range(10)])
    pages = v2_pages(s3, bucket, MaxKeys=5)
    assert len(pages) == 2
    assert_pages_consistent(pages, 5)
    pages = v1_pages(s3, bucket, MaxKeys=5)
    assert len(pages) == 2
    assert_pages_consistent(pages, 5)


def test_empty_bucket_lists_nothing(s3, bucket):
    v2 = s3.list_objects_v2(Bucket=bucket)
    assert v2["KeyCount"] == 0 and "Contents" not in v2 and v2["IsTruncated"] is False
    v1 = s3.list_objects(Bucket=bucket)
    assert "Contents" not in v1 and v1["IsTruncated"] is False


# -- prefix and delimiter ------------------------------------------------------------------

PREFIX_CASES = [
    ("", "/"),
    ("dir-e/sub-9/file-03", ""),
    ("dir-c", "/"),
    ("dir-c/", "/"),
    ("dir-b/sub-3/", ""),
    ("dir-b/sub-3/", "/"),
    ("dir-", "-"),
    ("", "sub-"),
    ("", "/file-"),
    ("top-05", "/"),
    ("no-such-prefix", "/"),
    ("dir-f/", "/"),
]


@pytest.mark.parametrize("prefix,delimiter", PREFIX_CASES)
@pytest.mark.parametrize("max_keys", [3, 1000])
def test_v2_prefix_and_delimiter(s3, tree, prefix, delimiter, max_keys):
    pages = v2_pages(s3, tree, Prefix=prefix, Delimiter=delimiter, MaxKeys=max_keys)
    expected_keys, expected_prefixes = expected_listing(TREE_KEYS, prefix, delimiter)
    assert keys_of(pages) == expected_keys
    assert prefixes_of(pages) == expected_prefixes
    assert_pages_consistent(pages, max_keys)
    for page in pages:
        assert page["Prefix"] == prefix
        assert page.get("Delimiter", "") == delimiter
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))


@pytest.mark.parametrize("prefix,delimiter", PREFIX_CASES)
def test_v1_prefix_and_delimiter_with_next_marker(s3, tree, prefix, delimiter):
    pages = v1_pages(s3, tree, Prefix=prefix, Delimiter=delimiter, MaxKeys=3)
    expected_keys, expected_prefixes = expected_listing(TREE_KEYS, prefix, delimiter)
    assert keys_of(pages) == expected_keys
    assert prefixes_of(pages) == expected_prefixes
    assert_pages_consistent(pages, 3)
    for page in pages[:-1]:
        if delimiter:
            # NextMarker is the page's last key or common prefix.
            items = [c["Key"] for c in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            assert page["NextMarker"] == max(items)
        else:
            assert "NextMarker" not in page


def test_common_prefixes_in_s3_order_beside_keys(s3, tree):
    page = s3.list_objects_v2(Bucket=tree, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == [
        "dir-a/",
        "dir-b/",
        "dir-c/",
        "dir-d/",
        "dir-e/",
        "dir-f/",
        "zz/",
    ]
    assert "dir-c" in keys_of([page])
    assert not any("/" in key for key in keys_of([page]))


# -- start-after, marker, continuation tokens ------------------------------------------------


@pytest.mark.parametrize(
    "start_after", ["", "dir-c", "dir-c/", "dir-b/sub-9/file-049", "dir-b/sub-9/file-0", "top-059", "zzz", "\u00e9"]
)
def test_v2_start_after(s3, tree, start_after):
    page = s3.list_objects_v2(Bucket=tree, StartAfter=start_after, MaxKeys=20)
    assert keys_of([page]) == [key for key in TREE_KEYS if key > start_after][:20]
    assert page.get("StartAfter", "") == start_after


def test_v2_start_after_with_delimiter_skips_its_prefix_group(s3, tree):
    page = s3.list_objects_v2(Bucket=tree, Delimiter="/", StartAfter="dir-b/sub-3/file-010")
    # dir-b/ was already passed (it sorts before the start), as on S3.
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir-c/", "dir-d/", "dir-e/", "dir-f/", "zz/"]
    assert keys_of([page]) == ["dir-c"] + [f"top-{i:03d}" for i in range(60)]


@pytest.mark.parametrize("marker", ["dir-a/sub-0/file-000", "dir-d", "top-030", "zz/a/b/c"])
def test_v1_marker(s3, tree, marker):
    page = s3.list_objects(Bucket=tree, Marker=marker, MaxKeys=50)
    assert page["Marker"] == marker
    assert keys_of([page]) == [key for key in TREE_KEYS if key > marker][:50]


def test_continuation_token_wins_over_start_after(s3, tree):
    first = s3.list_objects_v2(Bucket=tree, MaxKeys=10, StartAfter="dir-b")
    second = s3.list_objects_v2(
        Bucket=tree, MaxKeys=10, StartAfter="dir-b", ContinuationToken=first["NextContinuationToken"]
    )
    after = [key for key in TREE_KEYS if key > "dir-b"]
    assert keys_of([first]) == after[:10]
    assert keys_of([second]) == after[10:20]
    assert second["ContinuationToken"] == first["NextContinuationToken"]
    assert second["StartAfter"] == "dir-b"


@pytest.mark.parametrize("token", ["garbage", "%%%", "AAAA", "bm90LXZlcnNpb25lZA==", "\u00e9"])
def test_bad_continuation_token_is_invalid_argument(raw, tree, token):
    response = raw("GET", f"/{tree}?list-type=2&continuation-token={quote(token, safe='')}")
    assert response.status_code == 400, response.text
    assert b"<Code>InvalidArgument</Code>" in response.content


@pytest.mark.parametrize(
    "value", ["-1", "abc", "1.5", "2147483648", "99999999999999999999999", "9" * 5000, "\u00b2", "\u0661", " 1"]
)
def test_bad_max_keys_is_invalid_argument(raw, tree, value):
    response = raw("GET", f"/{tree}?list-type=2&max-keys={quote(value, safe='')}")
    assert response.status_code == 400, response.text
    assert b"<Code>InvalidArgument</Code>" in response.content


# -- owner -----------------------------------------------------------------------------------


def test_fetch_owner(s3, tree):
    plain = s3.list_objects_v2(Bucket=tree, MaxKeys=3)
    assert all("Owner" not in item for item in plain["Contents"])
    owned = s3.list_objects_v2(Bucket=tree, MaxKeys=3, FetchOwner=True)
    owners = {(item["Owner"]["ID"], item["Owner"]["DisplayName"]) for item in owned["Contents"]}
    listed = s3.list_buckets()["Owner"]
    assert owners == {(listed["ID"], listed["DisplayName"])}


def test_v1_always_shows_owner(s3, tree):
    page = s3.list_objects(Bucket=tree, MaxKeys=3)
    assert all(item["Owner"]["ID"] for item in page["Contents"])


# -- encoding-type=url -------------------------------------------------------------------------


def test_odd_keys_list_exactly(s3, odd):
    # boto3 asks for encoding-type=url by itself and decodes the answer.
    assert keys_of(v2_pages(s3, odd, MaxKeys=3)) == ODD_KEYS
    assert keys_of(v1_pages(s3, odd, MaxKeys=3)) == ODD_KEYS


def test_url_encoding_of_keys_prefixes_and_parameters(s3, odd):
    page = s3.list_objects_v2(Bucket=odd, EncodingType="url", Delimiter="/", StartAfter="a b", Prefix="")
    assert page["EncodingType"] == "url"
    contents = [item["Key"] for item in page.get("Contents", [])]
    prefixes = [item["Prefix"] for item in page.get("CommonPrefixes", [])]
    expected_keys, expected_prefixes = expected_listing([k for k in ODD_KEYS if k > "a b"], "", "/")
    assert [unquote_plus(key) for key in contents] == expected_keys
    assert [unquote_plus(prefix) for prefix in prefixes] == expected_prefixes
    assert all(part.isascii() and " " not in part and "\n" not in part for part in contents + prefixes)
    assert "a+b" not in contents  # a literal plus is escaped, never confused with a space
    assert "a%2Bb" in contents
    assert "a%252Fb" in contents


def test_url_encoding_echoes_encoded_prefix_and_delimiter(raw, odd):
    response = raw("GET", f"/{odd}?list-type=2&encoding-type=url&prefix=caf%C3%A9&delimiter=%2F")
    assert response.status_code == 200
    assert b"<Prefix>caf%C3%A9</Prefix>" in response.content
    assert b"<Delimiter>%2F</Delimiter>" in response.content or b"<Delimiter>/</Delimiter>" in response.content
    assert b"<Prefix>caf%C3%A9%2F</Prefix>" in response.content or b"<Prefix>caf%C3%A9/</Prefix>" in response.content


def test_url_encoding_of_v1_markers(s3, odd):
    page = s3.list_objects(Bucket=odd, EncodingType="url", Marker="caf\u00e9", Delimiter="/", MaxKeys=1)
    assert page["Marker"] == "caf%C3%A9"
    assert unquote_plus(page["NextMarker"]) == "caf\u00e9/"


def test_bad_encoding_type_is_invalid_argument(raw, odd):
    response = raw("GET", f"/{odd}?list-type=2&encoding-type=base64")
    assert response.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in response.content


def test_without_url_encoding_odd_keys_are_escaped_xml(raw, odd):
    response = raw("GET", f"/{odd}?list-type=2&prefix=a%26")
    assert response.status_code == 200
    assert b"<Key>a&amp;b&lt;c&gt;</Key>" in response.content


# -- long keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["a" * 1024, "\u00e9" * 512, "\u20ac" * 341 + "a", "\U0001f600" * 256, "d/" * 511 + "xy"],
    ids=["ascii", "two-byte", "three-byte", "four-byte", "deep"],
)
def test_key_of_1024_bytes_round_trips_and_lists(s3, bucket, key):
    assert len(key.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=key, Body=b"long")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"long"
    assert keys_of([s3.list_objects_v2(Bucket=bucket)]) == [key]
    assert keys_of([s3.list_objects_v2(Bucket=bucket, Prefix=key)]) == [key]
    assert keys_of([s3.list_objects_v2(Bucket=bucket, StartAfter=key)]) == []


@pytest.mark.parametrize(
    "key", ["a" * 1025, "\u00e9" * 512 + "a", "\U0001f600" * 256 + "a"], ids=["ascii", "two-byte", "four-byte"]
)
def test_key_of_1025_bytes_is_key_too_long(s3, bucket, key):
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert caught.value.response["Error"]["Code"] == "KeyTooLongError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("max_keys", [1, 2, 3, 1000])
def test_keys_sharing_a_500_byte_prefix_list_in_order(s3, long_keys, max_keys):
    pages = v2_pages(s3, long_keys, MaxKeys=max_keys)
    assert keys_of(pages) == LONG_KEYS
    assert_pages_consistent(pages, max_keys)
    assert keys_of(v1_pages(s3, long_keys, MaxKeys=max_keys)) == LONG_KEYS


@pytest.mark.parametrize("start_after", LONG_KEYS + [SHARED_HEAD + "a0", SHARED_HEAD[:450]])
def test_start_after_inside_a_long_key_group(s3, long_keys, start_after):
    page = s3.list_objects_v2(Bucket=long_keys, StartAfter=start_after)
    assert keys_of([page]) == [key for key in LONG_KEYS if key > start_after]


@pytest.mark.parametrize(
    "prefix,delimiter",
    [
        (SHARED_HEAD, "/"),
        (SHARED_HEAD + "a", ""),
        (SHARED_HEAD[:400], "/"),
        (SHARED_HEAD[:10], "\u20ac"),
        ("", SHARED_HEAD[-2:] + "a"),
        (SHARED_HEAD + "b/", "/"),
    ],
    ids=["head-slash", "head-a", "short-head", "euro", "delimiter-in-group", "deepest"],
)
def test_prefix_and_delimiter_inside_a_long_key_group(s3, long_keys, prefix, delimiter):
    pages = v2_pages(s3, long_keys, Prefix=prefix, Delimiter=delimiter, MaxKeys=2)
    expected_keys, expected_prefixes = expected_listing(LONG_KEYS, prefix, delimiter)
    assert keys_of(pages) == expected_keys
    assert prefixes_of(pages) == expected_prefixes


def test_max_keys_zero_is_an_empty_complete_page(s3, tree):
    v2 = s3.list_objects_v2(Bucket=tree, MaxKeys=0)
    assert (v2["KeyCount"], v2["IsTruncated"], "Contents" in v2, "NextContinuationToken" in v2) == (
        0,
        False,
        False,
        False,
    )
    v1 = s3.list_objects(Bucket=tree, MaxKeys=0)
    assert (v1["IsTruncated"], "Contents" in v1, "NextMarker" in v1) == (False, False, False)


def test_last_common_prefix_filling_the_page_is_not_truncated(s3, bucket):
    store(s3, bucket, ["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "cquux/bla"])
    page = s3.list_objects(Bucket=bucket, Delimiter="/", Marker="boo/", MaxKeys=1)
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["cquux/"]
    assert page["IsTruncated"] is False
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/", StartAfter="boo/", MaxKeys=1)
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["cquux/"]
    assert page["IsTruncated"] is False
