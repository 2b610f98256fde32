"""Authorization of S3 requests: what a request is to a policy, and the decision before the handler.

The root user is allowed everything after one check. For anyone else the operation's action
and resource come from iam/actions.py, the condition keys from the request, and the
decision from IamService.allows (policies, then ACLs). A copy is also a read of its source,
a CreateBucket that names its Object Ownership also sets it, and DeleteObjects is decided
key by key by its handler.

Whoever asks, root included, may name the account it expects to own the bucket
(x-amz-expected-bucket-owner, and x-amz-source-expected-bucket-owner for a copy's source) by
its canonical id: another owner is refused, so a request meant for one's own bucket never
reaches someone else's bucket of the same name.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nebulaio.engine.errors import S3Error
from nebulaio.iam.actions import (
    ACTIONS,
    BYPASS_GOVERNANCE,
    BYPASS_OPERATIONS,
    OBJECT,
    Action,
    resource_arn,
)
from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.policy import Context, Principal
from nebulaio.iam.service import ANONYMOUS, IamLookups
from nebulaio.s3.copy import COPY_SOURCE, parse_copy_source
from nebulaio.s3.objectlock import bypasses_governance
from nebulaio.s3.ownership import OWNERSHIP_HEADER
from nebulaio.s3.sigv4 import SigningContext
from nebulaio.s3.tagging import TAGGING_HEADER, header_tags
from nebulaio.util.timefmt import iso8601

PER_KEY_OPERATIONS = frozenset(("DeleteObjects",))
"""Operations whose handler authorizes each key it names."""
COPY_OPERATIONS = frozenset(("CopyObject", "UploadPartCopy"))
READ_SOURCE = ACTIONS["GetObject"]
SET_OWNERSHIP = ACTIONS["PutBucketOwnershipControls"]
"""What a CreateBucket that names its Object Ownership also needs, as in AWS."""
LIST_QUERY_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))
PRINCIPAL_TYPES = {"user": "User", "anonymous": "Anonymous", "root": "Account"}
EXPECTED_OWNER = "x-amz-expected-bucket-owner"
EXPECTED_SOURCE_OWNER = "x-amz-source-expected-bucket-owner"


def identify(request, lookups: IamLookups, auth: SigningContext | None) -> None:
    """Record who asks: whoever signed `auth`, or the anonymous principal when nobody did."""
    request.iam = lookups
    request.auth = auth
    if auth is None:
        request.principal = ANONYMOUS
        return
    request.principal = lookups.principal_for(auth.access_key)
    request.user = request.principal.name


def authorize(api, request, operation: str) -> None:
    """Refuse (AccessDenied) a request its principal may not make.

    Raises:
        S3Error: AccessDenied.
    """
    check_expected_owners(api, request, operation)
    if request.principal.kind == "root" or operation in PER_KEY_OPERATIONS:
        return
    action = ACTIONS.get(operation)
    if action is None:
        raise S3Error("AccessDenied")
    version = request.query.get("versionId")
    key = request.key if action.resource == OBJECT else None
    authorize_key(api, request, operation, key, version)
    if operation in COPY_OPERATIONS:
        source_bucket, source_key, source_version = parse_copy_source(request.headers[COPY_SOURCE])
        if not allowed(api, request, READ_SOURCE, source_bucket, source_key, source_version):
            raise S3Error("AccessDenied")
    if operation == "CreateBucket" and OWNERSHIP_HEADER in request.headers:
        if not allowed(api, request, SET_OWNERSHIP, request.bucket, None, None):
            raise S3Error("AccessDenied")


def check_expected_owners(api, request, operation: str) -> None:
    """Refuse (AccessDenied) a request whose bucket, or copy source's bucket, is not owned by
    the canonical id it expects; a bucket that does not exist is left to the handler.

    Raises:
        S3Error: AccessDenied.
    """
    expected = request.headers.get(EXPECTED_OWNER)
    if expected is not None and request.bucket is not None:
        _check_owner(api, request.bucket, expected)
    expected_source = request.headers.get(EXPECTED_SOURCE_OWNER)
    if expected_source is not None and operation in COPY_OPERATIONS:
        _check_owner(api, parse_copy_source(request.headers[COPY_SOURCE])[0], expected_source)


def _check_owner(api, bucket: str, expected: str) -> None:
    record = api.layer.reader.get_bucket(bucket)
    if record is not None and canonical_id(record["owner"]) != expected.strip():
        raise S3Error("AccessDenied")


def authorize_key(api, request, operation: str, key: str | None, version: str | None = None) -> None:
    """Refuse (AccessDenied) one operation on one key of the request's bucket (None: the bucket),
    and its bypass of governance retention when it asks for one.

    For a handler that learns its key from the body (a POST form, DeleteObjects).
    """
    if request.principal.kind == "root":
        return
    action = ACTIONS.get(operation)
    if action is None or not allowed(api, request, action, request.bucket, key, version):
        raise S3Error("AccessDenied")
    if operation in BYPASS_OPERATIONS and bypasses_governance(request):
        bypass = action._replace(name=BYPASS_GOVERNANCE, versioned=BYPASS_GOVERNANCE, permission=None)
        if not allowed(api, request, bypass, request.bucket, key, version):
            raise S3Error("AccessDenied")


def allowed(api, request, action: Action, bucket: str | None, key: str | None, version: str | None) -> bool:
    """Whether the request's principal may do `action` to this bucket / key / version."""
    bucket_record = None if bucket is None else api.layer.reader.get_bucket(bucket)
    found: list = []

    def object_record() -> dict | None:
        if not found:
            if bucket_record is None or key is None:
                found.append(None)
            elif version is None:
                current = api.layer.reader.get_object(bucket, key)
                found.append(None if current is None else current[0])
            else:
                versioned = api.layer.reader.get_version(bucket, key, version)
                found.append(None if versioned is None else versioned[0])
        return found[0]

    def existing_tag(tag: str) -> list[str] | None:
        record = object_record()
        value = None if record is None else (record.get("tags") or {}).get(tag)
        return None if value is None else [value]

    name = action.name if version is None else action.versioned
    context = RequestContext(request, version, existing_tag)
    return api.iam.allows(
        request.principal, action, name, resource_arn(bucket, key), bucket_record, context, object_record, request.iam
    )


