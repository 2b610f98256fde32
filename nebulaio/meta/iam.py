"""Identities in the replica: users, access keys, groups and managed policies, and their commands.

One named database holds them all, each kind under its own one-letter prefix:

    u \\0 user name      -> {"name", "created", "enabled", "keys", "groups", "policies"}
    k \\0 access key     -> {"access_key", "user", "secret" (sealed), "created", "enabled"}
    g \\0 group name     -> {"name", "created", "members", "policies"}
    p \\0 policy name    -> {"name", "document", "created", "updated", "revision", "users", "groups"}
    \\0revision          -> {"index": raft index of the last change}

Every change stores its raft index under `\\0revision`, so a worker keeps what it derived
from these records (secrets, compiled policies) exactly as long as the revision is the same:
one point read per request tells it whether anything changed.

Relations are kept on both sides (a user lists its groups, a group its members) so a read
never scans. Deleting a user takes its keys and memberships along, and deleting a group its
memberships; a policy still attached somewhere cannot be deleted (DeleteConflict), as in IAM.
Deleting or disabling a user also raises its Admin API token generation (system db), so no
token issued before comes back to life when a user of that name is created or enabled again.
"""

from __future__ import annotations

from collections.abc import Callable

import lmdb

from nebulaio.meta.env import IAM_DB, raise_token_generation
from nebulaio.meta.records import IAM

USER = b"u"
KEY = b"k"
GROUP = b"g"
POLICY = b"p"
REVISION_KEY = b"\0revision"
SEPARATOR = b"\0"


def iam_key(kind: bytes, name: str) -> bytes:
    return kind + SEPARATOR + name.encode()


class IamReader:
    """Reads identities for workers (each call its own short read transaction)."""

    __slots__ = ("_db", "_env")

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._db = env.open_db(IAM_DB, create=False)

    def revision(self) -> int:
        with self._env.begin(db=self._db) as txn:
            value = txn.get(REVISION_KEY)
        return 0 if value is None else IAM.decode_header(value)["index"]

    def get(self, kind: bytes, name: str) -> dict | None:
        with self._env.begin(db=self._db) as txn:
            value = txn.get(iam_key(kind, name))
        return None if value is None else IAM.decode_header(value)

    def all(self, kind: bytes) -> list[dict]:
        """Every record of a kind, sorted by name."""
        prefix = kind + SEPARATOR
        with self._env.begin(db=self._db) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return []
            records = []
            for key, value in cursor.iternext():
                if not key.startswith(prefix):
                    break
                records.append(IAM.decode_header(value))
            return records


def _added(items: list[str], item: str) -> list[str]:
    return items if item in items else sorted([*items, item])


def _removed(items: list[str], item: str) -> list[str]:
    return [i for i in items if i != item]


