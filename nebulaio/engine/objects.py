"""The object layer: S3 semantics without HTTP.

Reads come straight from the LMDB replica; every change is a command submitted to the
supervisor and applied through the raft log. A PUT streams its body to a temp file (or keeps
it in memory up to `inline_threshold` bytes), has the data plane place it (this node's disk,
or the holders in a cluster), then commits. A body kept in memory rides inline in its record
where the data plane keeps small bodies so (a lone node), and is placed like any other in a
cluster.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from nebulaio.cluster.ipc import SupervisorClient, SupervisorUnavailable
from nebulaio.cluster.leasepage import LeasePage
from nebulaio.encryption.keys import DataKeys
from nebulaio.encryption.pages import PageSealer, open_plain, sealed_size
from nebulaio.engine.dataplane import ClusterData, LocalData, Received
from nebulaio.engine.errors import S3Error
from nebulaio.meta.apply import write_condition_failure
from nebulaio.meta.objectlock import LOCK_FIELDS
from nebulaio.meta.versions import is_valid_version, version_of
from nebulaio.storage.integrity import HASH_FIELD
from nebulaio.storage.objects import ObjectStore, TempObject
from nebulaio.util.checksums import new_checksum
from nebulaio.util.ids import now_ms, version_id
from nebulaio.util.timefmt import http_date

log = logging.getLogger("nebulaio.engine")

BODY_CHUNK = 1024 * 1024
DIGEST_BACKLOG = 4
"""Chunks of a body that may wait for its MD5 thread (see ThreadedDigest)."""
COMMIT_TIMEOUT = 30.0
FENCE_TIMEOUT = 10.0
PEERS_MARKER_RECHECK = 0.01
"""Seconds a lone node trusts that it is still alone (see ObjectLayer.fenced): far below the
half second at least that a new voter takes to win an election."""
REOPEN_ATTEMPTS = 5
LOCKED_MESSAGE = "Access Denied because object protected by object lock."


class Payload(Protocol):
    """A request body as the HTTP layer decodes it."""

    size: int | None

    def read(self, size: int) -> bytes: ...

    def require_checksum(self, algorithm: str) -> None:
        """Compute this algorithm's checksum too, refusing a body that names another one."""

    def finish(self, md5_digest: bytes) -> dict:
        """Verify the body once read whole (length, digests); return checksums to keep."""


Refusal = Callable[[], S3Error]
NO_REFUSALS: Mapping[str, Refusal] = {}
# apply answers AccessDenied to an object command only when object lock forbids it.
LOCK_REFUSALS: Mapping[str, Refusal] = {"AccessDenied": lambda: S3Error("AccessDenied", LOCKED_MESSAGE)}


