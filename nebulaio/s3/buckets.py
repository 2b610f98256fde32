"""Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation."""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_bucket_name
from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.publicaccess import acls_disabled
from nebulaio.s3 import xml
from nebulaio.s3.acl import check_acl, header_acl, stored_acl
from nebulaio.s3.body import read_body
from nebulaio.s3.ownership import OWNERSHIP_HEADER, check_ownership, refuse_acls_of

LEGACY_REGION = "us-east-1"
"""S3's first region, where creating a bucket one already owns answers 200 (elsewhere, 409)."""


def list_buckets(api, request, resp) -> None:
    """The caller's own buckets, as S3 lists an account's; root, the operator, lists them all."""
    every = request.principal.kind == "root"
    entries = [(b["name"], b["created"]) for b in api.layer.list_buckets() if every or b["owner"] == request.user]
    resp.data = xml.list_buckets(canonical_id(request.user), request.user, entries)


def create_bucket(api, request, resp) -> None:
    name = request.bucket
    check_bucket_name(name)
    location = xml.parse_create_bucket(read_body(request, api.request_timeout))
    if location and location != api.region:
        raise S3Error(
            "InvalidLocationConstraint",
            f"The {location} location constraint is incompatible with the region of this endpoint ({api.region}).",
            LocationConstraint=location,
        )
    object_lock = request.header("x-amz-bucket-object-lock-enabled", "").strip().lower() == "true"
    requested = header_acl(request)
    ownership = request.header(OWNERSHIP_HEADER)
    if ownership is not None:
        check_ownership(ownership)
    new = dict(api.layer.new_bucket_settings(ownership), owner=request.user)
    if acls_disabled(new):
        refuse_acls_of(requested, request.user)
    check_acl(new, requested)
    stored = stored_acl(requested, acls_disabled(new))
    try:
        api.layer.create_bucket(name, request.user, api.region, stored, object_lock, ownership)
    except S3Error as error:
        if error.code != "BucketAlreadyOwnedByYou" or api.region != LEGACY_REGION:
            raise
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
