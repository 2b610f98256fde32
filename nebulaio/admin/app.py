"""The Admin API on :9001: JSON (orjson) over Falcon, for curl scripts, the console and `nebulaio admin`.

Every endpoint but the health checks, login, refresh, the OpenAPI document and /metrics takes
`Authorization: Bearer <access token>`. Every failure is `{"error": {"code", "message"}}` with
its HTTP status; no traceback ever reaches a client. `openapi.py` describes every route, and
a test holds the two together.
"""

from __future__ import annotations

import hmac
import logging

import falcon
import falcon.media
import orjson
import psutil

from nebulaio.admin import cluster, metrics, openapi
from nebulaio.admin.tokens import ACCESS, REFRESH, TokenRefused, Tokens
from nebulaio.cluster.gossip import STATES as GOSSIP_STATES
from nebulaio.cluster.ipc import SupervisorUnavailable
from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_bucket_name
from nebulaio.engine.objects import ObjectLayer
from nebulaio.iam.credentials import Credentials
from nebulaio.util import processes
from nebulaio.util.timefmt import iso8601

log = logging.getLogger("nebulaio.admin")

JSON_TYPE = "application/json"
MAX_BODY = 64 * 1024
BEARER = "bearer "
FALCON_CODES = {
    400: "InvalidRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    411: "LengthRequired",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
}


class ApiError(Exception):
    """An Admin API failure: HTTP status, a stable code and a message for people."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error_document(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def read_json(req: falcon.Request, fields: dict[str, type]) -> dict:
    """The request's JSON object, bounded in size, with exactly the expected fields and types."""
    if req.content_length is None:
        raise ApiError(411, "LengthRequired", "The request needs a Content-Length and a JSON body.")
    if req.content_length > MAX_BODY:
        raise ApiError(413, "RequestTooLarge", f"The body may hold at most {MAX_BODY} bytes.")
    try:
        document = orjson.loads(req.bounded_stream.read())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "MalformedJSON", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(document, dict):
        raise ApiError(400, "MalformedJSON", "The body must be a JSON object.")
    for name, kind in fields.items():
        if not isinstance(document.get(name), kind):
            raise ApiError(400, "InvalidArgument", f"{name!r} is required and must be a {kind.__name__}.")
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise ApiError(400, "InvalidArgument", f"Unknown field(s): {', '.join(unknown)}.")
    return document


class Authentication:
    """Falcon middleware: a resource is private unless it says `public = True`."""

    def __init__(self, tokens: Tokens, credentials: Credentials):
        self._tokens = tokens
        self._credentials = credentials

    def process_resource(self, req, resp, resource, params) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        header = req.get_header("Authorization") or ""
        if not header.lower().startswith(BEARER):
            raise ApiError(401, "Unauthorized", "This endpoint needs 'Authorization: Bearer <token>'.")
        try:
            user = self._tokens.verify(header[len(BEARER) :].strip(), ACCESS)
        except TokenRefused as refused:
            raise ApiError(401, refused.code, refused.message) from refused
        if self._credentials.secret_for(user) is None:
            raise ApiError(401, "InvalidToken", "The token's user no longer exists.")
        req.context.user = user


class Live:
    """The worker answers: the process is up."""

    public = True

    def on_get(self, req, resp):
        resp.media = {"status": "ok"}


class Ready:
    """Ready means raft has a leader and this node has applied the committed log."""

    public = True

    def __init__(self, layer: ObjectLayer):
        self._layer = layer

    def on_get(self, req, resp):
        try:
            status = self._layer.status()
        except SupervisorUnavailable as exc:
            resp.status = 503
            resp.media = {"status": "unavailable", "reason": str(exc)}
            return
        ready = bool(status.get("ready")) and (status.get("last_applied") or 0) >= (status.get("commit_index") or 0)
        resp.status = 200 if ready else 503
        states = [member["state"] for member in status["gossip"]["members"]]
        resp.media = {
            "status": "ready" if ready else "not ready",
            "raft": _raft(status),
            "members": {state: states.count(state) for state in GOSSIP_STATES},
        }


