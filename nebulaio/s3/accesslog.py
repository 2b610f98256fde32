"""Server access logs: a record of each request on a bucket whose logging is on, delivered
as objects in AWS's log format under the target bucket and prefix.

Recording sits on every request's path, so it only reads the bucket's setting and appends a
tuple to this worker's queue; a thread of the worker formats the records and delivers them
every `access_log_interval` seconds, or sooner once `access_log_records` are waiting.
Deliveries are written by the engine directly, never as S3 requests, so they are never logged
themselves, not even into a bucket that logs to itself. As in AWS, delivery is best effort:
records still queued when a worker dies are lost (a worker that stops delivers them first).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from urllib.parse import quote

from nebulaio.engine.errors import S3Error
from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.policy import ACCOUNT_ID
from nebulaio.s3.bucketlogging import SETTING
from nebulaio.s3.router import PREFLIGHT

log = logging.getLogger("nebulaio.s3.accesslog")

LOG_CONTENT_TYPE = "text/plain"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NONE = "-"
# A worker holds at most this many objects' worth of records: when deliveries stall (no raft
# quorum, say) further records are dropped and counted rather than filling its memory.
MAX_QUEUED_OBJECTS = 100
# Characters that would end a field early: a quoted field keeps its quotes and spaces apart.
FIELD_UNSAFE = str.maketrans({'"': "%22", "\n": "%0A", "\r": "%0D"})

# The operation field: REST.<method>.<resource>, named as AWS's logs name them.
LOGGED_OPERATIONS = {
    "ListObjects": "REST.GET.BUCKET",
    "ListObjectsV2": "REST.GET.BUCKET",
    "CreateBucket": "REST.PUT.BUCKET",
    "DeleteBucket": "REST.DELETE.BUCKET",
    "HeadBucket": "REST.HEAD.BUCKET",
    "GetBucketLocation": "REST.GET.LOCATION",
    "GetObject": "REST.GET.OBJECT",
    "HeadObject": "REST.HEAD.OBJECT",
    "PutObject": "REST.PUT.OBJECT",
    "DeleteObject": "REST.DELETE.OBJECT",
    "CopyObject": "REST.COPY.OBJECT",
    "PostObject": "REST.POST.OBJECT",
    "DeleteObjects": "REST.POST.MULTI_OBJECT_DELETE",
    "GetObjectAttributes": "REST.GET.OBJECT_ATTRIBUTES",
    "CreateMultipartUpload": "REST.POST.UPLOADS",
    "UploadPart": "REST.PUT.PART",
    "UploadPartCopy": "REST.COPY.PART",
    "CompleteMultipartUpload": "REST.POST.UPLOAD",
    "AbortMultipartUpload": "REST.DELETE.UPLOAD",
    "ListParts": "REST.GET.UPLOAD",
    "ListMultipartUploads": "REST.GET.UPLOADS",
    "ListObjectVersions": "REST.GET.BUCKETVERSIONS",
    "GetBucketVersioning": "REST.GET.VERSIONING",
    "PutBucketVersioning": "REST.PUT.VERSIONING",
    "GetObjectTagging": "REST.GET.OBJECT_TAGGING",
    "PutObjectTagging": "REST.PUT.OBJECT_TAGGING",
    "DeleteObjectTagging": "REST.DELETE.OBJECT_TAGGING",
    "GetBucketTagging": "REST.GET.TAGGING",
    "PutBucketTagging": "REST.PUT.TAGGING",
    "DeleteBucketTagging": "REST.DELETE.TAGGING",
    "GetBucketCors": "REST.GET.CORS",
    "PutBucketCors": "REST.PUT.CORS",
    "DeleteBucketCors": "REST.DELETE.CORS",
    PREFLIGHT: "REST.OPTIONS.PREFLIGHT",
    "GetBucketLifecycleConfiguration": "REST.GET.LIFECYCLE",
    "PutBucketLifecycleConfiguration": "REST.PUT.LIFECYCLE",
    "DeleteBucketLifecycle": "REST.DELETE.LIFECYCLE",
    "GetObjectLockConfiguration": "REST.GET.OBJECT_LOCK_CONFIGURATION",
    "PutObjectLockConfiguration": "REST.PUT.OBJECT_LOCK_CONFIGURATION",
    "GetObjectRetention": "REST.GET.RETENTION",
    "PutObjectRetention": "REST.PUT.RETENTION",
    "GetObjectLegalHold": "REST.GET.LEGAL_HOLD",
    "PutObjectLegalHold": "REST.PUT.LEGAL_HOLD",
    "GetBucketPolicy": "REST.GET.BUCKETPOLICY",
    "PutBucketPolicy": "REST.PUT.BUCKETPOLICY",
    "DeleteBucketPolicy": "REST.DELETE.BUCKETPOLICY",
    "GetBucketPolicyStatus": "REST.GET.POLICY_STATUS",
    "GetBucketAcl": "REST.GET.ACL",
    "PutBucketAcl": "REST.PUT.ACL",
    "GetObjectAcl": "REST.GET.ACL",
    "PutObjectAcl": "REST.PUT.ACL",
    "GetPublicAccessBlock": "REST.GET.PUBLIC_ACCESS_BLOCK",
    "PutPublicAccessBlock": "REST.PUT.PUBLIC_ACCESS_BLOCK",
    "DeletePublicAccessBlock": "REST.DELETE.PUBLIC_ACCESS_BLOCK",
    "GetBucketOwnershipControls": "REST.GET.OWNERSHIP_CONTROLS",
    "PutBucketOwnershipControls": "REST.PUT.OWNERSHIP_CONTROLS",
    "DeleteBucketOwnershipControls": "REST.DELETE.OWNERSHIP_CONTROLS",
    "GetBucketLogging": "REST.GET.LOGGING_STATUS",
    "PutBucketLogging": "REST.PUT.LOGGING_STATUS",
}


def logged_operation(operation: str | None, method: str) -> str:
    """The operation field of a record; a request refused before it was classified is
    REST.<method>.UNKNOWN."""
    return LOGGED_OPERATIONS.get(operation) or f"REST.{method}.UNKNOWN"


def log_time(seconds: float) -> str:
    """[06/Feb/2019:00:00:38 +0000], whatever the process's locale."""
    t = time.gmtime(seconds)
    return f"[{t.tm_mday:02d}/{MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000]"


