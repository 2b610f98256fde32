"""Request bodies: Content-Length or HTTP chunked, plain or aws-chunked, verified as they stream.

What the client promised (Content-MD5, x-amz-content-sha256, x-amz-checksum-* headers or
trailers, the decoded length) is checked once the body has been read whole and before
anything is committed, so a body that fails a check changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from nebulaio.engine.errors import S3Error
from nebulaio.s3 import sigv4
from nebulaio.s3.chunked import AwsChunkedDecoder
from nebulaio.util.checksums import ALGORITHMS, new_checksum

CHECKSUM_HEADERS = {f"x-amz-checksum-{name}": name for name in ALGORITHMS}
# Headers that ask for an integrity check of the body: Content-MD5 or a flexible checksum.
INTEGRITY_HEADERS = ("content-md5", "x-amz-sdk-checksum-algorithm", "x-amz-trailer", *CHECKSUM_HEADERS)
_SHA256_HEX_LENGTH = 64
MAX_CONFIGURATION_BODY = 64 * 1024
MISSING_INTEGRITY_MESSAGE = "Missing required header for this request: Content-MD5."
BODY_CHUNK = 1024 * 1024


def _content_length(headers: dict, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 19:
        raise S3Error("InvalidArgument", f"{name} is not a valid length.", ArgumentName=name, ArgumentValue=value[:64])
    return int(value)


def limit_silence(environ: dict, timeout: float) -> None:
    """Give up on a body its client stops sending for `timeout` s: a silent client must not hold
    a thread, or its worker's wait for the body, for ever (slowloris)."""
    connection = environ.get("nebulaio.connection")
    if connection is not None:
        connection.settimeout(timeout)


class RequestPayload:
    """A readable, verifying view of the request body (see `engine.objects.Payload`)."""

    __slots__ = (
        "size",
        "_read",
        "_decoder",
        "_sha256",
        "_expected_sha256",
        "_checksums",
        "_expected",
        "_trailer_names",
        "_content_md5",
        "_received",
    )

    def __init__(self, environ: dict, headers: dict, auth, timeout: float):
        limit_silence(environ, timeout)
        raw = environ["wsgi.input"]
        content_length = _content_length(headers, "content-length")
        chunked_transfer = "chunked" in headers.get("transfer-encoding", "").lower()
        if content_length is None and not chunked_transfer:
            raise S3Error("MissingContentLength")
        payload_hash = auth.payload if auth is not None else headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        self._decoder = None
        if payload_hash.startswith("STREAMING-"):
            if payload_hash not in sigv4.STREAMING_MODES:
                raise S3Error("InvalidArgument", f"Unsupported x-amz-content-sha256 value {payload_hash!r}.")
            if auth is None and payload_hash != sigv4.STREAMING_UNSIGNED_PAYLOAD_TRAILER:
                raise S3Error("AccessDenied", "A signed streaming payload needs a signed request.")
            self.size = _content_length(headers, "x-amz-decoded-content-length")
            self._decoder = AwsChunkedDecoder(raw.read, auth, payload_hash, self.size)
            self._read = self._decoder.read
        else:
            self.size = content_length
            self._read = raw.read
        self._expected_sha256 = None
        self._sha256 = None
        if len(payload_hash) == _SHA256_HEX_LENGTH:
            self._expected_sha256 = payload_hash.lower()
            self._sha256 = hashlib.sha256()
        self._content_md5 = None
        if "content-md5" in headers:
            try:
                self._content_md5 = base64.b64decode(headers["content-md5"], validate=True)
            except (binascii.Error, ValueError):
                self._content_md5 = b""
            if len(self._content_md5) != 16:
                raise S3Error("InvalidDigest")
        self._expected: dict[str, str] = {}
        for header, name in CHECKSUM_HEADERS.items():
            if header in headers:
                self._expected[name] = headers[header]
        self._trailer_names = [
            CHECKSUM_HEADERS[t.strip().lower()]
            for t in headers.get("x-amz-trailer", "").split(",")
            if t.strip().lower() in CHECKSUM_HEADERS
        ]
        if self._trailer_names and self._decoder is None:
            raise S3Error("InvalidRequest", "x-amz-trailer needs an aws-chunked body.")
        wanted = set(self._expected) | set(self._trailer_names)
        algorithm = headers.get("x-amz-sdk-checksum-algorithm", "").lower()
        if algorithm:
            if algorithm not in ALGORITHMS:
                raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm!r} is not supported.")
            wanted.add(algorithm)
        if len(wanted) > 1:
            raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header.")
        self._checksums = {name: new_checksum(name) for name in wanted}
        self._received = 0

    def require_checksum(self, algorithm: str) -> None:
        if algorithm in self._checksums:
            return
        if self._checksums:
            raise S3Error(
                "InvalidRequest",
                f"Checksum Type mismatch occurred, expected checksum Type: {algorithm}, "
                f"actual checksum Type: {next(iter(self._checksums))}",
            )
        self._checksums[algorithm] = new_checksum(algorithm)

    def read(self, size: int) -> bytes:
        try:
            chunk = self._read(size)
        except TimeoutError:
            raise S3Error("RequestTimeout") from None
        except ConnectionError:
            raise S3Error("IncompleteBody") from None
        if chunk:
            self._received += len(chunk)
            if self._sha256 is not None:
                self._sha256.update(chunk)
            for checksum in self._checksums.values():
                checksum.update(chunk)
        return chunk

    def finish(self, md5_digest: bytes) -> dict:
        if self.size is not None and self._received != self.size:
            raise S3Error("IncompleteBody")
        if self._content_md5 is not None and md5_digest != self._content_md5:
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
        if self._expected_sha256 is not None and self._sha256.hexdigest() != self._expected_sha256:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                ClientComputedContentSHA256=self._expected_sha256,
                S3ComputedContentSHA256=self._sha256.hexdigest(),
            )
        expected = dict(self._expected)
        if self._decoder is not None:
            for name in self._trailer_names:
                value = self._decoder.trailers.get(f"x-amz-checksum-{name}")
                if value is None:
                    raise S3Error("MalformedTrailerError", f"The x-amz-checksum-{name} trailer is missing.")
                expected[name] = value
        computed = {}
        for name, checksum in self._checksums.items():
            computed[name] = checksum.b64digest()
            if name in expected and expected[name] != computed[name]:
                raise S3Error("BadDigest", f"The {name.upper()} you specified did not match the calculated checksum.")
        return computed

    def drain(self) -> None:
        """Read and drop what is left, so the connection can carry the next request."""
        while self.read(1024 * 1024):
            pass


