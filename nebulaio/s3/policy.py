"""Bucket policies: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus (`?policy`, `?policyStatus`).

The policy is the bucket's "policy" setting: the document as given and a revision (the
request id that stored it), by which workers cache its compiled form.
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.iam import acl
from nebulaio.iam.policy import BUCKET_POLICY_LIMIT, PolicyError, PublicPolicyBlocked, bucket_policy_setting
from nebulaio.iam.publicaccess import acls_disabled
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body

JSON_TYPE = "application/json"
XML_TYPE = "application/xml"
# A policy of BUCKET_POLICY_LIMIT bytes is refused with MalformedPolicy; a body far beyond it is not read.
MAX_BODY = 2 * BUCKET_POLICY_LIMIT


def put_bucket_policy(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    body = read_body(request, api.request_timeout, MAX_BODY)
    try:
        setting = bucket_policy_setting(body, bucket, request.request_id)
    except PolicyError as exc:
        raise S3Error("MalformedPolicy", str(exc)) from None
    except PublicPolicyBlocked:
        raise S3Error("AccessDenied") from None
    api.layer.configure_bucket(request.bucket, "policy", setting)
    resp.status = 204


def _with_policy(api, request) -> dict:
    """The request's bucket record, refused NoSuchBucketPolicy when it has no policy."""
    bucket = api.layer.bucket(request.bucket)
    if bucket.get("policy") is None:
        raise S3Error("NoSuchBucketPolicy", BucketName=request.bucket)
    return bucket


def get_bucket_policy(api, request, resp) -> None:
    resp.content_type = JSON_TYPE
    resp.data = _with_policy(api, request)["policy"]["document"].encode()


def delete_bucket_policy(api, request, resp) -> None:
    api.layer.configure_bucket(request.bucket, "policy", None)
    resp.status = 204


def get_bucket_policy_status(api, request, resp) -> None:
    """IsPublic: whether the policy or the bucket's ACL grants anything to everyone (a bucket
    without a policy answers NoSuchBucketPolicy, as S3 does)."""
    bucket = _with_policy(api, request)
    public = api.iam.bucket_policy(bucket).public or (not acls_disabled(bucket) and acl.is_public(bucket.get("acl")))
    resp.content_type = XML_TYPE
    resp.data = xml.document("PolicyStatus", f"<IsPublic>{xml.TRUE_FALSE[public]}</IsPublic>")
