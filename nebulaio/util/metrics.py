"""Request counters that every HTTP worker keeps in a small memory-mapped file of its own.

gunicorn runs several worker processes; each one counts its requests in `<pid>` under the
metrics directory, and a scrape (from any worker) sums the files. A file describes itself:

    magic (8 bytes) | header length (u32) | orjson header | padding to 8 | u64 counters

The header names the operations, statuses and latency bounds; per operation the counters are
one per status, one per latency bucket (the last is +Inf), the latency sum in microseconds,
bytes received and bytes sent. A reader sums by name, so files of another layout still add up.
The file of a worker that died stays, so the sums never go down while the node runs; the
launcher empties the directory at start.
"""

from __future__ import annotations

import bisect
import mmap
import os
import struct
import threading
from collections.abc import Iterable

import orjson

MAGIC = b"NEBMETR1"
_LENGTH = struct.Struct(">I")
COUNTER_SIZE = 8
TAIL = 3
"""The last counters of an operation: latency sum (microseconds), bytes received, bytes sent."""
OTHER_STATUS = "other"
STATUSES = tuple(
    str(code) for code in (200, 204, 206, 301, 304, 307, 400, 403, 404, 405, 409, 411, 412, 416, 500, 501, 503)
) + (OTHER_STATUS,)
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram's buckets; a last bucket holds the rest."""


def _layout(operations: tuple[str, ...]) -> tuple[bytes, int]:
    """The file's head (magic, header, padding) and the number of counters per operation."""
    header = orjson.dumps({"operations": operations, "statuses": STATUSES, "bounds": LATENCY_BOUNDS})
    head = MAGIC + _LENGTH.pack(len(header)) + header
    head += b"\0" * (-len(head) % COUNTER_SIZE)
    return head, _stride(STATUSES, LATENCY_BOUNDS)


def _stride(statuses, bounds) -> int:
    """Counters per operation: statuses, latency buckets (+Inf included) and the TAIL."""
    return len(statuses) + len(bounds) + 1 + TAIL


class RequestMetrics:
    """One worker's counters: `observe` is a handful of increments on pre-computed slots."""

    __slots__ = ("_base", "_counters", "_lock", "_map", "_status_slot", "_stride")

    def __init__(self, directory: str, operations: Iterable[str]) -> None:
        operations = tuple(operations)
        head, self._stride = _layout(operations)
        size = len(head) + len(operations) * self._stride * COUNTER_SIZE
        path = os.path.join(directory, str(os.getpid()))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # A file left by a dead worker of the same pid and layout keeps counting on.
            if os.fstat(fd).st_size != size or os.pread(fd, len(head), 0) != head:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
                os.pwrite(fd, head, 0)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._counters = memoryview(self._map)[len(head) :].cast("Q")
        self._base = {name: index * self._stride for index, name in enumerate(operations)}
        self._status_slot = {int(code): slot for slot, code in enumerate(STATUSES[:-1])}
        self._lock = threading.Lock()

    def observe(self, operation: str, status: int, seconds: float, received: int, sent: int) -> None:
        """Count one request of `operation` (a name given at construction)."""
        base = self._base[operation]
        status_slot = self._status_slot.get(status, len(STATUSES) - 1)
        latency = base + len(STATUSES) + bisect.bisect_left(LATENCY_BOUNDS, seconds)
        tail = base + self._stride - TAIL
        counters = self._counters
        # NOTE: a worker serves requests on several threads; `+=` on the map is not atomic.
        with self._lock:
            counters[base + status_slot] += 1
            counters[latency] += 1
            counters[tail] += int(seconds * 1_000_000)
            counters[tail + 1] += received
            counters[tail + 2] += sent


class Totals:
    """The sums over every worker's file, by operation."""

    __slots__ = ("bounds", "bytes_in", "bytes_out", "latency_buckets", "latency_sum", "requests")

    def __init__(self) -> None:
        self.bounds: tuple[float, ...] = LATENCY_BOUNDS
        self.requests: dict[tuple[str, str], int] = {}
        self.latency_buckets: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.bytes_in: dict[str, int] = {}
        self.bytes_out: dict[str, int] = {}

    def add_file(self, data: bytes) -> None:
        if not data.startswith(MAGIC):
            return
        (length,) = _LENGTH.unpack_from(data, len(MAGIC))
        start = len(MAGIC) + _LENGTH.size
        header = orjson.loads(data[start : start + length])
        operations, statuses, bounds = header["operations"], header["statuses"], tuple(header["bounds"])
        if bounds != self.bounds:
            return  # a file of another release's buckets cannot be merged bucket by bucket
        head = start + length + (-(start + length) % COUNTER_SIZE)
        stride = _stride(statuses, bounds)
        counters = memoryview(data)[head : head + len(operations) * stride * COUNTER_SIZE].cast("Q")
        for index, operation in enumerate(operations):
            base = index * stride
            for slot, status in enumerate(statuses):
                if counters[base + slot]:
                    self.requests[(operation, status)] = (
                        self.requests.get((operation, status), 0) + counters[base + slot]
                    )
            buckets = counters[base + len(statuses) : base + len(statuses) + len(bounds) + 1].tolist()
            if not any(buckets):
                continue
            mine = self.latency_buckets.setdefault(operation, [0] * len(buckets))
            for slot, count in enumerate(buckets):
                mine[slot] += count
            tail = base + stride - TAIL
            self.latency_sum[operation] = self.latency_sum.get(operation, 0.0) + counters[tail] / 1_000_000
            self.bytes_in[operation] = self.bytes_in.get(operation, 0) + counters[tail + 1]
            self.bytes_out[operation] = self.bytes_out.get(operation, 0) + counters[tail + 2]


def read_totals(directory: str) -> Totals:
    """Sum every worker's counters in `directory` (a file being created is skipped)."""
    totals = Totals()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return totals
    for name in names:
        try:
            with open(os.path.join(directory, name), "rb") as fh:
                totals.add_file(fh.read())
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            continue
    return totals
