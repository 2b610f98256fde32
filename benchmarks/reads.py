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

import os
import sys

import orjson

from benchmarks.interleave import Side, compare, parse_args
from benchmarks.load import Endpoint, PhaseSpec, ServerCpu, run_phase
from benchmarks.peers import HOST, NebulaIO, NebulaIOCluster, simple_request, stop_on_signals
from benchmarks.run import BUCKET, SMALL_SIZE

KEYS = 2_000
WORKLOADS = ("GET", "HEAD")


def follower(cluster: NebulaIOCluster) -> Endpoint:
    """The S3 endpoint of a node of `cluster` that does not lead raft."""
    for s3_port, admin_port, *_ in cluster.node_ports:
        admin = Endpoint(HOST, admin_port, cluster.access_key, cluster.secret_key)
        _, body = simple_request(admin.builder(), "GET", "/health/ready")
        if orjson.loads(body)["raft"]["state"] != "leader":
            return Endpoint(HOST, s3_port, cluster.access_key, cluster.secret_key)
    raise SystemExit("no follower in the cluster")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "benchmarks.reads", __doc__.splitlines()[0], "single/follower", rounds=3, seconds=3.0)
    stop_on_signals()
    payload = os.urandom(SMALL_SIZE)
    keys = [f"reads/obj-{index:06d}" for index in range(KEYS)]
    with NebulaIO() as single, NebulaIOCluster() as cluster:
        targets = {"single": (single, single.endpoint), "follower": (cluster, follower(cluster))}
        sides = {}
        for name, (target, endpoint) in targets.items():
            target.create_bucket(BUCKET)
            spec = PhaseSpec("PUT", BUCKET, keys, 32, KEYS, 600.0, payload)
            written = run_phase(endpoint, spec, args.processes, None).done_keys
            sides[name] = Side(endpoint, written, ServerCpu(target.server_pids()))
        return compare(sides, WORKLOADS, BUCKET, payload, args)


if __name__ == "__main__":
    sys.exit(main())
