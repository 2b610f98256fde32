"""`nebulaio admin` against a real node: login, buckets, cluster status, renewal, logout."""

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
    secret = (admin.node.data / "metadata" / "admin-secret").read_text().strip()
    now = int(time.time())
    expired = {"iss": "nebulaio", "sub": ROOT_USER, "typ": "access", "gen": 0, "iat": now - 120, "exp": now - 60}
    saved["token"] = jwt.encode(expired, secret, algorithm="HS256")
    admin.token_file.write_bytes(orjson.dumps(saved))
    admin("bucket", "list")
    assert orjson.loads(admin.token_file.read_bytes())["token"] != saved["token"]
