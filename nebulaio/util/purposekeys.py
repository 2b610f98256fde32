"""One key per use of a shared secret, derived with HKDF-SHA256 (RFC 5869), and the key rings
that let a secret be rotated while a cluster runs.

The cluster secret roots raft, gossip, peer signing, IAM secret sealing and the default
object-encryption master key; the admin secret roots the Admin API's tokens, the console's
session cookies and CSRF tokens, and the seal of the address the console passes on. Each use takes
the key HKDF derives for it (a distinct `info`), never the secret itself, so a key learnt from
one use (a raft capture, a gossip packet, a sealed record) opens nothing of another.

A key ring holds a purpose's key for each secret a node accepts: the first secret's key signs
and seals, every key is accepted. Rotating a secret on a running cluster is then three rolling
restarts (README, "Rotating the cluster secret"): every node accepts the new secret, every node
signs with it, every node drops the old one. Each step keeps every pair of nodes able to talk.

A dropped (retired) cluster secret authenticates nothing between nodes any more, but its
sealing keys still open what was sealed under it (IAM secret keys, object and key-store keys):
`opening_ring` holds them after the keys of the live secrets.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32

RAFT = b"nebulaio raft password v1"
GOSSIP = b"nebulaio gossip seal v1"
PEER_SIGNING = b"nebulaio peer request signing v1"
IAM_SEALING = b"nebulaio iam secret sealing v1"
OBJECT_ENCRYPTION = b"nebulaio object encryption master key v1"
ADMIN_TOKENS = b"nebulaio admin token signing v1"
CONSOLE_SESSION = b"nebulaio console session sealing v1"
CONSOLE_CSRF = b"nebulaio console csrf v1"
CLIENT_ADDRESS = b"nebulaio console client address v1"


def derive(secret: str | bytes, purpose: bytes) -> bytes:
    """The 256-bit key of one purpose (one of the constants above) under one secret."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(raw)


def secret_list(current: str, accepted: str = "") -> list[str]:
    """The secrets a node holds: `current` (signs and seals) first, then the comma-separated
    `accepted` ones (only accepted), without repeats or empty entries."""
    secrets: list[str] = []
    for secret in [current, *accepted.split(",")]:
        secret = secret.strip()
        if secret and secret not in secrets:
            secrets.append(secret)
    return secrets


class KeyRing:
    """The keys of one purpose: `current` signs and seals, every one of `keys` is accepted."""

    __slots__ = ("keys",)

    def __init__(self, keys: Iterable[bytes]):
        self.keys = tuple(keys)
        if not self.keys:
            raise ValueError("a key ring holds at least one key")

    @classmethod
    def of(cls, secrets: Iterable[str | bytes], purpose: bytes) -> KeyRing:
        return cls(derive(secret, purpose) for secret in secrets)

    @property
    def current(self) -> bytes:
        return self.keys[0]


def admin_secrets(config: dict) -> list[str]:
    """The admin secrets of a resolved configuration: `admin_secret` signs, the accepted ones
    (a rotation) only open what they signed."""
    return secret_list(config["admin_secret"], config["admin_secret_accepted"])


class ClusterKeys:
    """The purpose keys of a node's cluster secrets (see `secret_list`) and of its retired ones."""

    __slots__ = ("secrets", "retired")

    def __init__(self, secrets: list[str], retired: Iterable[str] = ()):
        if not secrets:
            raise ValueError("a node holds at least one cluster secret")
        self.secrets = tuple(secrets)
        self.retired = tuple(secret for secret in retired if secret not in self.secrets)

    @classmethod
    def from_config(cls, config: dict, current: str) -> ClusterKeys:
        """`current`: the configured cluster secret, or the one the node generated and keeps."""
        return cls(
            secret_list(current, config["cluster_secret_accepted"]), secret_list("", config["cluster_secret_retired"])
        )

    def ring(self, purpose: bytes) -> KeyRing:
        """What authenticates nodes to each other: the live secrets' keys."""
        return KeyRing.of(self.secrets, purpose)

    def opening_ring(self, purpose: bytes) -> KeyRing:
        """What seals data at rest: the current key seals, the live and retired secrets' keys open."""
        return KeyRing.of(self.secrets + self.retired, purpose)

    def raft_passwords(self) -> list[str]:
        """PySyncObj's passwords, the current one first (it derives its own Fernet key from each)."""
        return [key.hex() for key in self.ring(RAFT).keys]
