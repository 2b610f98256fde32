"""conf/nginx/nebulaio.conf in front of a three-node cluster: a large upload is streamed to a
node as it arrives (never held on nginx's disk), and writes go on through nginx when a node
is killed, with every acknowledged one readable afterwards.

nginx runs as a child of the test on free loopback ports, with the shipped configuration
rendered into a temporary directory (only its addresses changed), and is stopped by PID.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests
from conftest import free_port, make_client, sign_v4, wait_for

from nebulaio.cluster.peers import PING_PATH

SHIPPED = Path(__file__).resolve().parents[2] / "conf" / "nginx" / "nebulaio.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MiB = 1 << 20
LARGE_SIZE = 200 * MiB
STREAMED_BEFORE_CHECK = 100 * MiB
"""The upload pauses here until a node holds most of it: nginx must not wait for the rest."""
WRITERS = 4
CLEAN_RUN = 150
"""Acknowledged writes in a row, after the kill, that end the blip."""

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx missing")


class Nginx:
    """nginx serving the shipped configuration in front of `nodes`, from its own directory."""

    def __init__(self, directory: Path, nodes):
        self.directory = directory
        self.s3_port, self.admin_port = free_port(), free_port()
        self.body_temp = directory / "client_body"
        self.proxy_temp = directory / "proxy"
        self.error_log = directory / "error.log"
        self.process: subprocess.Popen | None = None
        self._render(nodes)

    def _render(self, nodes) -> None:
        text = SHIPPED.read_text()
        for position, node in enumerate(nodes, 1):
            for port, listener in ((9000, "s3"), (9001, "admin")):
                text, count = re.subn(
                    rf"server 10\.0\.0\.{position}:{port} ", f"server 127.0.0.1:{node.ports[listener]} ", text
                )
                assert count == 1, (position, port)
        text, count = re.subn(r"listen 80;", f"listen 127.0.0.1:{self.s3_port};", text)
        assert count == 1
        text, count = re.subn(r"listen 9001;", f"listen 127.0.0.1:{self.admin_port};", text)
        assert count == 1
        (self.directory / "nebulaio.conf").write_text(text)
        user = pwd.getpwuid(os.geteuid()).pw_name
        temp_paths = "\n".join(
            f"    {kind}_temp_path {self.directory / name};"
            for kind, name in (
                ("client_body", "client_body"),
                ("proxy", "proxy"),
                ("fastcgi", "fastcgi"),
                ("uwsgi", "uwsgi"),
                ("scgi", "scgi"),
            )
        )
        (self.directory / "nginx.conf").write_text(
            f"""daemon off;
{"user " + user + ";" if os.geteuid() == 0 else ""}
worker_processes 2;
pid {self.directory / "nginx.pid"};
error_log {self.error_log} info;
events {{ worker_connections 1024; }}
http {{
    access_log {self.directory / "access.log"};
{temp_paths}
    include {self.directory / "nebulaio.conf"};
}}
"""
        )

    def start(self) -> Nginx:
        command = [
            NGINX,
            "-p",
            str(self.directory),
            "-e",
            str(self.error_log),
            "-c",
            str(self.directory / "nginx.conf"),
        ]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self._listening, 30, "nginx listening")
        return self

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"nginx exited with {self.process.returncode}: {self.error_log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.s3_port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish their requests
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def files_under(self, directory: Path) -> list[str]:
        """Files nginx's processes hold open below `directory`, deleted ones included, and those it left there."""
        held = []
        for worker in self.workers():
            descriptors = f"/proc/{worker.pid}/fd"
            for descriptor in os.listdir(descriptors):
                try:
                    target = os.readlink(os.path.join(descriptors, descriptor))
                except FileNotFoundError:
                    continue
                if target.startswith(str(directory)):
                    held.append(target)
        return held + [str(path) for path in directory.rglob("*") if path.is_file()]


@pytest.fixture(scope="module")
def cluster(cluster_factory):
    return cluster_factory(3)


@pytest.fixture(scope="module")
def nginx(cluster, tmp_path_factory):
    server = Nginx(tmp_path_factory.mktemp("nginx"), cluster).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nginx_bucket(nginx):
    name = f"nginx-{uuid.uuid4().hex[:12]}"
    make_client(nginx.s3_url).create_bucket(Bucket=name)
    return name


def test_admin_port_serves_health_and_keeps_the_internal_endpoint_inside(nginx, cluster):
    admin = f"http://127.0.0.1:{nginx.admin_port}"
    assert requests.get(admin + "/health/ready", timeout=30).json()["status"] == "ready"
    # What the nodes serve each other on a listener of their own (object bytes, replica images).
    assert requests.get(cluster[0].internal_url + PING_PATH, timeout=30).status_code != 404
    assert requests.get(admin + PING_PATH, timeout=30).status_code == 404


