"""The supervisor's side of worker IPC: a Unix socket that answers each frame with one frame.

A worker's threads hold one connection each, its event loop one per request in flight; each
sends one request at a time. A request's `type` picks its handler, and the handler's answer
goes back as one orjson document.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from nebulaio.cluster import ipc

log = logging.getLogger("nebulaio.workers")

Handler = Callable[[dict, bytes | None], dict | Awaitable[dict]]
"""Answers a request now (a document) or later (an awaitable of one)."""


class _WorkerLink(asyncio.Protocol):
    """One worker connection: its requests answered one at a time, in order.

    PERF: a protocol rather than a stream reader and a coroutine per connection; a commit's
    answer goes out from its future's callback, with no task in between.
    """

    def __init__(self, handlers: dict[str, Handler]):
        self._handlers = handlers
        self._received = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False

    def connection_made(self, transport) -> None:
        self._transport = transport

    def connection_lost(self, exc) -> None:
        self._transport = None  # the worker went away, or the supervisor is stopping

    def data_received(self, data: bytes) -> None:
        self._received += data
        self._next()

    def _next(self) -> None:
        while not self._busy and self._transport is not None:
            try:
                frame = ipc.take_frame(self._received)
            except ValueError:
                log.exception("IPC connection failed")
                self._transport.close()
                return
            if frame is None:
                return
            document, blob = frame
            handler = self._handlers.get(document.get("type"))
            if handler is None:
                self._send({"status": "InvalidRequest", "reason": f"unknown request {document.get('type')!r}"})
                continue
            try:
                answer = handler(document, blob)
            except Exception:
                log.exception("IPC connection failed")
                self._transport.close()
                return
            if isinstance(answer, dict):
                self._send(answer)
                continue
            self._busy = True
            asyncio.ensure_future(answer).add_done_callback(self._answered)

    def _answered(self, future: asyncio.Future) -> None:
        self._busy = False
        if self._transport is None or future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("IPC connection failed", exc_info=error)
            self._transport.close()
            return
        self._send(future.result())
        self._next()

    def _send(self, answer: dict) -> None:
        self._transport.writelines(ipc.encode(answer))


async def serve_workers(socket_path: str, handlers: dict[str, Handler]) -> asyncio.Server:
    """Listen on `socket_path` (0600, replacing a stale socket) and dispatch frames by type."""
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: _WorkerLink(handlers), path=socket_path)
    os.chmod(socket_path, 0o600)
    return server
