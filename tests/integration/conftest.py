"""Real nodes for integration tests: `nebulaio server` on free loopback ports in a temp dir.

Every node is started in its own process group and stopped by PID (SIGTERM, then SIGKILL of
its group) when its fixture ends; readiness is polled on /health/ready, never slept for
(nebulaio.testing, which the package's pytest plugin uses too).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from benchmarks.sigv4 import V4Signature, sign_target
from nebulaio.testing import LISTENERS as LISTENERS
from nebulaio.testing import REGISTRATION_TIMEOUT, NodeProcess, fresh_bucket, registered_nodes, s3_client
from nebulaio.testing import START_TIMEOUT as START_TIMEOUT
from nebulaio.testing import empty_bucket as empty_bucket
from nebulaio.testing import free_port as free_port
from nebulaio.testing import wait_for as wait_for

ROOT_USER = "testroot"
ROOT_PASSWORD = "testroot-secret-key"
CLUSTER_SECRET = "test-cluster-secret"


class Node(NodeProcess):
    """One `nebulaio server` process tree of the test root user, with two HTTP workers."""

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
        super().__init__(data, log_path, ROOT_USER, ROOT_PASSWORD, extra_env, args, tls, host, ports)

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "NEBULAIO_WORKERS": "2",
            "NEBULAIO_LOG_LEVEL": "info",
            # Tests fail logins on purpose, all from loopback; test_login_throttle sets a limit (by flag).
            "NEBULAIO_LOGIN_MAX_FAILURES": "0",
            **self.extra_env,
        }

    def client(self, **config):
        return make_client(
            self.s3_url,
            verify=False if self.tls else None,
            access_key=self.root_user,
            secret_key=self.root_password,
            **config,
        )


def make_client(endpoint: str, verify=None, access_key: str = ROOT_USER, secret_key: str = ROOT_PASSWORD, **config):
    options = {"retries": {"max_attempts": 1, "mode": "standard"}, **config}
    return s3_client(endpoint, access_key, secret_key, verify, **options)


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
    """The members a node's replica knows."""
    return registered_nodes(node.data)


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
        wait_registered: bool = True,
        **kwargs,
    ) -> list[Node]:
        """`advertise(position, node)` may give {listener: address} a node gives its peers (a proxy).
        `prepare(node)` runs before each node first starts (to mount something at its data directory).

        `wait_registered`: also wait until every replica knows every node, not only until each
        node answers ready (which it does once it knows itself).
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
        for node in nodes if wait_registered else ():
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
    with fresh_bucket(s3) as name:
        yield name


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


def admin_headers(node) -> dict:
    """The Authorization header of an Admin API session of the node's root user."""
    login = {"username": node.root_user, "password": node.root_password}
    token = requests.post(node.admin_url + "/api/v1/auth/login", json=login, timeout=10).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def cluster_status(node) -> dict:
    return requests.get(node.admin_url + "/api/v1/cluster/status", headers=admin_headers(node), timeout=10).json()


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


_iam_services: dict[str, object] = {}


def iam_service(node: Node):
    """The engine's IamService of a running node, driven from the test process.

    Its changes are real iam.* commands submitted to the node's supervisor over its IPC
    socket (what a worker does); its reads come from the node's LMDB replica, opened here
    read-only as a worker opens it. One per node: LMDB lets a process open an environment once.
    """
    if str(node.data) in _iam_services:
        return _iam_services[str(node.data)]
    from nebulaio.cluster.ipc import SupervisorClient
    from nebulaio.iam.credentials import Credentials
    from nebulaio.iam.service import IamService
    from nebulaio.meta import MetaReader, open_env
    from nebulaio.storage.layout import DataLayout
    from nebulaio.util.purposekeys import ClusterKeys

    layout = DataLayout(str(node.data))
    reader = MetaReader(open_env(layout.kv_dir, readonly=True))
    service = IamService(
        reader,
        SupervisorClient(layout.ipc_socket),
        Credentials(ROOT_USER, ROOT_PASSWORD),
        ClusterKeys([layout.cluster_secret("")]),
    )
    _iam_services[str(node.data)] = service
    return service


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


def strace_works() -> bool:
    """strace is installed and may trace here (a container may refuse ptrace)."""
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=60).returncode == 0


@contextlib.contextmanager
def traced_sendfile(node, log: Path, also: str = ""):
    """strace the node's processes for sendfile(2), and the calls `also` names (comma-separated),
    while the block runs; yields a list that holds the traced calls' lines once it ends."""
    attach = [arg for pid in node.group_pids() for arg in ("-p", str(pid))]
    traced = ",".join(filter(None, ("sendfile", also)))
    tracer = subprocess.Popen(
        ["strace", "-f", "-y", "-e", f"trace={traced}", "-o", str(log), *attach], stderr=subprocess.PIPE, text=True
    )
    calls: list[str] = []
    try:
        attached = 0
        while attached < len(attach) // 2:  # strace says so once per process it traces
            line = tracer.stderr.readline()
            assert line, "strace ended before attaching"
            attached += "attached" in line
        yield calls
    finally:
        tracer.terminate()
        tracer.wait(30)
    names = tuple(f"{name}(" for name in traced.split(","))
    calls.extend(line for line in log.read_text().splitlines() if any(name in line for name in names))
