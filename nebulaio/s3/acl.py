"""ACLs over HTTP: Get/PutBucketAcl, Get/PutObjectAcl (`?acl`) and the x-amz-acl and
x-amz-grant-* headers of writes.

An ACL is stored as a canned ACL's name (what x-amz-acl gives) or as a list of grants (what
an AccessControlPolicy body or x-amz-grant-* headers give); iam/acl.py says what they allow.
Every ACL a request sets passes the bucket's Block Public Access and Object Ownership first
(iam/publicaccess.py), and a new object's owner is the one its bucket's Object Ownership names.

Every user is an account of its own, known by its canonical id (iam/credentials.py). A grant
names an account by that id or by its email address, which is the user's name when that name
is an email address; as in S3, a grant by email is kept (and shown) as a grant to the canonical
user it resolves to, and a grant to an id or address no account has is refused.
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.iam import acl
from nebulaio.iam.actions import PERMISSIONS
from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.publicaccess import (
    BLOCK_PUBLIC_ACLS,
    BUCKET_OWNER_PREFERRED,
    OWNERSHIP,
    acls_disabled,
    blocks,
)
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body
from nebulaio.s3.versioning import version_header

XML_TYPE = "application/xml"
CANNED_HEADER = "x-amz-acl"
GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ONE_WAY_MESSAGE = "Specify an ACL by exactly one of x-amz-acl, x-amz-grant-* or the body."


def check_canned_acl(name: str | None) -> str | None:
    """The canned ACL an x-amz-acl value names (None: the header is absent).

    Raises:
        S3Error: InvalidArgument for a name S3 does not know.
    """
    if name is not None and name not in acl.CANNED:
        raise S3Error("InvalidArgument", None, ArgumentName=CANNED_HEADER, ArgumentValue=name)
    return name


def _grant_xml(grantee: str, permission: str, names: dict[str, str]) -> str:
    """One Grant, its Grantee typed as S3 types it: a CanonicalUser (with the account's name
    while it exists) or a Group."""
    if grantee.startswith(acl.ID_PREFIX):
        cid = grantee[len(acl.ID_PREFIX) :]
        name = names.get(cid)
        display = "" if name is None else f"<DisplayName>{xml.escape(name)}</DisplayName>"
        who = f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser"><ID>{cid}</ID>{display}</Grantee>'
    else:
        who = f'<Grantee xmlns:xsi="{XSI}" xsi:type="Group"><URI>{acl.GROUP_URIS[grantee]}</URI></Grantee>'
    return f"<Grant>{who}<Permission>{permission}</Permission></Grant>"


def _render(request, resp, owner: str | None, grants: list, bucket_owner: str) -> None:
    owner_id, owner_name = acl.owner_of(owner)
    names = {canonical_id(n): n for n in (owner, bucket_owner) if n is not None}
    names.update(request.iam.owner_names())
    body = "".join(_grant_xml(grantee, permission, names) for grantee, permission in grants)
    resp.content_type = XML_TYPE
    resp.data = xml.document(
        "AccessControlPolicy",
        f"{xml.owner_element(owner_id, owner_name)}<AccessControlList>{body}</AccessControlList>",
    )


def header_acl(request) -> str | list | None:
    """The ACL a request's headers ask for: a canned ACL's name, grants, or None for neither.

    Raises:
        S3Error: InvalidRequest for both x-amz-acl and x-amz-grant-*; InvalidArgument for a
            canned ACL or a grantee S3 would refuse.
    """
    canned = check_canned_acl(request.header(CANNED_HEADER))
    header_grants = [(name, permission) for name, permission in GRANT_HEADERS.items() if name in request.headers]
    if not header_grants:
        return canned
    if canned is not None:
        raise S3Error("InvalidRequest", ONE_WAY_MESSAGE)
    owners = request.iam.owner_names()
    grants = []
    for name, permission in header_grants:
        grants.extend([grantee, permission] for grantee in _header_grantees(name, request.headers[name], owners))
    return grants


def _requested_acl(api, request) -> list | str:
    """The ACL a PUT ?acl asks for: a canned ACL's name, or grants from the headers or the body.

    Raises:
        S3Error: InvalidRequest for more than one way at once; MalformedACLError or
            InvalidArgument for a body or header S3 would refuse.
    """
    requested = header_acl(request)
    body = read_body(request, api.request_timeout)
    if requested is not None and body:
        raise S3Error("InvalidRequest", ONE_WAY_MESSAGE)
    if requested is not None:
        return requested
    if not body:
        raise S3Error("MalformedACLError")
    return _body_grants(body, request.iam.owner_names())


def check_acl(bucket: dict, requested: str | list | None) -> None:
    """Refuse an ACL the bucket does not let anyone set, on itself or on an object in it.

    Raises:
        S3Error: AccessControlListNotSupported where the bucket disabled ACLs and the ACL
            gives anything to anyone but the bucket owner; AccessDenied for a public ACL where
            the bucket blocks public ACLs.
    """
    if acls_disabled(bucket):
        if not acl.owner_only(requested, bucket["owner"]):
            raise S3Error("AccessControlListNotSupported")
    elif blocks(bucket, BLOCK_PUBLIC_ACLS) and acl.is_public(requested):
        raise S3Error("AccessDenied")


def stored_acl(requested: str | list | None, disabled: bool) -> str | list | None:
    """What an accepted ACL is kept as: None stands for private, and for any ACL where the
    bucket's ACLs are `disabled`."""
    return None if requested == acl.PRIVATE or disabled else requested


