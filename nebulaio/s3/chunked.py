"""Decode an `aws-chunked` request body while it streams, checking every chunk's signature.

Wire format (AWS "Signature Calculations ... Transferring Payload in Multiple Chunks"):

    <hex size>;chunk-signature=<64 hex>\\r\\n<size bytes>\\r\\n     (signed modes)
    <hex size>\\r\\n<size bytes>\\r\\n                              (unsigned trailer mode)
    ... a chunk of size 0, then trailer lines `name:value\\r\\n`, then an empty line.

Each chunk signature chains from the previous one (the first from the request's seed
signature). The decoder hashes a chunk's bytes as it hands them on and checks the chunk's
signature when its last byte passes, before returning it: a caller that stops on the first
S3Error never stores a byte of a chunk that failed, beyond the chunk's earlier reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from nebulaio.engine.errors import S3Error
from nebulaio.s3.sigv4 import (
    EMPTY_SHA256,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    SigningContext,
    same_signature,
    sign,
)

READ_BLOCK = 64 * 1024
MAX_CHUNK_HEADER = 256
MAX_TRAILER_LINE = 1024
MAX_TRAILER_LINES = 16
MIN_SIGNED_CHUNK = 8 * 1024

_SIGNATURE_EXTENSION = b"chunk-signature="
_TRAILER_SIGNATURE = "x-amz-trailer-signature"
_HEX = b"0123456789abcdefABCDEF"
_MODES = (STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER)

# Decoder states.
_HEADER, _DATA, _DATA_END, _DONE = range(4)


class AwsChunkedDecoder:
    """A file-like `read(size)` over the decoded payload; `trailers` is filled at the end."""

    __slots__ = (
        "_read",
        "_signed",
        "_trailer_mode",
        "_key",
        "_chunk_prefix",
        "_trailer_prefix",
        "_previous_signature",
        "_expected_length",
        "_buffer",
        "_position",
        "_state",
        "_chunk_left",
        "_chunk_signature",
        "_chunk_hash",
        "_last_chunk_size",
        "_total",
        "trailers",
    )

    def __init__(
        self,
        read: Callable[[int], bytes],
        ctx: SigningContext | None,
        payload_mode: str,
        decoded_length: int | None,
    ) -> None:
        if payload_mode not in _MODES:
            raise S3Error("InvalidArgument", f"Unsupported aws-chunked payload mode {payload_mode!r}.")
        self._read = read
        self._signed = payload_mode != STREAMING_UNSIGNED_PAYLOAD_TRAILER
        self._trailer_mode = payload_mode != STREAMING_PAYLOAD
        if self._signed:
            if ctx is None or ctx.signing_key is None:
                raise S3Error("AccessDenied", "Signed aws-chunked payloads need a Signature V4 signed request.")
            # PERF: the constant head of every chunk's and the trailer's string to sign, built once.
            self._key = ctx.signing_key
            self._chunk_prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{ctx.amz_date}\n{ctx.scope}\n"
            self._trailer_prefix = f"AWS4-HMAC-SHA256-TRAILER\n{ctx.amz_date}\n{ctx.scope}\n"
            self._previous_signature = ctx.seed_signature
        else:
            self._key = None
            self._chunk_prefix = self._trailer_prefix = self._previous_signature = ""
        self._expected_length = decoded_length
        self._buffer = b""
        self._position = 0
        self._state = _HEADER
        self._chunk_left = 0
        self._chunk_signature = ""
        self._chunk_hash = None
        self._last_chunk_size = None
        self._total = 0
        self.trailers: dict[str, str] = {}

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` decoded bytes (all of them when size is None or negative); b'' at the end."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(READ_BLOCK), b""))
        if size == 0:
            return b""
        while True:
            state = self._state
            if state == _DATA:
                return self._read_data(size)
            if state == _HEADER:
                self._start_chunk()
            elif state == _DATA_END:
                self._read_line(0, "InvalidArgument")  # the CRLF after the chunk's data
                self._state = _HEADER
            else:
                return b""

    def _read_data(self, size: int) -> bytes:
        if self._position == len(self._buffer):
            self._fill()
        position = self._position
        take = min(size, self._chunk_left, len(self._buffer) - position)
        piece = self._buffer[position : position + take]
        self._position = position + take
        self._chunk_left -= take
        if self._chunk_hash is not None:
            self._chunk_hash.update(piece)
        if self._chunk_left == 0:
            self._end_chunk()
        return piece

    def _start_chunk(self) -> None:
        line = self._read_line(MAX_CHUNK_HEADER, "InvalidArgument")
        size_text, _, extension = line.partition(b";")
        if not size_text or len(size_text) > 16 or size_text.strip(_HEX):
            raise S3Error("InvalidArgument", "aws-chunked: malformed chunk size.")
        size = int(size_text, 16)
        if self._signed:
            if not extension.startswith(_SIGNATURE_EXTENSION):
                raise S3Error("InvalidArgument", "aws-chunked: chunk-signature missing.")
            self._chunk_signature = extension[len(_SIGNATURE_EXTENSION) :].decode("latin-1")
            # Only the last data chunk may be small: many tiny chunks would each cost an HMAC.
            if size and self._last_chunk_size is not None and self._last_chunk_size < MIN_SIGNED_CHUNK:
                raise S3Error("InvalidChunkSizeError")
            self._last_chunk_size = size
            self._chunk_hash = hashlib.sha256()
        self._total += size
        if self._expected_length is not None and self._total > self._expected_length:
            raise S3Error("IncompleteBody", "The decoded body is longer than x-amz-decoded-content-length.")
        self._chunk_left = size
        if size:
            self._state = _DATA
        else:
            self._end_chunk()
            self._finish()

    def _end_chunk(self) -> None:
        """Check the chunk's signature now that its last byte has passed."""
        if self._signed:
            expected = sign(
                self._key,
                f"{self._chunk_prefix}{self._previous_signature}\n{EMPTY_SHA256}\n{self._chunk_hash.hexdigest()}",
            )
            if not same_signature(expected, self._chunk_signature):
                raise S3Error(
                    "SignatureDoesNotMatch",
                    "The chunk signature does not match.",
                    SignatureProvided=self._chunk_signature,
                )
            self._previous_signature = expected
        self._state = _DATA_END

    def _finish(self) -> None:
        """After the final chunk: the trailer lines up to the empty line, and the length check."""
        lines = []
        while True:
            line = self._read_line(MAX_TRAILER_LINE, "MalformedTrailerError")
            if not line:
                break
            if not self._trailer_mode or len(lines) == MAX_TRAILER_LINES:
                raise S3Error("MalformedTrailerError")
            lines.append(line)
        canonical = []
        provided_signature = None
        for line in lines:
            name, separator, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            value = value.strip()
            if not separator or not name:
                raise S3Error("MalformedTrailerError")
            if name == _TRAILER_SIGNATURE:
                provided_signature = value
                continue
            self.trailers[name] = value
            canonical.append(f"{name}:{value}\n")
        if self._signed and self._trailer_mode:
            if provided_signature is None:
                raise S3Error("MalformedTrailerError", "The trailer signature is missing.")
            trailer_hash = hashlib.sha256("".join(canonical).encode("latin-1")).hexdigest()
            expected = sign(self._key, f"{self._trailer_prefix}{self._previous_signature}\n{trailer_hash}")
            if not same_signature(expected, provided_signature):
                raise S3Error(
                    "SignatureDoesNotMatch",
                    "The trailer signature does not match.",
                    SignatureProvided=provided_signature,
                )
        if self._expected_length is not None and self._total != self._expected_length:
            raise S3Error("IncompleteBody", "The decoded body is shorter than x-amz-decoded-content-length.")
        self._state = _DONE

    def _read_line(self, limit: int, code: str) -> bytes:
        """The next CRLF-terminated line, at most `limit` bytes long, without its CRLF."""
        while True:
            end = self._buffer.find(b"\r\n", self._position, self._position + limit + 2)
            if end >= 0:
                line = self._buffer[self._position : end]
                self._position = end + 2
                return line
            if len(self._buffer) - self._position >= limit + 2:
                raise S3Error(code, "aws-chunked: a framing line is too long or lacks its CRLF.")
            self._fill()

    def _fill(self) -> None:
        """Append the next block of the raw body to what is left of the buffer."""
        data = self._read(READ_BLOCK)
        if not data:
            raise S3Error("IncompleteBody")
        if self._position == len(self._buffer):
            self._buffer = bytes(data)
        else:
            self._buffer = self._buffer[self._position :] + data
        self._position = 0
