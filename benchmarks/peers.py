"""The servers under test: each started on 127.0.0.1 in its own temp dir and stopped by PID.

Every server runs in its own session (process group), so Ctrl-C reaches the harness only and
the harness stops each group it started, on success, failure or interrupt alike.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks.client import simple_request
from benchmarks.load import Endpoint

HOST = "127.0.0.1"
PORT_RANGE = range(18000, 18500)
CEPH_DAEMON_PORTS = range(18500, 18999)  # the OSD binds several ports of its own; it picks them here
READY_SECONDS = 60.0
READY_POLL_SECONDS = 0.1
STOP_SECONDS = 15.0
BENCH_ACCESS_KEY = "benchaccesskey"
BENCH_SECRET_KEY = "benchsecretkey0123456789"


class NotStarted(Exception):
    """A peer could not be brought up here; the message says why."""


def free_ports(count: int) -> list[int]:
    """Ports in the harness's range that nothing listens on right now."""
    ports = []
    for port in PORT_RANGE:
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise NotStarted(f"no {count} free ports in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


def wait_until(ready, what: str, processes: list["Managed"], seconds: float = READY_SECONDS) -> None:
    """Polls `ready()` until it holds; gives up when a process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while not ready():
        for process in processes:
            if process.popen.poll() is not None:
                raise NotStarted(f"{process.name} exited with {process.popen.returncode}: {process.log_tail()}")
        if time.monotonic() > deadline:
            raise NotStarted(f"{what} not ready after {seconds:.0f} s")
        time.sleep(READY_POLL_SECONDS)


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def stop_on_signals() -> None:
    """SIGTERM and Ctrl-C end a run through its cleanup (the servers' `with` blocks), even when it
    was started in the background with SIGINT ignored: no server is left running."""
    owner = os.getpid()

    def interrupt(signum, frame) -> None:
        if os.getpid() != owner:  # a forked load generator, terminated by the run: it just ends
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


class Managed:
    """A started server process: its own session, its output in a log file, stopped by PID."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            try:
                self.popen = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=workdir,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise NotStarted(f"{name}: {exc}") from exc

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, size: int = 600) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace").strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the process group this harness created, SIGKILL if it lingers."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(STOP_SECONDS)
            except ProcessLookupError:
                pass
        try:  # children left behind in the group (daemonised workers) go too
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Target:
    """A server under test. Subclasses start it; the harness measures it through `endpoint`."""

    name = ""
    supports_list = True
    supports_copy = True
    supports_multipart = True
    access_key = BENCH_ACCESS_KEY
    secret_key = BENCH_SECRET_KEY

    def __init__(self) -> None:
        self.processes: list[Managed] = []
        self.workdir: Path | None = None
        self.port = 0

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(HOST, self.port, self.access_key, self.secret_key)

    def server_pids(self) -> list[int]:
        """Root PIDs whose process trees make up the server; empty when it is not ours to watch."""
        return [process.pid for process in self.processes]

    def __enter__(self) -> "Target":
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        try:
            self.start(self.workdir)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, workdir: Path) -> None:
        raise NotImplementedError

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Managed:
        process = Managed(name, argv, self.workdir, env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def create_bucket(self, bucket: str) -> None:
        status, body = simple_request(self.endpoint.builder(), "PUT", f"/{bucket}")
        if status not in (200, 409):
            raise NotStarted(f"create bucket {bucket}: {status} {body[:300]!r}")


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
{user_directive}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_max_body_size 0;
    client_body_buffer_size 1m;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    server {{
        listen {host}:{port} backlog=4096;
        root {root};
        location / {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw;
        }}
    }}
}}
"""


class Nginx(Target):
    """Static files with sendfile and DAV PUT/DELETE: the ceiling of an HTTP object server here."""

    name = "nginx"
    supports_list = False
    supports_copy = False
    supports_multipart = False

    def start(self, workdir: Path) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            raise NotStarted("nginx not installed (apt-get install nginx-light)")
        (self.port,) = free_ports(1)
        self.root = workdir / "www"
        self.root.mkdir()
        conf = workdir / "nginx.conf"
        # A root master would hand the workers to "nobody", who cannot write into this temp dir.
        user_directive = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(
            NGINX_CONF.format(
                workers=os.cpu_count() or 1,
                user_directive=user_directive,
                prefix=workdir,
                host=HOST,
                port=self.port,
                root=self.root,
            )
        )
        process = self.spawn("nginx", [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")])
        wait_until(lambda: port_open(self.port), "nginx", [process])

    def create_bucket(self, bucket: str) -> None:
        (self.root / bucket).mkdir(exist_ok=True)


class Moto(Target):
    """moto_server: the Python S3 server people test with."""

    name = "moto"

    def start(self, workdir: Path) -> None:
        binary = shutil.which("moto_server")
        if binary is None:
            raise NotStarted('moto_server not installed (pip install "moto[server]")')
        (self.port,) = free_ports(1)
        process = self.spawn("moto", [binary, "-H", HOST, "-p", str(self.port)])
        wait_until(lambda: http_ok(f"http://{HOST}:{self.port}/moto-api/"), "moto_server", [process])


class External(Target):
    """An S3 endpoint somebody else runs: measured as it is, its CPU not observed."""

    name = "endpoint"

    def __init__(self, url: str, access_key: str, secret_key: str):
        super().__init__()
        host_port = url.split("://", 1)[-1].rstrip("/")
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port or 80)
        self.access_key = access_key
        self.secret_key = secret_key

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, self.access_key, self.secret_key)

    def start(self, workdir: Path) -> None:
        if not port_open(self.port, self.host):
            raise NotStarted(f"nothing answers at {self.host}:{self.port}")


NEBULAIO_LISTENERS = ("s3", "admin", "console", "raft", "gossip", "internal")


def nebulaio_argv(data: Path, ports: list[int]) -> list[str]:
    """`nebulaio server` with its data in `data` (created here) and each of NEBULAIO_LISTENERS
    on the loopback port of the same position in `ports`."""
    binary = shutil.which("nebulaio")
    launcher = [binary] if binary else [sys.executable, "-m", "nebulaio"]
    data.mkdir()
    argv = [*launcher, "server", "--data", str(data)]
    for listener, port in zip(NEBULAIO_LISTENERS, ports, strict=True):
        argv += [f"--{listener}-address", f"{HOST}:{port}"]
    return argv


class NebulaIO(Target):
    """NebulaIO itself, started through its CLI as one single-node cluster."""

    name = "nebulaio"
    settings: dict[str, str] = {}
    """NEBULAIO_* environment settings this target starts with beyond the root pair."""

    def start(self, workdir: Path) -> None:
        ports = free_ports(len(NEBULAIO_LISTENERS))
        self.port, self.admin_port = ports[0], ports[1]
        env = dict(
            os.environ, NEBULAIO_ROOT_USER=self.access_key, NEBULAIO_ROOT_PASSWORD=self.secret_key, **self.settings
        )
        self.data = workdir / "data"
        process = self.spawn("nebulaio", nebulaio_argv(self.data, ports), env)
        wait_until(
            lambda: http_ok(f"http://{HOST}:{self.admin_port}/health/ready"), "nebulaio /health/ready", [process]
        )


class NebulaIOBaseline(NebulaIO):
    """NebulaIO from another source tree (a checkout of an earlier commit), measured in the same
    run as the current one: a change's before and after under the same machine load."""

    name = "baseline"

    def __init__(self, source: Path):
        super().__init__()
        self.settings = {"PYTHONPATH": str(source.resolve())}


