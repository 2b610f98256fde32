"""The wire to each kind of notification target: a webhook, Redis and NATS.

Each channel delivers a list of messages in order and says how many got through before a
failure, so the deliverer acknowledges exactly those. Redis speaks RESP and NATS its text
protocol over a plain socket: a few lines each, where a client library would be a dependency.
A channel keeps its connection between calls and drops it on any failure; it runs in one
thread at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
from urllib.parse import urlsplit

import orjson

TIMEOUT = 10.0
SIGNATURE_HEADER = "X-NebulaIO-Signature"
"""`sha256=<hex HMAC-SHA256 of the body under the target's secret>`, as GitHub signs its webhooks."""


class DeliveryError(Exception):
    """A target refused or could not be reached; `delivered` messages had got through before."""

    def __init__(self, reason: str, delivered: int = 0):
        super().__init__(reason)
        self.delivered = delivered


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Channel:
    def __init__(self, target: dict):
        self.target = target

    def deliver(self, messages: list[bytes]) -> int:
        """Deliver every message in order; returns how many (all). Raises DeliveryError."""
        try:
            return self._deliver(messages)
        except DeliveryError:
            self.close()
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    def _deliver(self, messages: list[bytes]) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Webhook(_Channel):
    """One POST a message; any 2xx answer is a delivery. The body is signed when the target has a secret."""

    def __init__(self, target: dict):
        super().__init__(target)
        self._url = urlsplit(target["endpoint"])
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            url = self._url
            if url.scheme == "https":
                self._connection = http.client.HTTPSConnection(
                    url.hostname, url.port, timeout=TIMEOUT, context=ssl.create_default_context()
                )
            else:
                self._connection = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
        return self._connection

    def _deliver(self, messages: list[bytes]) -> int:
        path = (self._url.path or "/") + (f"?{self._url.query}" if self._url.query else "")
        secret = self.target.get("secret")
        for delivered, body in enumerate(messages):
            headers = {"Content-Type": "application/json", "User-Agent": "NebulaIO"}
            if secret:
                headers[SIGNATURE_HEADER] = sign(secret, body)
            try:
                connection = self._connect()
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise DeliveryError(f"{type(exc).__name__}: {exc}", delivered) from None
            if not 200 <= response.status < 300:
                raise DeliveryError(f"the webhook answered {response.status} {response.reason}", delivered)
        return len(messages)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _StreamChannel(_Channel):
    """A target spoken to over one TCP connection, read a line at a time."""

    def __init__(self, target: dict):
        super().__init__(target)
        self._socket: socket.socket | None = None
        self._reader = None

    def _open(self):
        if self._socket is None:
            url = urlsplit(self.target["endpoint"])
            self._socket = socket.create_connection((url.hostname, url.port), timeout=TIMEOUT)
            self._reader = self._socket.makefile("rb")
            self._greet()
        return self._socket

    def _greet(self) -> None:
        raise NotImplementedError

    def _line(self) -> bytes:
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise DeliveryError("the target closed the connection")
        return line[:-2]

    def close(self) -> None:
        if self._socket is not None:
            self._reader.close()
            self._socket.close()
            self._socket = self._reader = None


def _resp(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words)


class Redis(_StreamChannel):
    """LPUSH each message onto a list, or PUBLISH it on a channel ("mode"), pipelined."""

    def _greet(self) -> None:
        password = self.target.get("password")
        if password:
            self._socket.sendall(_resp(b"AUTH", (self.target.get("user") or "default").encode(), password.encode()))
            self._reply()

    def _reply(self) -> bytes:
        line = self._line()
        if line.startswith(b"-"):
            raise DeliveryError("redis: " + line[1:].decode(errors="replace"))
        if line.startswith(b"$") and int(line[1:]) >= 0:
            self._reader.read(int(line[1:]) + 2)
        return line

    def _deliver(self, messages: list[bytes]) -> int:
        verb = b"PUBLISH" if self.target.get("mode") == "publish" else b"LPUSH"
        name = self.target["key"].encode()
        self._open().sendall(b"".join(_resp(verb, name, message) for message in messages))
        for delivered in range(len(messages)):
            try:
                self._reply()
            except DeliveryError as exc:
                raise DeliveryError(str(exc), delivered) from None
        return len(messages)


class Nats(_StreamChannel):
    """PUB each message on a subject, then PING: the server's PONG says it took every PUB before it."""

    def _greet(self) -> None:
        if not self._line().startswith(b"INFO "):
            raise DeliveryError("nats: the server did not introduce itself")
        options = {"verbose": False, "pedantic": False, "name": "nebulaio", "lang": "python", "version": "1"}
        if self.target.get("user"):
            options.update(user=self.target["user"], **{"pass": self.target.get("password") or ""})
        self._socket.sendall(b"CONNECT " + orjson.dumps(options) + b"\r\n")

    def _deliver(self, messages: list[bytes]) -> int:
        subject = self.target["subject"].encode()
        sock = self._open()
        sock.sendall(b"".join(b"PUB %s %d\r\n%s\r\n" % (subject, len(message), message) for message in messages))
        sock.sendall(b"PING\r\n")
        while True:
            line = self._line()
            if line == b"PONG":
                return len(messages)
            if line == b"PING":
                sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise DeliveryError("nats: " + line[5:].decode(errors="replace"))


CHANNELS = {"webhook": Webhook, "redis": Redis, "nats": Nats}


def open_channel(target: dict) -> _Channel:
    return CHANNELS[target["kind"]](target)
