"""The Admin API on a real node: tokens and their edge cases, every endpoint, metrics after S3 traffic."""

from __future__ import annotations

import os
import re
import socket
import stat
import time
import uuid

import jwt
import pytest
import requests
from conftest import ROOT_PASSWORD, ROOT_USER, metric_samples, wait_for

from nebulaio.util.purposekeys import ADMIN_TOKENS, derive

TIMEOUT = 10
FORGED_SECRET = "a secret of the same length that is not the node's"


def login(node) -> dict:
    response = requests.post(
        node.admin_url + "/api/v1/auth/login", json={"username": ROOT_USER, "password": ROOT_PASSWORD}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()


def call(node, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, node.admin_url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert "Traceback" not in response.text


def node_secret(node) -> str:
    return (node.data / "metadata" / "admin-secret").read_text().strip()


def token_key(node) -> bytes:
    """What the node signs its tokens with: a key derived from its admin secret, not the secret."""
    return derive(node_secret(node), ADMIN_TOKENS)


def claims(**changes) -> dict:
    now = int(time.time())
    return {"iss": "nebulaio", "sub": ROOT_USER, "typ": "access", "gen": 0, "iat": now, "exp": now + 60, **changes}


@pytest.fixture
def token(node) -> str:
    return login(node)["token"]


@pytest.fixture
def fresh_node(node_factory):
    """A node of its own, for tests that revoke the root user's tokens."""
    return node_factory()


def test_login_answers_a_token_pair(node):
    pair = login(node)
    assert set(pair) == {"token", "expiresAt", "refreshToken"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", pair["expiresAt"])
    assert call(node, "GET", "/api/v1/buckets", pair["token"]).status_code == 200


def test_the_signing_secret_is_generated_once_and_private(node):
    path = node.data / "metadata" / "admin-secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(node_secret(node)) >= 32


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"username": ROOT_USER, "password": "wrong"}, 401, "InvalidCredentials"),
        ({"username": "nobody", "password": ROOT_PASSWORD}, 401, "InvalidCredentials"),
        ({"username": ROOT_USER}, 400, "InvalidArgument"),
        ({"username": ROOT_USER, "password": 5}, 400, "InvalidArgument"),
        ({"username": ROOT_USER, "password": ROOT_PASSWORD, "extra": 1}, 400, "InvalidArgument"),
        ([ROOT_USER, ROOT_PASSWORD], 400, "MalformedJSON"),
    ],
    ids=["wrong-password", "unknown-user", "missing-field", "wrong-type", "unknown-field", "not-an-object"],
)
def test_bad_logins_are_refused(node, body, status, code):
    assert_error(call(node, "POST", "/api/v1/auth/login", json=body), status, code)


def test_unreadable_and_oversized_bodies_are_refused(node):
    assert_error(call(node, "POST", "/api/v1/auth/login", data=b"{not json"), 400, "MalformedJSON")
    assert_error(call(node, "POST", "/api/v1/auth/login", data=b"x" * (65 * 1024)), 413, "RequestTooLarge")
    chunks = iter([b'{"username": "a", ', b'"password": "b"}'])
    assert_error(call(node, "POST", "/api/v1/auth/login", data=chunks), 411, "LengthRequired")


