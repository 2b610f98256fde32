"""The gunicorn worker class of a node: an asyncio event loop that speaks HTTP/1.1 itself and
runs the WSGI apps: reads that never wait and small writes on the loop, everything else on a
thread pool.

Why not gthread: a 4 KiB GET cost 380-490 µs of server CPU under gthread, of which the S3
app's own work is about 51 µs; the rest was gunicorn's Python parser, thread-pool hand-offs
and keep-alive re-registration. Why not `falcon.asgi`: every responder, body reader and engine
call would turn async, while most of the work (fsync, MD5 of large bodies, peer transfers)
blocks and would go to a thread anyway. So the loop owns the sockets, parses, answers small
reads inline, and hands a request that may block (a large write, a fenced or remote read, the
Admin API) to a thread with its body streamed to it. A small write runs on the loop up to its
commit, which the loop awaits on its own connection to the supervisor (see ON_LOOP): the
hand-offs to and from a thread blocked on that answer cost 65-130 µs of CPU per write.

The loop also answers `Expect: 100-continue` only when the application first reads the body
(or, on the loop, asks for it), so an upload refused by its signature or its permissions is refused before it is sent.
Requests it cannot parse get S3's XML error document (JSON on the Admin API and the inter-node
listener), not gunicorn's HTML page. The inter-node listener serves TLS with a context of its
own (its certificate, client certificates required and checked against the cluster's CA).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import io
import mmap
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from urllib.parse import unquote_to_bytes

from gunicorn import sock as gunicorn_sock
from gunicorn.workers.base import Worker

from nebulaio import config as configuration
from nebulaio.cluster.ipc import (
    BODY_HELD,
    BODY_WANTED,
    COMMIT_WANTED,
    COMMITTED,
    ON_LOOP,
    READ_FENCED,
    RUN_AFTER_FENCE,
    RUN_INLINE,
    THREAD_WANTED,
    AsyncReadFence,
    AsyncSupervisorClient,
)
from nebulaio.cluster.peers import listener_tls
from nebulaio.s3 import xml
from nebulaio.util.fileread import pieces
from nebulaio.util.httphead import MAX_HEAD, BadRequest, ChunkedDecoder, RequestHead, parse_head
from nebulaio.util.ids import request_id
from nebulaio.util.jsonerror import error_body

SERVER = "NebulaIO"
BODY_HIGH_WATER = 4 * 1024 * 1024
BODY_LOW_WATER = 1024 * 1024
SMALL_FILE = 128 * 1024
"""A file response up to this size leaves with its head in one write, above it by sendfile."""
FILE_BLOCK = 256 * 1024
SENDFILE_CHUNK = 2 * 1024 * 1024
"""Bytes one sendfile call may send: what a large GET holds the worker's loop for, at most
(under a millisecond on loopback), as nginx's sendfile_max_chunk does."""
HELD_BODY_LIMIT = 1024 * 1024
"""A body up to this size whose client waits for 100 Continue may be held back while its request
runs on the loop, and read whole once the application asks for it."""
MAX_DISCARD = 8 * 1024 * 1024
"""What is left of an unread body, up to this size, is read and dropped to keep the connection."""
HEAD_TIMEOUT = 60.0
ACCEPT_RETRY_DELAY = 1.0
"""Seconds a worker stops accepting after accept(2) failed for want of descriptors or memory."""
BALANCE_SLACK = 1
"""Connections a worker may hold beyond the least loaded worker's and still accept more."""
DEFER_RECHECK = 0.002
MAX_DEFER = 0.05
"""Seconds a worker leaves a waiting connection to less loaded workers before taking it anyway
(one of them may be stuck)."""
FENCE_TIMEOUT = 10.0
_BAD_HEADER_VALUE = re.compile(r"[\r\n\0]")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {400: "Bad Request", 413: "Content Too Large", 500: "Internal Server Error"}


