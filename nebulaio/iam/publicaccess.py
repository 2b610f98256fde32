"""Block Public Access and Object Ownership: the bucket settings that override ACLs and policies.

A bucket's "public_access_block" setting holds S3's four switches (all off when it has none):
BlockPublicAcls refuses writes that set a public ACL, IgnorePublicAcls makes public grants
grant nothing, BlockPublicPolicy refuses a public bucket policy, RestrictPublicBuckets keeps
a public policy from granting anything to anonymous requests. An ACL is public when it
grants anything to AllUsers or AuthenticatedUsers; when a policy is public, iam/policy.py says.

Its "ownership" setting is S3's Object Ownership. BucketOwnerEnforced disables ACLs: the
bucket owner owns every object and ACLs grant nothing. BucketOwnerPreferred gives the bucket
owner the objects written with the bucket-owner-full-control canned ACL. ObjectWriter (also
what a bucket without the setting does) leaves each object to its writer.
"""

from __future__ import annotations

PUBLIC_ACCESS_BLOCK = "public_access_block"
BLOCK_PUBLIC_ACLS = "BlockPublicAcls"
IGNORE_PUBLIC_ACLS = "IgnorePublicAcls"
BLOCK_PUBLIC_POLICY = "BlockPublicPolicy"
RESTRICT_PUBLIC_BUCKETS = "RestrictPublicBuckets"
SWITCHES = (BLOCK_PUBLIC_ACLS, IGNORE_PUBLIC_ACLS, BLOCK_PUBLIC_POLICY, RESTRICT_PUBLIC_BUCKETS)

OWNERSHIP = "ownership"
BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"
OBJECT_WRITER = "ObjectWriter"
OWNERSHIPS = (BUCKET_OWNER_ENFORCED, BUCKET_OWNER_PREFERRED, OBJECT_WRITER)

AWS_BUCKET_DEFAULTS = {OWNERSHIP: BUCKET_OWNER_ENFORCED, PUBLIC_ACCESS_BLOCK: dict.fromkeys(SWITCHES, True)}
"""The settings AWS gives every new bucket since April 2023 (the aws_bucket_defaults setting)."""


def blocks(bucket: dict, switch: str) -> bool:
    """Whether one of the bucket's Block Public Access switches is on."""
    return bool((bucket.get(PUBLIC_ACCESS_BLOCK) or {}).get(switch))


def acls_disabled(bucket: dict) -> bool:
    """Whether the bucket's ownership is BucketOwnerEnforced: its ACLs and its objects' grant nothing."""
    return bucket.get(OWNERSHIP) == BUCKET_OWNER_ENFORCED