@pytest.mark.parametrize(
    "header",
    [None, "Basic dGVzdDp0ZXN0", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c"],
    ids=["none", "basic", "empty-bearer", "garbage", "garbage-segments"],
)
def test_requests_without_a_valid_bearer_token_are_refused(node, header):
    headers = {} if header is None else {"Authorization": header}
    response = call(node, "GET", "/api/v1/buckets", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("Unauthorized", "InvalidToken")


@pytest.mark.filterwarnings("ignore:The HMAC key")  # the HS512 token signed with the node's 256-bit secret
def test_crafted_tokens_are_refused(node):
    secret = token_key(node)
    refused = {
        "forged": jwt.encode(claims(), FORGED_SECRET, algorithm="HS256"),
        "admin-secret-itself": jwt.encode(claims(), node_secret(node), algorithm="HS256"),
        "alg-none": jwt.encode(claims(), None, algorithm="none"),
        "wrong-alg": jwt.encode(claims(), secret, algorithm="HS512"),
        "no-expiry": jwt.encode({k: v for k, v in claims().items() if k != "exp"}, secret, algorithm="HS256"),
        "other-issuer": jwt.encode(claims(iss="elsewhere"), secret, algorithm="HS256"),
        "refresh-as-access": jwt.encode(claims(typ="refresh"), secret, algorithm="HS256"),
        "unknown-user": jwt.encode(claims(sub="nobody"), secret, algorithm="HS256"),
    }
    for name, crafted in refused.items():
        assert_error(call(node, "GET", "/api/v1/buckets", crafted), 401, "InvalidToken"), name
    expired = jwt.encode(claims(iat=int(time.time()) - 120, exp=int(time.time()) - 60), secret, algorithm="HS256")
    assert_error(call(node, "GET", "/api/v1/buckets", expired), 401, "ExpiredToken")
    # The same claims, well signed and current, pass: the refusals above are for what they name.
    assert call(node, "GET", "/api/v1/buckets", jwt.encode(claims(), secret, algorithm="HS256")).status_code == 200


def test_refresh_renews_and_takes_only_refresh_tokens(node):
    pair = login(node)
    renewed = call(node, "POST", "/api/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert renewed.status_code == 200, renewed.text
    assert call(node, "GET", "/api/v1/buckets", renewed.json()["token"]).status_code == 200
    assert_error(call(node, "POST", "/api/v1/auth/refresh", json={"refreshToken": pair["token"]}), 401, "InvalidToken")
    forged = jwt.encode(claims(typ="refresh"), FORGED_SECRET, algorithm="HS256")
    assert_error(call(node, "POST", "/api/v1/auth/refresh", json={"refreshToken": forged}), 401, "InvalidToken")
    assert_error(call(node, "POST", "/api/v1/auth/refresh", json={}), 400, "InvalidArgument")


def test_logout_revokes_every_token_issued_before(fresh_node):
    first, second = login(fresh_node), login(fresh_node)
    assert call(fresh_node, "POST", "/api/v1/auth/logout", first["token"]).status_code == 204
    for pair in (first, second):
        assert_error(call(fresh_node, "GET", "/api/v1/buckets", pair["token"]), 401, "RevokedToken")
        refresh = call(fresh_node, "POST", "/api/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
        assert_error(refresh, 401, "RevokedToken")
    assert call(fresh_node, "GET", "/api/v1/buckets", login(fresh_node)["token"]).status_code == 200


def test_open_endpoints_need_no_token(node):
    assert call(node, "GET", "/health/live").json() == {"status": "ok"}
    ready = call(node, "GET", "/health/ready").json()
    assert ready["status"] == "ready" and ready["raft"]["ready"] is True
    document = call(node, "GET", "/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.") and "/api/v1/buckets" in document["paths"]
    assert call(node, "GET", "/metrics").status_code == 200


def test_unknown_routes_and_methods_answer_json(node, token):
    assert_error(call(node, "GET", "/api/v1/nothing", token), 404, "NotFound")
    response = call(node, "PUT", "/api/v1/buckets", token)
    assert_error(response, 405, "MethodNotAllowed")
    assert "POST" in response.headers["allow"]


def test_bucket_lifecycle_through_the_admin_api(node, s3, token):
    name = f"admin-{uuid.uuid4().hex[:16]}"
    created = call(node, "POST", "/api/v1/buckets", token, json={"name": name})
    assert created.status_code == 201, created.text
    assert created.headers["location"].endswith(f"/api/v1/buckets/{name}")
    assert created.json()["objects"] == 0 and created.json()["owner"] == ROOT_USER
    assert_error(call(node, "POST", "/api/v1/buckets", token, json={"name": name}), 409, "BucketAlreadyOwnedByYou")
    assert_error(call(node, "POST", "/api/v1/buckets", token, json={"name": "Bad_Name"}), 400, "InvalidBucketName")
    s3.head_bucket(Bucket=name)  # S3 sees it

    s3.put_object(Bucket=name, Key="a", Body=b"x" * 100)
    s3.put_object(Bucket=name, Key="b", Body=b"y" * 50_000)
    s3.put_object(Bucket=name, Key="a", Body=b"z" * 10)
    listed = {b["name"]: b for b in call(node, "GET", "/api/v1/buckets", token).json()["buckets"]}
    assert (listed[name]["objects"], listed[name]["size"]) == (2, 50_010)

    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "team", "Value": "ops"}]})
    s3.put_bucket_cors(
        Bucket=name, CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [{"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]
        },
    )
    details = call(node, "GET", f"/api/v1/buckets/{name}", token).json()
    assert details["versioning"] == "Enabled" and details["tags"] == {"team": "ops"}
    assert (details["cors"], details["lifecycleRules"], details["objectLock"]) == (True, 1, False)
    assert (details["objects"], details["size"]) == (2, 50_010)

    assert_error(call(node, "DELETE", f"/api/v1/buckets/{name}", token), 409, "BucketNotEmpty")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
    assert call(node, "DELETE", f"/api/v1/buckets/{name}", token).status_code == 204
    assert_error(call(node, "GET", f"/api/v1/buckets/{name}", token), 404, "NoSuchBucket")
    assert_error(call(node, "DELETE", f"/api/v1/buckets/{name}", token), 404, "NoSuchBucket")


def test_cluster_status(node, token):
    raft_address = f"127.0.0.1:{node.ports['raft']}"
    wait_for(
        lambda: call(node, "GET", "/api/v1/cluster/status", token).json()["members"][0]["ready"],
        30,
        "registration, and gossip telling this node ready",
    )
    status = call(node, "GET", "/api/v1/cluster/status", token).json()
    node_id = status["node"]["id"]
    assert status["node"] == {"id": node_id, "role": "hybrid", "state": "leader"}
    assert (node.data / "metadata" / "node-id").read_text() == node_id
    assert status["raft"]["leader"] == raft_address and status["raft"]["term"] >= 1
    assert status["raft"]["appliedIndex"] >= 1 and status["raft"]["commitIndex"] >= status["raft"]["appliedIndex"]
    (member,) = status["members"]
    capacity, memory = member.pop("capacity"), member.pop("memory")
    term, commit_index = member.pop("term"), member.pop("commitIndex")
    assert member == {
        "id": node_id,
        "role": "hybrid",
        "address": raft_address,
        "self": True,
        "connected": True,
        "draining": False,
        "state": "alive",
        "ready": True,
        "raftState": "leader",
    }
    assert 0 < capacity["free"] <= capacity["total"] and 0 < capacity["used"] <= capacity["total"]
    assert 0 < memory["available"] <= memory["total"]
    assert 1 <= term <= status["raft"]["term"] and 1 <= commit_index <= status["raft"]["commitIndex"]
    supervisor, worker = status["processes"]["supervisor"], status["processes"]["worker"]
    assert supervisor["pid"] != worker["pid"] and supervisor["rss"] > 0 and worker["rss"] > 0
    assert status["disk"]["path"] == str(node.data) and 0 < status["disk"]["used"] <= status["disk"]["total"]
    assert 0 < status["memory"]["available"] <= status["memory"]["total"]


def test_metrics_move_with_s3_traffic(node, s3, bucket):
    before = metric_samples(node)
    body = b"m" * 3000
    for index in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{index}", Body=body)
    for _ in range(2):
        s3.get_object(Bucket=bucket, Key="k0")["Body"].read()
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="absent")
    after = metric_samples(node)

    def moved(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert moved('nebulaio_s3_requests_total{operation="PutObject",status="200"}') == 3
    assert moved('nebulaio_s3_requests_total{operation="GetObject",status="200"}') == 2
    assert moved('nebulaio_s3_requests_total{operation="GetObject",status="404"}') == 1
    assert moved('nebulaio_s3_received_bytes_total{operation="PutObject"}') == 3 * len(body)
    assert moved('nebulaio_s3_sent_bytes_total{operation="GetObject"}') >= 2 * len(body)
    assert moved('nebulaio_s3_request_duration_seconds_count{operation="PutObject"}') == 3
    assert moved('nebulaio_s3_request_duration_seconds_bucket{operation="PutObject",le="+Inf"}') == 3
    assert moved('nebulaio_s3_request_duration_seconds_sum{operation="PutObject"}') > 0
    assert after[f'nebulaio_bucket_objects{{bucket="{bucket}"}}'] == 3
    assert after[f'nebulaio_bucket_bytes{{bucket="{bucket}"}}'] == 3 * len(body)
    assert after["nebulaio_raft_up"] == 1 and after["nebulaio_raft_leader"] == 1
    assert after["nebulaio_raft_applied_index"] > before["nebulaio_raft_applied_index"]


def test_metrics_sum_every_worker(node, s3, bucket):
    """Many keep-alive-free requests land on both workers; the scrape counts all of them."""
    before = metric_samples(node)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", node.ports["s3"]), timeout=TIMEOUT) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while conn.recv(65536):
                pass
    after = metric_samples(node)
    label = 'nebulaio_s3_requests_total{operation="ListBuckets",status="403"}'
    assert after.get(label, 0) - before.get(label, 0) == 20
    assert len(os.listdir(node.data / "run" / "metrics")) >= 2
