"""The Admin API on :9001: JSON (orjson) over Falcon, for curl scripts, the console and `nebulaio admin`.

Every endpoint but the health checks, login, refresh, the OpenAPI document and /metrics takes
`Authorization: Bearer <access token>`. Every failure is `{"error": {"code", "message"}}` with
its HTTP status; no traceback ever reaches a client. `openapi.py` describes every route, and
a test holds the two together.

The root user may do everything. An IAM user (logged in with an access key and its secret)
may do what its identity policies allow: each endpoint is an action `admin:<Name>` on the
ARN of what it addresses (see ACTIONS in the docs), except that a user may always read
itself, list its own keys, create them and enable, disable or delete them.
"""

from __future__ import annotations

import hmac
import logging

import falcon
import falcon.media
import orjson
import psutil

from nebulaio.admin import cluster, kms, metrics, notify, openapi
from nebulaio.admin.audit import CHANGES, AuditLog, BadCursor
from nebulaio.admin.throttle import LoginThrottle
from nebulaio.admin.tokens import ACCESS, REFRESH, TokenRefused, Tokens
from nebulaio.cluster.ipc import SupervisorUnavailable
from nebulaio.engine.errors import S3Error
from nebulaio.engine.members import Members
from nebulaio.engine.names import check_bucket_name
from nebulaio.engine.objects import ObjectLayer
from nebulaio.iam.policy import ACCOUNT_ID, PolicyError, Principal, PublicPolicyBlocked, bucket_policy_setting
from nebulaio.iam.service import IamError, IamService
from nebulaio.util import clientaddress, processes
from nebulaio.util.clientaddress import TrustedProxies
from nebulaio.util.ids import request_id
from nebulaio.util.jsonerror import JsonError as ApiError
from nebulaio.util.jsonerror import error_body
from nebulaio.util.purposekeys import admin_secrets
from nebulaio.util.timefmt import iso8601

log = logging.getLogger("nebulaio.admin")

JSON_TYPE = "application/json"
MAX_BODY = 64 * 1024
BEARER = "bearer "
MAX_AUDIT_PAGE = 1000
IAM_ARN = f"arn:aws:iam::{ACCOUNT_ID}:"
S3_ARN = "arn:aws:s3:::"
FALCON_CODES = {
    400: "InvalidRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    411: "LengthRequired",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
}


def read_body(req: falcon.Request) -> bytes:
    """The request's body, which must declare its length and be at most MAX_BODY bytes."""
    if req.content_length is None:
        raise ApiError(411, "LengthRequired", "The request needs a Content-Length and a JSON body.")
    if req.content_length > MAX_BODY:
        raise ApiError(413, "RequestTooLarge", f"The body may hold at most {MAX_BODY} bytes.")
    return req.bounded_stream.read()


def read_json(req: falcon.Request, required: dict[str, type], optional: dict[str, type] | None = None) -> dict:
    """The request's JSON object, bounded in size, with exactly the expected fields and types.

    A request whose fields are all optional may leave the body out.
    """
    optional = optional or {}
    if not required and not req.content_length:
        return {}
    try:
        document = orjson.loads(read_body(req))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "MalformedJSON", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(document, dict):
        raise ApiError(400, "MalformedJSON", "The body must be a JSON object.")
    for name, kind in required.items():
        if not isinstance(document.get(name), kind):
            raise ApiError(400, "InvalidArgument", f"{name!r} is required and must be a {kind.__name__}.")
    for name, kind in optional.items():
        if name in document and not isinstance(document[name], kind):
            raise ApiError(400, "InvalidArgument", f"{name!r} must be a {kind.__name__}.")
    unknown = sorted(set(document) - set(required) - set(optional))
    if unknown:
        raise ApiError(400, "InvalidArgument", f"Unknown field(s): {', '.join(unknown)}.")
    return document


def token_principal(iam: IamService, user: str, access_key: str | None) -> Principal:
    """Whom a verified token stands for, while it still may: the root user, or a user whose
    access key (the one it logged in with) is still there and enabled, as is the user."""
    principal = iam.principal_for(user if access_key is None else access_key)
    if principal.name != user or (access_key is None) != (principal.kind == "root"):
        raise ApiError(401, "InvalidToken", "The token's user or access key no longer exists or is disabled.")
    return principal


