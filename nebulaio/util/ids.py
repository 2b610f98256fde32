"""Identifiers the proposer fixes before a command is logged (apply must be deterministic)."""

from __future__ import annotations

import os
import threading
import time

ENTROPY_BLOCK = 4096
"""Random bytes asked of the kernel at a time; ids take them in slices."""


class _Block(threading.local):
    """A thread's block of random bytes and how much of it is taken (a new thread's is empty)."""

    data = b""
    used = 0


class _Entropy:
    """The kernel's random bytes, read a block at a time.

    PERF: a write asked for random bytes three times (its request, version and command ids),
    one getrandom() syscall apiece. Each thread slices its own block, so no lock is taken; a
    forked child drops the blocks it inherited, or parent and child would hand out the same ids.
    """

    def __init__(self):
        self._block = _Block()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._block = _Block()

    def take(self, size: int) -> bytes:
        block = self._block
        start = block.used
        if start + size > len(block.data):
            block.data = os.urandom(ENTROPY_BLOCK)
            start = 0
        block.used = start + size
        return block.data[start : start + size]


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
