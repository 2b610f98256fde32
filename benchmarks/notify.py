"""How fast a node delivers a backlog of bucket events: to a webhook, to Redis and to NATS.

`python -m benchmarks.notify [--events 5000] [--kinds webhook,redis,nats]` starts one node,
and for each kind of target defines one (through the Admin API) while the target is down,
writes `--events` empty objects to a bucket whose rule sends every ObjectCreated event there,
so the backlog holds one event each, then brings the target up and watches the backlog on
/metrics drain. The rate is the events delivered (and acknowledged through the log) after the
first drop of the backlog until its end, over that time: the deliverer's own pace, without
the backoff it was waiting out when the target came back.
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import orjson

from benchmarks.client import simple_request
from benchmarks.load import PhaseSpec, run_phase
from benchmarks.peers import HOST, NebulaIO, free_ports, stop_on_signals, wait_until

POLL = 0.02
DRAIN_TIMEOUT = 300.0


class _Sink(http.server.BaseHTTPRequestHandler):
    """A webhook endpoint: 503 until the benchmark opens it, then 200 for every event."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200 if self.server.open else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Webhook:
    def __init__(self, port: int):
        self.server = http.server.ThreadingHTTPServer((HOST, port), _Sink)
        self.server.daemon_threads = True
        self.server.open = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.target = {"kind": "webhook", "endpoint": f"http://{HOST}:{port}/events", "secret": "bench"}

    def up(self) -> None:
        self.server.open = True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Server:
    """redis-server or nats-server, started only once the backlog is written."""

    def __init__(self, kind: str, port: int):
        self.kind, self.port = kind, port
        self.process: subprocess.Popen | None = None
        if kind == "redis":
            self.target = {"kind": "redis", "endpoint": f"redis://{HOST}:{port}", "key": "bench-events"}
        else:
            self.target = {"kind": "nats", "endpoint": f"nats://{HOST}:{port}", "subject": "bench.events"}

    def up(self) -> None:
        if self.kind == "redis":
            argv = ["redis-server", "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        else:
            argv = ["nats-server", "-a", HOST, "-p", str(self.port)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


def _admin(node: NebulaIO, method: str, path: str, document: dict | None = None) -> dict:
    def call(method: str, path: str, document: dict | None, token: str | None = None) -> dict:
        request = urllib.request.Request(
            f"http://{HOST}:{node.admin_port}{path}",
            data=None if document is None else orjson.dumps(document),
            method=method,
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read() or b"{}")

    token = call("POST", "/api/v1/auth/login", {"username": node.access_key, "password": node.secret_key})["token"]
    return call(method, path, document, token)


def _backlog(node: NebulaIO, arn: str) -> int | None:
    with urllib.request.urlopen(f"http://{HOST}:{node.admin_port}/metrics", timeout=30) as response:
        text = response.read().decode()
    sample = f'nebulaio_notify_backlog{{target="{arn}"}} '
    for line in text.splitlines():
        if line.startswith(sample):
            return int(float(line[len(sample) :]))
    return None


def measure(node: NebulaIO, kind: str, events: int, processes: int) -> dict:
    (port,) = free_ports(1)
    target = Webhook(port) if kind == "webhook" else Server(kind, port)
    try:
        arn = _admin(node, "PUT", f"/api/v1/notify/targets/bench-{kind}", target.target)["arn"]
        bucket = f"bench-notify-{kind}"
        node.create_bucket(bucket)
        configuration = (
            "<NotificationConfiguration><QueueConfiguration><Id>all</Id>"
            f"<Queue>{arn}</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>"
        ).encode()
        status, body = simple_request(node.endpoint.builder(), "PUT", f"/{bucket}", "notification=", configuration)
        if status != 200:
            raise SystemExit(f"PutBucketNotificationConfiguration: {status} {body[:300]!r}")
        keys = [f"event-{index:07d}" for index in range(events)]
        put = run_phase(node.endpoint, PhaseSpec("PUT", bucket, keys, 32, events, 600.0, b""), processes, None)
        queued = _backlog(node, arn)
        target.up()
        wait_until(lambda: _backlog(node, arn) < queued, f"the first {kind} delivery", [])
        started, left = time.perf_counter(), _backlog(node, arn)
        at_start = left
        deadline = started + DRAIN_TIMEOUT
        while left and time.perf_counter() < deadline:
            time.sleep(POLL)
            left = _backlog(node, arn)
        seconds = time.perf_counter() - started
        return {
            "kind": kind,
            "queued": queued,
            "put_per_second": round(put.rate),
            "delivered": queued - left,
            "measured": at_start - left,
            "seconds": round(seconds, 3),
            "events_per_second": round((at_start - left) / seconds),
        }
    finally:
        target.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("benchmarks.notify", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--kinds", default="webhook,redis,nats")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    stop_on_signals()
    kinds = args.kinds.split(",")
    for kind in kinds:
        if kind != "webhook" and shutil.which(f"{kind}-server") is None:
            raise SystemExit(f"{kind}-server is not installed")
    with NebulaIO() as node:
        for kind in kinds:
            figures = measure(node, kind, args.events, args.processes)
            print(
                f"{kind:8} {figures['queued']} events queued (PUT {figures['put_per_second']}/s); "
                f"{figures['delivered']} delivered; the last {figures['measured']} in {figures['seconds']} s: "
                f"{figures['events_per_second']} events/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
