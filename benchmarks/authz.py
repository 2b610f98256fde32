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

import os
import sys

from benchmarks.interleave import Side, compare, parse_args
from benchmarks.load import Endpoint, PhaseSpec, ServerCpu, run_phase
from benchmarks.peers import BENCH_ACCESS_KEY, BENCH_SECRET_KEY, HOST, NebulaIOPolicyUser
from benchmarks.run import BUCKET, SMALL_SIZE

KEYS = 10_000
WORKLOADS = ("GET", "HEAD")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "benchmarks.authz", __doc__.splitlines()[0], "root/user", rounds=6, seconds=8.0)
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
        sides = {name: Side(endpoint, written, server_cpu) for name, endpoint in principals.items()}
        return compare(sides, WORKLOADS, BUCKET, payload, args)


if __name__ == "__main__":
    sys.exit(main())
