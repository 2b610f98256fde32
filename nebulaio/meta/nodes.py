"""Cluster membership in the replica: which nodes exist, their roles and addresses.

Membership is metadata like any other: a node registers itself through the log, so every
replica (and every worker, reading LMDB) agrees on who the members are. Liveness is not
stored here: it changes too fast for a log and comes from gossip.

    nodes   node id -> NODE record
"""

from __future__ import annotations

import lmdb

from nebulaio.meta.env import NODES_DB
from nebulaio.meta.records import NODE

NODE_FIELDS = ("id", "role", "raft", "gossip", "admin")


class Nodes:
    """Reads of the membership table, and the node.* commands of the applier."""

    __slots__ = ("_env", "_nodes")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._nodes = env.open_db(NODES_DB, create=False)

    def get(self, node_id: str) -> dict | None:
        with self._env.begin(db=self._nodes) as txn:
            value = txn.get(node_id.encode())
        return None if value is None else NODE.decode_header(value)

    def all(self) -> list[dict]:
        """Every registered node, by id."""
        with self._env.begin(db=self._nodes) as txn:
            return [NODE.decode_header(value) for value in txn.cursor().iternext(keys=False)]

    def handlers(self) -> dict:
        return {"node.register": self.register, "node.remove": self.remove}

    def register(self, batch, command: dict, blob: bytes | None) -> dict:
        """Record a node (again, when its addresses or role changed)."""
        node = {field: str(command["node"][field]) for field in NODE_FIELDS}
        if not node["id"]:
            return {"status": "InvalidRequest"}
        batch.txn.put(node["id"].encode(), NODE.encode(node), db=self._nodes)
        return {"status": "ok"}

    def remove(self, batch, command: dict, blob: bytes | None) -> dict:
        """Forget a node that left the cluster; forgetting one already gone is done too."""
        node_id = command.get("id")
        if not isinstance(node_id, str):
            return {"status": "InvalidRequest"}
        batch.txn.delete(node_id.encode(), db=self._nodes)
        return {"status": "ok"}