class _DateCache:
    """The Date header, formatted once a second."""

    second = 0
    line = b""

    @classmethod
    def get(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.line = f"Date: {formatdate(now, usegmt=True)}\r\nServer: {SERVER}\r\n".encode()
        return cls.line


class FileWrapper:
    """wsgi.file_wrapper: a file response the loop sends by sendfile(2) when it can."""

    __slots__ = ("filelike", "block")

    def __init__(self, filelike, block: int = FILE_BLOCK):
        self.filelike = filelike
        self.block = block

    def __iter__(self):
        read = self.filelike.read
        while chunk := read(self.block):
            yield chunk

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class _SendfileSource:
    """What asyncio's sendfile wants of a file: its descriptor, and a seek it makes at the end."""

    __slots__ = ("_fd",)
    mode = "rb"

    def __init__(self, fd: int):
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)


class ConnectionControl:
    """What an application may ask of its connection (environ['nebulaio.connection'])."""

    __slots__ = ("_connection",)

    def __init__(self, connection: HttpConnection):
        self._connection = connection

    def settimeout(self, seconds: float | None) -> None:
        """How long a read of the request body may wait for the client."""
        self._connection.body_timeout = seconds

    def close_after_response(self) -> None:
        """End the connection once the response is out, whatever is left of the body."""
        self._connection.close_requested = True

    def cipher(self):
        ssl_object = self._connection.transport.get_extra_info("ssl_object")
        return None if ssl_object is None else ssl_object.cipher()


class StreamedBody:
    """wsgi.input of a request whose body arrives while its application runs on a thread.

    The loop feeds what the client sends; reading blocks the thread until enough has arrived.
    Reading pauses the client when more than BODY_HIGH_WATER waits unread.
    """

    def __init__(self, connection: HttpConnection, left: int | None, expect_continue: bool):
        self._connection = connection
        self._loop = connection.loop
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._ended = left == 0
        self._lost = False
        self._paused = False
        self._condition = threading.Condition()
        self._continue = expect_continue
        self.left = left
        """Bytes of a Content-Length body the loop has yet to receive (None: chunked)."""
        self.read_from = False

    # -- loop side -----------------------------------------------------------------------------

    def feed(self, data: bytes, ended: bool) -> None:
        with self._condition:
            if data:
                self._chunks.append(data)
                self._buffered += len(data)
            self._ended = self._ended or ended
            self._condition.notify()
            if self._buffered > BODY_HIGH_WATER and not self._paused:
                self._paused = True
                self._connection.transport.pause_reading()

    def lose(self) -> None:
        with self._condition:
            self._lost = True
            self._condition.notify()

    # -- thread side ---------------------------------------------------------------------------

    def _resume(self) -> None:
        if not self._lost:
            self._connection.transport.resume_reading()

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        if self._continue:
            self._continue = False
            self._loop.call_soon_threadsafe(self._connection.write_interim, _CONTINUE)
        self.read_from = True
        parts: list[bytes] = []
        wanted = sys.maxsize if size is None or size < 0 else size
        deadline = None
        with self._condition:
            while wanted:
                if self._chunks:
                    chunk = self._chunks.popleft()
                    if len(chunk) > wanted:
                        self._chunks.appendleft(chunk[wanted:])
                        chunk = chunk[:wanted]
                    parts.append(chunk)
                    wanted -= len(chunk)
                    self._buffered -= len(chunk)
                    continue
                if self._ended:
                    break
                if self._lost:
                    raise ConnectionResetError("the client closed the connection before the body's end")
                timeout = self._connection.body_timeout
                if timeout is not None:
                    deadline = deadline or time.monotonic() + timeout
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._condition.wait(remaining):
                        if not self._chunks and not self._ended and not self._lost:
                            raise TimeoutError("the client sent no body for too long")
                else:
                    self._condition.wait()
            if self._paused and self._buffered < BODY_LOW_WATER:
                self._paused = False
                self._loop.call_soon_threadsafe(self._resume)
        return b"".join(parts)

    def readline(self, size: int = -1) -> bytes:
        line = bytearray()
        while size < 0 or len(line) < size:
            byte = self.read(1)
            line += byte
            if not byte or byte == b"\n":
                break
        return bytes(line)

    @property
    def complete(self) -> bool:
        with self._condition:
            return self._ended


