"""Where things live under the data directory (the layout of the design document)."""

from __future__ import annotations

import os
import tempfile

import xxhash

# sockaddr_un holds 108 bytes; a deep data directory gets its socket in the temp dir instead.
MAX_SOCKET_PATH = 100


class DataLayout:
    """<data>/metadata/{raft,kv}/, <data>/objects/, <data>/temp/, and <data>/run/ for the IPC socket
    and the workers' request counters."""

    __slots__ = (
        "root",
        "raft_dir",
        "kv_dir",
        "objects_dir",
        "temp_dir",
        "run_dir",
        "ipc_socket",
        "secret_file",
        "admin_secret_file",
        "metrics_dir",
    )

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.raft_dir = os.path.join(self.root, "metadata", "raft")
        self.kv_dir = os.path.join(self.root, "metadata", "kv")
        self.objects_dir = os.path.join(self.root, "objects")
        self.temp_dir = os.path.join(self.root, "temp")
        self.run_dir = os.path.join(self.root, "run")
        self.ipc_socket = os.path.join(self.run_dir, "supervisor.sock")
        self.metrics_dir = os.path.join(self.run_dir, "metrics")
        if len(self.ipc_socket.encode()) > MAX_SOCKET_PATH:
            digest = xxhash.xxh64_hexdigest(self.root.encode())
            self.ipc_socket = os.path.join(tempfile.gettempdir(), f"nebulaio-{digest}.sock")
        self.secret_file = os.path.join(self.root, "metadata", "cluster-secret")
        self.admin_secret_file = os.path.join(self.root, "metadata", "admin-secret")

    def create(self) -> None:
        for path in (self.raft_dir, self.kv_dir, self.objects_dir, self.temp_dir, self.run_dir, self.metrics_dir):
            os.makedirs(path, exist_ok=True)
