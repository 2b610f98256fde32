"""What a strong read costs in a cluster: a follower of three nodes beside a single node.

`python -m benchmarks.reads [--rounds 3] [--seconds 3] [--concurrency 8]` starts a single node
and a 3-node hybrid cluster side by side, writes 4 KiB objects to each, then runs GET and HEAD
phases against the single node and against a follower of the cluster in turn, round after
round (the order flips each round), so the machine's drift hits both alike. A follower's
read waits for the leader's read index before it reads its replica. Reported: the median over
the rounds of the rate and of the server's CPU per request (all processes of the target),
and follower ÷ single of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import orjson

from benchmarks.load import Endpoint, PhaseSpec, ServerCpu, run_phase
from benchmarks.peers import HOST, NebulaIO, NebulaIOCluster, simple_request
from benchmarks.report import number
from benchmarks.run import BUCKET, SMALL_SIZE

KEYS = 2_000
WORKLOADS = ("GET", "HEAD")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reads", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="single/follower pairs of phases per workload")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    return parser.parse_args(argv)


def follower(cluster: NebulaIOCluster) -> Endpoint:
    """The S3 endpoint of a node of `cluster` that does not lead raft."""
    for s3_port, admin_port, *_ in cluster.node_ports:
        admin = Endpoint(HOST, admin_port, cluster.access_key, cluster.secret_key)
        _, body = simple_request(admin.builder(), "GET", "/health/ready")
        if orjson.loads(body)["raft"]["state"] != "leader":
            return Endpoint(HOST, s3_port, cluster.access_key, cluster.secret_key)
    raise SystemExit("no follower in the cluster")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    payload = os.urandom(SMALL_SIZE)
    keys = [f"reads/obj-{index:06d}" for index in range(KEYS)]
    with NebulaIO() as single, NebulaIOCluster() as cluster:
        targets = {"single": (single, single.endpoint), "follower": (cluster, follower(cluster))}
        written, cpus = {}, {}
        for name, (target, endpoint) in targets.items():
            target.create_bucket(BUCKET)
            spec = PhaseSpec("PUT", BUCKET, keys, 32, KEYS, 600.0, payload)
            written[name] = run_phase(endpoint, spec, args.processes, None).done_keys
            cpus[name] = ServerCpu(target.server_pids())
        rates: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            order = ("single", "follower") if round_number % 2 == 0 else ("follower", "single")
            for workload in WORKLOADS:
                for name in order:
                    spec = PhaseSpec(workload, BUCKET, written[name], args.concurrency, 10**9, args.seconds, payload)
                    result = run_phase(targets[name][1], spec, args.processes, cpus[name])
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
    print(f"| {heading} | single ops/s | follower ops/s | ratio | single CPU µs/op | follower CPU µs/op | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for workload in WORKLOADS:
        one, other = (statistics.median(rates[(workload, name)]) for name in ("single", "follower"))
        one_cpu, other_cpu = (statistics.median(cpu[(workload, name)]) for name in ("single", "follower"))
        print(
            f"| {workload} | {number(one)} | {number(other)} | {other / one:.2f} "
            f"| {one_cpu:.0f} | {other_cpu:.0f} | {other_cpu / one_cpu:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
