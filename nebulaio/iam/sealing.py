"""Secret keys sealed at rest with a key derived from the cluster secret.

SigV4 proves a request with an HMAC keyed by the plain secret, so the server must be able to
recover it: a one-way hash (as for passwords) cannot work. The secret is instead encrypted
before its command is proposed, so neither the raft log nor the replica ever holds it in
the clear, and no API returns it: only the signature check unseals it.

The construction uses the standard library only: a keystream of HMAC-SHA256(encryption key,
nonce | counter) blocks XORed with the secret, then HMAC-SHA256(authentication key, nonce |
ciphertext) as the tag (encrypt-then-MAC). Both keys are HMAC-SHA256 derivations of the
cluster secret under distinct labels; every node of a cluster shares that secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

NONCE_SIZE = 16
TAG_SIZE = 32
BLOCK = hashlib.sha256().digest_size
PREFIX = "v1:"


class SealError(ValueError):
    """A sealed value that this cluster secret did not seal, or that was altered."""


class Sealer:
    __slots__ = ("_encryption_key", "_authentication_key")

    def __init__(self, cluster_secret: str):
        root = cluster_secret.encode()
        self._encryption_key = hmac.digest(root, b"nebulaio iam secret encryption", "sha256")
        self._authentication_key = hmac.digest(root, b"nebulaio iam secret authentication", "sha256")

    def _keystream(self, nonce: bytes, size: int) -> bytes:
        blocks = (size + BLOCK - 1) // BLOCK
        return b"".join(
            hmac.digest(self._encryption_key, nonce + n.to_bytes(4, "big"), "sha256") for n in range(blocks)
        )[:size]

    def seal(self, secret: str) -> str:
        plain = secret.encode()
        nonce = os.urandom(NONCE_SIZE)
        cipher = bytes(a ^ b for a, b in zip(plain, self._keystream(nonce, len(plain)), strict=True))
        tag = hmac.digest(self._authentication_key, nonce + cipher, "sha256")
        return PREFIX + base64.b64encode(nonce + cipher + tag).decode()

    def unseal(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SealError("unknown sealing format")
        raw = base64.b64decode(sealed[len(PREFIX) :])
        nonce, cipher, tag = raw[:NONCE_SIZE], raw[NONCE_SIZE:-TAG_SIZE], raw[-TAG_SIZE:]
        expected = hmac.digest(self._authentication_key, nonce + cipher, "sha256")
        if len(raw) < NONCE_SIZE + TAG_SIZE or not hmac.compare_digest(tag, expected):
            raise SealError("the sealed secret does not verify")
        return bytes(a ^ b for a, b in zip(cipher, self._keystream(nonce, len(cipher)), strict=True)).decode()
