"""Many clients at once: N connections opened to one node's S3 port together, all held open
while each sends one signed HEAD and waits for its answer.

    python -m benchmarks.connections [--connections 10000] [--processes 4] [--endpoint URL ...]

Starts a node with its default settings (or measures `--endpoint`), puts one object, then in
`--processes` client processes opens the connections (connect timeout 30 s), waits until every
process has opened its share, sends the requests, and counts: connected, answered (any HTTP
status), refused or timed out. The answer latency (from sending the head) is reported as p50
and p99. A node that holds 10,000 clients answers every one.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import time
from urllib.parse import urlsplit

from benchmarks.client import RequestBuilder, simple_request
from benchmarks.load import Endpoint
from benchmarks.peers import NebulaIO, stop_on_signals
from benchmarks.sigv4 import Signer

BUCKET = "bench-connections"
KEY = "object"
CONNECT_TIMEOUT = 30.0
ANSWER_TIMEOUT = 60.0


async def _one(host: str, port: int, head: bytes, opened: asyncio.Event, go: asyncio.Event, results: list) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
    except (TimeoutError, OSError) as error:
        results.append(("connect", type(error).__name__, 0.0))
        opened.set()
        return
    results.append(("connected", "", 0.0))
    opened.set()
    await go.wait()
    started = time.perf_counter()
    try:
        writer.write(head)
        status_line = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT)
        if not status_line.startswith(b"HTTP/1.1 "):
            raise ConnectionError(f"no answer: {status_line[:40]!r}")
        results.append(("answered", status_line.split()[1].decode(), time.perf_counter() - started))
    except (TimeoutError, OSError) as error:
        results.append(("failed", type(error).__name__, time.perf_counter() - started))
    finally:
        writer.close()


async def _share(endpoint: Endpoint, count: int, ready, go) -> list:
    builder = RequestBuilder(endpoint.host, endpoint.port, Signer(endpoint.access_key, endpoint.secret_key))
    results: list = []
    opened = [asyncio.Event() for _ in range(count)]
    start = asyncio.Event()
    heads = [builder.head("HEAD", f"/{BUCKET}/{KEY}") for _ in range(count)]
    tasks = [
        asyncio.create_task(_one(endpoint.host, endpoint.port, heads[index], opened[index], start, results))
        for index in range(count)
    ]
    for event in opened:
        await event.wait()
    ready.set()
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    start.set()
    await asyncio.gather(*tasks)
    return results


def _client(endpoint: Endpoint, count: int, ready, go, out) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out.put(asyncio.run(_share(endpoint, count, ready, go)))


def measure(endpoint: Endpoint, connections: int, processes: int) -> dict:
    builder = RequestBuilder(endpoint.host, endpoint.port, Signer(endpoint.access_key, endpoint.secret_key))
    simple_request(builder, "PUT", f"/{BUCKET}")
    status, _ = simple_request(builder, "PUT", f"/{BUCKET}/{KEY}", body=b"x" * 4096)
    assert status == 200, status
    shares = [connections // processes + (1 if index < connections % processes else 0) for index in range(processes)]
    readies = [multiprocessing.Event() for _ in shares]
    go = multiprocessing.Event()
    out = multiprocessing.Queue()
    started = time.perf_counter()
    workers = [
        # Daemons: a run that is stopped takes its clients along.
        multiprocessing.Process(target=_client, args=(endpoint, share, ready, go, out), daemon=True)
        for share, ready in zip(shares, readies, strict=True)
    ]
    for worker in workers:
        worker.start()
    for ready in readies:
        ready.wait()
    opened_in = time.perf_counter() - started
    go.set()
    results = [item for _ in workers for item in out.get()]
    for worker in workers:
        worker.join()
    answered = [seconds for kind, _, seconds in results if kind == "answered"]
    statuses: dict[str, int] = {}
    for kind, detail, _ in results:
        if kind in ("answered", "failed", "connect"):
            label = detail if kind == "answered" else f"{kind}: {detail}"
            statuses[label] = statuses.get(label, 0) + 1
    quantiles = statistics.quantiles(answered, n=100) if len(answered) > 1 else [0.0] * 99
    return {
        "connections": connections,
        "connected": sum(1 for kind, _, _ in results if kind == "connected"),
        "answered": len(answered),
        "statuses": statuses,
        "open_seconds": opened_in,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4, help="client processes sharing the connections")
    parser.add_argument("--endpoint", help="measure this S3 endpoint instead of starting a node")
    parser.add_argument("--access-key", default="")
    parser.add_argument("--secret-key", default="")
    args = parser.parse_args()
    stop_on_signals()
    if args.endpoint:
        url = urlsplit(args.endpoint)
        endpoint = Endpoint(url.hostname, url.port, args.access_key, args.secret_key)
        report = measure(endpoint, args.connections, args.processes)
    else:
        with NebulaIO() as node:
            report = measure(node.endpoint, args.connections, args.processes)
    print(f"{report['connections']:,} connections opened together in {report['open_seconds']:.1f} s")
    print(f"connected {report['connected']:,}, answered {report['answered']:,}")
    outcomes = sorted(report["statuses"].items())
    print("answers and failures:", ", ".join(f"{label} x{count:,}" for label, count in outcomes))
    print(f"answer latency p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
