"""Conditional requests against a real node: GET and HEAD preconditions (304 / 412) and
conditional writes (If-None-Match: * and If-Match on PutObject) decided at apply time.

Sizes straddle the inline threshold: inline and file-backed objects are served differently.
"""

from __future__ import annotations

import hashlib
import threading
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from nebulaio.util.timefmt import http_date, parse_http_date

INLINE_THRESHOLD = 16 * 1024
SIZES = {"inline": 100, "file": 3 * INLINE_THRESHOLD}
OTHER_ETAG = '"0123456789abcdef0123456789abcdef"'
RACERS = 16


def etag_of(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def error_of(response) -> dict[str, str]:
    return {node.tag: node.text for node in ElementTree.fromstring(response.content)}


@pytest.fixture(params=SIZES.values(), ids=SIZES.keys())
def stored(request, s3, bucket):
    """(bucket, key, bytes, ETag, Last-Modified) of one stored object."""
    data = bytes(range(256)) * (request.param // 256) + b"x" * (request.param % 256)
    s3.put_object(Bucket=bucket, Key="obj", Body=data)
    head = s3.head_object(Bucket=bucket, Key="obj")
    modified = head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
    return bucket, "obj", data, etag_of(data), modified


def shifted(date: str, seconds: int) -> str:
    return http_date(int((parse_http_date(date) + seconds) * 1000))


# -- reads -----------------------------------------------------------------------------------


def test_if_match(raw, stored):
    bucket, key, data, etag, _ = stored
    assert raw("GET", f"/{bucket}/{key}", headers={"If-Match": etag}).content == data
    assert raw("GET", f"/{bucket}/{key}", headers={"If-Match": f"{OTHER_ETAG}, {etag}"}).status_code == 200
    assert raw("GET", f"/{bucket}/{key}", headers={"If-Match": "*"}).status_code == 200
    refused = raw("GET", f"/{bucket}/{key}", headers={"If-Match": OTHER_ETAG})
    assert refused.status_code == 412
    assert error_of(refused)["Code"] == "PreconditionFailed"
    assert error_of(refused)["Condition"] == "If-Match"


def test_if_none_match_answers_304_with_validators_and_no_body(raw, stored):
    bucket, key, data, etag, modified = stored
    response = raw("GET", f"/{bucket}/{key}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["last-modified"] == modified
    assert response.headers["x-amz-request-id"]
    assert raw("GET", f"/{bucket}/{key}", headers={"If-None-Match": "*"}).status_code == 304
    assert raw("GET", f"/{bucket}/{key}", headers={"If-None-Match": OTHER_ETAG}).content == data


def test_if_modified_since(raw, stored):
    bucket, key, data, _, modified = stored
    assert raw("GET", f"/{bucket}/{key}", headers={"If-Modified-Since": shifted(modified, -1)}).content == data
    for date in (modified, shifted(modified, 60)):
        assert raw("GET", f"/{bucket}/{key}", headers={"If-Modified-Since": date}).status_code == 304
    # A date that does not parse is ignored, as RFC 9110 says.
    assert raw("GET", f"/{bucket}/{key}", headers={"If-Modified-Since": "yesterday"}).status_code == 200


def test_if_unmodified_since(raw, stored):
    bucket, key, data, _, modified = stored
    assert raw("GET", f"/{bucket}/{key}", headers={"If-Unmodified-Since": modified}).content == data
    refused = raw("GET", f"/{bucket}/{key}", headers={"If-Unmodified-Since": shifted(modified, -1)})
    assert refused.status_code == 412
    assert error_of(refused)["Condition"] == "If-Unmodified-Since"


def test_if_match_true_wins_over_if_unmodified_since_false(raw, stored):
    bucket, key, data, etag, modified = stored
    headers = {"If-Match": etag, "If-Unmodified-Since": shifted(modified, -1)}
    response = raw("GET", f"/{bucket}/{key}", headers=headers)
    assert response.status_code == 200
    assert response.content == data


def test_if_none_match_false_with_if_modified_since_true_is_304(raw, stored):
    bucket, key, _, etag, modified = stored
    headers = {"If-None-Match": etag, "If-Modified-Since": shifted(modified, -1)}
    assert raw("GET", f"/{bucket}/{key}", headers=headers).status_code == 304


def test_head_answers_the_same_statuses(raw, stored):
    bucket, key, data, etag, modified = stored
    assert raw("HEAD", f"/{bucket}/{key}", headers={"If-Match": etag}).headers["content-length"] == str(len(data))
    assert raw("HEAD", f"/{bucket}/{key}", headers={"If-Match": OTHER_ETAG}).status_code == 412
    not_modified = raw("HEAD", f"/{bucket}/{key}", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == etag
    assert raw("HEAD", f"/{bucket}/{key}", headers={"If-Modified-Since": modified}).status_code == 304


def test_conditions_then_range(raw, stored):
    bucket, key, data, etag, _ = stored
    response = raw("GET", f"/{bucket}/{key}", headers={"If-Match": etag, "Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == data[10:20]


def test_boto3_sees_304_and_412(s3, stored):
    bucket, key, data, etag, _ = stored
    assert s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read() == data
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key=key, IfMatch=OTHER_ETAG)
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"


def test_conditions_on_a_missing_key_are_404(raw, bucket):
    assert raw("GET", f"/{bucket}/nope", headers={"If-Match": "*"}).status_code == 404
    assert raw("GET", f"/{bucket}/nope", headers={"If-None-Match": "*"}).status_code == 404


# -- writes ----------------------------------------------------------------------------------


def test_put_if_none_match_creates_only(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"


def test_put_if_match_replaces_only_the_version_named(s3, node, bucket):
    first = b"a" * (3 * INLINE_THRESHOLD)
    s3.put_object(Bucket=bucket, Key="k", Body=first)
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="k", Body=b"lost update", IfMatch=OTHER_ETAG)
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    second = b"b" * (3 * INLINE_THRESHOLD)
    assert s3.put_object(Bucket=bucket, Key="k", Body=second, IfMatch=etag_of(first))["ETag"] == etag_of(second)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == second


def test_put_if_match_on_a_missing_key_is_no_such_key(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="nope", Body=b"x", IfMatch=OTHER_ETAG)
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_put_if_none_match_with_an_etag_is_not_implemented(raw, bucket):
    response = raw("PUT", f"/{bucket}/k", body=b"x", headers={"If-None-Match": OTHER_ETAG})
    assert response.status_code == 501
    assert error_of(response)["Code"] == "NotImplemented"


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_racing_creates_have_exactly_one_winner(node, bucket, size):
    """Every writer passes the early check at once; only apply can tell them apart."""
    bodies = [bytes([n]) * size for n in range(RACERS)]
    start = threading.Barrier(RACERS)
    clients = [node.client() for _ in range(RACERS)]

    def create(n: int) -> str:
        start.wait()
        try:
            clients[n].put_object(Bucket=bucket, Key="contended", Body=bodies[n], IfNoneMatch="*")
        except ClientError as exc:
            return exc.response["Error"]["Code"]
        return "ok"

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(create, range(RACERS)))
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) == {"ok", "PreconditionFailed"}
    winner = bodies[outcomes.index("ok")]
    assert clients[0].get_object(Bucket=bucket, Key="contended")["Body"].read() == winner
    files = [f for f in (node.data / "objects" / bucket).rglob("*") if f.is_file()]
    assert len(files) == (1 if size > INLINE_THRESHOLD else 0)
