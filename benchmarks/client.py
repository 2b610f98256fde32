"""The lean S3 client: signed request heads and keep-alive connections driven by callbacks.

PERF: boto3 spends about 1 ms of CPU a request, which on a small machine would measure the
client instead of the server. Here a request is one signature, one formatted head and one
write; a response is parsed incrementally in the protocol callback, with no task per request.
"""

import asyncio
import http.client
import socket

from benchmarks.response import ResponseError, ResponseParser
from benchmarks.sigv4 import UNSIGNED_PAYLOAD, Headers, Signer, encode_path

WRITE_CHUNK = 1 << 20
RECEIVE_BUFFER = 256 << 10


class RequestBuilder:
    """Formats signed HTTP/1.1 request heads for one endpoint."""

    __slots__ = ("host", "signer")

    def __init__(self, host: str, port: int, signer: Signer):
        self.host = f"{host}:{port}"
        self.signer = signer

    def head(
        self, method: str, path: str, query: str = "", content_length: int | None = None, headers: Headers = ()
    ) -> bytes:
        """The request head for an encoded path and canonical query (see sigv4.encode_path).

        `headers` are further (lower-case name, value) pairs, sent and signed.
        """
        amz_date, authorization = self.signer.sign(method, path, query, self.host, headers=headers)
        target = f"{path}?{query}" if query else path
        length = "" if content_length is None else f"Content-Length: {content_length}\r\n"
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers) if headers else ""
        return (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\nx-amz-date: {amz_date}\r\n"
            f"x-amz-content-sha256: {UNSIGNED_PAYLOAD}\r\nAuthorization: {authorization}\r\n{extra}{length}\r\n"
        ).encode()


class Listener:
    """What a connection reports to: a finished response, or a failure of the exchange."""

    __slots__ = ()

    def completed(self, connection: "Connection") -> None:
        raise NotImplementedError

    def failed(self, connection: "Connection", reason: str) -> None:
        raise NotImplementedError


class Connection(asyncio.BufferedProtocol):
    """One keep-alive connection running one request at a time.

    PERF: responses land in one receive buffer per connection (no allocation per read), and a
    large body is written a chunk at a time, each only once the socket took the one before.
    """

    __slots__ = (
        "transport",
        "parser",
        "listener",
        "slot",
        "started_at",
        "busy",
        "_body",
        "_offset",
        "_paused",
        "_buffer",
    )

    def __init__(self, listener: Listener, slot: int):
        self.transport: asyncio.Transport | None = None
        self.parser = ResponseParser()
        self.listener = listener
        self.slot = slot
        self.started_at = 0.0
        self.busy = False
        self._body: memoryview | None = None
        self._offset = 0
        self._paused = False
        self._buffer = memoryview(bytearray(RECEIVE_BUFFER))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=0)  # type: ignore[attr-defined]

    def send(self, head: bytes, body: bytes | None, head_only: bool, keep_body: bool) -> None:
        self.parser.begin(head_only, keep_body)
        self.busy = True
        if body and len(body) > WRITE_CHUNK:
            self.transport.write(head)
            self._body = memoryview(body)
            self._offset = 0
            self._pump()
        else:
            self.transport.write(head + body if body else head)  # PERF: one send for a small PUT

    def _pump(self) -> None:
        body, end = self._body, len(self._body)
        while self._offset < end and not self._paused:
            self.transport.write(body[self._offset : self._offset + WRITE_CHUNK])
            self._offset += WRITE_CHUNK
        if self._offset >= end:
            self._body = None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._body is not None:
            self._pump()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        parser = self.parser
        taken = parser.discard(nbytes)
        try:
            done = parser.feed(bytes(self._buffer[taken:nbytes])) if taken < nbytes else parser.complete
        except ResponseError as exc:
            self._fail(str(exc))
            self.transport.close()
            return
        if done:
            self.busy = False
            self.listener.completed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._body = None
        if not self.busy:
            return
        if self.parser.feed_eof():
            self.busy = False
            self.listener.completed(self)
        else:
            self._fail(f"connection lost: {exc or 'closed by peer'}")

    def _fail(self, reason: str) -> None:
        self.busy = False
        self.listener.failed(self, reason)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def simple_request(
    builder: RequestBuilder, method: str, path: str, query: str = "", body: bytes = b"", timeout: float = 30.0
) -> tuple[int, bytes]:
    """One blocking signed request, for set-up steps (buckets, readiness) off the measured path."""
    host, _, port = builder.host.rpartition(":")
    head = builder.head(method, encode_path(path), query, len(body) if method in ("PUT", "POST") else None)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.read()
