"""Identity policies on a real node: actions, resources, Deny, Not*, variables and conditions."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import allow

from nebulaio.iam.service import IamError


def denied(call) -> bool:
    try:
        call()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
        return True
    return False


@pytest.fixture
def seeded(bucket, s3):
    for key in ("home/alice/a", "home/bob/b", "public/p", "tagged"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.put_object_tagging(Bucket=bucket, Key="tagged", Tagging={"TagSet": [{"Key": "class", "Value": "open"}]})
    return bucket


def test_an_allow_grants_only_its_actions_and_resources(new_user, seeded):
    _, client, _ = new_user(allow(["s3:GetObject"], [f"arn:aws:s3:::{seeded}/public/*"]))
    assert client.get_object(Bucket=seeded, Key="public/p")["Body"].read() == b"public/p"
    assert denied(lambda: client.get_object(Bucket=seeded, Key="home/bob/b"))
    assert denied(lambda: client.put_object(Bucket=seeded, Key="public/new", Body=b"x"))
    assert denied(lambda: client.list_objects_v2(Bucket=seeded))
    assert denied(lambda: client.delete_object(Bucket=seeded, Key="public/p"))


def test_wildcard_actions_and_the_version_forms(new_user, seeded, s3):
    _, client, _ = new_user(allow("s3:Get*Object", f"arn:aws:s3:::{seeded}/*"))
    client.get_object(Bucket=seeded, Key="public/p")
    client.head_object(Bucket=seeded, Key="public/p")
    # a versionId makes the read s3:GetObjectVersion, which s3:Get*Object does not match
    assert denied(lambda: client.get_object(Bucket=seeded, Key="public/p", VersionId="null"))
    _, versions, _ = new_user(allow("s3:GetObjectVersion", f"arn:aws:s3:::{seeded}/*"))
    assert versions.get_object(Bucket=seeded, Key="public/p", VersionId="null")["Body"].read() == b"public/p"


def test_deny_beats_allow(new_user, seeded):
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{seeded}/home/*"},
        ],
    }
    _, client, _ = new_user(document)
    client.get_object(Bucket=seeded, Key="public/p")
    assert denied(lambda: client.get_object(Bucket=seeded, Key="home/alice/a"))
    # a Deny in a second policy of the same user wins just the same
    _, other, _ = new_user(allow("s3:*", "*"), allow("s3:GetObject", "*", effect="Deny"))
    assert denied(lambda: other.get_object(Bucket=seeded, Key="public/p"))
    other.list_objects_v2(Bucket=seeded)


def test_not_action_and_not_resource(new_user, seeded):
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": f"arn:aws:s3:::{seeded}/home/*"}
        ],
    }
    _, client, _ = new_user(document)
    client.put_object(Bucket=seeded, Key="public/new", Body=b"x")
    assert denied(lambda: client.delete_object(Bucket=seeded, Key="public/new"))
    assert denied(lambda: client.get_object(Bucket=seeded, Key="home/bob/b"))


def test_policy_variables(new_user, seeded, s3):
    document = allow(["s3:GetObject", "s3:PutObject"], f"arn:aws:s3:::{seeded}/home/${{aws:username}}/*")
    name, client, _ = new_user(document)
    client.put_object(Bucket=seeded, Key=f"home/{name}/mine", Body=b"x")
    assert denied(lambda: client.get_object(Bucket=seeded, Key="home/alice/a"))
    # with the 2008 grammar, ${...} is literal text
    _, old, _ = new_user(dict(document, Version="2008-10-17"))
    assert denied(lambda: old.get_object(Bucket=seeded, Key=f"home/{name}/mine"))


def list_with(condition: dict) -> dict:
    statement = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*", "Condition": condition}
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_string_conditions_on_listing_keys(new_user, seeded):
    _, client, _ = new_user(list_with({"StringEquals": {"s3:prefix": ["public/", "home/"]}}))
    client.list_objects_v2(Bucket=seeded, Prefix="public/")
    assert denied(lambda: client.list_objects_v2(Bucket=seeded, Prefix="other/"))
    assert denied(lambda: client.list_objects_v2(Bucket=seeded))
    _, like, _ = new_user(
        list_with({"StringLike": {"s3:prefix": "home/*"}, "StringEqualsIfExists": {"s3:delimiter": "/"}})
    )
    like.list_objects_v2(Bucket=seeded, Prefix="home/al")
    like.list_objects_v2(Bucket=seeded, Prefix="home/", Delimiter="/")
    assert denied(lambda: like.list_objects_v2(Bucket=seeded, Prefix="home/", Delimiter="-"))
    _, unlike, _ = new_user(list_with({"StringNotLike": {"s3:prefix": "home/*"}}))
    unlike.list_objects_v2(Bucket=seeded)  # no prefix: a Not operator holds for a missing key
    assert denied(lambda: unlike.list_objects_v2(Bucket=seeded, Prefix="home/x"))
    _, nocase, _ = new_user(list_with({"StringEqualsIgnoreCase": {"s3:prefix": "PUBLIC/"}}))
    nocase.list_objects_v2(Bucket=seeded, Prefix="public/")


def test_numeric_null_bool_and_ip_conditions(new_user, seeded):
    _, numeric, _ = new_user(list_with({"NumericLessThanEquals": {"s3:max-keys": "10"}}))
    numeric.list_objects_v2(Bucket=seeded, MaxKeys=5)
    assert denied(lambda: numeric.list_objects_v2(Bucket=seeded, MaxKeys=50))
    _, null, _ = new_user(list_with({"Null": {"s3:prefix": "false"}}))
    null.list_objects_v2(Bucket=seeded, Prefix="p")
    assert denied(lambda: null.list_objects_v2(Bucket=seeded))
    _, plain, _ = new_user(list_with({"Bool": {"aws:SecureTransport": "false"}}))
    plain.list_objects_v2(Bucket=seeded)
    _, tls_only, _ = new_user(list_with({"Bool": {"aws:SecureTransport": True}}))
    assert denied(lambda: tls_only.list_objects_v2(Bucket=seeded))
    _, local, _ = new_user(list_with({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    local.list_objects_v2(Bucket=seeded)
    _, remote, _ = new_user(list_with({"NotIpAddress": {"aws:SourceIp": ["127.0.0.1/32", "::1/128"]}}))
    assert denied(lambda: remote.list_objects_v2(Bucket=seeded))


def test_date_arn_and_principal_conditions(new_user, seeded):
    _, before, _ = new_user(list_with({"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}))
    assert denied(lambda: before.list_objects_v2(Bucket=seeded))
    _, after, _ = new_user(list_with({"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}))
    after.list_objects_v2(Bucket=seeded)
    _, epoch, _ = new_user(list_with({"NumericGreaterThan": {"aws:EpochTime": 946684800}}))
    epoch.list_objects_v2(Bucket=seeded)
    _, arn, _ = new_user(list_with({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/user-*"}}))
    arn.list_objects_v2(Bucket=seeded)
    _, kind, _ = new_user(list_with({"StringEquals": {"aws:PrincipalType": "Anonymous"}}))
    assert denied(lambda: kind.list_objects_v2(Bucket=seeded))
    _, me, _ = new_user(list_with({"StringEquals": {"aws:username": "${aws:username}"}}))
    me.list_objects_v2(Bucket=seeded)


def test_object_tag_conditions_and_set_operators(new_user, seeded):
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"StringEquals": {"s3:ExistingObjectTag/class": "open"}},
    }
    _, reader, _ = new_user({"Version": "2012-10-17", "Statement": statement})
    reader.get_object(Bucket=seeded, Key="tagged")
    assert denied(lambda: reader.get_object(Bucket=seeded, Key="public/p"))
    put_tagged = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "*",
            "Condition": {
                "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "class"]},
                "StringEquals": {"s3:RequestObjectTag/team": "blue"},
            },
        },
    }
    _, writer, _ = new_user(put_tagged)
    writer.put_object(Bucket=seeded, Key="w1", Body=b"x", Tagging="team=blue&class=a")
    assert denied(lambda: writer.put_object(Bucket=seeded, Key="w2", Body=b"x", Tagging="team=red"))
    assert denied(lambda: writer.put_object(Bucket=seeded, Key="w3", Body=b"x", Tagging="team=blue&other=1"))
    any_value = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringLike": {"s3:RequestObjectTagKeys": "sec*"}},
        },
    }
    _, tagger, _ = new_user(any_value)
    tagger.put_object(Bucket=seeded, Key="w4", Body=b"x", Tagging="a=1&secret=2")
    assert denied(lambda: tagger.put_object(Bucket=seeded, Key="w5", Body=b"x"))


def test_copy_needs_read_of_the_source(new_user, seeded):
    _, writer, _ = new_user(allow("s3:PutObject", f"arn:aws:s3:::{seeded}/public/*"))
    source = {"Bucket": seeded, "Key": "home/bob/b"}
    assert denied(lambda: writer.copy_object(Bucket=seeded, Key="public/copy", CopySource=source))
    _, copier, _ = new_user(allow(["s3:PutObject", "s3:GetObject"], f"arn:aws:s3:::{seeded}/*"))
    copier.copy_object(Bucket=seeded, Key="public/copy", CopySource=source)


def test_delete_objects_is_decided_key_by_key(new_user, seeded):
    _, client, _ = new_user(allow("s3:DeleteObject", f"arn:aws:s3:::{seeded}/public/*"))
    result = client.delete_objects(Bucket=seeded, Delete={"Objects": [{"Key": "public/p"}, {"Key": "home/bob/b"}]})
    assert [d["Key"] for d in result["Deleted"]] == ["public/p"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("home/bob/b", "AccessDenied")]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "Policies must be valid JSON and the first byte must be '{'"),
        ("{", "This policy contains invalid Json"),
        ('{"Version": "2012-10-17"}', "Policy document must contain a Statement"),
        ('{"Version": "2019-01-01", "Statement": []}', "The policy must contain a valid version string"),
        ('{"Statement": {"Action": "s3:*", "Resource": "*"}}', "Missing required field Effect"),
        ('{"Statement": {"Effect": "Allow", "Resource": "*"}}', "Missing required field Action"),
        ('{"Statement": {"Effect": "Allow", "Action": "s3:*"}}', "Missing required field Resource"),
        ('{"Statement": {"Effect": "Allow", "Action": "get", "Resource": "*"}}', "Policy has invalid action: get"),
        (
            '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}}',
            "Policy document should not specify a principal.",
        ),
        (
            '{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", '
            '"Condition": {"Maybe": {"a:b": "c"}}}}',
            "Invalid Condition type : Maybe",
        ),
        ('{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Colour": 1}}', "Unknown field Colour"),
        ('{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "' + "x" * 7000 + '"}}', "6144"),
    ],
)
def test_malformed_identity_policies_say_what_is_wrong(iam, document, message):
    with pytest.raises(IamError) as caught:
        iam.put_policy("malformed", document)
    assert caught.value.code == "MalformedPolicyDocument"
    assert message in caught.value.message


def test_an_unsigned_request_with_no_policy_is_denied(node, seeded):
    answer = requests.get(f"{node.s3_url}/{seeded}/public/p", timeout=10)
    assert answer.status_code == 403 and b"<Code>AccessDenied</Code>" in answer.content
