"""ACLs on a real node: canned ACLs on writes, the ?acl calls, and what grants allow."""

from __future__ import annotations

import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import allow, empty_bucket

from nebulaio.iam.credentials import canonical_id

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def error_code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def grants(answer: dict) -> list[tuple[str, str]]:
    return sorted((g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"]) for g in answer["Grants"])


def test_the_default_acl_is_private(s3, bucket, node):
    owner = canonical_id("testroot")
    answer = s3.get_bucket_acl(Bucket=bucket)
    assert answer["Owner"] == {"ID": owner, "DisplayName": "testroot"}
    assert grants(answer) == [(owner, "FULL_CONTROL")]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert grants(s3.get_object_acl(Bucket=bucket, Key="k")) == [(owner, "FULL_CONTROL")]


def test_a_public_read_object_serves_unsigned_gets(s3, bucket, node):
    s3.put_object(Bucket=bucket, Key="open", Body=b"open", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="closed", Body=b"closed")
    assert requests.get(f"{node.s3_url}/{bucket}/open", timeout=10).content == b"open"
    assert requests.get(f"{node.s3_url}/{bucket}/closed", timeout=10).status_code == 403
    assert ((ALL_USERS, "READ")) in grants(s3.get_object_acl(Bucket=bucket, Key="open"))
    s3.put_object_acl(Bucket=bucket, Key="open", ACL="private")
    assert requests.get(f"{node.s3_url}/{bucket}/open", timeout=10).status_code == 403


def test_canned_acls_on_create_bucket_and_copy(s3, node):
    name = f"acl-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name, ACL="public-read")
    try:
        assert (ALL_USERS, "READ") in grants(s3.get_bucket_acl(Bucket=name))
        s3.put_object(Bucket=name, Key="k", Body=b"x")
        assert requests.get(f"{node.s3_url}/{name}", timeout=10).status_code == 200  # ListBucket by READ
        assert requests.get(f"{node.s3_url}/{name}/k", timeout=10).status_code == 403  # the object is private
        s3.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name, "Key": "k"}, ACL="public-read")
        assert requests.get(f"{node.s3_url}/{name}/copy", timeout=10).content == b"x"
        s3.put_bucket_acl(Bucket=name, ACL="public-read-write")
        assert requests.put(f"{node.s3_url}/{name}/anon", data=b"a", timeout=10).status_code == 200
        started = requests.post(f"{node.s3_url}/{name}/anon-mp?uploads", timeout=10)
        assert started.status_code == 200
        listed = requests.get(f"{node.s3_url}/{name}?uploads", timeout=10)
        assert listed.status_code == 200 and b"<DisplayName>anonymous</DisplayName>" in listed.content
        upload = s3.create_multipart_upload(Bucket=name, Key="mp", ACL="public-read")
        part = s3.upload_part(Bucket=name, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"m")
        s3.complete_multipart_upload(
            Bucket=name,
            Key="mp",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        assert requests.get(f"{node.s3_url}/{name}/mp", timeout=10).content == b"m"
    finally:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)


def test_an_unknown_canned_acl_is_refused(s3, bucket):
    assert error_code(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="world-writable")) in (
        "InvalidArgument",
    )


def test_acl_xml_round_trip(s3, bucket, new_user):
    name, client, _ = new_user()
    owner = canonical_id("testroot")
    policy = {
        "Owner": {"ID": owner},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": canonical_id(name)}, "Permission": "READ"},
            {"Grantee": {"Type": "Group", "URI": AUTHENTICATED}, "Permission": "READ_ACP"},
        ],
    }
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)
    assert grants(s3.get_bucket_acl(Bucket=bucket)) == sorted(
        [(owner, "FULL_CONTROL"), (canonical_id(name), "READ"), (AUTHENTICATED, "READ_ACP")]
    )
    client.list_objects_v2(Bucket=bucket)  # READ on the bucket lists it
    client.get_bucket_acl(Bucket=bucket)  # READ_ACP for every signed user
    assert error_code(lambda: client.put_object(Bucket=bucket, Key="k", Body=b"x")) == "AccessDenied"
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_acl(Bucket=bucket, Key="k", GrantRead=f'id="{canonical_id(name)}"')
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert grants(s3.get_object_acl(Bucket=bucket, Key="k")) == [(canonical_id(name), "READ")]


@pytest.mark.parametrize(
    "body",
    [
        b"<AccessControlPolicy><AccessControlList><Grant><Permission>READ</Permission></Grant></AccessControlList>"
        b"</AccessControlPolicy>",
        b"<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'"
        b" xsi:type='CanonicalUser'><ID>x</ID></Grantee><Permission>EVERYTHING</Permission></Grant>"
        b"</AccessControlList></AccessControlPolicy>",
        b"<AccessControlPolicy/>",
    ],
)
def test_malformed_acl_bodies(raw, bucket, body):
    answer = raw("PUT", f"/{bucket}?acl", body)
    assert answer.status_code == 400 and b"<Code>MalformedACLError</Code>" in answer.content


def test_authenticated_read_and_the_bucket_owner(s3, bucket, node, new_user):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="authenticated-read")
    _, client, _ = new_user()
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert requests.get(f"{node.s3_url}/{bucket}/k", timeout=10).status_code == 403
    # a user that may create buckets owns them, and so controls them and what is in them
    owner_name, owner, _ = new_user(allow("s3:CreateBucket", "*"))
    mine = f"owned-{uuid.uuid4().hex[:16]}"
    owner.create_bucket(Bucket=mine)
    try:
        owner.put_object(Bucket=mine, Key="k", Body=b"mine")
        assert owner.get_bucket_acl(Bucket=mine)["Owner"]["DisplayName"] == owner_name
        assert error_code(lambda: client.get_object(Bucket=mine, Key="k")) == "AccessDenied"
        assert s3.get_object(Bucket=mine, Key="k")["Body"].read() == b"mine"  # root, as ever
    finally:
        empty_bucket(s3, mine)
        s3.delete_bucket(Bucket=mine)
