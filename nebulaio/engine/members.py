"""The cluster's members joining and leaving: raft voters added and removed, nodes forgotten.

Membership is a raft matter (PySyncObj's dynamic membership, entries of the log) followed
by metadata (`node.register` / `node.remove`). A voter leaves raft before it is forgotten;
a leader hands its leadership to another voter first (the supervisor sees to that).
"""

from __future__ import annotations

from nebulaio.cluster.gossip import ALIVE
from nebulaio.cluster.ipc import SupervisorUnavailable
from nebulaio.cluster.peers import PeerClient, PeerError
from nebulaio.cluster.view import MemberView
from nebulaio.engine.errors import S3Error
from nebulaio.engine.objects import COMMIT_TIMEOUT, ObjectLayer

STORAGE_ROLE = "storage"
"""The role of the nodes that follow the log without voting."""


class Members:
    """Adds and removes the members of the cluster this node (`node_id`) belongs to."""

    __slots__ = ("_layer", "_node_id", "_peers", "_view")

    def __init__(self, layer: ObjectLayer, node_id: str, peers: PeerClient, view: MemberView):
        self._layer = layer
        self._node_id = node_id
        self._peers = peers
        self._view = view

    def registered(self, node_id: str) -> dict | None:
        """The node's record in this replica, None when it is not registered."""
        return self._layer.reader.nodes.get(node_id)

    def self_registered(self) -> bool:
        """Whether this node's own record is in its replica: until then a cluster has no copy
        of it, so no write may choose it as a holder."""
        return self.registered(self._node_id) is not None

    def joined(self, raft_address: str) -> bool:
        """Whether gossip knows a live node that gives `raft_address` as its own: one started
        with --join, waiting to be added. A voter that never answers must not be added: on a
        lone node (one voter becoming two) no entry could commit again."""
        return any(
            member.get("raft") == raft_address and member.get("state") == ALIVE
            for member in self._view.members().values()
        )

    def add_voter(self, raft_address: str) -> None:
        """Add a raft voter (started with --join); returns once the change is applied here."""
        self._change("add", raft_address)

    def remove(self, node: dict) -> None:
        """Take a registered node out of the cluster; returns once every step is applied (here,
        or on the voter the removal was handed to).

        A voter leaves raft first, then every replica forgets the node. A voter never carries
        out its own removal: once out of raft it receives no more of the log, so it would never
        see its removal applied, nor could it commit `node.remove`. It hands the removal to
        another voter, which carries it out whole and answers when done.

        Raises:
            S3Error: OperationAborted when another membership change is in progress;
                ServiceUnavailable without a leader, when no voter could take the leadership
                over from a leader to remove, or when no other voter could be reached.
        """
        if node["role"] != STORAGE_ROLE:
            if node["id"] == self._node_id:
                self._hand_to_another_voter(node["id"])
                return
            self._change("remove", node["raft"])
        self._layer.submit({"op": "node.remove", "id": node["id"]})

    def _change(self, action: str, raft_address: str) -> None:
        try:
            result = self._layer.supervisor.call(
                {"type": "membership", "action": action, "raft": raft_address}, timeout=COMMIT_TIMEOUT
            )
        except SupervisorUnavailable as exc:
            raise S3Error("ServiceUnavailable", str(exc)) from exc
        status = result.get("status")
        if status != "ok":
            code = "OperationAborted" if status == "Conflict" else "ServiceUnavailable"
            raise S3Error(code, f"The raft membership change failed: {result.get('reason')}.")

    def _hand_to_another_voter(self, node_id: str) -> None:
        """Have the first other voter that answers carry out this node's removal."""
        dead = self._view.dead()
        voters = [
            node
            for node in self._layer.reader.nodes.all()
            if node["role"] != STORAGE_ROLE and node["id"] != self._node_id and node["id"] not in dead
        ]
        unreachable = []
        for voter in voters:
            try:
                self._peers.remove_node(voter["internal"], node_id)
                return
            except PeerError as exc:
                if exc.status is not None:
                    code = "OperationAborted" if exc.status == 409 else "ServiceUnavailable"
                    raise S3Error(code, f"Voter {voter['id']} could not remove this node: {exc}.") from exc
                unreachable.append(voter["id"])
        raise S3Error(
            "ServiceUnavailable",
            f"No other voter could be reached to remove this node (tried: {', '.join(unreachable) or 'none'}).",
        )
