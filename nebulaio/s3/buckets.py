"""Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation."""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_bucket_name
from nebulaio.iam.credentials import canonical_id
from nebulaio.s3 import xml

MAX_CONFIGURATION_BODY = 64 * 1024


def read_small_body(request, limit: int = MAX_CONFIGURATION_BODY) -> bytes:
    """A configuration document: small, so it is read whole (bounded)."""
    environ = request.environ
    length = environ.get("CONTENT_LENGTH") or "0"
    if not length.isdigit():
        raise S3Error("InvalidArgument", "Content-Length is not a number.")
    if int(length) > limit:
        raise S3Error("MaxMessageLengthExceeded")
    body = environ["wsgi.input"].read(int(length)) if int(length) else b""
    if len(body) != int(length):
        raise S3Error("IncompleteBody")
    return body


def list_buckets(api, request, resp) -> None:
    entries = [(b["name"], b["created"]) for b in api.layer.list_buckets()]
    resp.data = xml.list_buckets(canonical_id(request.user), request.user, entries)


def create_bucket(api, request, resp) -> None:
    name = request.bucket
    check_bucket_name(name)
    location = xml.parse_create_bucket(read_small_body(request))
    if location and location != api.region:
        raise S3Error(
            "InvalidLocationConstraint",
            f"The {location} location constraint is incompatible with the region of this endpoint ({api.region}).",
            LocationConstraint=location,
        )
    if request.header("x-amz-bucket-object-lock-enabled", "").lower() == "true":
        raise S3Error("NotImplemented", "Object lock is not supported yet.")
    acl = request.header("x-amz-acl")
    if acl not in (None, "private"):
        raise S3Error("NotImplemented", f"The canned ACL {acl!r} is not supported yet.")
    api.layer.create_bucket(name, request.user, api.region)
    resp.set_header("Location", "/" + name)


def delete_bucket(api, request, resp) -> None:
    api.layer.delete_bucket(request.bucket)
    resp.status = 204


def head_bucket(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    resp.set_header("x-amz-bucket-region", bucket["region"])


def get_bucket_location(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    resp.data = xml.location_constraint(bucket["region"])