def authorize(iam: IamService, req: falcon.Request, action: str, resource: str, owner: str | None = None) -> None:
    """Let the caller do `admin:<action>` on `resource`, or answer 403. A user may always do
    an action on its own record or keys (`owner` names the user they belong to)."""
    principal = req.context.principal
    if principal.kind == "user" and req.context.user == owner:
        return
    if not iam.identity_allows(principal, "admin:" + action, resource):
        raise ApiError(403, "AccessDenied", f"{principal.name} is not allowed admin:{action} on {resource}.")


def _iam_arn(kind: str, name: str) -> str:
    return f"{IAM_ARN}{kind}/{name}"


class ClientAddress:
    """Falcon middleware: `req.context.address` is where the request came from (the browser's
    address for a login the console passes on, when its seal is right; the client a trusted
    proxy names)."""

    def __init__(self, admin_secrets: list[str], proxies: TrustedProxies):
        self._admin_secrets = admin_secrets
        self._proxies = proxies

    def process_request(self, req, resp) -> None:
        forwarded = clientaddress.opened(self._admin_secrets, req.get_header(clientaddress.HEADER))
        req.context.address = forwarded or self._proxies.client_address(req.env)


class Auditing:
    """Falcon middleware: every request that may change something goes to the audit log, with
    its outcome, before its answer leaves."""

    def __init__(self, audit: AuditLog):
        self._audit = audit

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if req.method not in CHANGES:
            return
        self._audit.record(
            getattr(req.context, "user", None),
            req.context.address,
            req.method,
            req.path,
            resp.status_code,
            resp.context.get("error"),
        )


class Authentication:
    """Falcon middleware: a resource is private unless it says `public = True`."""

    def __init__(self, tokens: Tokens, iam: IamService):
        self._tokens = tokens
        self._iam = iam

    def process_resource(self, req, resp, resource, params) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        header = req.get_header("Authorization") or ""
        if not header.lower().startswith(BEARER):
            raise ApiError(401, "Unauthorized", "This endpoint needs 'Authorization: Bearer <token>'.")
        try:
            user, access_key = self._tokens.verify(header[len(BEARER) :].strip(), ACCESS)
        except TokenRefused as refused:
            raise ApiError(401, refused.code, refused.message) from refused
        req.context.principal = token_principal(self._iam, user, access_key)
        req.context.user = user


class Live:
    """The worker answers: the process is up."""

    public = True

    def on_get(self, req, resp):
        resp.media = {"status": "ok"}


class Ready:
    """Ready means raft has a leader, this node has applied the committed log, and its own
    registration is among what it applied: a write through a ready node of a new cluster finds
    a holder, where it was refused 503 ("No storage node has joined") until registrations landed."""

    public = True

    def __init__(self, layer: ObjectLayer, members: Members):
        self._layer = layer
        self._members = members

    def on_get(self, req, resp):
        try:
            status = self._layer.status()
        except SupervisorUnavailable as exc:
            resp.status = 503
            resp.media = {"status": "unavailable", "reason": str(exc)}
            return
        ready = (
            bool(status.get("ready"))
            and (status.get("last_applied") or 0) >= (status.get("commit_index") or 0)
            and self._members.self_registered()
        )
        resp.status = 200 if ready else 503
        resp.media = {
            "status": "ready" if ready else "not ready",
            "raft": _raft(status),
            "members": metrics.member_states(status),
        }


