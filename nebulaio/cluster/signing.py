"""Authentication of requests between nodes: HMAC-SHA256 with the cluster secret.

The signature covers the method, the path, a timestamp and the sending node's id, so a
request cannot be aimed at another file or method, and an old one stops being accepted once
its timestamp leaves the allowed clock skew. Bodies are streams and are not signed.
"""

from __future__ import annotations

import hashlib
import hmac

NODE_HEADER = "x-nebulaio-node"
TIME_HEADER = "x-nebulaio-time"
SIGNATURE_HEADER = "x-nebulaio-signature"
MAX_CLOCK_SKEW = 120
"""Seconds a request's timestamp may differ from the receiver's clock."""


def signature(secret: bytes, method: str, path: str, timestamp: str, node: str) -> str:
    message = f"{method}\n{path}\n{timestamp}\n{node}".encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, path: str, node: str, now: float) -> dict[str, str]:
    """The headers that authenticate one request from `node`."""
    timestamp = str(int(now))
    return {
        NODE_HEADER: node,
        TIME_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, method, path, timestamp, node),
    }


def verify(secret: bytes, method: str, path: str, headers, now: float) -> bool:
    """Whether a request's headers (a mapping of lower-cased names) carry a valid signature.

    An empty secret accepts nothing: a node without one serves no peer.
    """
    node = headers.get(NODE_HEADER)
    timestamp = headers.get(TIME_HEADER)
    given = headers.get(SIGNATURE_HEADER)
    if not secret or node is None or timestamp is None or given is None:
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or abs(int(timestamp) - now) > MAX_CLOCK_SKEW:
        return False
    expected = signature(secret, method, path, timestamp, node)
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))