class IamCommands:
    """Apply handlers of the iam.* commands; every refusal leaves the replica unchanged."""

    __slots__ = ("_db", "_system")

    def __init__(self, env: lmdb.Environment, system_db: lmdb._Database) -> None:
        self._db = env.open_db(IAM_DB, create=False)
        self._system = system_db

    def handlers(self) -> dict[str, Callable]:
        return {
            "iam.user.create": self._user_create,
            "iam.user.delete": self._user_delete,
            "iam.user.enable": self._user_enable,
            "iam.key.create": self._key_create,
            "iam.key.enable": self._key_enable,
            "iam.key.delete": self._key_delete,
            "iam.group.create": self._group_create,
            "iam.group.delete": self._group_delete,
            "iam.group.add": self._group_add,
            "iam.group.remove": self._group_remove,
            "iam.policy.put": self._policy_put,
            "iam.policy.delete": self._policy_delete,
            "iam.policy.attach": self._policy_attach,
            "iam.policy.detach": self._policy_detach,
        }

    # -- storage --------------------------------------------------------------------------

    def _get(self, batch, kind: bytes, name: str) -> dict | None:
        value = batch.txn.get(iam_key(kind, name), db=self._db)
        return None if value is None else IAM.decode_header(value)

    def _put(self, batch, kind: bytes, name: str, record: dict) -> None:
        batch.txn.put(iam_key(kind, name), IAM.encode(record), db=self._db)
        self._changed(batch)

    def _delete(self, batch, kind: bytes, name: str) -> None:
        batch.txn.delete(iam_key(kind, name), db=self._db)
        self._changed(batch)

    def _changed(self, batch) -> None:
        batch.txn.put(REVISION_KEY, IAM.encode({"index": batch.raft_index}), db=self._db)

    # -- users and keys -------------------------------------------------------------------

    def _user_create(self, batch, command: dict, blob) -> dict:
        name = command["name"]
        if self._get(batch, USER, name) is not None:
            return {"status": "EntityAlreadyExists"}
        record = {"name": name, "created": command["created"], "enabled": True}
        self._put(batch, USER, name, dict(record, keys=[], groups=[], policies=[]))
        return {"status": "ok"}

    def _user_delete(self, batch, command: dict, blob) -> dict:
        name = command["name"]
        user = self._get(batch, USER, name)
        if user is None:
            return {"status": "NoSuchEntity"}
        for access_key in user["keys"]:
            self._delete(batch, KEY, access_key)
        self._drop_references(batch, GROUP, user["groups"], "members", name)
        self._drop_references(batch, POLICY, user["policies"], "users", name)
        self._delete(batch, USER, name)
        raise_token_generation(batch.txn, self._system, name)
        return {"status": "ok"}

    def _user_enable(self, batch, command: dict, blob) -> dict:
        user = self._get(batch, USER, command["name"])
        if user is None:
            return {"status": "NoSuchEntity"}
        user["enabled"] = bool(command["enabled"])
        self._put(batch, USER, user["name"], user)
        if not user["enabled"]:
            raise_token_generation(batch.txn, self._system, user["name"])
        return {"status": "ok"}

    def _key_create(self, batch, command: dict, blob) -> dict:
        access_key, user_name = command["access_key"], command["user"]
        user = self._get(batch, USER, user_name)
        if user is None:
            return {"status": "NoSuchEntity"}
        if self._get(batch, KEY, access_key) is not None:
            return {"status": "EntityAlreadyExists"}
        record = {
            "access_key": access_key,
            "user": user_name,
            "secret": command["secret"],
            "created": command["created"],
            "enabled": True,
        }
        self._put(batch, KEY, access_key, record)
        user["keys"] = _added(user["keys"], access_key)
        self._put(batch, USER, user_name, user)
        return {"status": "ok"}

    def _key_enable(self, batch, command: dict, blob) -> dict:
        key = self._get(batch, KEY, command["access_key"])
        if key is None:
            return {"status": "NoSuchEntity"}
        key["enabled"] = bool(command["enabled"])
        self._put(batch, KEY, key["access_key"], key)
        return {"status": "ok"}

    def _key_delete(self, batch, command: dict, blob) -> dict:
        access_key = command["access_key"]
        key = self._get(batch, KEY, access_key)
        if key is None:
            return {"status": "NoSuchEntity"}
        user = self._get(batch, USER, key["user"])
        if user is not None:
            user["keys"] = _removed(user["keys"], access_key)
            self._put(batch, USER, user["name"], user)
        self._delete(batch, KEY, access_key)
        return {"status": "ok"}

    # -- groups ---------------------------------------------------------------------------

    def _group_create(self, batch, command: dict, blob) -> dict:
        name = command["name"]
        if self._get(batch, GROUP, name) is not None:
            return {"status": "EntityAlreadyExists"}
        self._put(batch, GROUP, name, {"name": name, "created": command["created"], "members": [], "policies": []})
        return {"status": "ok"}

    def _group_delete(self, batch, command: dict, blob) -> dict:
        name = command["name"]
        group = self._get(batch, GROUP, name)
        if group is None:
            return {"status": "NoSuchEntity"}
        self._drop_references(batch, USER, group["members"], "groups", name)
        self._drop_references(batch, POLICY, group["policies"], "groups", name)
        self._delete(batch, GROUP, name)
        return {"status": "ok"}

    def _drop_references(self, batch, kind, names: list[str], field: str, name: str) -> None:
        """Remove `name` from the `field` list of each of the `kind` entries named `names`."""
        for other in names:
            entry = self._get(batch, kind, other)
            if entry is not None:
                entry[field] = _removed(entry[field], name)
                self._put(batch, kind, other, entry)

    def _group_add(self, batch, command: dict, blob) -> dict:
        return self._membership(batch, command, _added)

    def _group_remove(self, batch, command: dict, blob) -> dict:
        return self._membership(batch, command, _removed)

    def _membership(self, batch, command: dict, change: Callable[[list, str], list]) -> dict:
        """Add or remove a user's membership on both sides: the group's members, the user's groups."""
        group = self._get(batch, GROUP, command["group"])
        user = self._get(batch, USER, command["user"])
        if group is None or user is None:
            return {"status": "NoSuchEntity"}
        group["members"] = change(group["members"], user["name"])
        user["groups"] = change(user["groups"], group["name"])
        self._put(batch, GROUP, group["name"], group)
        self._put(batch, USER, user["name"], user)
        return {"status": "ok"}

    # -- policies -------------------------------------------------------------------------

    def _policy_put(self, batch, command: dict, blob) -> dict:
        """Create a policy or replace its document (the proposer has validated it)."""
        name = command["name"]
        policy = self._get(batch, POLICY, name) or {
            "name": name,
            "created": command["updated"],
            "users": [],
            "groups": [],
        }
        policy.update(document=command["document"], updated=command["updated"], revision=batch.raft_index)
        self._put(batch, POLICY, name, policy)
        return {"status": "ok"}

    def _policy_delete(self, batch, command: dict, blob) -> dict:
        policy = self._get(batch, POLICY, command["name"])
        if policy is None:
            return {"status": "NoSuchEntity"}
        if policy["users"] or policy["groups"]:
            return {"status": "DeleteConflict"}
        self._delete(batch, POLICY, policy["name"])
        return {"status": "ok"}

    def _policy_attach(self, batch, command: dict, blob) -> dict:
        return self._attachment(batch, command, _added)

    def _policy_detach(self, batch, command: dict, blob) -> dict:
        return self._attachment(batch, command, _removed)

    def _attachment(self, batch, command: dict, change: Callable[[list, str], list]) -> dict:
        """Attach or detach a policy on both sides: the policy's users or groups, the holder's policies."""
        policy = self._get(batch, POLICY, command["policy"])
        if "user" in command:
            kind, name, side = USER, command["user"], "users"
        else:
            kind, name, side = GROUP, command["group"], "groups"
        holder = self._get(batch, kind, name)
        if policy is None or holder is None:
            return {"status": "NoSuchEntity"}
        policy[side] = change(policy[side], holder["name"])
        holder["policies"] = change(holder["policies"], policy["name"])
        self._put(batch, POLICY, policy["name"], policy)
        self._put(batch, kind, holder["name"], holder)
        return {"status": "ok"}
