"""Which S3 operation a request is, decided from (method, bucket, key, query, headers) before anything else.

A subresource we do not implement is answered NotImplemented rather than falling through to
a plain object or bucket operation (a PUT ?tagging must never overwrite the object).
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error

# Query parameters that select a subresource, as S3 defines them.
SUBRESOURCES = frozenset(
    (
        "accelerate acl analytics attributes cors delete encryption intelligent-tiering inventory "
        "legal-hold lifecycle location logging metrics notification object-lock ownershipControls "
        "partNumber policy policyStatus publicAccessBlock replication requestPayment restore "
        "retention select tagging torrent uploadId uploads versionId versioning versions website"
    ).split()
)

_BUCKET_OPERATIONS = {
    ("GET", "location"): "GetBucketLocation",
    ("GET", None): "ListObjects",
    ("GET", "uploads"): "ListMultipartUploads",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("DELETE", "lifecycle"): "DeleteBucketLifecycle",
    ("POST", "delete"): "DeleteObjects",
    ("PUT", None): "CreateBucket",
    ("DELETE", None): "DeleteBucket",
    ("HEAD", None): "HeadBucket",
}
_OBJECT_OPERATIONS = {
    ("GET", None): "GetObject",
    ("HEAD", None): "HeadObject",
    ("PUT", None): "PutObject",
    ("DELETE", None): "DeleteObject",
    ("POST", "uploads"): "CreateMultipartUpload",
    ("PUT", "partNumber uploadId"): "UploadPart",
    ("POST", "uploadId"): "CompleteMultipartUpload",
    ("DELETE", "uploadId"): "AbortMultipartUpload",
    ("GET", "uploadId"): "ListParts",
}
# Subresources that name one operation together, as sorted, space-separated names.
COMBINED_SUBRESOURCES = frozenset(("partNumber uploadId",))


def classify(method: str, bucket: str | None, key: str | None, query: dict, headers: dict) -> str:
    """The operation's name; a PutObject that names x-amz-copy-source is a CopyObject."""
    subresources = sorted(name for name in query if name in SUBRESOURCES)
    subresource = " ".join(subresources) or None
    if len(subresources) > 1 and subresource not in COMBINED_SUBRESOURCES:
        raise S3Error(
            "NotImplemented", f"This combination of subresources is not supported: {', '.join(sorted(subresources))}."
        )
    if bucket is None:
        if method == "GET" and not subresources:
            return "ListBuckets"
        raise S3Error("MethodNotAllowed", Method=method, ResourceType="SERVICE")
    table = _BUCKET_OPERATIONS if key is None else _OBJECT_OPERATIONS
    operation = table.get((method, subresource))
    if operation is None:
        if subresource is not None:
            raise S3Error("NotImplemented", f"The {subresource!r} subresource is not supported yet.")
        raise S3Error("MethodNotAllowed", Method=method, ResourceType="OBJECT" if key is not None else "BUCKET")
    if operation == "ListObjects" and query.get("list-type") == "2":
        return "ListObjectsV2"
    if operation == "PutObject" and "x-amz-copy-source" in headers:
        return "CopyObject"
    return operation