class Login:
    """Username and password (the root user's access key and secret) for a token pair."""

    public = True

    def __init__(self, tokens: Tokens, credentials: Credentials):
        self._tokens = tokens
        self._credentials = credentials

    def on_post(self, req, resp):
        document = read_json(req, {"username": str, "password": str})
        secret = self._credentials.secret_for(document["username"])
        # NOTE: compared even for an unknown user, so timing does not tell which users exist.
        matches = hmac.compare_digest((secret or "\0").encode(), document["password"].encode())
        if secret is None or not matches:
            raise ApiError(401, "InvalidCredentials", "The username or password is not correct.")
        resp.media = self._tokens.issue(document["username"])


class Refresh:
    """A refresh token for a new token pair (until it expires or its user logs out)."""

    public = True

    def __init__(self, tokens: Tokens, credentials: Credentials):
        self._tokens = tokens
        self._credentials = credentials

    def on_post(self, req, resp):
        document = read_json(req, {"refreshToken": str})
        try:
            user = self._tokens.verify(document["refreshToken"], REFRESH)
        except TokenRefused as refused:
            raise ApiError(401, refused.code, refused.message) from refused
        if self._credentials.secret_for(user) is None:
            raise ApiError(401, "InvalidToken", "The token's user no longer exists.")
        resp.media = self._tokens.issue(user)


class Logout:
    """Revoke every token issued to the caller so far, on every node."""

    def __init__(self, layer: ObjectLayer):
        self._layer = layer

    def on_post(self, req, resp):
        self._layer.submit({"op": "auth.revoke", "user": req.context.user})
        resp.status = 204


def _bucket_summary(record: dict, usage: dict | None) -> dict:
    usage = usage or {"objects": 0, "bytes": 0}
    return {
        "name": record["name"],
        "created": iso8601(record["created"]),
        "region": record["region"],
        "owner": record["owner"],
        "objects": usage["objects"],
        "size": usage["bytes"],
    }


class Buckets:
    def __init__(self, layer: ObjectLayer, region: str):
        self._layer = layer
        self._region = region

    def on_get(self, req, resp):
        usage = self._layer.bucket_usage()
        resp.media = {
            "buckets": [_bucket_summary(record, usage.get(record["name"])) for record in self._layer.list_buckets()]
        }

    def on_post(self, req, resp):
        name = read_json(req, {"name": str})["name"]
        check_bucket_name(name)
        self._layer.create_bucket(name, req.context.user, self._region)
        resp.status = 201
        resp.location = f"/api/v1/buckets/{name}"
        resp.media = _bucket_summary(self._layer.bucket(name), None)


class Bucket:
    def __init__(self, layer: ObjectLayer):
        self._layer = layer

    def on_get(self, req, resp, name):
        record = self._layer.bucket(name)
        details = _bucket_summary(record, self._layer.bucket_usage().get(name))
        lifecycle = record.get("lifecycle")
        details.update(
            versioning=record.get("versioning") or "Off",
            objectLock=bool(record.get("object_lock")),
            tags=record.get("tagging") or {},
            lifecycleRules=len(lifecycle["rules"]) if lifecycle else 0,
            cors=bool(record.get("cors")),
        )
        resp.media = details

    def on_delete(self, req, resp, name):
        self._layer.bucket(name)
        self._layer.delete_bucket(name)
        resp.status = 204


def _raft(status: dict) -> dict:
    return {
        "state": status.get("state"),
        "leader": status.get("leader"),
        "term": status.get("term"),
        "commitIndex": status.get("commit_index"),
        "lastApplied": status.get("last_applied"),
        "appliedIndex": status.get("applied_index"),
        "ready": bool(status.get("ready")),
    }


def _members(status: dict, registered: list[dict]) -> list[dict]:
    """Every registered node with its role, whether raft reaches it from here (voters only),
    and what gossip says of it: alive, suspect or dead, its capacity and health."""
    connected = {member["address"]: member["connected"] for member in status["members"]}
    gossip = {member["id"]: member for member in status["gossip"]["members"]}
    members = [
        {
            "id": node["id"],
            "role": node["role"],
            "address": node["raft"],
            "self": node["id"] == status["node_id"],
            "connected": connected.get(node["raft"]),
            **_gossip_facts(gossip.get(node["id"])),
        }
        for node in registered
    ]
    known = {node["raft"] for node in registered}
    members += [
        {"id": None, "role": "unknown", "address": address, "self": False, "connected": reachable} | _gossip_facts(None)
        for address, reachable in connected.items()
        if address not in known
    ]
    return members


