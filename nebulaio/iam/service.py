"""Identities and authorization: the one engine-level API over users, keys, groups and policies.

Both HTTP layers use it: the S3 API to find a request's secret and principal and to decide
whether it may do what it asks, the Admin API to manage identities. Reads come from the
worker's LMDB replica; every change is an iam.* command applied through the raft log (see
meta/iam.py), so every node enforces the same rules, and a change is in force on this node
once the call returns.

Workers cache what they derive (unsealed secrets, compiled policies) per IAM revision: the
revision is the raft index of the last IAM change, one point read per request (IamLookups),
so a cache is never consulted after a change it does not reflect. Bucket policies are compiled once per
stored revision of the bucket's policy.

The root user of the configuration is not stored here: it always exists, is always allowed
everything, and no IAM change can lock it out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from nebulaio.cluster.ipc import SupervisorClient, SupervisorUnavailable
from nebulaio.iam import acl
from nebulaio.iam.actions import Action
from nebulaio.iam.credentials import Credentials, canonical_id
from nebulaio.iam.policy import ALLOW, DENY, Context, Policy, PolicyError, Principal, evaluate, parse
from nebulaio.iam.publicaccess import RESTRICT_PUBLIC_BUCKETS, blocks
from nebulaio.iam.sealing import Sealer, SealError
from nebulaio.meta.iam import GROUP, KEY, POLICY, USER
from nebulaio.util.ids import now_ms
from nebulaio.util.keyfile import new_key_pair
from nebulaio.util.purposekeys import ClusterKeys

COMMIT_TIMEOUT = 30.0
USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")
GROUP_NAME = re.compile(r"[\w+=,.@-]{1,128}")
POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
ACCESS_KEY = re.compile(r"[A-Za-z0-9]{16,128}")
SECRET_KEY = re.compile(r"[\x21-\x7e]{8,128}")
BUCKET_POLICY_CACHE = 1024

ANONYMOUS = Principal("anonymous", None, None)

# code -> HTTP status an API answers it with
ERRORS = {
    "NoSuchEntity": 404,
    "EntityAlreadyExists": 409,
    "DeleteConflict": 409,
    "MalformedPolicyDocument": 400,
    "InvalidInput": 400,
    "ServiceUnavailable": 503,
}


class IamError(Exception):
    """An IAM refusal: `code` is IAM's error code, `status` the HTTP status to answer with."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = ERRORS[code]


