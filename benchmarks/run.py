"""Runs the benchmark: `python -m benchmarks.run [--targets a,b] [--quick] [--endpoint URL ...]`.

Each target is started, measured phase by phase and stopped before the next one starts, so
targets never share the machine with each other.
"""

import argparse
import dataclasses
import hashlib
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from benchmarks.client import simple_request
from benchmarks.disk import durable_creates_per_second
from benchmarks.load import MIB, PhaseResult, PhaseSpec, ServerCpu, run_phase
from benchmarks.peers import TARGETS, External, NebulaIOBaseline, NotStarted, Target, stop_on_signals
from benchmarks.report import LABELS, Report, number
from benchmarks.sigv4 import canonical_query

DEFAULT_TARGETS = "nebulaio,nginx,moto,radosgw"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUCKET = "bench"
LIST_BUCKET = "bench-list"
SMALL_SIZE = 4 << 10
LARGE_SIZE = 64 * MIB
GET_LARGE_WAVES = 4
"""Each large object written is read this many times (within the phase's time)."""
LIST_PAGE = 1000
POPULATE_CONCURRENCY = 32
POPULATE_SECONDS = 900.0
# The multipart phase: one 1 GiB object of 64 MiB parts (LARGE_SIZE), as many in flight as
# the concurrency level allows; every part is sent, however long it takes.
MULTIPART_PARTS = 16
MULTIPART_SECONDS = 600.0
COMPLETE_SECONDS = 600.0
UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")


@dataclass(frozen=True)
class Plan:
    """How much work each phase does: it stops at its op count or its time, whichever is first."""

    name: str
    concurrencies: tuple[int, ...]
    small_ops: int
    small_seconds: float
    list_keys: int
    list_pages: int
    list_seconds: float
    large_min_ops: int
    large_seconds: float


FULL = Plan("full", (1, 8, 32), 50_000, 8.0, 10_000, 5_000, 8.0, 8, 10.0)
QUICK = Plan("quick", (8,), 10_000, 2.0, 1_000, 300, 2.0, 8, 4.0)