class Login:
    """Username and password (the root user's, or an IAM user's access key and secret key)
    for a token pair; refused for a while after too many failures from the address or for the user."""

    public = True

    def __init__(self, tokens: Tokens, iam: IamService, throttle: LoginThrottle):
        self._tokens = tokens
        self._iam = iam
        self._throttle = throttle

    def on_post(self, req, resp):
        document = read_json(req, {"username": str, "password": str})
        access_key = document["username"]
        req.context.user = access_key  # who tried, for the audit log
        wait = self._throttle.retry_after(req.context.address, access_key)
        if wait:
            raise ApiError(
                429,
                "TooManyAttempts",
                f"Too many failed logins from this address or for this user; try again in {wait} s.",
                {"Retry-After": str(wait)},
            )
        secret = self._iam.secret_for(access_key)
        # NOTE: compared even for an unknown user, so timing does not tell which users exist.
        matches = hmac.compare_digest((secret or "\0").encode(), document["password"].encode())
        if secret is None or not matches:
            self._throttle.failed(req.context.address, access_key)
            raise ApiError(401, "InvalidCredentials", "The username or password is not correct.")
        principal = self._iam.principal_for(access_key)
        resp.media = self._tokens.issue(principal.name, None if principal.kind == "root" else access_key)


class Refresh:
    """A refresh token for a new token pair (until it expires, its user logs out, or its user
    or access key is disabled or deleted)."""

    public = True

    def __init__(self, tokens: Tokens, iam: IamService):
        self._tokens = tokens
        self._iam = iam

    def on_post(self, req, resp):
        document = read_json(req, {"refreshToken": str})
        try:
            user, access_key = self._tokens.verify(document["refreshToken"], REFRESH)
        except TokenRefused as refused:
            raise ApiError(401, refused.code, refused.message) from refused
        req.context.user = user
        token_principal(self._iam, user, access_key)
        resp.media = self._tokens.issue(user, access_key)


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
    def __init__(self, layer: ObjectLayer, iam: IamService, region: str):
        self._layer = layer
        self._iam = iam
        self._region = region

    def on_get(self, req, resp):
        authorize(self._iam, req, "ListBuckets", S3_ARN + "*")
        usage = self._layer.bucket_usage()
        resp.media = {
            "buckets": [_bucket_summary(record, usage.get(record["name"])) for record in self._layer.list_buckets()]
        }

    def on_post(self, req, resp):
        name = read_json(req, {"name": str})["name"]
        check_bucket_name(name)
        authorize(self._iam, req, "CreateBucket", S3_ARN + name)
        self._layer.create_bucket(name, req.context.user, self._region)
        resp.status = 201
        resp.location = f"/api/v1/buckets/{name}"
        resp.media = _bucket_summary(self._layer.bucket(name), None)


class Bucket:
    def __init__(self, layer: ObjectLayer, iam: IamService):
        self._layer = layer
        self._iam = iam

    def on_get(self, req, resp, name):
        authorize(self._iam, req, "GetBucket", S3_ARN + name)
        record = self._layer.bucket(name)
        details = _bucket_summary(record, self._layer.bucket_usage().get(name))
        lifecycle = record.get("lifecycle")
        details.update(
            versioning=record.get("versioning") or "Off",
            objectLock=bool(record.get("object_lock")),
            tags=record.get("tagging") or {},
            lifecycleRules=len(lifecycle["rules"]) if lifecycle else 0,
            cors=bool(record.get("cors")),
            policy=record.get("policy") is not None,
        )
        resp.media = details

    def on_delete(self, req, resp, name):
        authorize(self._iam, req, "DeleteBucket", S3_ARN + name)
        self._layer.bucket(name)
        self._layer.delete_bucket(name)
        resp.status = 204


class BucketPolicy:
    """A bucket's policy, validated as S3's PutBucketPolicy validates it (the same setting)."""

    def __init__(self, layer: ObjectLayer, iam: IamService):
        self._layer = layer
        self._iam = iam

    def on_get(self, req, resp, name):
        authorize(self._iam, req, "GetBucketPolicy", S3_ARN + name)
        stored = self._layer.bucket(name).get("policy")
        if stored is None:
            raise S3Error("NoSuchBucketPolicy")
        resp.content_type = JSON_TYPE
        resp.data = stored["document"].encode()

    def on_put(self, req, resp, name):
        authorize(self._iam, req, "PutBucketPolicy", S3_ARN + name)
        bucket = self._layer.bucket(name)
        try:
            setting = bucket_policy_setting(read_body(req), bucket, request_id())
        except PolicyError as exc:
            raise S3Error("MalformedPolicy", str(exc)) from None
        except PublicPolicyBlocked:
            raise S3Error("AccessDenied", "The bucket's Block Public Access refuses public policies.") from None
        self._layer.configure_bucket(name, "policy", setting)
        resp.status = 204

    def on_delete(self, req, resp, name):
        authorize(self._iam, req, "DeleteBucketPolicy", S3_ARN + name)
        self._layer.configure_bucket(name, "policy", None)
        resp.status = 204


