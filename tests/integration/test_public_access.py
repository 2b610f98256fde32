"""Block Public Access and Object Ownership on a real node: the configuration calls, and how
they change what ACLs and bucket policies may do."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import ROOT_PASSWORD, ROOT_USER, allow

from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.policy import USER_ARN_PREFIX

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
ROOT_ID = canonical_id(ROOT_USER)
ALL_ON = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)


def refusal(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def block(s3, bucket: str, **switches) -> None:
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=switches)


def grants(answer: dict) -> list[tuple[str, str]]:
    return sorted((g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"]) for g in answer["Grants"])


def policy(bucket: str, principal="*", actions="s3:GetObject", **extra) -> str:
    statement = dict(Effect="Allow", Principal=principal, Action=actions, Resource=f"arn:aws:s3:::{bucket}/*", **extra)
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def with_md5(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


def anonymous_get(node, bucket: str, key: str) -> int:
    return requests.get(f"{node.s3_url}/{bucket}/{key}", timeout=10).status_code


@pytest.fixture
def new_bucket(s3):
    """new_bucket(**create_bucket arguments) -> a bucket's name; every one is emptied and removed after the test."""
    made = []

    def make(**arguments) -> str:
        name = f"bpa-{uuid.uuid4().hex[:20]}"
        s3.create_bucket(Bucket=name, **arguments)
        made.append(name)
        return name

    yield make
    for name in made:
        for item in s3.list_object_versions(Bucket=name).get("Versions", []):
            s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
        s3.delete_bucket(Bucket=name)


# -- Block Public Access: the configuration ----------------------------------------------------


