"""Browser form uploads (POST Object) against a real node.

Forms are signed by boto3's `generate_presigned_post` (SigV4) or by hand (SigV2), sent as a
raw multipart/form-data request the way a browser sends them, and read back with boto3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError
from conftest import ROOT_PASSWORD, ROOT_USER

BOUNDARY = "----NebulaFormBoundary7MA4YWxkTrZu0gW"
FUTURE = "2999-01-01T00:00:00.000Z"


def multipart(fields: list[tuple[str, str]], file_bytes: bytes | None, filename: str = "cat.png", after=()) -> bytes:
    """A form as a browser encodes it: the fields, the file, then any fields after the file."""
    dash = f"--{BOUNDARY}\r\n".encode()
    body = bytearray()
    for name, value in fields:
        body += dash + f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
    if file_bytes is not None:
        body += dash + f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + file_bytes + b"\r\n"
    for name, value in after:
        body += dash + f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
    return bytes(body + f"--{BOUNDARY}--\r\n".encode())


def send(node, bucket: str, body: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}"):
    """(status, lower-cased headers, body) of an unsigned POST /bucket, as a browser sends it."""
    conn = http.client.HTTPConnection("127.0.0.1", node.ports["s3"], timeout=60)
    try:
        conn.request("POST", f"/{bucket}", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def post(node, bucket, fields, file_bytes, **kwargs):
    return send(node, bucket, multipart(list(fields.items()), file_bytes, **kwargs))


def presigned(client, bucket: str, key: str, fields=None, conditions=None) -> dict:
    """The form fields boto3 signs for an upload of `key` to `bucket`."""
    return client.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions)["fields"]


@pytest.fixture(scope="module")
def signer(node):
    """A boto3 client whose presigned posts are SigV4-signed (its default for them is V2)."""
    return node.client(signature_version="s3v4")


def v2_fields(key: str, conditions: list, expiration: str = FUTURE, secret: str = ROOT_PASSWORD) -> dict:
    """A form signed with Signature V2, by hand: base64 HMAC-SHA1 of the base64 policy."""
    policy = base64.b64encode(json.dumps({"expiration": expiration, "conditions": conditions}).encode()).decode()
    signature = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {"key": key, "AWSAccessKeyId": ROOT_USER, "policy": policy, "signature": signature}


def error_of(status: int, body: bytes, expected_status: int, code: str) -> ElementTree.Element:
    assert status == expected_status, body
    root = ElementTree.fromstring(body)
    assert root.findtext("Code") == code, body
    return root


def assert_absent(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key=key)
    assert caught.value.response["Error"]["Code"] == "404"


def test_presigned_post_with_conditions_uploads_the_file(node, s3, signer, bucket):
    fields = presigned(
        signer,
        bucket,
        "user/42/cat.png",
        fields={"Content-Type": "image/png", "x-amz-meta-owner": "ada", "Cache-Control": "max-age=60"},
        conditions=[
            {"Content-Type": "image/png"},
            ["starts-with", "$x-amz-meta-owner", ""],
            ["eq", "$Cache-Control", "max-age=60"],
            ["content-length-range", 1, 1024],
        ],
    )
    picture = b"\x89PNG the picture"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    status, headers, body = post(node, bucket, fields, picture)
    assert (status, body) == (204, b"")
    etag = headers["etag"]
    assert etag == f'"{hashlib.md5(picture).hexdigest()}"'
    assert headers["location"] == f"http://127.0.0.1:{node.ports['s3']}/{bucket}/user/42/cat.png"
    got = s3.get_object(Bucket=bucket, Key="user/42/cat.png")
    assert got["Body"].read() == picture
    assert (got["ContentType"], got["CacheControl"], got["Metadata"]) == ("image/png", "max-age=60", {"owner": "ada"})
    assert got["ETag"] == etag


def test_signature_v2_form_uploads_the_file(node, s3, bucket):
    fields = v2_fields("v2/object", [{"bucket": bucket}, ["starts-with", "$key", "v2/"]])
    status, _, body = post(node, bucket, fields, b"signed the old way")
    assert status == 204, body
    assert s3.get_object(Bucket=bucket, Key="v2/object")["Body"].read() == b"signed the old way"
    # boto3 signs presigned posts with V2 unless told otherwise.
    fields = presigned(s3, bucket, "v2/boto3")
    assert "signature" in fields
    status, _, body = post(node, bucket, fields, b"signed by boto3")
    assert status == 204, body
    assert s3.get_object(Bucket=bucket, Key="v2/boto3")["Body"].read() == b"signed by boto3"


def test_field_names_ignore_case(node, s3, signer, bucket):
    fields = presigned(signer, bucket, "cased", conditions=[["starts-with", "$content-type", "text/"]])
    fields = {name.upper(): value for name, value in fields.items()}
    fields["CONTENT-TYPE"] = "text/plain"
    status, _, body = post(node, bucket, fields, b"shouting")
    assert status == 204, body
    assert s3.head_object(Bucket=bucket, Key="cased")["ContentType"] == "text/plain"


@pytest.mark.parametrize(
    "conditions,extra,message",
    [
        ([{"x-amz-meta-kind": "cat"}], {"x-amz-meta-kind": "dog"}, '["eq", "$x-amz-meta-kind", "cat"]'),
        ([["eq", "$Content-Type", "image/png"]], {"Content-Type": "text/html"}, '["eq", "$Content-Type", "image/png"]'),
        (
            [["starts-with", "$Content-Type", "image/"]],
            {"Content-Type": "text/html"},
            '["starts-with", "$Content-Type", "image/"]',
        ),
        ([{"acl": "private"}], {}, '["eq", "$acl", "private"]'),
    ],
)
def test_a_failing_condition_refuses_the_upload(node, s3, signer, bucket, conditions, extra, message):
    fields = {**presigned(signer, bucket, "refused", conditions=conditions), **extra}
    root = error_of(*post(node, bucket, fields, b"data")[::2], 403, "AccessDenied")
    assert root.findtext("Message") == f"Invalid according to Policy: Policy Condition failed: {message}"
    assert_absent(s3, bucket, "refused")


def test_a_field_no_condition_names_refuses_the_upload(node, s3, signer, bucket):
    fields = {**presigned(signer, bucket, "extra"), "x-amz-meta-sneaky": "1", "x-ignore-this": "fine"}
    root = error_of(*post(node, bucket, fields, b"data")[::2], 403, "AccessDenied")
    assert root.findtext("Message") == "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"
    assert_absent(s3, bucket, "extra")


def test_a_policy_for_another_bucket_or_key_is_refused(node, s3, signer, bucket):
    fields = presigned(signer, bucket, "mine")
    status, _, body = post(node, bucket, {**fields, "key": "theirs"}, b"data")
    error_of(status, body, 403, "AccessDenied")
    other = f"{bucket}-2"
    s3.create_bucket(Bucket=other)
    try:
        root = error_of(*post(node, other, fields, b"data")[::2], 403, "AccessDenied")
        assert '"$bucket"' in root.findtext("Message")
    finally:
        s3.delete_bucket(Bucket=other)
    assert_absent(s3, bucket, "theirs")


def test_an_expired_policy_is_refused(node, s3, bucket):
    fields = v2_fields("late", [{"bucket": bucket}, {"key": "late"}], expiration="2001-01-01T00:00:00Z")
    root = error_of(*post(node, bucket, fields, b"data")[::2], 403, "AccessDenied")
    assert root.findtext("Message") == "Invalid according to Policy: Policy expired."
    assert_absent(s3, bucket, "late")


def test_signature_refusals(node, s3, signer, bucket):
    forged = {**presigned(signer, bucket, "forged"), "x-amz-signature": "0" * 64}
    error_of(*post(node, bucket, forged, b"data")[::2], 403, "SignatureDoesNotMatch")
    wrong_secret = v2_fields("forged", [{"bucket": bucket}, {"key": "forged"}], secret="not-the-secret")
    error_of(*post(node, bucket, wrong_secret, b"data")[::2], 403, "SignatureDoesNotMatch")
    tampered = presigned(signer, bucket, "forged")
    tampered["policy"] = base64.b64encode(json.dumps({"expiration": FUTURE, "conditions": []}).encode()).decode()
    error_of(*post(node, bucket, tampered, b"data")[::2], 403, "SignatureDoesNotMatch")
    stranger = {**v2_fields("forged", [{"bucket": bucket}, {"key": "forged"}]), "AWSAccessKeyId": "nobody"}
    error_of(*post(node, bucket, stranger, b"data")[::2], 403, "InvalidAccessKeyId")
    assert_absent(s3, bucket, "forged")


def test_missing_fields(node, s3, signer, bucket):
    fields = presigned(signer, bucket, "partial")
    without_signature = {k: v for k, v in fields.items() if k != "x-amz-signature"}
    root = error_of(*post(node, bucket, without_signature, b"data")[::2], 400, "InvalidArgument")
    assert root.findtext("ArgumentName") == "X-Amz-Signature"
    without_key = {k: v for k, v in fields.items() if k != "key"}
    root = error_of(*post(node, bucket, without_key, b"data")[::2], 400, "InvalidArgument")
    assert root.findtext("ArgumentName") == "key"
    error_of(*post(node, bucket, fields, None)[::2], 400, "IncorrectNumberOfFilesInPostRequest")
    anonymous = {"key": "partial"}
    error_of(*post(node, bucket, anonymous, b"data")[::2], 403, "AccessDenied")
    assert_absent(s3, bucket, "partial")


def test_content_length_range(node, s3, signer, bucket):
    fields = presigned(signer, bucket, "sized", conditions=[["content-length-range", 10, 20]])
    root = error_of(*post(node, bucket, fields, b"x" * 9)[::2], 400, "EntityTooSmall")
    assert (root.findtext("ProposedSize"), root.findtext("MinSizeAllowed")) == ("9", "10")
    root = error_of(*post(node, bucket, fields, b"x" * 21)[::2], 400, "EntityTooLarge")
    assert root.findtext("MaxSizeAllowed") == "20"
    assert_absent(s3, bucket, "sized")
    for size in (10, 20):
        assert post(node, bucket, fields, b"x" * size)[0] == 204
        assert s3.head_object(Bucket=bucket, Key="sized")["ContentLength"] == size


def test_filename_variable_names_the_object(node, s3, signer, bucket):
    fields = presigned(signer, bucket, "uploads/${filename}")
    status, headers, body = post(node, bucket, fields, b"holiday", filename="beach photo.jpg")
    assert status == 204, body
    assert headers["location"].endswith(f"/{bucket}/uploads/beach%20photo.jpg")
    assert s3.get_object(Bucket=bucket, Key="uploads/beach photo.jpg")["Body"].read() == b"holiday"


@pytest.mark.parametrize("requested,expected", [("200", 200), ("201", 201), ("204", 204), ("302", 204)])
def test_success_action_status(node, signer, bucket, requested, expected):
    fields = presigned(
        signer,
        bucket,
        "answered",
        fields={"success_action_status": requested},
        conditions=[{"success_action_status": requested}],
    )
    status, headers, body = post(node, bucket, fields, b"data")
    assert status == expected, body
    etag = headers["etag"]
    if expected == 201:
        root = ElementTree.fromstring(body)
        assert root.tag == "PostResponse"
        assert root.findtext("Bucket") == bucket
        assert root.findtext("Key") == "answered"
        assert root.findtext("ETag") == etag
        assert root.findtext("Location") == headers["location"]
    else:
        assert body == b""


@pytest.mark.parametrize("field", ["success_action_redirect", "redirect"])
def test_redirect_after_upload(node, s3, signer, bucket, field):
    target = "https://example.com/done?from=form"
    fields = presigned(signer, bucket, "dir/sent ok", fields={field: target}, conditions=[{field: target}])
    status, headers, body = post(node, bucket, fields, b"data")
    assert status == 303, body
    location = urlsplit(headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "example.com", "/done")
    query = parse_qs(location.query)
    assert query == {"from": ["form"], "bucket": [bucket], "key": ["dir/sent ok"], "etag": [headers["etag"]]}
    assert s3.get_object(Bucket=bucket, Key="dir/sent ok")["Body"].read() == b"data"


def test_a_multi_mib_file_streams_through(node, s3, signer, bucket):
    data = os.urandom(5 * 1024 * 1024 + 123)
    # Plant what a careless parser takes for a boundary across the body.
    data = data[:100_000] + f"\r\n--{BOUNDARY[:-1]}".encode() + data[100_000:]
    fields = presigned(signer, bucket, "big", conditions=[["content-length-range", 0, 10 * 1024 * 1024]])
    status, headers, body = post(node, bucket, fields, data)
    assert status == 204, body
    assert headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data


def test_fields_after_the_file_are_ignored(node, s3, signer, bucket):
    fields = presigned(signer, bucket, "first")
    status, _, body = post(node, bucket, fields, b"data", after=[("key", "second"), ("x-amz-meta-late", "1")])
    assert status == 204, body
    assert s3.head_object(Bucket=bucket, Key="first")["Metadata"] == {}
    assert_absent(s3, bucket, "second")


def test_malformed_bodies(node, s3, signer, bucket):
    fields = presigned(signer, bucket, "malformed")
    whole = multipart(list(fields.items()), b"data")
    cut = whole[: whole.index(b"data") + 2]
    error_of(*send(node, bucket, cut)[::2], 400, "MalformedPOSTRequest")
    garbage = b"this is not a multipart body at all"
    error_of(*send(node, bucket, garbage)[::2], 400, "MalformedPOSTRequest")
    error_of(*send(node, bucket, whole, "multipart/form-data")[::2], 400, "MalformedPOSTRequest")
    root = error_of(*send(node, bucket, b"key=x", "application/x-www-form-urlencoded")[::2], 412, "PreconditionFailed")
    assert root.findtext("Condition") == "Bucket POST must be of the enclosure-type multipart/form-data"
    assert_absent(s3, bucket, "malformed")


def test_an_invalid_policy_document_signed_correctly(node, s3, bucket):
    fields = v2_fields("k", [["in", "$key", "k"]])
    root = error_of(*post(node, bucket, fields, b"data")[::2], 400, "InvalidPolicyDocument")
    assert root.findtext("Message").startswith("Invalid Policy: ")


def test_too_many_bytes_before_the_file(node, s3, signer, bucket):
    fields = {**presigned(signer, bucket, "chatty"), "x-ignore-padding": "p" * 21_000}
    root = error_of(*post(node, bucket, fields, b"data")[::2], 400, "MaxPostPreDataLengthExceeded")
    assert root.findtext("MaxPostPreDataLengthBytes") == "20480"


def test_a_missing_bucket(node, s3):
    fields = v2_fields("k", [["starts-with", "$key", ""]])
    error_of(*post(node, "no-such-bucket-for-posts", fields, b"data")[::2], 404, "NoSuchBucket")


def test_the_connection_carries_on_after_a_refused_upload(node, s3, signer, bucket):
    """A refused form leaves the keep-alive connection usable for the next request."""
    refused = multipart(list({**presigned(signer, bucket, "k2"), "x-amz-meta-x": "1"}.items()), b"data")
    accepted = multipart(list(presigned(signer, bucket, "k2").items()), b"data")
    conn = http.client.HTTPConnection("127.0.0.1", node.ports["s3"], timeout=60)
    try:
        statuses = []
        for body in (refused, accepted):
            conn.request(
                "POST", f"/{bucket}", body=body, headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
            )
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()
    assert statuses == [403, 204]


@pytest.mark.parametrize(
    "name,value",
    [("x-amz-meta-note", "line one\r\nSet-Cookie: x=1"), ("x-amz-meta-bad name", "v"), ("Content-Type", "a\nb")],
)
def test_fields_that_cannot_be_headers_are_refused(node, s3, signer, bucket, name, value):
    fields = {**presigned(signer, bucket, "headers", conditions=[["starts-with", f"${name}", ""]]), name: value}
    error_of(*post(node, bucket, fields, b"data")[::2], 400, "InvalidArgument")
    assert_absent(s3, bucket, "headers")