def _gossip_facts(member: dict | None) -> dict:
    if member is None:
        return {"state": None, "ready": None, "capacity": None}
    return {"state": member["state"], "ready": member.get("ready"), "capacity": member.get("capacity")}


class ClusterStatus:
    def __init__(self, layer: ObjectLayer):
        self._layer = layer
        self._worker = psutil.Process()

    def on_get(self, req, resp):
        try:
            status = self._layer.status(detail=True)
        except SupervisorUnavailable as exc:
            raise ApiError(503, "ServiceUnavailable", str(exc)) from exc
        node = status["node"]
        resp.media = {
            "node": {"id": status["node_id"], "role": status["role"], "state": status["state"]},
            "raft": _raft(status),
            "members": _members(status, self._layer.reader.nodes.all()),
            "gossip": {
                "refused": status["gossip"]["refused"],
                "members": [
                    {"id": m["id"], "role": m.get("role"), "gossip": m["gossip"], "state": m["state"]}
                    for m in status["gossip"]["members"]
                ],
            },
            "processes": {"supervisor": node["supervisor"], "worker": processes.figures(self._worker)},
            "memory": node["memory"],
            "disk": node["disk"],
            "cpus": node["cpus"],
            "load": node["load"],
        }


class Metrics:
    """Prometheus text; open like the health checks, so a scraper needs no token (see docs)."""

    public = True

    def __init__(self, layer: ObjectLayer, metrics_dir: str):
        self._layer = layer
        self._metrics_dir = metrics_dir

    def on_get(self, req, resp):
        try:
            status = self._layer.status()
        except SupervisorUnavailable:
            status = None
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.render(self._metrics_dir, status, self._layer.bucket_usage())


class OpenApi:
    public = True

    def __init__(self):
        self._document = orjson.dumps(openapi.DOCUMENT)

    def on_get(self, req, resp):
        resp.content_type = JSON_TYPE
        resp.data = self._document


def _render(resp: falcon.Response, status: int, code: str, message: str) -> None:
    resp.status = status
    resp.content_type = JSON_TYPE
    resp.data = orjson.dumps(_error_document(code, message))


def _api_error(req, resp, error: ApiError, params) -> None:
    _render(resp, error.status, error.code, error.message)


def _engine_error(req, resp, error: S3Error, params) -> None:
    _render(resp, error.status, error.code, error.message)


def _http_error(req, resp, error: falcon.HTTPError, params) -> None:
    code = FALCON_CODES.get(error.status_code, "InvalidRequest")
    if error.headers:
        resp.set_headers(error.headers)
    _render(resp, error.status_code, code, error.description or error.title)


def _unexpected(req, resp, error: Exception, params) -> None:
    log.exception("unhandled error in %s %s", req.method, req.path)
    _render(resp, 500, "InternalError", "We encountered an internal error. Please try again.")


def create(layer: ObjectLayer, credentials: Credentials, config: dict, metrics_dir: str) -> falcon.App:
    tokens = Tokens(
        config["admin_secret"], config["admin_token_ttl"], config["admin_refresh_ttl"], layer.reader.token_generation
    )
    app = falcon.App(media_type=JSON_TYPE, middleware=[Authentication(tokens, credentials)])
    handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.req_options.media_handlers[JSON_TYPE] = handler
    app.resp_options.media_handlers[JSON_TYPE] = handler
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(S3Error, _engine_error)
    app.add_error_handler(ApiError, _api_error)
    app.add_route("/health/live", Live())
    app.add_route("/health/ready", Ready(layer))
    app.add_route("/metrics", Metrics(layer, metrics_dir))
    app.add_route("/api/v1/openapi.json", OpenApi())
    app.add_route("/api/v1/auth/login", Login(tokens, credentials))
    app.add_route("/api/v1/auth/refresh", Refresh(tokens, credentials))
    app.add_route("/api/v1/auth/logout", Logout(layer))
    app.add_route("/api/v1/buckets", Buckets(layer, config["region"]))
    app.add_route("/api/v1/buckets/{name}", Bucket(layer))
    app.add_route("/api/v1/cluster/status", ClusterStatus(layer))
    cluster.add_routes(app, layer, credentials, config)
    return app