# What the policy user may do: ten statements, conditions included, all of them weighed on
# every request (an explicit Deny anywhere would win, so none can be skipped).
POLICY_USER = "bench-user"
POLICY_USER_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": ["arn:aws:s3:::bench/*", "arn:aws:s3:::bench-list/*"],
        },
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::bench", "arn:aws:s3:::bench-list"]},
        {"Effect": "Allow", "Action": "s3:CreateBucket", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "s3:GetObjectTagging",
            "Resource": "arn:aws:s3:::reports/*",
            "Condition": {"StringEquals": {"s3:ExistingObjectTag/team": "storage"}},
        },
        {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": "arn:aws:s3:::bench/*",
        },
        {"Effect": "Deny", "Action": "s3:PutBucketPolicy", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "s3:GetBucketLocation",
            "Resource": "arn:aws:s3:::bench*",
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
        },
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::secret-*/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}


class NebulaIOPolicyUser(NebulaIO):
    """NebulaIO measured as an IAM user whose access comes from a ten-statement policy, to
    set beside the root user's figures: authorization must cost next to nothing."""

    name = "nebulaio-user"

    def start(self, workdir: Path) -> None:
        super().start(workdir)
        import orjson

        from nebulaio.cluster.ipc import SupervisorClient
        from nebulaio.iam.credentials import Credentials
        from nebulaio.iam.service import IamService
        from nebulaio.meta import MetaReader, open_env
        from nebulaio.storage.layout import DataLayout
        from nebulaio.util.purposekeys import ClusterKeys

        layout = DataLayout(str(self.data))
        iam = IamService(
            MetaReader(open_env(layout.kv_dir, readonly=True)),
            SupervisorClient(layout.ipc_socket),
            Credentials(self.access_key, self.secret_key),
            ClusterKeys([layout.cluster_secret("")]),
        )
        iam.create_user(POLICY_USER)
        iam.put_policy("bench", orjson.dumps(POLICY_USER_DOCUMENT))
        iam.attach_policy("bench", user=POLICY_USER)
        pair = iam.create_access_key(POLICY_USER)
        self.access_key, self.secret_key = pair["accessKey"], pair["secretKey"]


