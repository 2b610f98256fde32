"""The failed-login counts: exact when several processes count at once, per address and per user."""

from __future__ import annotations

import multiprocessing
import sqlite3

from nebulaio.admin.throttle import LoginThrottle, keys

PROCESSES = 4
FAILURES_EACH = 25


def count(path, key: str) -> int:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT count FROM failures WHERE key = ?", (key,)).fetchone()
    return row[0] if row else 0


def _fail(path: str, address: str) -> None:
    throttle = LoginThrottle(path, 1000, 60)
    for _ in range(FAILURES_EACH):
        throttle.failed(address, "alice")


def test_failures_counted_by_several_processes_add_up_exactly(tmp_path):
    path = str(tmp_path / "failures.sqlite")
    LoginThrottle(path, 1000, 60)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_fail, args=(path, f"10.0.0.{n}")) for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    address, user = keys("10.0.0.0", "alice")
    assert count(path, user) == PROCESSES * FAILURES_EACH
    assert count(path, address) == FAILURES_EACH


def test_too_many_failures_of_an_address_or_a_user_wait_out_the_window(tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("nebulaio.admin.throttle.time.time", lambda: now[0])
    throttle = LoginThrottle(str(tmp_path / "failures.sqlite"), 3, 60)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1", "alice") == 0
        throttle.failed("10.0.0.1", "alice")
    assert throttle.retry_after("10.0.0.1", "alice") == 60
    assert throttle.retry_after("10.0.0.2", "alice") == 60  # the user, from anywhere
    assert throttle.retry_after("10.0.0.1", "bob") == 60  # the address, for anyone
    assert throttle.retry_after("10.0.0.2", "bob") == 0
    now[0] += 59.5
    assert throttle.retry_after("10.0.0.1", "alice") == 1
    now[0] += 0.5
    assert throttle.retry_after("10.0.0.1", "alice") == 0
    throttle.failed("10.0.0.1", "alice")  # a new window: one failure, and the old rows are gone
    assert throttle.retry_after("10.0.0.1", "alice") == 0
    assert count(str(tmp_path / "failures.sqlite"), keys("10.0.0.1", "alice")[1]) == 1


def test_no_limit_when_max_failures_is_zero(tmp_path):
    throttle = LoginThrottle(str(tmp_path / "failures.sqlite"), 0, 60)
    for _ in range(5):
        throttle.failed("10.0.0.1", "alice")
    assert throttle.retry_after("10.0.0.1", "alice") == 0
