"""Network faults on loopback: a TCP proxy in front of a node's listener that the test can cut.

A node advertises its proxy's address (--advertise-raft-address, --advertise-internal-address),
so every peer reaches it through the proxy. Cutting it drops every byte both ways while
connections stay open, as a partition does: peers notice only by silence. Healing closes
the connections that were cut, so peers reconnect afresh.

NOTE: PySyncObj opens a connection between two voters from the one whose address sorts
higher, so a node whose advertised raft address sorts lowest (a proxy port below every real
port) receives every raft connection it has through its proxy: cutting the proxy isolates it.
"""

from __future__ import annotations

import socket
import threading
import time

import requests
from conftest import free_port

PUMP_CHUNK = 1 << 16
POLL = 0.2


def low_port() -> int:
    """A free loopback port in 10000-19999: its address sorts below the nodes' (20000-32000)."""
    return free_port(10000, 19999)


class LinkProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target until cut; stopped with close()."""

    def __init__(self, target: int, port: int | None = None):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port or low_port()))
        self.listener.settimeout(POLL)
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    def cut(self) -> None:
        self._cut.set()

    def heal(self) -> None:
        """Forward again; connections that lived through the cut are closed, as a timeout would."""
        with self._lock:
            links, self._links = self._links, []
            self._cut.clear()
        for pair in links:
            for sock in pair:
                sock.close()

    def close(self) -> None:
        self._closed.set()
        self.heal()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            # Before the link is listed: heal() may close a listed link's sockets at any time.
            client.settimeout(POLL)
            server.settimeout(POLL)
            with self._lock:
                self._links.append((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy source to sink; while cut, read and drop, so the sender sees no error, only silence."""
        try:
            while not self._closed.is_set():
                try:
                    data = source.recv(PUMP_CHUNK)
                except TimeoutError:
                    continue
                if not data:
                    break
                if not self._cut.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def cluster_with_node0_behind_proxies(cluster_factory):
    """Three voters; node0 reaches its peers only through proxies on its raft and internal
    listeners. Returns (nodes, proxies, raft addresses as the voters know them); the caller
    closes the proxies."""
    proxies: list[LinkProxy] = []

    def advertise(position, node):
        if position:
            return {}
        fronts = {listener: LinkProxy(node.ports[listener]) for listener in ("raft", "internal")}
        proxies.extend(fronts.values())
        return {listener: proxy.address for listener, proxy in fronts.items()}

    nodes = cluster_factory(3, advertise=advertise)
    addresses = [proxies[0].address] + [f"127.0.0.1:{node.ports['raft']}" for node in nodes[1:]]
    return nodes, proxies, addresses


def raft_status(node) -> dict:
    return requests.get(node.admin_url + "/health/ready", timeout=5).json()["raft"]


def leader_of(nodes):
    """The node that says it leads, or None."""
    for node in nodes:
        try:
            if raft_status(node).get("state") == "leader":
                return node
        except requests.RequestException:
            continue
    return None


def move_leadership(nodes, addresses: list[str], wanted: int, cluster_secret: str, timeout: float = 60.0) -> None:
    """Ask the leader to hand over to nodes[wanted] (raft's TimeoutNow); `addresses` are their raft addresses."""
    from pysyncobj.utility import TcpUtility

    from nebulaio.util.purposekeys import RAFT, derive

    password = derive(cluster_secret, RAFT).hex()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = leader_of(nodes)
        if leader is nodes[wanted]:
            return
        if leader is not None:
            TcpUtility(password=password, timeout=5).executeCommand(
                addresses[nodes.index(leader)], ["transfer", addresses[wanted]]
            )
        time.sleep(0.2)
    raise AssertionError("leadership did not move in time")
