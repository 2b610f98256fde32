"""Which S3 operation a request is, decided from (method, bucket, key, query, headers) before anything else.

A subresource we do not implement is answered NotImplemented rather than falling through to
a plain object or bucket operation (a PUT ?tagging must never overwrite the object).
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error

# Query parameters that select a subresource, as S3 defines them: every one AWS's API names,
# so that an operation we do not implement never reaches a plain object or bucket operation
# (a PUT ?renameObject must not overwrite the object, a DELETE ?annotation not delete it).
SUBRESOURCES = frozenset(
    (
        "abac accelerate acl analytics annotation attributes cors default-storage-class delete encryption "
        "intelligent-tiering inventory legal-hold lifecycle location logging metadataAnnotationTable "
        "metadataConfiguration metadataInventoryTable metadataJournalTable metadataTable metrics notification "
        "object-lock ownershipControls part partNumber policy policyStatus publicAccessBlock renameObject "
        "replication requestPayment restore retention select session tagging torrent uploadId uploads "
        "versionId versioning versions website"
    ).split()
)

# OPTIONS on a bucket or object, whatever its query: a browser's CORS preflight, answered
# without authentication.
PREFLIGHT = "PreflightRequest"
_BUCKET_OPERATIONS = {
    ("GET", "location"): "GetBucketLocation",
    ("GET", "versions"): "ListObjectVersions",
    ("GET", "versioning"): "GetBucketVersioning",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", None): "ListObjects",
    ("GET", "uploads"): "ListMultipartUploads",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("DELETE", "lifecycle"): "DeleteBucketLifecycle",
    ("POST", "delete"): "DeleteObjects",
    ("POST", None): "PostObject",
    ("PUT", None): "CreateBucket",
    ("DELETE", None): "DeleteBucket",
    ("HEAD", None): "HeadBucket",
    ("GET", "tagging"): "GetBucketTagging",
    ("PUT", "tagging"): "PutBucketTagging",
    ("DELETE", "tagging"): "DeleteBucketTagging",
    ("GET", "cors"): "GetBucketCors",
    ("PUT", "cors"): "PutBucketCors",
    ("DELETE", "cors"): "DeleteBucketCors",
    ("GET", "object-lock"): "GetObjectLockConfiguration",
    ("PUT", "object-lock"): "PutObjectLockConfiguration",
    ("GET", "policy"): "GetBucketPolicy",
    ("PUT", "policy"): "PutBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("GET", "policyStatus"): "GetBucketPolicyStatus",
    ("GET", "acl"): "GetBucketAcl",
    ("PUT", "acl"): "PutBucketAcl",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeletePublicAccessBlock",
    ("GET", "ownershipControls"): "GetBucketOwnershipControls",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("DELETE", "ownershipControls"): "DeleteBucketOwnershipControls",
    ("GET", "encryption"): "GetBucketEncryption",
    ("PUT", "encryption"): "PutBucketEncryption",
    ("DELETE", "encryption"): "DeleteBucketEncryption",
    ("GET", "logging"): "GetBucketLogging",
    ("PUT", "logging"): "PutBucketLogging",
    ("GET", "notification"): "GetBucketNotificationConfiguration",
    ("PUT", "notification"): "PutBucketNotificationConfiguration",
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
    ("GET", "partNumber"): "GetObject",
    ("HEAD", "partNumber"): "HeadObject",
    ("GET", "attributes"): "GetObjectAttributes",
    ("GET", "tagging"): "GetObjectTagging",
    ("PUT", "tagging"): "PutObjectTagging",
    ("DELETE", "tagging"): "DeleteObjectTagging",
    ("GET", "retention"): "GetObjectRetention",
    ("PUT", "retention"): "PutObjectRetention",
    ("GET", "legal-hold"): "GetObjectLegalHold",
    ("PUT", "legal-hold"): "PutObjectLegalHold",
    ("GET", "acl"): "GetObjectAcl",
    ("PUT", "acl"): "PutObjectAcl",
}
LIST_BUCKETS = "ListBuckets"
LIST_OBJECTS_V2 = "ListObjectsV2"
# A PutObject or UploadPart that names x-amz-copy-source copies.
COPY_VARIANTS = {"PutObject": "CopyObject", "UploadPart": "UploadPartCopy"}
ROUTED_OPERATIONS = frozenset(
    (
        PREFLIGHT,
        LIST_BUCKETS,
        LIST_OBJECTS_V2,
        *COPY_VARIANTS.values(),
        *_BUCKET_OPERATIONS.values(),
        *_OBJECT_OPERATIONS.values(),
    )
)
"""Every operation `classify` may name (docs/s3-compatibility.md is checked against it)."""
# Subresources that name one operation together, as sorted, space-separated names.
COMBINED_SUBRESOURCES = frozenset(("partNumber uploadId",))
# versionId picks the version an object operation acts on; it names no operation itself.
VERSION_ID = "versionId"
VERSIONED_OPERATIONS = frozenset(
    (
        "GetObject HeadObject DeleteObject GetObjectAttributes GetObjectTagging PutObjectTagging "
        "DeleteObjectTagging GetObjectRetention PutObjectRetention GetObjectLegalHold PutObjectLegalHold "
        "GetObjectAcl PutObjectAcl"
    ).split()
)


def classify(method: str, bucket: str | None, key: str | None, query: dict, headers: dict) -> str:
    """The operation's name; a PutObject or UploadPart that names x-amz-copy-source is a
    CopyObject or UploadPartCopy."""
    if method == "OPTIONS":
        return PREFLIGHT
    subresources = sorted(name for name in query if name in SUBRESOURCES and name != VERSION_ID)
    subresource = " ".join(subresources) or None
    if len(subresources) > 1 and subresource not in COMBINED_SUBRESOURCES:
        raise S3Error(
            "NotImplemented", f"This combination of subresources is not supported: {', '.join(sorted(subresources))}."
        )
    if bucket is None:
        if method == "GET" and not subresources:
            return LIST_BUCKETS
        raise S3Error("MethodNotAllowed", Method=method, ResourceType="SERVICE")
    table = _BUCKET_OPERATIONS if key is None else _OBJECT_OPERATIONS
    operation = table.get((method, subresource))
    if operation is None:
        if subresource is not None:
            raise S3Error("NotImplemented", f"The {subresource!r} subresource is not supported yet.")
        raise S3Error("MethodNotAllowed", Method=method, ResourceType="OBJECT" if key is not None else "BUCKET")
    if VERSION_ID in query and operation not in VERSIONED_OPERATIONS:
        raise S3Error("InvalidArgument", f"{operation} does not take a versionId.", ArgumentName=VERSION_ID)
    if operation == "ListObjects" and query.get("list-type") == "2":
        return LIST_OBJECTS_V2
    if "x-amz-copy-source" in headers:
        return COPY_VARIANTS.get(operation, operation)
    return operation
