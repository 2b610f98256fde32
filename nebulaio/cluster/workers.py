"""The supervisor's side of worker IPC: a Unix socket that answers each frame with one frame.

Each worker thread holds one connection and sends one request at a time; a request's `type`
picks its handler, and the handler's answer goes back as one orjson document.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from nebulaio.cluster import ipc

log = logging.getLogger("nebulaio.workers")

Handler = Callable[[dict, bytes | None], Awaitable[dict]]


async def serve_workers(socket_path: str, handlers: dict[str, Handler]) -> asyncio.Server:
    """Listen on `socket_path` (0600, replacing a stale socket) and dispatch frames by type."""

    async def serve(reader, writer) -> None:
        try:
            while True:
                document, blob = await ipc.read_frame(reader)
                handler = handlers.get(document.get("type"))
                if handler is None:
                    answer = {"status": "InvalidRequest", "reason": f"unknown request {document.get('type')!r}"}
                else:
                    answer = await handler(document, blob)
                writer.writelines(ipc.encode(answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the worker went away, or the supervisor is stopping
        except Exception:
            log.exception("IPC connection failed")
        finally:
            writer.close()

    if os.path.exists(socket_path):
        os.unlink(socket_path)
    server = await asyncio.start_unix_server(serve, path=socket_path)
    os.chmod(socket_path, 0o600)
    return server
