"""A bounded memo for hot paths: what was computed from the same input is not computed again."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class BoundedMemo(Generic[Value]):
    """At most `size` results by input, the oldest forgotten first.

    First in, first out rather than least recently used: a hit costs one dict lookup and no
    bookkeeping, and a working set that fits is never evicted either way. Safe to share
    between threads: a lookup is one dict read; a put, which finds and drops the oldest
    entry, holds a lock (unlocked, a put racing another raised "dictionary changed size
    during iteration" and let the memo outgrow its size). A lost race computes a result
    twice, nothing worse.
    """

    __slots__ = ("_results", "_size", "_lock")

    def __init__(self, size: int):
        self._results: dict[Hashable, Value] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Value | None:
        return self._results.get(key)

    def put(self, key: Hashable, value: Value) -> Value:
        """Remember `value` as the newest result (a key put again moves to the newest end)."""
        results = self._results
        with self._lock:
            results.pop(key, None)
            if len(results) >= self._size:
                results.pop(next(iter(results), None), None)
            results[key] = value
        return value
