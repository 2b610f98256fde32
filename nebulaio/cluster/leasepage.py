"""The follower's read lease as its workers see it (see nebulaio.cluster.lease).

Kept apart from the lease protocol so that workers map the page without importing raft.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time

PAGE = struct.Struct("<QdQQQ")
"""sequence (odd while written), lease end (time.monotonic), acknowledged log end, applied index, term."""
SEQUENCE = struct.Struct("<Q")


class LeasePage:
    """The follower's lease as its workers see it: one page of shared memory under a sequence
    lock, written by the supervisor's threads, read by every worker."""

    def __init__(self, path: str):
        self.path = path
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()
        self._fields = [0.0, 0, 0, 0]
        self._sequence = 0
        self._next_open = 0.0

    # -- the supervisor's side ----------------------------------------------------------------

    def create(self, term: int) -> None:
        """Start with no lease; rewritten in place, so workers that mapped it before see this one."""
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(descriptor, mmap.PAGESIZE)
            self._map = mmap.mmap(descriptor, mmap.PAGESIZE)
        finally:
            os.close(descriptor)
        with self._lock:
            # A term the raft member moved to meanwhile (new_term before the page existed) stands.
            self._fields = [0.0, 0, 0, max(term, self._fields[3])]
            self._write()

    def acknowledging(self, log_end: int) -> None:
        """Before this follower acknowledges entries up to `log_end` to the leader."""
        with self._lock:
            self._fields[1] = log_end
            self._write()

    def applied(self, index: int) -> None:
        with self._lock:
            self._fields[2] = index
            self._write()

    def new_term(self, term: int) -> None:
        """A new term ends the lease, before this member answers anyone in it."""
        with self._lock:
            self._fields[0] = 0.0
            self._fields[3] = term
            self._write()

    def extend(self, term: int, until: float) -> None:
        """A lease granted in `term`, counted until `until`; ignored once the term has passed."""
        with self._lock:
            if term == self._fields[3] and until > self._fields[0]:
                self._fields[0] = until
                self._write()

    def leased_index(self) -> int | None:
        """While a lease is held, the index a read beginning now must wait for (else None)."""
        with self._lock:
            lease_end, log_end = self._fields[0], self._fields[1]
        return log_end if time.monotonic() < lease_end else None

    def _write(self) -> None:
        page = self._map
        if page is None:
            return
        self._sequence += 1
        SEQUENCE.pack_into(page, 0, self._sequence)
        PAGE.pack_into(page, 0, self._sequence, *self._fields)
        self._sequence += 1
        SEQUENCE.pack_into(page, 0, self._sequence)

    # -- a worker's side ----------------------------------------------------------------------

    def covers(self) -> bool:
        """Whether a read beginning now may be answered from this replica without a fence."""
        page = self._map if self._map is not None else self._open()
        if page is None:
            return False
        for _ in range(8):
            sequence, lease_end, log_end, applied, _ = PAGE.unpack_from(page)
            if not sequence & 1 and SEQUENCE.unpack_from(page)[0] == sequence:
                return applied >= log_end and time.monotonic() < lease_end
        return False

    def _open(self) -> mmap.mmap | None:
        """Map the supervisor's page (at most once a second until it exists)."""
        now = time.monotonic()
        if now < self._next_open:
            return None
        self._next_open = now + 1.0
        try:
            descriptor = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            self._map = mmap.mmap(descriptor, PAGE.size, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            return None
        finally:
            os.close(descriptor)
        return self._map
