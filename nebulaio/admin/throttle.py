"""Failed logins, counted per source address and per user in one small SQLite file that every
HTTP worker of the node shares (`<data>/run/login-failures.sqlite`).

Why SQLite and not the supervisor: a login is checked on every attempt, and a read here is one
indexed SELECT in the worker itself (tens of microseconds, no IPC, nothing for the supervisor's
tick thread to do); only a failure writes. SQLite's file locks make the counts exact across
processes, and WAL lets the reads go on while a failure is written. The counts need no
durability (synchronous=OFF): after a power cut an attacker has at most one more window.
"""

from __future__ import annotations

import math
import threading
import time

from nebulaio.util.shareddb import open_shared

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS failures (key TEXT PRIMARY KEY, first REAL NOT NULL, count INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS failures_by_first ON failures (first)",
)
COUNT_FAILURE = """
INSERT INTO failures (key, first, count) VALUES (:key, :now, 1)
ON CONFLICT (key) DO UPDATE SET
    first = CASE WHEN first + :window <= :now THEN :now ELSE first END,
    count = CASE WHEN first + :window <= :now THEN 1 ELSE count + 1 END
"""


def keys(address: str, user: str) -> tuple[str, str]:
    """The two counters a login attempt touches: its source address's and its user's."""
    return "address\0" + address, "user\0" + user


class LoginThrottle:
    """At most `max_failures` failed logins from one address, or for one user, within `window`
    seconds of the first; then every attempt of either is refused until the window ends.

    A successful login clears nothing: an attacker who also holds one good pair cannot reset
    the count of the address it guesses from.
    """

    def __init__(self, path: str, max_failures: int, window: float):
        self._max_failures = max_failures
        self._window = window
        self._lock = threading.Lock()
        self._db = open_shared(path, SCHEMA)

    def retry_after(self, address: str, user: str) -> int:
        """Whole seconds until `user` may try again from `address`; 0 if it may now."""
        if not self._max_failures:
            return 0
        now = time.time()
        with self._lock:
            rows = self._db.execute(
                "SELECT first FROM failures WHERE key IN (?, ?) AND count >= ? AND first + ? > ?",
                (*keys(address, user), self._max_failures, self._window, now),
            ).fetchall()
        return max((math.ceil(first + self._window - now) for (first,) in rows), default=0)

    def failed(self, address: str, user: str) -> None:
        """Count one failed login of `user` from `address`, and forget counts whose window has ended."""
        if not self._max_failures:
            return
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key in keys(address, user):
                    self._db.execute(COUNT_FAILURE, {"key": key, "now": now, "window": self._window})
                self._db.execute("DELETE FROM failures WHERE first <= ?", (now - self._window,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