@dataclass
class Member:
    """One node of a started cluster: enough to watch it, and to start it again as itself."""

    name: str
    data: Path
    admin_port: int
    argv: list[str]
    env: dict[str, str]
    process: Managed

    @property
    def ready_url(self) -> str:
        return f"http://{HOST}:{self.admin_port}/health/ready"


class NebulaIOCluster(Target):
    """Three hybrid NebulaIO nodes on loopback sharing one raft log; the load goes to the first.

    Every object's bytes are written on all three (replicas 3, write quorum 2).
    """

    name = "nebulaio-3"
    nodes = 3

    def __init__(self) -> None:
        super().__init__()
        self.members: list[Member] = []

    def start(self, workdir: Path) -> None:
        # One probe for every node: ports nothing listens on yet would be handed out twice.
        per_node = len(NEBULAIO_LISTENERS)
        free = free_ports(per_node * self.nodes)
        ports = [free[per_node * number : per_node * (number + 1)] for number in range(self.nodes)]
        self.node_ports = ports
        self.port = ports[0][0]
        peers = ",".join(f"{HOST}:{node_ports[3]}" for node_ports in ports)
        env = dict(
            os.environ,
            NEBULAIO_ROOT_USER=self.access_key,
            NEBULAIO_ROOT_PASSWORD=self.secret_key,
            NEBULAIO_CLUSTER_SECRET="benchmark-cluster-secret",
        )
        for number, node_ports in enumerate(ports):
            name, data = f"nebulaio-node{number}", workdir / f"data{number}"
            argv = nebulaio_argv(data, node_ports)
            argv += ["--raft-peers", peers, "--node-id", f"node{number}", "--role", "hybrid"]
            self.members.append(Member(name, data, node_ports[1], argv, env, self.spawn(name, argv, env)))
        processes = [member.process for member in self.members]
        for member in self.members:
            wait_until(lambda url=member.ready_url: http_ok(url), "every node's /health/ready", processes)