class Harness:
    """Measures one started target with every phase of the plan."""

    def __init__(self, target: Target, plan: Plan, processes: int, large_payload: bytes):
        self.target = target
        self.plan = plan
        self.processes = processes
        self.small_payload = os.urandom(SMALL_SIZE)
        self.large_payload = large_payload
        pids = target.server_pids()
        self.server_cpu = ServerCpu(pids) if pids else None
        self.results: list[PhaseResult] = []

    def phase(
        self,
        kind: str,
        bucket: str,
        keys: list[str],
        concurrency: int,
        max_ops: int,
        seconds: float,
        payload: bytes = b"",
        source: str = "",
        upload_id: str = "",
    ) -> PhaseResult:
        spec = PhaseSpec(kind, bucket, keys, concurrency, max_ops, seconds, payload, LIST_PAGE, source, upload_id)
        result = run_phase(self.target.endpoint, spec, self.processes, self.server_cpu)
        print(
            f"  {self.target.name:9} {LABELS.get(kind, kind):22} c={concurrency:<3} {number(result.rate):>9} "
            f"{result.unit:8} p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}",
            flush=True,
        )
        return result

    def measure(self) -> None:
        plan, target = self.plan, self.target
        target.create_bucket(BUCKET)
        list_keys = self.populate_list_bucket() if target.supports_list else []
        for concurrency in plan.concurrencies:
            keys = [f"c{concurrency}/obj-{index:07d}" for index in range(plan.small_ops)]
            put = self.record(
                self.phase("PUT", BUCKET, keys, concurrency, plan.small_ops, plan.small_seconds, self.small_payload)
            )
            written = put.done_keys
            for kind in ("GET", "HEAD"):
                self.record(
                    self.phase(
                        kind, BUCKET, written, concurrency, plan.small_ops, plan.small_seconds, self.small_payload
                    )
                )
            self.record(self.phase("DELETE", BUCKET, written, concurrency, len(written), plan.small_seconds))
            if list_keys:
                self.record(self.phase("LIST", LIST_BUCKET, list_keys, concurrency, plan.list_pages, plan.list_seconds))
            if self.large_payload:
                self.measure_large(concurrency)

    def measure_large(self, concurrency: int) -> None:
        plan = self.plan
        keys = [f"c{concurrency}/large-{stream}" for stream in range(concurrency)]
        ops = max(concurrency, plan.large_min_ops)  # every stream at least once, 2 GiB at most at c=32
        put = self.record(
            self.phase("PUT-LARGE", BUCKET, keys, concurrency, ops, plan.large_seconds, self.large_payload)
        )
        written = list(put.done_keys)
        if put.done_keys:
            # Reads write nothing: several waves of them, so that one figure is not one wave's
            # luck (each stream's first read also checks its file against its recorded digest).
            reads, payload = ops * GET_LARGE_WAVES, self.large_payload
            self.record(self.phase("GET-LARGE", BUCKET, put.done_keys, concurrency, reads, plan.large_seconds, payload))
            if self.target.supports_copy:
                copies = [f"c{concurrency}/copy-{stream}" for stream in range(concurrency)]
                copy = self.record(
                    self.phase(
                        "COPY-LARGE",
                        BUCKET,
                        copies,
                        concurrency,
                        ops,
                        plan.large_seconds,
                        self.large_payload,
                        source=put.done_keys[0],
                    )
                )
                written += copy.done_keys
        if self.target.supports_multipart:
            written += self.measure_multipart(concurrency)
        builder = self.target.endpoint.builder()
        for key in written:  # large objects would crowd an in-memory peer at the next level
            simple_request(builder, "DELETE", f"/{BUCKET}/{key}")

    def measure_multipart(self, concurrency: int) -> list[str]:
        """A 1 GiB object uploaded in 64 MiB parts, `concurrency` at a time, then completed.

        Two figures: the parts alone (PART-LARGE) and the whole upload from the first part to
        the completion's answer (MULTIPART-1GIB), since the object exists only once completed.
        Creating the upload is set-up, not measured. Returns the key written, if it was.
        """
        key = f"c{concurrency}/multipart"
        builder = self.target.endpoint.builder()
        status, body = simple_request(builder, "POST", f"/{BUCKET}/{key}", "uploads=")
        found = UPLOAD_ID.search(body) if status == 200 else None
        if found is None:
            raise RuntimeError(f"CreateMultipartUpload: {status} {body[:300]!r}")
        upload_id = found.group(1).decode()
        numbers = [str(number) for number in range(1, MULTIPART_PARTS + 1)]
        parts = self.record(
            self.phase(
                "PART-LARGE",
                BUCKET,
                numbers,
                min(concurrency, MULTIPART_PARTS),
                MULTIPART_PARTS,
                MULTIPART_SECONDS,
                self.large_payload,
                source=key,
                upload_id=upload_id,
            )
        )
        upload = canonical_query({"uploadId": upload_id})
        if len(parts.done_keys) != MULTIPART_PARTS:
            simple_request(builder, "DELETE", f"/{BUCKET}/{key}", upload)
            return []
        etag = hashlib.md5(self.large_payload).hexdigest()  # every part carries the same bytes
        listed = "".join(f'<Part><PartNumber>{n}</PartNumber><ETag>"{etag}"</ETag></Part>' for n in numbers)
        document = f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()
        cpu_before = self.server_cpu.sample() if self.server_cpu else None
        started = time.perf_counter()
        status, body = simple_request(builder, "POST", f"/{BUCKET}/{key}", upload, document, COMPLETE_SECONDS)
        completion = time.perf_counter() - started
        # A 200 may still carry an error; moto names its root element differently from S3.
        completed = status == 200 and b"<ETag>" in body and b"<Error>" not in body
        seconds = parts.seconds + completion
        server_cpu_us = None
        if parts.server_cpu_us is not None and cpu_before is not None:
            completion_cpu = self.server_cpu.sample() - cpu_before
            server_cpu_us = parts.server_cpu_us * MULTIPART_PARTS + completion_cpu * 1e6
        whole = dataclasses.replace(
            parts,
            kind="MULTIPART-1GIB",
            ok=int(completed),
            errors=int(not completed),
            error_samples=[] if completed else [f"CompleteMultipartUpload: {status} {body[:300]!r}"],
            seconds=seconds,
            rate=MULTIPART_PARTS * len(self.large_payload) / MIB / seconds if completed else 0.0,
            p50_ms=seconds * 1e3,
            p99_ms=seconds * 1e3,
            server_cpu_us=server_cpu_us,
            client_cpu_us=parts.client_cpu_us * MULTIPART_PARTS,
            done_keys=[key] if completed else [],
        )
        print(
            f"  {self.target.name:9} {LABELS[whole.kind]:22} c={concurrency:<3} {number(whole.rate):>9} "
            f"{whole.unit:8} {seconds:.2f} s, of which completion {completion:.2f} s  errors {whole.errors}",
            flush=True,
        )
        self.record(whole)
        return whole.done_keys

    def populate_list_bucket(self) -> list[str]:
        """Fills the listing bucket once; every concurrency level lists the same keys."""
        self.target.create_bucket(LIST_BUCKET)
        keys = [f"key-{index:06d}" for index in range(self.plan.list_keys)]
        print(f"  {self.target.name:9} populating {len(keys):,} keys for LIST", flush=True)
        spec = PhaseSpec("PUT", LIST_BUCKET, keys, POPULATE_CONCURRENCY, len(keys), POPULATE_SECONDS, b"x")
        result = run_phase(self.target.endpoint, spec, self.processes, None)
        if result.errors or len(result.done_keys) != len(keys):
            raise RuntimeError(
                f"populating {LIST_BUCKET}: {len(result.done_keys)} of {len(keys)} written, "
                f"{result.errors} errors, e.g. {result.error_samples[:1]}"
            )
        return keys

    def record(self, result: PhaseResult) -> PhaseResult:
        self.results.append(result)
        return result