class HttpConnection(asyncio.Protocol):
    """One client connection: requests one after another, each answered before the next is read."""

    def __init__(self, worker: LoopWorker, listener: Listener):
        self.worker = worker
        self.listener = listener
        self.loop = worker.loop
        self.transport = None
        self.buffer = bytearray()
        self.body: StreamedBody | None = None
        self.chunked: ChunkedDecoder | None = None
        self.body_timeout: float | None = None
        self.close_requested = False
        self.closed = False
        self.eof = False
        self.idle = True
        self._waiter: asyncio.Future | None = None
        self._drain: asyncio.Future | None = None
        self._writing_paused = False
        self._environ_base: dict = {}

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.worker.connections.add(self)
        self.worker.count_connections()
        peer = transport.get_extra_info("peername") or ("", 0)
        local = transport.get_extra_info("sockname") or ("", 0)
        scheme = "https" if transport.get_extra_info("ssl_object") is not None else "http"
        self._environ_base = {
            "REMOTE_ADDR": peer[0],
            "REMOTE_PORT": str(peer[1]),
            "SERVER_NAME": local[0],
            "SERVER_PORT": str(local[1]),
            "SCRIPT_NAME": "",
            "wsgi.url_scheme": scheme,
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "nebulaio.connection": ConnectionControl(self),
        }
        self.loop.create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        if self.body is not None and not self.body.complete:
            data = self._feed_body(data)
            if not data:
                return
        self.buffer += data
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self):
        """The client sent all it will send; it may still wait for the answer (half-close)."""
        self.eof = True
        if self.body is not None:
            self.body.lose()
        self._wake()
        return True

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.worker.connections.discard(self)
        self.worker.count_connections()
        if self.body is not None:
            self.body.lose()
        self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- reading ------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _more(self, timeout: float) -> bool:
        """Wait for bytes from the client; False when it closed or stayed silent too long."""
        if self.closed or self.eof:
            return False
        before = len(self.buffer)
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, waiter.cancel)
        try:
            await waiter
        except asyncio.CancelledError:
            if not waiter.cancelled() or self.closed:
                raise
            return False
        finally:
            timer.cancel()
            self._waiter = None
        return len(self.buffer) > before or not (self.closed or self.eof)

    def _feed_body(self, data: bytes) -> bytes:
        """Hand the streamed body its bytes; what follows its end belongs to the next request."""
        body = self.body
        if self.chunked is not None:
            try:
                pieces, rest = self.chunked.feed(data)
            except BadRequest:
                body.lose()
                self.close_requested = True
                return b""
            body.feed(b"".join(pieces), self.chunked.done)
            return rest
        take = min(body.left, len(data))
        body.left -= take
        body.feed(data[:take] if take < len(data) else data, body.left == 0)
        return data[take:]

    async def _read_head(self) -> bytes | None:
        keepalive = self.worker.cfg.keepalive
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > MAX_HEAD:
                raise BadRequest("the request head is longer than 1 MiB")
            # Blank lines before a request line are allowed (RFC 9112, 2.2).
            while self.buffer[:2] == b"\r\n":
                del self.buffer[:2]
            if not await self._more(keepalive if not self.buffer else HEAD_TIMEOUT):
                return None

    async def _read_exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not await self._more(self.body_timeout or HEAD_TIMEOUT):
                return None
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    # -- writing ------------------------------------------------------------------------------

    def write_interim(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    async def _drained(self) -> None:
        if self._writing_paused and not self.closed:
            self._drain = self.loop.create_future()
            await self._drain
            self._drain = None

    # -- serving ------------------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while not self.closed:
                self.idle = True
                try:
                    raw = await self._read_head()
                except BadRequest as exc:
                    self._refuse(exc)
                    return
                if raw is None or not self.worker.alive:
                    break
                self.idle = False
                try:
                    head = parse_head(raw)
                except BadRequest as exc:
                    self._refuse(exc)
                    return
                if not await self._answer(head):
                    break
        except Exception:
            self.worker.log.exception("error serving a connection")
        finally:
            if not self.closed:
                self.transport.close()

    def _refuse(self, exc: Exception) -> None:
        self.worker.log.warning("invalid request from %s: %s", self._environ_base["REMOTE_ADDR"], exc)
        message = f"The request could not be parsed: {exc}"
        self.transport.write(self.listener.error_response(400, "InvalidRequest", message))
        self.transport.close()

    def _internal_error(self) -> None:
        message = "We encountered an internal error. Please try again."
        self.transport.write(self.listener.error_response(500, "InternalError", message))

    def _environ(self, head: RequestHead) -> dict:
        environ = head.environ
        environ.update(self._environ_base)
        path, _, query = head.target.partition("?")
        if not path.startswith("/"):
            # absolute-form (a proxy's request line): keep the path alone.
            scheme_end = path.find("://")
            path = "/" + path[scheme_end + 3 :].partition("/")[2] if scheme_end > 0 else "/" + path
        environ["REQUEST_METHOD"] = head.method
        environ["RAW_URI"] = head.target
        environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1") if "%" in path else path
        environ["QUERY_STRING"] = query
        environ["SERVER_PROTOCOL"] = f"HTTP/1.{head.minor}"
        if environ["wsgi.url_scheme"] == "http" and self.worker.proxies.forwarded_https(environ):
            environ["wsgi.url_scheme"] = "https"
        return environ

    async def _answer(self, head: RequestHead) -> bool:
        """Run one request and send its response; whether the connection can take another."""
        environ = self._environ(head)
        self.body_timeout = None
        self.close_requested = False
        in_memory = not (head.chunked or head.length) or (not head.chunked and len(self.buffer) >= head.length)
        held = not in_memory and head.expect_continue and not head.chunked and head.length <= HELD_BODY_LIMIT
        mode = self.listener.loop_mode(environ) if in_memory or held else None
        streamed = None
        if in_memory and not head.length:
            environ["wsgi.input"] = _EMPTY
        elif in_memory:
            environ["wsgi.input"] = io.BytesIO(bytes(self.buffer[: head.length]))
            del self.buffer[: head.length]
        elif held and mode == RUN_INLINE:
            # Its client waits for 100 Continue: the body stays unsent until the application,
            # on the loop, has authorized the request and asks for it.
            environ[BODY_HELD] = True
            environ["wsgi.input"] = _HELD
        else:
            mode = None
            streamed = self._stream_body(environ, head)
        inline = mode is not None
        if mode == RUN_AFTER_FENCE:
            # A fenced read runs on the loop once a fence shared with the reads beside it has
            # passed; else on a thread, where the application fences it its own way.
            inline = environ[READ_FENCED] = await self.worker.read_fence.passed()
        try:
            ran = await self._run_on_loop(environ, head) if inline else None
            if ran is None:
                streamed = self.body  # a held body streams to the thread the application asked for
                response = _Response()
                result = await self.loop.run_in_executor(self.worker.pool, self.worker.wsgi, environ, response.start)
            else:
                result, response = ran
        except Exception:
            self.worker.log.exception("error handling a request")
            self._internal_error()
            return False
        try:
            keep = await self._send(head, response, result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if streamed is not None:
            self.body = None
            self.chunked = None
            keep = keep and await self._settle(streamed, head)
        elif BODY_HELD in environ:
            keep = False  # answered without its body, which the client may send or not
        return keep and head.keep_alive and not self.close_requested and self.worker.alive

    def _stream_body(self, environ: dict, head: RequestHead) -> StreamedBody:
        streamed = self.body = StreamedBody(self, None if head.chunked else head.length, head.expect_continue)
        self.chunked = ChunkedDecoder() if head.chunked else None
        if self.buffer:
            pending = bytes(self.buffer)
            self.buffer.clear()
            self.buffer += self._feed_body(pending)
        environ["wsgi.input"] = streamed
        return streamed

    async def _run_on_loop(self, environ: dict, head: RequestHead) -> tuple[object, _Response] | None:
        """Run the application on the loop: the body it holds back read once it asks for it, a
        write's commit awaited here rather than by a thread blocked on it. None: it asked for a
        thread instead."""
        app = self.worker.wsgi
        environ[ON_LOOP] = True
        response = _Response()
        result = app(environ, response.start)
        if environ.pop(BODY_WANTED, False):
            environ["wsgi.input"] = body = await self._held_body(head.length)
            if isinstance(body, io.BytesIO):
                del environ[BODY_HELD]
            response = _Response()
            result = app(environ, response.start)
        proposal = environ.pop(COMMIT_WANTED, None)
        if proposal is not None:
            environ[COMMITTED] = await self.worker.supervisor.submit(proposal.command, proposal.blob, proposal.timeout)
            response = _Response()
            result = app(environ, response.start)
        elif environ.pop(THREAD_WANTED, False):
            del environ[ON_LOOP]
            if environ.pop(BODY_HELD, False):
                self._stream_body(environ, head)
            return None
        return result, response

    async def _held_body(self, length: int):
        """A held body, asked for: 100 Continue (unless it came anyway), then the body whole."""
        if len(self.buffer) < length:
            self.write_interim(_CONTINUE)
        body = await self._read_exactly(length)
        if body is None:
            return _LOST if self.closed or self.eof else _LATE
        return io.BytesIO(body)

    async def _settle(self, body: StreamedBody, head: RequestHead) -> bool:
        """After the response: drop what is left of a small body, or give up the connection."""
        if body.complete:
            return True
        if self.close_requested or head.chunked or (head.expect_continue and not body.read_from):
            return False
        left = body.left
        if left > MAX_DISCARD:
            return False
        return await self._read_exactly(left) is not None

    async def _send(self, head: RequestHead, response: _Response, result) -> bool:
        status, headers = response.status, response.headers
        if status is None:
            raise RuntimeError("the application returned without starting a response")
        lines = [f"HTTP/1.1 {status}\r\n"]
        length = None
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                length = int(value)
                continue
            elif lower == "connection":
                if "close" in value.lower():
                    self.close_requested = True
                continue
            lines.append(f"{name}: {value}\r\n")
        written = "".join(lines)
        # PERF: one scan of the whole head, not one per header; a CR or LF of a name or value
        # would make a line more than the lines written.
        if written.count("\n") != len(lines) or written.count("\r") != len(lines) or "\0" in written:
            bad = next((name for name, value in headers if _BAD_HEADER_VALUE.search(name + value)), status)
            self.worker.log.error("refused a response header with CR, LF or NUL: %r", bad)
            self._internal_error()
            return False
        lines = [written]
        bodiless = head.method == "HEAD" or status[:3] in ("204", "304") or status[0] == "1"
        chunked = length is None and not bodiless
        if chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        if not head.keep_alive or self.close_requested:
            lines.append("Connection: close\r\n")
        if length is not None:
            lines.append(f"Content-Length: {length}\r\n")
        start = "".join(lines).encode("latin-1") + _DateCache.get() + b"\r\n"
        transport = self.transport
        if self.closed:
            return False
        if bodiless:
            transport.write(start)
            return True
        if isinstance(result, list):
            if chunked:
                data = b"".join(result)
                transport.write(start + (b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data) if data else b"0\r\n\r\n"))
            else:
                transport.write(start + b"".join(result))
            return True
        if isinstance(result, FileWrapper) and not chunked:
            source = _regular_file(result.filelike)
            if source is not None:
                return await self._send_file(start, *source, length)
        transport.write(start)
        iterator = iter(result)
        pool = self.worker.pool
        sent = 0
        while True:
            chunk = await self.loop.run_in_executor(pool, next, iterator, None)
            if chunk is None:
                break
            if not chunk:
                continue
            if self.closed:
                return False
            sent += len(chunk)
            transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await self._drained()
        if chunked:
            transport.write(b"0\r\n\r\n")
        elif length is not None and sent != length:
            self.worker.log.warning("a response sent %d bytes of the %d it announced", sent, length)
            return False
        return True

    async def _send_file(self, start: bytes, fd: int, offset: int, length: int) -> bool:
        transport = self.transport
        if length <= SMALL_FILE or transport.get_extra_info("ssl_object") is not None:
            # PERF: the head goes out with the first block: one send(2) for a small object.
            pending = start
            try:
                for data in pieces(fd, length, offset, FILE_BLOCK):
                    transport.write(pending + data if pending else data)
                    pending = b""
                    await self._drained()
            except EOFError:
                return False
            if pending:
                transport.write(pending)
            return not self.closed
        tcp = transport.get_extra_info("socket")
        _cork(tcp, True)
        transport.write(start)
        sock = tcp.fileno()
        source = _SendfileSource(fd)
        end = offset + length
        try:
            while offset < end:
                # PERF: a sendfile(2) call lasts as long as the client keeps draining its socket,
                # a whole 64 MiB body on loopback: the loop answered no other connection
                # meanwhile. Calls of SENDFILE_CHUNK bytes let it turn to them in between. A
                # chunk goes straight to the socket while it takes it, the transport holding
                # nothing; else asyncio's sendfile waits for both (it costs a dozen syscalls).
                chunk = min(SENDFILE_CHUNK, end - offset)
                if transport.is_closing():  # closed too: its descriptor may be another's by now
                    return False
                sent = None
                if not transport.get_write_buffer_size():
                    with contextlib.suppress(BlockingIOError):
                        sent = os.sendfile(sock, fd, offset, chunk)
                if sent is None:
                    sent = await self.loop.sendfile(transport, source, offset, chunk, fallback=True)
                else:
                    await asyncio.sleep(0)
                if not sent:
                    return False  # the file ended before its announced length
                offset += sent
        except (ConnectionError, OSError, RuntimeError):
            return False
        finally:
            _cork(tcp, False)
        return not self.closed


def _cork(tcp, on: bool) -> None:
    """PERF: corked, the head and the body leave in full segments, as nginx's tcp_nopush
    has them; asyncio sets TCP_NODELAY, and a 64 MiB GET on loopback cost 30-33 ms of server
    CPU uncorked against 26-31 ms corked (nginx 24-29 ms). Uncorking sends what is left."""
    with contextlib.suppress(OSError):
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, on)


