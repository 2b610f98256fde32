"""Access control lists: canned ACLs, grants, and what they allow.

A grant is [grantee, permission]; a grantee is `id:<canonical id>` or `group:<name>` with
name AllUsers, AuthenticatedUsers or LogDelivery (S3's predefined groups). A bucket keeps
its grants in its "acl" setting and an object version in its record's "acl" field, the
owner's FULL_CONTROL grant included; with none stored, the ACL is `private`.

The bucket's owner (the user who created it) has full control of the bucket and of every
object in it, whatever the ACLs say (as with S3's object ownership "bucket owner
enforced"); an object's owner (its writer) has full control of that object.
"""

from __future__ import annotations

from collections.abc import Callable

from nebulaio.iam.actions import BUCKET, FULL_CONTROL, READ, READ_ACP, WRITE, Action
from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.policy import Principal

ALL_USERS = "group:AllUsers"
AUTHENTICATED_USERS = "group:AuthenticatedUsers"
LOG_DELIVERY = "group:LogDelivery"
GROUPS = {
    "http://acs.amazonaws.com/groups/global/AllUsers": ALL_USERS,
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": AUTHENTICATED_USERS,
    "http://acs.amazonaws.com/groups/s3/LogDelivery": LOG_DELIVERY,
}
GROUP_URIS = {grantee: uri for uri, grantee in GROUPS.items()}
ID_PREFIX = "id:"

# canned ACL -> grants besides the owner's FULL_CONTROL; "bucket-owner" stands for the bucket owner
CANNED: dict[str, list[tuple[str, str]]] = {
    "private": [],
    "public-read": [(ALL_USERS, READ)],
    "public-read-write": [(ALL_USERS, READ), (ALL_USERS, WRITE)],
    "authenticated-read": [(AUTHENTICATED_USERS, READ)],
    "aws-exec-read": [],
    "bucket-owner-read": [("bucket-owner", READ)],
    "bucket-owner-full-control": [("bucket-owner", FULL_CONTROL)],
    "log-delivery-write": [(LOG_DELIVERY, WRITE), (LOG_DELIVERY, READ_ACP)],
}


def canned_grants(name: str, owner: str | None, bucket_owner: str) -> list[list[str]]:
    """The grants a canned ACL stands for, on a resource `owner` owns (None: anonymous)."""
    grants = [] if owner is None else [[ID_PREFIX + canonical_id(owner), FULL_CONTROL]]
    for grantee, permission in CANNED[name]:
        if grantee == "bucket-owner":
            if bucket_owner == owner:
                continue
            grantee = ID_PREFIX + canonical_id(bucket_owner)
        grants.append([grantee, permission])
    return grants


def grants_of(stored: str | list | None, owner: str | None, bucket_owner: str) -> list:
    """The grants of a stored ACL: a canned ACL's name, a list of grants, or None (private)."""
    if isinstance(stored, list):
        return stored
    return canned_grants(stored or "private", owner, bucket_owner)


def grantees_of(principal: Principal) -> frozenset[str]:
    if principal.kind == "anonymous":
        return frozenset((ALL_USERS,))
    return frozenset((ALL_USERS, AUTHENTICATED_USERS, ID_PREFIX + (principal.canonical_id or "")))


def grants_allow(grants: list, principal: Principal, permission: str) -> bool:
    grantees = grantees_of(principal)
    return any(grantee in grantees and granted in (permission, FULL_CONTROL) for grantee, granted in grants)


def allows(principal: Principal, action: Action, bucket: dict | None, object_grants: Callable[[], list | None]) -> bool:
    """Whether the ACLs (and ownership) grant an action no policy decided."""
    if bucket is None:
        return False
    if principal.kind == "user" and principal.name == bucket["owner"]:
        return True
    if action.permission is None:
        return False
    if action.acl_of == BUCKET:
        grants = grants_of(bucket.get("acl"), bucket["owner"], bucket["owner"])
    else:
        grants = object_grants()
    return grants is not None and grants_allow(grants, principal, action.permission)