def checksum_algorithm(request) -> str | None:
    """The x-amz-checksum-algorithm a new object's checksum is to be of (lower case), if any.

    Raises:
        S3Error: InvalidRequest for an algorithm S3 does not have.
    """
    value = request.header("x-amz-checksum-algorithm")
    if value is None:
        return None
    if value.lower() not in ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {value[:32]!r} is not supported.")
    return value.lower()


def require_integrity_check(request, message: str = MISSING_INTEGRITY_MESSAGE) -> None:
    """Refuse a body S3 insists be checked (DeleteObjects, configuration documents) that is not.

    Raises:
        S3Error: InvalidRequest with `message` (S3 words it per operation) when neither
            Content-MD5 nor a checksum is sent.
    """
    if not any(name in request.headers for name in INTEGRITY_HEADERS):
        raise S3Error("InvalidRequest", message)


def read_body(request, timeout: float, limit: int = MAX_CONFIGURATION_BODY, *, body_checksums: bool = True) -> bytes:
    """A small body (a configuration or request document) read whole and verified.

    Content-MD5, x-amz-checksum-* and the signed payload hash are checked as for any body;
    x-amz-checksum-* not with `body_checksums` False, where they describe something else.

    Raises:
        S3Error: MaxMessageLengthExceeded over `limit` bytes; BadDigest and friends when a
            check fails (see `RequestPayload`).
    """
    headers = request.headers
    if not body_checksums:
        headers = {name: value for name, value in headers.items() if name not in CHECKSUM_HEADERS}
    payload = RequestPayload(request.environ, headers, request.auth, timeout)
    if payload.size is not None and payload.size > limit:
        raise S3Error("MaxMessageLengthExceeded")
    md5 = hashlib.md5()
    parts = []
    received = 0
    while chunk := payload.read(BODY_CHUNK):
        received += len(chunk)
        if received > limit:
            raise S3Error("MaxMessageLengthExceeded")
        md5.update(chunk)
        parts.append(chunk)
    payload.finish(md5.digest())
    return b"".join(parts)