# -- identities -----------------------------------------------------------------------------


def _dated(record: dict, *fields: str) -> dict:
    """A record as the API shows it: times in ISO 8601 instead of epoch milliseconds."""
    for field in fields:
        record[field] = iso8601(record[field])
    return record


def _policy_view(record: dict) -> dict:
    record["document"] = orjson.loads(record["document"])
    return _dated(record, "created", "updated")


class Users:
    def __init__(self, iam: IamService):
        self._iam = iam

    def on_get(self, req, resp):
        authorize(self._iam, req, "ListUsers", _iam_arn("user", "*"))
        resp.media = {"users": [_dated(user, "created") for user in self._iam.list_users()]}

    def on_post(self, req, resp):
        name = read_json(req, {"name": str})["name"]
        authorize(self._iam, req, "CreateUser", _iam_arn("user", name))
        resp.status = 201
        resp.location = f"/api/v1/users/{name}"
        resp.media = _dated(self._iam.create_user(name), "created")


class User:
    def __init__(self, iam: IamService):
        self._iam = iam

    def on_get(self, req, resp, name):
        authorize(self._iam, req, "GetUser", _iam_arn("user", name), owner=name)
        resp.media = _dated(self._iam.get_user(name), "created")

    def on_patch(self, req, resp, name):
        """Disable a user (every key at once, and every Admin API token issued to it) or enable it."""
        enabled = read_json(req, {"enabled": bool})["enabled"]
        authorize(self._iam, req, "UpdateUser", _iam_arn("user", name))
        self._iam.set_user_enabled(name, enabled)
        resp.media = _dated(self._iam.get_user(name), "created")

    def on_delete(self, req, resp, name):
        authorize(self._iam, req, "DeleteUser", _iam_arn("user", name))
        self._iam.delete_user(name)
        resp.status = 204


class UserKeys:
    def __init__(self, iam: IamService):
        self._iam = iam

    def on_get(self, req, resp, name):
        authorize(self._iam, req, "ListAccessKeys", _iam_arn("user", name), owner=name)
        resp.media = {"accessKeys": [_dated(key, "created") for key in self._iam.list_access_keys(name)]}

    def on_post(self, req, resp, name):
        """A new key pair; the only answer that ever shows its secret. Both given: an import."""
        pair = read_json(req, {}, {"accessKey": str, "secretKey": str})
        authorize(self._iam, req, "CreateAccessKey", _iam_arn("user", name), owner=name)
        resp.status = 201
        resp.media = self._iam.create_access_key(name, pair.get("accessKey"), pair.get("secretKey"))


class AccessKey:
    def __init__(self, iam: IamService):
        self._iam = iam

    def _authorize(self, req, action: str, access_key: str) -> None:
        user = self._iam.get_access_key(access_key)["user"]
        authorize(self._iam, req, action, _iam_arn("user", user), owner=user)

    def on_patch(self, req, resp, access_key):
        enabled = read_json(req, {"enabled": bool})["enabled"]
        self._authorize(req, "UpdateAccessKey", access_key)
        self._iam.set_access_key_enabled(access_key, enabled)
        resp.media = _dated(self._iam.get_access_key(access_key), "created")

    def on_delete(self, req, resp, access_key):
        self._authorize(req, "DeleteAccessKey", access_key)
        self._iam.delete_access_key(access_key)
        resp.status = 204


class Groups:
    def __init__(self, iam: IamService):
        self._iam = iam

    def on_get(self, req, resp):
        authorize(self._iam, req, "ListGroups", _iam_arn("group", "*"))
        resp.media = {"groups": [_dated(group, "created") for group in self._iam.list_groups()]}

    def on_post(self, req, resp):
        name = read_json(req, {"name": str})["name"]
        authorize(self._iam, req, "CreateGroup", _iam_arn("group", name))
        resp.status = 201
        resp.location = f"/api/v1/groups/{name}"
        resp.media = _dated(self._iam.create_group(name), "created")


