"""The cluster at scale: N objects into a 3-node cluster, then the leader's disk replaced.

    python -m benchmarks.scale [--objects 1000000] [--size 4096] [--writers 16]
                               [--interval 60] [--processes 2] [--json FILE]

Three hybrid nodes on 127.0.0.1 (benchmarks.peers.NebulaIOCluster) take new 4 KiB objects
through the S3 API, from `--writers` connections to the first node, in phases of
`--interval` seconds. After each phase, one row: PUT rate and p99, and for each node its
supervisor's RSS, raft directory and LMDB sizes (bytes on disk), the raft dumps
(compactions) it logged and how long they took, "may have diverged" lines, and the raft
term (a rise is an election). Then the leader's process group is killed (-9), its data
directory emptied, and it is started again with the same identity: the rejoin time is until
it answers ready and has applied what the cluster committed before the kill.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from benchmarks.load import PhaseSpec, run_phase
from benchmarks.peers import Member, NebulaIOCluster, NotStarted, stop_on_signals

BUCKET = "bench-scale"
MIB = 1 << 20
PHASE_KEYS = 200_000
"""Keys handed to one phase: more than a phase of `--interval` seconds writes here."""
REJOIN_SECONDS = 900.0
POLL_SECONDS = 0.2
DUMP_LINE = re.compile(r"raft dump at index \d+: (\d+) bytes in ([\d.]+) s")
DIVERGED = "may have diverged"


@dataclass
class LogFacts:
    """What a stretch of a node's log says: each raft dump's (bytes, seconds), divergence warnings."""

    dumps: list[tuple[int, float]] = field(default_factory=list)
    diverged: int = 0


def read_log_facts(text: str) -> LogFacts:
    facts = LogFacts()
    for line in text.splitlines():
        dump = DUMP_LINE.search(line)
        if dump:
            facts.dumps.append((int(dump.group(1)), float(dump.group(2))))
        elif DIVERGED in line:
            facts.diverged += 1
    return facts


class LogTail:
    """Reads what a log file gained since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def facts(self) -> LogFacts:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                text = log.read()
        except FileNotFoundError:
            return LogFacts()
        # A line still being written is read next time.
        complete = text.rfind(b"\n") + 1
        self.offset += complete
        return read_log_facts(text[:complete].decode(errors="replace"))


@dataclass
class NodeSample:
    """One node after one phase."""

    name: str
    rss_bytes: int | None
    raft_bytes: int
    lmdb_bytes: int
    dumps: int
    dump_seconds: float
    diverged: int
    term: int | None
    state: str | None
    anon_bytes: int | None = None
    """The part of the RSS that is the process's own memory: the rest is LMDB's file mapping,
    page cache the kernel can drop."""


@dataclass
class Interval:
    """One phase of load and what every node looked like after it."""

    elapsed_seconds: float
    objects: int
    put_rate: float
    p99_ms: float
    errors: int
    nodes: list[NodeSample]

    @property
    def term(self) -> int | None:
        terms = [node.term for node in self.nodes if node.term is not None]
        return max(terms) if terms else None


@dataclass
class Rejoin:
    """The leader's disk replaced: how long until it was ready, and until it had caught up."""

    node: str
    target_index: int
    ready_seconds: float | None = None
    caught_up_seconds: float | None = None
    failure: str | None = None


def elections(intervals: list[Interval], start_term: int | None) -> list[int]:
    """Per interval, how far the highest term any node reported rose since the interval before."""
    rises, previous = [], start_term
    for interval in intervals:
        term = interval.term
        rises.append(term - previous if term is not None and previous is not None else 0)
        previous = term if term is not None else previous
    return rises


def mib(size: int | None) -> str:
    return "-" if size is None else f"{size / MIB:,.0f}"


def per_node(nodes: list[NodeSample], figure) -> str:
    return "/".join(figure(node) for node in nodes)


