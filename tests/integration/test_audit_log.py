"""The audit log: every Admin API change, one JSON line each from any worker, read back in pages.

A node of its own (three workers), so the log holds only this module's requests.
"""

from __future__ import annotations

import http.client
import os
import stat
import subprocess
import sys
import threading

import orjson
import pytest
import requests
from conftest import ROOT_PASSWORD, ROOT_USER, Node

TIMEOUT = 30
WORKERS = 3
THREADS = 8
REQUESTS_EACH = 25
IMPORTED_SECRET = "imported-secret-never-logged-0123456789"
WRONG_PASSWORD = "wrong-password-never-logged"


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    base = tmp_path_factory.mktemp("audited")
    node = Node(base / "data", base / "node.log", args=["--workers", str(WORKERS)])
    try:
        yield node.start()
    finally:
        node.stop()


def login(node: Node, user: str = ROOT_USER, password: str = ROOT_PASSWORD) -> requests.Response:
    return requests.post(
        node.admin_url + "/api/v1/auth/login", json={"username": user, "password": password}, timeout=TIMEOUT
    )


@pytest.fixture(scope="module")
def token(audited) -> str:
    return login(audited).json()["token"]


def call(node: Node, token: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, node.admin_url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def lines(node: Node) -> list[dict]:
    return [orjson.loads(line) for line in (node.data / "audit.jsonl").read_bytes().splitlines()]


def read_all(node: Node, token: str, limit: int) -> list[dict]:
    """Every entry, walked page by page through the Admin API."""
    entries, after = [], None
    while True:
        params = {"limit": limit} | ({} if after is None else {"after": after})
        page = call(node, token, "GET", "/api/v1/audit", params=params)
        assert page.status_code == 200, page.text
        document = page.json()
        assert len(document["entries"]) <= limit
        entries += document["entries"]
        after = document["nextAfter"]
        if not document["isTruncated"]:
            return entries


def test_every_change_is_logged_with_who_what_where_and_result_and_no_secret(audited, token):
    before = len(lines(audited))
    assert call(audited, token, "POST", "/api/v1/users", json={"name": "alice"}).status_code == 201
    imported = {"accessKey": "AUDITEDKEY0000000001", "secretKey": IMPORTED_SECRET}
    assert call(audited, token, "POST", "/api/v1/users/alice/keys", json=imported).status_code == 201
    assert call(audited, token, "DELETE", "/api/v1/buckets/no-such-bucket").status_code == 404
    assert call(audited, token, "GET", "/api/v1/users").status_code == 200  # a read: not logged
    assert login(audited, ROOT_USER, WRONG_PASSWORD).status_code == 401
    assert login(audited, "AUDITEDKEY0000000001", IMPORTED_SECRET).status_code == 200
    assert requests.post(audited.admin_url + "/api/v1/users", json={"name": "x"}, timeout=TIMEOUT).status_code == 401

    logged = lines(audited)[before:]
    assert [(e["user"], e["method"], e["path"], e["status"], e["error"]) for e in logged] == [
        (ROOT_USER, "POST", "/api/v1/users", 201, None),
        (ROOT_USER, "POST", "/api/v1/users/alice/keys", 201, None),
        (ROOT_USER, "DELETE", "/api/v1/buckets/no-such-bucket", 404, "NoSuchBucket"),
        (ROOT_USER, "POST", "/api/v1/auth/login", 401, "InvalidCredentials"),
        ("AUDITEDKEY0000000001", "POST", "/api/v1/auth/login", 200, None),
        (None, "POST", "/api/v1/users", 401, "Unauthorized"),
    ]
    assert all(entry["address"] == "127.0.0.1" and entry["time"].endswith("Z") for entry in logged)
    assert [entry["time"] for entry in logged] == sorted(entry["time"] for entry in logged)

    kept = audited.data / "audit.jsonl"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    text = kept.read_text()
    for secret in (ROOT_PASSWORD, IMPORTED_SECRET, WRONG_PASSWORD, token):
        assert secret not in text


def test_lines_written_by_every_worker_at_once_never_interleave(audited, token):
    before = len(lines(audited))

    def hammer(thread: int) -> None:
        for n in range(REQUESTS_EACH):
            # A fresh connection each time, so the requests spread over the workers.
            answer = requests.post(
                audited.admin_url + "/api/v1/buckets",
                json={"name": f"Not_A_Bucket-{thread}-{n}"},
                headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                timeout=TIMEOUT,
            )
            assert answer.status_code == 400

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logged = lines(audited)[before:]  # every line parses
    assert len(logged) == THREADS * REQUESTS_EACH
    assert {entry["error"] for entry in logged} == {"InvalidBucketName"}


def test_pages_walk_the_whole_log_in_order(audited, token):
    assert call(audited, token, "POST", "/api/v1/groups", json={"name": "paged"}).status_code == 201
    written = lines(audited)
    for limit in (1, 7, 1000):
        walked = read_all(audited, token, limit)
        assert [{k: v for k, v in entry.items() if k != "id"} for entry in walked] == written
    assert call(audited, token, "GET", "/api/v1/audit").json()["entries"][0] == walked[0]


def test_paging_refuses_a_bad_cursor_or_limit(audited, token):
    first = call(audited, token, "GET", "/api/v1/audit", params={"limit": 2}).json()["entries"]
    cursors = ({"after": first[1]["id"] - 1}, {"after": 10**12}, {"after": 2**64}, {"after": -1})
    for params in (*cursors, {"limit": 0}, {"limit": 1001}):
        refused = call(audited, token, "GET", "/api/v1/audit", params=params)
        assert refused.status_code == 400, (params, refused.text)
        assert "error" in refused.json()
    after_first = call(audited, token, "GET", "/api/v1/audit", params={"after": first[0]["id"], "limit": 1}).json()
    assert after_first["entries"] == [first[1]] and after_first["isTruncated"]


def test_only_who_may_read_the_audit_log_reads_it(audited, token):
    assert requests.get(audited.admin_url + "/api/v1/audit", timeout=TIMEOUT).status_code == 401
    assert call(audited, token, "POST", "/api/v1/users", json={"name": "bob"}).status_code == 201
    pair = call(audited, token, "POST", "/api/v1/users/bob/keys").json()
    bob = login(audited, pair["accessKey"], pair["secretKey"]).json()["token"]
    denied = call(audited, bob, "GET", "/api/v1/audit")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "AccessDenied"


def test_console_changes_are_logged_with_the_browsers_address(audited):
    before = len(lines(audited))
    connection = http.client.HTTPConnection(
        "127.0.0.1", audited.ports["console"], timeout=TIMEOUT, source_address=("127.0.0.61", 0)
    )
    try:
        body = orjson.dumps({"accessKey": ROOT_USER, "secretKey": ROOT_PASSWORD})
        connection.request("POST", "/session", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200
    finally:
        connection.close()
    [entry] = lines(audited)[before:]
    assert (entry["user"], entry["path"], entry["status"], entry["address"]) == (
        ROOT_USER,
        "/api/v1/auth/login",
        200,
        "127.0.0.61",
    )


def test_the_command_line_pages_through_the_log(audited, tmp_path):
    def admin(*args: str) -> str:
        command = [sys.executable, "-m", "nebulaio", "admin", "--url", audited.admin_url]
        command += ["--token-file", str(tmp_path / "token.json"), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ)
        assert result.returncode == 0, result.stderr
        return result.stdout

    admin("login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    written = lines(audited)
    first = admin("audit", "--limit", "1").splitlines()
    assert first[0].split() == ["ID", "TIME", "USER", "ADDRESS", "METHOD", "PATH", "STATUS", "ERROR"]
    assert first[1].split()[1:] == [
        written[0]["time"],
        written[0]["user"],
        "127.0.0.1",
        "POST",
        "/api/v1/auth/login",
        "200",
        "-",
    ]
    assert first[2] == "(more: nebulaio admin audit --after 0)"
    page = orjson.loads(admin("--json", "audit", "--after", "0", "--limit", "1000"))
    assert [entry["path"] for entry in page["entries"]] == [entry["path"] for entry in written[1:]]
    assert not page["isTruncated"]
