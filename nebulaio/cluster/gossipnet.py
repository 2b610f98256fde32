"""Gossip on the wire: sealed messages over UDP, and over TCP when they are too large for one
datagram or a probe asks for the stream channel.

A sealed message is MAGIC | HMAC-SHA256(gossip key, body) | body, the body an orjson
document stamped with its sending time; a message with a wrong tag, or stamped outside the
allowed clock skew, is refused and counted. The gossip key is the cluster secret's
(`purposekeys.GOSSIP`): messages are sealed with the current key and opened with any key of
the ring, so the secret can be rotated while nodes gossip. On TCP a message is a 4-byte length
and the sealed bytes; a sync is answered on the same connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import socket
import struct
import time
from collections.abc import Callable

import orjson

from nebulaio.cluster.gossip import Membership
from nebulaio.cluster.signing import MAX_CLOCK_SKEW
from nebulaio.config import split_address
from nebulaio.util.purposekeys import KeyRing

log = logging.getLogger("nebulaio.gossip")

MAGIC = b"NG1"
TAG_SIZE = hashlib.sha256().digest_size
MAX_DATAGRAM = 1200
"""Larger messages go over TCP: a datagram this size crosses any path without fragments."""
MAX_STREAM_MESSAGE = 4 * 1024 * 1024
LENGTH = struct.Struct(">I")
STREAM_TIMEOUT = 2.0
"""Seconds a TCP exchange may take, connecting included."""


def seal(key: bytes, message: dict, now: float) -> bytes:
    body = orjson.dumps({**message, "sent": int(now)})
    return MAGIC + hmac.new(key, body, hashlib.sha256).digest() + body


def unseal(keys: tuple[bytes, ...], data: bytes, now: float) -> dict | None:
    """The message, or None when it is not sealed with one of `keys`, is stale, or is not a document."""
    if not keys or len(data) < len(MAGIC) + TAG_SIZE or not data.startswith(MAGIC):
        return None
    tag, body = data[len(MAGIC) : len(MAGIC) + TAG_SIZE], data[len(MAGIC) + TAG_SIZE :]
    if not any(hmac.compare_digest(tag, hmac.new(key, body, hashlib.sha256).digest()) for key in keys):
        return None
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("sent"), int):
        return None
    if abs(message["sent"] - now) > MAX_CLOCK_SKEW:
        return None
    return message


def exchange(address: str, keys: KeyRing, message: dict, timeout: float = STREAM_TIMEOUT) -> dict | None:
    """One blocking TCP request and its answer: a node learns the cluster before it runs a loop."""
    with socket.create_connection(split_address(address), timeout=timeout) as conn:
        conn.sendall(_framed(seal(keys.current, message, time.time())))
        head = _recv_exactly(conn, LENGTH.size)
        (size,) = LENGTH.unpack(head)
        if not size or size > MAX_STREAM_MESSAGE:
            return None
        return unseal(keys.keys, _recv_exactly(conn, size), time.time())


def _framed(sealed: bytes) -> bytes:
    return LENGTH.pack(len(sealed)) + sealed


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = conn.recv(size)
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class GossipNetwork(asyncio.DatagramProtocol):
    """The UDP endpoint and TCP server of one node, feeding a Membership (set once built)."""

    def __init__(self, keys: KeyRing):
        self._keys = keys
        self.membership: Membership | None = None
        self.routes: dict[str, Callable[[dict], None]] = {}
        """Receivers of the other sealed datagrams sharing this endpoint, by message type: the
        fast read index (readlink.py) and read leases (lease.py)."""
        self.refused = 0
        """Messages refused for a missing or wrong seal: forged, from another cluster, or stale."""
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, address: str) -> None:
        host, port = split_address(address)
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._server = await asyncio.start_server(self._serve_stream, host, port)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()

    # The Transport of gossip.Membership.
    def send(self, address: str, message: dict, reliable: bool = False) -> None:
        sealed = seal(self._keys.current, message, time.time())
        if reliable or len(sealed) > MAX_DATAGRAM:
            task = asyncio.get_running_loop().create_task(self._send_stream(address, sealed))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        try:
            self._udp.sendto(sealed, split_address(address))
        except (OSError, ValueError) as exc:
            log.debug("gossip to %s failed: %s", address, exc)

    def _deliver(self, sealed: bytes) -> dict | None:
        message = unseal(self._keys.keys, sealed, time.time())
        if message is None:
            self.refused += 1
            log.debug("refused a gossip message that is not sealed with the cluster secret")
            return None
        try:
            route = self.routes.get(message.get("type"))
            if route is not None:
                route(message)
                return None
            if self.membership is None:
                return None
            return self.membership.receive(message)
        except (KeyError, TypeError, AttributeError, ValueError):
            # NOTE: sealed by a member, so a bug or a newer version, not an attack: drop it.
            log.warning("dropped a malformed gossip message of type %r", message.get("type"), exc_info=True)
            return None

    def datagram_received(self, data: bytes, addr) -> None:
        self._deliver(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("gossip datagram error: %s", exc)

    async def _send_stream(self, address: str, sealed: bytes) -> None:
        try:
            host, port = split_address(address)
            async with asyncio.timeout(STREAM_TIMEOUT):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(_framed(sealed))
                    await writer.drain()
                    answer = await _read_stream_message(reader)
                finally:
                    writer.close()
            if answer:
                self._deliver(answer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("gossip stream to %s failed: %r", address, exc)

    async def _serve_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(STREAM_TIMEOUT):
                sealed = await _read_stream_message(reader)
                answer = self._deliver(sealed) if sealed else None
                writer.write(_framed(seal(self._keys.current, answer, time.time())) if answer else LENGTH.pack(0))
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("gossip stream failed: %r", exc)
        finally:
            writer.close()


async def _read_stream_message(reader: asyncio.StreamReader) -> bytes:
    (size,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
    if size > MAX_STREAM_MESSAGE:
        raise ValueError("gossip stream message too large")
    return await reader.readexactly(size) if size else b""
