"""Object operations against a real node: PutObject, GetObject, HeadObject, DeleteObject.

Sizes straddle the inline threshold (bodies up to 16 KiB live in the metadata store, larger
ones in files), because the two are served by different code paths.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import crc32c
import pytest
from botocore.exceptions import ClientError
from conftest import wait_for

INLINE_THRESHOLD = 16 * 1024
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "under-inline": INLINE_THRESHOLD - 1,
    "at-inline": INLINE_THRESHOLD,
    "over-inline": INLINE_THRESHOLD + 1,
    "multi-mib": 5 * 1024 * 1024 + 7,
}
CONTENT_HEADERS = {
    "ContentType": "text/x-nebula; charset=utf-8",
    "ContentEncoding": "gzip",
    "ContentDisposition": 'attachment; filename="report.txt"',
    "ContentLanguage": "de-CH",
    "CacheControl": "max-age=3600, must-revalidate",
}
EXPIRES = "Wed, 01 Dec 2094 16:00:00 GMT"


def body_of(size: int) -> bytes:
    """Bytes that differ at every offset, so a wrong range cannot pass by accident."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def stored_files(node, bucket: str) -> list[str]:
    root = node.data / "objects" / bucket
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def assert_files_settle(node, bucket: str, expected: int) -> None:
    """Replaced and deleted versions' bytes are released just after the commit, not before the answer."""
    wait_for(lambda: len(stored_files(node, bucket)) == expected, 10.0, f"{expected} object files in {bucket}")


def error_code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def status_of(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def assert_missing(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key=key)
    assert status_of(caught) == 404


# -- put, get, head, delete ------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_put_get_head_round_trip(s3, raw, bucket, size):
    data = body_of(size)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data)
    assert put["ETag"] == md5_etag(data)
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == md5_etag(data)
    assert got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == size
    assert head["ETag"] == md5_etag(data)
    assert head["ContentType"] == "binary/octet-stream"
    response = raw("HEAD", f"/{bucket}/obj")
    assert response.content == b""
    assert response.headers["content-length"] == str(size)


