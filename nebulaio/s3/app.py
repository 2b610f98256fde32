"""The S3 API on :9000: one Falcon sink that classifies, authenticates and dispatches.

Every response carries x-amz-request-id; every failure is S3's XML error document; no
traceback ever reaches a client.
"""

from __future__ import annotations

import logging
import time

import falcon

from nebulaio.cluster.ipc import (
    BODY_HELD,
    BODY_WANTED,
    COMMIT_WANTED,
    COMMITTED,
    ON_LOOP,
    READ_FENCED,
    THREAD_WANTED,
)
from nebulaio.engine.errors import S3Error
from nebulaio.engine.objects import ObjectLayer
from nebulaio.iam.service import IamService
from nebulaio.s3 import (
    access,
    acl,
    bucketlogging,
    buckets,
    copy,
    cors,
    delete,
    encryption,
    lifecycle,
    listing,
    multipart,
    notification,
    objectlock,
    objects,
    ownership,
    policy,
    post,
    publicaccess,
    sigv4,
    tagging,
    versioning,
    xml,
)
from nebulaio.s3.accesslog import AccessLog
from nebulaio.s3.body import limit_silence
from nebulaio.s3.request import S3Request
from nebulaio.s3.router import PREFLIGHT, classify
from nebulaio.util.clientaddress import TrustedProxies
from nebulaio.util.ids import request_id
from nebulaio.util.metrics import RequestMetrics

log = logging.getLogger("nebulaio.s3")

XML_TYPE = "application/xml"
# The client stopped sending or broke off: what is left of its body will not come in time.
BROKEN_BODY_ERRORS = frozenset(("RequestTimeout", "IncompleteBody"))

# A handler answers in `resp`, or returns a write (see _Exchange) whose answer waits for its commit.
HANDLERS = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "HeadBucket": buckets.head_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "ListObjects": listing.list_objects_v1,
    "ListObjectsV2": listing.list_objects_v2,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "GetObjectAttributes": objects.get_object_attributes,
    "DeleteObject": objects.delete_object,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": multipart.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
    "CopyObject": copy.copy_object,
    "DeleteObjects": delete.delete_objects,
    "PutBucketVersioning": versioning.put_bucket_versioning,
    "GetBucketVersioning": versioning.get_bucket_versioning,
    "ListObjectVersions": versioning.list_object_versions,
    "PutObjectTagging": tagging.put_object_tagging,
    "GetObjectTagging": tagging.get_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    "PutBucketCors": cors.put_bucket_cors,
    "GetBucketCors": cors.get_bucket_cors,
    "DeleteBucketCors": cors.delete_bucket_cors,
    PREFLIGHT: cors.preflight,
    "PostObject": post.post_object,
    "PutBucketLifecycleConfiguration": lifecycle.put_bucket_lifecycle_configuration,
    "GetBucketLifecycleConfiguration": lifecycle.get_bucket_lifecycle_configuration,
    "DeleteBucketLifecycle": lifecycle.delete_bucket_lifecycle,
    "PutObjectLockConfiguration": objectlock.put_object_lock_configuration,
    "GetObjectLockConfiguration": objectlock.get_object_lock_configuration,
    "PutObjectRetention": objectlock.put_object_retention,
    "GetObjectRetention": objectlock.get_object_retention,
    "PutObjectLegalHold": objectlock.put_object_legal_hold,
    "GetObjectLegalHold": objectlock.get_object_legal_hold,
    "PutBucketPolicy": policy.put_bucket_policy,
    "GetBucketPolicy": policy.get_bucket_policy,
    "DeleteBucketPolicy": policy.delete_bucket_policy,
    "GetBucketPolicyStatus": policy.get_bucket_policy_status,
    "GetBucketAcl": acl.get_bucket_acl,
    "PutBucketAcl": acl.put_bucket_acl,
    "GetObjectAcl": acl.get_object_acl,
    "PutObjectAcl": acl.put_object_acl,
    "PutPublicAccessBlock": publicaccess.put_public_access_block,
    "GetPublicAccessBlock": publicaccess.get_public_access_block,
    "DeletePublicAccessBlock": publicaccess.delete_public_access_block,
    "PutBucketOwnershipControls": ownership.put_bucket_ownership_controls,
    "GetBucketOwnershipControls": ownership.get_bucket_ownership_controls,
    "DeleteBucketOwnershipControls": ownership.delete_bucket_ownership_controls,
    "PutBucketEncryption": encryption.put_bucket_encryption,
    "GetBucketEncryption": encryption.get_bucket_encryption,
    "DeleteBucketEncryption": encryption.delete_bucket_encryption,
    "PutBucketLogging": bucketlogging.put_bucket_logging,
    "GetBucketLogging": bucketlogging.get_bucket_logging,
    "PutBucketNotificationConfiguration": notification.put_bucket_notification_configuration,
    "GetBucketNotificationConfiguration": notification.get_bucket_notification_configuration,
}
UNCLASSIFIED = "Unclassified"
"""What the request metrics call a request refused before it was found to be an operation."""
OPERATIONS = (*HANDLERS, UNCLASSIFIED)
# Operations whose answer's length is the size of the object, for the access log.
OBJECT_READS = frozenset(("GetObject", "HeadObject"))
LOOP_METHODS = frozenset(("GET", "HEAD"))
PARKED = "nebulaio.s3.parked"
# Operations whose request carries no signature to check here: a browser form signs its
# policy in the body (the handler authenticates it), and a CORS preflight is never signed.
SELF_AUTHENTICATED = frozenset(("PostObject", PREFLIGHT))


