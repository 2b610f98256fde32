"""Accounts and ACLs as S3 has them, on a real node.

Every user is an account of its own, known by its canonical id: one that may only create
buckets reaches another's bucket only through that bucket's ACL or policy, and an object
another account wrote only through the object's ACL. Grants carry their grantee's type,
x-amz-expected-bucket-owner refuses a bucket someone else owns, and an anonymous browser form
lands in a bucket that lets everyone write.
"""

from __future__ import annotations

import json
import re
import uuid
from functools import partial
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError
from conftest import ROOT_USER, allow, empty_bucket, signed_request
from test_post_object import multipart, send

from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.policy import USER_ARN_PREFIX

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
ANONYMOUS_ID = "65a011a29cdf8ec533ec3d1ccaae921c"
CREATE_ONLY = allow("s3:CreateBucket", "*")
NOBODY = "0" * 64


class Account:
    """A user that may create buckets and nothing else: an account of its own."""

    def __init__(self, name: str, client, pair: dict):
        self.name = name
        self.client = client
        self.pair = pair
        self.id = canonical_id(name)


def refusal(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def grants(answer: dict) -> list[tuple]:
    """(type, ID or URI, DisplayName, permission) of every grant boto3 read."""
    found = []
    for grant in answer["Grants"]:
        grantee = grant["Grantee"]
        found.append(
            (grantee["Type"], grantee.get("ID") or grantee.get("URI"), grantee.get("DisplayName"), grant["Permission"])
        )
    return sorted(found, key=str)


def grant_xml(kind: str, inner: str, permission: str) -> str:
    return f'<Grant><Grantee xsi:type="{kind}">{inner}</Grantee><Permission>{permission}</Permission></Grant>'


def error_of(response) -> tuple[str, int]:
    return ElementTree.fromstring(response.content).findtext("Code"), response.status_code


@pytest.fixture
def account(new_user):
    """account() -> a new Account."""
    return lambda: Account(*new_user(CREATE_ONLY))


@pytest.fixture
def buckets(s3):
    """buckets(client, **create_bucket arguments) -> a new bucket the client's account owns;
    every one is emptied and removed (by root) after the test."""
    made = []

    def make(client, **arguments) -> str:
        name = f"acct-{uuid.uuid4().hex[:20]}"
        client.create_bucket(Bucket=name, **arguments)
        made.append(name)
        return name

    yield make
    for name in made:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)


@pytest.fixture
def mail_account(iam, node):
    """An account whose name is an email address, which grants by email resolve to."""
    name = f"mail-{uuid.uuid4().hex[:12]}@example.com"
    iam.create_user(name)
    yield name
    iam.delete_user(name)


def test_canonical_ids_name_owners_everywhere(new_user, buckets):
    alice = Account(*new_user(allow(["s3:CreateBucket", "s3:ListAllMyBuckets"], "*")))
    assert re.fullmatch("[0-9a-f]{64}", alice.id) and alice.id != canonical_id(ROOT_USER)
    assert canonical_id(alice.name) == alice.id  # stable: the same name, the same id
    mine = buckets(alice.client)
    listed = alice.client.list_buckets()
    assert listed["Owner"] == {"ID": alice.id, "DisplayName": alice.name}
    assert mine in [b["Name"] for b in listed["Buckets"]]
    alice.client.put_object(Bucket=mine, Key="k", Body=b"x")
    assert alice.client.get_bucket_acl(Bucket=mine)["Owner"] == {"ID": alice.id, "DisplayName": alice.name}
    assert alice.client.get_object_acl(Bucket=mine, Key="k")["Owner"] == {"ID": alice.id, "DisplayName": alice.name}
    owned = alice.client.list_objects_v2(Bucket=mine, FetchOwner=True)["Contents"][0]["Owner"]
    assert owned == {"ID": alice.id, "DisplayName": alice.name}