CEPH_CONF = """\
[global]
fsid = {fsid}
mon host = v1:{host}:{mon_port}
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
ms bind port min = {daemon_ports.start}
ms bind port max = {daemon_ports.stop}
run dir = {workdir}/run
admin socket = {workdir}/run/$name.asok
log file = {workdir}/log/$name.log
mon data = {workdir}/mon
osd data = {workdir}/osd
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
[client.rgw]
rgw frontends = beast endpoint={host}:{rgw_port} tcp_nodelay=1
rgw data = {workdir}/rgw
rgw gc obj min wait = 0
rgw gc processor period = 10
"""
CEPH_TOOL_SECONDS = 60.0
MEMSTORE_BYTES = 16 << 30


class RadosGW(Target):
    """Ceph RGW on a one-mon, one-osd memstore cluster, auth none inside: the C++ production peer.

    NOTE: beast needs tcp_nodelay=1, or Nagle and delayed ACKs add ~40 ms to every small GET.
    """

    name = "radosgw"

    def start(self, workdir: Path) -> None:
        for tool in ("ceph-mon", "ceph-osd", "radosgw", "monmaptool", "ceph", "radosgw-admin"):
            if shutil.which(tool) is None:
                raise NotStarted(f"{tool} not installed (apt-get install radosgw ceph-mon ceph-osd)")
        mon_port, self.port = free_ports(2)
        fsid, osd_uuid = str(uuid.uuid4()), str(uuid.uuid4())
        for directory in ("run", "log", "mon", "osd", "rgw"):
            (workdir / directory).mkdir()
        conf = workdir / "ceph.conf"
        conf.write_text(
            CEPH_CONF.format(
                fsid=fsid,
                host=HOST,
                mon_port=mon_port,
                rgw_port=self.port,
                workdir=workdir,
                memstore_bytes=MEMSTORE_BYTES,
                daemon_ports=CEPH_DAEMON_PORTS,
            )
        )
        config = ["-c", str(conf)]
        # monmaptool assumes msgr2 for a non-default port unless the address says v1.
        self.tool(
            ["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"v1:{HOST}:{mon_port}", str(workdir / "monmap")]
        )
        self.tool(["ceph-mon", *config, "--mkfs", "-i", "a", "--monmap", str(workdir / "monmap")])
        mon = self.spawn("ceph-mon", ["ceph-mon", *config, "-i", "a", "-f"])
        wait_until(lambda: port_open(mon_port), "ceph-mon", [mon])
        osd_id = self.tool(["ceph", *config, "osd", "new", osd_uuid]).strip()  # the OSD's UUID is required
        self.tool(["ceph-osd", *config, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid])
        osd = self.spawn("ceph-osd", ["ceph-osd", *config, "-i", osd_id, "-f"])
        rgw = self.spawn("radosgw", ["radosgw", *config, "-n", "client.rgw", "-f"])
        wait_until(lambda: http_ok(f"http://{HOST}:{self.port}/"), "radosgw", [mon, osd, rgw], seconds=120)
        self.tool(
            [
                "radosgw-admin",
                *config,
                "user",
                "create",
                "--uid",
                "bench",
                "--display-name",
                "bench",
                "--access-key",
                self.access_key,
                "--secret-key",
                self.secret_key,
            ]
        )

    def tool(self, argv: list[str]) -> str:
        """Runs a set-up command; its failure means the cluster cannot come up here."""
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CEPH_TOOL_SECONDS, cwd=self.workdir)
        except subprocess.TimeoutExpired:
            raise NotStarted(f"{argv[0]} {argv[-1]} timed out") from None
        if done.returncode:
            raise NotStarted(f"{' '.join(argv[:2])} failed: {(done.stderr or done.stdout)[-400:].strip()}")
        return done.stdout


TARGETS = {target.name: target for target in (NebulaIO, NebulaIOPolicyUser, NebulaIOCluster, Nginx, Moto, RadosGW)}
