"""Where things live under the data directory (the layout of the design document)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable

import xxhash

NODE_ID_BYTES = 8
# sockaddr_un holds 108 bytes; a deep data directory gets its socket in the temp dir instead.
MAX_SOCKET_PATH = 100


class DataLayout:
    """<data>/metadata/{raft,kv}/, <data>/objects/, <data>/temp/, and <data>/run/ for the IPC socket."""

    __slots__ = (
        "root",
        "raft_dir",
        "kv_dir",
        "objects_dir",
        "temp_dir",
        "run_dir",
        "ipc_socket",
        "secret_file",
        "node_id_file",
    )

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.raft_dir = os.path.join(self.root, "metadata", "raft")
        self.kv_dir = os.path.join(self.root, "metadata", "kv")
        self.objects_dir = os.path.join(self.root, "objects")
        self.temp_dir = os.path.join(self.root, "temp")
        self.run_dir = os.path.join(self.root, "run")
        self.ipc_socket = os.path.join(self.run_dir, "supervisor.sock")
        if len(self.ipc_socket.encode()) > MAX_SOCKET_PATH:
            digest = xxhash.xxh64_hexdigest(self.root.encode())
            self.ipc_socket = os.path.join(tempfile.gettempdir(), f"nebulaio-{digest}.sock")
        self.secret_file = os.path.join(self.root, "metadata", "cluster-secret")
        self.node_id_file = os.path.join(self.root, "metadata", "node-id")

    def create(self) -> None:
        for path in (self.raft_dir, self.kv_dir, self.objects_dir, self.temp_dir, self.run_dir):
            os.makedirs(path, exist_ok=True)

    def cluster_secret(self, configured: str) -> str:
        """The configured secret, else one generated on first start and kept beside the metadata.

        The supervisor reads (or makes) it before the workers start; they read the same file.
        """
        return kept_value(configured, self.secret_file, lambda: secrets.token_urlsafe(32))

    def node_id(self, configured: str) -> str:
        """The configured node id, else one generated on first start and kept: a restarted
        node rejoins as itself."""
        return kept_value(configured, self.node_id_file, lambda: secrets.token_hex(NODE_ID_BYTES))


def kept_value(configured: str, path: str, make: Callable[[], str]) -> str:
    """The configured value, else the one generated on first start and kept (0600) at `path`."""
    if configured:
        return configured
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except FileNotFoundError:
        value = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        return value