def large_chunks(size: int):
    """`size` bytes in 1 MiB chunks, each different, generated as they are sent."""
    block = os.urandom(MiB)
    for index in range(size // MiB):
        yield index.to_bytes(8, "big") + block[8:]


def bytes_in_temp(nodes) -> int:
    """Bytes of uploads in flight on the nodes (their temp/ files)."""
    total = 0
    for node in nodes:
        for entry in os.scandir(node.data / "temp"):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
    return total


def test_large_upload_streams_through_without_buffering(nginx, cluster, nginx_bucket):
    """A 200 MiB PUT reaches a node while the client is still sending it: halfway through,
    a node's temp/ already holds most of the first half, and nginx has no file of the body."""
    key = "large.bin"
    target = f"/{nginx_bucket}/{key}"
    host = f"127.0.0.1:{nginx.s3_port}"
    signature = sign_v4("PUT", host, target, {"content-length": str(LARGE_SIZE)}, "UNSIGNED-PAYLOAD")
    md5 = hashlib.md5()
    conn = http.client.HTTPConnection("127.0.0.1", nginx.s3_port, timeout=120)
    try:
        conn.putrequest("PUT", target, skip_host=True, skip_accept_encoding=True)
        for name, value in signature.headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        sent = 0
        for chunk in large_chunks(LARGE_SIZE):
            conn.send(chunk)
            md5.update(chunk)
            sent += len(chunk)
            if sent == STREAMED_BEFORE_CHECK:
                wait_for(
                    lambda: bytes_in_temp(cluster) >= STREAMED_BEFORE_CHECK // 2,
                    60,
                    "half of the body sent so far on a node while the client still sends",
                )
                assert nginx.files_under(nginx.body_temp) == []
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 200, answer
        assert response.getheader("ETag") == f'"{md5.hexdigest()}"'
    finally:
        conn.close()
    assert "buffered to a temporary file" not in nginx.error_log.read_text()

    read_back = hashlib.md5()
    for chunk in make_client(nginx.s3_url).get_object(Bucket=nginx_bucket, Key=key)["Body"].iter_chunks(MiB):
        read_back.update(chunk)
        assert nginx.files_under(nginx.proxy_temp) == []
    assert read_back.hexdigest() == md5.hexdigest()


def raft_leader(nodes):
    for node in nodes:
        try:
            if requests.get(node.admin_url + "/health/ready", timeout=5).json()["raft"]["state"] == "leader":
                return node
        except (requests.RequestException, ValueError):
            continue
    return None


class Writers:
    """Threads that PUT fresh keys through nginx; each answer is recorded with the moment it came."""

    def __init__(self, endpoint: str, bucket: str):
        self.endpoint = endpoint
        self.bucket = bucket
        self.acknowledged: dict[str, bytes] = {}
        self.outcomes: list[tuple[float, bool]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(WRITERS)]

    def _write(self, number: int) -> None:
        client = make_client(self.endpoint, connect_timeout=10, read_timeout=30)
        index = 0
        while not self.stop.is_set():
            key = f"writer{number}/{index:06d}"
            body = os.urandom(1024 * (1 + index % 40))  # inline and file-backed sizes alike
            index += 1
            try:
                client.put_object(Bucket=self.bucket, Key=key, Body=body)
            except Exception as exc:  # a refused, reset or 5xx request: not acknowledged
                with self.lock:
                    self.outcomes.append((time.monotonic(), False))
                    self.errors.append(f"{key}: {exc}")
                continue
            with self.lock:
                self.acknowledged[key] = body
                self.outcomes.append((time.monotonic(), True))

    def start(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def successes_since(self, moment: float) -> int:
        with self.lock:
            return sum(ok for at, ok in self.outcomes if at > moment)

    def clean_run_since(self, moment: float) -> int:
        """Acknowledged writes in a row at the end of what came after `moment`."""
        with self.lock:
            after = [ok for at, ok in self.outcomes if at > moment]
        run = 0
        for ok in reversed(after):
            if not ok:
                break
            run += 1
        return run


def test_writes_go_on_through_nginx_when_the_leader_is_killed(nginx, cluster, nginx_bucket):
    """kill -9 the raft leader's node while four clients write through nginx (no client
    retries): after a blip, writes are acknowledged again without another failure, and every
    acknowledged write reads back, through nginx and from each surviving node."""
    writers = Writers(nginx.s3_url, nginx_bucket).start()
    try:
        wait_for(lambda: writers.successes_since(0) >= 50, 60, "writes through nginx before the kill")
        victim = wait_for(lambda: raft_leader(cluster), 30, "a raft leader")
        killed_at = time.monotonic()
        victim.kill_group()
        wait_for(
            lambda: writers.successes_since(killed_at) >= CLEAN_RUN and writers.clean_run_since(killed_at) >= CLEAN_RUN,
            90,
            f"{CLEAN_RUN} acknowledged writes in a row after the kill",
        )
    finally:
        writers.finish()
    failed_after_kill = [at for at, ok in writers.outcomes if not ok and at > killed_at]
    blip = (max(failed_after_kill) - killed_at) if failed_after_kill else 0.0
    print(
        f"acknowledged {len(writers.acknowledged)} writes; {len(writers.errors)} failed, "
        f"the last {blip:.2f} s after the kill"
    )

    survivors = [node for node in cluster if node is not victim]
    readers = [make_client(nginx.s3_url)] + [node.client() for node in survivors]
    for key, body in writers.acknowledged.items():
        for reader in readers:
            assert reader.get_object(Bucket=nginx_bucket, Key=key)["Body"].read() == body, key
