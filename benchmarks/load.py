"""Phases of load: a few worker processes, each running many connections in one event loop.

A phase ends after `max_ops` requests or `max_seconds`, whichever comes first. Every response
is checked (status, body length, listing page size); failures are counted, never dropped.
"""

import asyncio
import multiprocessing
import re
import threading
import time
import traceback
from array import array
from dataclasses import dataclass, field

import psutil

from benchmarks.client import Connection, Listener, RequestBuilder
from benchmarks.response import ResponseParser
from benchmarks.sigv4 import Headers, Signer, canonical_query, encode_path

MIB = 1 << 20
ERROR_SAMPLES = 3
BARRIER_SECONDS = 120.0
WORKER_EXIT_SECONDS = 10.0
STATUSES_OK = {"PUT": (200, 201, 204), "GET": (200,), "HEAD": (200,), "DELETE": (200, 204)}
NEXT_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
COPY_RESULT = b"<CopyObjectResult"


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom the load goes."""

    host: str
    port: int
    access_key: str
    secret_key: str

    def builder(self) -> RequestBuilder:
        return RequestBuilder(self.host, self.port, Signer(self.access_key, self.secret_key))


@dataclass
class PhaseSpec:
    """One measured phase. `kind` names a workload in WORKLOADS."""

    kind: str
    bucket: str
    keys: list[str]
    concurrency: int
    max_ops: int
    max_seconds: float
    payload: bytes = b""
    page_size: int = 1000
    source: str = ""
    """COPY-LARGE: the key every copy reads; `payload` is then the source's bytes, for MiB/s.
    PART-LARGE: the key of the open upload whose parts are sent."""
    upload_id: str = ""
    """PART-LARGE: the open upload; `keys` are then its part numbers."""


@dataclass
class WorkerOutcome:
    """What one worker process measured."""

    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: array = field(default_factory=lambda: array("d"))
    started: float = 0.0
    finished: float = 0.0
    cpu_seconds: float = 0.0
    done_keys: list[str] = field(default_factory=list)


class Workload:
    """Chooses each connection's next request and judges its response."""

    __slots__ = ()
    head_only = False
    keep_body = False

    def next_request(self, slot: int) -> tuple[bytes, bytes | None] | None:
        """(head, body) for the connection in `slot`, or None when this worker's share is done."""
        raise NotImplementedError

    def check(self, slot: int, parser: ResponseParser) -> str | None:
        """None if the response is right, else what was wrong with it."""
        raise NotImplementedError

    def abandon(self, slot: int) -> None:
        """The slot's request got no response (the connection broke)."""
        raise NotImplementedError


class KeyedRequests(Workload):
    """PUT, GET, HEAD or DELETE over this worker's share of the keys, once each or round and round."""

    __slots__ = (
        "builder",
        "method",
        "paths",
        "keys",
        "cycle",
        "body",
        "content_length",
        "expected_length",
        "head_only",
        "statuses",
        "cursor",
        "in_flight",
        "done_keys",
        "headers",
    )

    def __init__(
        self,
        builder: RequestBuilder,
        method: str,
        bucket: str,
        keys: list[str],
        payload: bytes,
        cycle: bool,
        headers: Headers = (),
    ):
        self.builder = builder
        self.headers = headers
        self.method = method
        self.keys = keys
        self.paths = [encode_path(f"/{bucket}/{key}") for key in keys]
        self.cycle = cycle
        self.body = payload if method == "PUT" else None
        self.content_length = len(payload) if method == "PUT" else None
        self.expected_length = len(payload) if method == "GET" else None
        self.head_only = method == "HEAD"
        self.statuses = STATUSES_OK[method]
        self.cursor = 0
        self.in_flight: dict[int, int] = {}
        self.done_keys: dict[str, None] = {}  # PUT keys written at least once, in order

    def next_request(self, slot: int) -> tuple[bytes, bytes | None] | None:
        if not self.paths or (self.cursor >= len(self.paths) and not self.cycle):
            return None
        index = self.cursor % len(self.paths)
        self.cursor += 1
        self.in_flight[slot] = index
        return self.builder.head(self.method, self.paths[index], "", self.content_length, self.headers), self.body

    def check(self, slot: int, parser: ResponseParser) -> str | None:
        index = self.in_flight.pop(slot)
        if parser.status not in self.statuses:
            return f"{self.method} {self.keys[index]}: {parser.status} {parser.body[:300]!r}"
        if self.expected_length is not None and parser.body_length != self.expected_length:
            return f"GET {self.keys[index]}: {parser.body_length} bytes, expected {self.expected_length}"
        if self.method == "PUT":
            self.done_keys[self.keys[index]] = None
        return None

    def abandon(self, slot: int) -> None:
        self.in_flight.pop(slot, None)


