"""Users, access keys and groups on a real node: SigV4 finds the new keys, changes apply at once."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import ROOT_USER, allow, make_client

from nebulaio.iam.service import IamError
from nebulaio.meta.iam import KEY


def error_code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def test_a_new_key_signs_and_its_user_has_no_rights_yet(new_user):
    _, client, _ = new_user()
    assert error_code(client.list_buckets) == "AccessDenied"


def test_disable_enable_and_delete_a_key_take_effect_at_once(iam, new_user, bucket, s3):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    _, client, pair = new_user(allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*"))
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    iam.set_access_key_enabled(pair["accessKey"], False)
    assert error_code(lambda: client.get_object(Bucket=bucket, Key="k")) == "InvalidAccessKeyId"
    iam.set_access_key_enabled(pair["accessKey"], True)
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    iam.delete_access_key(pair["accessKey"])
    assert error_code(lambda: client.get_object(Bucket=bucket, Key="k")) == "InvalidAccessKeyId"


def test_a_disabled_user_cannot_sign(iam, new_user, bucket):
    name, client, _ = new_user(allow("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
    client.list_objects_v2(Bucket=bucket)
    iam.set_user_enabled(name, False)
    assert error_code(lambda: client.list_objects_v2(Bucket=bucket)) == "InvalidAccessKeyId"
    iam.set_user_enabled(name, True)
    client.list_objects_v2(Bucket=bucket)


def test_a_deleted_user_takes_its_keys_along(iam, node, bucket):
    name = f"gone-{uuid.uuid4().hex[:8]}"
    iam.create_user(name)
    pair = iam.create_access_key(name)
    iam.delete_user(name)
    client = make_client(node.s3_url, access_key=pair["accessKey"], secret_key=pair["secretKey"])
    assert error_code(lambda: client.list_objects_v2(Bucket=bucket)) == "InvalidAccessKeyId"
    with pytest.raises(IamError) as caught:
        iam.get_access_key(pair["accessKey"])
    assert caught.value.code == "NoSuchEntity"


def test_the_secret_is_shown_once_and_stored_sealed(iam, node, new_user):
    name, _, pair = new_user()
    listed = iam.list_access_keys(name)
    assert listed == [{"accessKey": pair["accessKey"], "user": name, "created": listed[0]["created"], "enabled": True}]
    stored = iam._reader.iam.get(KEY, pair["accessKey"])
    assert pair["secretKey"] not in stored["secret"]
    assert pair["secretKey"].encode() not in (node.data / "metadata" / "kv" / "data.mdb").read_bytes()


def test_an_imported_key_pair_signs(iam, node, bucket, s3):
    name = f"imported-{uuid.uuid4().hex[:8]}"
    iam.create_user(name)
    try:
        access_key = "IMPORTED" + uuid.uuid4().hex[:12].upper()
        iam.create_access_key(name, access_key, "an-imported-secret-key")
        client = make_client(node.s3_url, access_key=access_key, secret_key="an-imported-secret-key")
        assert error_code(client.list_buckets) == "AccessDenied"
        with pytest.raises(IamError) as caught:
            iam.create_access_key(name, access_key, "another-secret-key")
        assert caught.value.code == "EntityAlreadyExists"
    finally:
        iam.delete_user(name)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda iam: iam.create_user(ROOT_USER), "EntityAlreadyExists"),
        (lambda iam: iam.create_user("bad name!"), "InvalidInput"),
        (lambda iam: iam.create_access_key("nobody-at-all"), "NoSuchEntity"),
        (lambda iam: iam.create_access_key("nobody-at-all", "SHORT", "secret-key"), "InvalidInput"),
        (lambda iam: iam.create_access_key("nobody-at-all", "HALFAPAIRONLY123", None), "InvalidInput"),
        (lambda iam: iam.attach_policy("no-such-policy", user="nobody-at-all"), "NoSuchEntity"),
        (lambda iam: iam.delete_group("no-such-group"), "NoSuchEntity"),
        (lambda iam: iam.put_policy("p", "{}"), "MalformedPolicyDocument"),
    ],
)
def test_refused_identity_changes(iam, call, code):
    with pytest.raises(IamError) as caught:
        call(iam)
    assert caught.value.code == code


def test_policies_through_groups_and_detaching(iam, new_user, bucket, s3):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    group = f"readers-{uuid.uuid4().hex[:8]}"
    policy = f"read-{uuid.uuid4().hex[:8]}"
    iam.create_group(group)
    iam.put_policy(policy, json.dumps(allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*")))
    iam.attach_policy(policy, group=group)
    try:
        name, client, _ = new_user(groups=[group])
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
        assert iam.get_group(group)["members"] == [name]
        assert iam.get_user(name)["groups"] == [group]
        with pytest.raises(IamError) as caught:
            iam.delete_policy(policy)
        assert caught.value.code == "DeleteConflict"
        iam.remove_user_from_group(group, name)
        assert error_code(lambda: client.get_object(Bucket=bucket, Key="k")) == "AccessDenied"
        iam.add_user_to_group(group, name)
        client.get_object(Bucket=bucket, Key="k")
        iam.detach_policy(policy, group=group)
        assert error_code(lambda: client.get_object(Bucket=bucket, Key="k")) == "AccessDenied"
    finally:
        iam.delete_group(group)
        iam.delete_policy(policy)
    assert policy not in [p["name"] for p in iam.list_policies()]


def test_replacing_a_policy_document_takes_effect_at_once(iam, new_user, bucket, s3):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    name, client, _ = new_user(allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*"))
    (policy,) = iam.get_user(name)["policies"]
    client.get_object(Bucket=bucket, Key="k")
    iam.put_policy(policy, json.dumps(allow("s3:GetObject", "arn:aws:s3:::other/*")))
    assert error_code(lambda: client.get_object(Bucket=bucket, Key="k")) == "AccessDenied"
