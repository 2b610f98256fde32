"""Joining and leaving: raft voters added and removed through the log, nodes forgotten.

    POST   /api/v1/cluster/nodes          {"raftAddress": "HOST:PORT"}  add a voter
    DELETE /api/v1/cluster/nodes/{id}     remove a node (a voter leaves raft first)

A new voter is started first with `--join` (it learns the voters through gossip and waits);
once added, the leader sends it the log and it registers itself. A storage node needs no
call to join: it registers itself. Any voter can be removed through any node, the raft
leader and the node itself included (see `Members.remove`). Root only: the cluster's shape
is not a policy matter.
"""

from __future__ import annotations

import falcon

# NOTE: the module, not its names: app.py imports this module while it is being built.
import nebulaio.admin.app as admin_app
from nebulaio import config as configuration
from nebulaio.engine.members import Members
from nebulaio.engine.objects import ObjectLayer


def _require_root(req) -> None:
    if req.context.principal.kind != "root":
        raise admin_app.ApiError(403, "AccessDenied", "Only the root user changes the cluster's members.")


def _require_cluster(config: dict) -> None:
    if not configuration.is_cluster(config):
        raise admin_app.ApiError(
            409, "NotClustered", "This node runs alone; start a cluster with --raft-peers and a cluster secret."
        )


def _check_address(address: str) -> str:
    host, _, port = address.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise admin_app.ApiError(400, "InvalidArgument", "'raftAddress' must be HOST:PORT.")
    return address


class ClusterNodes:
    def __init__(self, members: Members | None, config: dict):
        self._members = members
        self._config = config

    def on_post(self, req, resp):
        _require_root(req)
        address = _check_address(admin_app.read_json(req, {"raftAddress": str})["raftAddress"])
        _require_cluster(self._config)
        self._members.add_voter(address)
        resp.media = {"raftAddress": address, "voter": True}


class ClusterNode:
    def __init__(self, layer: ObjectLayer, members: Members | None, config: dict):
        self._layer = layer
        self._members = members
        self._config = config

    def on_delete(self, req, resp, node_id):
        _require_root(req)
        node = self._layer.reader.nodes.get(node_id)
        if node is None:
            raise admin_app.ApiError(404, "NotFound", f"No node {node_id!r} is registered.")
        _require_cluster(self._config)
        self._members.remove(node)
        resp.status = falcon.HTTP_204


def add_routes(app: falcon.App, layer: ObjectLayer, members: Members | None, config: dict) -> None:
    """`members` is None on a lone node, where these calls answer NotClustered."""
    app.add_route("/api/v1/cluster/nodes", ClusterNodes(members, config))
    app.add_route("/api/v1/cluster/nodes/{node_id}", ClusterNode(layer, members, config))