class CopyRequests(KeyedRequests):
    """CopyObject of one source onto this worker's share of the keys, round and round.

    The answer is read whole: S3 may answer 200 and still report a failed copy in the body.
    """

    __slots__ = ()
    keep_body = True

    def __init__(self, builder: RequestBuilder, bucket: str, keys: list[str], source: str):
        copy_source = (("x-amz-copy-source", encode_path(f"/{bucket}/{source}")),)
        super().__init__(builder, "PUT", bucket, keys, b"", True, copy_source)

    def check(self, slot: int, parser: ResponseParser) -> str | None:
        if parser.status == 200 and COPY_RESULT not in parser.body:
            key = self.keys[self.in_flight.pop(slot)]
            return f"COPY {key}: 200 without a CopyObjectResult: {parser.body[:300]!r}"
        return super().check(slot, parser)


class PartRequests(KeyedRequests):
    """UploadPart of `payload` as this worker's share of an open upload's part numbers, once each."""

    __slots__ = ("queries",)

    def __init__(self, builder: RequestBuilder, bucket: str, key: str, upload_id: str, numbers: list[str], payload):
        super().__init__(builder, "PUT", bucket, numbers, payload, False)
        self.paths = [encode_path(f"/{bucket}/{key}")] * len(numbers)
        self.queries = [canonical_query({"partNumber": number, "uploadId": upload_id}) for number in numbers]

    def next_request(self, slot: int) -> tuple[bytes, bytes | None] | None:
        if self.cursor >= len(self.paths):
            return None
        index = self.cursor
        self.cursor += 1
        self.in_flight[slot] = index
        return self.builder.head("PUT", self.paths[index], self.queries[index], self.content_length), self.body


class ListPages(Workload):
    """ListObjectsV2 walks over the whole bucket, page by page; each connection walks on its own."""

    keep_body = True

    __slots__ = ("builder", "path", "page_size", "total_keys", "tokens", "seen")

    def __init__(self, builder: RequestBuilder, bucket: str, total_keys: int, page_size: int):
        self.builder = builder
        self.path = encode_path(f"/{bucket}")
        self.page_size = page_size
        self.total_keys = total_keys
        self.tokens: dict[int, str] = {}
        self.seen: dict[int, int] = {}

    def next_request(self, slot: int) -> tuple[bytes, bytes | None] | None:
        params = {"list-type": "2", "max-keys": str(self.page_size)}
        token = self.tokens.get(slot)
        if token:
            params["continuation-token"] = token
        return self.builder.head("GET", self.path, canonical_query(params)), None

    def check(self, slot: int, parser: ResponseParser) -> str | None:
        body = parser.body
        if parser.status != 200:
            self.abandon(slot)
            return f"LIST: {parser.status} {body[:300]!r}"
        seen = self.seen.get(slot, 0) + body.count(b"<Key>")
        match = NEXT_TOKEN.search(body)
        if match:
            self.tokens[slot] = match.group(1).decode()
            self.seen[slot] = seen
            return None
        self.abandon(slot)
        if seen != self.total_keys:
            return f"LIST: a walk saw {seen} keys, expected {self.total_keys}"
        return None

    def abandon(self, slot: int) -> None:
        """The walk starts over from the first page."""
        self.tokens.pop(slot, None)
        self.seen.pop(slot, None)


WORKLOADS = {
    "PUT": ("PUT", False),
    "GET": ("GET", True),
    "HEAD": ("HEAD", True),
    "DELETE": ("DELETE", False),
    "PUT-LARGE": ("PUT", True),
    "GET-LARGE": ("GET", True),
}


def build_workload(spec: PhaseSpec, builder: RequestBuilder, worker: int, workers: int) -> Workload:
    if spec.kind == "LIST":
        return ListPages(builder, spec.bucket, len(spec.keys), spec.page_size)
    if spec.kind == "COPY-LARGE":
        return CopyRequests(builder, spec.bucket, spec.keys[worker::workers], spec.source)
    if spec.kind == "PART-LARGE":
        return PartRequests(builder, spec.bucket, spec.source, spec.upload_id, spec.keys[worker::workers], spec.payload)
    method, cycle = WORKLOADS[spec.kind]
    return KeyedRequests(builder, method, spec.bucket, spec.keys[worker::workers], spec.payload, cycle)


