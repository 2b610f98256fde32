"""The key store's keys in the replica (SSE-KMS), and their commands.

They share the iam database, under their own prefix:

    m \\0 key id -> {"id", "description", "created", "enabled", "versions": [sealed key material]}

Key material is generated and sealed under the master key by the proposer, so neither the log
nor the replica holds it in the clear. Rotating appends a version: objects sealed under an
older one keep opening, new ones use the newest. Keys are disabled, never deleted, so no
object is ever left without its key.
"""

from __future__ import annotations

from collections.abc import Callable

import lmdb

from nebulaio.meta.env import IAM_DB
from nebulaio.meta.records import IAM

KMS_KEY = b"m\0"
MAX_KEY_ID = 256
"""Bytes of the longest key id looked up (ours are UUIDs; LMDB refuses keys past 511 bytes)."""


class KmsReader:
    """Reads key-store keys for workers (each call its own short read transaction)."""

    __slots__ = ("_db", "_env")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._db = env.open_db(IAM_DB, create=False)

    def get(self, key_id: str) -> dict | None:
        if len(key_id.encode()) > MAX_KEY_ID:
            return None
        with self._env.begin(db=self._db) as txn:
            value = txn.get(KMS_KEY + key_id.encode())
        return None if value is None else IAM.decode_header(value)

    def all(self) -> list[dict]:
        """Every key, sorted by id."""
        with self._env.begin(db=self._db) as txn:
            cursor = txn.cursor()
            records = []
            if cursor.set_range(KMS_KEY):
                for key, value in cursor.iternext():
                    if not key.startswith(KMS_KEY):
                        break
                    records.append(IAM.decode_header(value))
            return records


class KmsCommands:
    """Apply handlers of the kms.* commands; every refusal leaves the replica unchanged."""

    __slots__ = ("_db",)

    def __init__(self, env: lmdb.Environment) -> None:
        self._db = env.open_db(IAM_DB, create=False)

    def handlers(self) -> dict[str, Callable]:
        return {"kms.key.create": self._create, "kms.key.enable": self._enable, "kms.key.rotate": self._rotate}

    def _get(self, batch, key_id: str) -> dict | None:
        value = batch.txn.get(KMS_KEY + key_id.encode(), db=self._db)
        return None if value is None else IAM.decode_header(value)

    def _put(self, batch, record: dict) -> dict:
        batch.txn.put(KMS_KEY + record["id"].encode(), IAM.encode(record), db=self._db)
        return {"status": "ok"}

    def _create(self, batch, command: dict, blob) -> dict:
        if self._get(batch, command["id"]) is not None:
            return {"status": "InvalidRequest"}
        record = {
            "id": command["id"],
            "description": command.get("description", ""),
            "created": command["created"],
            "enabled": True,
            "versions": [command["material"]],
        }
        return self._put(batch, record)

    def _enable(self, batch, command: dict, blob) -> dict:
        record = self._get(batch, command["id"])
        if record is None:
            return {"status": "KMS.NotFoundException"}
        record["enabled"] = bool(command["enabled"])
        return self._put(batch, record)

    def _rotate(self, batch, command: dict, blob) -> dict:
        record = self._get(batch, command["id"])
        if record is None:
            return {"status": "KMS.NotFoundException"}
        record["versions"].append(command["material"])
        record["rotated"] = command["rotated"]
        return self._put(batch, record)