def make_targets(args: argparse.Namespace) -> list[Target]:
    targets: list[Target] = []
    if args.endpoint:
        targets.append(External(args.endpoint, args.access_key, args.secret_key))
    for name in filter(None, (part.strip() for part in args.targets.split(","))):
        if name not in TARGETS:
            raise SystemExit(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        targets.append(TARGETS[name]())
    if args.baseline:
        targets.append(NebulaIOBaseline(args.baseline))
    return targets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help=f"comma-separated, first is the subject of the ratios (default {DEFAULT_TARGETS})",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer ops, concurrency 8 only")
    parser.add_argument("--endpoint", help="also measure an S3 endpoint already running, e.g. http://127.0.0.1:9000")
    parser.add_argument("--access-key", default="", help="access key for --endpoint")
    parser.add_argument("--secret-key", default="", help="secret key for --endpoint")
    parser.add_argument(
        "--baseline", type=Path, help="also measure NebulaIO from this source tree (an earlier commit's checkout)"
    )
    parser.add_argument("--processes", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--no-large", action="store_true", help="skip the 64 MiB phases")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR, help="where the JSON and Markdown go")
    args = parser.parse_args(argv)
    if args.endpoint and not (args.access_key and args.secret_key):
        parser.error("--endpoint needs --access-key and --secret-key")
    if args.endpoint and args.targets == DEFAULT_TARGETS:
        args.targets = ""
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    plan = QUICK if args.quick else FULL
    targets = make_targets(args)
    report = Report(plan.name, [target.name for target in targets])
    report.disk_creates = durable_creates_per_second()
    print(f"disk: {report.disk_creates:,.0f} durable 4 KiB file creates/s on one thread", flush=True)
    large_payload = b"" if args.no_large else os.urandom(LARGE_SIZE)
    interrupted = False
    try:
        for target in targets:
            print(f"{target.name}: starting", flush=True)
            try:
                with target:
                    harness = Harness(target, plan, args.processes, large_payload)
                    report.results[target.name] = harness.results  # a failure midway keeps what was measured
                    harness.measure()
                report.status[target.name] = "ok"
            except NotStarted as exc:
                report.status[target.name] = f"not started ({exc})"
            except KeyboardInterrupt:
                report.status[target.name] = "interrupted"
                interrupted = True
                break
            except Exception as exc:  # noqa: BLE001 - one broken target must not stop the others
                traceback.print_exc()
                report.status[target.name] = f"failed ({exc})"
            finally:
                print(f"{target.name}: {report.status.get(target.name, 'stopped')}", flush=True)
    finally:
        print()
        print(report.text())
        json_path, markdown_path = report.write(args.output)
        print(f"\nwrote {json_path} and {markdown_path}")
    if interrupted:
        return 130
    return 0 if all(status == "ok" for status in report.status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
