"""Data keys and the keys that seal them.

Every encrypted object (and multipart upload) has a fresh 256-bit data key; its record keeps
it only sealed (AES-256-GCM, a random nonce, the object's mode as associated data):

- SSE-S3 (AES256): under the master key (`master_keys`: configured, else derived from the
  cluster secret; every node of a cluster shares it), so the log and the replica never hold a
  usable data key.
- SSE-C: under the customer's key, which is never stored; only its MD5 is, to answer with. A
  wrong key fails to unseal the data key, so no other hash of the key is needed to check it.
- SSE-KMS (aws:kms): under a version of a key-store key (see `kms`), with the encryption
  context as associated data; with a bucket key, under a key derived from that key version
  for the bucket, as AWS's bucket keys are one derived key per bucket.

The master key is a ring: the first key seals, every key opens, so a master key (or the
cluster secret it derives from) can be rotated and what the older one sealed still opens.
A record does not name its master key: opening tries each (an AES-GCM tag check apiece).

The records hold {"mode", "key" (sealed), and "kms_key", "kms_version", "context",
"bucket_key" (aws:kms) or "key_md5" (SSE-C)}; a multipart object adds its parts' "salts".
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nebulaio.engine.errors import S3Error
from nebulaio.iam.policy import ACCOUNT_ID
from nebulaio.util.purposekeys import OBJECT_ENCRYPTION, ClusterKeys, KeyRing, derive, secret_list

SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
SSE_C = "SSE-C"
KEY_BYTES = 32
NONCE_BYTES = 12
DEFAULT_KMS_KEY = "aws/s3"
"""The key an aws:kms request naming none uses: derived from the master key, always enabled."""
KMS_ARN = f"arn:aws:kms::{ACCOUNT_ID}:"
WRONG_KEY_MESSAGE = "The provided customer key does not match the key the object was encrypted with."


def kms_key_arn(key_id: str) -> str:
    """The ARN a key-store key is answered by (the default key's is its alias's)."""
    return f"{KMS_ARN}alias/{key_id}" if key_id == DEFAULT_KMS_KEY else f"{KMS_ARN}key/{key_id}"


class UnsealError(ValueError):
    """A sealed key that this key did not seal, or that was altered."""


def seal(wrapping_key: bytes, secret: bytes, context: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(wrapping_key).encrypt(nonce, secret, context)).decode()


def unseal(wrapping_key: bytes, sealed: str, context: bytes) -> bytes:
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(wrapping_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
    except InvalidTag:
        raise UnsealError("the sealed key does not verify") from None


LEGACY_MASTER_LABEL = b"nebulaio object encryption master key"
"""Earlier releases' master key was HMAC-SHA256(cluster secret, this label): still opens, never seals."""


def master_keys(configured: str, cluster_keys: ClusterKeys) -> KeyRing:
    """The master keys, the sealing one first: the configured ones (`encryption_master_keys`,
    newest first), then the cluster secrets' object-encryption keys (live, then retired), then
    earlier releases'."""
    keys = [derive(key, OBJECT_ENCRYPTION) for key in secret_list("", configured)]
    keys += cluster_keys.opening_ring(OBJECT_ENCRYPTION).keys
    old_secrets = cluster_keys.secrets + cluster_keys.retired
    keys += [hmac.digest(secret.encode(), LEGACY_MASTER_LABEL, "sha256") for secret in old_secrets]
    return KeyRing(dict.fromkeys(keys))


def context_bytes(context: dict) -> bytes:
    return orjson.dumps(context, option=orjson.OPT_SORT_KEYS)


