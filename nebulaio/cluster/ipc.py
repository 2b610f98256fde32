"""Worker <-> supervisor framing over a Unix socket.

A frame is an 8-byte header (JSON length, blob length, both big-endian u32), an orjson
document and an optional binary blob (inline object bytes). A worker's threads hold one
blocking connection each, and its event loop one per request it has in flight; the supervisor
serves them from one asyncio loop, a request at a time on each connection.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time

import orjson

from nebulaio.util.ids import command_id, now_ms

HEADER = struct.Struct(">II")
MAX_DOCUMENT = 16 * 1024 * 1024
MAX_BLOB = 256 * 1024 * 1024
UNCONFIRMED_RETRIES = 2
"""Times a command raft did not confirm in time is proposed again before its 503 stands."""
SUPERVISOR_START_TIMEOUT = 60.0
SUPERVISOR_POLL_INTERVAL = 0.02


def encode(document: dict, blob: bytes | None = None) -> list[bytes]:
    payload = orjson.dumps(document)
    blob = blob or b""
    return [HEADER.pack(len(payload), len(blob)), payload, blob]


def take_frame(received: bytearray) -> tuple[dict, bytes | None] | None:
    """Remove the first whole frame from `received` and return it; None while it is incomplete.

    Raises:
        ValueError: the frame declares a document or blob over the limits.
    """
    if len(received) < HEADER.size:
        return None
    doc_len, blob_len = HEADER.unpack_from(received)
    if doc_len > MAX_DOCUMENT or blob_len > MAX_BLOB:
        raise ValueError("IPC frame too large")
    end = HEADER.size + doc_len + blob_len
    if len(received) < end:
        return None
    view = memoryview(received)
    try:
        document = orjson.loads(view[HEADER.size : HEADER.size + doc_len])
        blob = view[HEADER.size + doc_len : end].tobytes() if blob_len else None
    finally:
        view.release()
    del received[:end]
    return document, blob


class SupervisorUnavailable(Exception):
    """The supervisor could not be reached or did not answer in time."""


def wait_for_supervisor(path: str, timeout: float = SUPERVISOR_START_TIMEOUT) -> None:
    """Return once the supervisor serves on `path` (its launcher removed any earlier socket
    before starting it); SupervisorUnavailable after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SupervisorUnavailable(f"the supervisor did not start within {timeout:.0f} s")
        time.sleep(SUPERVISOR_POLL_INTERVAL)


ANSWER_READ = 64 * 1024
"""Bytes the first read of an answer asks for: a whole answer as a rule."""
_TIMEVAL = struct.Struct("@ll")


class SupervisorClient:
    """Blocking client with one connection per thread, reconnecting once when it breaks.

    PERF: the socket stays blocking, with the kernel's send and receive timeouts, and an answer
    is read with one recv(). A Python socket timeout polls before every send and receive and
    switches the socket's blocking mode on each change: five syscalls more per write.
    """

    __slots__ = ("path", "_local")

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    def _connection(self) -> socket.socket:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                conn.connect(self.path)
            except OSError as exc:
                conn.close()
                raise SupervisorUnavailable(f"cannot reach the supervisor: {exc}") from exc
            self._local.conn = conn
            self._local.timeout = None
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def call(self, document: dict, blob: bytes | None = None, timeout: float = 30.0) -> dict:
        """Send one request and wait for its answer."""
        for attempt in (0, 1):
            conn = self._connection()
            try:
                if self._local.timeout != timeout:
                    seconds = int(timeout)
                    timeval = _TIMEVAL.pack(seconds, int((timeout - seconds) * 1_000_000))
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
                    self._local.timeout = timeout
                conn.sendall(b"".join(encode(document, blob)))
                return self._read_answer(conn)
            except (TimeoutError, BlockingIOError) as exc:  # a kernel timeout fails with EAGAIN
                # The command may still commit later: never resend it on this path.
                self._drop()
                raise SupervisorUnavailable("the supervisor did not answer in time") from exc
            except (OSError, ConnectionError) as exc:
                self._drop()
                if attempt or document.get("type") == "submit":
                    raise SupervisorUnavailable(f"lost the supervisor connection: {exc}") from exc
        raise AssertionError("unreachable")

    def submit(self, command: dict, blob: bytes | None, timeout: float) -> dict:
        """Propose a command and wait for its result once it is applied on this node.

        The command carries a request id: one raft did not confirm in time may still apply,
        so it is proposed again under the same id, and apply answers a retry what the first
        attempt answered.
        """
        request = _submission(command)
        for _ in range(UNCONFIRMED_RETRIES):
            result = self.call(request, blob, timeout)
            if not result.get("unconfirmed"):
                return result
        return self.call(request, blob, timeout)

    @staticmethod
    def _read_answer(conn: socket.socket) -> dict:
        """The answer's document (an answer's blob is read and dropped)."""
        received = conn.recv(ANSWER_READ)
        if not received:
            raise ConnectionError("supervisor closed the connection")
        if len(received) < HEADER.size:
            received += _recv_exactly(conn, HEADER.size - len(received))
        doc_len, blob_len = HEADER.unpack_from(received)
        missing = HEADER.size + doc_len + blob_len - len(received)
        if missing > 0:
            received += _recv_exactly(conn, missing)
        return orjson.loads(memoryview(received)[HEADER.size : HEADER.size + doc_len])


