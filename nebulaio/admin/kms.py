"""The key store's keys on the Admin API (SSE-KMS): create, list, read, disable or enable, rotate.

Keys are never deleted (an object sealed under one would be lost with it); a disabled key
refuses new objects and reads of the ones it sealed until it is enabled again.
"""

from __future__ import annotations

import uuid

import falcon

# NOTE: the module, not its names: app.py imports this module while it is being built.
import nebulaio.admin.app as admin_app
from nebulaio.encryption.keys import KMS_ARN, kms_key_arn
from nebulaio.engine.objects import ObjectLayer
from nebulaio.util.ids import now_ms
from nebulaio.util.timefmt import iso8601

MAX_DESCRIPTION = 256


def key_view(record: dict) -> dict:
    """A key as the API shows it: never its material, only how many versions it has."""
    view = {
        "id": record["id"],
        "arn": kms_key_arn(record["id"]),
        "description": record["description"],
        "created": iso8601(record["created"]),
        "enabled": record["enabled"],
        "versions": len(record["versions"]),
        "rotated": iso8601(record["rotated"]) if "rotated" in record else None,
    }
    return view


class KmsKeys:
    def __init__(self, layer: ObjectLayer, iam):
        self._layer = layer
        self._iam = iam

    def on_get(self, req, resp):
        admin_app.authorize(self._iam, req, "ListKmsKeys", KMS_ARN + "key/*")
        resp.media = {"keys": [key_view(record) for record in self._layer.reader.kms.all()]}

    def on_post(self, req, resp):
        description = admin_app.read_json(req, {}, {"description": str}).get("description", "")
        if len(description) > MAX_DESCRIPTION:
            raise admin_app.ApiError(
                400, "InvalidArgument", f"A description holds at most {MAX_DESCRIPTION} characters."
            )
        key_id = str(uuid.uuid4())
        admin_app.authorize(self._iam, req, "CreateKmsKey", kms_key_arn(key_id))
        self._layer.submit(
            {
                "op": "kms.key.create",
                "id": key_id,
                "description": description,
                "created": now_ms(),
                "material": self._layer.keys.new_kms_material(key_id),
            }
        )
        resp.status = 201
        resp.location = f"/api/v1/kms/keys/{key_id}"
        resp.media = key_view(self._layer.reader.kms.get(key_id))


class KmsKey:
    def __init__(self, layer: ObjectLayer, iam):
        self._layer = layer
        self._iam = iam

    def _record(self, key_id: str) -> dict:
        record = self._layer.reader.kms.get(key_id)
        if record is None:
            raise admin_app.ApiError(404, "NotFound", f"There is no key {key_id!r}.")
        return record

    def on_get(self, req, resp, key_id):
        admin_app.authorize(self._iam, req, "GetKmsKey", kms_key_arn(key_id))
        resp.media = key_view(self._record(key_id))

    def on_patch(self, req, resp, key_id):
        """Disable a key (new objects and reads under it are refused) or enable it again."""
        enabled = admin_app.read_json(req, {"enabled": bool})["enabled"]
        admin_app.authorize(self._iam, req, "UpdateKmsKey", kms_key_arn(key_id))
        self._record(key_id)
        self._layer.submit({"op": "kms.key.enable", "id": key_id, "enabled": enabled})
        resp.media = key_view(self._record(key_id))


class KmsKeyRotation:
    def __init__(self, layer: ObjectLayer, iam):
        self._layer = layer
        self._iam = iam

    def on_post(self, req, resp, key_id):
        """A new version of the key's material seals new objects; older versions still open theirs."""
        admin_app.authorize(self._iam, req, "RotateKmsKey", kms_key_arn(key_id))
        if self._layer.reader.kms.get(key_id) is None:
            raise admin_app.ApiError(404, "NotFound", f"There is no key {key_id!r}.")
        material = self._layer.keys.new_kms_material(key_id)
        self._layer.submit({"op": "kms.key.rotate", "id": key_id, "material": material, "rotated": now_ms()})
        resp.media = key_view(self._layer.reader.kms.get(key_id))


def add_routes(app: falcon.App, layer: ObjectLayer, iam) -> None:
    app.add_route("/api/v1/kms/keys", KmsKeys(layer, iam))
    app.add_route("/api/v1/kms/keys/{key_id}", KmsKey(layer, iam))
    app.add_route("/api/v1/kms/keys/{key_id}/rotate", KmsKeyRotation(layer, iam))
