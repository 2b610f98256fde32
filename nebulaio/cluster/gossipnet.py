"""Gossip on the wire: sealed messages over UDP, and over TCP when they are too large for one
datagram or a probe asks for the stream channel.

A sealed message is MAGIC | HMAC-SHA256(gossip key, body) | body, the body an orjson
document stamped with its sending time; a message with a wrong tag, or stamped outside the
allowed clock skew, is refused and counted. The gossip key is the cluster secret's
(`purposekeys.GOSSIP`): messages are sealed with the current key and opened with any key of
the ring, so the secret can be rotated while nodes gossip. On TCP a message is a 4-byte length
and the sealed bytes; a sync is answered on the same connection.

With mTLS between nodes (internal_tls_*), the cluster secret alone no longer admits a node:
a certificate of the cluster's CA must. The TCP channel is TLS with the inter-node listener's
contexts (a client certificate required both ways), sealed inside as above. Datagrams cannot
take TLS (the standard library has no DTLS), so their key is one only certificate holders
learn: each node makes a random datagram key at start, never derived from the cluster secret,
and gives it only over the TLS channel (DATAGRAM_KEY_REQUEST). A datagram then reads
SENDER_MAGIC | 2-byte address length | the sender's gossip address | HMAC-SHA256(the sender's
key, everything before the tag and the body) | body. A receiver that does not know the sender's
key yet, or whose key no longer opens the sender's datagrams (it restarted with a new one),
drops the datagram, counts it refused and asks the sender for its key over TLS, at most once
a KEY_REQUEST_INTERVAL per sender. Every sealed message shares these two channels: gossip's,
the fast read index's (readlink.py) and read leases' (lease.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import socket
import ssl
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
SENDER_MAGIC = b"NG2"
"""A datagram sealed with its sender's own key (mTLS between nodes); MAGIC: with the cluster secret."""
TAG_SIZE = hashlib.sha256().digest_size
MAX_DATAGRAM = 1200
"""Larger messages go over TCP: a datagram this size crosses any path without fragments."""
MAX_STREAM_MESSAGE = 4 * 1024 * 1024
LENGTH = struct.Struct(">I")
ADDRESS_LENGTH = struct.Struct(">H")
SENDER_START = len(SENDER_MAGIC) + ADDRESS_LENGTH.size
"""Where the sender's address begins in a datagram sealed with its own key."""
STREAM_TIMEOUT = 2.0
"""Seconds a TCP exchange may take, connecting included."""
DATAGRAM_KEY_SIZE = 32
DATAGRAM_KEY_REQUEST, DATAGRAM_KEY = "datagram_key_request", "datagram_key"
"""A node's datagram key, asked and given only over the TLS channel."""
KEY_REQUEST_INTERVAL = 1.0
"""Seconds between two requests for the same sender's datagram key."""
MAX_KEY_REQUESTS = 256
"""Senders whose key may be asked for within one KEY_REQUEST_INTERVAL: datagrams naming many
made-up senders cost the node at most this many TLS connections a second."""


def seal(key: bytes, message: dict, now: float) -> bytes:
    body = _stamped(message, now)
    return MAGIC + _tag(key, body) + body


def unseal(keys: tuple[bytes, ...], data: bytes, now: float) -> dict | None:
    """The message, or None when it is not sealed with one of `keys`, is stale, or is not a document."""
    if not keys or len(data) < len(MAGIC) + TAG_SIZE or not data.startswith(MAGIC):
        return None
    tag, body = data[len(MAGIC) : len(MAGIC) + TAG_SIZE], data[len(MAGIC) + TAG_SIZE :]
    return _opened(keys, tag, body, body, now)


def seal_from(sender: str, key: bytes, message: dict, now: float) -> bytes:
    """A datagram of `sender` (its gossip address) sealed with its datagram key."""
    head = _sender_head(sender)
    body = _stamped(message, now)
    return head + _tag(key, head + body) + body


def sender_of(data: bytes) -> str | None:
    """The gossip address a datagram sealed by `seal_from` names as its sender (not yet proven)."""
    if len(data) < SENDER_START or not data.startswith(SENDER_MAGIC):
        return None
    end = _head_end(data)
    try:
        return data[SENDER_START:end].decode() if len(data) >= end + TAG_SIZE else None
    except UnicodeDecodeError:
        return None


