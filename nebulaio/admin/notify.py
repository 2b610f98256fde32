"""Notification targets: where buckets' events go (see nebulaio.notify for the delivery).

    GET    /api/v1/notify/targets          every target, with its backlog and delivery figures
    GET    /api/v1/notify/targets/{id}     one target
    PUT    /api/v1/notify/targets/{id}     define or replace a target
    DELETE /api/v1/notify/targets/{id}     delete a target no bucket names (409 otherwise)

A target's ARN, `arn:nebulaio:sqs:<region>:<id>:<kind>`, is what a bucket's notification
configuration names (in its Queue, Topic or CloudFunction element). Kinds and their fields:

    webhook  endpoint http(s)://host[:port]/path; secret: signs each body (X-NebulaIO-Signature)
    redis    endpoint redis://host:port; key: the list (LPUSH) or channel (mode "publish");
             user, password: AUTH
    nats     endpoint nats://host:port; subject; user, password: CONNECT

A secret or password is never shown again, only whether one is set. The delivery figures are
this node's: the raft leader is the node that delivers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import falcon

# NOTE: the module, not its names: app.py imports this module while it is being built.
import nebulaio.admin.app as admin_app
from nebulaio.cluster.ipc import SupervisorUnavailable
from nebulaio.engine.objects import ObjectLayer
from nebulaio.meta.notify import TARGET_KINDS, target_arn

TARGET_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SCHEMES = {"webhook": ("http", "https"), "redis": ("redis",), "nats": ("nats",)}
REDIS_MODES = ("lpush", "publish")
FIELDS = {"kind": str, "endpoint": str}
OPTIONAL_FIELDS = {"secret": str, "key": str, "mode": str, "subject": str, "user": str, "password": str}
KIND_FIELDS = {
    "webhook": ("secret",),
    "redis": ("key", "mode", "user", "password"),
    "nats": ("subject", "user", "password"),
}
REQUIRED_FIELDS = {"webhook": (), "redis": ("key",), "nats": ("subject",)}


def _invalid(message: str) -> admin_app.ApiError:
    return admin_app.ApiError(400, "InvalidArgument", message)


def check_target(target_id: str, document: dict, region: str) -> dict:
    """The target record a PUT body defines, or 400."""
    kind = document["kind"]
    if kind not in TARGET_KINDS:
        raise _invalid(f"'kind' must be one of {', '.join(TARGET_KINDS)}.")
    try:
        endpoint = urlsplit(document["endpoint"])
        host, port = endpoint.hostname, endpoint.port
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        raise _invalid("'endpoint' is not a URL with a host and a valid port.") from None
    if endpoint.scheme not in SCHEMES[kind] or not host:
        raise _invalid(f"A {kind} target's 'endpoint' is a URL of scheme {' or '.join(SCHEMES[kind])} with a host.")
    if kind != "webhook" and port is None:
        raise _invalid(f"A {kind} target's 'endpoint' names its port.")
    extra = sorted(set(document) - set(FIELDS) - set(KIND_FIELDS[kind]))
    if extra:
        raise _invalid(f"A {kind} target takes no {', '.join(extra)}.")
    for name in REQUIRED_FIELDS[kind]:
        if not document.get(name):
            raise _invalid(f"A {kind} target needs {name!r}.")
    if kind == "redis" and document.setdefault("mode", "lpush") not in REDIS_MODES:
        raise _invalid(f"'mode' must be one of {', '.join(REDIS_MODES)}.")
    if kind == "nats" and re.search(r"[\s*>]", document["subject"]):
        raise _invalid("'subject' is a NATS subject without spaces or wildcards.")
    return {"id": target_id, "arn": target_arn(region, target_id, kind), **document}


def target_view(target: dict, figures: dict | None) -> dict:
    figures = figures or {}
    return {
        "id": target["id"],
        "arn": target["arn"],
        "kind": target["kind"],
        "endpoint": target["endpoint"],
        "key": target.get("key"),
        "mode": target.get("mode"),
        "subject": target.get("subject"),
        "user": target.get("user"),
        "secretSet": bool(target.get("secret") or target.get("password")),
        "backlog": figures.get("backlog", 0),
        "delivered": figures.get("delivered", 0),
        "failures": figures.get("failures", 0),
        "retrying": figures.get("retrying", False),
        "lastError": figures.get("last_error"),
    }


class _Targets:
    def __init__(self, layer: ObjectLayer, iam, region: str):
        self._layer = layer
        self._iam = iam
        self._region = region

    def _figures(self) -> dict:
        """This node's delivery figures by target ARN; only backlogs when the supervisor is away."""
        try:
            return self._layer.status()["notify"]
        except SupervisorUnavailable:
            return {arn: {"backlog": count} for arn, count in self._layer.reader.notify.backlog().items()}

    def _find(self, target_id: str) -> dict | None:
        for target in self._layer.reader.notify.targets():
            if target["id"] == target_id:
                return target
        return None

    def _arn(self, target_id: str) -> str:
        return target_arn(self._region, target_id, "*")


class Targets(_Targets):
    def on_get(self, req, resp):
        admin_app.authorize(self._iam, req, "ListNotificationTargets", self._arn("*"))
        figures = self._figures()
        targets = self._layer.reader.notify.targets()
        resp.media = {"targets": [target_view(target, figures.get(target["arn"])) for target in targets]}


class Target(_Targets):
    def on_get(self, req, resp, target_id):
        admin_app.authorize(self._iam, req, "GetNotificationTarget", self._arn(target_id))
        target = self._find(target_id)
        if target is None:
            raise admin_app.ApiError(404, "NoSuchTarget", f"No notification target {target_id!r}.")
        resp.media = target_view(target, self._figures().get(target["arn"]))

    def on_put(self, req, resp, target_id):
        admin_app.authorize(self._iam, req, "PutNotificationTarget", self._arn(target_id))
        if not TARGET_ID.fullmatch(target_id):
            raise _invalid("A target's id is 1 to 64 letters, digits, '-' and '_'.")
        target = check_target(target_id, admin_app.read_json(req, FIELDS, OPTIONAL_FIELDS), self._region)
        existing = self._find(target_id)
        if existing is not None and existing["arn"] != target["arn"]:
            raise admin_app.ApiError(
                409, "TargetExists", f"Target {target_id!r} is a {existing['kind']} target; delete it first."
            )
        self._layer.submit({"op": "notify.target.put", "target": target})
        resp.media = target_view(target, self._figures().get(target["arn"]))

    def on_delete(self, req, resp, target_id):
        admin_app.authorize(self._iam, req, "DeleteNotificationTarget", self._arn(target_id))
        target = self._find(target_id)
        if target is None:
            raise admin_app.ApiError(404, "NoSuchTarget", f"No notification target {target_id!r}.")

        def in_use() -> admin_app.ApiError:
            return admin_app.ApiError(
                409, "TargetInUse", "A bucket's notification configuration names this target; change it first."
            )

        def gone() -> admin_app.ApiError:
            return admin_app.ApiError(404, "NoSuchTarget", f"No notification target {target_id!r}.")

        self._layer.submit(
            {"op": "notify.target.delete", "arn": target["arn"]}, refusals={"TargetInUse": in_use, "NoSuchTarget": gone}
        )
        resp.status = falcon.HTTP_204


def add_routes(app: falcon.App, layer: ObjectLayer, iam, config: dict) -> None:
    app.add_route("/api/v1/notify/targets", Targets(layer, iam, config["region"]))
    app.add_route("/api/v1/notify/targets/{target_id}", Target(layer, iam, config["region"]))
