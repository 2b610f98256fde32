"""Joining, leaving and draining: raft voters added and removed through the log, nodes
forgotten, a node's object files moved to the others before it goes.

    POST   /api/v1/cluster/nodes                {"raftAddress": "HOST:PORT"}  add a voter
    DELETE /api/v1/cluster/nodes/{id}           remove a node (a voter leaves raft first)
    POST   /api/v1/cluster/nodes/{id}/drain     mark a node draining (202, with its progress)
    GET    /api/v1/cluster/nodes/{id}/drain     how far its drain has come
    GET    /api/v1/cluster/scrub                this node's scrub: the pass under way or the last
    POST   /api/v1/cluster/scrub                start a scrub pass on this node now (202)

A new voter is started first with `--join` (it learns the voters through gossip and waits),
and is added only once gossip knows it alive; once added, the leader sends it the log and it
registers itself. A node started alone takes voters the same way: the cluster grows around
it. A storage node needs no call to join: it registers itself. Any voter can be removed
through any node, the raft leader and the node itself included (see `Members.remove`). Root
only: the cluster's shape is not a policy matter.

A draining node is given no new copies, and the repair loops move its files to their other
wanted holders; it holds none once its drain is done, and can then be removed. A drain is
refused while it would leave fewer storage nodes than the copies each object needs.

The scrub (see `nebulaio.cluster.scrub`) runs on each storage node over the files it holds, so
each node reports and starts its own.
"""

from __future__ import annotations

import time

import falcon

# NOTE: the module, not its names: app.py imports this module while it is being built.
import nebulaio.admin.app as admin_app
from nebulaio.cluster.ipc import SupervisorUnavailable
from nebulaio.cluster.placement import STORAGE_ROLES, takes_copies
from nebulaio.engine.members import Members
from nebulaio.engine.objects import ObjectLayer
from nebulaio.util.ids import now_ms
from nebulaio.util.timefmt import iso8601

JOIN_WAIT = 2.0
"""Seconds a new voter has to appear in this worker's gossip view (refreshed every second)."""
JOIN_POLL = 0.25


def _require_root(req) -> None:
    if req.context.principal.kind != "root":
        raise admin_app.ApiError(403, "AccessDenied", "Only the root user changes the cluster's members.")


def _check_address(address: str) -> str:
    host, _, port = address.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise admin_app.ApiError(400, "InvalidArgument", "'raftAddress' must be HOST:PORT.")
    return address


def _registered(layer: ObjectLayer, node_id: str) -> dict:
    node = layer.reader.nodes.get(node_id)
    if node is None:
        raise admin_app.ApiError(404, "NotFound", f"No node {node_id!r} is registered.")
    return node


class ClusterNodes:
    def __init__(self, members: Members):
        self._members = members

    def on_post(self, req, resp):
        _require_root(req)
        address = _check_address(admin_app.read_json(req, {"raftAddress": str})["raftAddress"])
        deadline = time.monotonic() + JOIN_WAIT
        while not self._members.joined(address):
            if time.monotonic() > deadline:
                raise admin_app.ApiError(
                    409,
                    "NotJoined",
                    f"No live node with raft address {address} has joined through gossip; start it with --join"
                    " toward a member (and the cluster secret) first.",
                )
            time.sleep(JOIN_POLL)
        self._members.add_voter(address)
        resp.media = {"raftAddress": address, "voter": True}


class ClusterNode:
    def __init__(self, layer: ObjectLayer, members: Members):
        self._layer = layer
        self._members = members

    def on_delete(self, req, resp, node_id):
        _require_root(req)
        self._members.remove(_registered(self._layer, node_id))
        resp.status = falcon.HTTP_204


class NodeDrain:
    """A node's drain: started by root, its progress readable like the cluster's status."""

    def __init__(self, layer: ObjectLayer, iam, replicas: int):
        self._layer = layer
        self._iam = iam
        self._replicas = replicas

    def on_post(self, req, resp, node_id):
        _require_root(req)
        node = _registered(self._layer, node_id)
        if node["role"] not in STORAGE_ROLES:
            message = f"Node {node_id!r} is a {node['role']} node: it holds no objects to drain."
            raise admin_app.ApiError(409, "NotStorage", message)
        if "draining" not in node:
            others = [other["id"] for other in self._layer.reader.nodes.all() if takes_copies(other)]
            others = [other for other in others if other != node_id]
            if len(others) < self._replicas:
                raise admin_app.ApiError(
                    409,
                    "TooFewNodes",
                    f"Draining {node_id!r} would leave {len(others)} storage node(s) to hold every object's"
                    f" {self._replicas} copies; add storage nodes first.",
                )
            command = {"op": "node.drain", "id": node_id, "at": now_ms(), "require": others}
            self._layer.submit(command, refusals=DRAIN_REFUSALS)
        resp.status = falcon.HTTP_202
        resp.media = self._progress(node_id)

    def on_get(self, req, resp, node_id):
        admin_app.authorize(self._iam, req, "GetClusterStatus", "*")
        _registered(self._layer, node_id)
        resp.media = self._progress(node_id)

    def _progress(self, node_id: str) -> dict:
        node = _registered(self._layer, node_id)
        status = admin_app.supervisor_status(self._layer)
        return drain_progress(node, status["node_id"], status["repair"])