class Group:
    def __init__(self, iam: IamService):
        self._iam = iam

    def on_get(self, req, resp, name):
        authorize(self._iam, req, "GetGroup", _iam_arn("group", name))
        resp.media = _dated(self._iam.get_group(name), "created")

    def on_delete(self, req, resp, name):
        authorize(self._iam, req, "DeleteGroup", _iam_arn("group", name))
        self._iam.delete_group(name)
        resp.status = 204


class GroupMember:
    def __init__(self, iam: IamService):
        self._iam = iam

    def on_put(self, req, resp, name, user):
        authorize(self._iam, req, "AddUserToGroup", _iam_arn("group", name))
        self._iam.add_user_to_group(name, user)
        resp.status = 204

    def on_delete(self, req, resp, name, user):
        authorize(self._iam, req, "RemoveUserFromGroup", _iam_arn("group", name))
        self._iam.remove_user_from_group(name, user)
        resp.status = 204


class Policies:
    def __init__(self, iam: IamService):
        self._iam = iam

    def on_get(self, req, resp):
        authorize(self._iam, req, "ListPolicies", _iam_arn("policy", "*"))
        resp.media = {"policies": [_policy_view(policy) for policy in self._iam.list_policies()]}


class ManagedPolicy:
    """A managed policy; PUT takes the policy document itself as the body."""

    def __init__(self, iam: IamService):
        self._iam = iam

    def on_get(self, req, resp, name):
        authorize(self._iam, req, "GetPolicy", _iam_arn("policy", name))
        resp.media = _policy_view(self._iam.get_policy(name))

    def on_put(self, req, resp, name):
        authorize(self._iam, req, "PutPolicy", _iam_arn("policy", name))
        resp.media = _policy_view(self._iam.put_policy(name, read_body(req)))

    def on_delete(self, req, resp, name):
        authorize(self._iam, req, "DeletePolicy", _iam_arn("policy", name))
        self._iam.delete_policy(name)
        resp.status = 204


class PolicyAttachment:
    """POST {"user"} or {"group"}: attach (or detach) the policy; authorized on that holder, as IAM does."""

    def __init__(self, iam: IamService, attach: bool):
        self._iam = iam
        self._change = iam.attach_policy if attach else iam.detach_policy
        self._action = "AttachPolicy" if attach else "DetachPolicy"

    def on_post(self, req, resp, name):
        holder = read_json(req, {}, {"user": str, "group": str})
        kind = "user" if "user" in holder else "group"
        authorize(self._iam, req, self._action, _iam_arn(kind, holder.get(kind, "")))
        self._change(name, holder.get("user"), holder.get("group"))
        resp.status = 204


def _raft(status: dict) -> dict:
    return {
        "state": status.get("state"),
        "leader": status.get("leader"),
        "term": status.get("term"),
        "commitIndex": status.get("commit_index"),
        "lastApplied": status.get("last_applied"),
        "appliedIndex": status.get("applied_index"),
        "readRounds": status.get("read_rounds", 0),
        "preVoteRounds": status.get("pre_vote_rounds", 0),
        "readLeasesGranted": status.get("read_leases_granted", 0),
        "readLeaseHeld": bool(status.get("read_lease_held")),
        "ready": bool(status.get("ready")),
    }


def _members(status: dict, registered: list[dict]) -> list[dict]:
    """Every registered node with its role, whether raft reaches it from here (voters only),
    and what gossip says of it: alive, suspect or dead, its health, disk, memory and raft role."""
    connected = {member["address"]: member["connected"] for member in status["members"]}
    gossip = {member["id"]: member for member in status["gossip"]["members"]}
    members = [
        {
            "id": node["id"],
            "role": node["role"],
            "address": node["raft"],
            "self": node["id"] == status["node_id"],
            "connected": connected.get(node["raft"]),
            "draining": "draining" in node,
            **_gossip_facts(gossip.get(node["id"])),
        }
        for node in registered
    ]
    known = {node["raft"] for node in registered}
    members += [
        {"id": None, "role": "unknown", "address": address, "self": False, "connected": reachable, "draining": False}
        | _gossip_facts(None)
        for address, reachable in connected.items()
        if address not in known
    ]
    return members


