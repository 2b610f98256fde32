"""Real nodes for integration tests: `nebulaio server` on free loopback ports in a temp dir.

Every node is started in its own process group and stopped by PID (SIGTERM, then SIGKILL of
its group) when its fixture ends; readiness is polled on /health/ready, never slept for.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from benchmarks.sigv4 import V4Signature, sign_target
from nebulaio.meta import MetaReader, open_env
from nebulaio.node import die_with_parent

ROOT_USER = "testroot"
ROOT_PASSWORD = "testroot-secret-key"
START_TIMEOUT = 60.0
REGISTRATION_TIMEOUT = 60.0
CLUSTER_SECRET = "test-cluster-secret"
LISTENERS = ("s3", "admin", "console", "raft", "gossip", "internal")


HANDED_OUT: set[int] = set()
"""Ports given out in this run: a node's listeners are bound only once it starts, so a free
port could otherwise be drawn twice (two listeners of one node, or two nodes)."""


def free_port(first: int = 20000, last: int = 32000) -> int:
    """A free loopback port below 32768 (raft's advice; also clear of the ephemeral range),
    never one given out before in this run."""
    for _ in range(200):
        port = random.randint(first, last)
        if port in HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port")


class Node:
    """One `nebulaio server` process tree.

    By default it listens on free loopback ports as the test root user; a subclass may run it
    elsewhere (another `host`, given `ports`, its own `command` and `environment`).
    """

    def __init__(
        self,
        data: Path,
        log_path: Path,
        extra_env: dict | None = None,
        args: list[str] | None = None,
        tls: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
    ):
        self.data = data
        self.log_path = log_path
        self.host = host
        self.ports = ports or {name: free_port() for name in LISTENERS}
        self.root_user = ROOT_USER
        self.root_password = ROOT_PASSWORD
        self.extra_env = dict(extra_env or {})
        self.args = list(args or [])
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.process: subprocess.Popen | None = None

    @property
    def s3_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.ports['s3']}"

    @property
    def admin_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.ports['admin']}"

    @property
    def internal_url(self) -> str:
        """The inter-node listener (plain, or HTTPS with the node's own certificate)."""
        return f"{self.scheme}://{self.host}:{self.ports['internal']}"

    def server_command(self) -> list[str]:
        """`nebulaio server` (of the code under test) with this node's data directory."""
        return [sys.executable, "-m", "nebulaio", "server", "--data", str(self.data)]

    def command(self) -> list[str]:
        command = self.server_command()
        for name in LISTENERS:
            command += [f"--{name}-address", f"{self.host}:{self.ports[name]}"]
        if self.tls:
            command += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        return command + self.args

    def environment(self) -> dict[str, str]:
        return dict(
            os.environ,
            NEBULAIO_ROOT_USER=self.root_user,
            NEBULAIO_ROOT_PASSWORD=self.root_password,
            NEBULAIO_WORKERS="2",
            NEBULAIO_LOG_LEVEL="info",
            # Tests fail logins on purpose, all from loopback; test_login_throttle sets a limit (by flag).
            NEBULAIO_LOGIN_MAX_FAILURES="0",
            **self.extra_env,
        )

    def start(self, wait: bool = True) -> Node:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
            preexec_fn=die_with_parent,  # a test run that is killed takes its nodes along
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.admin_url + "/health/ready", timeout=1, verify=False).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node not ready after {timeout} s:\n{self.log_tail()}")

    def group_pids(self) -> list[int]:
        """Every live process of this node's process group."""
        import psutil

        pgid = self.process.pid
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.info["pid"]) == pgid:
                    found.append(proc.info["pid"])
            except (ProcessLookupError, PermissionError):
                continue
        return found

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group()
        return self.process.returncode

    def kill_group(self) -> None:
        """SIGKILL whatever is left of this node's process group (by its group id, our own child)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def client(self, **config):
        return make_client(
            self.s3_url,
            verify=False if self.tls else None,
            access_key=self.root_user,
            secret_key=self.root_password,
            **config,
        )


def make_client(endpoint: str, verify=None, access_key: str = ROOT_USER, secret_key: str = ROOT_PASSWORD, **config):
    options = {"retries": {"max_attempts": 1, "mode": "standard"}, "s3": {"addressing_style": "path"}}
    options.update(config)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        verify=verify,
        config=Config(**options),
    )


@pytest.fixture(scope="session")
def node_factory(tmp_path_factory):
    """Start extra nodes; all of them are stopped when the session ends."""
    started: list[Node] = []

    def start(wait: bool = True, **kwargs) -> Node:
        base = tmp_path_factory.mktemp("node")
        node = Node(base / "data", base / "node.log", **kwargs)
        started.append(node)
        return node.start(wait=wait)

    yield start
    for node in started:
        node.stop()


def registered(node) -> list[dict]:
    """The members a node's replica knows (read from its LMDB replica, as a worker does)."""
    env = open_env(str(node.data / "metadata" / "kv"), readonly=True)
    try:
        return MetaReader(env).nodes.all()
    finally:
        env.close()


