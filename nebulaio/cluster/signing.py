"""Authentication of requests between nodes: HMAC-SHA256 with the cluster secret's peer-signing
key (`purposekeys.PEER_SIGNING`). A request is signed with the current key and accepted under
any key of the receiver's ring, so the secret can be rotated while nodes talk.

The signature covers the method, the path, a timestamp, the sending node's id, the address
it is sent to (the receiver's advertised inter-node address), a nonce and the SHA-256 of the
body (empty for a call without one). So a request cannot be aimed at another file, method or
node, its body cannot be swapped, an old one stops being accepted once its timestamp leaves
the allowed clock skew, and within that window the receiver refuses a nonce it has already
seen (`ReplayCache`): a captured request cannot be sent again, to its node or another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading

from nebulaio.util.shareddb import open_shared

NODE_HEADER = "x-nebulaio-node"
TIME_HEADER = "x-nebulaio-time"
NONCE_HEADER = "x-nebulaio-nonce"
TARGET_HEADER = "x-nebulaio-target"
CONTENT_HASH_HEADER = "x-nebulaio-content-sha256"
SIGNATURE_HEADER = "x-nebulaio-signature"
HASH_WANTED_HEADER = "x-nebulaio-hash-wanted"
"""Asks a holder to answer a read with the SHA-256 of the whole file, signed (`answer_signature`)."""
MAX_CLOCK_SKEW = 120
"""Seconds a request's timestamp may differ from the receiver's clock."""
NONCE_BYTES = 16
NONCE_SHAPE = re.compile(r"[0-9a-f]{32}", re.ASCII)
CONTENT_HASH_SHAPE = re.compile(r"(?:[0-9a-f]{64})?", re.ASCII)


def signature(
    secret: bytes, method: str, path: str, timestamp: str, node: str, target: str, nonce: str, content_hash: str
) -> str:
    message = f"{method}\n{path}\n{timestamp}\n{node}\n{target}\n{nonce}\n{content_hash}"
    return hmac.new(secret, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def sign(
    secret: bytes, method: str, path: str, node: str, now: float, target: str = "", content_hash: str = ""
) -> dict[str, str]:
    """The headers that authenticate one request from `node` to the node whose inter-node
    address is `target`, with a fresh nonce; `content_hash` is the hex SHA-256 of a body the
    receiver must check before keeping it."""
    timestamp = str(int(now))
    nonce = os.urandom(NONCE_BYTES).hex()
    headers = {
        NODE_HEADER: node,
        TIME_HEADER: timestamp,
        TARGET_HEADER: target,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, method, path, timestamp, node, target, nonce, content_hash),
    }
    if content_hash:
        headers[CONTENT_HASH_HEADER] = content_hash
    return headers


def verify(keys: tuple[bytes, ...], method: str, path: str, headers, now: float) -> bool:
    """Whether a request's headers (a mapping of lower-cased names) carry a valid signature
    under one of `keys`.

    No key accepts nothing: a node without one serves no peer. Whether the request
    was meant for the receiver (`TARGET_HEADER`) and whether its nonce was seen before are the
    receiver's to say (see `ReplayCache`).
    """
    node = headers.get(NODE_HEADER)
    timestamp = headers.get(TIME_HEADER)
    nonce = headers.get(NONCE_HEADER)
    content_hash = headers.get(CONTENT_HASH_HEADER, "")
    target = headers.get(TARGET_HEADER, "")
    given = headers.get(SIGNATURE_HEADER)
    if not keys or node is None or timestamp is None or nonce is None or given is None:
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or abs(int(timestamp) - now) > MAX_CLOCK_SKEW:
        return False
    if not NONCE_SHAPE.fullmatch(nonce) or not CONTENT_HASH_SHAPE.fullmatch(content_hash):
        return False
    given_bytes = given.encode("utf-8", "surrogateescape")
    return any(
        hmac.compare_digest(
            signature(key, method, path, timestamp, node, target, nonce, content_hash).encode(), given_bytes
        )
        for key in keys
    )


def answer_signature(secret: bytes, nonce: str, content_hash: str) -> str:
    """Signs a holder's answer: the SHA-256 of the file it serves, bound to the nonce of the
    request it answers, so that neither the hash nor the answer can be swapped on the way."""
    return hmac.new(secret, f"answer\n{nonce}\n{content_hash}".encode(), hashlib.sha256).hexdigest()


def answer_is_signed(keys: tuple[bytes, ...], nonce: str, content_hash: str, given: str) -> bool:
    if not CONTENT_HASH_SHAPE.fullmatch(content_hash) or not content_hash:
        return False
    given_bytes = given.encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(answer_signature(key, nonce, content_hash).encode(), given_bytes) for key in keys)


NONCES_SCHEMA = "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL)"


class ReplayCache:
    """The nonces of the signed requests this node accepted, kept while their signatures are
    valid, in one small SQLite file every HTTP worker of the node shares: a request replayed
    to another worker is refused all the same.

    Bounded by the validity window: a nonce is forgotten once its timestamp is too old to be
    accepted again, and expired nonces are pruned every PRUNE_EVERY insertions. Like the login
    counts, the nonces need no durability (synchronous=OFF): what a power cut forgets is at
    most one window of requests that then fail their timestamp check anyway.
    """

    PRUNE_EVERY = 1000

    def __init__(self, path: str):
        self._lock = threading.Lock()
        self._inserted = 0
        self._db = open_shared(
            path, ("CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL)",)
        )

    def first_use(self, headers, now: float) -> bool:
        """Record a verified request's nonce; False when it was already recorded (a replay)."""
        expires = int(headers[TIME_HEADER]) + MAX_CLOCK_SKEW + 1
        with self._lock:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO nonces (nonce, expires) VALUES (?, ?)", (headers[NONCE_HEADER], expires)
            ).rowcount
            self._inserted += 1
            if self._inserted % self.PRUNE_EVERY == 0:
                self._db.execute("DELETE FROM nonces WHERE expires < ?", (int(now),))
        return inserted == 1