def _submission(command: dict) -> dict:
    """The request that proposes `command`, under an id of its own (see SupervisorClient.submit)."""
    return {"type": "submit", "command": {**command, "request_id": command_id(), "requested": now_ms()}}


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = conn.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("supervisor closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _AnswerProtocol(asyncio.Protocol):
    """One connection of an AsyncSupervisorClient: a request at a time, its answer a future."""

    __slots__ = ("transport", "waiter", "_received")

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self._received = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received += data
        try:
            frame = take_frame(self._received)
        except ValueError:
            self.transport.close()  # connection_lost fails the waiting call
            return
        if frame is None:
            return
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(frame[0])

    def connection_lost(self, exc) -> None:
        self.transport = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("supervisor closed the connection"))


LOOP_CONNECTIONS = 64
"""Requests an event loop has in flight to its supervisor at most; more wait for a connection."""


class AsyncSupervisorClient:
    """An event loop's client: a connection per request in flight, kept for the next one.

    PERF: a write committed from a worker's loop skips the hand-offs to and from a request
    thread that waits for its answer.
    """

    __slots__ = ("path", "_idle", "_slots")

    def __init__(self, path: str):
        self.path = path
        self._idle: list[_AnswerProtocol] = []
        self._slots: asyncio.Semaphore | None = None

    async def call(self, document: dict, blob: bytes | None = None, timeout: float = 30.0) -> dict:
        """Send one request and wait for its answer (SupervisorUnavailable when none comes)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(LOOP_CONNECTIONS)
        async with self._slots:
            return await self._call(document, blob, timeout)

    async def _call(self, document: dict, blob: bytes | None, timeout: float) -> dict:
        loop = asyncio.get_running_loop()
        connection = None
        while self._idle and connection is None:
            connection = self._idle.pop()
            if connection.transport is None:  # the supervisor closed it meanwhile
                connection = None
        try:
            if connection is None:
                _, connection = await loop.create_unix_connection(_AnswerProtocol, self.path)
            connection.waiter = loop.create_future()
            connection.transport.writelines(encode(document, blob))
            async with asyncio.timeout(timeout):
                answer = await connection.waiter
        except TimeoutError as exc:
            connection.transport.close()
            raise SupervisorUnavailable("the supervisor did not answer in time") from exc
        except (OSError, ConnectionError) as exc:
            if connection is not None and connection.transport is not None:
                connection.transport.close()
            raise SupervisorUnavailable(f"lost the supervisor connection: {exc}") from exc
        self._idle.append(connection)
        return answer

    async def submit(self, command: dict, blob: bytes | None, timeout: float) -> dict:
        """SupervisorClient.submit from an event loop; an unreachable supervisor's answer is
        ServiceUnavailable."""
        request = _submission(command)
        try:
            for _ in range(UNCONFIRMED_RETRIES):
                result = await self.call(request, blob, timeout)
                if not result.get("unconfirmed"):
                    return result
            return await self.call(request, blob, timeout)
        except SupervisorUnavailable as exc:
            return {"status": "ServiceUnavailable", "reason": str(exc)}

    def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()


READ_FENCED = "nebulaio.read_fenced"
"""The environ key an event-loop worker sets on a read that needs no fence when the application
runs: the worker fenced it, a read lease covers it, or this node's reads are not fenced."""
RUN_INLINE = "inline"
RUN_AFTER_FENCE = "after fence"
"""How an event-loop worker may run a request on its loop (else on a thread): as it is, or
once a read fence has passed."""
ON_LOOP = "nebulaio.on_loop"
"""Set by an event-loop worker on a request it runs on its loop. Before it reads the body, the
application may ask for a thread instead (THREAD_WANTED: True). A body whose client waits for
100 Continue may be held back (BODY_HELD): the application asks for it (BODY_WANTED: True) once
it has authorized the request, and is run again with it. A write may leave its commit to the
loop (COMMIT_WANTED: an object with `command`, `blob` and `timeout`): the worker submits it
and runs the application again, the supervisor's answer in COMMITTED."""
THREAD_WANTED = "nebulaio.thread_wanted"
BODY_HELD = "nebulaio.body_held"
BODY_WANTED = "nebulaio.body_wanted"
COMMIT_WANTED = "nebulaio.commit_wanted"
COMMITTED = "nebulaio.committed"


class AsyncReadFence:
    """An event-loop worker's read fences: the reads that arrive while one is out share the next.

    A read may be answered from the replica once a fence that began after the read arrived has
    passed; so a read arriving during a fence waits for the one after it, and every read that
    arrived meanwhile shares that one.
    """

    def __init__(self, supervisor: AsyncSupervisorClient, timeout: float):
        self.supervisor = supervisor
        self.timeout = timeout
        self._running: asyncio.Future | None = None
        self._next: asyncio.Future | None = None

    async def passed(self) -> bool:
        """Whether a fence begun after this call passed (False: the caller fences its own way)."""
        if self._running is None:
            self._running = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(self._round(self._running))
            return await asyncio.shield(self._running)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._next)

    async def _round(self, result: asyncio.Future) -> None:
        while True:
            try:
                answer = await self.supervisor.call({"type": "fence"}, timeout=self.timeout)
                passed = answer.get("status") == "ok"
            except SupervisorUnavailable:
                passed = False
            result.set_result(passed)
            if self._next is None:
                self._running = None
                return
            result = self._running = self._next
            self._next = None
