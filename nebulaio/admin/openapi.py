"""The OpenAPI 3 description of the Admin API, served at /api/v1/openapi.json.

A test runs schemathesis against a real node with this document, so it stays true: every
route, every status a route can answer, and the shape of every body.
"""

from __future__ import annotations

from nebulaio import __version__


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return {"$ref": f"#/components/responses/{description}"}


def _object(properties: dict, required: list[str] | None = None, extra: bool = False) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": extra,
    }


INTEGER = {"type": "integer", "minimum": 0}
NUMBER = {"type": "number"}
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_INTEGER = {"type": ["integer", "null"]}
TIMESTAMP = {"type": "string", "format": "date-time"}
BUCKET_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"}
PROCESS = _object({"pid": INTEGER, "rss": INTEGER, "cpuSeconds": NUMBER, "threads": INTEGER, "started": NUMBER})
RAFT = _object(
    {
        "state": STRING,
        "leader": NULLABLE_STRING,
        "term": NULLABLE_INTEGER,
        "commitIndex": NULLABLE_INTEGER,
        "lastApplied": NULLABLE_INTEGER,
        "appliedIndex": NULLABLE_INTEGER,
        "ready": {"type": "boolean"},
    }
)
BUCKET_FIELDS = {
    "name": STRING,
    "created": TIMESTAMP,
    "region": STRING,
    "owner": STRING,
    "objects": INTEGER,
    "size": INTEGER,
}

SCHEMAS = {
    "Error": _object(
        {"error": _object({"code": STRING, "message": STRING, "requestId": STRING}, required=["code", "message"])}
    ),
    "Credentials": _object({"username": STRING, "password": STRING}),
    "RefreshRequest": _object({"refreshToken": STRING}),
    "TokenPair": _object({"token": STRING, "expiresAt": TIMESTAMP, "refreshToken": STRING}),
    "NewBucket": _object({"name": BUCKET_NAME}),
    "Bucket": _object(BUCKET_FIELDS),
    "BucketList": _object({"buckets": {"type": "array", "items": _ref("Bucket")}}),
    "BucketDetails": _object(
        {
            **BUCKET_FIELDS,
            "versioning": {"type": "string", "enum": ["Off", "Enabled", "Suspended"]},
            "objectLock": {"type": "boolean"},
            "tags": {"type": "object", "additionalProperties": STRING},
            "lifecycleRules": INTEGER,
            "cors": {"type": "boolean"},
        }
    ),
    "ClusterStatus": _object(
        {
            "node": _object({"id": STRING, "role": STRING, "state": STRING}),
            "raft": RAFT,
            "members": {
                "type": "array",
                "items": _object(
                    {
                        "id": NULLABLE_STRING,
                        "role": STRING,
                        "address": STRING,
                        "self": {"type": "boolean"},
                        "connected": {"type": ["boolean", "null"]},
                        "state": {"type": ["string", "null"], "enum": ["alive", "suspect", "dead", None]},
                        "ready": {"type": ["boolean", "null"]},
                        "capacity": {
                            "oneOf": [{"type": "null"}, _object({"total": INTEGER, "free": INTEGER})],
                        },
                    }
                ),
            },
            "gossip": _object(
                {
                    "refused": INTEGER,
                    "members": {
                        "type": "array",
                        "items": _object(
                            {
                                "id": STRING,
                                "role": NULLABLE_STRING,
                                "gossip": STRING,
                                "state": {"type": "string", "enum": ["alive", "suspect", "dead"]},
                            }
                        ),
                    },
                }
            ),
            "processes": _object({"supervisor": PROCESS, "worker": PROCESS}),
            "memory": _object({"total": INTEGER, "available": INTEGER, "used": INTEGER}),
            "disk": _object({"path": STRING, "total": INTEGER, "used": INTEGER, "free": INTEGER}),
            "cpus": NULLABLE_INTEGER,
            "load": {"type": "array", "items": NUMBER},
        }
    ),
    "Health": _object(
        {
            "status": STRING,
            "reason": STRING,
            "raft": RAFT,
            "members": _object({"alive": INTEGER, "suspect": INTEGER, "dead": INTEGER}),
        },
        required=["status"],
    ),
    "NewVoter": _object({"raftAddress": {"type": "string", "pattern": "^.+:[0-9]{1,5}$"}}),
    "Voter": _object({"raftAddress": STRING, "voter": {"type": "boolean"}}),
}

RESPONSES = {
    name: _json(_ref("Error"), description)
    for name, description in (
        ("BadRequest", "The request or its JSON body is not valid."),
        ("Unauthorized", "No token, or a token that is expired, forged, revoked or of another kind."),
        ("NotFound", "No such bucket."),
        ("Conflict", "The bucket exists already, or is not empty."),
        ("LengthRequired", "The request has a body without a Content-Length."),
        ("TooLarge", "The JSON body is larger than 64 KiB."),
        ("Unavailable", "The node's metadata log is not available."),
        ("Forbidden", "Only the root user may do this."),
        ("ClusterConflict", "A lone node, or the raft leader refused the change (one in progress, or itself)."),
        ("NoSuchNode", "No such node is registered."),
    )
}

