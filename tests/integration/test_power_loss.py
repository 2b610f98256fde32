"""A power cut of a majority in mid-load loses no acknowledged write.

Every node's data directory is its own lazyfs mount (lazyfs.py): what a node wrote but did
not fsync is lost when its power is cut. The schedule is the one raft's durability rules
exist for: the third node falls behind (its raft link is cut), the leader commits with the
one follower left, whose disk is slow, and just after the leader acknowledges a write the
leader and that follower lose their power together. The follower comes back first
and, with the node that fell behind, elects a leader before the old leader returns. An entry
the follower acknowledged before it was durable is then missing from the new leader's log,
and the old leader's copy is overwritten when it rejoins.
"""

from __future__ import annotations

import ctypes.util
import mmap
import os
import signal
import threading
import uuid

import pytest
from conftest import CLUSTER_SECRET, wait_for
from faults import LinkProxy, leader_of, move_leadership
from history import OK, Workload
from lazyfs import LazyMount

WRITERS_PER_NODE = 2
WRITES_BEFORE_PARTITION = 60
WRITES_WHILE_BEHIND = 20
SLOW_FSYNC_SECONDS = 0.25
"""How long the follower's disk takes to flush once it is the only one that can acknowledge."""

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or ctypes.util.find_library("fuse") is None,
    reason="no /dev/fuse or no libfuse 2 (Debian's libfuse2): lazyfs cannot mount",
)


def test_lazyfs_keeps_what_was_fsynced_and_loses_the_rest(tmp_path):
    mount = LazyMount(tmp_path / "backing", tmp_path / "mnt", tmp_path / "lazyfs.log").mount()
    root = tmp_path / "mnt"
    try:
        with open(root / "synced", "wb") as fh:
            fh.write(b"a" * 10_000)
            fh.flush()
            os.fsync(fh.fileno())
            fh.seek(5_000)
            fh.write(b"b" * 10_000)  # overwrites and extends, never synced
        (root / "never-synced").write_bytes(b"x" * 100)
        with open(root / "truncated", "wb") as fh:
            fh.write(b"y" * 100)
            fh.flush()
            os.fdatasync(fh.fileno())
            fh.truncate(10)
        with open(root / "mapped", "w+b") as fh:
            fh.truncate(4096)
            os.fsync(fh.fileno())
            with mmap.mmap(fh.fileno(), 0) as mapped:
                mapped[:5] = b"hello"
                mapped.flush()  # msync: durable
                mapped[5:10] = b"world"
                mapped.resize(8192)
        os.rename(root / "synced", root / "renamed")
        assert "reverted 4 files" in mount.cut_power()
        with pytest.raises(OSError):
            (root / "after-the-cut").write_bytes(b"z")
        mount.reboot()
        assert (root / "renamed").read_bytes() == b"a" * 10_000
        assert (root / "never-synced").read_bytes() == b""
        assert (root / "truncated").read_bytes() == b"y" * 100
        assert (root / "mapped").read_bytes() == b"hello" + bytes(4091)
    finally:
        mount.close()


class Writers:
    """Threads that each PUT new keys (each written once) through one node, recorded in `workload`."""

    def __init__(self, nodes, bucket: str):
        clients = [
            (f"w{n}@node{n % len(nodes)}", nodes[n % len(nodes)].client(read_timeout=10, connect_timeout=2))
            for n in range(WRITERS_PER_NODE * len(nodes))
        ]
        self.workload = Workload(clients, bucket, keys=[])
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=client, daemon=True) for client in clients]

    def _run(self, name: str, client) -> None:
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            key = f"{name}/{sequence:06d}"
            op = self.workload.put(client, name, key, key)
            if op.outcome != OK:
                self.stop.wait(0.5)  # a node that is down answers fast; do not spin on it

    def acknowledged(self) -> int:
        return sum(op.outcome == OK for op in self.workload.history.ops)

    def wait_for_more(self, count: int, what: str) -> None:
        target = self.acknowledged() + count
        wait_for(lambda: self.acknowledged() >= target, 60, what)

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def power_cut(victims, mounts) -> None:
    """SIGKILL every victim's process group and lose their unsynced writes at once, then reboot."""
    for node in victims:
        os.killpg(node.process.pid, signal.SIGKILL)
    for node in victims:
        print(f"power cut of {node.data}: {mounts[node].cut_power()}")
    for node in victims:
        node.kill_group()
        wait_for(lambda node=node: not node.group_pids(), 30, "the killed node's processes to exit")
        mounts[node].reboot()


def power_loss(nodes, addresses: list[str], link: LinkProxy, writers: Writers, mounts) -> None:
    """nodes[0] falls behind (`link` is its raft link); the leader and the other follower lose power."""
    writers.wait_for_more(WRITES_BEFORE_PARTITION, "writes before the partition")
    behind, leader = nodes[0], wait_for(lambda: leader_of(nodes), 30, "a leader")
    if leader is behind:
        move_leadership(nodes, addresses, 1, CLUSTER_SECRET)
        leader = nodes[1]
    follower = next(node for node in nodes if node not in (behind, leader))
    last_writer = leader.client(read_timeout=10)
    link.cut()
    mounts[follower].slow_down(SLOW_FSYNC_SECONDS)
    try:
        writers.wait_for_more(WRITES_WHILE_BEHIND, "writes committed without the node behind")
        key = f"last/{uuid.uuid4().hex}"
        writers.workload.put(last_writer, "last@leader", key, key)
        power_cut([leader, follower], mounts)
        follower.start(wait=False)
    finally:
        link.heal()
    wait_for(lambda: leader_of([follower, behind]), 60, "a leader elected without the old one")
    leader.start(wait=False)
    for node in nodes:
        node.wait_ready()


def test_acknowledged_writes_survive_a_power_cut_of_a_majority(cluster_factory):
    mounts: dict = {}
    links: list[LinkProxy] = []

    def on_lazyfs(node) -> None:
        base = node.data.parent
        mounts[node] = LazyMount(base / "backing", node.data, base / "lazyfs.log").mount()

    def raft_link_of_first(position, node):
        if position:
            return {}
        links.append(LinkProxy(node.ports["raft"]))
        return {"raft": links[0].address}

    try:
        nodes = cluster_factory(3, prepare=on_lazyfs, advertise=raft_link_of_first)
        addresses = [links[0].address] + [f"127.0.0.1:{node.ports['raft']}" for node in nodes[1:]]
        bucket = f"power-{uuid.uuid4().hex[:12]}"
        nodes[0].client().create_bucket(Bucket=bucket)
        with Writers(nodes, bucket) as writers:
            power_loss(nodes, addresses, links[0], writers, mounts)
            writers.wait_for_more(WRITES_BEFORE_PARTITION, "writes after the power cut")
        workload = writers.workload
        workload.keys = sorted({op.key for op in workload.history.ops})
        for position, node in enumerate(nodes):
            workload.list(node.client(read_timeout=30), f"reader@node{position}")
        ops = workload.history.ops
        acknowledged = sum(op.kind == "put" and op.outcome == OK for op in ops)
        print(f"{acknowledged} acknowledged writes of {len(workload.keys)} checked on every node")
        violations = workload.history.violations()
        assert violations == [], f"{len(violations)} violations, first: {violations[:10]}"
    finally:
        for node, mount in mounts.items():
            node.stop()
            mount.close()
        for link in links:
            link.close()
