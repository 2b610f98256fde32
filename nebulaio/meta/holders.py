"""Which nodes hold each placed file: paged scans for the repair loop, and its one command.

A placed file is a file-backed version (current or noncurrent) or a part of an open upload
whose record names its "holders". The repair loop reads them bucket by bucket in pages,
each page its own short read transaction, and changes a record's holders with

    object.holders  {"bucket", "key", "file", "version" (a version's public id) or
                     "upload_id" and "part" (a part's), "add": node | None,
                     "drop": node | None, "require": [node, ...]}

which applies only while the record still exists and still points at `file` (a version
deleted or a part uploaded again meanwhile answers Gone), and drops a node only while every
node of `require` is still a holder (else PreconditionFailed): two nodes giving up their
copies at once can never leave fewer than the copies each of them counted on.

A record written while its node ran alone names no holders: its file is on that node alone.
It is a placed file too (with `holders` None), and an `add` alone makes its node the one
holder, so a cluster grown around a lone node replicates what it wrote before.
"""

from __future__ import annotations

from typing import NamedTuple

import lmdb

from nebulaio.meta.env import open_databases
from nebulaio.meta.keys import bucket_entries, object_key
from nebulaio.meta.records import OBJECT, PART, UPLOAD
from nebulaio.meta.uploads import open_upload_databases, part_key, parts_prefix, upload_key
from nebulaio.meta.versions import Versions, version_of
from nebulaio.storage.integrity import HASH_FIELD
from nebulaio.storage.objects import file_size

CURRENT, HISTORY, UPLOADS = "current", "history", "uploads"
SOURCES = (CURRENT, HISTORY, UPLOADS)
"""Where placed files are recorded: current versions, noncurrent versions, open uploads' parts."""


class Placed(NamedTuple):
    """A file on holders: what the repair loop needs to judge it and to name it in a command."""

    key: str
    file: str
    size: int
    holders: tuple[str, ...] | None
    """None for a file written while its node ran alone."""
    group: str
    """The name placement ranks nodes by: the version's file, or the upload id its parts share."""
    version: str | None = None
    upload_id: str | None = None
    part: int | None = None
    digest: str | None = None
    """The file's integrity digest, recorded when it was written (None in older records)."""

    def target(self) -> dict:
        """The fields of an object.holders command that name this file's record."""
        if self.upload_id is not None:
            return {"key": self.key, "file": self.file, "upload_id": self.upload_id, "part": self.part}
        return {"key": self.key, "file": self.file, "version": self.version}


def _placed_version(record: dict) -> Placed | None:
    if record.get("marker") or record["inline"]:
        return None
    group = record.get("placed_by", record["vid"])
    return Placed(
        record["key"],
        record["vid"],
        file_size(record),
        _holders(record),
        group,
        version_of(record),
        digest=record.get(HASH_FIELD),
    )


def _holders(record: dict) -> tuple[str, ...] | None:
    return tuple(record["holders"]) if "holders" in record else None


def reassigned(holders: list[str] | None, add: str | None, drop: str | None, require: list[str]) -> list[str] | None:
    """The holders after a node took a copy (`add`) and/or gave one up (`drop`); None when
    `drop` would leave a node of `require` out (the copies the dropping node counted on), or
    would drop from a record that names no holders."""
    if holders is None and drop is not None:
        return None
    changed = [node for node in holders or () if node != drop]
    if add is not None and add not in changed:
        changed.append(add)
    if drop is not None and not all(node in changed for node in require):
        return None
    return changed