def _regular_file(filelike) -> tuple[int, int] | None:
    """The descriptor and current offset of a response body that is a file on disk (not a
    socket or a pipe, as a proxied response's is)."""
    fileno = getattr(filelike, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
        return fd, os.lseek(fd, 0, os.SEEK_CUR)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


class _Response:
    __slots__ = ("status", "headers")

    def __init__(self):
        self.status = None
        self.headers = ()

    def start(self, status: str, headers: list, exc_info=None):
        if exc_info is not None and self.status is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = status
        self.headers = headers
        return self._write

    @staticmethod
    def _write(data):
        raise NotImplementedError("write() of start_response is not supported: return an iterable")


class _EmptyBody:
    @staticmethod
    def read(size: int = -1) -> bytes:
        return b""

    readline = read


_EMPTY = _EmptyBody()


class _UnreadBody:
    """wsgi.input of a body not in hand: reading it fails as a StreamedBody's read would."""

    __slots__ = ("_error", "_message")

    def __init__(self, error: type[Exception], message: str):
        self._error = error
        self._message = message

    def read(self, size: int = -1) -> bytes:
        raise self._error(self._message)

    readline = read


_HELD = _UnreadBody(RuntimeError, "a held body is read once the application has asked for it")
_LATE = _UnreadBody(TimeoutError, "the client sent no body for too long")
_LOST = _UnreadBody(ConnectionResetError, "the client closed the connection before the body's end")


class Listener:
    """What differs between the node's listeners: TLS, the error format, inline requests."""

    def __init__(self, kind: str, tls: ssl.SSLContext | None, loop_mode):
        self.kind = kind
        self.tls = tls
        self.loop_mode = loop_mode

    def error_response(self, status: int, code: str, message: str) -> bytes:
        rid = request_id()
        if self.kind == "s3" or self.kind == "console":
            content_type, body = "application/xml", xml.error(code, message, rid)
        else:
            content_type = "application/json"
            body = error_body(code, message, rid)
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: {SERVER}\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nx-amz-request-id: {rid}\r\n\r\n"
        )
        return head.encode("latin-1") + body