class IamService:
    """Users, access keys, groups, managed policies, and the authorization decision.

    Records handed out are plain dicts: a user {"name", "created" (epoch ms), "enabled",
    "groups", "policies", "accessKeys"}, a key {"accessKey", "user", "created", "enabled"}
    (never its secret), a group {"name", "created", "members", "policies"}, a policy
    {"name", "document", "created", "updated", "users", "groups"}.
    """

    __slots__ = ("_reader", "_supervisor", "_root", "_sealer", "_cache", "_bucket_policies")

    def __init__(self, reader, supervisor: SupervisorClient, root: Credentials, cluster_keys: ClusterKeys):
        """`reader` is the worker's MetaReader (its `iam` reads identities); `cluster_keys` seal secret keys."""
        self._reader = reader
        self._supervisor = supervisor
        self._root = root
        self._sealer = Sealer(cluster_keys)
        self._cache: tuple[int, dict] = (-1, {})
        self._bucket_policies: dict[tuple[str, str], Policy] = {}

    # -- the S3 side: who signed, and what they may do -------------------------------------

    def lookups(self) -> IamLookups:
        """What one request looks up: the IAM revision is read once for all of its lookups."""
        return IamLookups(self)

    def revision(self) -> int:
        """The raft index of the replica's last IAM change."""
        return self._reader.iam.revision()

    def secret_for(self, access_key: str) -> str | None:
        """The secret that signs for `access_key`; None when the key is unknown, disabled, or
        its user is disabled (S3 then answers InvalidAccessKeyId)."""
        return IamLookups(self).secret_for(access_key)

    def principal_for(self, access_key: str) -> Principal:
        """The principal of a request signed with `access_key` (whose secret verified)."""
        return IamLookups(self).principal_for(access_key)

    def identity_policies(self, user: str) -> list[Policy]:
        """The compiled policies attached to a user, directly and through its groups."""
        return IamLookups(self).identity_policies(user)

    def _current(self) -> dict:
        """The cache of the replica's current IAM revision (a new, empty one after a change)."""
        revision = self._reader.iam.revision()
        cache = self._cache
        if cache[0] != revision:
            cache = self._cache = (revision, {})
        return cache[1]

    def bucket_policy(self, bucket: dict) -> Policy | None:
        """A bucket's compiled policy (None when it has none), compiled once per revision."""
        stored = bucket.get("policy")
        if stored is None:
            return None
        cache_key = (bucket["name"], stored["revision"])
        compiled = self._bucket_policies.get(cache_key)
        if compiled is None:
            if len(self._bucket_policies) >= BUCKET_POLICY_CACHE:
                self._bucket_policies.clear()
            compiled = self._bucket_policies[cache_key] = parse(stored["document"], bucket["name"])
        return compiled

    def allows(
        self,
        principal: Principal,
        action: Action,
        action_name: str,
        resource: str,
        bucket: dict | None,
        context: Context,
        object_record: Callable[[], dict | None],
        lookups: IamLookups,
    ) -> bool:
        """AWS's evaluation: an explicit Deny in the user's policies (own and its groups') or
        the bucket policy refuses; else an Allow in either grants; else the ACLs decide.
        Where the bucket restricts public buckets, a public bucket policy grants nothing to
        anonymous requests (its Deny still refuses them).

        `object_record()` returns the addressed object version's record (None: no such
        object); it is called only when the object's ACL is what decides. `lookups` are the
        request's.
        """
        if principal.kind == "root":
            return True
        policies = lookups.identity_policies(principal.name) if principal.kind == "user" else []
        bucket_policy = None if bucket is None else self.bucket_policy(bucket)
        if bucket_policy is not None:
            policies = [*policies, bucket_policy]
        decision = evaluate(policies, principal, action_name, resource, context)
        if decision == DENY:
            return False
        if decision == ALLOW and not (principal.kind == "anonymous" and _restricted(bucket, bucket_policy)):
            return True
        return acl.allows(principal, action, bucket, object_record)

    def identity_allows(self, principal: Principal, action_name: str, resource: str) -> bool:
        """Whether the principal's own policies (its groups' included) allow an action that no
        bucket policy or ACL governs, such as the Admin API's; the root user always may."""
        if principal.kind == "root":
            return True
        if principal.kind != "user":
            return False
        context = Context(
            {
                "aws:username": [principal.name],
                "aws:userid": [principal.canonical_id],
                "aws:principalarn": [principal.arn],
                "aws:principaltype": ["User"],
            }
        )
        return evaluate(self.identity_policies(principal.name), principal, action_name, resource, context) == ALLOW

    # -- users ------------------------------------------------------------------------------

    def create_user(self, name: str) -> dict:
        """Create a user (enabled, with no keys and no policies)."""
        _check_name(USER_NAME, name, "user name")
        if name == self._root.root_user:
            raise IamError("EntityAlreadyExists", f"{name} is the root user.")
        self._submit({"op": "iam.user.create", "name": name, "created": now_ms()}, f"user {name}")
        return self.get_user(name)

    def get_user(self, name: str) -> dict:
        return _user_view(self._require(USER, name, "user"))

    def list_users(self) -> list[dict]:
        return [_user_view(record) for record in self._reader.iam.all(USER)]

    def set_user_enabled(self, name: str, enabled: bool) -> None:
        """Disable (or enable again) every key of a user at once."""
        self._submit({"op": "iam.user.enable", "name": name, "enabled": bool(enabled)}, f"user {name}")

    def delete_user(self, name: str) -> None:
        """Delete a user, its access keys and its group memberships; its buckets stay."""
        self._submit({"op": "iam.user.delete", "name": name}, f"user {name}")

    # -- access keys ------------------------------------------------------------------------

    def create_access_key(self, user: str, access_key: str | None = None, secret_key: str | None = None) -> dict:
        """A new key pair for `user`: {"accessKey", "secretKey"}. The secret is shown this
        once; it is stored sealed and no call returns it again. Give both to import a pair."""
        if (access_key is None) != (secret_key is None):
            raise IamError("InvalidInput", "Give both the access key and the secret key, or neither.")
        if access_key is None:
            access_key, secret_key = new_key_pair()
        _check_name(ACCESS_KEY, access_key, "access key (16 to 128 letters and digits)")
        _check_name(SECRET_KEY, secret_key, "secret key (8 to 128 printable characters)")
        if access_key == self._root.root_user:
            raise IamError("EntityAlreadyExists", "That access key is the root user's.")
        command = {
            "op": "iam.key.create",
            "user": user,
            "access_key": access_key,
            "secret": self._sealer.seal(secret_key),
            "created": now_ms(),
        }
        self._submit(command, f"user {user} or access key {access_key}")
        return {"accessKey": access_key, "secretKey": secret_key}

    def list_access_keys(self, user: str) -> list[dict]:
        record = self._require(USER, user, "user")
        keys = (self._reader.iam.get(KEY, access_key) for access_key in record["keys"])
        return [_key_view(key) for key in keys if key is not None]

    def get_access_key(self, access_key: str) -> dict:
        return _key_view(self._require(KEY, access_key, "access key"))

    def set_access_key_enabled(self, access_key: str, enabled: bool) -> None:
        self._submit({"op": "iam.key.enable", "access_key": access_key, "enabled": bool(enabled)}, access_key)

    def delete_access_key(self, access_key: str) -> None:
        self._submit({"op": "iam.key.delete", "access_key": access_key}, access_key)

    # -- groups -----------------------------------------------------------------------------

    def create_group(self, name: str) -> dict:
        _check_name(GROUP_NAME, name, "group name")
        self._submit({"op": "iam.group.create", "name": name, "created": now_ms()}, f"group {name}")
        return self.get_group(name)

    def get_group(self, name: str) -> dict:
        return _public(self._require(GROUP, name, "group"))

    def list_groups(self) -> list[dict]:
        return [_public(record) for record in self._reader.iam.all(GROUP)]

    def delete_group(self, name: str) -> None:
        """Delete a group; its members lose the group's policies, nothing else."""
        self._submit({"op": "iam.group.delete", "name": name}, f"group {name}")

    def add_user_to_group(self, group: str, user: str) -> None:
        self._submit({"op": "iam.group.add", "group": group, "user": user}, f"group {group} or user {user}")

    def remove_user_from_group(self, group: str, user: str) -> None:
        self._submit({"op": "iam.group.remove", "group": group, "user": user}, f"group {group} or user {user}")

    # -- managed policies -------------------------------------------------------------------

    def put_policy(self, name: str, document: str | bytes) -> dict:
        """Create a managed policy or replace its document.

        Raises:
            IamError: MalformedPolicyDocument with what is wrong with the document.
        """
        _check_name(POLICY_NAME, name, "policy name")
        try:
            policy = parse(document)
        except PolicyError as exc:
            raise IamError("MalformedPolicyDocument", str(exc)) from None
        self._submit({"op": "iam.policy.put", "name": name, "document": policy.text, "updated": now_ms()}, name)
        return self.get_policy(name)

    def get_policy(self, name: str) -> dict:
        return _public(self._require(POLICY, name, "policy"))

    def list_policies(self) -> list[dict]:
        return [_public(record) for record in self._reader.iam.all(POLICY)]

    def delete_policy(self, name: str) -> None:
        """Delete a policy that is attached nowhere (else DeleteConflict)."""
        self._submit({"op": "iam.policy.delete", "name": name}, f"policy {name}")

    def attach_policy(self, policy: str, user: str | None = None, group: str | None = None) -> None:
        """Attach a policy to a user or to a group (exactly one of them)."""
        self._submit(_attachment("iam.policy.attach", policy, user, group), f"policy {policy} or {user or group}")

    def detach_policy(self, policy: str, user: str | None = None, group: str | None = None) -> None:
        self._submit(_attachment("iam.policy.detach", policy, user, group), f"policy {policy} or {user or group}")

    # -- plumbing ---------------------------------------------------------------------------

    def _require(self, kind: bytes, name: str, what: str) -> dict:
        record = self._reader.iam.get(kind, name)
        if record is None:
            raise IamError("NoSuchEntity", f"The {what} with name {name} cannot be found.")
        return record

    def _submit(self, command: dict, subject: str) -> None:
        try:
            result = self._supervisor.submit(command, None, COMMIT_TIMEOUT)
        except SupervisorUnavailable as exc:
            raise IamError("ServiceUnavailable", str(exc)) from exc
        status = result.get("status")
        if status == "ok":
            return
        if status == "NoSuchEntity":
            raise IamError(status, f"Not found: {subject}.")
        if status == "EntityAlreadyExists":
            raise IamError(status, f"Already exists: {subject}.")
        if status == "DeleteConflict":
            raise IamError(status, f"Still in use: {subject}.")
        if status == "InvalidRequest":
            raise IamError("InvalidInput", f"The change to {subject} is not valid.")
        raise IamError("ServiceUnavailable", f"The metadata log is unavailable: {result.get('reason', status)}.")


