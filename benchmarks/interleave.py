"""Two sides of one comparison measured in turn, round after round, and reported as ratios.

On a shared 2-core machine two targets measured minutes apart differ by more than what is
measured; phases that alternate (the order flipping each round) let the machine's drift hit
both sides alike. Reported: the median over the rounds of the rate and of the server's CPU per
request, and second ÷ first of each. CPU per request moves far less with the noise than the
rate does.
"""

from __future__ import annotations

import argparse
import statistics
from typing import NamedTuple

from benchmarks.load import Endpoint, PhaseSpec, ServerCpu, run_phase
from benchmarks.report import number


def parse_args(
    argv: list[str] | None, module: str, description: str, sides: str, rounds: int, seconds: float
) -> argparse.Namespace:
    """The options every interleaved benchmark takes; `sides` names the pair, as "a/b"."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--rounds", type=int, default=rounds, help=f"{sides} pairs of phases per workload")
    parser.add_argument("--seconds", type=float, default=seconds, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    return parser.parse_args(argv)


class Side(NamedTuple):
    endpoint: Endpoint
    keys: list[str]
    """The keys its phases read."""
    cpu: ServerCpu


def compare(sides: dict[str, Side], workloads, bucket: str, payload: bytes, args) -> int:
    """Run every workload on both `sides` (two, the first the reference) for `args.rounds`
    rounds of `args.seconds` at `args.concurrency`, print each phase and the ratio table;
    1 when a phase saw errors."""
    first, second = sides
    rates: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for round_number in range(args.rounds):
        order = (first, second) if round_number % 2 == 0 else (second, first)
        for workload in workloads:
            for name in order:
                side = sides[name]
                spec = PhaseSpec(workload, bucket, side.keys, args.concurrency, 10**9, args.seconds, payload)
                result = run_phase(side.endpoint, spec, args.processes, side.cpu)
                if result.errors:
                    print(f"{name} {workload}: {result.errors} errors, e.g. {result.error_samples[:1]}")
                    return 1
                rates.setdefault((workload, name), []).append(result.rate)
                cpu.setdefault((workload, name), []).append(result.server_cpu_us)
                print(
                    f"  round {round_number + 1} {workload:5} {name:8} c={args.concurrency} "
                    f"{number(result.rate):>9} ops/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                    f"server CPU {result.server_cpu_us:5.0f} µs/op",
                    flush=True,
                )
    print()
    heading = f"4 KiB, c={args.concurrency}, {args.rounds} rounds"
    print(
        f"| {heading} | {first} ops/s | {second} ops/s | {second} ÷ {first} "
        f"| {first} CPU µs/op | {second} CPU µs/op | {second} ÷ {first} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for workload in workloads:
        one, other = (statistics.median(rates[(workload, name)]) for name in (first, second))
        one_cpu, other_cpu = (statistics.median(cpu[(workload, name)]) for name in (first, second))
        print(
            f"| {workload} | {number(one)} | {number(other)} | {other / one:.2f} "
            f"| {one_cpu:.0f} | {other_cpu:.0f} | {other_cpu / one_cpu:.2f} |"
        )
    return 0
