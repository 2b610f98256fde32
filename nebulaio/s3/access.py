"""Authorization of S3 requests: what a request is to a policy, and the decision before the handler.

The root user is allowed everything after one check. For anyone else the operation's action
and resource come from iam/actions.py, the condition keys from the request, and the
decision from IamService.allows (policies, then ACLs). A copy is also a read of its source,
and DeleteObjects is decided key by key by its handler.
"""

from __future__ import annotations

import time

from nebulaio.engine.errors import S3Error
from nebulaio.iam import acl
from nebulaio.iam.actions import (
    ACTIONS,
    BYPASS_GOVERNANCE,
    BYPASS_HEADER,
    BYPASS_OPERATIONS,
    OBJECT,
    Action,
    resource_arn,
)
from nebulaio.iam.policy import Context, Principal
from nebulaio.s3.copy import COPY_SOURCE, parse_copy_source
from nebulaio.s3.tagging import TAGGING_HEADER, header_tags
from nebulaio.util.timefmt import iso8601

PER_KEY_OPERATIONS = frozenset(("DeleteObjects",))
"""Operations whose handler authorizes each key it names."""
COPY_OPERATIONS = frozenset(("CopyObject", "UploadPartCopy"))
READ_SOURCE = ACTIONS["GetObject"]
LIST_QUERY_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))
PRINCIPAL_TYPES = {"user": "User", "anonymous": "Anonymous", "root": "Account"}


def authorize(api, request, operation: str) -> None:
    """Refuse (AccessDenied) a request its principal may not make.

    Raises:
        S3Error: AccessDenied.
    """
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
    if operation in BYPASS_OPERATIONS and request.headers.get(BYPASS_HEADER, "").lower() == "true":
        bypass = action._replace(name=BYPASS_GOVERNANCE, versioned=BYPASS_GOVERNANCE, permission=None)
        if not allowed(api, request, bypass, request.bucket, key, version):
            raise S3Error("AccessDenied")


def authorize_key(api, request, operation: str, key: str | None, version: str | None = None) -> None:
    """Refuse (AccessDenied) one operation on one key of the request's bucket (None: the bucket).

    For a handler that learns its key from the body (a POST form, DeleteObjects).
    """
    if request.principal.kind == "root":
        return
    action = ACTIONS.get(operation)
    if action is None or not allowed(api, request, action, request.bucket, key, version):
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

    def object_grants() -> list | None:
        record = object_record()
        if record is None:
            return None
        return acl.grants_of(record.get("acl"), record.get("owner"), bucket_record["owner"])

    def existing_tag(tag: str) -> list[str] | None:
        record = object_record()
        value = None if record is None else (record.get("tags") or {}).get(tag)
        return None if value is None else [value]

    name = action.name if version is None else action.versioned
    context = request_context(request, version, existing_tag)
    return api.iam.allows(
        request.principal, action, name, resource_arn(bucket, key), bucket_record, context, object_grants, request.iam
    )


def request_context(request, version: str | None, existing_tag) -> Context:
    """The condition keys this request supplies (lower-case names, lists of values)."""
    principal: Principal = request.principal
    headers = request.headers
    environ = request.environ
    values = {
        "aws:sourceip": [environ.get("REMOTE_ADDR", "")],
        "aws:securetransport": ["true" if environ.get("wsgi.url_scheme") == "https" else "false"],
        "aws:principaltype": [PRINCIPAL_TYPES[principal.kind]],
    }
    if principal.name is not None:
        values["aws:username"] = [principal.name]
        values["aws:userid"] = [principal.canonical_id]
        values["aws:principalarn"] = [principal.arn]
    for header, name in (("referer", "aws:referer"), ("user-agent", "aws:useragent"), ("x-amz-acl", "s3:x-amz-acl")):
        if header in headers:
            values[name] = [headers[header]]
    for parameter, name in LIST_QUERY_KEYS:
        if parameter in request.query:
            values[name] = [request.query[parameter]]
    if TAGGING_HEADER in headers:
        values["s3:requestobjecttagkeys"] = list(header_tags(request))
    if version is not None:
        values["s3:versionid"] = [version]
    auth = request.auth
    if auth is not None:
        values["s3:signatureversion"] = ["AWS4-HMAC-SHA256" if auth.version == 4 else "AWS"]
        values["s3:authtype"] = ["REST-QUERY-STRING" if auth.presigned else "REST-HEADER"]
    return Context(
        values,
        {
            "aws:currenttime": _current_time,
            "aws:epochtime": _epoch_time,
            "s3:existingobjecttag/": existing_tag,
            "s3:requestobjecttag/": lambda tag: _request_tag(request, tag),
        },
    )


def _current_time(key: str) -> list[str]:
    return [iso8601(int(time.time() * 1000))]


def _epoch_time(key: str) -> list[str]:
    return [str(int(time.time()))]


def _request_tag(request, tag: str) -> list[str] | None:
    value = header_tags(request).get(tag)
    return None if value is None else [value]