def _restricted(bucket: dict | None, bucket_policy: Policy | None) -> bool:
    """Whether RestrictPublicBuckets keeps the bucket's (public) policy from granting to everyone."""
    return bucket_policy is not None and bucket_policy.public and blocks(bucket, RESTRICT_PUBLIC_BUCKETS)


def _check_name(pattern: re.Pattern, value, what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise IamError("InvalidInput", f"Invalid {what}: {value!r}.")


def _attachment(op: str, policy: str, user: str | None, group: str | None) -> dict:
    if (user is None) == (group is None):
        raise IamError("InvalidInput", "Name exactly one of a user and a group.")
    return {"op": op, "policy": policy, **({"user": user} if user is not None else {"group": group})}


def _public(record: dict) -> dict:
    record.pop("revision", None)
    return record


def _user_view(record: dict) -> dict:
    record["accessKeys"] = record.pop("keys")
    return record


def _key_view(record: dict) -> dict:
    return {
        "accessKey": record["access_key"],
        "user": record["user"],
        "created": record["created"],
        "enabled": record["enabled"],
    }


class IamLookups:
    """One request's lookups of keys, principals and policies, in one IAM revision.

    The revision is read at most once, by the first lookup that needs the cache: every read is
    an LMDB transaction, and under load each one costs a hand-off of the GIL among the
    worker's threads. The root user's lookups need none.
    """

    __slots__ = ("_service", "_cache")

    def __init__(self, service: IamService):
        self._service = service
        self._cache: dict | None = None

    def _current(self) -> dict:
        if self._cache is None:
            self._cache = self._service._current()
        return self._cache

    def secret_for(self, access_key: str) -> str | None:
        root_secret = self._service._root.secret_for(access_key)
        if root_secret is not None:
            return root_secret
        found = self._active_key(access_key)
        return None if found is None else found[0]

    def principal_for(self, access_key: str) -> Principal:
        root = self._service._root
        if access_key == root.root_user:
            return root.principal
        found = self._active_key(access_key)
        if found is None:
            return ANONYMOUS
        return found[1]

    def _active_key(self, access_key: str) -> tuple[str, Principal] | None:
        cache = self._current()
        entry = cache.get(("key", access_key), cache)
        if entry is cache:
            entry = None
            reader = self._service._reader.iam
            key = reader.get(KEY, access_key)
            user = None if key is None else reader.get(USER, key["user"])
            if key is not None and user is not None and key["enabled"] and user["enabled"]:
                try:
                    secret = self._service._sealer.unseal(key["secret"])
                except SealError:
                    secret = None
                if secret is not None:
                    entry = (secret, Principal("user", user["name"], canonical_id(user["name"])))
            cache[("key", access_key)] = entry
        return entry  # type: ignore[return-value]

    def owner_names(self) -> dict[str, str]:
        """Every account's name by its canonical id (the root user's included): what an ACL's
        canonical-user grantee and email grantee resolve against."""
        cache = self._current()
        names = cache.get("owner names")
        if names is None:
            root = self._service._root
            names = {canonical_id(record["name"]): record["name"] for record in self._service._reader.iam.all(USER)}
            names[root.root_owner_id] = root.root_user
            cache["owner names"] = names
        return names

    def identity_policies(self, user: str) -> list[Policy]:
        cache = self._current()
        policies = cache.get(("user", user))
        if policies is None:
            policies = cache[("user", user)] = self._collect_policies(user, cache)
        return policies

    def _collect_policies(self, user: str, cache: dict) -> list[Policy]:
        reader = self._service._reader.iam
        record = reader.get(USER, user)
        if record is None:
            return []
        names = list(record["policies"])
        for group_name in record["groups"]:
            group = reader.get(GROUP, group_name)
            if group is not None:
                names.extend(group["policies"])
        policies = []
        for name in dict.fromkeys(names):
            compiled = cache.get(("policy", name))
            if compiled is None:
                stored = reader.get(POLICY, name)
                if stored is None:
                    continue
                compiled = cache[("policy", name)] = parse(stored["document"])
            policies.append(compiled)
        return policies
