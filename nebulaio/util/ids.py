"""Identifiers the proposer fixes before a command is logged (apply must be deterministic)."""

from __future__ import annotations

import os
import time


def version_id() -> str:
    """A unique, time-ordered version id: 16 hex digits of nanoseconds + 16 random hex digits."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def request_id() -> str:
    return os.urandom(8).hex().upper()


def command_id() -> str:
    """A command's request id: apply answers a retried command what it answered the first time."""
    return os.urandom(12).hex()


def now_ms() -> int:
    return time.time_ns() // 1_000_000