GOSSIP_FACTS = (
    ("state", "state"),
    ("ready", "ready"),
    ("capacity", "capacity"),
    ("memory", "memory"),
    ("raft_state", "raftState"),
    ("raft_term", "term"),
    ("commit_index", "commitIndex"),
)
"""What gossip says of a member (its own last word on itself), by field and the API's name."""


def _gossip_facts(member: dict | None) -> dict:
    """None for each fact of a member gossip has not heard of (or that runs an older version)."""
    member = member or {}
    return {name: member.get(field) for field, name in GOSSIP_FACTS}


def supervisor_status(layer: ObjectLayer, detail: bool = False) -> dict:
    """The supervisor's status, or 503 when it does not answer."""
    try:
        return layer.status(detail=detail)
    except SupervisorUnavailable as exc:
        raise ApiError(503, "ServiceUnavailable", str(exc)) from exc


class ClusterStatus:
    def __init__(self, layer: ObjectLayer, iam: IamService):
        self._layer = layer
        self._iam = iam
        self._worker = psutil.Process()

    def on_get(self, req, resp):
        authorize(self._iam, req, "GetClusterStatus", "*")
        status = supervisor_status(self._layer, detail=True)
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


class ClusterRepair:
    """This node's repair loop: every node restores and gives up its own copies, so each
    reports its own figures."""

    def __init__(self, layer: ObjectLayer, iam: IamService):
        self._layer = layer
        self._iam = iam

    def on_get(self, req, resp):
        authorize(self._iam, req, "GetClusterStatus", "*")
        status = supervisor_status(self._layer)
        repair = status["repair"]
        finished = repair["last_pass_finished"]
        cycle_files = repair["cycle_files"]
        resp.media = {
            "node": status["node_id"],
            "running": repair["running"],
            "passes": repair["passes"],
            "cycles": repair["cycles"],
            "checked": repair["checked"],
            "underReplicated": repair["under_replicated"],
            "misplaced": repair["misplaced"],
            "unclaimed": repair["unclaimed"],
            "copied": repair["copied"],
            "claimed": repair["claimed"],
            "removed": repair["removed"],
            "bytesMoved": repair["bytes_moved"],
            "position": repair["position"],
            "cycleChecked": repair["cycle_checked"],
            "cycleFiles": cycle_files,
            "remainingFiles": None if cycle_files is None else max(cycle_files - repair["cycle_checked"], 0),
            "lastPassFinished": None if finished is None else iso8601(finished),
            "lastPassSeconds": repair["last_pass_seconds"],
        }


class Metrics:
    """Prometheus text; open like the health checks, so a scraper needs no token (see docs)."""

    public = True

    def __init__(self, layer: ObjectLayer, metrics_dir: str, data_dir: str):
        self._layer = layer
        self._metrics_dir = metrics_dir
        self._data_dir = data_dir

    def on_get(self, req, resp):
        try:
            status = self._layer.status()
        except SupervisorUnavailable:
            status = None
        resp.content_type = metrics.CONTENT_TYPE
        disk = psutil.disk_usage(self._data_dir)
        resp.data = metrics.render(self._metrics_dir, status, self._layer.bucket_usage(), disk)


class Audit:
    """This node's audit log, a page at a time: `after` is the id of the last entry already read."""

    def __init__(self, audit: AuditLog, iam: IamService):
        self._audit = audit
        self._iam = iam

    def on_get(self, req, resp):
        authorize(self._iam, req, "GetAuditLog", "*")
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_AUDIT_PAGE, default=MAX_AUDIT_PAGE // 10)
        after = req.get_param_as_int("after", min_value=0)
        try:
            entries, truncated = self._audit.page(after, limit)
        except BadCursor:
            raise ApiError(400, "InvalidArgument", f"'after' names no entry of the audit log: {after}.") from None
        resp.media = {
            "entries": entries,
            "isTruncated": truncated,
            "nextAfter": entries[-1]["id"] if entries else after,
        }


