"""Bucket policies on a real node: the ?policy calls, anonymous access, cross-user access, root."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import allow

from nebulaio.iam.policy import USER_ARN_PREFIX


def error_code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def bucket_policy(bucket: str, principal, actions, resource: str = "/*", effect: str = "Allow", **extra) -> str:
    statement = dict(Effect=effect, Principal=principal, Action=actions, Resource=f"arn:aws:s3:::{bucket}{resource}")
    statement.update(extra)
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_put_get_delete_bucket_policy(s3, bucket):
    assert error_code(lambda: s3.get_bucket_policy(Bucket=bucket)) == "NoSuchBucketPolicy"
    assert error_code(lambda: s3.get_bucket_policy_status(Bucket=bucket)) == "NoSuchBucketPolicy"
    document = bucket_policy(bucket, {"AWS": f"{USER_ARN_PREFIX}someone"}, "s3:GetObject")
    s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == document
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": False}
    s3.delete_bucket_policy(Bucket=bucket)
    assert error_code(lambda: s3.get_bucket_policy(Bucket=bucket)) == "NoSuchBucketPolicy"
    assert error_code(lambda: s3.put_bucket_policy(Bucket="no-such-bucket-here", Policy=document)) == "NoSuchBucket"


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{b}/*"},
            "Missing required field Principal",
        ),
        (
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::elsewhere/*"},
            "Policy has invalid resource",
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": "bob"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::{b}/*",
            },
            "Invalid principal in policy",
        ),
        (
            {"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{b}/*"},
            "Invalid effect: Maybe",
        ),
    ],
)
def test_malformed_bucket_policies(s3, bucket, statement, message):
    document = json.dumps({"Version": "2012-10-17", "Statement": statement}).replace("{b}", bucket)
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=bucket, Policy=document)
    error = caught.value.response["Error"]
    assert (error["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("MalformedPolicy", 400)
    assert message in error["Message"]


def test_a_too_large_bucket_policy_is_refused(s3, bucket):
    document = bucket_policy(bucket, "*", "s3:GetObject", Sid="x" * 21000)
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert caught.value.response["Error"]["Code"] == "MalformedPolicy"


def test_public_read_serves_unsigned_gets_only(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>hi</p>")
    url = f"{node.s3_url}/{bucket}/page.html"
    assert requests.get(url, timeout=10).status_code == 403
    s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(bucket, "*", "s3:GetObject"))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": True}
    answer = requests.get(url, timeout=10)
    assert (answer.status_code, answer.content) == (200, b"<p>hi</p>")
    assert requests.head(url, timeout=10).status_code == 200
    refused = requests.put(f"{node.s3_url}/{bucket}/new", data=b"x", timeout=10)
    assert refused.status_code == 403 and b"<Code>AccessDenied</Code>" in refused.content
    assert requests.get(f"{node.s3_url}/{bucket}", timeout=10).status_code == 403
    assert requests.delete(url, timeout=10).status_code == 403
    assert requests.get(f"{node.s3_url}/{bucket}/missing", timeout=10).status_code == 404


def test_a_source_address_condition_narrows_public_access(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    document = bucket_policy(
        bucket, {"AWS": "*"}, "s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": False}
    assert requests.get(f"{node.s3_url}/{bucket}/k", timeout=10).status_code == 403


def test_anonymous_writes_when_the_policy_allows_them(node, s3, bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(bucket, "*", ["s3:PutObject", "s3:GetObject"], "/drop/*"))
    assert requests.put(f"{node.s3_url}/{bucket}/drop/file", data=b"dropped", timeout=10).status_code == 200
    assert s3.get_object(Bucket=bucket, Key="drop/file")["Body"].read() == b"dropped"
    assert requests.put(f"{node.s3_url}/{bucket}/elsewhere", data=b"x", timeout=10).status_code == 403


def test_cross_user_access_through_the_bucket_policy(s3, bucket, new_user):
    s3.put_object(Bucket=bucket, Key="shared/doc", Body=b"doc")
    name, client, _ = new_user()
    assert error_code(lambda: client.get_object(Bucket=bucket, Key="shared/doc")) == "AccessDenied"
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadShared",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"{USER_ARN_PREFIX}{name}"]},
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/shared/*"],
                }
            ],
        }
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert client.get_object(Bucket=bucket, Key="shared/doc")["Body"].read() == b"doc"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["shared/doc"]
    assert error_code(lambda: client.put_object(Bucket=bucket, Key="shared/x", Body=b"x")) == "AccessDenied"
    _, stranger, _ = new_user()
    assert error_code(lambda: stranger.get_object(Bucket=bucket, Key="shared/doc")) == "AccessDenied"


def test_a_bucket_policy_deny_beats_an_identity_allow(s3, bucket, new_user):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    name, client, _ = new_user(allow("s3:*", "*"))
    client.get_object(Bucket=bucket, Key="k")
    s3.put_bucket_policy(
        Bucket=bucket, Policy=bucket_policy(bucket, {"AWS": f"{USER_ARN_PREFIX}{name}"}, "s3:*", effect="Deny")
    )
    assert error_code(lambda: client.get_object(Bucket=bucket, Key="k")) == "AccessDenied"
    client.list_objects_v2(Bucket=bucket)  # the Deny names the objects, not the bucket
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=bucket_policy(bucket, {"AWS": f"{USER_ARN_PREFIX}{name}"}, "s3:*", effect="Deny", resource=""),
    )
    assert error_code(lambda: client.list_objects_v2(Bucket=bucket)) == "AccessDenied"


def test_not_principal_denies_everyone_else(s3, bucket, new_user):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    name, friend, _ = new_user(allow("s3:GetObject", "*"))
    _, other, _ = new_user(allow("s3:GetObject", "*"))
    statement = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": f"{USER_ARN_PREFIX}{name}"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statement}))
    friend.get_object(Bucket=bucket, Key="k")
    assert error_code(lambda: other.get_object(Bucket=bucket, Key="k")) == "AccessDenied"


def test_the_root_user_is_never_locked_out(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(bucket, "*", "s3:*", effect="Deny", resource="*"))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    s3.delete_bucket_policy(Bucket=bucket)