class _Exchange:
    """One request's way through the app, kept in its environ (PARKED) while the worker's loop
    reads its held body or commits its write: the handler's write is (proposal, answer), where
    `answer(resp, value)` renders the value the proposal settles to."""

    __slots__ = ("started", "rid", "request", "operation", "write")

    def __init__(self):
        self.started = time.perf_counter()
        self.rid = request_id()
        self.request: S3Request | None = None
        self.operation: str | None = None
        self.write = None


class S3Api:
    """The composition of what S3 handlers need; handlers receive it as their first argument."""

    __slots__ = (
        "layer",
        "iam",
        "region",
        "domains",
        "request_timeout",
        "cors",
        "metrics",
        "sse_c_over_http",
        "access_log",
        "proxies",
        "lifecycle_day_seconds",
    )

    def __init__(
        self,
        layer: ObjectLayer,
        iam: IamService,
        config: dict,
        metrics: RequestMetrics,
        access_log: AccessLog,
        proxies: TrustedProxies,
    ):
        self.layer = layer
        self.proxies = proxies
        self.access_log = access_log
        self.metrics = metrics
        self.iam = iam
        self.region = config["region"]
        self.domains = tuple(d.strip().lower() for d in config["domain"].split(",") if d.strip())
        self.request_timeout = config["request_timeout"]
        self.sse_c_over_http = config["sse_c_over_http"]
        self.lifecycle_day_seconds = config["lifecycle_day_seconds"]
        self.cors = cors.CorsRules()

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_):
        environ = req.env
        exchange = environ.pop(PARKED, None) or _Exchange()
        rid = exchange.rid
        headers = resp._headers  # PERF: falcon's own header dict, skipping set_header's checks
        headers["x-amz-request-id"] = rid
        headers["x-amz-id-2"] = rid
        error_code = None
        try:
            if self._advance(exchange, environ, resp):
                return  # the worker goes on with it: on a thread, or once its loop has done its part
        except S3Error as error:
            error_code = error.code
            self.render_error(exchange.request, resp, error, rid)
        except Exception:
            log.exception("unhandled error in %s %s", req.method, environ.get("RAW_URI"))
            error_code = "InternalError"
            self.render_error(exchange.request, resp, S3Error("InternalError"), rid)
        request, operation = exchange.request, exchange.operation
        if request is not None and request.bucket is not None and "origin" in request.headers:
            self._add_cors_headers(request, resp, operation)
        elapsed = time.perf_counter() - exchange.started
        received, sent = _sizes(environ, resp)
        self.metrics.observe(operation or UNCLASSIFIED, resp.status_code, elapsed, received, sent)
        if request is not None and request.bucket is not None:
            self._record(request, resp, operation, error_code, received, sent, elapsed)

    def _advance(self, exchange: _Exchange, environ: dict, resp: falcon.Response) -> bool:
        """Take the request as far as it can go now. True: the worker goes on with it, on a
        thread (THREAD_WANTED), or on its loop once it has read the held body or committed the
        write, with the exchange kept in PARKED."""
        on_loop = ON_LOOP in environ
        if exchange.request is None:
            request = exchange.request = S3Request(
                environ, exchange.rid, self.domains, self.proxies.client_address(environ)
            )
            operation = exchange.operation = classify(
                request.method, request.bucket, request.key, request.query, request.headers
            )
            if on_loop and not self._stays_on_loop(request, operation):
                environ[THREAD_WANTED] = True
                return True
            if operation in SELF_AUTHENTICATED:
                self._fence(request)
            else:
                self.authenticate(request)
                access.authorize(self, request, operation)
            if BODY_HELD in environ:
                # Authorized: now the client may send the body, which the worker reads whole.
                limit_silence(environ, self.request_timeout)
                environ[PARKED] = exchange
                environ[BODY_WANTED] = True
                return True
        if exchange.write is None:
            write = exchange.write = HANDLERS[exchange.operation](self, exchange.request, resp)
            if write is None:
                return False
            proposal, answer = write
            if on_loop:
                environ[PARKED] = exchange
                environ[COMMIT_WANTED] = proposal
                return True
            answer(resp, self.layer.commit(proposal))
        else:
            proposal, answer = exchange.write
            answer(resp, proposal.settle(environ.pop(COMMITTED)))
        return False

    def _stays_on_loop(self, request: S3Request, operation: str) -> bool:
        """Whether a request the worker runs on its event loop can stay there: a read, or a write
        whose work before its commit blocks on nothing (its commit is left to the loop)."""
        if operation == "DeleteObject":
            return True
        if operation == "PutObject":
            return self.layer.keeps_inline(int(request.environ.get("CONTENT_LENGTH") or 0))
        return request.method in LOOP_METHODS

    def _record(self, request, resp, operation, error_code, received, sent, elapsed) -> None:
        """Queue the request's access log record; a failure to record never changes the answer."""
        object_size = int(resp.content_length or 0) if operation in OBJECT_READS else received
        try:
            self.access_log.record(request, operation, resp.status_code, error_code, sent, object_size, elapsed)
        except Exception:
            log.exception("access log record of %s %s", request.method, request.raw_path)

    def _add_cors_headers(self, request: S3Request, resp: falcon.Response, operation: str | None) -> None:
        """A cross-origin request's answer, success or error, carries the matching rule's headers."""
        if operation == PREFLIGHT:
            return
        try:
            cors.annotate(self, request, resp)
        except Exception:
            log.exception("CORS headers for %s %s", request.method, request.raw_path)

    def authenticate(self, request: S3Request) -> None:
        """Verify the signature on this replica, then fence, so a refused request costs no raft round.

        Keys, policies and buckets are read as strongly as the handler's data: a key unknown
        here may have been created elsewhere just before, so it is looked up again after the
        fence; and when the fence brought IAM changes (a key deleted or disabled elsewhere),
        the request is authenticated again against them.
        """
        if request.environ.get(READ_FENCED) or not self.layer.fenced:
            self._verify(request)
            return
        revision = self.iam.revision()
        try:
            self._verify(request)
        except S3Error as error:
            if error.code != "InvalidAccessKeyId":
                raise
            self.layer.fence()
            self._verify(request)
            return
        self.layer.fence()
        if self.iam.revision() != revision:
            self._verify(request)

    def _fence(self, request: S3Request) -> None:
        if not request.environ.get(READ_FENCED):
            self.layer.fence()

    def _verify(self, request: S3Request) -> None:
        """Verify the signature; an unsigned request is the anonymous principal's."""
        lookups = self.iam.lookups()
        auth = sigv4.authenticate(
            request.method,
            request.raw_path,
            request.raw_query,
            request.headers,
            lookups.secret_for,
            time.time(),
            request.bucket if request.virtual_host else None,
        )
        access.identify(request, lookups, auth)

    def render_error(self, request: S3Request | None, resp: falcon.Response, error: S3Error, rid: str) -> None:
        resource = request.raw_path if request is not None else None
        resp.status = error.status
        resp.content_type = XML_TYPE
        resp.stream = None
        for name, value in error.headers.items():
            resp.set_header(name, value)
        resp.data = xml.error(error.code, error.message, rid, resource, error.fields)
        if error.code in BROKEN_BODY_ERRORS:
            # The rest of the body will not come in time: the worker drops the connection instead
            # of waiting for it (it drops what is left of a small body after any other error).
            resp.set_header("Connection", "close")


def _sizes(environ: dict, resp: falcon.Response) -> tuple[int, int]:
    """Bytes of the request's body and of the response's body, for the metrics.

    NOTE: a request's declared length counts only when it succeeded, so its body was read whole;
    a refused one may declare any length (1e30 included) and send none of it.
    """
    declared = environ.get("CONTENT_LENGTH") or ""
    received = int(declared) if declared.isdigit() and resp.status_code < 300 else 0
    if resp.data is not None:
        return received, len(resp.data)
    if resp.stream is not None:
        return received, int(resp.content_length or 0)
    return received, 0


def create(
    layer: ObjectLayer, iam: IamService, config: dict, metrics: RequestMetrics, proxies: TrustedProxies
) -> falcon.App:
    app = falcon.App(media_type=XML_TYPE)
    app.req_options.strip_url_path_trailing_slash = False
    access_log = AccessLog(layer, config["region"], config["access_log_interval"], config["access_log_records"])
    access_log.start()
    app.add_sink(S3Api(layer, iam, config, metrics, access_log, proxies), prefix="/")
    return app
