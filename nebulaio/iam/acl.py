"""Access control lists: canned ACLs, grants, and what they allow.

A grant is [grantee, permission]; a grantee is `id:<canonical id>` or `group:<name>` with
name AllUsers, AuthenticatedUsers or LogDelivery (S3's predefined groups). A bucket keeps
its grants in its "acl" setting and an object version in its record's "acl" field, the
owner's FULL_CONTROL grant included; with none stored, the ACL is `private`.

Every user is an account of its own, as in S3: it owns what it creates. The bucket's owner
(the user who created it) may do anything to the bucket, delete any object in it, and do
anything to the objects it owns; an object another account owns (its writer, unless the
bucket's Object Ownership gives it to the bucket owner) it reaches only through that
object's ACL, such as the bucket-owner-read and bucket-owner-full-control canned ACLs.
An object's owner may always read and change the object's ACL. Block Public Access and
Object Ownership (iam/publicaccess.py) decide which grants count at all.
"""

from __future__ import annotations

from collections.abc import Callable

from nebulaio.iam.actions import BUCKET, FULL_CONTROL, OBJECT, READ, READ_ACP, WRITE, WRITE_ACP, Action
from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.policy import Principal
from nebulaio.iam.publicaccess import IGNORE_PUBLIC_ACLS, acls_disabled, blocks

ALL_USERS = "group:AllUsers"
AUTHENTICATED_USERS = "group:AuthenticatedUsers"
LOG_DELIVERY = "group:LogDelivery"
GROUPS = {
    "http://acs.amazonaws.com/groups/global/AllUsers": ALL_USERS,
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": AUTHENTICATED_USERS,
    "http://acs.amazonaws.com/groups/s3/LogDelivery": LOG_DELIVERY,
}
GROUP_URIS = {grantee: uri for uri, grantee in GROUPS.items()}
PUBLIC_GRANTEES = frozenset((ALL_USERS, AUTHENTICATED_USERS))
"""Grantees that make an ACL public, as Block Public Access counts it."""
ID_PREFIX = "id:"
ANONYMOUS_OWNER = ("65a011a29cdf8ec533ec3d1ccaae921c", "anonymous")
"""S3's canonical id and display name of the anonymous principal, as owner of what it writes."""

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


OWNER_IMPLICIT = frozenset((READ_ACP, WRITE_ACP))
"""What an object's owner may always do to it, whatever its ACL grants."""

PUBLIC_CANNED = frozenset(name for name, grants in CANNED.items() if any(g in PUBLIC_GRANTEES for g, _ in grants))
PRIVATE = "private"
OWNER_FULL_CONTROL = "bucket-owner-full-control"


def is_public(stored: str | list | None) -> bool:
    """Whether a stored ACL (a canned ACL's name, grants, or None) grants anything to everyone."""
    if isinstance(stored, list):
        return any(grantee in PUBLIC_GRANTEES for grantee, _ in stored)
    return stored in PUBLIC_CANNED


def owner_only(stored: str | list | None, bucket_owner: str) -> bool:
    """Whether an ACL gives nothing to anyone but the bucket owner: the only ACL a bucket whose
    ACLs are disabled accepts."""
    if isinstance(stored, list):
        return stored == [[ID_PREFIX + canonical_id(bucket_owner), FULL_CONTROL]]
    return stored in (None, PRIVATE, OWNER_FULL_CONTROL)


def owner_of(name: str | None) -> tuple[str, str]:
    """(canonical id, display name) of an owner; None is the anonymous principal."""
    return ANONYMOUS_OWNER if name is None else (canonical_id(name), name)


def object_owner(bucket: dict, record: dict) -> str | None:
    """Who owns an object version: the bucket owner where ACLs are disabled, else its recorded owner."""
    return bucket["owner"] if acls_disabled(bucket) else record.get("owner")


def version_grants(bucket: dict, record: dict) -> list:
    """An object version's grants as they stand: only the owner's where the bucket disabled ACLs."""
    stored = None if acls_disabled(bucket) else record.get("acl")
    return grants_of(stored, object_owner(bucket, record), bucket["owner"])


def bucket_grants(bucket: dict) -> list:
    """The bucket's grants as they stand: only the owner's where the bucket disabled ACLs."""
    stored = None if acls_disabled(bucket) else bucket.get("acl")
    return grants_of(stored, bucket["owner"], bucket["owner"])


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


def allows(principal: Principal, action: Action, bucket: dict | None, object_record: Callable[[], dict | None]) -> bool:
    """Whether the ACLs (and ownership) grant an action no policy decided.

    `object_record()` is the addressed object version's record (None: no such object), asked
    for only when the object's ACL is what decides.
    """
    if bucket is None:
        return False
    account = principal.name if principal.kind == "user" else None
    owns_bucket = account is not None and account == bucket["owner"]
    if owns_bucket and action.acl_of != OBJECT:
        return True
    record = None
    if action.acl_of == OBJECT:
        record = object_record()
        if record is None:
            return owns_bucket
        owner = object_owner(bucket, record)
        if account is not None and account == owner and (owns_bucket or action.permission in OWNER_IMPLICIT):
            return True
    if action.permission is None or acls_disabled(bucket):
        return False
    grants = bucket_grants(bucket) if action.acl_of == BUCKET else version_grants(bucket, record)
    if blocks(bucket, IGNORE_PUBLIC_ACLS):
        grants = [grant for grant in grants if grant[0] not in PUBLIC_GRANTEES]
    return grants_allow(grants, principal, action.permission)