class Holders:
    """Paged scans of placed files, and the object.holders command of the applier."""

    __slots__ = ("_env", "_objects", "_parts", "_uploads", "_versions")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        _, self._objects, _ = open_databases(env)
        self._uploads, self._parts = open_upload_databases(env)
        self._versions = Versions(env)

    # -- reads ------------------------------------------------------------------------------

    def page(self, bucket: str, source: str, after: bytes | None, limit: int) -> tuple[list[Placed], bytes | None]:
        """Up to `limit` records of `source` in the bucket after the LMDB key `after`, and the
        key to go on from (None once the source is walked); records without a file are skipped.

        An upload counts as one record however many parts it has (at most 10,000).
        """
        placed: list[Placed] = []
        resume = None
        with self._env.begin() as txn:
            if source == HISTORY:
                entries = self._versions.entries(txn, bucket, after)
            else:
                database = self._objects if source == CURRENT else self._uploads
                entries = bucket_entries(txn.cursor(db=database), bucket, after)
            for count, (lmdb_key, value) in enumerate(entries):
                if count == limit:
                    return placed, resume
                resume = lmdb_key
                if source == UPLOADS:
                    placed.extend(self._upload_parts(txn, bucket, UPLOAD.decode_header(value)))
                elif (found := _placed_version(OBJECT.decode_header(value))) is not None:
                    placed.append(found)
        return placed, None

    def _upload_parts(self, txn: lmdb.Transaction, bucket: str, upload: dict) -> list[Placed]:
        upload_id, key = upload["upload_id"], upload["key"]
        prefix = parts_prefix(bucket, upload_id)
        cursor = txn.cursor(db=self._parts)
        found = []
        if cursor.set_range(prefix):
            for lmdb_key, value in cursor.iternext():
                if not lmdb_key.startswith(prefix):
                    break
                part = PART.decode_header(value)
                found.append(
                    Placed(
                        key,
                        part["file"],
                        file_size(part),
                        _holders(part),
                        upload_id,
                        None,
                        upload_id,
                        part["number"],
                        part.get(HASH_FIELD),
                    )
                )
        return found

    # -- the command (the applier's transaction) ---------------------------------------------

    def handlers(self) -> dict:
        return {"object.holders": self.change}

    def change(self, batch, command: dict, blob: bytes | None) -> dict:
        """Record that a node took or gave up its copy of a file (see the module's docstring)."""
        bucket, key, file = command["bucket"], command["key"], command["file"]
        txn = batch.txn
        upload_id = command.get("upload_id")
        if upload_id is not None:
            lmdb_key = part_key(bucket, upload_id, int(command["part"]))
            stored = txn.get(lmdb_key, db=self._parts)
            if stored is None or txn.get(upload_key(bucket, key, upload_id), db=self._uploads) is None:
                return {"status": "Gone"}
            record, inline, current = PART.decode_header(stored), None, False
        else:
            found = self._find_version(txn, bucket, key, str(command["version"]))
            if found is None:
                return {"status": "Gone"}
            lmdb_key, stored, current = found
            record, inline = OBJECT.decode(stored)
            if record.get("marker") or record["inline"]:
                return {"status": "Gone"}
        if record.get("file", record.get("vid")) != file:
            return {"status": "Gone"}
        holders = reassigned(record.get("holders"), command.get("add"), command.get("drop"), command.get("require", []))
        if holders is None:
            return {"status": "PreconditionFailed"}
        record["holders"] = holders
        if upload_id is not None:
            txn.put(lmdb_key, PART.encode(record), db=self._parts)
        elif current:
            txn.put(lmdb_key, OBJECT.encode(record, inline), db=self._objects)
        else:
            self._versions.rewrite(txn, lmdb_key, OBJECT.encode(record, inline))
        return {"status": "ok", "holders": holders}

    def _find_version(self, txn: lmdb.Transaction, bucket: str, key: str, version: str):
        """(LMDB key, stored value, whether it is the current version) of a version, or None."""
        lmdb_key = object_key(bucket, key)
        stored = txn.get(lmdb_key, db=self._objects)
        if stored is not None and version_of(OBJECT.decode_header(stored)) == version:
            return lmdb_key, stored, True
        found = self._versions.find(txn, bucket, key, version)
        return None if found is None else (*found, False)
