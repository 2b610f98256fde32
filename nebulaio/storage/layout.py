"""Where things live under the data directory (the layout of the design document)."""

from __future__ import annotations

import os
import secrets
import tempfile

import xxhash

from nebulaio.util import keyfile

NODE_ID_BYTES = 8
# sockaddr_un holds 108 bytes; a deep data directory gets its socket in the temp dir instead.
MAX_SOCKET_PATH = 100


class DataLayout:
    """<data>/metadata/{raft,kv,images}/, <data>/objects/, <data>/temp/, <data>/audit.jsonl, and <data>/run/
    for the IPC socket, the workers' request counters and their count of failed logins."""

    __slots__ = (
        "root",
        "raft_dir",
        "kv_dir",
        "images_dir",
        "objects_dir",
        "temp_dir",
        "run_dir",
        "ipc_socket",
        "read_lease",
        "peers_marker",
        "secret_file",
        "node_id_file",
        "admin_secret_file",
        "root_credentials_file",
        "metrics_dir",
        "login_failures",
        "peer_nonces",
        "audit_log",
    )

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.raft_dir = os.path.join(self.root, "metadata", "raft")
        self.kv_dir = os.path.join(self.root, "metadata", "kv")
        self.images_dir = os.path.join(self.root, "metadata", "images")
        self.objects_dir = os.path.join(self.root, "objects")
        self.temp_dir = os.path.join(self.root, "temp")
        self.run_dir = os.path.join(self.root, "run")
        self.ipc_socket = os.path.join(self.run_dir, "supervisor.sock")
        self.read_lease = os.path.join(self.run_dir, "read-lease")
        """The follower's read lease, shared with the workers (see nebulaio.cluster.lease)."""
        self.peers_marker = os.path.join(self.run_dir, "has-raft-peers")
        """Made by the supervisor once raft has another member; from then on workers fence reads."""
        self.metrics_dir = os.path.join(self.run_dir, "metrics")
        self.login_failures = os.path.join(self.run_dir, "login-failures.sqlite")
        """Failed logins, counted by every worker of the node (see nebulaio.admin.throttle)."""
        self.peer_nonces = os.path.join(self.run_dir, "peer-nonces.sqlite")
        """Nonces of the signed peer requests accepted here (see nebulaio.cluster.signing.ReplayCache)."""
        self.audit_log = os.path.join(self.root, "audit.jsonl")
        """Every change asked of the Admin API on this node (see nebulaio.admin.audit)."""
        if len(self.ipc_socket.encode()) > MAX_SOCKET_PATH:
            digest = xxhash.xxh64_hexdigest(self.root.encode())
            self.ipc_socket = os.path.join(tempfile.gettempdir(), f"nebulaio-{digest}.sock")
        self.secret_file = os.path.join(self.root, "metadata", "cluster-secret")
        self.node_id_file = os.path.join(self.root, "metadata", "node-id")
        self.admin_secret_file = os.path.join(self.root, "metadata", "admin-secret")
        self.root_credentials_file = os.path.join(self.root, "metadata", "root-credentials")

    def create(self) -> None:
        for path in (
            self.raft_dir,
            self.kv_dir,
            self.images_dir,
            self.objects_dir,
            self.temp_dir,
            self.run_dir,
            self.metrics_dir,
        ):
            os.makedirs(path, exist_ok=True)

    def cluster_secret(self, configured: str) -> str:
        """The configured secret, else one generated on first start and kept beside the metadata.

        The supervisor reads (or makes) it before the workers start; they read the same file.
        """
        return configured or keyfile.read_or_create(self.secret_file)

    def admin_secret(self, configured: str) -> str:
        """The Admin API's token signing secret, kept the same way; the launcher makes it."""
        return configured or keyfile.read_or_create(self.admin_secret_file)

    def root_credentials(self, user: str, password: str) -> tuple[str, str, bool]:
        """The configured root pair, else one generated on first start and kept; and whether it
        was generated just now (to be shown once). The launcher makes it."""
        if user:
            return user, password, False
        return keyfile.read_or_create_pair(self.root_credentials_file)

    def node_id(self, configured: str) -> str:
        """The configured node id, else one generated on first start and kept: a restarted
        node rejoins as itself."""
        return configured or keyfile.read_or_create(self.node_id_file, lambda: secrets.token_hex(NODE_ID_BYTES))
