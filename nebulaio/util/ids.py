"""Identifiers the proposer fixes before a command is logged (apply must be deterministic)."""

from __future__ import annotations

import os
import threading
import time

ENTROPY_BLOCK = 4096
"""Random bytes asked of the kernel at a time; ids take them in slices."""


class _Entropy:
    """The kernel's random bytes, read a block at a time.

    PERF: a write asked for random bytes three times (its request, version and command ids),
    one getrandom() syscall apiece. Each thread slices its own block, so no lock is taken; a
    forked child drops the blocks it inherited, or parent and child would hand out the same ids.
    """

    def __init__(self):
        self._local = threading.local()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._local = threading.local()

    def take(self, size: int) -> bytes:
        local = self._local
        block = getattr(local, "block", b"")
        start = getattr(local, "used", 0)
        if start + size > len(block):
            block = local.block = os.urandom(ENTROPY_BLOCK)
            start = 0
        local.used = start + size
        return block[start : start + size]


_entropy = _Entropy()


def version_id() -> str:
    """A unique, time-ordered version id: 16 hex digits of nanoseconds + 16 random hex digits."""
    return f"{time.time_ns():016x}{_entropy.take(8).hex()}"


def request_id() -> str:
    return _entropy.take(8).hex().upper()


def command_id() -> str:
    """A command's request id: apply answers a retried command what it answered the first time."""
    return _entropy.take(12).hex()


def now_ms() -> int:
    return time.time_ns() // 1_000_000
