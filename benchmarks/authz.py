"""What authorization costs: the same node measured as root and as a ten-statement-policy user.

`python -m benchmarks.authz [--rounds 6] [--seconds 8] [--concurrency 8]` starts one NebulaIO
node, gives it the policy user of `nebulaio-user`, writes 4 KiB objects, then runs GET and HEAD
phases as root and as that user in turn, round after round (the order flips each round). One
node and interleaved phases keep the machine's drift out of the comparison: two separate
targets measured minutes apart on a shared 2-core machine differ by more than what is measured.
Reported: the median over the rounds of the rate and of the server's CPU per request (all
its processes), and user ÷ root of each. CPU per request moves far less with the machine's
noise than the rate does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from benchmarks.load import Endpoint, PhaseSpec, ServerCpu, run_phase
from benchmarks.peers import BENCH_ACCESS_KEY, BENCH_SECRET_KEY, HOST, NebulaIOPolicyUser
from benchmarks.report import number
from benchmarks.run import BUCKET, SMALL_SIZE

KEYS = 10_000
WORKLOADS = ("GET", "HEAD")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.authz", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="root/user pairs of phases per workload")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with NebulaIOPolicyUser() as target:
        principals = {
            "root": Endpoint(HOST, target.port, BENCH_ACCESS_KEY, BENCH_SECRET_KEY),
            "user": target.endpoint,
        }
        target.create_bucket(BUCKET)
        keys = [f"authz/obj-{index:06d}" for index in range(KEYS)]
        payload = os.urandom(SMALL_SIZE)
        written = run_phase(
            principals["root"],
            PhaseSpec("PUT", BUCKET, keys, 32, KEYS, 600.0, payload),
            args.processes,
            None,
        ).done_keys
        server_cpu = ServerCpu(target.server_pids())
        rates: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            order = ("root", "user") if round_number % 2 == 0 else ("user", "root")
            for workload in WORKLOADS:
                for principal in order:
                    spec = PhaseSpec(workload, BUCKET, written, args.concurrency, 10**9, args.seconds, payload)
                    result = run_phase(principals[principal], spec, args.processes, server_cpu)
                    if result.errors:
                        print(f"{principal} {workload}: {result.errors} errors, e.g. {result.error_samples[:1]}")
                        return 1
                    rates.setdefault((workload, principal), []).append(result.rate)
                    cpu.setdefault((workload, principal), []).append(result.server_cpu_us)
                    print(
                        f"  round {round_number + 1} {workload:5} {principal:5} c={args.concurrency} "
                        f"{number(result.rate):>9} ops/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                        f"server CPU {result.server_cpu_us:5.0f} µs/op",
                        flush=True,
                    )
    print()
    heading = f"4 KiB, c={args.concurrency}, {args.rounds} rounds"
    print(f"| {heading} | root ops/s | user ops/s | user ÷ root | root CPU µs/op | user CPU µs/op | user ÷ root |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for workload in WORKLOADS:
        root, user = (statistics.median(rates[(workload, who)]) for who in ("root", "user"))
        root_cpu, user_cpu = (statistics.median(cpu[(workload, who)]) for who in ("root", "user"))
        print(
            f"| {workload} | {number(root)} | {number(user)} | {user / root:.2f} "
            f"| {root_cpu:.0f} | {user_cpu:.0f} | {user_cpu / root_cpu:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
