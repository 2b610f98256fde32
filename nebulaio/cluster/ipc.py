"""Worker <-> supervisor framing over a Unix socket.

A frame is an 8-byte header (JSON length, blob length, both big-endian u32), an orjson
document and an optional binary blob (inline object bytes). Workers hold one blocking
connection per thread; the supervisor serves them from one asyncio loop.
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


async def read_frame(reader) -> tuple[dict, bytes | None]:
    """Read one frame from an asyncio StreamReader (raises IncompleteReadError at EOF)."""
    doc_len, blob_len = HEADER.unpack(await reader.readexactly(HEADER.size))
    if doc_len > MAX_DOCUMENT or blob_len > MAX_BLOB:
        raise ValueError("IPC frame too large")
    document = orjson.loads(await reader.readexactly(doc_len))
    blob = await reader.readexactly(blob_len) if blob_len else None
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
        command = {**command, "request_id": command_id(), "requested": now_ms()}
        for _ in range(UNCONFIRMED_RETRIES):
            result = self.call({"type": "submit", "command": command}, blob, timeout)
            if not result.get("unconfirmed"):
                return result
        return self.call({"type": "submit", "command": command}, blob, timeout)

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


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = conn.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("supervisor closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


READ_FENCED = "nebulaio.read_fenced"
"""The environ key an event-loop worker sets on a read that needs no fence when the application
runs: the worker fenced it, a read lease covers it, or this node's reads are not fenced."""
RUN_INLINE = "inline"
RUN_AFTER_FENCE = "after fence"
"""How an event-loop worker may run a request on its loop (else on a thread): as it is, or
once a read fence has passed."""


class AsyncReadFence:
    """An event-loop worker's read fences: the reads that arrive while one is out share the next.

    A read may be answered from the replica once a fence that began after the read arrived has
    passed; so a read arriving during a fence waits for the one after it, and every read that
    arrived meanwhile shares that one. One connection to the supervisor serves them all.
    """

    def __init__(self, path: str, timeout: float):
        self.path = path
        self.timeout = timeout
        self._connection = None
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
                passed = await asyncio.wait_for(self._ask(), self.timeout)
            except (OSError, ConnectionError, ValueError, asyncio.IncompleteReadError, TimeoutError):
                self._close()
                passed = False
            result.set_result(passed)
            if self._next is None:
                self._running = None
                return
            result = self._running = self._next
            self._next = None

    async def _ask(self) -> bool:
        if self._connection is None:
            self._connection = await asyncio.open_unix_connection(self.path)
        reader, writer = self._connection
        writer.writelines(encode({"type": "fence"}))
        document, _ = await read_frame(reader)
        return document.get("status") == "ok"

    def _close(self) -> None:
        if self._connection is not None:
            self._connection[1].close()
            self._connection = None