def unseal_from(key: bytes, data: bytes, now: float) -> dict | None:
    """The message of a datagram `sender_of` could read, or None when `key` did not seal it,
    it is stale, or it is not a document."""
    end = _head_end(data)
    head, tag, body = data[:end], data[end : end + TAG_SIZE], data[end + TAG_SIZE :]
    return _opened((key,), tag, head + body, body, now)


def _sender_head(sender: str) -> bytes:
    address = sender.encode()
    return SENDER_MAGIC + ADDRESS_LENGTH.pack(len(address)) + address


def _head_end(data: bytes) -> int:
    (length,) = ADDRESS_LENGTH.unpack_from(data, len(SENDER_MAGIC))
    return SENDER_START + length


def _stamped(message: dict, now: float) -> bytes:
    return orjson.dumps({**message, "sent": int(now)})


def _tag(key: bytes, covered: bytes) -> bytes:
    return hmac.digest(key, covered, "sha256")


def _opened(keys: tuple[bytes, ...], tag: bytes, covered: bytes, body: bytes, now: float) -> dict | None:
    """The message in `body` when one of `keys` tagged `covered` (the body, and a sender's
    datagram's head), it is fresh and a document; else None."""
    if not any(hmac.compare_digest(tag, _tag(key, covered)) for key in keys):
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


