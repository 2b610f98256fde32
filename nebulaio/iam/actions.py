"""Which AWS action each S3 operation is, on which resource, and which ACL permission grants it.

An operation addressed to a version (`versionId`) is the action's Version form where AWS has
one (s3:GetObject -> s3:GetObjectVersion). An operation missing from this table is refused
to everyone but the root user: a new operation must be given its action here.
"""

from __future__ import annotations

from typing import NamedTuple

READ = "READ"
WRITE = "WRITE"
READ_ACP = "READ_ACP"
WRITE_ACP = "WRITE_ACP"
FULL_CONTROL = "FULL_CONTROL"
PERMISSIONS = (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL)

SERVICE = "service"
BUCKET = "bucket"
OBJECT = "object"


class Action(NamedTuple):
    """An operation's action, the action when it names a version, the resource it acts on,
    and the ACL permission that grants it (None: only the bucket's owner, through ACLs), on
    the bucket's ACL (BUCKET) or the object's (OBJECT)."""

    name: str
    versioned: str
    resource: str
    permission: str | None
    acl_of: str | None


def _action(name: str, resource: str, permission: str | None = None, acl_of: str | None = None, versioned=None):
    return Action(name, versioned or name, resource, permission, acl_of)


ACTIONS: dict[str, Action] = {
    "ListBuckets": _action("s3:ListAllMyBuckets", SERVICE),
    "CreateBucket": _action("s3:CreateBucket", BUCKET),
    "DeleteBucket": _action("s3:DeleteBucket", BUCKET),
    "HeadBucket": _action("s3:ListBucket", BUCKET, READ, BUCKET),
    "GetBucketLocation": _action("s3:GetBucketLocation", BUCKET),
    "ListObjects": _action("s3:ListBucket", BUCKET, READ, BUCKET),
    "ListObjectsV2": _action("s3:ListBucket", BUCKET, READ, BUCKET),
    "ListObjectVersions": _action("s3:ListBucketVersions", BUCKET, READ, BUCKET),
    "ListMultipartUploads": _action("s3:ListBucketMultipartUploads", BUCKET, READ, BUCKET),
    "PutObject": _action("s3:PutObject", OBJECT, WRITE, BUCKET),
    "CopyObject": _action("s3:PutObject", OBJECT, WRITE, BUCKET),
    "PostObject": _action("s3:PutObject", OBJECT, WRITE, BUCKET),
    "CreateMultipartUpload": _action("s3:PutObject", OBJECT, WRITE, BUCKET),
    "UploadPart": _action("s3:PutObject", OBJECT, WRITE, BUCKET),
    "UploadPartCopy": _action("s3:PutObject", OBJECT, WRITE, BUCKET),
    "CompleteMultipartUpload": _action("s3:PutObject", OBJECT, WRITE, BUCKET),
    "AbortMultipartUpload": _action("s3:AbortMultipartUpload", OBJECT, WRITE, BUCKET),
    "ListParts": _action("s3:ListMultipartUploadParts", OBJECT, READ, BUCKET),
    "GetObject": _action("s3:GetObject", OBJECT, READ, OBJECT, "s3:GetObjectVersion"),
    "HeadObject": _action("s3:GetObject", OBJECT, READ, OBJECT, "s3:GetObjectVersion"),
    "GetObjectAttributes": _action("s3:GetObjectAttributes", OBJECT, READ, OBJECT, "s3:GetObjectVersionAttributes"),
    "DeleteObject": _action("s3:DeleteObject", OBJECT, WRITE, BUCKET, "s3:DeleteObjectVersion"),
    "DeleteObjects": _action("s3:DeleteObject", OBJECT, WRITE, BUCKET, "s3:DeleteObjectVersion"),
    "GetObjectTagging": _action("s3:GetObjectTagging", OBJECT, versioned="s3:GetObjectVersionTagging"),
    "PutObjectTagging": _action("s3:PutObjectTagging", OBJECT, versioned="s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": _action("s3:DeleteObjectTagging", OBJECT, versioned="s3:DeleteObjectVersionTagging"),
    "GetObjectAcl": _action("s3:GetObjectAcl", OBJECT, READ_ACP, OBJECT, "s3:GetObjectVersionAcl"),
    "PutObjectAcl": _action("s3:PutObjectAcl", OBJECT, WRITE_ACP, OBJECT, "s3:PutObjectVersionAcl"),
    "GetObjectRetention": _action("s3:GetObjectRetention", OBJECT),
    "PutObjectRetention": _action("s3:PutObjectRetention", OBJECT),
    "GetObjectLegalHold": _action("s3:GetObjectLegalHold", OBJECT),
    "PutObjectLegalHold": _action("s3:PutObjectLegalHold", OBJECT),
    "GetObjectLockConfiguration": _action("s3:GetBucketObjectLockConfiguration", BUCKET),
    "PutObjectLockConfiguration": _action("s3:PutBucketObjectLockConfiguration", BUCKET),
    "GetBucketVersioning": _action("s3:GetBucketVersioning", BUCKET),
    "PutBucketVersioning": _action("s3:PutBucketVersioning", BUCKET),
    "GetBucketTagging": _action("s3:GetBucketTagging", BUCKET),
    "PutBucketTagging": _action("s3:PutBucketTagging", BUCKET),
    "DeleteBucketTagging": _action("s3:PutBucketTagging", BUCKET),
    "GetBucketCors": _action("s3:GetBucketCORS", BUCKET),
    "PutBucketCors": _action("s3:PutBucketCORS", BUCKET),
    "GetBucketNotificationConfiguration": _action("s3:GetBucketNotification", BUCKET),
    "PutBucketNotificationConfiguration": _action("s3:PutBucketNotification", BUCKET),
    "DeleteBucketCors": _action("s3:PutBucketCORS", BUCKET),
    "GetBucketLifecycleConfiguration": _action("s3:GetLifecycleConfiguration", BUCKET),
    "PutBucketLifecycleConfiguration": _action("s3:PutLifecycleConfiguration", BUCKET),
    "DeleteBucketLifecycle": _action("s3:PutLifecycleConfiguration", BUCKET),
    "GetBucketPolicy": _action("s3:GetBucketPolicy", BUCKET),
    "PutBucketPolicy": _action("s3:PutBucketPolicy", BUCKET),
    "DeleteBucketPolicy": _action("s3:DeleteBucketPolicy", BUCKET),
    "GetBucketPolicyStatus": _action("s3:GetBucketPolicyStatus", BUCKET),
    "GetBucketAcl": _action("s3:GetBucketAcl", BUCKET, READ_ACP, BUCKET),
    "PutBucketAcl": _action("s3:PutBucketAcl", BUCKET, WRITE_ACP, BUCKET),
    "GetPublicAccessBlock": _action("s3:GetBucketPublicAccessBlock", BUCKET),
    "PutPublicAccessBlock": _action("s3:PutBucketPublicAccessBlock", BUCKET),
    "DeletePublicAccessBlock": _action("s3:PutBucketPublicAccessBlock", BUCKET),
    "GetBucketOwnershipControls": _action("s3:GetBucketOwnershipControls", BUCKET),
    "PutBucketOwnershipControls": _action("s3:PutBucketOwnershipControls", BUCKET),
    "DeleteBucketOwnershipControls": _action("s3:PutBucketOwnershipControls", BUCKET),
    "GetBucketEncryption": _action("s3:GetEncryptionConfiguration", BUCKET),
    "PutBucketEncryption": _action("s3:PutEncryptionConfiguration", BUCKET),
    "DeleteBucketEncryption": _action("s3:PutEncryptionConfiguration", BUCKET),
    "GetBucketLogging": _action("s3:GetBucketLogging", BUCKET),
    "PutBucketLogging": _action("s3:PutBucketLogging", BUCKET),
}

BYPASS_GOVERNANCE = "s3:BypassGovernanceRetention"
BYPASS_OPERATIONS = frozenset(("DeleteObject", "DeleteObjects", "PutObjectRetention"))
"""Operations where x-amz-bypass-governance-retention: true also needs s3:BypassGovernanceRetention."""

KNOWN_ACTIONS = frozenset(
    [a.name for a in ACTIONS.values()] + [a.versioned for a in ACTIONS.values()] + [BYPASS_GOVERNANCE]
)


def resource_arn(bucket: str | None, key: str | None) -> str:
    """The ARN a policy's Resource is matched against."""
    if bucket is None:
        return "arn:aws:s3:::*"
    if key is None:
        return "arn:aws:s3:::" + bucket
    return f"arn:aws:s3:::{bucket}/{key}"
