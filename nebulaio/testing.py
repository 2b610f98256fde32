"""Real NebulaIO nodes for test suites: `nebulaio server` on free loopback ports in a directory
of its own, as a context manager (`NebulaIO`) or through the pytest fixtures of
`nebulaio.pytest_plugin`.

Every node runs in its own process group, is stopped by PID (SIGTERM, then SIGKILL of its
group), and dies with the thread that started it even when that process is killed: a test
run leaves no node behind. Readiness is polled on /health/ready, never slept for.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import http.client
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from nebulaio.storage.layout import DataLayout
from nebulaio.util.keyfile import new_key_pair

LISTENERS = ("s3", "admin", "console", "raft", "gossip", "internal")
START_TIMEOUT = 60.0
REGISTRATION_TIMEOUT = 60.0
READY_POLL_INTERVAL = 0.02
START_ATTEMPTS = 3
"""Starts of a fresh node before giving up: a port drawn free may be taken by another process
(another pytest-xdist worker) before the node binds it."""
STATE_FILE = "nebulaio-testing.json"
"""Kept in a persistent data directory: the ports, credentials and cluster secret of its nodes,
so that the next run starts the same nodes again."""

HANDED_OUT: set[int] = set()
"""Ports given out in this process: a node's listeners are bound only once it starts, so a free
port could otherwise be drawn twice (two listeners of one node, or two nodes)."""


def free_port(first: int = 20000, last: int = 32000) -> int:
    """A free loopback port below 32768 (raft's advice; also clear of the ephemeral range),
    never one given out before in this process."""
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


class NodeProcess:
    """One `nebulaio server` process tree.

    By default it listens on free loopback ports; a subclass may run it elsewhere (another
    `host`, given `ports`, its own `command` and `environment`).
    """

    def __init__(
        self,
        data: Path,
        log_path: Path,
        root_user: str,
        root_password: str,
        extra_env: dict | None = None,
        args: list[str] | None = None,
        tls: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        ca_bundle: str | None = None,
    ):
        """`ca_bundle`: the file that verifies the node's TLS certificate (unverified without one)."""
        self.data = data
        self.log_path = log_path
        self.host = host
        self.ports = ports or {name: free_port() for name in LISTENERS}
        self.root_user = root_user
        self.root_password = root_password
        self.extra_env = dict(extra_env or {})
        self.args = list(args or [])
        self.tls = tls
        self.ca_bundle = ca_bundle
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
        """`nebulaio server` (of this interpreter's nebulaio) with this node's data directory."""
        return [sys.executable, "-m", "nebulaio", "server", "--data", str(self.data)]

    def command(self) -> list[str]:
        command = self.server_command()
        for name in LISTENERS:
            command += [f"--{name}-address", f"{self.host}:{self.ports[name]}"]
        if self.tls:
            command += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        return command + self.args

    def environment(self) -> dict[str, str]:
        """The test run's environment less its NEBULAIO_ settings: the node is configured by its
        arguments and `extra_env` alone."""
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("NEBULAIO_")}
        return {
            **inherited,
            "NEBULAIO_ROOT_USER": self.root_user,
            "NEBULAIO_ROOT_PASSWORD": self.root_password,
            **self.extra_env,
        }

    def start(self, wait: bool = True) -> NodeProcess:
        from nebulaio.node import die_with_parent

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
                preexec_fn=die_with_parent,  # a test run that is killed takes its nodes along
            )
        if wait:
            self.wait_ready()
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        if self.ca_bundle:
            return ssl.create_default_context(cafile=self.ca_bundle)
        return ssl._create_unverified_context()

    def ready(self) -> bool:
        """Whether /health/ready answers 200: raft has a leader and this node applied the log."""
        try:
            with urllib.request.urlopen(self.admin_url + "/health/ready", timeout=1, context=self._ssl_context()):
                return True
        except (OSError, http.client.HTTPException):
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(READY_POLL_INTERVAL)
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

    def terminate(self) -> None:
        """Ask the node to stop (SIGTERM to its launcher) without waiting for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self.kill_group()
        return self.process.returncode

    def kill_group(self) -> None:
        """SIGKILL whatever is left of this node's process group (by its group id, our own child)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def registered_nodes(data: Path) -> list[dict]:
    """The members a node's replica knows (read from its LMDB replica, as a worker does)."""
    from nebulaio.meta import MetaReader, open_env

    env = open_env(str(Path(data) / "metadata" / "kv"), readonly=True)
    try:
        return MetaReader(env).nodes.all()
    finally:
        env.close()


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


def s3_client(endpoint: str, access_key: str, secret_key: str, verify=None, region: str = "us-east-1", **config):
    """A boto3 S3 client with path-style addressing; `config` goes to botocore's Config."""
    import boto3
    from botocore.config import Config

    options = {"s3": {"addressing_style": "path"}, **config}
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        verify=verify,
        config=Config(**options),
    )


def empty_bucket(s3, name: str) -> None:
    """Delete every version and delete marker of a bucket (its only objects when unversioned)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])


def abort_uploads(s3, name: str) -> None:
    """Abort every multipart upload still open in a bucket."""
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])


@contextlib.contextmanager
def fresh_bucket(s3, prefix: str = "test"):
    """The name of a new bucket, emptied (every version and open upload) and removed afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        abort_uploads(s3, name)
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)