class DatagramKeys:
    """The datagram keys of a node with mTLS between nodes: its own, made at start, and those
    of the senders it learnt over TLS."""

    def __init__(self, own_address: str, request: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        """`own_address`: this node's gossip address, named in its datagrams; `request(sender)`
        asks a sender for its key over TLS, and `learn` takes the answer."""
        self.own = secrets.token_bytes(DATAGRAM_KEY_SIZE)
        self._own_address = own_address
        self._request = request
        self._clock = clock
        self._known: dict[str, bytes] = {}
        self._requested: dict[str, float] = {}

    def seal(self, message: dict, now: float) -> bytes:
        return seal_from(self._own_address, self.own, message, now)

    def open(self, data: bytes, now: float) -> dict | None:
        """The message, or None (refused): asks the sender for its key when it is unknown or
        does not open the datagram (a sender that restarted made a new one)."""
        sender = sender_of(data)
        if sender is None:
            return None
        key = self._known.get(sender)
        message = None if key is None else unseal_from(key, data, now)
        if message is None:
            self._ask(sender)
        return message

    def learn(self, sender: str, key: bytes) -> None:
        self._known[sender] = key

    def _ask(self, sender: str) -> None:
        now = self._clock()
        if now - self._requested.get(sender, -KEY_REQUEST_INTERVAL) < KEY_REQUEST_INTERVAL:
            return
        if len(self._requested) >= MAX_KEY_REQUESTS:
            self._requested = {
                asked: when for asked, when in self._requested.items() if now - when < KEY_REQUEST_INTERVAL
            }
            if len(self._requested) >= MAX_KEY_REQUESTS:
                return
        self._requested[sender] = now
        self._request(sender)


def exchange(
    address: str, keys: KeyRing, message: dict, tls: ssl.SSLContext | None = None, timeout: float = STREAM_TIMEOUT
) -> dict | None:
    """One blocking TCP request and its answer (over TLS with `tls`): a node learns the cluster
    before it runs a loop."""
    host, port = split_address(address)
    with contextlib.ExitStack() as stack:
        conn = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
        if tls is not None:
            conn = stack.enter_context(tls.wrap_socket(conn, server_hostname=host))
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

    def __init__(
        self,
        keys: KeyRing,
        own_address: str,
        server_tls: ssl.SSLContext | None,
        client_tls: ssl.SSLContext | None,
    ):
        """`own_address`: this node's gossip address as its peers reach it. With mTLS between
        nodes, `server_tls` and `client_tls` are the inter-node listener's contexts
        (`peers.listener_tls`, `peers.peer_tls`): the TCP channel takes TLS, and datagrams are
        sealed with this node's own key (see the module's description)."""
        self._keys = keys
        self._server_tls = server_tls
        self._client_tls = client_tls
        self.datagram_keys = None if server_tls is None else DatagramKeys(own_address, self._request_key)
        self.membership: Membership | None = None
        self.routes: dict[str, Callable[[dict], None]] = {}
        """Receivers of the other sealed datagrams sharing this endpoint, by message type: the
        fast read index (readlink.py) and read leases (lease.py)."""
        self.refused = 0
        """Messages refused for a missing or wrong seal: forged, from another cluster, stale, or
        (mTLS) from a sender whose datagram key is not known yet."""
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, address: str) -> None:
        host, port = split_address(address)
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        tls = {} if self._server_tls is None else {"ssl": self._server_tls, "ssl_handshake_timeout": STREAM_TIMEOUT}
        self._server = await asyncio.start_server(self._serve_stream, host, port, **tls)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()

    # The Transport of gossip.Membership.
    def send(self, address: str, message: dict, reliable: bool = False) -> None:
        now = time.time()
        keys = self.datagram_keys
        sealed = seal(self._keys.current, message, now) if keys is None else keys.seal(message, now)
        if reliable or len(sealed) > MAX_DATAGRAM:
            if keys is not None:
                sealed = seal(self._keys.current, message, now)  # the TCP channel's seal, inside TLS
            self._spawn(self._send_stream(address, sealed))
            return
        try:
            self._udp.sendto(sealed, split_address(address))
        except (OSError, ValueError) as exc:
            log.debug("gossip to %s failed: %s", address, exc)

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _deliver(self, message: dict | None, over_stream: bool) -> dict | None:
        """Hand an opened message to its receiver; the answer to send back on a stream, if any."""
        if message is None:
            self.refused += 1
            log.debug("refused a gossip message not sealed with a key of the cluster (or of a sender not known yet)")
            return None
        kind = message.get("type")
        try:
            if kind == DATAGRAM_KEY_REQUEST:
                # Only a TLS client with a certificate of the cluster's CA gets this far on the stream.
                if over_stream and self.datagram_keys is not None:
                    return {"type": DATAGRAM_KEY, "key": self.datagram_keys.own.hex()}
                return None
            route = self.routes.get(kind)
            if route is not None:
                route(message)
                return None
            if self.membership is None:
                return None
            return self.membership.receive(message)
        except (KeyError, TypeError, AttributeError, ValueError):
            # NOTE: sealed by a member, so a bug or a newer version, not an attack: drop it.
            log.warning("dropped a malformed gossip message of type %r", kind, exc_info=True)
            return None

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.time()
        keys = self.datagram_keys
        self._deliver(unseal(self._keys.keys, data, now) if keys is None else keys.open(data, now), False)

    def _opened(self, sealed: bytes) -> dict | None:
        """A message of the TCP channel (sealed with the cluster secret, inside TLS with mTLS)."""
        return unseal(self._keys.keys, sealed, time.time())

    def error_received(self, exc: Exception) -> None:
        log.debug("gossip datagram error: %s", exc)

    async def _send_stream(self, address: str, sealed: bytes) -> None:
        answer = await self._stream_exchange(address, sealed)
        if answer:
            self._deliver(self._opened(answer), True)

    def _request_key(self, sender: str) -> None:
        self._spawn(self._fetch_key(sender))

    async def _fetch_key(self, sender: str) -> None:
        """Ask `sender` (a gossip address) for its datagram key over TLS, and keep it for that address."""
        answer = await self._stream_exchange(
            sender, seal(self._keys.current, {"type": DATAGRAM_KEY_REQUEST}, time.time())
        )
        message = self._opened(answer) if answer else None
        try:
            key = bytes.fromhex(message["key"]) if message["type"] == DATAGRAM_KEY else b""
        except (TypeError, KeyError, ValueError):  # no answer, or one without a key
            key = b""
        if len(key) != DATAGRAM_KEY_SIZE:
            log.debug("%s gave no datagram key", sender)
            return
        self.datagram_keys.learn(sender, key)

    async def _stream_exchange(self, address: str, sealed: bytes) -> bytes | None:
        """Send one sealed message on the TCP channel; the sealed answer (empty: none), or None
        when the exchange failed."""
        try:
            host, port = split_address(address)
            async with asyncio.timeout(STREAM_TIMEOUT):
                reader, writer = await asyncio.open_connection(host, port, ssl=self._client_tls)
                try:
                    writer.write(_framed(sealed))
                    await writer.drain()
                    return await _read_stream_message(reader)
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("gossip stream to %s failed: %r", address, exc)
            return None

    async def _serve_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(STREAM_TIMEOUT):
                sealed = await _read_stream_message(reader)
                answer = self._deliver(self._opened(sealed), True) if sealed else None
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
