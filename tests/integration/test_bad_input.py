"""Bad input against a real node: each answer is a clear S3 error (4xx, S3's XML, a request id,
no traceback), nothing is stored, and the node keeps serving.

Requests a well-behaved HTTP library refuses to send (absurd lengths, truncated bodies,
bodies that are never sent) go over a raw socket, signed by the suite's own SigV4 signer.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import make_client, raw_exchange, sign_v4, wait_for

LIMIT = 1024 * 1024  # the object size limit of the limited node
SLOW_TIMEOUT = 2  # seconds the limited node waits for a silent client
ANSWER_TIMEOUT = 10.0


# -- helpers ---------------------------------------------------------------------------------


def assert_s3_error(response, status: int, *codes: str) -> ElementTree.Element | None:
    """`response` (requests or RawResponse) is S3's error document with one of `codes`."""
    assert response.status_code == status, (response.status_code, response.content[:2000])
    request_id = response.headers.get("x-amz-request-id")
    assert request_id
    assert b"Traceback" not in response.content and b'File "' not in response.content
    if not response.content:
        assert not codes  # HEAD: no body to carry a code
        return None
    assert response.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Error"
    assert root.findtext("Code") in codes, response.content[:2000]
    assert root.findtext("Message")
    assert root.findtext("RequestId") == request_id
    return root