def table(intervals: list[Interval], start_term: int | None) -> str:
    """The rows as a Markdown table; a column with "a/b/c" gives each node's figure in turn."""
    header = (
        "| time s | objects | PUT/s | p99 ms | errors | supervisor RSS (anonymous) MiB | raft dir MiB | LMDB MiB "
        "| compactions (s) | diverged | term (elections) |"
    )
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for interval, rise in zip(intervals, elections(intervals, start_term), strict=True):
        nodes = interval.nodes
        cells = [
            f"{interval.elapsed_seconds:,.0f}",
            f"{interval.objects:,}",
            f"{interval.put_rate:,.0f}",
            f"{interval.p99_ms:,.1f}",
            f"{interval.errors:,}",
            per_node(nodes, lambda node: f"{mib(node.rss_bytes)} ({mib(node.anon_bytes)})"),
            per_node(nodes, lambda node: mib(node.raft_bytes)),
            per_node(nodes, lambda node: mib(node.lmdb_bytes)),
            per_node(nodes, lambda node: f"{node.dumps} ({node.dump_seconds:.1f})"),
            per_node(nodes, lambda node: str(node.diverged)),
            f"{interval.term} ({rise})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe_rejoin(rejoin: Rejoin) -> str:
    if rejoin.failure:
        return f"leader {rejoin.node} on an empty disk: {rejoin.failure}"
    return (
        f"leader {rejoin.node} on an empty disk: ready after {rejoin.ready_seconds:.1f} s, "
        f"caught up with index {rejoin.target_index} after {rejoin.caught_up_seconds:.1f} s"
    )


# Observing the nodes.
def raft_status(member: Member) -> dict | None:
    """The node's raft figures from /health/ready, "ready" being its answer (200 or 503); None if silent."""
    try:
        with urllib.request.urlopen(member.ready_url, timeout=2) as response:
            return dict(json.loads(response.read()).get("raft") or {}, ready=True)
    except urllib.error.HTTPError as error:
        try:
            return dict(json.loads(error.read()).get("raft") or {}, ready=False)
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def supervisor_memory(member: Member) -> tuple[int | None, int | None]:
    """The supervisor's RSS and its anonymous part (RSS less the file-backed, shared pages)."""
    try:
        for child in psutil.Process(member.process.pid).children():
            if "supervisor" in " ".join(child.cmdline()):
                memory = child.memory_info()
                return memory.rss, memory.rss - memory.shared
    except psutil.Error:
        return None, None
    return None, None


def group_alive(group: int) -> bool:
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def disk_usage(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def sample(member: Member, log: LogTail) -> NodeSample:
    facts = log.facts()
    status = raft_status(member) or {}
    rss, anon = supervisor_memory(member)
    return NodeSample(
        name=member.name,
        rss_bytes=rss,
        anon_bytes=anon,
        raft_bytes=disk_usage(member.data / "metadata" / "raft"),
        lmdb_bytes=disk_usage(member.data / "metadata" / "kv"),
        dumps=len(facts.dumps),
        dump_seconds=sum(seconds for _, seconds in facts.dumps),
        diverged=facts.diverged,
        term=status.get("term"),
        state=status.get("state"),
    )


# The run.
def load(cluster: NebulaIOCluster, args, logs: list[LogTail], start_term: int | None) -> list[Interval]:
    payload = b"s" * args.size
    intervals, written, next_key, started = [], 0, 0, time.monotonic()
    while written < args.objects:
        count = min(args.objects - written, PHASE_KEYS)
        keys = [f"scale/{index:010d}" for index in range(next_key, next_key + count)]
        next_key += count
        spec = PhaseSpec("PUT", BUCKET, keys, args.writers, count, args.interval, payload)
        result = run_phase(cluster.endpoint, spec, args.processes, None)
        written += result.ok
        interval = Interval(
            elapsed_seconds=time.monotonic() - started,
            objects=written,
            put_rate=result.rate,
            p99_ms=result.p99_ms,
            errors=result.errors,
            nodes=[sample(member, log) for member, log in zip(cluster.members, logs, strict=True)],
        )
        intervals.append(interval)
        print(table([interval], intervals[-2].term if len(intervals) > 1 else start_term).splitlines()[-1], flush=True)
        if result.errors:
            print(f"  errors: {result.error_samples}", file=sys.stderr, flush=True)
        if not result.ok:
            break  # the cluster takes nothing: the rows say how it got there
    return intervals


def replace_leader_disk(cluster: NebulaIOCluster, timeout: float) -> Rejoin:
    """kill -9 the leader's group, empty its data directory, start it again as itself, time its return."""
    statuses = [raft_status(member) or {} for member in cluster.members]
    members = zip(cluster.members, statuses, strict=True)
    leaders = [member for member, status in members if status.get("state") == "leader"]
    if not leaders:
        return Rejoin("-", 0, failure="no node says it leads")
    leader = leaders[0]
    target = max(status.get("commitIndex") or 0 for status in statuses)
    rejoin = Rejoin(leader.name, target)
    os.killpg(leader.process.pid, signal.SIGKILL)
    leader.process.popen.wait()
    while group_alive(leader.process.pid):
        time.sleep(POLL_SECONDS)  # until every process of the group is gone and its ports are free
    shutil.rmtree(leader.data)
    leader.data.mkdir()
    started = time.monotonic()
    leader.process = cluster.spawn(f"{leader.name}-rejoined", leader.argv, leader.env)
    while time.monotonic() - started < timeout:
        if leader.process.popen.poll() is not None:
            code = leader.process.popen.returncode
            rejoin.failure = f"exited with status {code} after {time.monotonic() - started:.1f} s: "
            rejoin.failure += leader.process.log_tail(300)
            return rejoin
        status = raft_status(leader) or {}
        if rejoin.ready_seconds is None and status.get("ready"):
            rejoin.ready_seconds = time.monotonic() - started
        if rejoin.ready_seconds is not None and (status.get("lastApplied") or 0) >= target:
            rejoin.caught_up_seconds = time.monotonic() - started
            return rejoin
        time.sleep(POLL_SECONDS)
    rejoin.failure = f"not caught up after {timeout:.0f} s (ready after {rejoin.ready_seconds} s)"
    return rejoin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000, help="objects to write")
    parser.add_argument("--size", type=int, default=4096, help="bytes of each object")
    parser.add_argument("--writers", type=int, default=16, help="concurrent PUT connections")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds of load between two rows")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--rejoin-timeout", type=float, default=REJOIN_SECONDS, help="seconds to wait for the rejoin")
    parser.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    args = parser.parse_args(argv)
    stop_on_signals()
    cluster = NebulaIOCluster()
    try:
        with cluster:
            cluster.create_bucket(BUCKET)
            logs = [LogTail(member.process.log_path) for member in cluster.members]
            start_term = max((raft_status(member) or {}).get("term") or 0 for member in cluster.members)
            print(f"{args.objects:,} objects of {args.size:,} bytes, {args.writers} writers, 3 hybrid nodes")
            print(table([], start_term))
            intervals = load(cluster, args, logs, start_term)
            rejoin = replace_leader_disk(cluster, args.rejoin_timeout)
    except NotStarted as error:
        print(f"{cluster.name}: not started ({error})", file=sys.stderr)
        return 1
    print()
    print(table(intervals, start_term))
    print(describe_rejoin(rejoin))
    if args.json:
        figures = {
            "objects": args.objects,
            "size": args.size,
            "writers": args.writers,
            "interval_seconds": args.interval,
            "start_term": start_term,
            "intervals": [asdict(interval) for interval in intervals],
            "elections": elections(intervals, start_term),
            "rejoin": asdict(rejoin),
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if rejoin.failure is None and intervals and intervals[-1].objects >= args.objects else 1


if __name__ == "__main__":
    raise SystemExit(main())
