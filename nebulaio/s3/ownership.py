"""Object Ownership: Put/Get/DeleteBucketOwnershipControls (`?ownershipControls`) and the
x-amz-object-ownership header of CreateBucket; iam/publicaccess.py says what each setting does."""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.iam import acl
from nebulaio.iam.publicaccess import BUCKET_OWNER_ENFORCED, OWNERSHIP, OWNERSHIPS
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check

XML_TYPE = "application/xml"
OWNERSHIP_HEADER = "x-amz-object-ownership"


def check_ownership(value: str) -> str:
    """The Object Ownership an x-amz-object-ownership header names.

    Raises:
        S3Error: InvalidArgument for a value S3 does not know.
    """
    if value not in OWNERSHIPS:
        raise S3Error("InvalidArgument", "Invalid x-amz-object-ownership header", ArgumentName=OWNERSHIP_HEADER)
    return value


def refuse_acls_of(bucket_acl: str | list | None, owner: str) -> None:
    """Refuse to disable ACLs while the bucket's ACL still grants anything to anyone but its owner.

    Raises:
        S3Error: InvalidBucketAclWithObjectOwnership.
    """
    if not acl.owner_only(bucket_acl, owner):
        raise S3Error("InvalidBucketAclWithObjectOwnership")


def parse_ownership_controls(body: bytes) -> str:
    """The ObjectOwnership of an OwnershipControls document's one Rule.

    Raises:
        S3Error: MalformedXML for anything else.
    """
    rules = xml.parse(body, "OwnershipControls").findall("Rule")
    if len(rules) != 1:
        raise S3Error("MalformedXML")
    value = (rules[0].findtext("ObjectOwnership") or "").strip()
    if value not in OWNERSHIPS:
        raise S3Error("MalformedXML")
    return value


def put_bucket_ownership_controls(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    require_integrity_check(request)
    ownership = parse_ownership_controls(read_body(request, api.request_timeout))
    if ownership == BUCKET_OWNER_ENFORCED:
        refuse_acls_of(bucket.get("acl"), bucket["owner"])
    api.layer.configure_bucket(request.bucket, OWNERSHIP, ownership)


def get_bucket_ownership_controls(api, request, resp) -> None:
    ownership = api.layer.bucket(request.bucket).get(OWNERSHIP)
    if ownership is None:
        raise S3Error("OwnershipControlsNotFoundError", BucketName=request.bucket)
    resp.content_type = XML_TYPE
    resp.data = xml.document("OwnershipControls", f"<Rule><ObjectOwnership>{ownership}</ObjectOwnership></Rule>")


def delete_bucket_ownership_controls(api, request, resp) -> None:
    api.layer.configure_bucket(request.bucket, OWNERSHIP, None)
    resp.status = 204
