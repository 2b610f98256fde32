"""Secret keys sealed at rest with the cluster secret's sealing key (`purposekeys.IAM_SEALING`).

SigV4 proves a request with an HMAC keyed by the plain secret, so the server must be able to
recover it: a one-way hash (as for passwords) cannot work. The secret is instead encrypted
before its command is proposed, so neither the raft log nor the replica ever holds it in
the clear, and no API returns it: only the signature check unseals it.

The construction uses the standard library only: a keystream of HMAC-SHA256(encryption key,
nonce | counter) blocks XORed with the secret, then HMAC-SHA256(authentication key, nonce |
ciphertext) as the tag (encrypt-then-MAC). Both keys are HMAC-SHA256 derivations of the
sealing key under distinct labels; every node of a cluster shares the secret it comes from.

A value sealed under the current cluster secret's key is written "v2:"; each accepted secret's
key opens one. "v1:" values were sealed by earlier releases, with the same labels applied to the
cluster secret itself: they still open (every accepted secret is tried), and are never written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from nebulaio.util.purposekeys import IAM_SEALING, ClusterKeys

NONCE_SIZE = 16
TAG_SIZE = 32
BLOCK = hashlib.sha256().digest_size
PREFIX = "v2:"
LEGACY_PREFIX = "v1:"


class SealError(ValueError):
    """A sealed value that this cluster secret did not seal, or that was altered."""


class _Keys:
    """The encryption and authentication keys under one root."""

    __slots__ = ("encryption", "authentication")

    def __init__(self, root: bytes):
        self.encryption = hmac.digest(root, b"nebulaio iam secret encryption", "sha256")
        self.authentication = hmac.digest(root, b"nebulaio iam secret authentication", "sha256")

    def keystream(self, nonce: bytes, size: int) -> bytes:
        blocks = (size + BLOCK - 1) // BLOCK
        return b"".join(hmac.digest(self.encryption, nonce + n.to_bytes(4, "big"), "sha256") for n in range(blocks))[
            :size
        ]


class Sealer:
    __slots__ = ("_keys", "_legacy_keys")

    def __init__(self, cluster_keys: ClusterKeys):
        self._keys = [_Keys(key) for key in cluster_keys.opening_ring(IAM_SEALING).keys]
        self._legacy_keys = [_Keys(secret.encode()) for secret in cluster_keys.secrets + cluster_keys.retired]

    def seal(self, secret: str) -> str:
        keys = self._keys[0]
        plain = secret.encode()
        nonce = os.urandom(NONCE_SIZE)
        cipher = bytes(a ^ b for a, b in zip(plain, keys.keystream(nonce, len(plain)), strict=True))
        tag = hmac.digest(keys.authentication, nonce + cipher, "sha256")
        return PREFIX + base64.b64encode(nonce + cipher + tag).decode()

    def unseal(self, sealed: str) -> str:
        if sealed.startswith(PREFIX):
            candidates, raw = self._keys, base64.b64decode(sealed[len(PREFIX) :])
        elif sealed.startswith(LEGACY_PREFIX):
            candidates, raw = self._legacy_keys, base64.b64decode(sealed[len(LEGACY_PREFIX) :])
        else:
            raise SealError("unknown sealing format")
        if len(raw) < NONCE_SIZE + TAG_SIZE:
            raise SealError("the sealed secret does not verify")
        nonce, cipher, tag = raw[:NONCE_SIZE], raw[NONCE_SIZE:-TAG_SIZE], raw[-TAG_SIZE:]
        for keys in candidates:
            if hmac.compare_digest(tag, hmac.digest(keys.authentication, nonce + cipher, "sha256")):
                return bytes(a ^ b for a, b in zip(cipher, keys.keystream(nonce, len(cipher)), strict=True)).decode()
        raise SealError("the sealed secret does not verify")
