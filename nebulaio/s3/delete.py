"""DeleteObjects (POST ?delete): up to 1000 keys of one bucket, deleted in one command.

One command is one raft entry and one transaction, however many keys the request names.
A key that cannot be deleted is reported in the result with its own error; the others are
deleted (a key that does not exist counts as deleted, as on S3).
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_object_key
from nebulaio.engine.objects import LOCKED_MESSAGE, check_version
from nebulaio.s3 import xml
from nebulaio.s3.access import authorize_key
from nebulaio.s3.body import read_body, require_integrity_check
from nebulaio.s3.objectlock import bypasses_governance

MAX_KEYS = 1000
# 1000 keys of 1024 bytes, each character possibly written as an XML entity.
MAX_BODY = 8 * 1024 * 1024
XML_TYPE = "application/xml"


def _refusal(api, request, key: str, version: str | None) -> tuple[str, str] | None:
    """(code, message) when this one key cannot be deleted (or not by this principal), else None."""
    try:
        check_object_key(key)
        if version is not None:
            check_version(version)
        authorize_key(api, request, "DeleteObjects", key, version)
    except S3Error as error:
        return error.code, error.message
    return None


def _outcome(result: dict) -> tuple[str, str] | dict:
    """What apply reported for one key: the deletion, or (code, message) when it was refused
    (AccessDenied: object lock holds the version)."""
    status = result["status"]
    if status == "ok":
        return result
    return status, LOCKED_MESSAGE if status == "AccessDenied" else S3Error(status).message


def delete_objects(api, request, resp) -> None:
    require_integrity_check(request)
    api.layer.bucket(request.bucket)
    quiet, objects = xml.parse_delete(read_body(request, api.request_timeout, MAX_BODY))
    if not objects or len(objects) > MAX_KEYS:
        raise S3Error("MalformedXML")
    refusals = [_refusal(api, request, key, version) for key, version in objects]
    doomed = [entry for entry, refusal in zip(objects, refusals, strict=True) if refusal is None]
    results = iter(api.layer.delete_many(request.bucket, doomed, bypasses_governance(request)) if doomed else ())
    outcomes = [
        (key, version, refusal) if refusal is not None else (key, version, _outcome(next(results)))
        for (key, version), refusal in zip(objects, refusals, strict=True)
    ]
    resp.content_type = XML_TYPE
    resp.data = xml.delete_result(outcomes, quiet)