@pytest.fixture(scope="module")
def cluster_factory(tmp_path_factory):
    """Start clusters of nodes that share one raft log; all are stopped when the module ends,
    so clusters of earlier modules never load the machine under later ones.

    cluster_factory(3) starts three voters; cluster_factory(3, storage=2) adds two storage
    nodes that follow the log without voting. Extra keyword arguments go to every Node.
    """
    started: list[Node] = []

    def start(
        voters: int = 3,
        storage: int = 0,
        args: list[str] | None = None,
        advertise=None,
        configs: list[Path] | None = None,
        prepare=None,
        **kwargs,
    ) -> list[Node]:
        """`advertise(position, node)` may give {listener: address} a node gives its peers (a proxy).
        `prepare(node)` runs before each node first starts (to mount something at its data directory).

        `configs` names each node's configuration file, voters first: its role and node id
        come from there, while flags give it loopback addresses, a data directory and the voters.
        """
        nodes = []
        for position in range(voters + storage):
            base = tmp_path_factory.mktemp(f"cluster-node{position}")
            nodes.append(Node(base / "data", base / "node.log", **kwargs))
        advertised = [advertise(position, node) if advertise else {} for position, node in enumerate(nodes)]
        peers = ",".join(
            addresses.get("raft", f"127.0.0.1:{node.ports['raft']}")
            for node, addresses in zip(nodes[:voters], advertised, strict=False)
        )
        for position, node in enumerate(nodes):
            node.args = [*(args or []), "--raft-peers", peers]
            if configs is None:
                role = "hybrid" if position < voters else "storage"
                node.args += ["--role", role, "--node-id", f"node{position}"]
            else:
                node.args += ["--config", str(configs[position])]
            for listener, address in advertised[position].items():
                node.args += [f"--advertise-{listener}-address", address]
            node.extra_env.setdefault("NEBULAIO_CLUSTER_SECRET", CLUSTER_SECRET)
            if prepare is not None:
                prepare(node)
            started.append(node)
            node.start(wait=False)
        for node in nodes:
            node.wait_ready()
        for node in nodes:
            wait_for(
                lambda node=node: len(registered(node)) == len(nodes), REGISTRATION_TIMEOUT, "every node registered"
            )
        return nodes

    yield start
    for node in started:
        node.stop()


@pytest.fixture(scope="session")
def node(node_factory) -> Node:
    """The shared node most tests use."""
    return node_factory()


@pytest.fixture(scope="session")
def s3(node):
    return node.client()


@pytest.fixture
def bucket(s3):
    """A fresh, empty bucket for one test; emptied (every version) and removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


def empty_bucket(s3, name: str) -> None:
    """Delete every version and delete marker of a bucket (its only objects when unversioned)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])


def signed_request(
    node: Node,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict | None = None,
    access_key: str = ROOT_USER,
    secret_key: str = ROOT_PASSWORD,
    stream=False,
) -> requests.Response:
    """Send a SigV4-signed request exactly as given (path already percent-encoded, query included).

    The payload is signed by its SHA-256; for another x-amz-content-sha256 use S3Connection.
    """
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = node.s3_url + path
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    S3SigV4Auth(Credentials(access_key, secret_key), "s3", "us-east-1").add_auth(request)
    prepared = requests.Request(method, url, headers=dict(request.headers.items()), data=body).prepare()
    prepared.url = url  # keep the path exactly as signed
    with requests.Session() as session:
        return session.send(prepared, verify=False, stream=stream, timeout=60)


@pytest.fixture
def raw(node):
    """raw(method, path, body=b"", headers=None, ...) -> requests.Response, signed as root."""
    return lambda *args, **kwargs: signed_request(node, *args, **kwargs)


# --- an independent Signature V4 signer (benchmarks.sigv4's, from AWS's specification) ------
# and raw-socket helpers: a test signs what a real client would even where botocore gives no
# control (a chosen date, payload hash or chunk).


