"""The node's process shape: titles, clean stops, worker replacement, supervisor loss, health,
and reads of one's own writes across the node's workers."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import uuid

import psutil
import pytest
import requests
from conftest import S3Connection, wait_for

EXIT_TIMEOUT = 20.0


def _title(pid: int) -> str:
    try:
        return " ".join(part for part in psutil.Process(pid).cmdline() if part)
    except psutil.NoSuchProcess:
        return ""


def _roles(node) -> dict[str, list[int]]:
    """The node's processes by role, as their titles name them."""
    roles: dict[str, list[int]] = {"server": [], "supervisor": [], "master": [], "worker": []}
    for pid in node.group_pids():
        title = _title(pid)
        if title.startswith("nebulaio server "):
            roles["server"].append(pid)
        elif title.startswith("nebulaio supervisor "):
            roles["supervisor"].append(pid)
        elif title.startswith("gunicorn: master [nebulaio http "):
            roles["master"].append(pid)
        elif title.startswith("nebulaio http worker "):
            roles["worker"].append(pid)
    return roles


def _settled(node, workers: int = 2):
    roles = _roles(node)
    shape = [len(roles["server"]), len(roles["supervisor"]), len(roles["master"]), len(roles["worker"])]
    return roles if shape == [1, 1, 1, workers] and len(node.group_pids()) == 3 + workers else None


def _serves(node) -> bool:
    client = node.client()
    name = f"alive-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="k", Body=b"v")
    assert client.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    client.delete_object(Bucket=name, Key="k")
    client.delete_bucket(Bucket=name)
    return True


def _exit_status(node, timeout: float = EXIT_TIMEOUT) -> int:
    return node.process.wait(timeout)


def _no_process_left(node) -> None:
    wait_for(lambda: not node.group_pids(), 10.0, "every process of the node's group to exit")


def test_titles_say_what_each_process_is(node):
    """Launcher, supervisor, gunicorn master and every worker carry a telling title."""
    roles = wait_for(lambda: _settled(node), 15.0, "one launcher, supervisor, master and two workers")
    launcher, supervisor, master = roles["server"][0], roles["supervisor"][0], roles["master"][0]
    assert launcher == node.process.pid
    assert psutil.Process(supervisor).ppid() == launcher
    assert psutil.Process(master).ppid() == launcher
    assert all(psutil.Process(pid).ppid() == master for pid in roles["worker"])
    assert str(node.data) in _title(supervisor)