def share(total: int, worker: int, workers: int) -> int:
    return total // workers + (1 if worker < total % workers else 0)


class PhaseRunner(Listener):
    """Keeps every connection busy until the phase's bound, recording each response."""

    __slots__ = (
        "endpoint",
        "workload",
        "connections",
        "max_ops",
        "deadline",
        "started",
        "outcome",
        "done",
        "idle",
        "loop",
        "keep_body",
    )

    def __init__(self, endpoint: Endpoint, workload: Workload, connections: int, max_ops: int):
        self.endpoint = endpoint
        self.workload = workload
        self.max_ops = max_ops
        self.deadline = 0.0
        self.started = 0
        self.outcome = WorkerOutcome()
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self.idle = 0
        self.keep_body = workload.keep_body
        self.connections = [Connection(self, slot) for slot in range(connections)]

    async def connect(self, connection: Connection) -> None:
        await self.loop.create_connection(lambda: connection, self.endpoint.host, self.endpoint.port)

    async def connect_all(self) -> None:
        await asyncio.gather(*(self.connect(connection) for connection in self.connections))

    def start(self, max_seconds: float) -> None:
        self.outcome.started = time.perf_counter()
        self.deadline = self.outcome.started + max_seconds
        for connection in self.connections:
            self.issue(connection)

    def issue(self, connection: Connection) -> None:
        request = None
        if self.started < self.max_ops and time.perf_counter() < self.deadline:
            request = self.workload.next_request(connection.slot)
        if request is None:
            self.retire()
            return
        self.started += 1
        connection.started_at = time.perf_counter()
        connection.send(request[0], request[1], self.workload.head_only, self.keep_body)

    def completed(self, connection: Connection) -> None:
        outcome = self.outcome
        outcome.latencies.append(time.perf_counter() - connection.started_at)
        problem = self.workload.check(connection.slot, connection.parser)
        if problem is None:
            outcome.ok += 1
        else:
            self.note_error(problem)
        if connection.parser.keep_alive:
            self.issue(connection)
        else:
            connection.close()
            self.loop.create_task(self.reconnect(connection))

    def retire(self) -> None:
        """One connection has no more work; the last one to stop ends the phase."""
        self.idle += 1
        if self.idle == len(self.connections) and not self.done.done():
            self.outcome.finished = time.perf_counter()
            self.done.set_result(None)

    def failed(self, connection: Connection, reason: str) -> None:
        self.workload.abandon(connection.slot)
        self.note_error(reason)
        connection.close()
        self.loop.create_task(self.reconnect(connection))

    def note_error(self, problem: str) -> None:
        self.outcome.errors += 1
        if len(self.outcome.error_samples) < ERROR_SAMPLES:
            self.outcome.error_samples.append(problem)

    async def reconnect(self, old: Connection) -> None:
        connection = Connection(self, old.slot)
        self.connections[self.connections.index(old)] = connection
        try:
            await self.connect(connection)
        except OSError as exc:
            self.note_error(f"reconnect failed: {exc}")
            self.retire()
            return
        self.issue(connection)


async def _run_worker(endpoint: Endpoint, spec: PhaseSpec, worker: int, workers: int, barrier) -> WorkerOutcome:
    workload = build_workload(spec, endpoint.builder(), worker, workers)
    runner = PhaseRunner(
        endpoint, workload, share(spec.concurrency, worker, workers), share(spec.max_ops, worker, workers)
    )
    await runner.connect_all()
    barrier.wait()
    cpu_before = time.process_time()
    runner.start(spec.max_seconds)
    await runner.done
    runner.outcome.cpu_seconds = time.process_time() - cpu_before
    for connection in runner.connections:
        connection.close()
    if isinstance(workload, KeyedRequests):
        runner.outcome.done_keys = list(workload.done_keys)
    return runner.outcome


