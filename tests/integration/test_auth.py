"""Authentication against a real node: refusals change nothing; presigned URLs work and expire."""

from __future__ import annotations

import hashlib
import time
import uuid
from xml.etree import ElementTree

import pytest
import requests
from conftest import (
    ROOT_PASSWORD,
    ROOT_USER,
    S3Connection,
    make_client,
    sign_v4,
    wait_for,
)

EXISTING = "existing"
EXISTING_BODY = b"the original bytes"


def _code(body: bytes) -> str:
    return ElementTree.fromstring(body).findtext("Code")


@pytest.fixture
def seeded(s3, bucket):
    s3.put_object(Bucket=bucket, Key=EXISTING, Body=EXISTING_BODY)
    return bucket


def _unchanged(s3, bucket: str, new_bucket: str) -> None:
    """The refused requests below created, wrote and deleted nothing."""
    assert s3.get_object(Bucket=bucket, Key=EXISTING)["Body"].read() == EXISTING_BODY
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == [EXISTING]
    assert new_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def _attempts(bucket: str, new_bucket: str):
    """Writes of every kind: a new object, an overwrite, a delete, a new bucket."""
    return [
        ("PUT", f"/{bucket}/intruder", b"should not be stored"),
        ("PUT", f"/{bucket}/{EXISTING}", b"should not replace"),
        ("DELETE", f"/{bucket}/{EXISTING}", b""),
        ("PUT", f"/{new_bucket}", b""),
    ]


def test_anonymous_requests_are_denied(node, s3, seeded):
    new_bucket = f"anon-{uuid.uuid4().hex[:12]}"
    for method, path, body in _attempts(seeded, new_bucket) + [
        ("GET", f"/{seeded}/{EXISTING}", b""),
        ("GET", "/", b""),
    ]:
        response = requests.request(method, node.s3_url + path, data=body, timeout=10)
        assert response.status_code == 403, (method, path, response.text)
        assert _code(response.content) == "AccessDenied"
        assert response.headers["x-amz-request-id"]
    _unchanged(s3, seeded, new_bucket)


@pytest.mark.parametrize(
    "credentials, code",
    [
        ((ROOT_USER, "not-the-secret"), "SignatureDoesNotMatch"),
        (("AKIDUNKNOWN0000000000", ROOT_PASSWORD), "InvalidAccessKeyId"),
    ],
    ids=["wrong-secret", "unknown-key"],
)
def test_bad_credentials_are_refused(node, s3, seeded, credentials, code):
    new_bucket = f"cred-{uuid.uuid4().hex[:12]}"
    connection = S3Connection(node, access_key=credentials[0], secret_key=credentials[1])
    try:
        for method, path, body in _attempts(seeded, new_bucket) + [("GET", f"/{seeded}/{EXISTING}", b"")]:
            status, _, answer = connection.request(method, path, body)
            assert status == 403, (method, path, answer)
            assert _code(answer) == code
    finally:
        connection.close()
    _unchanged(s3, seeded, new_bucket)


def test_skewed_clock_is_refused(node, s3, seeded):
    new_bucket = f"skew-{uuid.uuid4().hex[:12]}"
    host = f"127.0.0.1:{node.ports['s3']}"
    for skew in (-3600, 3600):
        for method, path, body in _attempts(seeded, new_bucket):
            signature = sign_v4(method, host, path, {}, hashlib.sha256(body).hexdigest(), when=time.time() + skew)
            response = requests.request(method, node.s3_url + path, data=body, headers=signature.headers, timeout=10)
            assert response.status_code == 403, response.text
            assert _code(response.content) == "RequestTimeTooSkewed"
    _unchanged(s3, seeded, new_bucket)


def test_payload_hash_mismatch_stores_nothing(node, s3, seeded):
    connection = S3Connection(node)
    try:
        claimed = hashlib.sha256(b"some other body").hexdigest()
        status, _, answer = connection.request("PUT", f"/{seeded}/mismatch", b"the real body", payload_hash=claimed)
        assert status == 400, answer
        assert _code(answer) == "XAmzContentSHA256Mismatch"
        status, _, answer = connection.request("PUT", f"/{seeded}/{EXISTING}", b"a replacement", payload_hash=claimed)
        assert _code(answer) == "XAmzContentSHA256Mismatch"
    finally:
        connection.close()
    _unchanged(s3, seeded, "no-such-new-bucket")


# --- presigned URLs -----------------------------------------------------------------------


def _presigner(node, version: str):
    return make_client(node.s3_url, signature_version=version)


def test_presigned_v4_get_and_put(node, s3, seeded):
    presigner = _presigner(node, "s3v4")
    get_url = presigner.generate_presigned_url("get_object", Params={"Bucket": seeded, "Key": EXISTING}, ExpiresIn=300)
    assert "X-Amz-Signature=" in get_url
    response = requests.get(get_url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.content == EXISTING_BODY

    put_url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": seeded, "Key": "uploaded"}, ExpiresIn=300
    )
    response = requests.put(put_url, data=b"uploaded through a presigned URL", timeout=10)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=seeded, Key="uploaded")["Body"].read() == b"uploaded through a presigned URL"

    tampered = get_url.replace(f"/{EXISTING}?", "/uploaded?")
    response = requests.get(tampered, timeout=10)
    assert response.status_code == 403 and _code(response.content) == "SignatureDoesNotMatch"


def test_presigned_v4_urls_expire(node, s3, seeded):
    presigner = _presigner(node, "s3v4")
    signed_at = time.time()
    get_url = presigner.generate_presigned_url("get_object", Params={"Bucket": seeded, "Key": EXISTING}, ExpiresIn=1)
    put_url = presigner.generate_presigned_url("put_object", Params={"Bucket": seeded, "Key": "late"}, ExpiresIn=1)
    assert "X-Amz-Expires=1" in get_url
    # X-Amz-Date has whole seconds: the URLs are surely expired once 2 s have passed.
    wait_for(lambda: time.time() - signed_at >= 2.0, 5.0, "the URLs to expire", interval=0.1)
    response = requests.get(get_url, timeout=10)
    assert response.status_code == 403, response.text
    assert _code(response.content) == "AccessDenied"
    response = requests.put(put_url, data=b"too late", timeout=10)
    assert response.status_code == 403, response.text
    assert _code(response.content) == "AccessDenied"
    _unchanged(s3, seeded, "no-such-new-bucket")


def test_presigned_v2_query(node, s3, seeded):
    presigner = _presigner(node, "s3")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": seeded, "Key": EXISTING}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.content == EXISTING_BODY

    put_url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": seeded, "Key": "v2-upload"}, ExpiresIn=300
    )
    response = requests.put(put_url, data=b"v2", timeout=10)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=seeded, Key="v2-upload")["Body"].read() == b"v2"

    response = requests.get(url.replace(f"/{EXISTING}?", "/v2-upload?"), timeout=10)
    assert response.status_code == 403 and _code(response.content) == "SignatureDoesNotMatch"
