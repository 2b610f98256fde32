"""A small SQLite file that every HTTP worker of a node opens: counts and caches they share.

Such a store needs no durability (synchronous=OFF) and many readers beside one writer at a
time (WAL). Switching a new file to WAL takes a lock SQLite does not wait for: workers
starting together got "database is locked", and the one that lost failed to boot. So the
switch is retried while another worker makes it.
"""

from __future__ import annotations

import sqlite3
import time

BUSY_TIMEOUT = 5.0
SWITCH_ATTEMPTS = 100
SWITCH_PAUSE = 0.01


def open_shared(path: str, schema: tuple[str, ...]) -> sqlite3.Connection:
    """The store at `path` in WAL mode with `schema` applied; for use from several threads under a lock."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    for attempt in range(SWITCH_ATTEMPTS):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(SWITCH_PAUSE)
    db.execute("PRAGMA synchronous=OFF")
    for statement in schema:
        db.execute(statement)
    return db