DRAIN_REFUSALS = {
    "NotFound": lambda: admin_app.ApiError(404, "NotFound", "The node was removed meanwhile."),
    "Conflict": lambda: admin_app.ApiError(
        409, "TooFewNodes", "Another node began draining meanwhile; too few storage nodes would be left."
    ),
}


def drain_progress(node: dict, counted_by: str, repair: dict) -> dict:
    """How far a node's drain has come, as the answering node's repair loop last counted it:
    the files (and bytes) the records still name it a holder of, when that count was taken,
    and an estimate of the time left from the last two counts (null until there are two, or
    on a node that runs no repair loop)."""
    since = node.get("draining")
    held_at = repair["held_at"]
    objects, size = repair["held"].get(node["id"], (0, 0)) if held_at is not None else (None, None)
    eta = None
    before = repair["held_before"].get(node["id"], (0, 0))[1] if repair["held_before_at"] is not None else None
    if size and before is not None and before > size:
        rate = (before - size) / max((held_at - repair["held_before_at"]) / 1000, 0.001)
        eta = round(size / rate, 1)
    return {
        "node": node["id"],
        "draining": since is not None,
        "since": None if since is None else iso8601(since),
        "objects": objects,
        "bytes": size,
        "etaSeconds": eta,
        "done": since is not None and held_at is not None and held_at >= since and objects == 0,
        "countedBy": counted_by,
        "countedAt": None if held_at is None else iso8601(held_at),
    }


class ClusterScrub:
    """This node's scrub: its progress (GET), and a pass started now (POST, root only)."""

    def __init__(self, layer: ObjectLayer, iam):
        self._layer = layer
        self._iam = iam

    def on_get(self, req, resp):
        admin_app.authorize(self._iam, req, "GetClusterStatus", "*")
        status = admin_app.supervisor_status(self._layer)
        resp.media = scrub_figures(status["node_id"], status["scrub"])

    def on_post(self, req, resp):
        _require_root(req)
        try:
            answer = self._layer.supervisor.call({"type": "scrub", "action": "start"}, timeout=5.0)
        except SupervisorUnavailable as exc:
            raise admin_app.ApiError(503, "ServiceUnavailable", str(exc)) from None
        if answer.get("status") == "NotStorage":
            raise admin_app.ApiError(409, "NotStorage", "This node holds no objects: it has nothing to scrub.")
        resp.status = falcon.HTTP_202
        # NOTE: the figures as of the request, before the pass could begin (a small one may be
        # over before a second look), so a client can tell when the pass it asked for has ended.
        resp.media = scrub_figures(answer["node_id"], answer["scrub"])


def scrub_figures(node_id: str, scrub: dict) -> dict:
    """A scrub's figures as the Admin API, the CLI and the console show them."""
    started, finished = scrub["last_pass_started"], scrub["last_pass_finished"]
    return {
        "node": node_id,
        "running": scrub["running"],
        "passes": scrub["passes"],
        "files": scrub["files_total"],
        "filesDone": scrub["files_done"],
        "bytes": scrub["bytes_total"],
        "bytesDone": scrub["bytes_done"],
        "unverifiable": scrub["unverifiable"],
        "corrupt": scrub["corrupt"],
        "healed": scrub["healed"],
        "unhealed": scrub["unhealed"],
        "reported": scrub["reported"],
        "lastPassStarted": None if started is None else iso8601(started),
        "lastPassFinished": None if finished is None else iso8601(finished),
        "lastPassSeconds": scrub["last_pass_seconds"],
        "rate": scrub["rate"],
        "intervalSeconds": scrub["interval"],
    }


def add_routes(app: falcon.App, layer: ObjectLayer, members: Members, iam, config: dict) -> None:
    app.add_route("/api/v1/cluster/nodes", ClusterNodes(members))
    app.add_route("/api/v1/cluster/nodes/{node_id}", ClusterNode(layer, members))
    app.add_route("/api/v1/cluster/nodes/{node_id}/drain", NodeDrain(layer, iam, config["replicas"]))
    app.add_route("/api/v1/cluster/scrub", ClusterScrub(layer, iam))
