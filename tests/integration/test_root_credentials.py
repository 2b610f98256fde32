"""No public default credentials: a node started without a root pair makes one of its own.

The pair is printed once, kept 0600 in the data directory, found again by `nebulaio
credentials`, and works on every listener; the old public pair never authenticates and is
refused as configuration; a cluster refuses to make up a pair per node.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import Node, make_client

PUBLIC = "nebulaadmin"
TIMEOUT = 10


def printed_pairs(node: Node) -> list[tuple[str, str]]:
    text = node.log_path.read_text(errors="replace")
    return re.findall(r"access key: (\S+)\n\s+secret key: (\S+)", text)


def credentials_command(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NEBULAIO_")}
    return subprocess.run(
        [sys.executable, "-m", "nebulaio", *args],
        env=dict(env, **environment),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A node started with no root pair configured (the README's `nebulaio server`)."""
    base = tmp_path_factory.mktemp("fresh")
    node = Node(base / "data", base / "node.log")
    node.root_user = node.root_password = ""
    try:
        yield node.start()
    finally:
        node.stop()


def admin_login(node: Node, user: str, password: str) -> requests.Response:
    return requests.post(
        node.admin_url + "/api/v1/auth/login", json={"username": user, "password": password}, timeout=TIMEOUT
    )


def console_login(node: Node, user: str, password: str) -> requests.Response:
    url = f"http://127.0.0.1:{node.ports['console']}/session"
    return requests.post(url, json={"accessKey": user, "secretKey": password}, timeout=TIMEOUT)


def test_the_generated_pair_is_printed_once_kept_0600_and_works(fresh):
    [(user, password)] = printed_pairs(fresh)
    kept = fresh.data / "metadata" / "root-credentials"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert kept.read_text() == f"NEBULAIO_ROOT_USER={user}\nNEBULAIO_ROOT_PASSWORD={password}\n"
    assert str(kept) in fresh.log_path.read_text()

    make_client(fresh.s3_url, access_key=user, secret_key=password).create_bucket(Bucket="generated")
    assert admin_login(fresh, user, password).status_code == 200
    assert console_login(fresh, user, password).status_code == 200

    exports = credentials_command("credentials", "--data", str(fresh.data))
    assert exports.returncode == 0, exports.stderr
    assert exports.stdout == f"export AWS_ACCESS_KEY_ID={user}\nexport AWS_SECRET_ACCESS_KEY={password}\n"


def test_the_public_pair_never_authenticates(fresh):
    public = make_client(fresh.s3_url, access_key=PUBLIC, secret_key=PUBLIC)
    with pytest.raises(ClientError) as refused:
        public.list_buckets()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    login = admin_login(fresh, PUBLIC, PUBLIC)
    assert login.status_code == 401 and login.json()["error"]["code"] == "InvalidCredentials"
    assert console_login(fresh, PUBLIC, PUBLIC).status_code == 401


def test_a_restart_keeps_the_pair_and_prints_only_where_it_is(fresh):
    [(user, password)] = printed_pairs(fresh)
    fresh.stop()
    fresh.start()
    assert printed_pairs(fresh) == [(user, password)]
    assert fresh.log_path.read_text().count(password) == 1
    assert f"root access key {user}; the pair is kept in {fresh.data / 'metadata' / 'root-credentials'}" in (
        fresh.log_path.read_text()
    )
    make_client(fresh.s3_url, access_key=user, secret_key=password).head_bucket(Bucket="generated")


@pytest.mark.parametrize(
    "environment, message",
    [
        (
            {"NEBULAIO_ROOT_USER": PUBLIC, "NEBULAIO_ROOT_PASSWORD": PUBLIC},
            "root_password 'nebulaadmin' is public",
        ),
        ({"NEBULAIO_ROOT_USER": "someone"}, "root_user and root_password are set together"),
        (
            {"NEBULAIO_RAFT_PEERS": "127.0.0.1:20001,127.0.0.1:20002"},
            "a cluster needs root_user and root_password, the same on every node",
        ),
    ],
)
def test_a_public_half_or_per_node_pair_is_refused_at_start(tmp_path, environment, message):
    started = credentials_command("server", "--data", str(tmp_path / "data"), **environment)
    assert started.returncode == 2
    assert message in started.stderr
    assert not (tmp_path / "data").exists()


def test_credentials_before_the_first_start_says_what_to_do(tmp_path):
    answer = credentials_command("credentials", "--data", str(tmp_path / "data"))
    assert answer.returncode == 1
    assert "start the node once" in answer.stderr and answer.stdout == ""