class DataKeys:
    """Makes a new object's data key and opens an existing one's, in each mode.

    `kms_keys(key_id)` returns a key-store key's record (None when there is none).
    """

    __slots__ = ("_master", "_kms_keys")

    def __init__(self, master: KeyRing, kms_keys):
        self._master = master
        self._kms_keys = kms_keys

    def new(self, wanted: dict, bucket: str) -> tuple[bytes, dict]:
        """A fresh data key and the record's "sse" field for `wanted` (see s3.encryption)."""
        data_key = os.urandom(KEY_BYTES)
        mode = wanted["mode"]
        if mode == SSE_C:
            sse = {"mode": mode, "key_md5": wanted["key_md5"]}
            sse["key"] = seal(wanted["customer_key"], data_key, mode.encode())
        elif mode == SSE_S3:
            sse = {"mode": mode, "key": seal(self._master.current, data_key, mode.encode())}
        else:
            key_id = wanted.get("kms_key") or DEFAULT_KMS_KEY
            version = self._usable_kms_key(key_id)[1]
            sse = {
                "mode": mode,
                "kms_key": key_id,
                "kms_version": version,
                "context": wanted.get("context") or {},
                "bucket_key": bool(wanted.get("bucket_key")),
            }
            # A key-store key's version opens under the master key that sealed it, maybe an older one.
            try:
                wrapping_key = self._under_a_master_key(lambda master: self._kms_wrapping_key(sse, bucket, master))
            except UnsealError:
                raise S3Error("InternalError", "The key-store key was sealed under another master key.") from None
            sse["key"] = seal(wrapping_key, data_key, context_bytes(sse["context"]))
        return data_key, sse

    def open(self, sse: dict, customer_key: bytes | None, bucket: str) -> bytes:
        """The data key of an object (or upload) whose record holds `sse`.

        Raises:
            S3Error: AccessDenied for a customer key that is not the object's; KMS.DisabledException
                for a disabled key-store key; InternalError for a record this cluster did not seal.
        """
        mode = sse["mode"]
        try:
            if mode == SSE_C:
                try:
                    return unseal(customer_key, sse["key"], mode.encode())
                except UnsealError:
                    raise S3Error("AccessDenied", WRONG_KEY_MESSAGE) from None
            if mode == SSE_S3:
                return self._under_a_master_key(lambda master: unseal(master, sse["key"], mode.encode()))
            self._usable_kms_key(sse["kms_key"])
            context = context_bytes(sse["context"])
            return self._under_a_master_key(
                lambda master: unseal(self._kms_wrapping_key(sse, bucket, master), sse["key"], context)
            )
        except UnsealError:
            raise S3Error("InternalError", "The object's key was sealed under another master key.") from None

    def check_kms_key(self, key_id: str) -> None:
        """Raises S3Error unless the key store has the key, enabled."""
        self._usable_kms_key(key_id)

    def new_kms_material(self, key_id: str) -> str:
        """A new version of a key-store key's material, sealed for its record."""
        return seal(self._master.current, os.urandom(KEY_BYTES), f"kms:{key_id}".encode())

    def _usable_kms_key(self, key_id: str) -> tuple[dict | None, int]:
        """The key-store key's record and its current version (the default key has no record)."""
        if key_id == DEFAULT_KMS_KEY:
            return None, 0
        record = self._kms_keys(key_id)
        if record is None:
            raise S3Error("KMS.NotFoundException", f"Key '{key_id}' does not exist.")
        if not record["enabled"]:
            raise S3Error("KMS.DisabledException", f"Key '{key_id}' is disabled.")
        return record, len(record["versions"]) - 1

    def _under_a_master_key(self, opening: Callable[[bytes], bytes]) -> bytes:
        """What `opening` opens under the first master key that opens it."""
        for master in self._master.keys:
            try:
                return opening(master)
            except UnsealError:
                continue
        raise UnsealError("no master key opens the sealed key")

    def _kms_wrapping_key(self, sse: dict, bucket: str, master: bytes) -> bytes:
        """Raises UnsealError when `master` did not seal the key-store key's version."""
        key_id = sse["kms_key"]
        if key_id == DEFAULT_KMS_KEY:
            material = hmac.digest(master, f"kms:{DEFAULT_KMS_KEY}".encode(), "sha256")
        else:
            record = self._kms_keys(key_id)
            material = unseal(master, record["versions"][sse["kms_version"]], f"kms:{key_id}".encode())
        if sse.get("bucket_key"):
            return hmac.digest(material, f"bucket:{bucket}".encode(), "sha256")
        return material
