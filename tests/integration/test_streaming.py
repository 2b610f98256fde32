"""Streaming request bodies on a real node: aws-chunked with chunk signatures (built by hand),
the unsigned trailer form botocore sends, and clients that go silent mid-body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import time
import uuid
import zlib
from xml.etree import ElementTree

import pytest
from conftest import S3Connection, make_client, raw_exchange, sign_v4

from benchmarks.sigv4 import chunk_signature

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
CHUNK = 64 * 1024


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _status_and_code(response: bytes) -> tuple[int, str | None]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    code = ElementTree.fromstring(body).findtext("Code") if body.strip() else None
    return status, code


def signed_chunked_request(
    node,
    path: str,
    body: bytes,
    mode: str = SIGNED,
    tamper_chunk: int | None = None,
    trailer_checksum: str | None = None,
) -> tuple[bytes, list[bytes]]:
    """The head and body parts of an aws-chunked PUT whose chunks are signed in a chain."""
    pieces = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    # Frame lengths do not depend on the signatures (always 64 hex digits): compute them first.
    trailer = f"x-amz-checksum-crc32:{trailer_checksum}\r\n" if trailer_checksum else ""
    frame_lengths = [len(f"{len(p):x};chunk-signature=".encode()) + 64 + 2 + len(p) + 2 for p in pieces]
    final_length = len("0;chunk-signature=") + 64 + 2
    if mode == SIGNED_TRAILER:
        final_length += len(trailer) + len("x-amz-trailer-signature:") + 64 + 2 + 2
    else:
        final_length += 2
    headers = {
        "content-encoding": "aws-chunked",
        "content-length": str(sum(frame_lengths) + final_length),
        "x-amz-decoded-content-length": str(len(body)),
    }
    if mode == SIGNED_TRAILER:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    host = f"127.0.0.1:{node.ports['s3']}"
    signature = sign_v4("PUT", host, path, headers, mode)
    previous = signature.signature
    parts = []
    for index, piece in enumerate(pieces + [b""]):
        previous = chunk_signature(signature, previous, piece)
        sent = piece
        if index == tamper_chunk:
            sent = bytes([piece[0] ^ 1]) + piece[1:]
        frame = f"{len(piece):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
        parts.append(frame)
    if mode == SIGNED_TRAILER:
        trailer_hash = hashlib.sha256(trailer.replace("\r\n", "\n").encode()).hexdigest()
        trailer_signature = _sign(
            signature.signing_key,
            f"AWS4-HMAC-SHA256-TRAILER\n{signature.amz_date}\n{signature.scope}\n{previous}\n{trailer_hash}",
        )
        parts[-1] = parts[-1][:-2] + f"{trailer}x-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
    assert sum(len(p) for p in parts) == int(headers["content-length"])
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signature.headers.items()) + "\r\n"
    return head.encode(), parts


def _get(node, bucket: str, key: str) -> tuple[int, bytes]:
    connection = S3Connection(node)
    try:
        status, _, data = connection.request("GET", f"/{bucket}/{key}")
        return status, data
    finally:
        connection.close()


def test_signed_chunks_are_stored(node, bucket):
    body = os.urandom(3 * CHUNK + 1000)
    head, parts = signed_chunked_request(node, f"/{bucket}/chunked", body)
    status, code = _status_and_code(raw_exchange(node, head, parts))
    assert (status, code) == (200, None)
    assert _get(node, bucket, "chunked") == (200, body)


def test_signed_chunks_with_signed_trailer_are_stored(node, bucket):
    body = os.urandom(2 * CHUNK + 10)
    head, parts = signed_chunked_request(
        node, f"/{bucket}/trailed", body, SIGNED_TRAILER, trailer_checksum=_crc32(body)
    )
    response = raw_exchange(node, head, parts)
    assert _status_and_code(response) == (200, None), response
    assert f"x-amz-checksum-crc32: {_crc32(body)}".lower().encode() in response.lower()
    assert _get(node, bucket, "trailed") == (200, body)


@pytest.mark.parametrize("key, existing", [("fresh", None), ("overwritten", b"the old bytes")])
def test_tampered_chunk_is_refused_and_nothing_stored(node, s3, bucket, key, existing):
    if existing is not None:
        s3.put_object(Bucket=bucket, Key=key, Body=existing)
    body = os.urandom(3 * CHUNK)
    head, parts = signed_chunked_request(node, f"/{bucket}/{key}", body, tamper_chunk=1)
    assert _status_and_code(raw_exchange(node, head, parts)) == (403, "SignatureDoesNotMatch")
    status, data = _get(node, bucket, key)
    if existing is None:
        assert status == 404
    else:
        assert (status, data) == (200, existing)
    assert not any((node.data / "temp").iterdir())


def test_wrong_trailer_checksum_is_refused(node, bucket):
    body = os.urandom(CHUNK + 1)
    head, parts = signed_chunked_request(
        node, f"/{bucket}/bad-trailer", body, SIGNED_TRAILER, trailer_checksum=_crc32(b"other bytes")
    )
    assert _status_and_code(raw_exchange(node, head, parts)) == (400, "BadDigest")
    assert _get(node, bucket, "bad-trailer")[0] == 404


# --- the unsigned trailer form, as botocore sends it ----------------------------------------


def _trailer_client(node):
    """A boto3 client that sends PutObject as botocore does over HTTPS (aws-chunked with an
    unsigned CRC32 trailer) although this endpoint is plain HTTP.

    botocore 1.44 picks the trailer only for https URLs (httpchecksum.resolve_request_checksum_
    algorithm); this before-call hook moves the already chosen checksum into the trailer.
    """
    client = make_client(node.s3_url, request_checksum_calculation="when_supported")
    sent: list[dict] = []

    def use_trailer(params, **_):
        algorithm = params["context"].get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    def record(request, **_):
        sent.append(
            {
                name.lower(): value.decode() if isinstance(value, bytes) else value
                for name, value in request.headers.items()
            }
        )

    client.meta.events.register("before-call.s3.PutObject", use_trailer)
    client.meta.events.register("before-send.s3.PutObject", record)
    return client, sent


@pytest.mark.parametrize("size", [0, 1000, 5 * 1024 * 1024 + 3], ids=["empty", "small", "5MiB"])
def test_botocore_unsigned_trailer_upload(node, bucket, size):
    client, sent = _trailer_client(node)
    body = os.urandom(size)
    answer = client.put_object(Bucket=bucket, Key="boto-trailer", Body=body)
    headers = sent[-1]
    assert headers["x-amz-content-sha256"] == UNSIGNED_TRAILER
    assert headers["x-amz-trailer"] == "x-amz-checksum-crc32"
    assert "aws-chunked" in headers["content-encoding"]
    assert answer["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert answer["ChecksumCRC32"] == _crc32(body)
    got = client.get_object(Bucket=bucket, Key="boto-trailer", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got.get("ContentEncoding") in (None, "")


def test_unsigned_trailer_with_wrong_checksum_is_refused(node, bucket):
    body = b"x" * 5000
    framed = (
        f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n" + f"x-amz-checksum-crc32:{_crc32(b'y')}\r\n\r\n".encode()
    )
    headers = {
        "content-encoding": "aws-chunked",
        "content-length": str(len(framed)),
        "x-amz-decoded-content-length": str(len(body)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    connection = S3Connection(node)
    try:
        status, _, answer = connection.request("PUT", f"/{bucket}/unsigned-bad", framed, headers, UNSIGNED_TRAILER)
    finally:
        connection.close()
    assert status == 400 and ElementTree.fromstring(answer).findtext("Code") == "BadDigest"
    assert _get(node, bucket, "unsigned-bad")[0] == 404


# --- silent clients -------------------------------------------------------------------------

REQUEST_TIMEOUT = 2


@pytest.fixture(scope="module")
def impatient_node(node_factory):
    return node_factory(extra_env={"NEBULAIO_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)})


@pytest.mark.parametrize("framing", ["content-length", "aws-chunked"])
def test_silent_client_is_cut_off(impatient_node, framing):
    node = impatient_node
    client = node.client()
    bucket = f"slow-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    body = os.urandom(3 * CHUNK)
    if framing == "aws-chunked":
        head, parts = signed_chunked_request(node, f"/{bucket}/slow", body)
        first = parts[0]
    else:
        signature = sign_v4(
            "PUT",
            f"127.0.0.1:{node.ports['s3']}",
            f"/{bucket}/slow",
            {"content-length": str(len(body))},
            hashlib.sha256(body).hexdigest(),
        )
        head = (
            f"PUT /{bucket}/slow HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signature.headers.items()) + "\r\n"
        ).encode()
        first = body[:CHUNK]
    started = time.monotonic()
    # Send the head and a first part, then say nothing: the server must give up on its own.
    response = raw_exchange(node, head + first, timeout=REQUEST_TIMEOUT * 5)
    waited = time.monotonic() - started
    assert waited < REQUEST_TIMEOUT * 1.75, f"the node waited {waited:.1f} s for a silent client"
    if response:
        assert _status_and_code(response) == (400, "RequestTimeout"), response
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert not any((node.data / "temp").iterdir())
    client.put_object(Bucket=bucket, Key="after", Body=b"still serving")
    assert client.get_object(Bucket=bucket, Key="after")["Body"].read() == b"still serving"
    client.delete_object(Bucket=bucket, Key="after")
    client.delete_bucket(Bucket=bucket)


def test_early_error_on_a_large_body_closes_the_connection(node):
    """A refused PUT of a large body answers at once and hangs up instead of reading it all."""
    declared = 64 * 1024 * 1024
    path = f"/no-such-bucket-{uuid.uuid4().hex[:8]}/big"
    signature = sign_v4(
        "PUT", f"127.0.0.1:{node.ports['s3']}", path, {"content-length": str(declared)}, "UNSIGNED-PAYLOAD"
    )
    head = (
        f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signature.headers.items()) + "\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", node.ports["s3"]), timeout=10) as conn:
        conn.sendall(head + os.urandom(CHUNK))
        received = b""
        while chunk := conn.recv(65536):  # ends only when the node closes the connection
            received += chunk
    assert _status_and_code(received) == (404, "NoSuchBucket")


def test_connection_stays_usable_after_an_early_error_on_a_small_body(node, bucket):
    connection = S3Connection(node)
    try:
        first_socket = None
        for _ in range(3):
            status, _, answer = connection.request("PUT", f"/no-such-bucket-{uuid.uuid4().hex[:8]}/k", b"z" * 4096)
            assert status == 404 and b"NoSuchBucket" in answer
            assert connection.request("PUT", f"/{bucket}/after-error", b"kept")[0] == 200
            first_socket = first_socket or connection.conn.sock
            assert connection.conn.sock is first_socket, "the connection was not kept alive"
        assert connection.request("GET", f"/{bucket}/after-error")[2] == b"kept"
    finally:
        connection.close()