class RawResponse:
    """The parts of a raw HTTP answer that `assert_s3_error` reads."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, received: bytes):
        head, _, self.content = received.partition(b"\r\n\r\n")
        while head.startswith(b"HTTP/1.1 100"):  # interim answers to Expect: 100-continue
            head, _, self.content = self.content.partition(b"\r\n\r\n")
        if not head:
            raise AssertionError("no answer")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status_code = int(status_line.split()[1])
        self.headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()


def signed_head(
    node,
    method: str,
    target: str,
    headers: dict | None = None,
    unsigned: dict | None = None,
    payload_hash: str = "UNSIGNED-PAYLOAD",
) -> bytes:
    """A request line and headers signed as root; `unsigned` headers are added after signing."""
    signature = sign_v4(method, f"127.0.0.1:{node.ports['s3']}", target, headers or {}, payload_hash)
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in {**signature.headers, **(unsigned or {})}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def send(node, head: bytes, *body_parts: bytes, timeout: float = ANSWER_TIMEOUT) -> RawResponse:
    """The answer to a request sent over a fresh socket, its body in parts."""
    return RawResponse(raw_exchange(node, head, body_parts, timeout=timeout))


def send_and_close(node, payload: bytes) -> RawResponse | None:
    """Send, end the stream (a client that stops mid-body), and read whatever answer comes."""
    with socket.create_connection(("127.0.0.1", node.ports["s3"]), timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return RawResponse(received) if received else None


def assert_not_stored(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key=key)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def assert_still_serving(s3, bucket: str) -> None:
    key = f"alive-{uuid.uuid4().hex}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"still here")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"still here"
    s3.delete_object(Bucket=bucket, Key=key)


def leftover_files(node, bucket: str) -> list[str]:
    """Files of `bucket` under objects/ plus anything in temp/."""
    found = [str(p) for p in (node.data / "objects" / bucket).rglob("*") if p.is_file()]
    return found + [str(p) for p in (node.data / "temp").iterdir()]


def assert_no_leftovers(node, bucket: str) -> None:
    """A body the node gave up on is removed as its request ends, which may follow the answer."""
    wait_for(lambda: not leftover_files(node, bucket), ANSWER_TIMEOUT, f"no files left of {bucket}")


@pytest.fixture(scope="module")
def limited(node_factory):
    """A node that stores at most 1 MiB per object and waits 2 s for a silent client."""
    node = node_factory(extra_env={"NEBULAIO_MAX_OBJECT_SIZE": "1M", "NEBULAIO_REQUEST_TIMEOUT": str(SLOW_TIMEOUT)})
    client = node.client()
    name = f"limited-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return node, client, name


# -- the error document ------------------------------------------------------------------------


def test_error_document_shape(raw, bucket):
    for method, path, status, code in (
        ("GET", "/no-such-bucket-anywhere", 404, "NoSuchBucket"),
        ("GET", f"/{bucket}/no-such-key", 404, "NoSuchKey"),
        ("PUT", "/Invalid_Bucket", 400, "InvalidBucketName"),
        ("POST", f"/{bucket}/key", 405, "MethodNotAllowed"),
    ):
        root = assert_s3_error(raw(method, path), status, code)
        assert root.findtext("Resource") == path or root.find("Resource") is None


def test_anonymous_and_badly_signed_requests_change_nothing(node, s3, bucket):
    anonymous = requests.put(f"{node.s3_url}/{bucket}/anon", data=b"x", timeout=10)
    assert_s3_error(anonymous, 403, "AccessDenied")
    assert_not_stored(s3, bucket, "anon")


def test_wrong_secret_is_signature_does_not_match(node, s3, bucket):
    intruder = make_client(node.s3_url, secret_key="not-the-secret")
    with pytest.raises(ClientError) as caught:
        intruder.put_object(Bucket=bucket, Key="forged", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    stranger = make_client(node.s3_url, access_key="nobody-we-know")
    with pytest.raises(ClientError) as caught:
        stranger.put_object(Bucket=bucket, Key="forged", Body=b"x")
    assert caught.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert_not_stored(s3, bucket, "forged")


@pytest.mark.parametrize(
    "method,path,resource",
    [
        ("POST", "/{bucket}/key", "OBJECT"),
        ("PATCH", "/{bucket}/key", "OBJECT"),
        ("PATCH", "/{bucket}", "BUCKET"),
        ("PUT", "/", "SERVICE"),
        ("DELETE", "/", "SERVICE"),
        ("POST", "/", "SERVICE"),
    ],
)
def test_method_not_allowed(raw, s3, bucket, method, path, resource):
    s3.put_object(Bucket=bucket, Key="key", Body=b"kept")
    root = assert_s3_error(raw(method, path.format(bucket=bucket), b"body"), 405, "MethodNotAllowed")
    assert root.findtext("Method") == method
    assert root.findtext("ResourceType") == resource
    assert s3.get_object(Bucket=bucket, Key="key")["Body"].read() == b"kept"


TAGGING = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("PUT", "/{bucket}?website", b"<WebsiteConfiguration/>"),
        ("PUT", "/{bucket}?replication", b"<ReplicationConfiguration/>"),
        ("PUT", "/{bucket}?metrics&id=m", b"<MetricsConfiguration/>"),
        ("GET", "/{bucket}/key?torrent", b""),
        ("POST", "/{bucket}/key?restore", b"<RestoreRequest/>"),
        ("DELETE", "/{bucket}?inventory", b""),
        ("PUT", "/{bucket}?accelerate", b"<AccelerateConfiguration/>"),
        ("PUT", "/{bucket}/key?tagging&acl", TAGGING),
    ],
)
def test_unknown_subresource_is_not_implemented_and_changes_nothing(raw, s3, bucket, method, path, body):
    s3.put_object(Bucket=bucket, Key="key", Body=b"original", Metadata={"m": "1"})
    assert_s3_error(raw(method, path.format(bucket=bucket), body), 501, "NotImplemented")
    got = s3.get_object(Bucket=bucket, Key="key")
    assert got["Body"].read() == b"original"
    assert got["Metadata"] == {"m": "1"}
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_unknown_plain_query_parameters_are_ignored(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="key", Body=b"data")
    response = raw("GET", f"/{bucket}/key?foo=bar&x-id=GetObject")
    assert response.status_code == 200
    assert response.content == b"data"


# -- malformed requests ------------------------------------------------------------------------


# Requests HTTP itself cannot parse. gunicorn refuses them before the S3 application sees them.
UNPARSABLE = {
    "length-negative": ("PUT", "/{bucket}/bad", {"Content-Length": "-5"}, b""),
    "length-letters": ("PUT", "/{bucket}/bad", {"Content-Length": "abc"}, b""),
    "length-trailing-letters": ("PUT", "/{bucket}/bad", {"Content-Length": "12abc"}, b""),
    "length-hex": ("PUT", "/{bucket}/bad", {"Content-Length": "0x10"}, b""),
    "length-blank": ("PUT", "/{bucket}/bad", {"Content-Length": " "}, b""),
    "length-exponent": ("PUT", "/{bucket}/bad", {"Content-Length": "1e3"}, b""),
    "length-plus": ("PUT", "/{bucket}/bad", {"Content-Length": "+5"}, b""),
    "length-5000-digits": ("PUT", "/{bucket}/bad", {"Content-Length": "5" * 5000}, b""),
    "two-lengths": ("PUT", "/{bucket}/bad", {"Content-Length": "5"}, b"Content-Length: 10\r\n"),
    "no-colon": ("PUT", "/{bucket}/bad", {"Content-Length": "3"}, b"No-Colon-Here\r\n"),
    "space-in-name": ("PUT", "/{bucket}/bad", {"Content-Length": "3"}, b"Bad Name: value\r\n"),
    "nul-in-value": ("PUT", "/{bucket}/bad", {"Content-Length": "3"}, b"X-Nul: a\x00b\r\n"),
    "empty-name": ("PUT", "/{bucket}/bad", {"Content-Length": "3"}, b": empty-name\r\n"),
    "control-in-value": ("PUT", "/{bucket}/bad", {"Content-Length": "3"}, b"X-Ctl: a\x01b\r\n"),
    # Clients must percent-encode the path; UTF-8 or other raw bytes in it are not HTTP.
    "raw-utf8-path": ("PUT", "/{bucket}/caf\u00e9", {"Content-Length": "3"}, b""),
}


def unparsable_request(node, bucket: str, case: str) -> bytes:
    method, target, unsigned, extra_lines = UNPARSABLE[case]
    target = target.format(bucket=bucket)
    head = signed_head(node, method, quote(target, safe="/"), unsigned=unsigned)
    head = head.replace(quote(target, safe="/").encode(), target.encode(), 1)
    return head[:-2] + extra_lines + b"\r\n" + b"abc0123456"


@pytest.mark.parametrize("case", UNPARSABLE)
def test_unparsable_request_is_refused_cleanly(node, s3, bucket, case):
    response = send_and_close(node, unparsable_request(node, bucket, case))
    assert response.status_code == 400, response.content
    assert b"Traceback" not in response.content
    assert_not_stored(s3, bucket, "bad")
    assert_still_serving(s3, bucket)


@pytest.mark.parametrize("case", ["length-negative", "no-colon"])
def test_unparsable_request_gets_an_s3_error_document(node, bucket, case):
    response = send_and_close(node, unparsable_request(node, bucket, case))
    assert_s3_error(response, 400, "InvalidArgument", "InvalidRequest", "BadRequest")


@pytest.mark.parametrize("length", ["1" + "0" * 30, "99999999999999999999"], ids=["1e30", "20-digits"])
def test_absurd_content_length(node, s3, bucket, length):
    head = signed_head(node, "PUT", f"/{bucket}/absurd", unsigned={"Content-Length": length})
    response = send_and_close(node, head + b"0123456789")
    assert_s3_error(response, 400, "InvalidArgument", "EntityTooLarge")
    assert_not_stored(s3, bucket, "absurd")
    assert_still_serving(s3, bucket)


@pytest.mark.parametrize(
    "headers,codes",
    [
        ({"x-amz-content-sha256": "not-a-hash"}, ("InvalidArgument", "XAmzContentSHA256Mismatch")),
        ({"x-amz-content-sha256": "0" * 64}, ("XAmzContentSHA256Mismatch",)),
        ({"x-amz-content-sha256": "STREAMING-NONSENSE"}, ("InvalidArgument",)),
        ({"x-amz-checksum-crc32": "not base64!"}, ("InvalidRequest", "InvalidArgument", "BadDigest", "InvalidDigest")),
        ({"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha256": "AAAA"}, ("InvalidRequest",)),
        ({"x-amz-sdk-checksum-algorithm": "MD4"}, ("InvalidRequest", "InvalidArgument")),
        ({"x-amz-trailer": "x-amz-checksum-crc32"}, ("InvalidRequest", "InvalidArgument")),
        (
            {"x-amz-decoded-content-length": "abc", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
            ("InvalidArgument", "IncompleteBody", "InvalidRequest"),
        ),
    ],
    ids=[
        "sha256-garbage",
        "sha256-wrong",
        "streaming-unknown",
        "crc32-garbage",
        "two-checksums",
        "unknown-algorithm",
        "trailer-without-chunks",
        "decoded-length-garbage",
    ],
)
def test_bad_payload_headers(node, s3, bucket, headers, codes):
    payload_hash = headers.pop("x-amz-content-sha256", hashlib.sha256(b"data").hexdigest())
    head = signed_head(
        node, "PUT", f"/{bucket}/payload", headers=headers, payload_hash=payload_hash, unsigned={"Content-Length": "4"}
    )
    response = send(node, head, b"data")
    assert 400 <= response.status_code < 500
    assert_s3_error(response, response.status_code, *codes)
    assert_not_stored(s3, bucket, "payload")
    assert_still_serving(s3, bucket)


@pytest.mark.parametrize(
    "authorization",
    [
        "garbage",
        "",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 nonsense",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "AWS4-HMAC-SHA256 Credential=testroot/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=testroot/x/y, SignedHeaders=host;x-amz-date, Signature=zz",
        "AWS testroot:c2lnbmF0dXJl",
        "AWS :",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        "AWS4-HMAC-SHA256 Credential=\u00e9\u00e9/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
    ],
)
def test_garbage_authorization(node, s3, bucket, authorization):
    lines = [
        f"PUT /{bucket}/forged HTTP/1.1",
        f"Host: 127.0.0.1:{node.ports['s3']}",
        f"Authorization: {authorization}",
        "x-amz-date: 20200101T000000Z",
        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        "Content-Length: 5",
    ]
    response = send(node, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), b"hello")
    assert response.status_code in (400, 403), response.content
    assert_s3_error(
        response,
        response.status_code,
        "AccessDenied",
        "AuthorizationHeaderMalformed",
        "InvalidArgument",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "RequestTimeTooSkewed",
        "InvalidRequest",
    )
    assert_not_stored(s3, bucket, "forged")
    assert_still_serving(s3, bucket)


# -- bad names ---------------------------------------------------------------------------------


# Paths as a client signs them: each byte but unreserved ones and "/" percent-encoded, once.
BAD_BUCKET_PATHS = {
    "non-utf8": "/%FF%FE/key",
    "nul": "/a%00b/key",
    "control": "/a%01b",
    "long-with-key": "/" + "b" * 600 + "/key",
    "long": "/" + "b" * 600,
    "longer-than-a-store-key": "/" + "b" * 3000 + "/key",
    "long-unicode": "/" + "%C3%A9" * 300 + "/key",
    "dot-dot": "/../key",
    "bare-dot-dot": "/..",
    "dot": "/./key",
    "upper": "/UPPER/key",
    "space": "/bucket%20name",
}


@pytest.mark.parametrize("path", BAD_BUCKET_PATHS.values(), ids=BAD_BUCKET_PATHS.keys())
@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD", "DELETE"])
def test_bad_bucket_names_in_requests(node, s3, bucket, path, method):
    # The node closes the connection after its answer, which ends a HEAD answer here.
    unsigned = {"Content-Length": "1", "Connection": "close"} if method == "PUT" else {"Connection": "close"}
    response = send(node, signed_head(node, method, path, unsigned=unsigned), b"x" if method == "PUT" else b"")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    if method != "HEAD":
        assert_s3_error(
            response,
            response.status_code,
            "InvalidBucketName",
            "NoSuchBucket",
            "InvalidURI",
            "MethodNotAllowed",
            "InvalidArgument",
        )
    assert_still_serving(s3, bucket)


@pytest.mark.parametrize(
    "encoded",
    ["%ff", "a%80b", "%c0%af", "%ed%a0%80", "%f4%90%80%80", "%e2%82", "ok%ff/x"],
    ids=["ff", "lone-continuation", "overlong-slash", "surrogate", "beyond-unicode", "truncated", "partly-valid"],
)
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_key_that_is_not_utf8_is_refused(raw, s3, bucket, encoded, method):
    response = raw(method, f"/{bucket}/{encoded}", b"x" if method == "PUT" else b"")
    assert_s3_error(response, 400, "InvalidURI")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert_still_serving(s3, bucket)


@pytest.mark.parametrize("parameter", ["prefix", "delimiter", "start-after", "marker"])
def test_listing_parameter_that_is_not_utf8(raw, bucket, parameter):
    response = raw("GET", f"/{bucket}?list-type=2&{parameter}=%ff")
    assert_s3_error(response, 400, "InvalidArgument", "InvalidURI")


def test_big_configuration_body_is_refused(raw, s3):
    name = f"b-{uuid.uuid4().hex[:16]}"
    body = b"<CreateBucketConfiguration>" + b" " * (65 * 1024) + b"</CreateBucketConfiguration>"
    assert_s3_error(raw("PUT", f"/{name}", body), 400, "MaxMessageLengthExceeded")
    assert all(b["Name"] != name for b in s3.list_buckets()["Buckets"])


def test_entity_expansion_in_configuration_is_malformed_xml(raw, s3):
    name = f"b-{uuid.uuid4().hex[:16]}"
    body = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><CreateBucketConfiguration><LocationConstraint>&c;'
        b"</LocationConstraint></CreateBucketConfiguration>"
    )
    assert_s3_error(raw("PUT", f"/{name}", body), 400, "MalformedXML")
    assert all(b["Name"] != name for b in s3.list_buckets()["Buckets"])


# -- truncated, slow and oversized bodies --------------------------------------------------------


@pytest.mark.parametrize("declared", [1000, 100_000], ids=["inline", "file"])
def test_truncated_body_stores_nothing(node, s3, bucket, declared):
    head = signed_head(node, "PUT", f"/{bucket}/truncated", unsigned={"Content-Length": str(declared)})
    response = send_and_close(node, head + b"0123456789")
    if response is not None:  # closing without an answer is fair too: the client has gone
        assert_s3_error(response, 400, "IncompleteBody", "RequestTimeout")
    assert_not_stored(s3, bucket, "truncated")
    assert_no_leftovers(node, bucket)
    assert_still_serving(s3, bucket)


def test_body_dropped_with_the_connection_stores_nothing(node, s3, bucket):
    head = signed_head(node, "PUT", f"/{bucket}/dropped", unsigned={"Content-Length": "100000"})
    with socket.create_connection(("127.0.0.1", node.ports["s3"]), timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(head + b"x" * 50_000)
    assert_no_leftovers(node, bucket)
    assert_not_stored(s3, bucket, "dropped")
    assert_still_serving(s3, bucket)


def test_slow_body_times_out(limited):
    node, client, bucket = limited
    head = signed_head(node, "PUT", f"/{bucket}/slow", unsigned={"Content-Length": "1000"})
    response = send(node, head, b"0123456789", timeout=SLOW_TIMEOUT + ANSWER_TIMEOUT)
    assert_s3_error(response, 400, "RequestTimeout")
    assert_not_stored(client, bucket, "slow")
    assert_no_leftovers(node, bucket)
    assert_still_serving(client, bucket)


@pytest.mark.parametrize(
    "declared",
    [LIMIT + 1, 64 * 1024 * 1024, 6 * 1024**4],
    ids=["just-over", "64-mib", "6-tib"],
)
def test_entity_too_large_is_answered_before_the_body(limited, declared):
    node, client, bucket = limited
    head = signed_head(node, "PUT", f"/{bucket}/huge", unsigned={"Content-Length": str(declared)})
    # The start of a body that never comes; the answer must come before the node would give
    # up waiting for the rest.
    response = send(node, head, b"x" * 1000, timeout=SLOW_TIMEOUT * 0.75)
    root = assert_s3_error(response, 400, "EntityTooLarge")
    assert root.findtext("MaxSizeAllowed") == str(LIMIT)
    assert_not_stored(client, bucket, "huge")
    assert_no_leftovers(node, bucket)
    assert_still_serving(client, bucket)


def test_object_size_limit_with_boto3(limited):
    node, client, bucket = limited
    client.put_object(Bucket=bucket, Key="exact", Body=b"e" * LIMIT)
    assert client.head_object(Bucket=bucket, Key="exact")["ContentLength"] == LIMIT
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=bucket, Key="over", Body=b"o" * (LIMIT + 1))
    assert caught.value.response["Error"]["Code"] == "EntityTooLarge"
    assert_not_stored(client, bucket, "over")
    client.delete_object(Bucket=bucket, Key="exact")
    assert_no_leftovers(node, bucket)


def test_chunked_body_over_the_limit_is_refused_while_streaming(limited):
    node, client, bucket = limited
    head = signed_head(node, "PUT", f"/{bucket}/streamed", unsigned={"Transfer-Encoding": "chunked"})
    chunk = b"s" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    # raw_exchange stops sending when the node stops reading, once the limit is passed.
    response = send(node, head, *[frame] * (LIMIT // len(chunk) + 2), b"0\r\n\r\n")
    assert_s3_error(response, 400, "EntityTooLarge")
    assert_not_stored(client, bucket, "streamed")
    assert_no_leftovers(node, bucket)
    assert_still_serving(client, bucket)


def test_declared_decoded_length_over_the_limit(limited):
    node, client, bucket = limited
    head = signed_head(
        node,
        "PUT",
        f"/{bucket}/decoded",
        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        headers={"x-amz-decoded-content-length": str(LIMIT + 1), "content-encoding": "aws-chunked"},
        unsigned={"Content-Length": str(LIMIT + 100)},
    )
    response = send(node, head, timeout=SLOW_TIMEOUT * 0.75)
    assert_s3_error(response, 400, "EntityTooLarge")
    assert_not_stored(client, bucket, "decoded")


def test_unparsable_admin_request_gets_a_json_error(node):
    with socket.create_connection(("127.0.0.1", node.ports["admin"]), timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    response = RawResponse(received)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "InvalidRequest"


def test_responses_name_the_server(s3, bucket):
    headers = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    assert headers["server"] == "NebulaIO"