def test_get_missing_key_is_no_such_key(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_code(caught) == "NoSuchKey"
    assert status_of(caught) == 404
    assert caught.value.response["Error"]["Key"] == "nope"


def test_head_missing_key_is_404_without_body(raw, bucket):
    response = raw("HEAD", f"/{bucket}/nope")
    assert response.status_code == 404
    assert response.content == b""
    assert response.headers["x-amz-request-id"]


def test_delete_is_idempotent(s3, raw, node, bucket):
    s3.put_object(Bucket=bucket, Key="gone", Body=body_of(INLINE_THRESHOLD * 2))
    first = raw("DELETE", f"/{bucket}/gone")
    assert first.status_code == 204
    assert first.content == b""
    assert_missing(s3, bucket, "gone")
    assert raw("DELETE", f"/{bucket}/gone").status_code == 204
    assert raw("DELETE", f"/{bucket}/never-existed").status_code == 204
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert_files_settle(node, bucket, 0)


def test_delete_in_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as caught:
        s3.delete_object(Bucket="no-such-bucket-for-delete", Key="k")
    assert error_code(caught) == "NoSuchBucket"


@pytest.mark.parametrize(
    "first,second",
    [(10, 20), (10, 3 * INLINE_THRESHOLD), (3 * INLINE_THRESHOLD, 10), (3 * INLINE_THRESHOLD, 2 * INLINE_THRESHOLD)],
    ids=["inline-to-inline", "inline-to-file", "file-to-inline", "file-to-file"],
)
def test_overwrite_replaces_bytes_etag_and_headers(s3, node, bucket, first, second):
    old = b"o" * first
    new = b"n" * second
    s3.put_object(Bucket=bucket, Key="k", Body=old, ContentType="text/old", Metadata={"gen": "1", "only-old": "x"})
    s3.put_object(Bucket=bucket, Key="k", Body=new, ContentType="text/new", Metadata={"gen": "2"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == new
    assert got["ETag"] == md5_etag(new)
    assert got["ContentType"] == "text/new"
    assert got["Metadata"] == {"gen": "2"}
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("k", second, md5_etag(new))]
    # The replaced version's file is released; an inline version has none.
    assert_files_settle(node, bucket, 1 if second > INLINE_THRESHOLD else 0)


def test_deleting_a_file_backed_object_removes_its_file(s3, node, bucket):
    s3.put_object(Bucket=bucket, Key="big", Body=body_of(3 * INLINE_THRESHOLD))
    assert len(stored_files(node, bucket)) == 1
    s3.delete_object(Bucket=bucket, Key="big")
    assert_files_settle(node, bucket, 0)


# -- ranges ----------------------------------------------------------------------------------

# name -> (header, first, last) for an object of n bytes
RANGES = {
    "first-byte": lambda n: ("bytes=0-0", 0, 0),
    "closed": lambda n: ("bytes=10-19", 10, 19),
    "open-ended": lambda n: (f"bytes={n - 10}-", n - 10, n - 1),
    "suffix": lambda n: ("bytes=-7", n - 7, n - 1),
    "end-clipped": lambda n: (f"bytes={n - 5}-{n + 1000}", n - 5, n - 1),
    "suffix-longer-than-object": lambda n: (f"bytes=-{n + 1000}", 0, n - 1),
    "last-byte": lambda n: (f"bytes={n - 1}-{n - 1}", n - 1, n - 1),
}


@pytest.mark.parametrize("size", [100, 3 * INLINE_THRESHOLD + 100], ids=["inline", "file"])
@pytest.mark.parametrize("case", RANGES.values(), ids=RANGES.keys())
def test_range_answers_206_with_content_range(raw, s3, bucket, size, case):
    data = body_of(size)
    header, first, last = case(size)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    response = raw("GET", f"/{bucket}/r", headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == data[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["etag"] == md5_etag(data)
    head = raw("HEAD", f"/{bucket}/r", headers={"Range": header})
    assert head.status_code == 206
    assert head.headers["content-range"] == f"bytes {first}-{last}/{size}"


def test_range_with_boto3(s3, bucket):
    data = body_of(5 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=1048576-2097151")
    assert got["Body"].read() == data[1048576:2097152]
    assert got["ContentRange"] == f"bytes 1048576-2097151/{len(data)}"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=1000-", "bytes=-0"])
def test_unsatisfiable_range_is_416_invalid_range(raw, s3, bucket, header):
    s3.put_object(Bucket=bucket, Key="r", Body=body_of(100))
    response = raw("GET", f"/{bucket}/r", headers={"Range": header})
    assert response.status_code == 416, response.text
    assert b"<Code>InvalidRange</Code>" in response.content
    assert b"<ActualObjectSize>100</ActualObjectSize>" in response.content


@pytest.mark.parametrize("header", ["bytes=0-0", "bytes=-1", "bytes=0-"])
def test_any_range_of_an_empty_object_is_416(raw, s3, bucket, header):
    s3.put_object(Bucket=bucket, Key="e", Body=b"")
    response = raw("GET", f"/{bucket}/e", headers={"Range": header})
    assert response.status_code == 416
    assert b"<Code>InvalidRange</Code>" in response.content


@pytest.mark.parametrize("header", ["bytes=5-2", "bytes=0-1,5-6", "items=0-5", "bytes=abc", "bytes=-"])
def test_unreadable_range_sends_whole_object(raw, s3, bucket, header):
    data = body_of(100)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    response = raw("GET", f"/{bucket}/r", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == data
    assert "content-range" not in response.headers


# -- content headers, metadata, overrides ----------------------------------------------------


def test_content_headers_are_stored_and_returned(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"payload", Expires=parsedate_to_datetime(EXPIRES), **CONTENT_HEADERS)
    for call in (s3.get_object, s3.head_object):
        got = call(Bucket=bucket, Key="doc")
        for name, value in CONTENT_HEADERS.items():
            assert got[name] == value, name
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"payload"  # kept as sent, not decoded
    response = raw("HEAD", f"/{bucket}/doc")
    assert response.headers["expires"] == EXPIRES
    assert response.headers["content-encoding"] == "gzip"


def test_user_metadata_round_trip(s3, raw, bucket):
    metadata = {"color": "blue", "multi-word-name": "value with spaces", "empty": ""}
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata=metadata)
    assert s3.head_object(Bucket=bucket, Key="m")["Metadata"] == metadata
    assert s3.get_object(Bucket=bucket, Key="m")["Metadata"] == metadata
    raw("PUT", f"/{bucket}/raw-meta", b"x", headers={"X-Amz-Meta-MixedCase": "Kept As Sent"})
    assert raw("HEAD", f"/{bucket}/raw-meta").headers["x-amz-meta-mixedcase"] == "Kept As Sent"


def test_metadata_over_2_kib_is_refused(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert error_code(caught) == "MetadataTooLarge"
    assert_missing(s3, bucket, "m")


def test_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"body", ContentType="text/plain", CacheControl="no-cache")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="application/x-override",
        ResponseContentLanguage="fr",
        ResponseExpires=parsedate_to_datetime(EXPIRES),
        ResponseCacheControl="private",
        ResponseContentDisposition='inline; filename="x.txt"',
        ResponseContentEncoding="identity",
    )
    assert got["Body"].read() == b"body"
    assert got["ContentType"] == "application/x-override"
    assert got["ContentLanguage"] == "fr"
    assert got["CacheControl"] == "private"
    assert got["ContentDisposition"] == 'inline; filename="x.txt"'
    assert got["ContentEncoding"] == "identity"
    assert got["ResponseMetadata"]["HTTPHeaders"]["expires"] == EXPIRES
    # The override changes this answer only.
    assert s3.head_object(Bucket=bucket, Key="o")["ContentType"] == "text/plain"


def test_response_content_type_override_with_raw_query(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"body", ContentType="text/plain")
    response = raw("GET", f"/{bucket}/o?response-content-type=image%2Fpng")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"


def test_etag_and_last_modified(s3, raw, bucket):
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    s3.put_object(Bucket=bucket, Key="t", Body=b"hello world")
    after = datetime.now(UTC) + timedelta(seconds=2)
    head = s3.head_object(Bucket=bucket, Key="t")
    assert head["ETag"] == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'
    assert before <= head["LastModified"] <= after
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    assert listed["LastModified"] == head["LastModified"]
    assert listed["ETag"] == head["ETag"]
    header = raw("GET", f"/{bucket}/t").headers["last-modified"]
    assert header.endswith(" GMT") and parsedate_to_datetime(header) == head["LastModified"]


# -- digests and checksums -------------------------------------------------------------------


def test_good_content_md5_is_accepted(s3, bucket):
    data = b"checked body"
    s3.put_object(Bucket=bucket, Key="md5", Body=data, ContentMD5=b64(hashlib.md5(data).digest()))
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == data


@pytest.mark.parametrize("size", [12, 3 * INLINE_THRESHOLD], ids=["inline", "file"])
def test_wrong_content_md5_is_bad_digest_and_nothing_stored(raw, s3, node, bucket, size):
    data = body_of(size)
    wrong = b64(hashlib.md5(data + b"x").digest())
    response = raw("PUT", f"/{bucket}/md5", data, headers={"Content-MD5": wrong})
    assert response.status_code == 400, response.text
    assert b"<Code>BadDigest</Code>" in response.content
    assert_missing(s3, bucket, "md5")
    assert stored_files(node, bucket) == []
    assert list((node.data / "temp").iterdir()) == []


@pytest.mark.parametrize("value", ["not-base64!", b64(b"short"), "", b64(b"x" * 17)])
def test_malformed_content_md5_is_invalid_digest(raw, s3, bucket, value):
    response = raw("PUT", f"/{bucket}/md5", b"data", headers={"Content-MD5": value})
    assert response.status_code == 400, response.text
    assert b"<Code>InvalidDigest</Code>" in response.content
    assert_missing(s3, bucket, "md5")


def test_wrong_content_md5_keeps_previous_version(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"original")
    response = raw("PUT", f"/{bucket}/k", b"replacement", headers={"Content-MD5": b64(hashlib.md5(b"other").digest())})
    assert response.status_code == 400
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"original"


CHECKSUMS = {
    "CRC32": lambda data: b64(zlib.crc32(data).to_bytes(4, "big")),
    "CRC32C": lambda data: b64(crc32c.crc32c(data).to_bytes(4, "big")),
    "SHA1": lambda data: b64(hashlib.sha1(data).digest()),
    "SHA256": lambda data: b64(hashlib.sha256(data).digest()),
}


# botocore computes CRC32C with awscrt, one of NebulaIO's own dependencies.
BOTO3_ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256")


@pytest.mark.parametrize("size", [1000, 3 * INLINE_THRESHOLD], ids=["inline", "file"])
@pytest.mark.parametrize("algorithm", BOTO3_ALGORITHMS)
def test_checksum_is_verified_stored_and_returned(s3, bucket, algorithm, size):
    data = body_of(size)
    expected = CHECKSUMS[algorithm](data)
    put = s3.put_object(Bucket=bucket, Key="c", Body=data, ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == expected
    for call in (s3.get_object, s3.head_object):
        got = call(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
        assert got[f"Checksum{algorithm}"] == expected
    plain = s3.head_object(Bucket=bucket, Key="c")
    assert f"Checksum{algorithm}" not in plain


@pytest.mark.parametrize("size", [1000, 3 * INLINE_THRESHOLD], ids=["inline", "file"])
@pytest.mark.parametrize("algorithm", CHECKSUMS)
def test_checksum_header_is_verified_stored_and_returned(raw, bucket, algorithm, size):
    data = body_of(size)
    header = f"x-amz-checksum-{algorithm.lower()}"
    expected = CHECKSUMS[algorithm](data)
    put = raw("PUT", f"/{bucket}/c", data, headers={header: expected})
    assert put.status_code == 200, put.text
    assert put.headers[header] == expected
    for method in ("GET", "HEAD"):
        got = raw(method, f"/{bucket}/c", headers={"x-amz-checksum-mode": "ENABLED"})
        assert got.headers[header] == expected
        assert header not in raw(method, f"/{bucket}/c").headers


@pytest.mark.parametrize("algorithm", CHECKSUMS)
def test_explicit_checksum_value_from_boto3(s3, bucket, algorithm):
    data = b"explicit checksum"
    expected = CHECKSUMS[algorithm](data)
    s3.put_object(Bucket=bucket, Key="c", Body=data, **{f"Checksum{algorithm}": expected})
    assert s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")[f"Checksum{algorithm}"] == expected


@pytest.mark.parametrize("size", [100, 3 * INLINE_THRESHOLD], ids=["inline", "file"])
@pytest.mark.parametrize("algorithm", CHECKSUMS)
def test_wrong_checksum_is_bad_digest_and_nothing_stored(raw, s3, node, bucket, algorithm, size):
    data = body_of(size)
    wrong = CHECKSUMS[algorithm](data + b"tampered")
    header = f"x-amz-checksum-{algorithm.lower()}"
    response = raw("PUT", f"/{bucket}/c", data, headers={header: wrong})
    assert response.status_code == 400, response.text
    assert b"<Code>BadDigest</Code>" in response.content
    assert_missing(s3, bucket, "c")
    assert stored_files(node, bucket) == []


def test_wrong_checksum_from_boto3_is_bad_digest(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="c", Body=b"data", ChecksumSHA256=CHECKSUMS["SHA256"](b"other"))
    assert error_code(caught) == "BadDigest"
    assert_missing(s3, bucket, "c")


def test_request_id_on_every_success(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    seen = set()
    for method, path in (
        ("GET", "/"),
        ("HEAD", f"/{bucket}"),
        ("GET", f"/{bucket}?list-type=2"),
        ("PUT", f"/{bucket}/k2"),
        ("GET", f"/{bucket}/k"),
        ("HEAD", f"/{bucket}/k"),
        ("DELETE", f"/{bucket}/k2"),
    ):
        response = raw(method, path)
        assert response.status_code < 300, (method, path, response.text)
        seen.add(response.headers["x-amz-request-id"])
    assert len(seen) == 7  # one id per request