def sign_v4(
    method: str,
    host: str,
    target: str,
    headers: dict,
    payload_hash: str,
    access_key: str = ROOT_USER,
    secret_key: str = ROOT_PASSWORD,
    when: float | None = None,
    region: str = "us-east-1",
) -> V4Signature:
    """Sign a request whose target (path and optional query) is already percent-encoded, as root by default."""
    return sign_target(method, host, target, headers, payload_hash, access_key, secret_key, when, region)


def raw_exchange(node: Node, head: bytes, body_parts=(), timeout: float = 10.0, pause: float = 0.0) -> bytes:
    """Send a request over a fresh socket, the body in parts (with `pause` s before each), and
    return everything the server sent until it closed or went quiet for `timeout` s."""
    with socket.create_connection(("127.0.0.1", node.ports["s3"]), timeout=timeout) as conn:
        conn.sendall(head)
        for part in body_parts:
            if pause:
                time.sleep(pause)
            try:
                conn.sendall(part)
            except OSError:
                break
        received = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
                if b"\r\n\r\n" in received and _response_complete(received):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def _response_complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def metric_samples(node) -> dict[str, float]:
    """A node's /metrics, sample name (labels included) -> value; checks the Prometheus format."""
    response = requests.get(node.admin_url + "/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class S3Connection:
    """One keep-alive HTTP connection to a node's S3 port whose requests are SigV4-signed."""

    def __init__(self, node: Node, timeout: float = 30.0, access_key: str = ROOT_USER, secret_key: str = ROOT_PASSWORD):
        import http.client

        self.host = f"127.0.0.1:{node.ports['s3']}"
        self.conn = http.client.HTTPConnection("127.0.0.1", node.ports["s3"], timeout=timeout)
        self.access_key = access_key
        self.secret_key = secret_key

    def request(
        self, method: str, target: str, body: bytes = b"", headers: dict | None = None, payload_hash: str | None = None
    ) -> tuple[int, dict, bytes]:
        """(status, lower-cased headers, body) of one request; the target is percent-encoded."""
        import hashlib

        payload_hash = payload_hash or hashlib.sha256(body).hexdigest()
        signature = sign_v4(method, self.host, target, headers or {}, payload_hash, self.access_key, self.secret_key)
        self.conn.request(method, target, body=body or None, headers=signature.headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def close(self) -> None:
        self.conn.close()


# --- identities, before the Admin API drives them ------------------------------------------


def iam_service(node: Node):
    """The engine's IamService of a running node, driven from the test process.

    Its changes are real iam.* commands submitted to the node's supervisor over its IPC
    socket (what a worker does); its reads come from the node's LMDB replica, opened here
    read-only as a worker opens it.
    """
    from nebulaio.cluster.ipc import SupervisorClient
    from nebulaio.iam.credentials import Credentials
    from nebulaio.iam.service import IamService
    from nebulaio.meta import MetaReader, open_env
    from nebulaio.storage.layout import DataLayout

    layout = DataLayout(str(node.data))
    reader = MetaReader(open_env(layout.kv_dir, readonly=True))
    return IamService(
        reader, SupervisorClient(layout.ipc_socket), Credentials(ROOT_USER, ROOT_PASSWORD), layout.cluster_secret("")
    )


@pytest.fixture(scope="session")
def iam(node):
    return iam_service(node)


@pytest.fixture
def new_user(iam, node):
    """new_user(*policy documents) -> (name, boto3 client signed with the user's new key, the key pair).

    Each document becomes a managed policy attached to the user; everything is deleted after
    the test.
    """
    created_users, created_policies = [], []

    def make(*documents, groups=()):
        name = f"user-{uuid.uuid4().hex[:12]}"
        iam.create_user(name)
        created_users.append(name)
        for document in documents:
            policy = f"policy-{uuid.uuid4().hex[:12]}"
            iam.put_policy(policy, document if isinstance(document, str) else json.dumps(document))
            created_policies.append(policy)
            iam.attach_policy(policy, user=name)
        for group in groups:
            iam.add_user_to_group(group, name)
        pair = iam.create_access_key(name)
        return name, make_client(node.s3_url, access_key=pair["accessKey"], secret_key=pair["secretKey"]), pair

    yield make
    for name in created_users:
        iam.delete_user(name)
    for policy in created_policies:
        for group in iam.get_policy(policy)["groups"]:
            iam.detach_policy(policy, group=group)
        iam.delete_policy(policy)


def allow(actions, resources, effect="Allow", **extra) -> dict:
    """A one-statement identity policy document."""
    return {"Version": "2012-10-17", "Statement": [dict(Effect=effect, Action=actions, Resource=resources, **extra)]}
