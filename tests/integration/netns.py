"""A private LAN of machines built from Linux network namespaces, for tests that must run a
configuration with real machine addresses (10.0.0.1, ...) exactly as it is written.

Each machine is a namespace with one veth into a bridge that lives in a namespace of its own
(the LAN), so the addresses exist nowhere else: the root namespace's interfaces and routes are
never touched, and every name carries a random suffix so two runs never collide. A process
joins a machine by `ip netns exec` (see `Machine.exec_prefix`).

The test process stays in the root namespace. It reaches the machines from one thread that has
joined the LAN namespace with setns(2): a network namespace belongs to a thread, and every
socket that thread opens (boto3's and requests' included) lives in the LAN. `Lan.run` hands a
function to that thread; clients made and used there see only the LAN.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor

CLONE_NEWNET = 0x40000000
NAMESPACE_DIR = "/run/netns"


class NamespacesUnavailable(Exception):
    """Network namespaces cannot be created here (not root, no CAP_SYS_ADMIN, or no `ip`)."""


def ip(command: str) -> None:
    """Run one iproute2 command (its words split on spaces); fail with what it printed."""
    done = subprocess.run(["ip", *command.split()], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {command}: {done.stderr.strip()}")


def join_namespace(namespace: str) -> None:
    """Move the calling thread (only it) into a named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(os.path.join(NAMESPACE_DIR, namespace), os.O_RDONLY)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {namespace}: {os.strerror(error)}")
    finally:
        os.close(descriptor)


class Machine:
    """One namespace on the LAN with a single address."""

    __slots__ = ("address", "namespace")

    def __init__(self, namespace: str, address: str):
        self.namespace = namespace
        self.address = address

    @property
    def exec_prefix(self) -> list[str]:
        """Prepended to a command, runs it on this machine."""
        return ["ip", "netns", "exec", self.namespace]


class Lan:
    """A bridge in a namespace of its own, the machines attached to it and a client seat on it.

    `client_address` (CIDR) is the bridge's own address, the seat `run` uses. Close it (or use
    it as a context manager) to delete every namespace, which takes their interfaces along;
    stop the processes started on its machines first.
    """

    def __init__(self, client_address: str):
        self.suffix = secrets.token_hex(3)
        self.namespace = f"nebulaio-lan-{self.suffix}"
        self.bridge = f"br-{self.suffix}"
        self.machines: list[Machine] = []
        self._namespaces: list[str] = []
        self._client_thread: ThreadPoolExecutor | None = None
        try:
            self._add_namespace(self.namespace)
        except FileNotFoundError as missing:
            raise NamespacesUnavailable("iproute2's `ip` is not installed") from missing
        except RuntimeError as refused:
            raise NamespacesUnavailable(str(refused)) from refused
        try:
            ip(f"-n {self.namespace} link add {self.bridge} type bridge")
            ip(f"-n {self.namespace} addr add {client_address} dev {self.bridge}")
            ip(f"-n {self.namespace} link set {self.bridge} up")
            self._client_thread = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=self.namespace,
                initializer=join_namespace,
                initargs=(self.namespace,),
            )
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, namespace: str) -> None:
        ip(f"netns add {namespace}")
        self._namespaces.append(namespace)
        ip(f"-n {namespace} link set lo up")

    def add_machine(self, address: str) -> Machine:
        """A new machine with `address` (CIDR) on a veth whose other end is a bridge port."""
        number = len(self.machines) + 1
        machine = Machine(f"nebulaio-machine{number}-{self.suffix}", address.partition("/")[0])
        port, interface = f"lan{number}-{self.suffix}", f"eth{number}-{self.suffix}"
        self._add_namespace(machine.namespace)
        # Both ends are made inside the namespaces: nothing passes through the root namespace.
        ip(f"-n {self.namespace} link add {port} type veth peer name {interface} netns {machine.namespace}")
        ip(f"-n {self.namespace} link set {port} master {self.bridge} up")
        ip(f"-n {machine.namespace} addr add {address} dev {interface}")
        ip(f"-n {machine.namespace} link set {interface} up")
        self.machines.append(machine)
        return machine

    def run(self, function, *args, **kwargs):
        """Call `function` on the thread that lives in the LAN and return (or raise) its outcome."""
        return self._client_thread.submit(function, *args, **kwargs).result()

    def close(self) -> None:
        """Delete every namespace made, even after a failure; raise if one could not be."""
        if self._client_thread is not None:
            self._client_thread.shutdown()
            self._client_thread = None
        failures = []
        for namespace in reversed(self._namespaces):
            try:
                ip(f"netns delete {namespace}")
            except RuntimeError as failure:
                failures.append(str(failure))
        self._namespaces.clear()
        if failures:
            raise RuntimeError("; ".join(failures))

    def __enter__(self) -> Lan:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