def _on_a_thread(environ: dict) -> None:
    return None


class ConnectionCounts:
    """How many connections each HTTP worker of a server holds, on a page the workers share.

    Made when the arbiter imports this module, before it forks: every worker inherits the same
    shared mapping. A slot holds a worker's pid (0: free) and its connection count; the
    arbiter hands slots out (pre_fork) and takes them back (child_exit) in gunicorn.conf.py.
    """

    SLOTS = 256

    def __init__(self):
        self._page = mmap.mmap(-1, self.SLOTS * 8)
        self._slots = memoryview(self._page).cast("i")

    def free_slot(self, taken: set[int]) -> int:
        return min(set(range(self.SLOTS)) - taken)

    def claim(self, slot: int, pid: int) -> None:
        self._slots[2 * slot + 1] = 0
        self._slots[2 * slot] = pid

    def release(self, slot: int) -> None:
        self._slots[2 * slot] = 0

    def set(self, slot: int, connections: int) -> None:
        self._slots[2 * slot + 1] = connections

    def least(self) -> int:
        slots = self._slots
        return min((slots[at + 1] for at in range(0, len(slots), 2) if slots[at]), default=0)


CONNECTION_COUNTS = ConnectionCounts()


class LoopWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set[HttpConnection] = set()
        self._handshakes: set[asyncio.Task] = set()
        """Connections accepted and still being set up (a TLS handshake), kept from the GC."""
        self.slot = 0
        """This worker's slot in CONNECTION_COUNTS, given by the arbiter before the fork."""
        self._deferred_since: float | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.wsgi = None
        self.supervisor: AsyncSupervisorClient | None = None
        self.read_fence: AsyncReadFence | None = None

    def init_process(self):
        CONNECTION_COUNTS.claim(self.slot, os.getpid())
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.pool = ThreadPoolExecutor(max_workers=self.cfg.threads, thread_name_prefix="request")
        super().init_process()

    def init_signals(self):
        """SIGTERM ends gracefully, SIGQUIT at once; Ctrl-C is the arbiter's (it sends SIGQUIT).

        Ctrl-C reaches every process of the foreground group: the workers leave it to the arbiter.
        """
        for number in self.SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        self.loop.add_signal_handler(signal.SIGTERM, self._stop, False)
        self.loop.add_signal_handler(signal.SIGQUIT, self._stop, True)
        self.loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGWINCH, signal.SIG_IGN)

    def load_wsgi(self):
        self.wsgi = self.app.wsgi()
        # X-Forwarded-Proto is believed from the proxies `trusted_proxies` names, as the
        # client address is (gunicorn's forwarded_allow_ips plays no part).
        self.proxies = self.wsgi.proxies
        socket_path = getattr(self.wsgi, "supervisor_socket", None)
        if socket_path is not None:
            self.supervisor = AsyncSupervisorClient(socket_path)
            self.read_fence = AsyncReadFence(self.supervisor, FENCE_TIMEOUT)

    def _stop(self, quick: bool) -> None:
        self.alive = False
        self._quick = quick

    def _listeners(self) -> dict[int, Listener]:
        settings = configuration.from_environment()
        default_tls = gunicorn_sock.ssl_context(self.cfg) if self.cfg.is_ssl else None
        loop_mode = getattr(self.wsgi, "loop_mode", _on_a_thread)
        by_port = {}
        for kind in ("s3", "admin", "console", "internal"):
            port = configuration.split_address(settings[f"{kind}_address"])[1]
            tls = (listener_tls(settings) or default_tls) if kind == "internal" else default_tls
            by_port[port] = Listener(kind, tls, loop_mode if kind == "s3" else _on_a_thread)
        return by_port

    def run(self):
        self._quick = False
        # PERF: what the worker built before serving (modules, apps, their tables) lives as
        # long as it does; frozen, the collector's full passes skip it. Under load these
        # passes paused a worker for 28-58 ms each.
        gc.freeze()
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.loop.close()

    async def _serve(self) -> None:
        self.loop.set_exception_handler(self._loop_error)
        listeners = self._listeners()
        accepting = []
        for listener_socket in self.sockets:
            sock = listener_socket.sock
            sock.setblocking(False)
            listener = listeners.get(sock.getsockname()[1]) or Listener("s3", None, _on_a_thread)
            self.loop.add_reader(sock.fileno(), self._accept, sock, listener)
            accepting.append(sock.fileno())
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("parent changed, shutting down: %s", self)
                break
            await asyncio.sleep(1.0)
        for fd in accepting:
            self.loop.remove_reader(fd)
        deadline = self.loop.time() + self.cfg.graceful_timeout
        while not self._quick and self.loop.time() < deadline:
            for connection in list(self.connections):
                if connection.idle:
                    connection.transport.close()
            if not self.connections:
                break
            self.notify()
            await asyncio.sleep(0.05)

    def count_connections(self) -> None:
        CONNECTION_COUNTS.set(self.slot, len(self.connections))

    def _accept(self, sock: socket.socket, listener: Listener) -> None:
        """Take one waiting connection, unless this worker holds more than its share.

        PERF: the workers share each listening socket, and asyncio's own server accepts every
        connection waiting when it wakes: at the start of a 32-client load one worker took 15
        connections and another none, and the loaded worker's clients waited longest (p99 at
        5x p50). A worker holding more than BALANCE_SLACK connections beyond the least loaded
        one leaves a waiting connection to the others for a while (MAX_DEFER).
        """
        if len(self.connections) > CONNECTION_COUNTS.least() + BALANCE_SLACK:
            now = time.monotonic()
            if self._deferred_since is None:
                self._deferred_since = now
            if now - self._deferred_since < MAX_DEFER:
                self._pause_accepting(sock, listener, DEFER_RECHECK)
                return
        self._deferred_since = None
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            # Out of descriptors or memory: pause accepting, as asyncio's server does.
            self.log.warning("accepting a connection failed: %s", exc)
            self._pause_accepting(sock, listener, ACCEPT_RETRY_DELAY)
            return
        conn.setblocking(False)
        task = self.loop.create_task(self._connect(conn, listener))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    def _pause_accepting(self, sock: socket.socket, listener: Listener, seconds: float) -> None:
        self.loop.remove_reader(sock.fileno())
        self.loop.call_later(seconds, self.loop.add_reader, sock.fileno(), self._accept, sock, listener)

    async def _connect(self, conn: socket.socket, listener: Listener) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: HttpConnection(self, listener), conn, ssl=listener.tls)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError and ConnectionError are OSErrors
            try:
                peer = conn.getpeername()
            except OSError:
                peer = None
            self._refused(peer, exc)
            conn.close()

    def _refused(self, peer, exc: Exception) -> None:
        # A peer refused at the handshake (no certificate, or one the CA did not sign), or a
        # client gone mid-handshake: the connection carries no HTTP to answer.
        self.log.warning("refused a TLS connection from %s: %s", (peer or ("",))[0], exc)

    def _loop_error(self, loop, context) -> None:
        exception = context.get("exception")
        if isinstance(exception, (ssl.SSLError, ConnectionError)):
            transport = context.get("transport")
            self._refused(transport.get_extra_info("peername") if transport is not None else None, exception)
            return
        loop.default_exception_handler(context)
