"""The authorization matrix: for several principals, identity policies and one bucket policy,
every operation in the table must be allowed or refused exactly as marked, on a real node,
through boto3 and through unsigned HTTP.

Principals:
- root: the configured root user.
- reader: an identity policy allowing s3:GetObject and s3:ListBucket on the bucket.
- writer: s3:PutObject and s3:DeleteObject under home/${aws:username}/ only, plus listing.
- denied: the reader's policy too, but the bucket policy denies it everything.
- nobody: a user with no policy at all.
- anonymous: unsigned requests.
The bucket policy makes public/* readable by everyone (signed or not) and denies `denied` all.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import allow, make_client

ALLOWED, DENIED = "allowed", "denied"
PRINCIPALS = ("root", "reader", "writer", "denied", "nobody", "anonymous")

# operation -> the verdict for each principal, in PRINCIPALS order.
MATRIX = {
    "list objects": ("allowed", "allowed", "allowed", "denied", "denied", "denied"),
    "get public/p": ("allowed", "allowed", "allowed", "denied", "allowed", "allowed"),
    "get private/p": ("allowed", "allowed", "denied", "denied", "denied", "denied"),
    "head private/p": ("allowed", "allowed", "denied", "denied", "denied", "denied"),
    "put home/<self>/new": ("allowed", "denied", "allowed", "denied", "denied", "denied"),
    "put home/other/new": ("allowed", "denied", "denied", "denied", "denied", "denied"),
    "delete home/<self>/old": ("allowed", "denied", "allowed", "denied", "denied", "denied"),
    "put public/new": ("allowed", "denied", "denied", "denied", "denied", "denied"),
    "get bucket policy": ("allowed", "denied", "denied", "denied", "denied", "denied"),
    "put bucket tagging": ("allowed", "denied", "denied", "denied", "denied", "denied"),
    "list buckets": ("allowed", "denied", "denied", "denied", "denied", "denied"),
}


@pytest.fixture(scope="module")
def world(node, iam):
    """The bucket, its bucket policy, and a client (or None for anonymous) per principal."""
    bucket = f"matrix-{uuid.uuid4().hex[:12]}"
    root = node.client()
    root.create_bucket(Bucket=bucket)
    users = {}
    reader_policy = allow(["s3:GetObject", "s3:ListBucket"], [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"])
    writer_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket}/home/${{aws:username}}/*",
            },
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }
    policies = {"reader": reader_policy, "writer": writer_policy, "denied": reader_policy, "nobody": None}
    created_policies = []
    for role, document in policies.items():
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        iam.create_user(name)
        if document is not None:
            policy = f"matrix-{role}-{uuid.uuid4().hex[:8]}"
            iam.put_policy(policy, json.dumps(document))
            iam.attach_policy(policy, user=name)
            created_policies.append(policy)
        pair = iam.create_access_key(name)
        users[role] = (name, make_client(node.s3_url, access_key=pair["accessKey"], secret_key=pair["secretKey"]))
    bucket_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/public/*",
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{users['denied'][0]}"},
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }
    root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy))
    yield bucket, root, users
    for page in root.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []):
            root.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    root.delete_bucket(Bucket=bucket)
    for name, _ in users.values():
        iam.delete_user(name)
    for policy in created_policies:
        iam.delete_policy(policy)


def boto_call(client, bucket: str, self_name: str, operation: str):
    """The boto3 call of one matrix row, for a principal whose user name is `self_name`."""
    home = f"home/{self_name}/"
    calls = {
        "list objects": lambda: client.list_objects_v2(Bucket=bucket),
        "get public/p": lambda: client.get_object(Bucket=bucket, Key="public/p"),
        "get private/p": lambda: client.get_object(Bucket=bucket, Key="private/p"),
        "head private/p": lambda: client.head_object(Bucket=bucket, Key="private/p"),
        "put home/<self>/new": lambda: client.put_object(Bucket=bucket, Key=home + "new", Body=b"n"),
        "put home/other/new": lambda: client.put_object(Bucket=bucket, Key="home/other/new", Body=b"n"),
        "delete home/<self>/old": lambda: client.delete_object(Bucket=bucket, Key=home + "old"),
        "put public/new": lambda: client.put_object(Bucket=bucket, Key="public/new", Body=b"n"),
        "get bucket policy": lambda: client.get_bucket_policy(Bucket=bucket),
        "put bucket tagging": lambda: client.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
        ),
        "list buckets": lambda: client.list_buckets(),
    }
    return calls[operation]


UNSIGNED = {
    "list objects": ("GET", "/{bucket}?list-type=2"),
    "get public/p": ("GET", "/{bucket}/public/p"),
    "get private/p": ("GET", "/{bucket}/private/p"),
    "head private/p": ("HEAD", "/{bucket}/private/p"),
    "put home/<self>/new": ("PUT", "/{bucket}/home/anonymous/new"),
    "put home/other/new": ("PUT", "/{bucket}/home/other/new"),
    "delete home/<self>/old": ("DELETE", "/{bucket}/home/anonymous/old"),
    "put public/new": ("PUT", "/{bucket}/public/new"),
    "get bucket policy": ("GET", "/{bucket}?policy"),
    "put bucket tagging": ("PUT", "/{bucket}?tagging"),
    "list buckets": ("GET", "/"),
}


def verdict_of(call) -> str:
    try:
        call()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("AccessDenied", "403"):  # a HEAD's 403 has no body
            return DENIED
        raise
    return ALLOWED


@pytest.mark.parametrize("operation", sorted(MATRIX))
def test_authorization_matrix(node, world, operation):
    bucket, root, users = world
    for key in ("public/p", "private/p"):
        root.put_object(Bucket=bucket, Key=key, Body=b"seed")
    got = {}
    for principal in PRINCIPALS:
        if principal == "anonymous":
            method, path = UNSIGNED[operation]
            response = requests.request(method, node.s3_url + path.format(bucket=bucket), data=b"", timeout=10)
            assert response.status_code < 500, response.content
            got[principal] = DENIED if response.status_code == 403 else ALLOWED
            continue
        if principal == "root":
            name, client = "root", root
        else:
            name, client = users[principal]
        root.put_object(Bucket=bucket, Key=f"home/{name}/old", Body=b"old")
        got[principal] = verdict_of(boto_call(client, bucket, name, operation))
    assert got == dict(zip(PRINCIPALS, MATRIX[operation], strict=True))
