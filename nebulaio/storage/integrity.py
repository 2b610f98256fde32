"""Bit-rot detection: every stored file's xxh3-64 digest is recorded with it at write time
(`HASH_FIELD` in its version's or part's record) and checked before its bytes are served, by
holders and repair before a copy takes its place, and by the scrub on a schedule.

A whole-file digest, not one per block: the record stays small, and a file is only ever
judged whole (a GET, a copy, a scrub). Records written before digests were recorded have none;
their files are served unchecked.

PERF: xxh3 hashes at memory speed, so a check costs one read of the file, not the hash. A GET
stays on sendfile: the file is hashed before the answer's first byte (a damaged copy is refused
before any header is sent, so another holder can answer instead), and each worker remembers
the files it verified (`FileChecks`), by device, inode, size, mtime and ctime: a write to a
file, or its replacement, changes one of them, so only media rot under an unchanged inode
waits for the trust to lapse or for the scrub, which re-reads every file on its schedule.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import xxhash

from nebulaio.util.fileread import pieces
from nebulaio.util.memo import BoundedMemo

log = logging.getLogger("nebulaio.integrity")

HASH_FIELD = "file_xxh3"
REMEMBERED_FILES = 100_000
"""Verified files a worker remembers; the oldest are forgotten first."""

new_hasher = xxhash.xxh3_64


def bytes_digest(data) -> str:
    return xxhash.xxh3_64_hexdigest(data)


class DamagedPart(Exception):
    """A part file does not match its recorded digest: no object is built from it."""

    def __init__(self, part: str):
        super().__init__(f"part file {part} does not match its recorded digest")
        self.part = part


def segment_digests(fd: int, sizes: list[int]) -> tuple[str, list[str]]:
    """The digest of an open file's bytes to its end, and of each of its consecutive segments
    of `sizes` bytes, from one read."""
    whole = new_hasher()
    segments = []
    offset = 0
    for size in sizes:
        segment = new_hasher()
        try:
            for chunk in pieces(fd, size, offset):
                segment.update(chunk)
                whole.update(chunk)
        except EOFError:
            pass  # a short segment: its digest cannot match its record's
        offset += size
        segments.append(segment.hexdigest())
    for chunk in pieces(fd, offset=offset):
        whole.update(chunk)
    return whole.hexdigest(), segments


def file_digest(fd: int, paced: Callable[[int], None] | None = None) -> str:
    """The digest of an open file's bytes to its end, read with pread (its offset stays put);
    `paced(n)` is called after each piece read, to slow a background reader down."""
    hasher = new_hasher()
    for chunk in pieces(fd):
        hasher.update(chunk)
        if paced is not None:
            paced(len(chunk))
    return hasher.hexdigest()


class FileChecks:
    """A worker's checks of stored files against their recorded digests.

    `trust`: seconds a verified, unchanged file is served without being read again (0: every
    read checks). `report(damaged)`: told of each damaged file found, with what its caller
    said about it (the scrub then counts and heals it).
    """

    __slots__ = ("_trust", "_report", "_verified")

    def __init__(self, trust: float, report: Callable[[dict], None] | None = None):
        self._trust = trust
        self._report = report
        self._verified: BoundedMemo[float] = BoundedMemo(REMEMBERED_FILES)

    def intact(self, fd: int, expected: str | None, damaged: dict | None = None) -> bool:
        """Whether an open file holds the bytes its record's digest says (`expected`; None: an
        old record without one, taken as it is). A damaged file is logged and reported."""
        if expected is None:
            return True
        stat = os.fstat(fd)
        identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, expected)
        now = time.monotonic()
        verified = self._verified.get(identity)
        if verified is not None and now - verified < self._trust:
            return True
        if file_digest(fd) == expected:
            if self._trust > 0:
                self._verified.put(identity, now)
            return True
        if damaged is not None:
            self.report(damaged)
        return False

    def report(self, damaged: dict) -> None:
        """Log a damaged file and hand it to whoever heals it."""
        log.error("a stored file does not match its recorded digest: %s", damaged)
        if self._report is not None:
            try:
                self._report(damaged)
            except Exception:
                log.exception("reporting a damaged file failed")
