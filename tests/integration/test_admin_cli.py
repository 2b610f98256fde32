"""`nebulaio admin` against a real node: login, buckets, cluster status, renewal, logout,
identities and bucket policies."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid

import jwt
import orjson
import pytest
from conftest import ROOT_PASSWORD, ROOT_USER

from nebulaio.util.purposekeys import ADMIN_TOKENS, derive


@pytest.fixture
def admin(node_factory, tmp_path):
    """admin(*args) -> CompletedProcess of `nebulaio admin` on a node of its own (logout revokes)."""
    node = node_factory()
    token_file = tmp_path / "config" / "admin-token.json"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "nebulaio", "admin", "--url", node.admin_url, "--token-file", str(token_file)]
        result = subprocess.run(command + list(args), capture_output=True, text=True, timeout=60, env=os.environ)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    run.node = node
    run.token_file = token_file
    return run


def test_round_trip(admin):
    refused = admin("bucket", "list", check=False)
    assert refused.returncode == 1 and "nebulaio admin login" in refused.stderr
    wrong = admin("login", "--username", ROOT_USER, "--password", "wrong", check=False)
    assert wrong.returncode == 1 and "InvalidCredentials" in wrong.stderr
    assert "logged in" in admin("login", "--username", ROOT_USER, "--password", ROOT_PASSWORD).stdout
    assert stat.S_IMODE(os.stat(admin.token_file).st_mode) == 0o600

    name = f"cli-{uuid.uuid4().hex[:12]}"
    assert admin("bucket", "create", name).stdout.strip() == f"bucket {name}: created"
    assert "BucketAlreadyOwnedByYou" in admin("bucket", "create", name, check=False).stderr
    table = admin("bucket", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "OBJECTS", "SIZE", "CREATED"]
    assert any(line.split()[:3] == [name, "0", "0"] for line in table[1:])
    listed = orjson.loads(admin("--json", "bucket", "list").stdout)
    assert name in [b["name"] for b in listed["buckets"]]
    assert "versioning: Off" in admin("bucket", "show", name).stdout
    status = admin("cluster", "status").stdout
    assert f"127.0.0.1:{admin.node.ports['raft']}" in status and "leader" in status
    assert orjson.loads(admin("--json", "cluster", "status").stdout)["node"]["role"] == "hybrid"
    assert admin("bucket", "delete", name).stdout.strip() == f"bucket {name}: deleted"
    assert "NoSuchBucket" in admin("bucket", "delete", name, check=False).stderr

    assert "logged out" in admin("logout").stdout
    assert not admin.token_file.exists()
    assert admin("bucket", "list", check=False).returncode == 1


def test_an_expired_token_is_renewed_with_the_refresh_token(admin):
    admin("login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    saved = orjson.loads(admin.token_file.read_bytes())
    secret = derive((admin.node.data / "metadata" / "admin-secret").read_text().strip(), ADMIN_TOKENS)
    now = int(time.time())
    expired = {"iss": "nebulaio", "sub": ROOT_USER, "typ": "access", "gen": 0, "iat": now - 120, "exp": now - 60}
    saved["token"] = jwt.encode(expired, secret, algorithm="HS256")
    admin.token_file.write_bytes(orjson.dumps(saved))
    admin("bucket", "list")
    assert orjson.loads(admin.token_file.read_bytes())["token"] != saved["token"]


def test_identities_and_bucket_policy(admin, tmp_path):
    admin("login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    user, group, policy = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("cli-user", "cli-group", "cli-policy"))
    assert admin("user", "create", user).stdout.strip() == f"user {user}: created"
    created = admin("key", "create", user).stdout.splitlines()
    access_key, secret_key = created[0].split()[-1], created[1].split()[-1]
    assert "not shown again" in created[2]
    keys = admin("key", "list", user).stdout.splitlines()
    assert keys[0].split() == ["ACCESS", "KEY", "USER", "ENABLED", "CREATED"]
    assert keys[1].split()[:3] == [access_key, user, "yes"] and secret_key not in "\n".join(keys)
    half = admin("key", "create", user, "--access-key", "ONLYTHEACCESSKEY1", check=False)
    assert half.returncode == 1 and "--secret-key" in half.stderr

    document = tmp_path / "policy.json"
    document.write_text(orjson.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).decode())
    assert admin("policy", "put", policy, str(document)).stdout.strip() == f"policy {policy}: stored"
    assert orjson.loads(admin("policy", "show", policy).stdout)["document"]["Statement"][0]["Action"] == "s3:*"
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"Statement": []}')
    assert "MalformedPolicyDocument" in admin("policy", "put", policy, str(malformed), check=False).stderr
    assert "Cannot read" in admin("policy", "put", policy, str(tmp_path / "absent.json"), check=False).stderr
    admin("group", "create", group)
    assert admin("group", "add", group, user).stdout.strip() == f"group {group}: added"
    assert admin("policy", "attach", policy, "--group", group).stdout.strip() == f"policy {policy}: attached"
    users = admin("user", "list").stdout.splitlines()
    assert users[0].split() == ["NAME", "ENABLED", "KEYS", "GROUPS", "POLICIES"]
    assert [line.split() for line in users if line.startswith(user)] == [[user, "yes", "1", group, "-"]]
    assert [line.split()[:3] for line in admin("policy", "list").stdout.splitlines() if line.startswith(policy)] == [
        [policy, "-", group]
    ]
    assert f"members: {user}" in admin("group", "show", group).stdout
    assert "DeleteConflict" in admin("policy", "delete", policy, check=False).stderr

    # The user logs in with its key pair, on its own token file.
    user_tokens = ["--token-file", str(tmp_path / "user-token.json")]
    admin(*user_tokens, "login", "--username", access_key, "--password", secret_key)
    assert "AccessDenied" in admin(*user_tokens, "user", "list", check=False).stderr
    assert f"name: {user}" in admin(*user_tokens, "user", "show", user).stdout

    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    admin("bucket", "create", bucket)
    public = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
        ],
    }
    document.write_text(orjson.dumps(public).decode())
    assert admin("bucket", "set-policy", bucket, str(document)).stdout.strip() == f"bucket {bucket}: policy set"
    assert orjson.loads(admin("bucket", "policy", bucket).stdout) == public
    assert admin("bucket", "delete-policy", bucket).stdout.strip() == f"bucket {bucket}: policy deleted"
    assert "NoSuchBucketPolicy" in admin("bucket", "policy", bucket, check=False).stderr
    admin("bucket", "delete", bucket)

    assert admin("key", "disable", access_key).stdout.strip() == f"key {access_key}: disabled"
    assert "InvalidToken" in admin(*user_tokens, "user", "show", user, check=False).stderr
    assert admin("user", "disable", user).stdout.strip() == f"user {user}: disabled"
    admin("policy", "detach", policy, "--group", group)
    admin("group", "remove", group, user)
    admin("group", "delete", group)
    admin("policy", "delete", policy)
    admin("key", "delete", access_key)
    assert admin("user", "delete", user).stdout.strip() == f"user {user}: deleted"
    assert "NoSuchEntity" in admin("user", "show", user, check=False).stderr


def test_kms_keys(admin):
    admin("login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    created = admin("kms", "create", "--description", "backups").stdout.strip()
    assert created.startswith("kms key ") and created.endswith(": created")
    key_id = created.split()[2].rstrip(":")
    table = admin("kms", "list").stdout.splitlines()
    assert table[0].split() == ["KEY", "ENABLED", "VERSIONS", "CREATED", "DESCRIPTION"]
    assert any(line.split()[:3] == [key_id, "yes", "1"] for line in table[1:])
    assert admin("kms", "rotate", key_id).stdout.strip() == f"kms key {key_id}: rotated"
    assert admin("kms", "disable", key_id).stdout.strip() == f"kms key {key_id}: disabled"
    shown = admin("kms", "show", key_id).stdout
    assert "enabled: False" in shown and "versions: 2" in shown
    assert admin("kms", "enable", key_id).stdout.strip() == f"kms key {key_id}: enabled"
    assert "NotFound" in admin("kms", "show", "no-such-key", check=False).stderr