def test_health_endpoints(node):
    live = requests.get(node.admin_url + "/health/live", timeout=5)
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = requests.get(node.admin_url + "/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert requests.get(node.admin_url + "/health/nope", timeout=5).status_code == 404


@pytest.mark.parametrize(
    "signum, whole_group",
    [
        (signal.SIGTERM, False),
        (signal.SIGINT, False),
        (signal.SIGINT, True),  # Ctrl-C in a terminal signals the whole foreground group
    ],
    ids=["sigterm", "sigint", "ctrl-c-group"],
)
def test_signal_stops_the_node_cleanly(node_factory, signum, whole_group):
    node = node_factory()
    wait_for(lambda: _settled(node), 15.0, "the node's processes")
    if whole_group:
        os.killpg(node.process.pid, signum)
    else:
        node.process.send_signal(signum)
    assert _exit_status(node) == 0, node.log_tail()
    _no_process_left(node)
    assert "node stopped" in node.log_tail()


def test_killed_launcher_leaves_no_orphans(node_factory):
    """The launcher's children die with it, even when it is killed without a chance to clean up."""
    node = node_factory()
    wait_for(lambda: _settled(node), 15.0, "the node's processes")
    node.process.send_signal(signal.SIGKILL)
    node.process.wait(EXIT_TIMEOUT)
    _no_process_left(node)


def test_killed_worker_is_replaced(node_factory):
    node = node_factory()
    before = wait_for(lambda: _settled(node), 15.0, "two workers")["worker"]
    os.kill(before[0], signal.SIGKILL)
    after = wait_for(
        lambda: (roles := _settled(node)) and before[0] not in roles["worker"] and roles["worker"],
        20.0,
        "a replacement worker",
    )
    assert before[1] in after
    assert _serves(node)
    assert node.process.poll() is None


def test_killed_supervisor_stops_the_node_with_an_error(node_factory):
    node = node_factory()
    supervisor = wait_for(lambda: _settled(node), 15.0, "the supervisor")["supervisor"][0]
    os.kill(supervisor, signal.SIGKILL)
    status = _exit_status(node)
    assert status not in (0, None)
    _no_process_left(node)
    assert "the supervisor exited with status -9: stopping the node" in node.log_tail(), node.log_tail()


# --- read-your-writes across workers --------------------------------------------------------

KEYS = 300
THREADS = 8
# Finding a connection's worker reads the whole /proc/net/tcp (~10 ms): done for a sample only.
TRACED_KEYS = 80


def _serving_worker(node, conn: http.client.HTTPConnection, workers: list[int]) -> int | None:
    """The worker that holds the server side of this open connection (read from /proc)."""
    client_port = conn.sock.getsockname()[1]
    local = f":{node.ports['s3']:04X}"
    remote = f":{client_port:04X}"
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if fields[1].endswith(local) and fields[2].endswith(remote):
                inode = f"socket:[{fields[9]}]"
                break
    if inode is None:
        return None
    for pid in workers:
        fd_dir = f"/proc/{pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(f"{fd_dir}/{fd}") == inode:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def _fresh_request(node, method: str, target: str, body: bytes = b"", workers: list[int] | None = None):
    """One request on a new connection; returns (status, body, serving worker pid if `workers`)."""
    connection = S3Connection(node)
    try:
        status, _, data = connection.request(method, target, body)
        return status, data, _serving_worker(node, connection.conn, workers) if workers else None
    finally:
        connection.close()


def test_read_your_writes_across_workers(node, s3, bucket):
    """Every PUT is seen at once by GET, HEAD and LIST sent on other new connections.

    What this proves: each request runs on its own TCP connection; for a sample of the keys the
    test looks up in /proc which worker process holds the server side of the PUT's and the
    GET's connection, and asserts that both workers served and that several reads ran on
    another worker than the PUT they follow; and no read, on any worker, missed its write.
    It does not force every pair onto two workers: the kernel hands each connection to
    whichever worker accepts it first.
    """
    workers = wait_for(lambda: _settled(node), 15.0, "two workers")["worker"]
    stale: list[str] = []
    pairs: list[tuple[int | None, int | None]] = []
    lock = threading.Lock()

    def run(thread: int) -> None:
        for index in range(thread, KEYS, THREADS):
            key = f"ryw/{index:04d}"
            body = f"body {index} {uuid.uuid4().hex}".encode()
            traced = workers if index < TRACED_KEYS else None
            status, _, put_worker = _fresh_request(node, "PUT", f"/{bucket}/{key}", body, traced)
            assert status == 200
            got, data, get_worker = _fresh_request(node, "GET", f"/{bucket}/{key}", b"", traced)
            head, _, _ = _fresh_request(node, "HEAD", f"/{bucket}/{key}")
            listed, listing, _ = _fresh_request(node, "GET", f"/{bucket}?list-type=2&prefix={key}")
            with lock:
                pairs.append((put_worker, get_worker))
                if got != 200 or data != body:
                    stale.append(f"GET {key}: {got}")
                if head != 200:
                    stale.append(f"HEAD {key}: {head}")
                if listed != 200 or f"<Key>{key}</Key>".encode() not in listing:
                    stale.append(f"LIST {key}: {listed}")

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(pairs) == KEYS
    assert not stale, stale[:10]
    traced = [pair for pair in pairs if None not in pair]
    assert len(traced) >= TRACED_KEYS // 2, f"found the serving worker of only {len(traced)} pairs"
    served = {pid for pair in traced for pid in pair}
    crossed = sum(1 for put_worker, get_worker in traced if put_worker != get_worker)
    assert len(served) >= 2, f"only workers {served} served"
    assert crossed >= 5, f"only {crossed} of {len(traced)} traced reads ran on another worker than their write"