def _worker_main(endpoint: Endpoint, spec: PhaseSpec, worker: int, workers: int, barrier, pipe) -> None:
    try:
        outcome = asyncio.run(_run_worker(endpoint, spec, worker, workers, barrier))
    except BaseException as exc:  # noqa: BLE001 - whatever stopped the worker is reported, not lost
        barrier.abort()
        outcome = WorkerOutcome(errors=1, error_samples=[f"worker failed: {exc!r}"])
        if not isinstance(exc, (OSError, threading.BrokenBarrierError, KeyboardInterrupt)):
            outcome.error_samples.append(traceback.format_exc(limit=3))
    pipe.send(outcome)
    pipe.close()


class ServerCpu:
    """CPU seconds used so far by a server: its processes and all their descendants."""

    __slots__ = ("root_pids",)

    def __init__(self, root_pids: list[int]):
        self.root_pids = root_pids

    def sample(self) -> float:
        total = 0.0
        for pid in self.root_pids:
            try:
                root = psutil.Process(pid)
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                # Reaped children's time moves into their parent's children_* fields: count it there.
                total += times.user + times.system + times.children_user + times.children_system
        return total


@dataclass
class PhaseResult:
    """One phase's figures, merged over its workers."""

    kind: str
    concurrency: int
    ok: int
    errors: int
    error_samples: list[str]
    seconds: float
    rate: float
    unit: str
    p50_ms: float
    p99_ms: float
    server_cpu_us: float | None
    client_cpu_us: float
    done_keys: list[str] = field(repr=False)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run_phase(endpoint: Endpoint, spec: PhaseSpec, processes: int, server_cpu: ServerCpu | None) -> PhaseResult:
    """Runs one phase across `processes` forked workers and merges what they measured."""
    context = multiprocessing.get_context("fork")
    workers = max(1, min(processes, spec.concurrency))
    barrier = context.Barrier(workers + 1, timeout=BARRIER_SECONDS)
    pipes, children = [], []
    for worker in range(workers):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_worker_main,
            args=(endpoint, spec, worker, workers, barrier, sender),
            name=f"bench-{spec.kind}-{worker}",
            daemon=True,
        )
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    cpu_before = None
    try:
        barrier.wait()
        cpu_before = server_cpu.sample() if server_cpu else None
    except threading.BrokenBarrierError:
        pass  # a worker failed before the start; its outcome says why
    outcomes = []
    try:
        for pipe, child in zip(pipes, children, strict=True):
            try:
                outcomes.append(pipe.recv())
            except EOFError:
                outcomes.append(WorkerOutcome(errors=1, error_samples=[f"worker exited with {child.exitcode}"]))
        cpu_after = server_cpu.sample() if server_cpu else None
    except BaseException:
        for child in children:  # interrupted: our workers stop now, not at the end of the phase
            child.kill()
        raise
    finally:
        for child in children:
            child.join(timeout=WORKER_EXIT_SECONDS)
            if child.is_alive():
                child.kill()
    return merge(spec, outcomes, cpu_before, cpu_after)


def merge(
    spec: PhaseSpec, outcomes: list[WorkerOutcome], cpu_before: float | None, cpu_after: float | None
) -> PhaseResult:
    ok = sum(outcome.ok for outcome in outcomes)
    errors = sum(outcome.errors for outcome in outcomes)
    requests = ok + errors
    timed = [outcome for outcome in outcomes if outcome.finished]
    seconds = (max(o.finished for o in timed) - min(o.started for o in timed)) if timed else 0.0
    latencies = sorted(latency for outcome in outcomes for latency in outcome.latencies)
    large = spec.kind.endswith("-LARGE")
    rate = ok / seconds if seconds else 0.0
    server_cpu_us = None
    if cpu_before is not None and cpu_after is not None and requests:
        server_cpu_us = (cpu_after - cpu_before) / requests * 1e6
    return PhaseResult(
        kind=spec.kind,
        concurrency=spec.concurrency,
        ok=ok,
        errors=errors,
        error_samples=[sample for outcome in outcomes for sample in outcome.error_samples][:ERROR_SAMPLES],
        seconds=seconds,
        rate=rate * len(spec.payload) / MIB if large else rate,
        unit="MiB/s" if large else ("pages/s" if spec.kind == "LIST" else "ops/s"),
        p50_ms=percentile(latencies, 0.50) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
        server_cpu_us=server_cpu_us,
        client_cpu_us=sum(outcome.cpu_seconds for outcome in outcomes) / requests * 1e6 if requests else 0.0,
        done_keys=[key for outcome in outcomes for key in outcome.done_keys],
    )
