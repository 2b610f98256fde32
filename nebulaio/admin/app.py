"""The Admin API on :9001 (JSON). For now: liveness and readiness."""

from __future__ import annotations

import falcon
import orjson

from nebulaio.cluster.ipc import SupervisorUnavailable

JSON_TYPE = "application/json"


def _json(resp: falcon.Response, status: int, document: dict) -> None:
    resp.status = status
    resp.content_type = JSON_TYPE
    resp.data = orjson.dumps(document)


class Live:
    """The worker answers: the process is up."""

    def on_get(self, req, resp):
        _json(resp, 200, {"status": "ok"})


class Ready:
    """Ready means raft has a leader and this node has applied the committed log."""

    def __init__(self, layer):
        self._layer = layer

    def on_get(self, req, resp):
        try:
            status = self._layer.status()
        except SupervisorUnavailable as exc:
            _json(resp, 503, {"status": "unavailable", "reason": str(exc)})
            return
        ready = bool(status.get("ready")) and (status.get("last_applied") or 0) >= (status.get("commit_index") or 0)
        _json(resp, 200 if ready else 503, {"status": "ready" if ready else "not ready", "raft": status})


def _not_found(req, resp, ex, params):
    _json(
        resp,
        ex.status_code if hasattr(ex, "status_code") else 404,
        {"error": "NotFound", "message": "No such endpoint."},
    )


def create(layer) -> falcon.App:
    app = falcon.App(media_type=JSON_TYPE)
    app.add_route("/health/live", Live())
    app.add_route("/health/ready", Ready(layer))
    return app
