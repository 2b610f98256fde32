"""Identities over the Admin API on a real node: users, keys, groups, policies, bucket policies,
logins with an IAM key pair, what such a login may do, and the tokens a change refuses."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import allow, make_client
from test_admin_api import assert_error, call, login

TIMEOUT = 10


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def user_login(node, pair: dict) -> dict:
    response = requests.post(
        node.admin_url + "/api/v1/auth/login",
        json={"username": pair["accessKey"], "password": pair["secretKey"]},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def token(node) -> str:
    return login(node)["token"]


def test_users_and_keys(node, token):
    name = unique("admin-user")
    created = call(node, "POST", "/api/v1/users", token, json={"name": name})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/v1/users/{name}"
    user = created.json()
    assert user["name"] == name and user["enabled"] is True and user["accessKeys"] == []
    assert_error(call(node, "POST", "/api/v1/users", token, json={"name": name}), 409, "EntityAlreadyExists")
    assert_error(call(node, "POST", "/api/v1/users", token, json={"name": "no spaces"}), 400, "InvalidInput")
    assert name in [u["name"] for u in call(node, "GET", "/api/v1/users", token).json()["users"]]

    pair = call(node, "POST", f"/api/v1/users/{name}/keys", token).json()
    assert set(pair) == {"accessKey", "secretKey"}
    imported = {"accessKey": "IMPORTED" + uuid.uuid4().hex[:12].upper(), "secretKey": "an-imported-secret-key"}
    assert call(node, "POST", f"/api/v1/users/{name}/keys", token, json=imported).json() == imported
    assert_error(call(node, "POST", f"/api/v1/users/{name}/keys", token, json=imported), 409, "EntityAlreadyExists")
    half = {"accessKey": imported["accessKey"]}
    assert_error(call(node, "POST", f"/api/v1/users/{name}/keys", token, json=half), 400, "InvalidInput")
    assert_error(call(node, "POST", "/api/v1/users/nobody-here/keys", token), 404, "NoSuchEntity")

    # The secret is shown once: nothing the API answers later carries it.
    keys = call(node, "GET", f"/api/v1/users/{name}/keys", token)
    shown = call(node, "GET", f"/api/v1/users/{name}", token)
    for response in (keys, shown, call(node, "GET", "/api/v1/users", token)):
        assert pair["secretKey"] not in response.text and imported["secretKey"] not in response.text
    assert sorted(k["accessKey"] for k in keys.json()["accessKeys"]) == sorted(
        [pair["accessKey"], imported["accessKey"]]
    )
    assert sorted(shown.json()["accessKeys"]) == sorted([pair["accessKey"], imported["accessKey"]])

    # The imported pair signs S3 requests until it is disabled.
    s3 = make_client(node.s3_url, access_key=imported["accessKey"], secret_key=imported["secretKey"])
    with pytest.raises(ClientError) as denied:
        s3.list_buckets()
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    disabled = call(node, "PATCH", f"/api/v1/keys/{imported['accessKey']}", token, json={"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    with pytest.raises(ClientError) as refused:
        s3.list_buckets()
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert call(node, "DELETE", f"/api/v1/keys/{imported['accessKey']}", token).status_code == 204
    assert_error(call(node, "DELETE", f"/api/v1/keys/{imported['accessKey']}", token), 404, "NoSuchEntity")

    assert call(node, "PATCH", f"/api/v1/users/{name}", token, json={"enabled": False}).json()["enabled"] is False
    assert_error(call(node, "PATCH", f"/api/v1/users/{name}", token, json={"enabled": "no"}), 400, "InvalidArgument")
    assert call(node, "DELETE", f"/api/v1/users/{name}", token).status_code == 204
    assert_error(call(node, "GET", f"/api/v1/users/{name}", token), 404, "NoSuchEntity")
    assert_error(call(node, "GET", f"/api/v1/keys/{pair['accessKey']}", token), 405, "MethodNotAllowed")
    assert_error(call(node, "DELETE", f"/api/v1/keys/{pair['accessKey']}", token), 404, "NoSuchEntity")


def test_groups_policies_and_attachments(node, token):
    user, group, policy = unique("member"), unique("group"), unique("policy")
    call(node, "POST", "/api/v1/users", token, json={"name": user})
    assert call(node, "POST", "/api/v1/groups", token, json={"name": group}).status_code == 201
    assert call(node, "PUT", f"/api/v1/groups/{group}/members/{user}", token).status_code == 204
    assert_error(call(node, "PUT", f"/api/v1/groups/{group}/members/nobody", token), 404, "NoSuchEntity")
    assert call(node, "GET", f"/api/v1/groups/{group}", token).json()["members"] == [user]
    assert group in [g["name"] for g in call(node, "GET", "/api/v1/groups", token).json()["groups"]]

    document = allow("s3:ListAllMyBuckets", "*")
    stored = call(node, "PUT", f"/api/v1/policies/{policy}", token, data=json.dumps(document))
    assert stored.status_code == 200, stored.text
    assert stored.json()["document"] == document
    malformed = call(node, "PUT", f"/api/v1/policies/{policy}", token, data=b'{"Statement": []}')
    assert_error(malformed, 400, "MalformedPolicyDocument")
    assert call(node, "GET", f"/api/v1/policies/{policy}", token).json()["document"] == document
    assert policy in [p["name"] for p in call(node, "GET", "/api/v1/policies", token).json()["policies"]]

    for holder in ({"user": user}, {"group": group}):
        assert call(node, "POST", f"/api/v1/policies/{policy}/attach", token, json=holder).status_code == 204
    both = {"user": user, "group": group}
    assert_error(call(node, "POST", f"/api/v1/policies/{policy}/attach", token, json=both), 400, "InvalidInput")
    assert_error(call(node, "POST", f"/api/v1/policies/{policy}/attach", token, json={}), 400, "InvalidInput")
    shown = call(node, "GET", f"/api/v1/policies/{policy}", token).json()
    assert shown["users"] == [user] and shown["groups"] == [group]
    assert_error(call(node, "DELETE", f"/api/v1/policies/{policy}", token), 409, "DeleteConflict")
    for holder in ({"user": user}, {"group": group}):
        assert call(node, "POST", f"/api/v1/policies/{policy}/detach", token, json=holder).status_code == 204
    assert call(node, "DELETE", f"/api/v1/policies/{policy}", token).status_code == 204
    assert_error(call(node, "GET", f"/api/v1/policies/{policy}", token), 404, "NoSuchEntity")

    assert call(node, "DELETE", f"/api/v1/groups/{group}/members/{user}", token).status_code == 204
    assert call(node, "DELETE", f"/api/v1/groups/{group}", token).status_code == 204
    assert_error(call(node, "GET", f"/api/v1/groups/{group}", token), 404, "NoSuchEntity")
    call(node, "DELETE", f"/api/v1/users/{user}", token)


def test_bucket_policy_is_the_one_s3_serves(node, s3, bucket, token):
    path = f"/api/v1/buckets/{bucket}/policy"
    assert_error(call(node, "GET", path, token), 404, "NoSuchBucketPolicy")
    missing = call(node, "PUT", "/api/v1/buckets/no-such-bucket-here/policy", token, data=b"{}")
    assert_error(missing, 404, "NoSuchBucket")
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
        ],
    }
    elsewhere = dict(public_read, Statement=[dict(public_read["Statement"][0], Resource="arn:aws:s3:::other/*")])
    assert_error(call(node, "PUT", path, token, data=json.dumps(elsewhere)), 400, "MalformedPolicy")
    assert call(node, "PUT", path, token, data=json.dumps(public_read)).status_code == 204
    assert call(node, "GET", path, token).json() == public_read
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == public_read
    s3.put_object(Bucket=bucket, Key="open", Body=b"for everyone")
    assert requests.get(f"{node.s3_url}/{bucket}/open", timeout=TIMEOUT).content == b"for everyone"
    assert call(node, "GET", f"/api/v1/buckets/{bucket}", token).json()["policy"] is True
    assert call(node, "DELETE", path, token).status_code == 204
    assert requests.get(f"{node.s3_url}/{bucket}/open", timeout=TIMEOUT).status_code == 403


def test_a_user_logs_in_with_its_key_and_may_only_what_its_policies_allow(node, new_user, token):
    name, _, pair = new_user()
    other, _, other_pair = new_user()
    own = user_login(node, pair)["token"]

    for method, path in (
        ("GET", "/api/v1/users"),
        ("GET", f"/api/v1/users/{other}"),
        ("GET", f"/api/v1/users/{other}/keys"),
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/policies"),
        ("GET", "/api/v1/buckets"),
        ("GET", "/api/v1/cluster/status"),
        ("DELETE", f"/api/v1/users/{name}"),
        ("DELETE", f"/api/v1/keys/{other_pair['accessKey']}"),
    ):
        assert_error(call(node, method, path, own), 403, "AccessDenied")
    assert_error(call(node, "POST", "/api/v1/users", own, json={"name": unique("x")}), 403, "AccessDenied")

    # Self-service: its own record and keys.
    assert call(node, "GET", f"/api/v1/users/{name}", own).json()["name"] == name
    second = call(node, "POST", f"/api/v1/users/{name}/keys", own)
    assert second.status_code == 201
    assert len(call(node, "GET", f"/api/v1/users/{name}/keys", own).json()["accessKeys"]) == 2
    assert call(node, "DELETE", f"/api/v1/keys/{second.json()['accessKey']}", own).status_code == 204

    # An admin:* policy grants what it names, on the resources it names.
    policy = unique("admin-read")
    document = allow(["admin:ListUsers", "admin:GetUser"], "arn:aws:iam::000000000000:user/*")
    call(node, "PUT", f"/api/v1/policies/{policy}", token, data=json.dumps(document))
    call(node, "POST", f"/api/v1/policies/{policy}/attach", token, json={"user": name})
    assert call(node, "GET", "/api/v1/users", own).status_code == 200
    assert call(node, "GET", f"/api/v1/users/{other}", own).status_code == 200
    assert_error(call(node, "DELETE", f"/api/v1/users/{other}", own), 403, "AccessDenied")
    assert_error(call(node, "GET", "/api/v1/groups", own), 403, "AccessDenied")
    call(node, "POST", f"/api/v1/policies/{policy}/detach", token, json={"user": name})
    call(node, "DELETE", f"/api/v1/policies/{policy}", token)
    assert_error(call(node, "GET", "/api/v1/users", own), 403, "AccessDenied")


def test_an_admin_policy_can_hand_out_user_management(node, new_user):
    managers = allow("admin:*User*", "arn:aws:iam::000000000000:user/team-*")
    name, _, pair = new_user(managers)
    own = user_login(node, pair)["token"]
    member = f"team-{uuid.uuid4().hex[:8]}"
    assert call(node, "POST", "/api/v1/users", own, json={"name": member}).status_code == 201
    assert_error(call(node, "POST", "/api/v1/users", own, json={"name": unique("outsider")}), 403, "AccessDenied")
    assert call(node, "DELETE", f"/api/v1/users/{member}", own).status_code == 204


def test_disabling_or_deleting_refuses_the_tokens_of_a_user(node, new_user, token):
    name, _, pair = new_user()
    first = user_login(node, pair)
    assert call(node, "GET", f"/api/v1/users/{name}", first["token"]).status_code == 200

    call(node, "PATCH", f"/api/v1/users/{name}", token, json={"enabled": False})
    assert_error(call(node, "GET", f"/api/v1/users/{name}", first["token"]), 401, "RevokedToken")
    refresh = requests.post(
        node.admin_url + "/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]}, timeout=TIMEOUT
    )
    assert_error(refresh, 401, "RevokedToken")
    login_refused = requests.post(
        node.admin_url + "/api/v1/auth/login",
        json={"username": pair["accessKey"], "password": pair["secretKey"]},
        timeout=TIMEOUT,
    )
    assert_error(login_refused, 401, "InvalidCredentials")

    # Enabled again, the user logs in anew; what was issued before stays refused.
    call(node, "PATCH", f"/api/v1/users/{name}", token, json={"enabled": True})
    assert_error(call(node, "GET", f"/api/v1/users/{name}", first["token"]), 401, "RevokedToken")
    second = user_login(node, pair)
    assert call(node, "GET", f"/api/v1/users/{name}", second["token"]).status_code == 200

    # A token dies with the key it logged in with.
    call(node, "PATCH", f"/api/v1/keys/{pair['accessKey']}", token, json={"enabled": False})
    assert_error(call(node, "GET", f"/api/v1/users/{name}", second["token"]), 401, "InvalidToken")
    call(node, "PATCH", f"/api/v1/keys/{pair['accessKey']}", token, json={"enabled": True})
    assert call(node, "GET", f"/api/v1/users/{name}", second["token"]).status_code == 200

    # Deleted and created again with the same name and an imported copy of the pair: still refused.
    call(node, "DELETE", f"/api/v1/users/{name}", token)
    assert_error(call(node, "GET", f"/api/v1/users/{name}", second["token"]), 401, "RevokedToken")
    call(node, "POST", "/api/v1/users", token, json={"name": name})
    call(node, "POST", f"/api/v1/users/{name}/keys", token, json=pair)
    assert_error(call(node, "GET", f"/api/v1/users/{name}", second["token"]), 401, "RevokedToken")
    assert call(node, "GET", f"/api/v1/users/{name}", user_login(node, pair)["token"]).status_code == 200