class OpenApi:
    public = True

    def __init__(self):
        self._document = orjson.dumps(openapi.DOCUMENT)

    def on_get(self, req, resp):
        resp.content_type = JSON_TYPE
        resp.data = self._document


def _render(resp: falcon.Response, status: int, code: str, message: str) -> None:
    resp.context.error = code
    resp.status = status
    resp.content_type = JSON_TYPE
    resp.data = error_body(code, message)


def _known_error(req, resp, error: ApiError | IamError | S3Error, params) -> None:
    if isinstance(error, ApiError):
        resp.set_headers(error.headers)
    _render(resp, error.status, error.code, error.message)


def _http_error(req, resp, error: falcon.HTTPError, params) -> None:
    code = FALCON_CODES.get(error.status_code, "InvalidRequest")
    if error.headers:
        resp.set_headers(error.headers)
    _render(resp, error.status_code, code, error.description or error.title)


def _unexpected(req, resp, error: Exception, params) -> None:
    log.exception("unhandled error in %s %s", req.method, req.path)
    _render(resp, 500, "InternalError", "We encountered an internal error. Please try again.")


def create(
    layer: ObjectLayer,
    iam: IamService,
    config: dict,
    metrics_dir: str,
    members: Members,
    throttle: LoginThrottle,
    audit: AuditLog,
    proxies: TrustedProxies,
) -> falcon.App:
    """The Admin API; `members` adds and removes the cluster's members, `throttle` counts failed
    logins, `audit` keeps every change asked for, `proxies` may name the client a request came for."""
    secrets = admin_secrets(config)
    tokens = Tokens(secrets, config["admin_token_ttl"], config["admin_refresh_ttl"], layer.reader.token_generation)
    app = falcon.App(
        media_type=JSON_TYPE,
        middleware=[ClientAddress(secrets, proxies), Auditing(audit), Authentication(tokens, iam)],
    )
    handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.req_options.media_handlers[JSON_TYPE] = handler
    app.resp_options.media_handlers[JSON_TYPE] = handler
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    for known in (S3Error, IamError, ApiError):
        app.add_error_handler(known, _known_error)
    app.add_route("/health/live", Live())
    app.add_route("/health/ready", Ready(layer, members))
    app.add_route("/metrics", Metrics(layer, metrics_dir, config["data"]))
    app.add_route("/api/v1/openapi.json", OpenApi())
    app.add_route("/api/v1/auth/login", Login(tokens, iam, throttle))
    app.add_route("/api/v1/auth/refresh", Refresh(tokens, iam))
    app.add_route("/api/v1/auth/logout", Logout(layer))
    app.add_route("/api/v1/buckets", Buckets(layer, iam, config["region"]))
    app.add_route("/api/v1/buckets/{name}", Bucket(layer, iam))
    app.add_route("/api/v1/buckets/{name}/policy", BucketPolicy(layer, iam))
    app.add_route("/api/v1/users", Users(iam))
    app.add_route("/api/v1/users/{name}", User(iam))
    app.add_route("/api/v1/users/{name}/keys", UserKeys(iam))
    app.add_route("/api/v1/keys/{access_key}", AccessKey(iam))
    app.add_route("/api/v1/groups", Groups(iam))
    app.add_route("/api/v1/groups/{name}", Group(iam))
    app.add_route("/api/v1/groups/{name}/members/{user}", GroupMember(iam))
    app.add_route("/api/v1/policies", Policies(iam))
    app.add_route("/api/v1/policies/{name}", ManagedPolicy(iam))
    app.add_route("/api/v1/policies/{name}/attach", PolicyAttachment(iam, attach=True))
    app.add_route("/api/v1/policies/{name}/detach", PolicyAttachment(iam, attach=False))
    app.add_route("/api/v1/cluster/status", ClusterStatus(layer, iam))
    app.add_route("/api/v1/cluster/repair", ClusterRepair(layer, iam))
    app.add_route("/api/v1/audit", Audit(audit, iam))
    cluster.add_routes(app, layer, members, iam, config)
    kms.add_routes(app, layer, iam)
    notify.add_routes(app, layer, iam, config)
    return app
