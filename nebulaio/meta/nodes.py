"""Cluster membership in the replica: which nodes exist, their roles and addresses.

Membership is metadata like any other: a node registers itself through the log, so every
replica (and every worker, reading LMDB) agrees on who the members are. Liveness is not
stored here: it changes too fast for a log and comes from gossip.

    nodes   node id -> NODE record

A node being drained carries "draining" (epoch milliseconds the drain began): placement
gives it no new copies and the repair loop moves its files to their other wanted holders.

    node.drain  {"id", "at": epoch ms, "require": [node id, ...]}

marks a registered node draining (NotFound if none), while every node of `require` (the
ones its files move to, at least R) is still registered and not draining itself (else
Conflict): two drains at once can never leave fewer than R nodes to hold the files.
"""

from __future__ import annotations

import lmdb

from nebulaio.meta.env import NODES_DB
from nebulaio.meta.records import NODE

NODE_FIELDS = ("id", "role", "raft", "gossip", "internal")


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
        return {"node.register": self.register, "node.remove": self.remove, "node.drain": self.drain}

    def register(self, batch, command: dict, blob: bytes | None) -> dict:
        """Record a node (again, when its addresses or role changed; a drain goes on)."""
        node = {field: str(command["node"][field]) for field in NODE_FIELDS}
        if not node["id"]:
            return {"status": "InvalidRequest"}
        known = batch.txn.get(node["id"].encode(), db=self._nodes)
        if known is not None and "draining" in (previous := NODE.decode_header(known)):
            node["draining"] = previous["draining"]
        batch.txn.put(node["id"].encode(), NODE.encode(node), db=self._nodes)
        return {"status": "ok"}

    def drain(self, batch, command: dict, blob: bytes | None) -> dict:
        """Mark a node draining; a node already draining keeps the time its drain began."""
        node_id, at, require = command.get("id"), command.get("at"), command.get("require", [])
        if not isinstance(node_id, str) or not isinstance(at, int) or not isinstance(require, list):
            return {"status": "InvalidRequest"}
        known = batch.txn.get(node_id.encode(), db=self._nodes)
        if known is None:
            return {"status": "NotFound"}
        for other in require:
            record = batch.txn.get(str(other).encode(), db=self._nodes)
            if record is None or "draining" in NODE.decode_header(record):
                return {"status": "Conflict", "reason": f"node {other} is gone or being drained meanwhile"}
        node = NODE.decode_header(known)
        node.setdefault("draining", at)
        batch.txn.put(node_id.encode(), NODE.encode(node), db=self._nodes)
        return {"status": "ok", "draining": node["draining"]}

    def remove(self, batch, command: dict, blob: bytes | None) -> dict:
        """Forget a node that left the cluster; forgetting one already gone is done too."""
        node_id = command.get("id")
        if not isinstance(node_id, str):
            return {"status": "InvalidRequest"}
        batch.txn.delete(node_id.encode(), db=self._nodes)
        return {"status": "ok"}
