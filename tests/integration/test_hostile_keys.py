"""Keys that S3 allows but a filesystem would not: stored, listed and returned exactly, and
never a path outside `<data>/objects/`.

Bodies are larger than the inline threshold so that every key gets a file of its own.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

BODY_SIZE = 20 * 1024  # over the 16 KiB inline threshold: each object is a file
HOSTILE_KEYS = [
    "../x",
    "../../../../../../etc/passwd",
    "a/../b",
    "..",
    ".",
    "./x",
    "a//b",
    "/",
    "//",
    "/leading",
    "trailing/",
    "a",
    "a/b",
    "a/b/",
    "ctrl-\x01-char",
    "tab\tkey",
    "new\nline",
    "carriage\rreturn",
    "del\x7f",
    "percent%",
    "percent%20encoded",
    "plus+sign",
    "space in key",
    " leading-space",
    "trailing-space ",
    "back\\slash",
    "C:\\windows",
    "question?mark=1",
    "hash#fragment",
    "amp&lt;",
    "semi;colon",
    "tilde~",
    "quote\"'",
    "<xml>&</xml>",
    "\u65e5\u672c\u8a9e/\u30c6\u30b9\u30c8",
    "emoji-\U0001f600",
    "combining-e\u0301",
    "zero\u200bwidth",
    "rtl-\u202eevil",
    "bom-\ufeff",
    "CON",
    "nul.txt",
    "x" * 300,
]


def body_for(key: str) -> bytes:
    return (key.encode("utf-8") + b"|") * (BODY_SIZE // (len(key.encode("utf-8")) + 1) + 1)


@pytest.fixture
def stored(s3, bucket):
    for key in HOSTILE_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=body_for(key))
    return bucket


def data_files(node) -> list[str]:
    """Every file under the node's directory, relative to it."""
    root = node.data.parent
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_keys_round_trip_exactly(s3, stored):
    for key in HOSTILE_KEYS:
        got = s3.get_object(Bucket=stored, Key=key)
        assert got["Body"].read() == body_for(key), repr(key)
        assert s3.head_object(Bucket=stored, Key=key)["ContentLength"] == len(body_for(key))


def test_keys_list_exactly(s3, stored):
    expected = sorted(HOSTILE_KEYS)
    v2 = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stored, PaginationConfig={"PageSize": 7})
        for o in page.get("Contents", [])
    ]
    v1 = [
        o["Key"]
        for page in s3.get_paginator("list_objects").paginate(Bucket=stored, PaginationConfig={"PageSize": 7})
        for o in page.get("Contents", [])
    ]
    assert v2 == expected
    assert v1 == expected


def test_key_beside_its_own_prefix(s3, stored):
    page = s3.list_objects_v2(Bucket=stored, Prefix="a", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["a", "amp&lt;"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/"]
    inside = s3.list_objects_v2(Bucket=stored, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in inside["Contents"]] == ["a/b"]
    assert [p["Prefix"] for p in inside["CommonPrefixes"]] == ["a/../", "a//", "a/b/"]


def test_slash_keys_and_empty_segments_with_delimiter(s3, stored):
    page = s3.list_objects_v2(Bucket=stored, Delimiter="/")
    prefixes = [p["Prefix"] for p in page["CommonPrefixes"]]
    # "/", "//" and "/leading" all roll up into the common prefix "/".
    assert "/" in prefixes
    assert "/" not in [o["Key"] for o in page.get("Contents", [])]
    under_root = s3.list_objects_v2(Bucket=stored, Prefix="/", Delimiter="/")
    assert [o["Key"] for o in under_root.get("Contents", [])] == ["/", "/leading"]
    assert [p["Prefix"] for p in under_root.get("CommonPrefixes", [])] == ["//"]


def test_raw_request_paths_name_the_exact_key(raw, s3, stored):
    for key in ("a//b", "//", "trailing/", "percent%", "plus+sign", "space in key"):
        response = raw("GET", f"/{stored}/{quote(key, safe='/')}")
        assert response.status_code == 200, (key, response.text)
        assert response.content == body_for(key)
    assert raw("GET", f"/{stored}/plus%2Bsign").content == body_for("plus+sign")


def test_nothing_is_written_outside_the_objects_directory(node, s3, stored):
    files = data_files(node)
    object_files = [f for f in files if f.startswith(os.path.join("data", "objects", stored) + os.sep)]
    assert len(object_files) == len(HOSTILE_KEYS)
    for path in object_files:
        # objects/<bucket>/<key hash>/<version>: nothing taken from the key.
        parts = path.split(os.sep)
        assert len(parts) == 5, path
        assert all(c in "0123456789abcdef" for c in parts[3]), path
    allowed = ("data/objects/", "data/metadata/", "data/temp/", "data/run/", "data/audit.jsonl", "node.log")
    assert [f for f in files if not f.startswith(allowed)] == []
    assert not [f for f in files if "passwd" in f or ".." in f.split(os.sep)]


def test_overwrite_and_delete_hostile_keys(s3, node, stored):
    for key in HOSTILE_KEYS:
        s3.put_object(Bucket=stored, Key=key, Body=b"second " + key.encode())
    for key in HOSTILE_KEYS:
        assert s3.get_object(Bucket=stored, Key=key)["Body"].read() == b"second " + key.encode(), repr(key)
    for key in HOSTILE_KEYS:
        s3.delete_object(Bucket=stored, Key=key)
        with pytest.raises(ClientError):
            s3.head_object(Bucket=stored, Key=key)
    assert s3.list_objects_v2(Bucket=stored)["KeyCount"] == 0