def _quoted(value: str | None) -> str:
    return f'"{value.translate(FIELD_UNSAFE)}"' if value else NONE


def _number(value: int) -> str:
    return str(value) if value else NONE


def _requester(principal) -> str:
    """The root user by its canonical id, an IAM user by its ARN, an anonymous request as `-`."""
    if principal is None or principal.kind == "anonymous":
        return NONE
    return principal.canonical_id if principal.kind == "root" else principal.arn


class BytesPayload:
    """A log object's bytes as the engine reads a body (see `engine.objects.Payload`)."""

    __slots__ = ("size", "_data", "_offset")

    def __init__(self, data: bytes):
        self.size = len(data)
        self._data = data
        self._offset = 0

    def read(self, size: int) -> bytes:
        chunk = self._data[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk

    def require_checksum(self, algorithm: str) -> None:
        raise S3Error("InvalidRequest", "A log object carries no checksum.")

    def finish(self, md5_digest: bytes) -> dict:
        return {}


class AccessLog:
    """This worker's queue of records and the thread that delivers them."""

    def __init__(self, layer, region: str, interval: float, batch_records: int):
        self.layer = layer
        self.region = region
        self.interval = interval
        self.batch_records = batch_records
        self._queue: deque[tuple] = deque()
        self._dropped = 0
        self._wake = threading.Event()
        self._delivering = threading.Lock()

    def record(
        self,
        request,
        operation: str | None,
        status: int,
        error_code: str | None,
        sent: int,
        object_size: int,
        elapsed: float,
    ) -> None:
        """Queue a record of an answered request, when its bucket logs."""
        bucket = self.layer.reader.get_bucket(request.bucket)
        if bucket is None:
            return
        setting = bucket.get(SETTING)
        if setting is None:
            return
        if len(self._queue) >= MAX_QUEUED_OBJECTS * self.batch_records:
            self._dropped += 1
            return
        environ = request.environ
        headers = request.headers
        connection = environ.get("nebulaio.connection")
        cipher = connection.cipher() if connection is not None else None
        self._queue.append(
            (
                setting,
                bucket["owner"],
                request.bucket,
                time.time(),
                request.client_address,
                request.principal,
                request.request_id,
                logged_operation(operation, request.method),
                request.key,
                f"{request.method} {environ.get('RAW_URI', '')} {environ.get('SERVER_PROTOCOL', '')}",
                status,
                error_code,
                sent,
                object_size,
                elapsed,
                headers.get("referer"),
                headers.get("user-agent"),
                request.query.get("versionId"),
                request.auth,
                cipher,
                headers.get("host"),
            )
        )
        if len(self._queue) >= self.batch_records:
            self._wake.set()

    def start(self) -> None:
        """Deliver from a thread of this worker from now on, and once more as the worker exits."""
        threading.Thread(target=self._run, name="access-log", daemon=True).start()
        atexit.register(self.deliver)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.deliver()
            except Exception:
                log.exception("delivering access logs")

    def deliver(self) -> None:
        """Write every queued record into its target bucket, `batch_records` to an object."""
        with self._delivering:
            records = [self._queue.popleft() for _ in range(len(self._queue))]
            if self._dropped:
                log.warning("dropped %d access log records while deliveries were behind", self._dropped)
                self._dropped = 0
            groups: dict[tuple, list[str]] = {}
            for record in records:
                setting = record[0]
                partition = None
                if setting["partitioned"] is not None:
                    day = time.gmtime(record[3] if setting["partitioned"] == "EventTime" else time.time())
                    partition = (record[2], f"{day.tm_year:04d}/{day.tm_mon:02d}/{day.tm_mday:02d}")
                groups.setdefault((setting["bucket"], setting["prefix"], partition), []).append(format_record(record))
            for (target, prefix, partition), lines in groups.items():
                for start in range(0, len(lines), self.batch_records):
                    self._put(target, self._key(prefix, partition), lines[start : start + self.batch_records])

    def _key(self, prefix: str, partition: tuple[str, str] | None) -> str:
        """prefix + YYYY-mm-DD-HH-MM-SS-UniqueString, or with PartitionedPrefix
        prefix + account/region/bucket/YYYY/mm/DD/ before the same name."""
        name = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime()) + "-" + os.urandom(8).hex().upper()
        if partition is None:
            return prefix + name
        source, day = partition
        return f"{prefix}{ACCOUNT_ID}/{self.region}/{source}/{day}/{name}"

    def _put(self, target: str, key: str, lines: list[str]) -> None:
        try:
            owner = self.layer.bucket(target)["owner"]
            data = "".join(lines).encode()
            fields = {"ctype": LOG_CONTENT_TYPE, "headers": {}, "meta": {}, "owner": owner, "acl": None}
            self.layer.commit(self.layer.propose_put(target, key, BytesPayload(data), fields))
        except S3Error as error:
            log.warning("dropped %d access log records for bucket %s: %s", len(lines), target, error.code)
        except Exception:
            log.exception("dropped %d access log records for bucket %s", len(lines), target)


