"""What the cluster status shows of one of the node's processes."""

from __future__ import annotations

import psutil


def figures(process: psutil.Process) -> dict:
    """Pid, resident memory, CPU seconds used, threads and start time (epoch seconds)."""
    with process.oneshot():
        times = process.cpu_times()
        return {
            "pid": process.pid,
            "rss": process.memory_info().rss,
            "cpuSeconds": times.user + times.system,
            "threads": process.num_threads(),
            "started": process.create_time(),
        }
