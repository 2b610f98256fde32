"""The history checker over a three-node cluster: clients on every node, with no fault and
through a kill -9 of the leader: no stale read, no lost or reordered acknowledged write.
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import wait_for
from faults import leader_of
from history import FAIL, Workload


@pytest.fixture(scope="module")
def trio(cluster_factory):
    return cluster_factory(3)


def run(nodes, name: str, fault=None) -> None:
    bucket = f"{name}-{uuid.uuid4().hex[:12]}"
    nodes[0].client().create_bucket(Bucket=bucket)
    clients = [(f"c{n}@node{n % 3}", nodes[n % 3].client(read_timeout=60)) for n in range(6)]
    workload = Workload(clients, bucket, [f"key{n}" for n in range(4)], seed=len(name)).start()
    wait_for(lambda: len(workload.history.ops) > 300, 120, "traffic")
    if fault is not None:
        fault()
        started = time.monotonic()
        wait_for(lambda: len([op for op in workload.history.ops if op.invoke > started]) > 300, 120, "traffic after")
    workload.finish()
    workload.read_everything()
    ops = workload.history.ops
    print(f"{name}: {len(ops)} operations checked")
    assert not [op for op in ops if op.outcome == FAIL], "an operation was refused with a 4xx"
    violations = workload.history.violations()
    assert violations == [], "\n".join([*violations, *warnings_of(nodes)])


def warnings_of(nodes) -> list[str]:
    """What each node logged at WARNING or above: the story behind a violation."""
    lines = []
    for position, node in enumerate(nodes):
        logged = node.log_path.read_text(errors="replace").splitlines()
        lines += [f"node{position}: {line}" for line in logged if " WARNING " in line or " CRITICAL " in line][-40:]
    return lines


def test_history_without_faults(trio):
    run(trio, "calm")


def test_history_through_a_leader_kill(trio):
    leader = leader_of(trio)

    def kill_and_restart():
        print(f"killing the leader, node{trio.index(leader)}, at {time.monotonic():.3f}")
        leader.kill_group()
        wait_for(lambda: leader_of([node for node in trio if node is not leader]), 30, "a new leader")
        leader.start(wait=False)

    run(trio, "killed-leader", kill_and_restart)