def test_an_account_lists_its_own_buckets_and_root_lists_them_all(new_user, buckets, s3):
    lister = allow(["s3:CreateBucket", "s3:ListAllMyBuckets"], "*")
    alice, bob = Account(*new_user(lister)), Account(*new_user(lister))
    hers, his = buckets(alice.client), buckets(bob.client)
    assert hers in [b["Name"] for b in alice.client.list_buckets()["Buckets"]]
    assert his not in [b["Name"] for b in alice.client.list_buckets()["Buckets"]]
    assert {hers, his} <= {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_another_account_reaches_a_bucket_only_through_its_acl_or_policy(account, buckets):
    alice, bob = account(), account()
    mine = buckets(alice.client)
    alice.client.put_object(Bucket=mine, Key="k", Body=b"alice's")
    for call in (
        lambda: bob.client.list_objects_v2(Bucket=mine),
        lambda: bob.client.get_object(Bucket=mine, Key="k"),
        lambda: bob.client.put_object(Bucket=mine, Key="bob", Body=b"b"),
        lambda: bob.client.get_bucket_acl(Bucket=mine),
        lambda: bob.client.put_bucket_acl(Bucket=mine, ACL="public-read"),
        lambda: bob.client.get_bucket_policy(Bucket=mine),
        lambda: bob.client.delete_object(Bucket=mine, Key="k"),
    ):
        assert refusal(call) == ("AccessDenied", 403)
    assert refusal(lambda: bob.client.create_bucket(Bucket=mine))[1] == 409  # the name is alice's

    alice.client.put_bucket_acl(Bucket=mine, GrantRead=f'id="{bob.id}"', GrantFullControl=f'id="{alice.id}"')
    assert [o["Key"] for o in bob.client.list_objects_v2(Bucket=mine)["Contents"]] == ["k"]
    assert refusal(lambda: bob.client.get_object(Bucket=mine, Key="k")) == ("AccessDenied", 403)  # object ACL
    assert refusal(lambda: bob.client.put_object(Bucket=mine, Key="bob", Body=b"b")) == ("AccessDenied", 403)
    alice.client.put_object_acl(Bucket=mine, Key="k", GrantRead=f'id="{bob.id}"')
    assert bob.client.get_object(Bucket=mine, Key="k")["Body"].read() == b"alice's"

    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": USER_ARN_PREFIX + bob.name},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{mine}/drop/*",
    }
    alice.client.put_bucket_policy(Bucket=mine, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    bob.client.put_object(Bucket=mine, Key="drop/bob", Body=b"bob's")
    assert refusal(lambda: bob.client.put_object(Bucket=mine, Key="elsewhere", Body=b"b")) == ("AccessDenied", 403)
    # bob owns what he wrote: alice reads it only if he grants her, but she may delete it
    assert refusal(lambda: alice.client.get_object(Bucket=mine, Key="drop/bob")) == ("AccessDenied", 403)
    owners = {o["Key"]: o["Owner"]["ID"] for o in alice.client.list_objects(Bucket=mine)["Contents"]}
    assert owners == {"k": alice.id, "drop/bob": bob.id}
    alice.client.delete_object(Bucket=mine, Key="drop/bob")
    assert [o["Key"] for o in alice.client.list_objects_v2(Bucket=mine)["Contents"]] == ["k"]


def test_canned_acls_name_the_bucket_owner(account, buckets):
    alice, bob = account(), account()
    mine = buckets(alice.client)
    alice.client.put_bucket_acl(Bucket=mine, GrantWrite=f'id="{bob.id}"', GrantFullControl=f'id="{alice.id}"')
    bob.client.put_object(Bucket=mine, Key="read", Body=b"r", ACL="bucket-owner-read")
    bob.client.put_object(Bucket=mine, Key="full", Body=b"f", ACL="bucket-owner-full-control")
    bob.client.put_object(Bucket=mine, Key="private", Body=b"p")

    answer = bob.client.get_object_acl(Bucket=mine, Key="read")
    assert answer["Owner"] == {"ID": bob.id, "DisplayName": bob.name}
    assert grants(answer) == sorted(
        [("CanonicalUser", bob.id, bob.name, "FULL_CONTROL"), ("CanonicalUser", alice.id, alice.name, "READ")], key=str
    )
    assert alice.client.get_object(Bucket=mine, Key="read")["Body"].read() == b"r"
    assert refusal(lambda: alice.client.get_object_acl(Bucket=mine, Key="read")) == ("AccessDenied", 403)

    answer = alice.client.get_object_acl(Bucket=mine, Key="full")
    assert grants(answer) == sorted(
        [("CanonicalUser", bob.id, bob.name, "FULL_CONTROL"), ("CanonicalUser", alice.id, alice.name, "FULL_CONTROL")],
        key=str,
    )
    assert alice.client.get_object(Bucket=mine, Key="full")["Body"].read() == b"f"

    assert refusal(lambda: alice.client.get_object(Bucket=mine, Key="private")) == ("AccessDenied", 403)
    assert refusal(lambda: alice.client.head_object(Bucket=mine, Key="private"))[1] == 403

    # the bucket owner writing with these canned ACLs grants itself nothing twice
    alice.client.put_object(Bucket=mine, Key="own", Body=b"o", ACL="bucket-owner-full-control")
    assert grants(alice.client.get_object_acl(Bucket=mine, Key="own")) == [
        ("CanonicalUser", alice.id, alice.name, "FULL_CONTROL")
    ]
    listed = alice.client.list_objects_v2(Bucket=mine, FetchOwner=True)["Contents"]
    assert {o["Key"]: o["Owner"]["DisplayName"] for o in listed} == {
        "full": bob.name,
        "own": alice.name,
        "private": bob.name,
        "read": bob.name,
    }
    versions = alice.client.list_object_versions(Bucket=mine)["Versions"]
    assert {v["Key"]: v["Owner"]["ID"] for v in versions}["private"] == bob.id
    alice.client.delete_object(Bucket=mine, Key="private")  # the bucket owner deletes what it cannot read


def test_every_grant_carries_its_grantee_type(node, account, buckets, mail_account):
    alice, bob = account(), account()
    mine = buckets(alice.client)
    body = (
        '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<Owner><ID>{alice.id}</ID></Owner><AccessControlList>"
        + grant_xml("CanonicalUser", f"<ID>{alice.id}</ID>", "FULL_CONTROL")
        + grant_xml("CanonicalUser", f"<ID>{bob.id}</ID>", "READ")
        + grant_xml("Group", f"<URI>{AUTHENTICATED}</URI>", "READ_ACP")
        + grant_xml("AmazonCustomerByEmail", f"<EmailAddress>{mail_account.upper()}</EmailAddress>", "WRITE")
        + "</AccessControlList></AccessControlPolicy>"
    ).encode()
    keys = {"access_key": alice.pair["accessKey"], "secret_key": alice.pair["secretKey"]}
    assert signed_request(node, "PUT", f"/{mine}?acl", body, **keys).status_code == 200

    answer = signed_request(node, "GET", f"/{mine}?acl", **keys)
    assert answer.status_code == 200
    document = ElementTree.fromstring(answer.content)
    shown = []
    for grant in document.iter(f"{S3_NS}Grant"):
        grantee = grant.find(f"{S3_NS}Grantee")
        fields = {child.tag.removeprefix(S3_NS): child.text for child in grantee}
        shown.append((grantee.get(XSI_TYPE), fields, grant.findtext(f"{S3_NS}Permission")))
    assert sorted(shown, key=str) == sorted(
        [
            ("CanonicalUser", {"ID": alice.id, "DisplayName": alice.name}, "FULL_CONTROL"),
            ("CanonicalUser", {"ID": bob.id, "DisplayName": bob.name}, "READ"),
            ("Group", {"URI": AUTHENTICATED}, "READ_ACP"),
            # S3 keeps a grant by email as a grant to the account the address resolves to
            ("CanonicalUser", {"ID": canonical_id(mail_account), "DisplayName": mail_account}, "WRITE"),
        ],
        key=str,
    )
    bob.client.list_objects_v2(Bucket=mine)  # READ
    bob.client.get_bucket_acl(Bucket=mine)  # READ_ACP, as every signed-in account

    alice.client.put_object(Bucket=mine, Key="k", Body=b"x")
    alice.client.put_object_acl(
        Bucket=mine,
        Key="k",
        GrantRead=f'emailAddress="{mail_account}", uri="{ALL_USERS}"',
        GrantFullControl=f'id="{alice.id}"',
    )
    assert grants(alice.client.get_object_acl(Bucket=mine, Key="k")) == sorted(
        [
            ("CanonicalUser", alice.id, alice.name, "FULL_CONTROL"),
            ("CanonicalUser", canonical_id(mail_account), mail_account, "READ"),
            ("Group", ALL_USERS, None, "READ"),
        ],
        key=str,
    )


def test_a_grant_to_no_account_is_refused_and_changes_nothing(node, account, buckets):
    alice = account()
    mine = buckets(alice.client)
    alice.client.put_object(Bucket=mine, Key="k", Body=b"x")
    before = grants(alice.client.get_bucket_acl(Bucket=mine))
    object_before = grants(alice.client.get_object_acl(Bucket=mine, Key="k"))

    def body(grantee: str) -> bytes:
        return (
            '<AccessControlPolicy xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><AccessControlList>'
            f"<Grant>{grantee}<Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"
        ).encode()

    keys = {"access_key": alice.pair["accessKey"], "secret_key": alice.pair["secretKey"]}
    unknown_id = body(f'<Grantee xsi:type="CanonicalUser"><ID>{NOBODY}</ID></Grantee>')
    unknown_email = body(
        '<Grantee xsi:type="AmazonCustomerByEmail"><EmailAddress>no@example.com</EmailAddress></Grantee>'
    )
    empty_email = body('<Grantee xsi:type="AmazonCustomerByEmail"><EmailAddress></EmailAddress></Grantee>')
    for path in (f"/{mine}?acl", f"/{mine}/k?acl"):
        assert error_of(signed_request(node, "PUT", path, unknown_id, **keys)) == ("InvalidArgument", 400)
        assert error_of(signed_request(node, "PUT", path, unknown_email, **keys)) == (
            "UnresolvableGrantByEmailAddress",
            400,
        )
        assert error_of(signed_request(node, "PUT", path, empty_email, **keys)) == ("MalformedACLError", 400)
    for header in (f'id="{NOBODY}"', 'emailAddress="no@example.com"'):
        code = "InvalidArgument" if header.startswith("id") else "UnresolvableGrantByEmailAddress"
        for call in (
            partial(alice.client.put_bucket_acl, Bucket=mine, GrantRead=header),
            partial(alice.client.put_object_acl, Bucket=mine, Key="k", GrantRead=header),
            partial(alice.client.put_object, Bucket=mine, Key="new", Body=b"n", GrantRead=header),
        ):
            assert refusal(call) == (code, 400)
    assert grants(alice.client.get_bucket_acl(Bucket=mine)) == before
    assert grants(alice.client.get_object_acl(Bucket=mine, Key="k")) == object_before
    assert [o["Key"] for o in alice.client.list_objects_v2(Bucket=mine)["Contents"]] == ["k"]


def test_expected_bucket_owner(s3, account, buckets, bucket):
    alice, bob = account(), account()
    mine = buckets(alice.client)
    alice.client.put_object(Bucket=mine, Key="k", Body=b"x")
    assert alice.client.get_object(Bucket=mine, Key="k", ExpectedBucketOwner=alice.id)["Body"].read() == b"x"
    alice.client.list_objects_v2(Bucket=mine, ExpectedBucketOwner=alice.id)
    for client in (alice.client, s3):  # root as well: the header guards whoever sends it
        for call in (
            partial(client.get_object, Bucket=mine, Key="k", ExpectedBucketOwner=bob.id),
            partial(client.list_objects_v2, Bucket=mine, ExpectedBucketOwner=bob.id),
            partial(client.put_object, Bucket=mine, Key="new", Body=b"n", ExpectedBucketOwner=bob.id),
            partial(client.get_bucket_acl, Bucket=mine, ExpectedBucketOwner=bob.id),
            partial(client.put_bucket_acl, Bucket=mine, ACL="public-read", ExpectedBucketOwner=bob.id),
            partial(client.delete_object, Bucket=mine, Key="k", ExpectedBucketOwner=bob.id),
        ):
            assert refusal(call) == ("AccessDenied", 403)
        assert refusal(partial(client.head_bucket, Bucket=mine, ExpectedBucketOwner=bob.id)) == ("403", 403)
    assert [o["Key"] for o in alice.client.list_objects_v2(Bucket=mine)["Contents"]] == ["k"]
    assert grants(alice.client.get_bucket_acl(Bucket=mine)) == [("CanonicalUser", alice.id, alice.name, "FULL_CONTROL")]
    assert refusal(lambda: s3.list_objects_v2(Bucket=f"{mine}-none", ExpectedBucketOwner=bob.id)) == (
        "NoSuchBucket",
        404,
    )

    # a copy: the source's owner is x-amz-source-expected-bucket-owner, the target's the other
    source = {"Bucket": mine, "Key": "k"}
    root_id = canonical_id(ROOT_USER)
    wrong_source = lambda: s3.copy_object(  # noqa: E731
        Bucket=bucket, Key="copy", CopySource=source, ExpectedSourceBucketOwner=bob.id
    )
    assert refusal(wrong_source) == ("AccessDenied", 403)
    wrong_target = lambda: s3.copy_object(Bucket=bucket, Key="copy", CopySource=source, ExpectedBucketOwner=alice.id)  # noqa: E731
    assert refusal(wrong_target) == ("AccessDenied", 403)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    s3.copy_object(
        Bucket=bucket, Key="copy", CopySource=source, ExpectedSourceBucketOwner=alice.id, ExpectedBucketOwner=root_id
    )
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"x"


def anonymous_post(node, bucket: str, key: str, body: bytes = b"anonymous", **fields):
    return send(node, bucket, multipart([("key", key), *fields.items()], body))


def test_anonymous_form_uploads_land_only_where_everyone_may_write(s3, node, buckets):
    by_acl = buckets(s3)
    status, _, answer = anonymous_post(node, by_acl, "refused")
    assert (status, ElementTree.fromstring(answer).findtext("Code")) == (403, "AccessDenied")

    s3.put_bucket_acl(Bucket=by_acl, ACL="public-read-write")
    status, headers, answer = anonymous_post(node, by_acl, "dropped", success_action_status="201")
    assert status == 201, answer
    assert ElementTree.fromstring(answer).findtext("Key") == "dropped"
    assert s3.get_object(Bucket=by_acl, Key="dropped")["Body"].read() == b"anonymous"
    assert s3.get_object_acl(Bucket=by_acl, Key="dropped")["Owner"] == {"ID": ANONYMOUS_ID, "DisplayName": "anonymous"}
    # a policy in the form without credentials to sign it is refused, as S3 refuses it
    status, _, answer = anonymous_post(node, by_acl, "unsigned", policy="e30=")
    assert status == 400 and ElementTree.fromstring(answer).findtext("ArgumentName") == "AWSAccessKeyId"
    s3.put_public_access_block(Bucket=by_acl, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    status, _, answer = anonymous_post(node, by_acl, "ignored")
    assert (status, ElementTree.fromstring(answer).findtext("Code")) == (403, "AccessDenied")

    by_policy = buckets(s3)
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{by_policy}/*",
    }
    s3.put_bucket_policy(Bucket=by_policy, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    assert anonymous_post(node, by_policy, "by-policy")[0] == 204
    status, _, answer = anonymous_post(node, by_policy, "public", acl="public-read")
    assert status == 204, answer
    s3.put_public_access_block(Bucket=by_policy, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    status, _, answer = anonymous_post(node, by_policy, "blocked", acl="public-read")
    assert (status, ElementTree.fromstring(answer).findtext("Code")) == (403, "AccessDenied")
    s3.put_public_access_block(Bucket=by_policy, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    status, _, answer = anonymous_post(node, by_policy, "restricted")
    assert (status, ElementTree.fromstring(answer).findtext("Code")) == (403, "AccessDenied")

    enforced = buckets(s3, ObjectOwnership="BucketOwnerEnforced")
    statement["Resource"] = f"arn:aws:s3:::{enforced}/*"
    s3.put_bucket_policy(Bucket=enforced, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    status, _, answer = anonymous_post(node, enforced, "with-acl", acl="public-read")
    assert (status, ElementTree.fromstring(answer).findtext("Code")) == (400, "AccessControlListNotSupported")
    assert anonymous_post(node, enforced, "owned")[0] == 204
    owner = s3.get_object_acl(Bucket=enforced, Key="owned")["Owner"]
    assert owner == {"ID": canonical_id(ROOT_USER), "DisplayName": ROOT_USER}
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=by_acl)["Contents"]} | {
        o["Key"] for o in s3.list_objects_v2(Bucket=by_policy)["Contents"]
    }
    assert listed == {"dropped", "by-policy", "public"}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=enforced)["Contents"]] == ["owned"]
