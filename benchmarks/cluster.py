"""The cluster benchmark: a 3-node cluster beside a single node, in one run.

    python -m benchmarks.cluster [--seconds 8] [--processes 2]

For each target: 4 KiB PUT ops/s (concurrency 8), 64 MiB PUT MiB/s (concurrency 4), and the
metadata commit latency (p50, p99) with 1 and 32 concurrent writers. On a single node a 4 KiB
object lives inline in its metadata record, so a 4 KiB PUT is one command through raft and
LMDB: its latency from the client is the commit latency plus one HTTP round trip. In the
cluster it is that plus storing the body on a write quorum of its holders first.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.load import PhaseSpec, ServerCpu, run_phase
from benchmarks.peers import NebulaIO, NebulaIOCluster, NotStarted, stop_on_signals
from benchmarks.run import LARGE_SIZE, SMALL_SIZE

BUCKET = "bench-cluster"
SMALL_OPS = 50_000
LARGE_OPS = 16
THROUGHPUT_WRITERS = 8
LARGE_WRITERS = 4
LATENCY_WRITERS = (1, 32)


def measure(target, seconds: float, processes: int) -> list[tuple[str, str]]:
    """(figure, value) rows for one started target."""
    target.create_bucket(BUCKET)
    cpu = ServerCpu(target.server_pids())
    small, large = b"s" * SMALL_SIZE, b"L" * LARGE_SIZE

    def put(kind: str, writers: int, ops: int, payload: bytes, tag: str):
        keys = [f"{tag}/{index:07d}" for index in range(ops)]
        spec = PhaseSpec(kind, BUCKET, keys, writers, ops, seconds, payload)
        result = run_phase(target.endpoint, spec, processes, cpu)
        if result.errors:
            print(f"  {target.name} {kind} x{writers}: {result.errors} errors {result.error_samples}", file=sys.stderr)
        return result

    rows = []
    result = put("PUT", THROUGHPUT_WRITERS, SMALL_OPS, small, "small")
    rows.append((f"PUT 4 KiB, {THROUGHPUT_WRITERS} writers", f"{result.rate:,.0f} ops/s"))
    result = put("PUT-LARGE", LARGE_WRITERS, LARGE_OPS, large, "large")
    rows.append((f"PUT 64 MiB, {LARGE_WRITERS} writers", f"{result.rate:,.0f} MiB/s"))
    for writers in LATENCY_WRITERS:
        result = put("PUT", writers, SMALL_OPS, small, f"latency{writers}")
        rows.append((f"commit latency, {writers} writers", f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="time limit of each phase")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    args = parser.parse_args(argv)
    stop_on_signals()
    table: dict[str, dict[str, str]] = {}
    for target in (NebulaIO(), NebulaIOCluster()):
        try:
            with target:
                table[target.name] = dict(measure(target, args.seconds, args.processes))
        except NotStarted as error:
            print(f"{target.name}: not started ({error})", file=sys.stderr)
    names = list(table)
    figures = list(dict.fromkeys(figure for rows in table.values() for figure in rows))
    print("| figure | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for figure in figures:
        print(f"| {figure} | " + " | ".join(table[name].get(figure, "-") for name in names) + " |")
    return 0 if len(table) == 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