class RequestContext(Context):
    """The condition keys of one request (lower-case names, lists of values), each worked out
    the first time a policy asks for it: most requests meet no condition at all."""

    __slots__ = ("_request", "_version", "_existing_tag")

    def __init__(self, request, version: str | None, existing_tag: Callable[[str], list[str] | None]):
        super().__init__({})
        self._request = request
        self._version = version
        self._existing_tag = existing_tag

    def compute(self, key: str) -> list[str] | None:
        compute = REQUEST_KEYS.get(key)
        if compute is not None:
            return compute(self._request, self._version)
        prefix, _, tag = key.partition("/")
        if prefix == "s3:existingobjecttag":
            return self._existing_tag(tag)
        if prefix == "s3:requestobjecttag":
            return _request_tag(self._request, tag)
        return None


def _header_key(header: str) -> Callable:
    def values(request, version):
        value = request.headers.get(header)
        return None if value is None else [value]

    return values


def _query_key(parameter: str) -> Callable:
    def values(request, version):
        value = request.query.get(parameter)
        return None if value is None else [value]

    return values


def _principal_key(field: str) -> Callable:
    def values(request, version):
        principal: Principal = request.principal
        return None if principal.name is None else [getattr(principal, field)]

    return values


REQUEST_KEYS: dict[str, Callable] = {
    "aws:sourceip": lambda request, version: [request.client_address],
    "aws:securetransport": lambda request, version: [
        "true" if request.environ.get("wsgi.url_scheme") == "https" else "false"
    ],
    "aws:principaltype": lambda request, version: [PRINCIPAL_TYPES[request.principal.kind]],
    "aws:username": _principal_key("name"),
    "aws:userid": _principal_key("canonical_id"),
    "aws:principalarn": _principal_key("arn"),
    "aws:referer": _header_key("referer"),
    "aws:useragent": _header_key("user-agent"),
    "s3:x-amz-acl": _header_key("x-amz-acl"),
    "s3:x-amz-server-side-encryption": _header_key("x-amz-server-side-encryption"),
    "s3:x-amz-server-side-encryption-aws-kms-key-id": _header_key("x-amz-server-side-encryption-aws-kms-key-id"),
    "s3:x-amz-server-side-encryption-customer-algorithm": _header_key(
        "x-amz-server-side-encryption-customer-algorithm"
    ),
    **{name: _query_key(parameter) for parameter, name in LIST_QUERY_KEYS},
    "s3:requestobjecttagkeys": lambda request, version: (
        list(header_tags(request)) if TAGGING_HEADER in request.headers else None
    ),
    "s3:versionid": lambda request, version: None if version is None else [version],
    "s3:signatureversion": lambda request, version: (
        None if request.auth is None else ["AWS4-HMAC-SHA256" if request.auth.version == 4 else "AWS"]
    ),
    "s3:authtype": lambda request, version: (
        None if request.auth is None else ["REST-QUERY-STRING" if request.auth.presigned else "REST-HEADER"]
    ),
    "aws:currenttime": lambda request, version: [iso8601(int(time.time() * 1000))],
    "aws:epochtime": lambda request, version: [str(int(time.time()))],
}
"""How each condition key is read from a request."""


def _request_tag(request, tag: str) -> list[str] | None:
    value = header_tags(request).get(tag)
    return None if value is None else [value]