class ThreadedDigest:
    """A body's MD5, computed on a thread of its own while the body is received and written.

    MD5 is the slowest step of a large PUT: 88 ms of a 164 ms 64 MiB PUT here, done in turn
    with receiving and writing. hashlib releases the GIL on large buffers, so on its own
    thread it overlaps them. At most DIGEST_BACKLOG chunks wait for it: a slow hash holds
    the upload back, not memory.
    """

    __slots__ = ("_hasher", "_chunks", "_thread")

    def __init__(self, hasher):
        self._hasher = hasher
        self._chunks: queue.Queue[bytes | None] = queue.Queue(DIGEST_BACKLOG)
        self._thread = threading.Thread(target=self._run, name="body-md5", daemon=True)
        self._thread.start()

    def update(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._hasher.update(chunk)

    def finish(self):
        """The hasher, once every chunk given to it is hashed."""
        self._chunks.put(None)
        self._thread.join()
        return self._hasher


def receive(
    store: ObjectStore, payload: Payload, max_size: int, inline_threshold: int, sealer: PageSealer | None = None
) -> tuple[TempObject | None, bytearray, int, hashlib._Hash]:
    """Read a body whole, hashing it: in memory up to `inline_threshold` bytes, else to a temp file.

    With a `sealer`, what is kept is the sealed pages of the body (the size and MD5 stay the
    plaintext's). Returns (temp file or None, the bytes kept in memory, size, MD5). The
    caller commits or aborts the temp file; it is aborted here if reading fails.
    """
    md5 = hashlib.md5()
    hashing = md5
    memory = bytearray()
    temp = None
    total = 0
    try:
        while True:
            chunk = payload.read(BODY_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_size:
                raise S3Error("EntityTooLarge", MaxSizeAllowed=str(max_size))
            if total > BODY_CHUNK and hashing is md5:
                hashing = ThreadedDigest(md5)
            hashing.update(chunk)
            if sealer is not None:
                chunk = sealer.seal(chunk)
            if temp is None and total <= inline_threshold:
                memory += chunk
                continue
            if temp is None:
                temp = store.new_temp()
                temp.write(memory)
                memory = bytearray()
            temp.write(chunk)
        if sealer is not None:
            last = sealer.finish()
            if temp is None:
                memory += last
            else:
                temp.write(last)
    except BaseException:
        if temp is not None:
            temp.abort()
        raise
    finally:
        if hashing is not md5:
            hashing.finish()
    return temp, memory, total, md5


def settled(result: dict, refusals: Mapping[str, Refusal] = NO_REFUSALS) -> dict:
    """Apply's result of a command when it succeeded; else the S3Error it comes to. `refusals`
    maps a refusal's result code to the error to raise when the plain code is not enough (S3
    names the key in a NoSuchKey, for example)."""
    status = result.get("status")
    if status == "ok":
        return result
    if status == "ServiceUnavailable":
        raise S3Error("ServiceUnavailable", f"The metadata log is unavailable: {result.get('reason')}.")
    refusal = refusals.get(status)
    raise S3Error(status) if refusal is None else refusal()


class Proposal:
    """A write whose work before its commit is done: the command (and inline bytes) to submit,
    and how apply's result becomes the write's answer or S3Error. `ObjectLayer.commit` waits
    for it on the calling thread; an event-loop worker may submit it from its loop instead and
    hand the result to `settle`."""

    __slots__ = ("command", "blob", "settle")
    timeout = COMMIT_TIMEOUT

    def __init__(self, command: dict, blob: bytes | None, settle: Callable[[dict], Any]):
        self.command = command
        self.blob = blob
        self.settle = settle


class ObjectLayer:
    __slots__ = (
        "reader",
        "store",
        "data",
        "supervisor",
        "max_object_size",
        "inline_threshold",
        "_fenced",
        "_peers_marker",
        "_alone_until",
        "read_lease",
        "_bucket_defaults",
        "keys",
    )

    def __init__(
        self,
        reader,
        data: LocalData | ClusterData,
        supervisor: SupervisorClient,
        max_object_size: int,
        inline_threshold: int,
        fenced: bool = False,
        peers_marker: str | None = None,
        bucket_defaults: dict | None = None,
        keys: DataKeys | None = None,
        read_lease: LeasePage | None = None,
    ):
        """`peers_marker`: for a node started alone, the file its supervisor makes once raft
        has another member; until then its reads need no fence. `bucket_defaults`: settings
        every new bucket starts with (Block Public Access, Object Ownership). `keys` makes and
        opens encrypted objects' data keys. `read_lease`: the follower's read lease, which
        stands in for a fence while it is held."""
        self.reader = reader
        self.store: ObjectStore = data.store
        self.data = data
        self.supervisor = supervisor
        self.max_object_size = max_object_size
        self.inline_threshold = inline_threshold
        self._fenced = fenced
        self._peers_marker = peers_marker
        self._alone_until = 0.0
        self.read_lease = read_lease
        self._bucket_defaults = dict(bucket_defaults or {})
        self.keys = keys

    @property
    def fenced(self) -> bool:
        """Whether reads are fenced: strong reads, and raft has (or once had) another member.

        PERF: a lone voter applies before it acknowledges, so its fence would only cost an IPC
        round per request; a stat() at most every PEERS_MARKER_RECHECK tells it apart until
        the marker appears.
        NOTE: the marker is made within a gossip tick of raft gaining a member, long before a
        new voter could win an election and acknowledge writes this replica lacks.
        """
        if self._fenced and self._peers_marker is not None:
            now = time.monotonic()
            if now < self._alone_until:
                return False
            if not os.path.exists(self._peers_marker):
                self._alone_until = now + PEERS_MARKER_RECHECK
                return False
            self._peers_marker = None  # a node that had peers fences from then on
        return self._fenced

    def leased(self) -> bool:
        """Whether a read beginning now needs no fence: this follower holds a read lease and its
        replica has applied every entry it acknowledged (see nebulaio.cluster.lease)."""
        return self.read_lease is not None and self.read_lease.covers()

    def fence(self) -> None:
        """Before a request reads the replica: make it hold every write acknowledged anywhere.

        In a cluster another node may have acknowledged a write this replica has not applied
        yet; the supervisor's fence (a read index shared by concurrent requests) closes that
        gap, or the follower's read lease does at no cost. A lone node applies before it
        acknowledges, so it never needs one.
        """
        if not self.fenced or self.leased():
            return
        try:
            result = self.supervisor.call({"type": "fence"}, timeout=FENCE_TIMEOUT)
        except SupervisorUnavailable as exc:
            raise S3Error("ServiceUnavailable", str(exc)) from exc
        if result.get("status") != "ok":
            raise S3Error("ServiceUnavailable", f"The metadata log is unavailable: {result.get('reason')}.")

    # -- commands -------------------------------------------------------------------------

    def submit(self, command: dict, blob: bytes | None = None, refusals: Mapping[str, Refusal] = NO_REFUSALS) -> dict:
        """Propose a command and wait until it is applied on this node.

        A command raft did not confirm in time is proposed again under its request id (see
        SupervisorClient.submit). `refusals`: see `settled`.
        """
        return settled(self._submitted(command, blob), refusals)

    def _submitted(self, command: dict, blob: bytes | None) -> dict:
        """The supervisor's answer to a command; ServiceUnavailable's when it cannot be reached."""
        try:
            return self.supervisor.submit(command, blob, COMMIT_TIMEOUT)
        except SupervisorUnavailable as exc:
            return {"status": "ServiceUnavailable", "reason": str(exc)}

    def commit(self, proposal: Proposal):
        """Submit a write's command, wait until it is applied here, and return its answer."""
        return proposal.settle(self._submitted(proposal.command, proposal.blob))

    def status(self, detail: bool = False) -> dict:
        """The supervisor's raft status; with `detail`, also its process, memory and disk figures."""
        return self.supervisor.call({"type": "status", "detail": detail}, timeout=5.0)

    # -- buckets --------------------------------------------------------------------------

    def list_buckets(self) -> list[dict]:
        return self.reader.list_buckets()

    def bucket_usage(self) -> dict[str, dict]:
        """{bucket: {"objects", "bytes"}} of the current versions, from the counters apply keeps."""
        return self.reader.bucket_usage()

    def bucket(self, name: str) -> dict:
        record = self.reader.get_bucket(name)
        if record is None:
            raise S3Error("NoSuchBucket", BucketName=name)
        return record

    def create_bucket(
        self,
        name: str,
        owner: str,
        region: str,
        acl: str | list | None = None,
        object_lock: bool = False,
        ownership: str | None = None,
    ) -> None:
        """Create a bucket `owner` owns; `acl` is its ACL (a canned ACL's name or grants; None:
        private); with `object_lock`, versioned and lockable from the start; `ownership` is its
        Object Ownership (None: the default)."""
        command = {"op": "bucket.create", "bucket": name, "owner": owner, "created": now_ms(), "region": region}
        if acl is not None:
            command["acl"] = acl
        command.update(self.new_bucket_settings(ownership))
        if object_lock:
            command["object_lock"] = True
        self.submit(command)

    def new_bucket_settings(self, ownership: str | None = None) -> dict:
        """The settings a new bucket starts with: the configured defaults, and the Object
        Ownership its creator asks for (None: the default's)."""
        settings = dict(self._bucket_defaults)
        if ownership is not None:
            settings["ownership"] = ownership
        return settings

    def delete_bucket(self, name: str) -> None:
        self.submit({"op": "bucket.delete", "bucket": name})

    def configure_bucket(self, name: str, setting: str, value, refusals: Mapping[str, Refusal] = NO_REFUSALS) -> None:
        """Set one of the bucket's settings (cors, tagging, ...); None removes it."""
        self.submit({"op": "bucket.configure", "bucket": name, "setting": setting, "value": value}, refusals=refusals)

    # -- objects --------------------------------------------------------------------------

    def head(self, bucket: str, key: str, version: str | None = None) -> tuple[dict, bytes | None]:
        """A version's record (the current one when `version` is None) and its inline bytes.

        Raises:
            S3Error: NoSuchKey / NoSuchVersion, with S3's delete marker headers when a delete
                marker hides the key; MethodNotAllowed for a version that is a delete marker.
        """
        if version is None:
            found = self.reader.get_object(bucket, key)
        else:
            check_version(version)
            found = self.reader.get_version(bucket, key, version)
        if found is None:
            self.bucket(bucket)
            if version is not None:
                raise S3Error("NoSuchVersion", Key=key, VersionId=version)
            marker = self.reader.latest_marker(bucket, key)
            raise S3Error("NoSuchKey", headers=None if marker is None else marker_headers(marker), Key=key)
        if found[0].get("marker"):
            headers = dict(marker_headers(found[0]), allow="DELETE", **{"last-modified": http_date(found[0]["mtime"])})
            raise S3Error("MethodNotAllowed", headers=headers, Method="GET", ResourceType="DeleteMarker")
        return found

    def open(self, bucket: str, key: str, version: str | None = None):
        """A version's record and its bytes: inline bytes, or a body (see `dataplane`) to read.

        An overwrite may remove the old file between reading the record and opening it; the
        new record is then read again, so a reader always gets one version whole.
        """
        for _ in range(REOPEN_ATTEMPTS):
            record, inline = self.head(bucket, key, version)
            if record["inline"]:
                return record, inline
            try:
                return record, self.data.open(bucket, key, record["vid"], record)
            except FileNotFoundError:
                continue
        raise S3Error("ServiceUnavailable", "The object is being replaced too quickly; retry.")

    def keeps_inline(self, size: int) -> bool:
        """Whether a body of `size` bytes rides its record's command: placing it moves no bytes,
        and a write of it blocks on nothing but its commit."""
        return size <= self.inline_threshold and self.data.keeps_inline

    def propose_put(
        self,
        bucket: str,
        key: str,
        payload: Payload,
        fields: dict,
        condition: dict | None = None,
        encryption: tuple[bytes, dict] | None = None,
        event: str = "Put",
    ) -> Proposal:
        """Store a body; the proposal commits its record, and its answer is the record. `fields`
        holds the content headers and metadata.

        `condition` ({"if-none-match": "*"} and/or {"if-match": etag}) is decided at apply time.
        `encryption` is (data key, the record's "sse" field) for a body stored sealed; `event`
        names the write in notifications (ObjectCreated:Put, or Post for a form upload).
        """
        self.bucket(bucket)
        self._check_condition(bucket, key, condition)
        size = payload.size
        if size is not None and size > self.max_object_size:
            raise S3Error("EntityTooLarge", ProposedSize=str(size), MaxSizeAllowed=str(self.max_object_size))
        temp = None
        try:
            sealer = None if encryption is None else PageSealer(encryption[0])
            temp, memory, total, md5 = receive(self.store, payload, self.max_object_size, self.inline_threshold, sealer)
            checksums = payload.finish(md5.digest())
            record = dict(
                fields,
                key=key,
                vid=version_id(),
                size=total,
                etag=md5.hexdigest(),
                mtime=now_ms(),
                checksums=checksums,
            )
            seal_fields(record, encryption)
            blob = self._place(bucket, key, record, memory if temp is None else temp)
        except BaseException:
            if temp is not None:  # NOTE: nothing is left to remove once placing consumed it
                temp.abort()
            raise
        return self._proposal(bucket, record, blob, condition, event)

    def copy(
        self,
        source_bucket: str,
        source_key: str,
        source_version: str | None,
        check_source: Callable[[dict], None],
        bucket: str,
        key: str,
        fields: dict | None,
        condition: dict | None = None,
        checksum_algorithm: str | None = None,
        open_source: Callable[[dict], bytes | None] | None = None,
        encryption: tuple[bytes, dict] | None = None,
    ) -> dict:
        """Copy a version of the source (the current one when `source_version` is None) and commit it.

        `check_source(record)` raises when the source's preconditions fail; `fields` replace
        the source's content type, headers and metadata (None keeps them). The bytes are the
        same, so the ETag, checksums and part layout are too; with `checksum_algorithm` the
        checksum is that algorithm's, of the whole copy, computed as its bytes are copied.
        `open_source(record)` gives the source's data key (None: it is plain), and
        `encryption` is the copy's (data key, "sse" field), None for a plain copy: a copy that
        is sealed, or of a sealed source, is decrypted and sealed again as it streams.
        """
        self.bucket(bucket)
        self._check_condition(bucket, key, condition)
        source, body = self.open(source_bucket, source_key, source_version)
        temp = None
        try:
            check_source(source)
            source_data_key = None if open_source is None else open_source(source)
            record = dict(source, key=key, vid=version_id(), mtime=now_ms())
            # the copy is locked as it asks, not as its source, and placed anew
            for field in ("version", "holders", "placed_by", *LOCK_FIELDS):
                record.pop(field, None)
            if fields is not None:
                record.update(fields)
            checksum = None if checksum_algorithm is None else new_checksum(checksum_algorithm)
            if source_data_key is not None or encryption is not None:
                temp = self.store.new_temp()
                plain = read_plain(body, source, source_data_key, 0, source["size"])
                copy_sealed(
                    plain,
                    temp,
                    None if encryption is None else encryption[0],
                    None if checksum is None else checksum.update,
                )
            elif not source["inline"]:
                temp = self.store.new_temp()
                body.copy_to(temp, 0, source["size"], None if checksum is None else checksum.update)
            elif checksum is not None:
                checksum.update(body)
            seal_fields(record, encryption)
            if checksum is not None:
                record.pop("checksum_type", None)
                record.pop("part_checksums", None)
                record["checksums"] = {checksum_algorithm: checksum.b64digest()}
            blob = self._place(bucket, key, record, body if temp is None else temp)
        except BaseException:
            if temp is not None:  # NOTE: nothing is left to remove once placing consumed it
                temp.abort()
            raise
        finally:
            if not source["inline"]:
                body.close()
        return self.commit(self._proposal(bucket, record, blob, condition, "Copy"))

    def _place(self, bucket: str, key: str, record: dict, body: Received) -> bytes | None:
        """Put a new version's received body (consumed) where its record will say; returns the
        bytes to commit inline with it, if the data plane keeps this body inline."""
        if not isinstance(body, TempObject) and self.data.keeps_inline:
            record["inline"] = True
            record.pop(HASH_FIELD, None)  # a copy's source may have had a file
            return bytes(body)
        record["inline"] = False
        record.update(self.data.place(body, bucket, key, record["vid"], record["vid"]))
        return None

    def _check_condition(self, bucket: str, key: str, condition: dict | None) -> None:
        """Refuse a conditional write that would fail now, before any bytes are moved.

        NOTE: only a shortcut; apply decides again on the state the write lands on.
        """
        if not condition:
            return
        found = self.reader.get_object(bucket, key)
        failure = write_condition_failure(None if found is None else found[0], condition)
        if failure is not None:
            raise S3Error(failure, Key=key) if failure == "NoSuchKey" else S3Error(failure)

    def _proposal(self, bucket: str, record: dict, blob: bytes | None, condition: dict | None, event: str) -> Proposal:
        """The commit of a new current version whose bytes are already in place; `event` is how
        notifications name the write (ObjectCreated:<event>). Its answer is the record."""
        command = {"op": "object.put", "bucket": bucket, "record": record, "event": event}
        refusals = NO_REFUSALS
        if condition:
            command["condition"] = condition
            refusals = {"NoSuchKey": lambda: S3Error("NoSuchKey", Key=record["key"])}

        def settle(result: dict) -> dict:
            try:
                settled(result, refusals)
            except S3Error as exc:
                # A timed-out command may still commit: leave its bytes to the start-up sweep.
                if exc.code != "ServiceUnavailable" and not record["inline"]:
                    self.data.discard(bucket, record["key"], record["vid"], record)
                raise
            return with_version(record, result)

        return Proposal(command, blob, settle)

    def update(self, bucket: str, key: str, version: str | None, changes: dict, bypass: bool = False) -> str:
        """Change fields of a version's stored record in place (a None value removes one).

        A retention change is judged by apply against the version's retention as of now;
        `bypass` says the request bypasses governance retention.
        Returns the version id changed (`null` for an unversioned object).
        """
        if version is not None:
            check_version(version)
        result = self.submit(
            {
                "op": "object.update",
                "bucket": bucket,
                "key": key,
                "version": version,
                "changes": changes,
                "now": now_ms(),
                "bypass": bypass,
            },
            refusals={
                **LOCK_REFUSALS,
                "NoSuchKey": lambda: S3Error("NoSuchKey", Key=key),
                "NoSuchVersion": lambda: S3Error("NoSuchVersion", Key=key, VersionId=version),
                "MethodNotAllowed": lambda: S3Error("MethodNotAllowed", Method="PUT", ResourceType="DeleteMarker"),
            },
        )
        return result["version"]

    def set_tags(self, bucket: str, key: str, version: str | None, tags: dict[str, str]) -> str:
        """Replace a version's tag set (None: the current one); an empty set removes it.

        Returns the version id changed.
        """
        return self.update(bucket, key, version, {"tags": tags or None})

    def propose_delete(self, bucket: str, key: str, version: str | None = None, bypass: bool = False) -> Proposal:
        """The deletion of a version, or of the key (a delete marker in a versioned bucket).

        A version object lock holds is refused (AccessDenied); `bypass` says the request
        bypasses governance retention. Its answer is {"version", "marker"} as S3 reports them:
        the version deleted or the marker made.
        """
        if version is not None:
            check_version(version)
        command = {
            "op": "object.delete",
            "bucket": bucket,
            "key": key,
            "version": version,
            "mtime": now_ms(),
            "bypass": bypass,
        }
        return Proposal(command, None, functools.partial(settled, refusals=LOCK_REFUSALS))

    def delete_many(self, bucket: str, objects: list[tuple[str, str | None]], bypass: bool = False) -> list[dict]:
        """Delete every (key, version) in one command (one raft entry); a missing one is not an error.

        Each result is apply's: status "ok", or the code refusing that one (AccessDenied for a
        version object lock holds).
        """
        command = {
            "op": "object.delete_many",
            "bucket": bucket,
            "objects": objects,
            "mtime": now_ms(),
            "bypass": bypass,
        }
        return self.submit(command)["deleted"]

    def list(self, bucket: str, prefix: str, delimiter: str, after: str | None, max_keys: int):
        """The bucket's record and one page of its listing."""
        record = self.bucket(bucket)
        return record, self.reader.list_objects(bucket, prefix, delimiter, after, max_keys)

    def list_versions(
        self, bucket: str, prefix: str, delimiter: str, key: str | None, version: str | None, max_keys: int
    ):
        """The bucket's record and one page of ListObjectVersions."""
        record = self.bucket(bucket)
        if version is not None:
            check_version(version, "version-id-marker")
        return record, self.reader.list_versions(bucket, prefix, delimiter, key, version, max_keys)


def seal_fields(record: dict, encryption: tuple[bytes, dict] | None) -> None:
    """Give a new version's record its encryption fields (or take a copied source's away):
    "sse", and "file_size", the sealed bytes its file holds."""
    if encryption is None:
        record.pop("sse", None)
        record.pop("file_size", None)
        return
    record["sse"] = encryption[1]
    record["file_size"] = sealed_size(record["size"])


def read_plain(body, record: dict, data_key: bytes | None, start: int, length: int):
    """A readable plaintext range of a version's bytes (inline, or a data plane body), sealed or not."""
    if data_key is not None:
        return open_plain(body, record, data_key, start, length)
    if record["inline"]:
        return io.BytesIO(bytes(body[start : start + length]))
    return body.range(start, length)


def copy_sealed(plain, temp: TempObject, key: bytes | None, observe=None) -> int:
    """Stream a readable plaintext into `temp`, sealed under `key` (None: as it is); `observe`
    sees the plaintext. Closes `plain`; returns the plaintext size."""
    sealer = None if key is None else PageSealer(key)
    size = 0
    try:
        while chunk := plain.read(BODY_CHUNK):
            size += len(chunk)
            if observe is not None:
                observe(chunk)
            temp.write(chunk if sealer is None else sealer.seal(chunk))
        if sealer is not None:
            temp.write(sealer.finish())
    finally:
        plain.close()
    return size


def check_version(version: str, argument: str = "versionId") -> None:
    if not is_valid_version(version):
        raise S3Error("InvalidArgument", "Invalid version id specified", ArgumentName=argument, ArgumentValue=version)


def marker_headers(marker: dict) -> dict:
    return {"x-amz-delete-marker": "true", "x-amz-version-id": version_of(marker)}


def with_version(record: dict, result: dict) -> dict:
    """The committed record with the version id apply gave it (none in an unversioned bucket)."""
    if result.get("version") is not None:
        record["version"] = result["version"]
    return record
