"""Failed logins are throttled per source address and per user, on every worker of a node at once.

The node runs four workers and every attempt comes on a connection of its own, so attempts land
on different workers; the count they share (the node's run/login-failures.sqlite) must hold
every failure, and the refusal comes after exactly `login_max_failures` of them. Each test uses
loopback source addresses of its own (127.0.0.0/8 is all loopback), so their counts never meet.
"""

from __future__ import annotations

import http.client
import sqlite3

import orjson
import pytest
from conftest import ROOT_PASSWORD, ROOT_USER, Node, wait_for

MAX_FAILURES = 6
WINDOW = 3
WORKERS = 4


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    base = tmp_path_factory.mktemp("throttled")
    node = Node(
        base / "data",
        base / "node.log",
        args=["--workers", str(WORKERS), "--login-max-failures", str(MAX_FAILURES), "--login-window", str(WINDOW)],
    )
    try:
        yield node.start()
    finally:
        node.stop()


def post(node: Node, listener: str, path: str, document: dict, source: str, headers=None):
    """(status, headers, JSON body) of one POST on a new connection from `source`."""
    connection = http.client.HTTPConnection("127.0.0.1", node.ports[listener], timeout=30, source_address=(source, 0))
    try:
        connection.request(
            "POST", path, orjson.dumps(document), {"Content-Type": "application/json", **(headers or {})}
        )
        answer = connection.getresponse()
        return answer.status, answer.headers, orjson.loads(answer.read() or b"null")
    finally:
        connection.close()


def admin_login(node: Node, user: str, password: str, source: str, headers=None):
    return post(node, "admin", "/api/v1/auth/login", {"username": user, "password": password}, source, headers)


def console_login(node: Node, user: str, password: str, source: str):
    return post(node, "console", "/session", {"accessKey": user, "secretKey": password}, source)


def shared_count(node: Node, kind: str, name: str) -> int:
    """The failures the node's workers counted together for one address or user."""
    with sqlite3.connect(node.data / "run" / "login-failures.sqlite") as db:
        row = db.execute("SELECT count FROM failures WHERE key = ?", (f"{kind}\0{name}",)).fetchone()
    return row[0] if row else 0


def assert_refused(answer) -> int:
    status, headers, body = answer
    assert status == 429, (status, body)
    assert body["error"]["code"] == "TooManyAttempts"
    wait = int(headers["Retry-After"])
    assert 1 <= wait <= WINDOW
    return wait


def test_failed_logins_on_every_worker_add_up_to_429_then_the_window_passes(throttled):
    source = "127.0.0.11"
    for attempt in range(MAX_FAILURES):
        status, _, body = admin_login(throttled, ROOT_USER, f"wrong-{attempt}", source)
        assert (status, body["error"]["code"]) == (401, "InvalidCredentials")
    assert shared_count(throttled, "address", source) == MAX_FAILURES
    assert shared_count(throttled, "user", ROOT_USER) == MAX_FAILURES
    # Refused even with the right password, and not counted again.
    assert_refused(admin_login(throttled, ROOT_USER, ROOT_PASSWORD, source))
    assert shared_count(throttled, "user", ROOT_USER) == MAX_FAILURES
    wait_for(
        lambda: admin_login(throttled, ROOT_USER, ROOT_PASSWORD, source)[0] == 200,
        WINDOW + 30,
        "a correct login once the window has passed",
        interval=0.5,
    )


def test_the_user_is_throttled_from_any_address_and_the_address_for_any_user(throttled):
    for attempt in range(MAX_FAILURES):
        assert admin_login(throttled, "mallory-target", "wrong", f"127.0.0.{21 + attempt}")[0] == 401
    assert_refused(admin_login(throttled, "mallory-target", "wrong", "127.0.0.30"))
    for attempt in range(MAX_FAILURES):
        assert admin_login(throttled, f"guess-{attempt}", "wrong", "127.0.0.31")[0] == 401
    assert_refused(admin_login(throttled, "someone-else", "wrong", "127.0.0.31"))
    assert admin_login(throttled, "someone-else", "wrong", "127.0.0.32")[0] == 401


def test_console_logins_count_for_the_browsers_address_not_loopback(throttled):
    browser = "127.0.0.41"
    for attempt in range(MAX_FAILURES):
        status, _, body = console_login(throttled, f"console-user-{attempt}", "wrong", browser)
        assert (status, body["error"]["code"]) == (401, "InvalidCredentials")
    assert shared_count(throttled, "address", browser) == MAX_FAILURES
    assert shared_count(throttled, "address", "127.0.0.1") == 0
    assert_refused(console_login(throttled, ROOT_USER, ROOT_PASSWORD, browser))


def test_a_client_cannot_claim_another_address(throttled):
    forged = {"X-NebulaIO-Client-Address": "10.9.9.9 " + "0" * 64}
    assert admin_login(throttled, "forger", "wrong", "127.0.0.51", forged)[0] == 401
    assert shared_count(throttled, "address", "127.0.0.51") == 1
    assert shared_count(throttled, "address", "10.9.9.9") == 0
