"""Record what clients saw of a key set, and check it against S3's strong read-after-write.

Every operation has an invoke and a complete time (one monotonic clock, one process) and an
outcome: "ok" (acknowledged), "fail" (a definite refusal, 4xx) or "unknown" (5xx or a broken
connection: the write may still take effect, at any time after its invoke). Every PUT writes
a value no other writes; a DELETE writes None, as does the initial state.

The rules, per key:
- a read returns a value some write wrote, invoked before the read completed;
- no read returns a value superseded before it was invoked: write A is superseded once an
  acknowledged write B was invoked after A completed, and B completed before the read
  (stale read, lost write, writes out of order);
- reads do not go back: a read invoked after another read completed never returns a value
  whose write completed before the first read's value's write was invoked.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from dataclasses import dataclass, field

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
WRITES = ("put", "delete")


@dataclass(frozen=True)
class Op:
    kind: str  # put, delete, get (list results are recorded as one get per key)
    key: str
    value: str | None
    invoke: float
    complete: float
    outcome: str
    client: str = ""

    @property
    def applied_by(self) -> float:
        """Latest moment the write can have taken effect: its completion, if acknowledged."""
        return self.complete if self.outcome == OK else math.inf


INITIAL = "initial"


@dataclass
class History:
    """A thread-safe log of operations, and their check."""

    ops: list[Op] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, op: Op) -> Op:
        with self._lock:
            self.ops.append(op)
        return op

    def call(self, kind: str, key: str, value: str | None, action, client: str = "") -> Op:
        """Run `action()` (which returns what a read saw) and record it; classify what it raised."""
        invoke = time.monotonic()
        try:
            seen = action()
        except Exception as error:
            return self.record(Op(kind, key, value, invoke, time.monotonic(), outcome_of(error), client))
        return self.record(Op(kind, key, seen if kind == "get" else value, invoke, time.monotonic(), OK, client))

    def violations(self) -> list[str]:
        return check(self.ops)


def outcome_of(error: Exception) -> str:
    """4xx is a definite failure; a 5xx or a broken connection leaves the outcome unknown."""
    response = getattr(error, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    return FAIL if status is not None and 400 <= status < 500 else UNKNOWN


def check(ops: list[Op]) -> list[str]:
    """Every violation of the rules above, in words; empty when the history is consistent."""
    problems: list[str] = []
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for key, key_ops in sorted(by_key.items()):
        writes = [Op("delete", key, None, -math.inf, -math.inf, OK, INITIAL)]
        writes += [op for op in key_ops if op.kind in WRITES and op.outcome != FAIL]
        acknowledged = [w for w in writes if w.outcome == OK]
        reads = sorted((op for op in key_ops if op.kind == "get" and op.outcome == OK), key=lambda op: op.invoke)
        explained: list[tuple[Op, Op | None]] = []
        for read in reads:
            sources = [w for w in writes if w.value == read.value and w.invoke < read.complete]
            if not sources:
                problems.append(f"{key}: {describe(read)} returned a value no write before it wrote")
                continue
            fresh = [w for w in sources if not superseded(w, acknowledged, read.invoke)]
            if not fresh:
                newest = max((b for b in acknowledged if b.complete < read.invoke), key=lambda b: b.complete)
                problems.append(f"{key}: stale {describe(read)}; {describe(newest)} was acknowledged before it")
                continue
            explained.append((read, fresh[0] if len(sources) == 1 else None))
        problems += backwards(key, explained)
    return problems


def superseded(write: Op, acknowledged: list[Op], before: float) -> bool:
    return any(later.invoke > write.applied_by and later.complete < before for later in acknowledged)


def backwards(key: str, explained: list[tuple[Op, Op | None]]) -> list[str]:
    """Reads of values written once (no None): a later read must not see an older write."""
    problems = []
    unique = [(read, write) for read, write in explained if write is not None]
    for first, first_write in unique:
        for later, later_write in unique:
            if later.invoke > first.complete and later_write.applied_by < first_write.invoke:
                problems.append(f"{key}: {describe(later)} went back before {describe(first)}")
    return problems


def describe(op: Op) -> str:
    span = f"[{op.invoke:.3f}, {op.complete:.3f}]"
    return f"{op.kind} {op.value!r} by {op.client or '?'} {span} {op.outcome}"


class Workload:
    """Client threads doing PUT, DELETE, GET and LIST of a few keys through given S3 clients.

    Each client is (name, boto3 client); values are unique, and a listing's ETags (the MD5 of
    the body) say which value it saw.
    """

    def __init__(self, clients: list[tuple[str, object]], bucket: str, keys: list[str], seed: int = 0):
        self.clients = clients
        self.bucket = bucket
        self.keys = keys
        self.history = History()
        self.stop = threading.Event()
        self._values_by_etag: dict[str, str] = {}
        self._threads = [
            threading.Thread(target=self._run, args=(name, client, random.Random(seed + number)), daemon=True)
            for number, (name, client) in enumerate(clients)
        ]

    def start(self) -> Workload:
        for thread in self._threads:
            thread.start()
        return self

    def finish(self, timeout: float = 60.0) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, name: str, client, rng: random.Random) -> None:
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            key = rng.choice(self.keys)
            roll = rng.random()
            if roll < 0.35:
                op = self.put(client, name, key, f"{name}-{sequence}")
            elif roll < 0.45:
                op = self.delete(client, name, key)
            elif roll < 0.8:
                op = self.get(client, name, key)
            else:
                op = self.list(client, name)
            if op.outcome != OK:
                time.sleep(0.05)  # a node that refuses answers fast; do not spin on it

    def put(self, client, name: str, key: str, value: str) -> Op:
        body = value.encode()
        self._values_by_etag[hashlib.md5(body).hexdigest()] = value

        def write():
            return client.put_object(Bucket=self.bucket, Key=key, Body=body)

        return self.history.call("put", key, value, write, name)

    def delete(self, client, name: str, key: str) -> Op:
        return self.history.call("delete", key, None, lambda: client.delete_object(Bucket=self.bucket, Key=key), name)

    def get(self, client, name: str, key: str) -> Op:
        def read():
            try:
                return client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
            except Exception as error:
                if getattr(error, "response", {}).get("Error", {}).get("Code") == "NoSuchKey":
                    return None
                raise

        return self.history.call("get", key, None, read, name)

    def list(self, client, name: str) -> Op:
        """One listing (every page of it) is a read of every key, at some moment while it ran."""
        invoke = time.monotonic()
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            contents = [item for page in pages for item in page.get("Contents", [])]
        except Exception as error:
            return self.history.record(Op("list", "*", None, invoke, time.monotonic(), outcome_of(error), name))
        complete = time.monotonic()
        seen = {item["Key"]: self._values_by_etag.get(item["ETag"].strip('"'), "?") for item in contents}
        reads = [Op("get", key, seen.get(key), invoke, complete, OK, name) for key in self.keys]
        for op in reads:
            self.history.record(op)
        return reads[-1]

    def read_everything(self) -> None:
        """A final GET of every key through every client: no acknowledged write may be missing."""
        for name, client in self.clients:
            for key in self.keys:
                self.get(client, name, key)