def format_record(record: tuple) -> str:
    """One line of AWS's server access log format."""
    (
        _,
        owner,
        bucket,
        when,
        remote,
        principal,
        request_id,
        operation,
        key,
        request_uri,
        status,
        error_code,
        sent,
        object_size,
        elapsed,
        referer,
        user_agent,
        version,
        auth,
        cipher,
        host,
    ) = record
    millis = str(max(1, round(elapsed * 1000)))
    if auth is None:
        signature, auth_type = NONE, NONE
    else:
        signature, auth_type = f"SigV{auth.version}", "QueryString" if auth.presigned else "AuthHeader"
    fields = (
        canonical_id(owner),
        bucket,
        log_time(when),
        remote or NONE,
        _requester(principal),
        request_id,
        operation,
        NONE if key is None else quote(key.encode("utf-8", "surrogateescape"), safe="/"),
        _quoted(request_uri),
        str(status),
        error_code or NONE,
        _number(sent),
        _number(object_size),
        millis,
        millis,
        _quoted(referer),
        _quoted(user_agent),
        version or NONE,
        request_id,
        signature,
        cipher[0] if cipher else NONE,
        auth_type,
        host or NONE,
        cipher[1] if cipher else NONE,
        NONE,
        NONE,
    )
    return " ".join(fields) + "\n"
