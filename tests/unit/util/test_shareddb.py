"""Workers that open a new shared store at the same moment all get it (one switching it to
WAL while another tried to made that one fail to boot)."""

from __future__ import annotations

import multiprocessing

from nebulaio.util.shareddb import open_shared

SCHEMA = ("CREATE TABLE IF NOT EXISTS counts (key TEXT PRIMARY KEY, count INTEGER NOT NULL)",)
PROCESSES = 16


def _open_together(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        db = open_shared(path, SCHEMA)
        db.execute("INSERT INTO counts VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET count = count + 1", ("k",))
        results.put("ok")
    except Exception as exc:  # reported to the test, which fails on it
        results.put(repr(exc))


def test_processes_opening_a_new_store_together_all_get_it(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_number in range(40):
        path = str(tmp_path / f"store-{round_number}.sqlite")
        barrier, results = context.Barrier(PROCESSES), context.Queue()
        processes = [context.Process(target=_open_together, args=(path, barrier, results)) for _ in range(PROCESSES)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(60)
        assert outcomes == ["ok"] * PROCESSES
        db = open_shared(path, SCHEMA)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count FROM counts").fetchone()[0] == PROCESSES
