"""The raft journal's storage: PySyncObj's format, written with pwrite into zeroed space."""

from __future__ import annotations

import os

from pysyncobj.journal import FileJournal

from nebulaio.cluster.journal import ZERO_STEP, DurableJournal

RECORD = 300_000
"""Bytes of one test entry: a few of them cross a zeroing step."""


def entries(count: int, start: int = 1) -> list[tuple[bytes, int, int]]:
    return [(bytes([index % 251]) * RECORD, index, 1 + index // 5) for index in range(start, start + count)]


def read_back(path: str, kind=DurableJournal) -> list[tuple[bytes, int, int]]:
    journal = kind(path)
    try:
        return [journal[position] for position in range(len(journal))]
    finally:
        journal._destroy()


def test_entries_written_across_zeroing_steps_read_back_whole(tmp_path):
    path = str(tmp_path / "journal")
    written = entries(12)
    journal = DurableJournal(path)
    for entry in written:
        journal.add(*entry)
    journal.sync()
    journal._destroy()
    assert read_back(path) == written
    assert read_back(path, FileJournal) == written  # PySyncObj's own journal reads it


def test_the_file_grows_by_zeroed_steps_not_as_a_sparse_file(tmp_path):
    path = str(tmp_path / "journal")
    journal = DurableJournal(path)
    for entry in entries(12):
        journal.add(*entry)
    journal.sync()
    journal._destroy()
    size = os.stat(path).st_size
    assert size >= 12 * RECORD
    assert (size - 1024) % ZERO_STEP == 0  # PySyncObj's 1 KiB start, then whole steps
    assert os.stat(path).st_blocks * 512 >= size - 1024  # every step written, no hole left


def test_a_journal_pysyncobj_wrote_takes_new_entries_and_drops_old_ones(tmp_path):
    path = str(tmp_path / "journal")
    theirs = FileJournal(path)
    first = entries(4)
    for entry in first:
        theirs.add(*entry)
    theirs._destroy()

    journal = DurableJournal(path)
    assert [journal[position] for position in range(len(journal))] == first
    more = entries(6, start=5)
    for entry in more:
        journal.add(*entry)
    journal.deleteEntriesFrom(8)  # a follower's conflicting tail
    journal.sync()
    journal._destroy()
    assert read_back(path) == (first + more)[:8]

    journal = DurableJournal(path)
    journal.deleteEntriesTo(3)  # a compaction
    journal._destroy()
    assert read_back(path) == (first + more)[3:8]
