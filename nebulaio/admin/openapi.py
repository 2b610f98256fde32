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
BOOLEAN = {"type": "boolean"}
NAMES = {"type": "array", "items": STRING}
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
        "readRounds": INTEGER,
        "preVoteRounds": INTEGER,
        "readLeasesGranted": INTEGER,
        "readLeaseHeld": {"type": "boolean"},
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
            "cors": BOOLEAN,
            "policy": BOOLEAN,
        }
    ),
    "PolicyDocument": {"type": "object", "description": "A policy in AWS's JSON grammar."},
    "NewName": _object({"name": STRING}),
    "Enabled": _object({"enabled": BOOLEAN}),
    "User": _object(
        {
            "name": STRING,
            "created": TIMESTAMP,
            "enabled": BOOLEAN,
            "groups": NAMES,
            "policies": NAMES,
            "accessKeys": NAMES,
        }
    ),
    "UserList": _object({"users": {"type": "array", "items": _ref("User")}}),
    "NewAccessKey": _object({"accessKey": STRING, "secretKey": STRING}, required=[]),
    "KeyPair": _object({"accessKey": STRING, "secretKey": STRING}),
    "AccessKey": _object({"accessKey": STRING, "user": STRING, "created": TIMESTAMP, "enabled": BOOLEAN}),
    "AccessKeyList": _object({"accessKeys": {"type": "array", "items": _ref("AccessKey")}}),
    "Group": _object({"name": STRING, "created": TIMESTAMP, "members": NAMES, "policies": NAMES}),
    "GroupList": _object({"groups": {"type": "array", "items": _ref("Group")}}),
    "ManagedPolicy": _object(
        {
            "name": STRING,
            "document": _ref("PolicyDocument"),
            "created": TIMESTAMP,
            "updated": TIMESTAMP,
            "users": NAMES,
            "groups": NAMES,
        }
    ),
    "PolicyList": _object({"policies": {"type": "array", "items": _ref("ManagedPolicy")}}),
    "AuditEntry": _object(
        {
            "id": INTEGER,
            "time": TIMESTAMP,
            "user": NULLABLE_STRING,
            "address": NULLABLE_STRING,
            "method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "DELETE"]},
            "path": STRING,
            "status": INTEGER,
            "error": NULLABLE_STRING,
        }
    ),
    "AuditPage": _object(
        {
            "entries": {"type": "array", "items": _ref("AuditEntry")},
            "isTruncated": BOOLEAN,
            "nextAfter": NULLABLE_INTEGER,
        }
    ),
    "PolicyHolder": _object({"user": STRING, "group": STRING}, required=[]),
    "KmsKey": _object(
        {
            "id": STRING,
            "arn": STRING,
            "description": STRING,
            "created": TIMESTAMP,
            "enabled": BOOLEAN,
            "versions": {"type": "integer", "minimum": 1},
            "rotated": {"type": ["string", "null"], "format": "date-time"},
        }
    ),
    "KmsKeyList": _object({"keys": {"type": "array", "items": _ref("KmsKey")}}),
    "NewKmsKey": _object({"description": {"type": "string", "maxLength": 256}}, required=[]),
    "KmsKeyState": _object({"enabled": BOOLEAN}),
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
                        "draining": BOOLEAN,
                        "state": {"type": ["string", "null"], "enum": ["alive", "suspect", "dead", None]},
                        "ready": {"type": ["boolean", "null"]},
                        "capacity": {
                            "oneOf": [{"type": "null"}, _object({"total": INTEGER, "used": INTEGER, "free": INTEGER})],
                        },
                        "memory": {
                            "oneOf": [{"type": "null"}, _object({"total": INTEGER, "available": INTEGER})],
                        },
                        "raftState": {"type": ["string", "null"]},
                        "term": NULLABLE_INTEGER,
                        "commitIndex": NULLABLE_INTEGER,
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
    "ClusterRepair": _object(
        {
            "node": STRING,
            "running": {"type": "boolean"},
            "passes": INTEGER,
            "cycles": INTEGER,
            "checked": INTEGER,
            "underReplicated": INTEGER,
            "misplaced": INTEGER,
            "unclaimed": INTEGER,
            "copied": INTEGER,
            "claimed": INTEGER,
            "removed": INTEGER,
            "bytesMoved": INTEGER,
            "position": NULLABLE_STRING,
            "cycleChecked": INTEGER,
            "cycleFiles": NULLABLE_INTEGER,
            "remainingFiles": NULLABLE_INTEGER,
            "lastPassFinished": {"type": ["string", "null"], "format": "date-time"},
            "lastPassSeconds": {"type": ["number", "null"]},
        }
    ),
    "ClusterScrub": _object(
        {
            "node": STRING,
            "running": BOOLEAN,
            "passes": INTEGER,
            "files": INTEGER,
            "filesDone": INTEGER,
            "bytes": INTEGER,
            "bytesDone": INTEGER,
            "unverifiable": INTEGER,
            "corrupt": INTEGER,
            "healed": INTEGER,
            "unhealed": INTEGER,
            "reported": INTEGER,
            "lastPassStarted": {"type": ["string", "null"], "format": "date-time"},
            "lastPassFinished": {"type": ["string", "null"], "format": "date-time"},
            "lastPassSeconds": {"type": ["number", "null"]},
            "rate": INTEGER,
            "intervalSeconds": NUMBER,
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
    "Drain": _object(
        {
            "node": STRING,
            "draining": BOOLEAN,
            "since": {"type": ["string", "null"], "format": "date-time"},
            "objects": NULLABLE_INTEGER,
            "bytes": NULLABLE_INTEGER,
            "etaSeconds": {"type": ["number", "null"]},
            "done": BOOLEAN,
            "countedBy": STRING,
            "countedAt": {"type": ["string", "null"], "format": "date-time"},
        }
    ),
    "NotifyTargetDefinition": _object(
        {
            "kind": {"type": "string", "enum": ["webhook", "redis", "nats"]},
            "endpoint": STRING,
            "secret": STRING,
            "key": STRING,
            "mode": {"type": "string", "enum": ["lpush", "publish"]},
            "subject": STRING,
            "user": STRING,
            "password": STRING,
        },
        required=["kind", "endpoint"],
    ),
    "NotifyTarget": _object(
        {
            "id": STRING,
            "arn": STRING,
            "kind": STRING,
            "endpoint": STRING,
            "key": NULLABLE_STRING,
            "mode": NULLABLE_STRING,
            "subject": NULLABLE_STRING,
            "user": NULLABLE_STRING,
            "secretSet": BOOLEAN,
            "backlog": INTEGER,
            "delivered": INTEGER,
            "failures": INTEGER,
            "retrying": BOOLEAN,
            "lastError": NULLABLE_STRING,
        }
    ),
    "NotifyTargetList": _object({"targets": {"type": "array", "items": _ref("NotifyTarget")}}),
    "NewVoter": _object({"raftAddress": {"type": "string", "pattern": "^.+:[0-9]{1,5}$"}}),
    "Voter": _object({"raftAddress": STRING, "voter": {"type": "boolean"}}),
}

RESPONSES = {
    name: _json(_ref("Error"), description)
    for name, description in (
        ("BadRequest", "The request or its JSON body is not valid."),
        ("Unauthorized", "No token, or a token that is expired, forged, revoked or of another kind."),
        ("Forbidden", "The caller's identity policies do not allow this admin:* action."),
        ("NotFound", "No such bucket, bucket policy, user, access key, group or policy."),
        ("Conflict", "It exists already, or is not empty, or a policy is still attached."),
        ("LengthRequired", "The request has a body without a Content-Length."),
        ("TooLarge", "The JSON body is larger than 64 KiB."),
        ("Unavailable", "The node's metadata log is not available."),
        ("RootOnly", "Only the root user may do this."),
        (
            "ClusterConflict",
            "Another membership change is in progress, or no live node with that raft address has joined through "
            "gossip.",
        ),
        (
            "DrainConflict",
            "The node holds no objects (a management node), or draining it would leave fewer storage nodes "
            "than the copies each object needs.",
        ),
        (
            "ClusterUnavailable",
            "No raft leader; or no other voter took over from a leader to remove, or could be reached to "
            "remove the node that was asked to remove itself.",
        ),
        ("NoSuchNode", "No such node is registered."),
        ("TargetInUse", "A bucket's notification configuration names this target; or the id is another kind's."),
    )
}
RESPONSES["TooManyAttempts"] = {
    **_json(_ref("Error"), "Too many failed logins from this address or for this user; try again later."),
    "headers": {
        "Retry-After": {"description": "Seconds until a login may be tried again.", "schema": {"type": "integer"}}
    },
}

BEARER = [{"bearer": []}]
PUBLIC: list = []
BODY_ERRORS = {"400": _error("BadRequest"), "411": _error("LengthRequired"), "413": _error("TooLarge")}
NAME_PARAMETER = {"name": "name", "in": "path", "required": True, "schema": STRING}


def _body(schema: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


def _operation(summary: str, answers: dict, *errors: str, body: dict | None = None) -> dict:
    """A protected operation: its answers, 401 and 403, the named error statuses, and a body's errors."""
    responses = {**answers, "401": _error("Unauthorized"), "403": _error("Forbidden")}
    responses.update({status: _error(ERROR_NAMES[status]) for status in errors})
    operation = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = body
        responses.update(BODY_ERRORS)
    return operation


ERROR_NAMES = {"400": "BadRequest", "404": "NotFound", "409": "Conflict", "503": "Unavailable"}
NO_CONTENT = {"204": {"description": "Done."}}
USER_PARAMETER = {"name": "user", "in": "path", "required": True, "schema": STRING}
KEY_PARAMETER = {"name": "access_key", "in": "path", "required": True, "schema": STRING}
KMS_KEY_PARAMETER = {"name": "key_id", "in": "path", "required": True, "schema": STRING}


def _with_conflict(operation: dict) -> dict:
    operation["responses"]["409"] = _error("TargetInUse")
    return operation


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
            "summary": "A token pair for the root user's name and password, or an access key and its secret key.",
            "security": PUBLIC,
            "requestBody": _body("Credentials"),
            "responses": {
                "200": _json(_ref("TokenPair"), "Logged in."),
                "401": _error("Unauthorized"),
                "429": _error("TooManyAttempts"),
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
            "responses": {
                "200": _json(_ref("BucketList"), "The buckets."),
                "401": _error("Unauthorized"),
                "403": _error("Forbidden"),
            },
        },
        "post": {
            "summary": "Create a bucket owned by the caller.",
            "requestBody": _body("NewBucket"),
            "responses": {
                "201": _json(_ref("Bucket"), "Created."),
                "401": _error("Unauthorized"),
                "403": _error("Forbidden"),
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
                "403": _error("Forbidden"),
                "404": _error("NotFound"),
            },
        },
        "delete": {
            "summary": "Delete an empty bucket (open multipart uploads go with it).",
            "responses": {
                "204": {"description": "Deleted."},
                "401": _error("Unauthorized"),
                "403": _error("Forbidden"),
                "404": _error("NotFound"),
                "409": _error("Conflict"),
                "503": _error("Unavailable"),
            },
        },
    },
    "/api/v1/buckets/{name}/policy": {
        "parameters": [NAME_PARAMETER],
        "get": _operation(
            "The bucket's policy document.", {"200": _json(_ref("PolicyDocument"), "The policy.")}, "404"
        ),
        "put": _operation(
            "Set the bucket's policy (validated as S3's PutBucketPolicy: MalformedPolicy says what is wrong).",
            NO_CONTENT,
            "404",
            "503",
            body=_body("PolicyDocument"),
        ),
        "delete": _operation("Remove the bucket's policy.", NO_CONTENT, "404", "503"),
    },
    "/api/v1/users": {
        "get": _operation("Every IAM user.", {"200": _json(_ref("UserList"), "The users.")}),
        "post": _operation(
            "Create a user (enabled, no keys, no policies).",
            {"201": _json(_ref("User"), "Created.")},
            "409",
            "503",
            body=_body("NewName"),
        ),
    },
    "/api/v1/users/{name}": {
        "parameters": [NAME_PARAMETER],
        "get": _operation("A user (a user may always read itself).", {"200": _json(_ref("User"), "The user.")}, "404"),
        "patch": _operation(
            "Disable a user (every key, and every Admin API token issued to it) or enable it.",
            {"200": _json(_ref("User"), "The user.")},
            "404",
            "503",
            body=_body("Enabled"),
        ),
        "delete": _operation("Delete a user, its keys and memberships.", NO_CONTENT, "404", "503"),
    },
    "/api/v1/users/{name}/keys": {
        "parameters": [NAME_PARAMETER],
        "get": _operation(
            "The user's access keys, never their secrets.", {"200": _json(_ref("AccessKeyList"), "The keys.")}, "404"
        ),
        "post": _operation(
            "A new key pair, whose secret this answer shows once; give both to import a pair.",
            {"201": _json(_ref("KeyPair"), "Created.")},
            "404",
            "409",
            "503",
            body=_body("NewAccessKey", required=False),
        ),
    },
    "/api/v1/keys/{access_key}": {
        "parameters": [KEY_PARAMETER],
        "patch": _operation(
            "Disable or enable an access key.",
            {"200": _json(_ref("AccessKey"), "The key.")},
            "404",
            "503",
            body=_body("Enabled"),
        ),
        "delete": _operation("Delete an access key.", NO_CONTENT, "404", "503"),
    },
    "/api/v1/groups": {
        "get": _operation("Every group.", {"200": _json(_ref("GroupList"), "The groups.")}),
        "post": _operation(
            "Create a group.", {"201": _json(_ref("Group"), "Created.")}, "409", "503", body=_body("NewName")
        ),
    },
    "/api/v1/groups/{name}": {
        "parameters": [NAME_PARAMETER],
        "get": _operation("A group.", {"200": _json(_ref("Group"), "The group.")}, "404"),
        "delete": _operation("Delete a group; its members lose its policies.", NO_CONTENT, "404", "503"),
    },
    "/api/v1/groups/{name}/members/{user}": {
        "parameters": [NAME_PARAMETER, USER_PARAMETER],
        "put": _operation("Add a user to the group.", NO_CONTENT, "404", "503"),
        "delete": _operation("Remove a user from the group.", NO_CONTENT, "404", "503"),
    },
    "/api/v1/policies": {
        "get": _operation("Every managed policy.", {"200": _json(_ref("PolicyList"), "The policies.")}),
    },
    "/api/v1/policies/{name}": {
        "parameters": [NAME_PARAMETER],
        "get": _operation("A managed policy.", {"200": _json(_ref("ManagedPolicy"), "The policy.")}, "404"),
        "put": _operation(
            "Create a managed policy or replace its document (the body is the document).",
            {"200": _json(_ref("ManagedPolicy"), "The policy.")},
            "503",
            body=_body("PolicyDocument"),
        ),
        "delete": _operation("Delete a policy attached nowhere.", NO_CONTENT, "404", "409", "503"),
    },
    "/api/v1/policies/{name}/attach": {
        "parameters": [NAME_PARAMETER],
        "post": _operation(
            "Attach the policy to a user or a group.", NO_CONTENT, "404", "503", body=_body("PolicyHolder")
        ),
    },
    "/api/v1/policies/{name}/detach": {
        "parameters": [NAME_PARAMETER],
        "post": _operation(
            "Detach the policy from a user or a group.", NO_CONTENT, "404", "503", body=_body("PolicyHolder")
        ),
    },
    "/api/v1/kms/keys": {
        "get": _operation(
            "The key store's keys (SSE-KMS), never their material.", {"200": _json(_ref("KmsKeyList"), "The keys.")}
        ),
        "post": _operation(
            "Create a key-store key; aws:kms requests name it by its id or ARN.",
            {"201": _json(_ref("KmsKey"), "The new key.")},
            "503",
            body=_body("NewKmsKey", required=False),
        ),
    },
    "/api/v1/kms/keys/{key_id}": {
        "parameters": [KMS_KEY_PARAMETER],
        "get": _operation("A key-store key.", {"200": _json(_ref("KmsKey"), "The key.")}, "404"),
        "patch": _operation(
            "Disable a key (new objects under it and reads of the objects it sealed are refused) or enable it.",
            {"200": _json(_ref("KmsKey"), "The key.")},
            "404",
            "503",
            body=_body("KmsKeyState"),
        ),
    },
    "/api/v1/kms/keys/{key_id}/rotate": {
        "parameters": [KMS_KEY_PARAMETER],
        "post": _operation(
            "Give the key new material for new objects; objects sealed before keep opening.",
            {"200": _json(_ref("KmsKey"), "The key.")},
            "404",
            "503",
        ),
    },
    "/api/v1/cluster/status": {
        "get": _operation(
            "Raft, members, and this node's processes, memory and disk.",
            {"200": _json(_ref("ClusterStatus"), "The status.")},
            "503",
        )
    },
    "/api/v1/cluster/repair": {
        "get": _operation(
            "This node's repair loop: files checked, under-replicated, misplaced and naming no holder in the "
            "last cycle (a walk over every placed file), copies made, claimed and removed, bytes moved, where "
            "the walk stands and the files left in this cycle, the last pass.",
            {"200": _json(_ref("ClusterRepair"), "The figures.")},
            "503",
        )
    },
    "/api/v1/cluster/scrub": {
        "get": _operation(
            "This node's scrub (every file it holds checked against the checksum recorded when it was written): "
            "files and bytes verified of the pass under way or the last one, damaged copies found, healed from "
            "another holder and not healed, damage reads reported, the last pass.",
            {"200": _json(_ref("ClusterScrub"), "The figures.")},
            "503",
        ),
        "post": _operation(
            "Start a scrub pass on this node now (root only); 409 on a node that holds no objects.",
            {"202": _json(_ref("ClusterScrub"), "The figures as the pass is asked for.")},
            "409",
            "503",
        ),
    },
    "/api/v1/audit": {
        "get": {
            **_operation(
                "This node's audit log, oldest first: every POST, PUT, PATCH and DELETE it answered (who, what,"
                " when, from where, with what status), never a body. Page on with after=nextAfter.",
                {"200": _json(_ref("AuditPage"), "A page of entries.")},
                "400",
            ),
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "description": "Entries in the page (default 100).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                {
                    "name": "after",
                    "in": "query",
                    "description": "The id of the last entry already read; without it, the page starts at the first.",
                    "schema": INTEGER,
                },
            ],
        }
    },
    "/api/v1/notify/targets": {
        "get": _operation(
            "Every notification target, with its backlog (events queued, not yet acknowledged) and this "
            "node's delivery figures (the raft leader delivers).",
            {"200": _json(_ref("NotifyTargetList"), "The targets.")},
        ),
    },
    "/api/v1/notify/targets/{target_id}": {
        "parameters": [{"name": "target_id", "in": "path", "required": True, "schema": STRING}],
        "get": _operation("A notification target.", {"200": _json(_ref("NotifyTarget"), "The target.")}, "404"),
        "put": _with_conflict(
            _operation(
                "Define or replace a notification target; buckets name it by its ARN, "
                "arn:nebulaio:sqs:<region>:<id>:<kind>. A secret or password is never shown again.",
                {"200": _json(_ref("NotifyTarget"), "The target.")},
                "503",
                body=_body("NotifyTargetDefinition"),
            )
        ),
        "delete": _with_conflict(
            _operation("Delete a notification target and its queued events.", NO_CONTENT, "404", "503")
        ),
    },
    "/api/v1/cluster/nodes": {
        "post": {
            "summary": "Add a raft voter, started beforehand with --join; root only.",
            "requestBody": _body("NewVoter"),
            "responses": {
                "200": _json(_ref("Voter"), "Added: the change is applied on this node."),
                "401": _error("Unauthorized"),
                "403": _error("RootOnly"),
                "409": _error("ClusterConflict"),
                "503": _error("Unavailable"),
                **BODY_ERRORS,
            },
        }
    },
    "/api/v1/cluster/nodes/{node_id}": {
        "parameters": [{"name": "node_id", "in": "path", "required": True, "schema": STRING}],
        "delete": {
            "summary": "Remove a node through any node, itself included: a voter leaves raft (a leader hands "
            "its leadership to another voter first), then the node is forgotten; root only.",
            "responses": {
                "204": {"description": "Removed: out of raft and forgotten, both changes applied."},
                "401": _error("Unauthorized"),
                "403": _error("RootOnly"),
                "404": _error("NoSuchNode"),
                "409": _error("ClusterConflict"),
                "503": _error("ClusterUnavailable"),
            },
        },
    },
    "/api/v1/cluster/nodes/{node_id}/drain": {
        "parameters": [{"name": "node_id", "in": "path", "required": True, "schema": STRING}],
        "post": {
            "summary": "Drain a storage node: it takes no new copies, and the repair loops move its files to "
            "their other wanted holders, after which it can be removed; root only. Draining again is harmless.",
            "responses": {
                "202": _json(_ref("Drain"), "Draining (the mark is applied on this node): its progress."),
                "401": _error("Unauthorized"),
                "403": _error("RootOnly"),
                "404": _error("NoSuchNode"),
                "409": _error("DrainConflict"),
                "503": _error("Unavailable"),
            },
        },
        "get": _operation(
            "How far a node's drain has come: the files and bytes the records still name it a holder of, as "
            "this node's repair loop last counted them (null on a node without one), and the time left.",
            {"200": _json(_ref("Drain"), "The progress.")},
            "404",
            "503",
        ),
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