def ownership(api, request, requested: str | list | None) -> dict:
    """The owner and ACL fields of a version the request writes, with the ACL it asks for.

    The writer owns it, unless the bucket's Object Ownership gives it to the bucket owner.

    Raises:
        S3Error: as `check_acl` does.
    """
    bucket = api.layer.bucket(request.bucket)
    check_acl(bucket, requested)
    to_bucket_owner = acls_disabled(bucket) or (
        bucket.get(OWNERSHIP) == BUCKET_OWNER_PREFERRED and requested == acl.OWNER_FULL_CONTROL
    )
    return {
        "owner": bucket["owner"] if to_bucket_owner else request.user,
        "acl": stored_acl(requested, acls_disabled(bucket)),
    }


def _account_grantee(owners: dict[str, str], cid: str) -> str:
    """The grantee of an account's canonical id.

    Raises:
        S3Error: InvalidArgument for an id no account has.
    """
    if cid not in owners:
        raise S3Error("InvalidArgument", "Invalid id", ArgumentName="CanonicalUser/ID", ArgumentValue=cid[:1024])
    return acl.ID_PREFIX + cid


def _email_grantee(owners: dict[str, str], address: str) -> str:
    """The grantee an email address resolves to: the account whose name it is.

    Raises:
        S3Error: UnresolvableGrantByEmailAddress for an address no account has.
    """
    wanted = address.lower()
    for cid, name in owners.items():
        if name.lower() == wanted:
            return acl.ID_PREFIX + cid
    raise S3Error("UnresolvableGrantByEmailAddress")


def _header_grantees(name: str, value: str, owners: dict[str, str]) -> list[str]:
    """Grantees of an x-amz-grant-* header: `id="..."`, `uri="..."`, `emailAddress="..."`,
    comma-separated."""
    grantees = []
    for item in value.split(","):
        kind, _, text = item.strip().partition("=")
        text = text.strip().strip('"')
        kind = kind.strip().lower()
        if kind == "id" and text:
            grantees.append(_account_grantee(owners, text))
        elif kind == "uri" and text in acl.GROUPS:
            grantees.append(acl.GROUPS[text])
        elif kind == "emailaddress" and text:
            grantees.append(_email_grantee(owners, text))
        else:
            raise S3Error("InvalidArgument", None, ArgumentName=name, ArgumentValue=value[:1024])
    return grantees


def _body_grants(body: bytes, owners: dict[str, str]) -> list:
    tree = xml.parse(body, "AccessControlPolicy")
    access_list = tree.find("AccessControlList")
    if access_list is None:
        raise S3Error("MalformedACLError")
    grants = []
    for grant in access_list:
        grantee, permission = grant.find("Grantee"), grant.findtext("Permission")
        if grant.tag != "Grant" or grantee is None or permission not in PERMISSIONS:
            raise S3Error("MalformedACLError")
        kind = grantee.get(f"{{{XSI}}}type") or grantee.get("type")
        if kind == "CanonicalUser" and (grantee.findtext("ID") or "").strip():
            grants.append([_account_grantee(owners, grantee.findtext("ID").strip()), permission])
        elif kind == "Group" and (grantee.findtext("URI") or "").strip() in acl.GROUPS:
            grants.append([acl.GROUPS[grantee.findtext("URI").strip()], permission])
        elif kind == "AmazonCustomerByEmail" and (grantee.findtext("EmailAddress") or "").strip():
            grants.append([_email_grantee(owners, grantee.findtext("EmailAddress").strip()), permission])
        else:
            raise S3Error("MalformedACLError")
    return grants


def get_bucket_acl(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    _render(request, resp, bucket["owner"], acl.bucket_grants(bucket), bucket["owner"])


def put_bucket_acl(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    requested = _requested_acl(api, request)
    check_acl(bucket, requested)
    api.layer.configure_bucket(request.bucket, "acl", stored_acl(requested, acls_disabled(bucket)))


def get_object_acl(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    record, _ = api.layer.head(request.bucket, request.key, request.query.get("versionId"))
    version_header(resp, record)
    _render(request, resp, acl.object_owner(bucket, record), acl.version_grants(bucket, record), bucket["owner"])


def put_object_acl(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    version = request.query.get("versionId")
    record, _ = api.layer.head(request.bucket, request.key, version)
    requested = _requested_acl(api, request)
    check_acl(bucket, requested)
    api.layer.update(request.bucket, request.key, version, {"acl": stored_acl(requested, acls_disabled(bucket))})
    version_header(resp, record)