def test_public_access_block_round_trip(s3, bucket):
    assert refusal(lambda: s3.get_public_access_block(Bucket=bucket)) == ("NoSuchPublicAccessBlockConfiguration", 404)
    block(s3, bucket, BlockPublicAcls=True, RestrictPublicBuckets=True)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": False,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True,
    }
    block(s3, bucket, **ALL_ON)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == ALL_ON
    assert s3.delete_public_access_block(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert refusal(lambda: s3.get_public_access_block(Bucket=bucket))[0] == "NoSuchPublicAccessBlockConfiguration"
    assert refusal(lambda: s3.get_public_access_block(Bucket="no-such-bucket-bpa")) == ("NoSuchBucket", 404)


@pytest.mark.parametrize(
    "body",
    [
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>",
        b"<PublicAccessBlockConfiguration><BlockEverything>true</BlockEverything></PublicAccessBlockConfiguration>",
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>"
        b"<BlockPublicAcls>false</BlockPublicAcls></PublicAccessBlockConfiguration>",
        b"<OwnershipControls/>",
        b"<PublicAccessBlockConfiguration>",
    ],
)
def test_a_malformed_public_access_block_changes_nothing(s3, raw, bucket, body):
    block(s3, bucket, IgnorePublicAcls=True)
    answer = raw("PUT", f"/{bucket}?publicAccessBlock", body, with_md5(body))
    assert answer.status_code == 400 and b"<Code>MalformedXML</Code>" in answer.content
    stored = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert stored == {**dict.fromkeys(ALL_ON, False), "IgnorePublicAcls": True}


def test_a_public_access_block_without_an_integrity_check_is_refused(raw, bucket):
    body = b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls></PublicAccessBlockConfiguration>"
    answer = raw("PUT", f"/{bucket}?publicAccessBlock", body)
    assert answer.status_code == 400 and b"<Code>InvalidRequest</Code>" in answer.content


def test_new_buckets_keep_nebulaio_s_defaults(s3, bucket):
    """No Block Public Access and no Object Ownership on a new bucket: public canned ACLs keep working."""
    assert refusal(lambda: s3.get_public_access_block(Bucket=bucket))[0] == "NoSuchPublicAccessBlockConfiguration"
    assert refusal(lambda: s3.get_bucket_ownership_controls(Bucket=bucket)) == ("OwnershipControlsNotFoundError", 404)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")


# -- Block Public Access: enforcement ----------------------------------------------------------


def test_block_public_acls_refuses_every_way_of_setting_one(s3, node, bucket):
    s3.put_object(Bucket=bucket, Key="open", Body=b"open", ACL="public-read")
    block(s3, bucket, BlockPublicAcls=True)
    denied = ("AccessDenied", 403)
    assert refusal(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read")) == denied
    assert refusal(lambda: s3.put_bucket_acl(Bucket=bucket, GrantRead=f'uri="{AUTHENTICATED}"')) == denied
    assert refusal(lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"x", ACL="public-read-write")) == denied
    assert refusal(lambda: s3.put_object(Bucket=bucket, Key="new", Body=b"x", GrantRead=f'uri="{ALL_USERS}"')) == denied
    assert refusal(lambda: s3.head_object(Bucket=bucket, Key="new"))[1] == 404
    assert refusal(lambda: s3.put_object_acl(Bucket=bucket, Key="open", ACL="authenticated-read")) == denied
    source = {"Bucket": bucket, "Key": "open"}
    assert refusal(lambda: s3.copy_object(Bucket=bucket, Key="c", CopySource=source, ACL="public-read")) == denied
    assert refusal(lambda: s3.create_multipart_upload(Bucket=bucket, Key="m", ACL="public-read")) == denied
    body = {
        "Owner": {"ID": ROOT_ID},
        "Grants": [{"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}],
    }
    assert refusal(lambda: s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=body)) == denied
    # what was public before stays so; private ACLs are still accepted
    assert (ALL_USERS, "READ") in grants(s3.get_object_acl(Bucket=bucket, Key="open"))
    assert anonymous_get(node, bucket, "open") == 200
    s3.put_object(Bucket=bucket, Key="private", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")


def test_a_browser_form_upload_passes_the_same_checks(s3, node, bucket):
    signer = node.client(signature_version="s3v4")

    def form_upload(key: str, acl: str) -> requests.Response:
        form = signer.generate_presigned_post(bucket, key, Fields={"acl": acl}, Conditions=[{"acl": acl}])
        return requests.post(f"{node.s3_url}/{bucket}", data=form["fields"], files={"file": ("f", b"x")}, timeout=10)

    block(s3, bucket, BlockPublicAcls=True)
    refused = form_upload("public", "public-read")
    assert refused.status_code == 403 and b"<Code>AccessDenied</Code>" in refused.content
    assert form_upload("private", "private").status_code == 204
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    refused = form_upload("public", "public-read")
    assert refused.status_code == 400 and b"<Code>AccessControlListNotSupported</Code>" in refused.content
    assert refusal(lambda: s3.head_object(Bucket=bucket, Key="public"))[1] == 404


def test_ignore_public_acls_makes_public_grants_grant_nothing(s3, node, bucket, new_user):
    name, client, _ = new_user()
    s3.put_object(Bucket=bucket, Key="open", Body=b"open", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="signed", Body=b"signed", ACL="authenticated-read")
    s3.put_object(Bucket=bucket, Key="named", Body=b"named", GrantRead=f'id="{canonical_id(name)}"')
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert anonymous_get(node, bucket, "open") == 200
    assert client.get_object(Bucket=bucket, Key="signed")["Body"].read() == b"signed"
    assert requests.get(f"{node.s3_url}/{bucket}", timeout=10).status_code == 200  # listed through the bucket ACL

    block(s3, bucket, IgnorePublicAcls=True)
    assert anonymous_get(node, bucket, "open") == 403
    assert requests.get(f"{node.s3_url}/{bucket}", timeout=10).status_code == 403
    assert refusal(lambda: client.get_object(Bucket=bucket, Key="signed")) == ("AccessDenied", 403)
    assert client.get_object(Bucket=bucket, Key="named")["Body"].read() == b"named"  # not a public grant
    assert (ALL_USERS, "READ") in grants(s3.get_object_acl(Bucket=bucket, Key="open"))  # kept, only ignored
    s3.put_object(Bucket=bucket, Key="later", Body=b"later", ACL="public-read")  # still accepted
    assert anonymous_get(node, bucket, "later") == 403

    s3.delete_public_access_block(Bucket=bucket)
    assert anonymous_get(node, bucket, "later") == 200


def test_block_public_policy_refuses_public_policies_only(s3, node, bucket):
    public = policy(bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=public)
    block(s3, bucket, BlockPublicPolicy=True)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert anonymous_get(node, bucket, "k") == 200  # the policy stored before stays in force
    s3.delete_bucket_policy(Bucket=bucket)
    for document in (
        public,
        policy(bucket, {"AWS": "*"}),
        policy(bucket, Condition={"StringLike": {"aws:SourceVpc": "vpc-*"}}),
        policy(bucket, Condition={"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}),
        policy(bucket, Condition={"StringNotEquals": {"aws:SourceVpc": "vpc-1234"}}),
        policy(bucket, NotPrincipal={"AWS": USER_ARN_PREFIX + "alice"}).replace('"Principal": "*", ', ""),
    ):
        assert refusal(lambda document=document: s3.put_bucket_policy(Bucket=bucket, Policy=document)) == (
            "AccessDenied",
            403,
        ), document
        assert refusal(lambda: s3.get_bucket_policy(Bucket=bucket))[0] == "NoSuchBucketPolicy"
    for document in (
        policy(bucket, {"AWS": USER_ARN_PREFIX + "alice"}),
        policy(bucket, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        policy(bucket, Condition={"StringEquals": {"aws:SourceVpc": "vpc-1234"}}),
        policy(bucket, Condition={"StringEquals": {"aws:SourceAccount": "123456789012"}}),
    ):
        s3.put_bucket_policy(Bucket=bucket, Policy=document)
        assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == document


def test_block_public_policy_holds_on_the_admin_api_too(s3, node, bucket):
    block(s3, bucket, BlockPublicPolicy=True)
    login = requests.post(
        node.admin_url + "/api/v1/auth/login", json={"username": ROOT_USER, "password": ROOT_PASSWORD}, timeout=10
    )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    url = f"{node.admin_url}/api/v1/buckets/{bucket}/policy"
    refused = requests.put(url, data=policy(bucket), headers=headers, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "AccessDenied"
    assert refusal(lambda: s3.get_bucket_policy(Bucket=bucket))[0] == "NoSuchBucketPolicy"
    narrowed = policy(bucket, {"AWS": USER_ARN_PREFIX + "alice"})
    assert requests.put(url, data=narrowed, headers=headers, timeout=10).status_code == 204


def test_restrict_public_buckets_keeps_a_public_policy_from_anonymous_requests(s3, node, bucket, new_user):
    _, client, _ = new_user()
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(bucket))
    assert anonymous_get(node, bucket, "k") == 200
    block(s3, bucket, RestrictPublicBuckets=True)
    assert anonymous_get(node, bucket, "k") == 403
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"  # a signed user of this node still may
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(bucket, Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    assert anonymous_get(node, bucket, "k") == 200  # a policy narrowed to fixed addresses is not public
    s3.delete_public_access_block(Bucket=bucket)


@pytest.mark.parametrize(
    ("extra", "public"),
    [
        ({}, True),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, False),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}, True),
        ({"Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, True),
        ({"Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}, False),
        ({"Condition": {"StringLike": {"aws:SourceArn": "arn:aws:sns:*"}}}, True),
        ({"Condition": {"StringEquals": {"aws:UserAgent": "curl"}}}, True),
        ({"Condition": {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1234"}}}, True),
        ({"Principal": {"AWS": USER_ARN_PREFIX + "alice"}}, False),
    ],
)
def test_policy_status_follows_aws_s_meaning_of_public(s3, bucket, extra, public):
    principal = extra.pop("Principal", "*")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(bucket, principal, **extra))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": public}


def test_policy_status_counts_a_public_bucket_acl(s3, bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(bucket, {"AWS": USER_ARN_PREFIX + "alice"}))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": False}
    s3.put_bucket_acl(Bucket=bucket, ACL="authenticated-read")
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": True}


# -- Object Ownership --------------------------------------------------------------------------


def test_ownership_controls_round_trip(s3, raw, bucket):
    for ownership in ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"):
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]})
        answer = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
        assert answer == {"Rules": [{"ObjectOwnership": ownership}]}
    for body in (
        b"<OwnershipControls><Rule><ObjectOwnership>Everyone</ObjectOwnership></Rule></OwnershipControls>",
        b"<OwnershipControls></OwnershipControls>",
        b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>"
        b"<Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>",
    ):
        answer = raw("PUT", f"/{bucket}?ownershipControls", body, with_md5(body))
        assert answer.status_code == 400 and b"<Code>MalformedXML</Code>" in answer.content
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "ObjectWriter"}
    ]
    assert s3.delete_bucket_ownership_controls(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert refusal(lambda: s3.get_bucket_ownership_controls(Bucket=bucket)) == ("OwnershipControlsNotFoundError", 404)


def test_create_bucket_takes_object_ownership(s3, raw, new_bucket):
    name = new_bucket(ObjectOwnership="BucketOwnerEnforced")
    rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    new_bucket(ObjectOwnership="BucketOwnerEnforced", ACL="private")
    refused = f"bpa-{uuid.uuid4().hex[:20]}"
    assert refusal(
        lambda: s3.create_bucket(Bucket=refused, ACL="public-read", ObjectOwnership="BucketOwnerEnforced")
    ) == ("InvalidBucketAclWithObjectOwnership", 400)
    assert refusal(lambda: s3.head_bucket(Bucket=refused))[1] == 404
    answer = raw("PUT", f"/{refused}", headers={"x-amz-object-ownership": "Nobody"})
    assert answer.status_code == 400 and b"<Code>InvalidArgument</Code>" in answer.content
    assert refusal(lambda: s3.head_bucket(Bucket=refused))[1] == 404


def test_create_bucket_with_object_ownership_needs_put_bucket_ownership_controls(s3, new_user):
    name = f"bpa-{uuid.uuid4().hex[:20]}"
    _, creator, _ = new_user(allow("s3:CreateBucket", "*"))
    assert refusal(lambda: creator.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")) == (
        "AccessDenied",
        403,
    )
    assert refusal(lambda: s3.head_bucket(Bucket=name))[1] == 404
    _, owner, _ = new_user(allow(["s3:CreateBucket", "s3:PutBucketOwnershipControls"], "*"))
    owner.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    finally:
        s3.delete_bucket(Bucket=name)


def test_bucket_owner_enforced_disables_acls(s3, node, new_bucket, new_user):
    name = new_bucket()
    s3.put_object(Bucket=name, Key="open", Body=b"open", ACL="public-read")
    assert anonymous_get(node, name, "open") == 200
    s3.put_bucket_acl(Bucket=name, ACL="public-read")
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert refusal(lambda: s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)) == (
        "InvalidBucketAclWithObjectOwnership",
        400,
    )
    s3.put_bucket_acl(Bucket=name, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)

    # the object's public grant no longer counts, and its ACL reads as the bucket owner's
    assert anonymous_get(node, name, "open") == 403
    only_owner = [(ROOT_ID, "FULL_CONTROL")]
    assert grants(s3.get_object_acl(Bucket=name, Key="open")) == only_owner
    assert grants(s3.get_bucket_acl(Bucket=name)) == only_owner

    not_supported = ("AccessControlListNotSupported", 400)
    assert refusal(lambda: s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read")) == not_supported
    assert refusal(lambda: s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="authenticated-read")) == not_supported
    assert refusal(lambda: s3.put_bucket_acl(Bucket=name, ACL="public-read")) == not_supported
    assert refusal(lambda: s3.put_object_acl(Bucket=name, Key="open", ACL="public-read")) == not_supported
    assert refusal(lambda: s3.create_multipart_upload(Bucket=name, Key="m", ACL="public-read")) == not_supported
    s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_bucket_acl(Bucket=name, ACL="private")
    s3.put_object_acl(Bucket=name, Key="k", ACL="bucket-owner-full-control")

    # the bucket owner owns what another user writes
    user, client, _ = new_user(allow("s3:PutObject", f"arn:aws:s3:::{name}/*"))
    client.put_object(Bucket=name, Key="theirs", Body=b"t", ACL="bucket-owner-full-control")
    client.put_object(Bucket=name, Key="plain", Body=b"p")
    for key in ("theirs", "plain"):
        answer = s3.get_object_acl(Bucket=name, Key=key)
        assert answer["Owner"]["ID"] == ROOT_ID and grants(answer) == only_owner

    # with ownership controls gone, the stored ACLs count again
    s3.delete_bucket_ownership_controls(Bucket=name)
    assert anonymous_get(node, name, "open") == 200


@pytest.mark.parametrize(("ownership", "bucket_owns"), [("BucketOwnerPreferred", True), ("ObjectWriter", False)])
def test_who_owns_an_object_written_with_bucket_owner_full_control(s3, new_bucket, new_user, ownership, bucket_owns):
    name = new_bucket(ObjectOwnership=ownership)
    user, client, _ = new_user(allow("s3:PutObject", f"arn:aws:s3:::{name}/*"))
    client.put_object(Bucket=name, Key="handed", Body=b"h", ACL="bucket-owner-full-control")
    client.put_object(Bucket=name, Key="kept", Body=b"k")
    handed = s3.get_object_acl(Bucket=name, Key="handed")
    if bucket_owns:
        assert handed["Owner"]["ID"] == ROOT_ID and grants(handed) == [(ROOT_ID, "FULL_CONTROL")]
    else:
        assert handed["Owner"]["ID"] == canonical_id(user)
        assert grants(handed) == sorted([(canonical_id(user), "FULL_CONTROL"), (ROOT_ID, "FULL_CONTROL")])
    kept = s3.get_object_acl(Bucket=name, Key="kept")
    assert kept["Owner"]["ID"] == canonical_id(user) and grants(kept) == [(canonical_id(user), "FULL_CONTROL")]


# -- AWS's defaults for new buckets, where configured ------------------------------------------


@pytest.fixture(scope="module")
def aws_defaults_node(node_factory):
    return node_factory(extra_env={"NEBULAIO_AWS_BUCKET_DEFAULTS": "true"})


def test_aws_bucket_defaults_block_public_access_and_disable_acls(aws_defaults_node):
    s3 = aws_defaults_node.client()
    name = f"bpa-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    assert s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"] == ALL_ON
    rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert refusal(lambda: s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read")) == (
        "AccessControlListNotSupported",
        400,
    )
    assert refusal(lambda: s3.put_bucket_policy(Bucket=name, Policy=policy(name))) == ("AccessDenied", 403)

    refused = f"bpa-{uuid.uuid4().hex[:20]}"
    assert refusal(lambda: s3.create_bucket(Bucket=refused, ACL="public-read")) == (
        "InvalidBucketAclWithObjectOwnership",
        400,
    )
    assert refusal(lambda: s3.create_bucket(Bucket=refused, ACL="public-read", ObjectOwnership="ObjectWriter")) == (
        "AccessDenied",
        403,
    )
    assert refusal(lambda: s3.head_bucket(Bucket=refused))[1] == 404
    writer = f"bpa-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=writer, ObjectOwnership="ObjectWriter", ACL="private")
    assert s3.get_bucket_ownership_controls(Bucket=writer)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "ObjectWriter"}
    ]
    s3.delete_public_access_block(Bucket=writer)
    s3.put_object(Bucket=writer, Key="k", Body=b"x", ACL="public-read")
    assert anonymous_get(aws_defaults_node, writer, "k") == 200
    s3.delete_object(Bucket=writer, Key="k")
    for bucket in (name, writer):
        s3.delete_bucket(Bucket=bucket)