BEARER = [{"bearer": []}]
PUBLIC: list = []
BODY_ERRORS = {"400": _error("BadRequest"), "411": _error("LengthRequired"), "413": _error("TooLarge")}
NAME_PARAMETER = {"name": "name", "in": "path", "required": True, "schema": STRING}


def _body(schema: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


PATHS = {
    "/health/live": {
        "get": {
            "summary": "The worker answers.",
            "security": PUBLIC,
            "responses": {"200": _json(_ref("Health"), "The process is up.")},
        }
    },
    "/health/ready": {
        "get": {
            "summary": "Raft has a leader and this node has applied the committed log.",
            "security": PUBLIC,
            "responses": {
                "200": _json(_ref("Health"), "Ready."),
                "503": _json(_ref("Health"), "Not ready yet."),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus text: S3 requests, latencies, bytes, raft figures, bucket usage. Open.",
            "security": PUBLIC,
            "responses": {
                "200": {"description": "Exposition format 0.0.4.", "content": {"text/plain": {"schema": STRING}}}
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document.",
            "security": PUBLIC,
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
        }
    },
    "/api/v1/auth/login": {
        "post": {
            "summary": "A token pair for a username and password (the root user's access key and secret).",
            "security": PUBLIC,
            "requestBody": _body("Credentials"),
            "responses": {
                "200": _json(_ref("TokenPair"), "Logged in."),
                "401": _error("Unauthorized"),
                **BODY_ERRORS,
            },
        }
    },
    "/api/v1/auth/refresh": {
        "post": {
            "summary": "A new token pair for a refresh token.",
            "security": PUBLIC,
            "requestBody": _body("RefreshRequest"),
            "responses": {
                "200": _json(_ref("TokenPair"), "Renewed."),
                "401": _error("Unauthorized"),
                **BODY_ERRORS,
            },
        }
    },
    "/api/v1/auth/logout": {
        "post": {
            "summary": "Revoke every access and refresh token issued to the caller so far, on every node.",
            "responses": {
                "204": {"description": "Revoked."},
                "401": _error("Unauthorized"),
                "503": _error("Unavailable"),
            },
        }
    },
    "/api/v1/buckets": {
        "get": {
            "summary": "Every bucket with its object count and size (current versions).",
            "responses": {"200": _json(_ref("BucketList"), "The buckets."), "401": _error("Unauthorized")},
        },
        "post": {
            "summary": "Create a bucket owned by the caller.",
            "requestBody": _body("NewBucket"),
            "responses": {
                "201": _json(_ref("Bucket"), "Created."),
                "401": _error("Unauthorized"),
                "409": _error("Conflict"),
                "503": _error("Unavailable"),
                **BODY_ERRORS,
            },
        },
    },
    "/api/v1/buckets/{name}": {
        "parameters": [NAME_PARAMETER],
        "get": {
            "summary": "A bucket's usage and settings.",
            "responses": {
                "200": _json(_ref("BucketDetails"), "The bucket."),
                "401": _error("Unauthorized"),
                "404": _error("NotFound"),
            },
        },
        "delete": {
            "summary": "Delete an empty bucket (open multipart uploads go with it).",
            "responses": {
                "204": {"description": "Deleted."},
                "401": _error("Unauthorized"),
                "404": _error("NotFound"),
                "409": _error("Conflict"),
                "503": _error("Unavailable"),
            },
        },
    },
    "/api/v1/cluster/status": {
        "get": {
            "summary": "Raft, members, and this node's processes, memory and disk.",
            "responses": {
                "200": _json(_ref("ClusterStatus"), "The status."),
                "401": _error("Unauthorized"),
                "503": _error("Unavailable"),
            },
        }
    },
    "/api/v1/cluster/nodes": {
        "post": {
            "summary": "Add a raft voter, started beforehand with --join; root only.",
            "requestBody": _body("NewVoter"),
            "responses": {
                "200": _json(_ref("Voter"), "Added: the change is applied on this node."),
                "401": _error("Unauthorized"),
                "403": _error("Forbidden"),
                "409": _error("ClusterConflict"),
                "503": _error("Unavailable"),
                **BODY_ERRORS,
            },
        }
    },
    "/api/v1/cluster/nodes/{node_id}": {
        "parameters": [{"name": "node_id", "in": "path", "required": True, "schema": STRING}],
        "delete": {
            "summary": "Remove a node: a voter leaves raft, then the node is forgotten; root only.",
            "responses": {
                "204": {"description": "Removed."},
                "401": _error("Unauthorized"),
                "403": _error("Forbidden"),
                "404": _error("NoSuchNode"),
                "409": _error("ClusterConflict"),
                "503": _error("Unavailable"),
            },
        },
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "NebulaIO Admin API",
        "version": __version__,
        "description": 'JSON over HTTP on the admin port (9001). Errors are {"error": {"code", "message"}}.',
    },
    "servers": [{"url": "/"}],
    "security": BEARER,
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": RESPONSES,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    },
}