def make_certificate(directory: Path) -> tuple[str, str, str]:
    """(certificate, key, CA bundle) files for 127.0.0.1 and localhost, signed by a new CA,
    so that clients verify the node's certificate instead of turning verification off."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: x509.Name | None, issuer_key, key, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("NebulaIO test CA", None, ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build("localhost", ca_cert.subject, ca_key, key, ca=False)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "node.crt", directory / "node.key", directory / "ca.crt"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths[2].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return tuple(str(path) for path in paths)


class NebulaIO:
    """A real NebulaIO node (or a cluster of three) for a test suite, as a context manager.

        with NebulaIO() as server:
            s3 = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key, region_name=server.region)

    Without `data_dir` the node lives in a temporary directory removed when it stops. With one,
    the data stays, and the next NebulaIO on that directory starts the same node(s) again on the
    same ports with the same credentials. `cluster=True` starts three voters that share one raft
    log (`endpoint_url` is the first one's; `nodes` has all). `tls=True` serves HTTPS with a
    certificate of a new CA whose file is `ca_bundle`.

    The nodes die with the thread that started them: start them from a thread that outlives
    their use (the main thread of a test run).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        *,
        cluster: bool = False,
        tls: bool = False,
        region: str = "us-east-1",
        workers: int = 1,
        start_timeout: float = START_TIMEOUT,
    ):
        """`workers`: HTTP worker processes per node; one starts fastest and serves a test suite."""
        self._temporary = data_dir is None
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.cluster = cluster
        self.tls = tls
        self.region = region
        self.workers = workers
        self.start_timeout = start_timeout
        self.access_key = ""
        self.secret_key = ""
        self.ca_bundle: str | None = None
        self.nodes: list[NodeProcess] = []

    @property
    def endpoint_url(self) -> str:
        return self.nodes[0].s3_url

    @property
    def admin_url(self) -> str:
        return self.nodes[0].admin_url

    @property
    def verify(self) -> str | None:
        """What a client passes as `verify`: the CA bundle with TLS, else None."""
        return self.ca_bundle

    def client(self, **config):
        """A boto3 S3 client of the root user (boto3 must be installed)."""
        return s3_client(self.endpoint_url, self.access_key, self.secret_key, self.verify, self.region, **config)

    def __enter__(self) -> NebulaIO:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> NebulaIO:
        if self._temporary:
            self.data_dir = Path(tempfile.mkdtemp(prefix="nebulaio-"))
        atexit.register(self.stop)
        for attempt in range(1, START_ATTEMPTS + 1):
            fresh = not (self.data_dir / STATE_FILE).exists()
            self._prepare()
            try:
                self._start_nodes()
                return self
            except RuntimeError:
                self._stop_nodes()
                if not fresh or attempt == START_ATTEMPTS:
                    self.stop()
                    raise
                self._forget()

    def stop(self) -> None:
        """Stop every node (idempotent). Nodes in a temporary directory are killed outright:
        their data goes with them, and a graceful stop would cost most of a second."""
        atexit.unregister(self.stop)
        if not self._temporary:
            self._stop_nodes()
            return
        if self.data_dir is None:
            return
        for node in self.nodes:
            node.kill_group()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(DataLayout(str(node.data)).ipc_socket)  # outside the data of a long path
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _prepare(self) -> None:
        """Load the nodes' ports and secrets from the data directory, or choose and keep new ones."""
        state_path = self.data_dir / STATE_FILE
        if state_path.exists():
            state = json.loads(state_path.read_text())
        else:
            access_key, secret_key = new_key_pair()
            state = {
                "access_key": access_key,
                "secret_key": secret_key,
                "cluster_secret": secrets.token_urlsafe(30),
                "ports": [{name: free_port() for name in LISTENERS} for _ in range(3 if self.cluster else 1)],
            }
            self.data_dir.mkdir(parents=True, exist_ok=True)
            partial = state_path.with_suffix(".partial")
            partial.write_text(json.dumps(state))
            partial.replace(state_path)
        count = len(state["ports"])
        if count != (3 if self.cluster else 1):
            raise ValueError(f"{self.data_dir} holds {'a cluster of three' if count > 1 else 'a single node'}")
        self.access_key, self.secret_key = state["access_key"], state["secret_key"]
        tls = None
        if self.tls:
            cert, key, self.ca_bundle = make_certificate(self.data_dir / "tls")
            tls = (cert, key)
        args = ["--region", self.region, "--workers", str(self.workers), "--log-level", "warning"]
        if count > 1:
            peers = ",".join(f"127.0.0.1:{ports['raft']}" for ports in state["ports"])
            args += ["--raft-peers", peers]
        self.nodes = []
        for position, ports in enumerate(state["ports"]):
            base = self.data_dir / f"node{position}"
            node_args = [*args, "--node-id", f"node{position}"] if count > 1 else args
            self.nodes.append(
                NodeProcess(
                    base / "data",
                    base / "node.log",
                    self.access_key,
                    self.secret_key,
                    extra_env={"NEBULAIO_CLUSTER_SECRET": state["cluster_secret"]} if count > 1 else None,
                    args=node_args,
                    tls=tls,
                    ports=ports,
                    ca_bundle=self.ca_bundle,
                )
            )

    def _start_nodes(self) -> None:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready(self.start_timeout)
        if len(self.nodes) > 1:
            for node in self.nodes:
                wait_for(
                    lambda node=node: len(registered_nodes(node.data)) == len(self.nodes),
                    REGISTRATION_TIMEOUT,
                    "every node registered",
                )

    def _stop_nodes(self) -> None:
        for node in self.nodes:
            node.terminate()  # all at once: a cluster stops in the time of its slowest node
        for node in self.nodes:
            node.stop()

    def _forget(self) -> None:
        """Remove what a failed first start left, so the next attempt draws new ports."""
        for child in self.data_dir.iterdir():
            if child.name == STATE_FILE or child.name.startswith("node") or child.name == "tls":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
