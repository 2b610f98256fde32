"""ACLs over HTTP: Get/PutBucketAcl, Get/PutObjectAcl (`?acl`) and the x-amz-acl header.

An ACL is stored as a canned ACL's name (what x-amz-acl gives) or as a list of grants (what
an AccessControlPolicy body or x-amz-grant-* headers give); iam/acl.py says what they allow.
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.iam import acl
from nebulaio.iam.actions import PERMISSIONS
from nebulaio.iam.credentials import canonical_id
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
ANONYMOUS_OWNER = ("65a011a29cdf8ec533ec3d1ccaae921c", "anonymous")


def check_canned_acl(name: str | None) -> str | None:
    """The canned ACL an x-amz-acl value names (None: the header is absent).

    Raises:
        S3Error: InvalidArgument for a name S3 does not know.
    """
    if name is not None and name not in acl.CANNED:
        raise S3Error("InvalidArgument", None, ArgumentName=CANNED_HEADER, ArgumentValue=name)
    return name


def owner_of(name: str | None) -> tuple[str, str]:
    """(canonical id, display name) of an owner; None is the anonymous principal."""
    return ANONYMOUS_OWNER if name is None else (canonical_id(name), name)


def _grant_xml(grantee: str, permission: str, names: dict[str, str]) -> str:
    if grantee.startswith(acl.ID_PREFIX):
        cid = grantee[len(acl.ID_PREFIX) :]
        name = names.get(cid)
        display = "" if name is None else f"<DisplayName>{xml.escape(name)}</DisplayName>"
        who = f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser"><ID>{cid}</ID>{display}</Grantee>'
    else:
        who = f'<Grantee xmlns:xsi="{XSI}" xsi:type="Group"><URI>{acl.GROUP_URIS[grantee]}</URI></Grantee>'
    return f"<Grant>{who}<Permission>{permission}</Permission></Grant>"


def _render(resp, owner: str | None, grants: list, bucket_owner: str) -> None:
    owner_id, owner_name = owner_of(owner)
    names = {canonical_id(n): n for n in (owner, bucket_owner) if n is not None}
    body = "".join(_grant_xml(grantee, permission, names) for grantee, permission in grants)
    resp.content_type = XML_TYPE
    resp.data = xml.document(
        "AccessControlPolicy",
        f"{xml.owner_element(owner_id, owner_name)}<AccessControlList>{body}</AccessControlList>",
    )


def _requested_grants(api, request) -> list | str:
    """The ACL a PUT ?acl asks for: a canned ACL's name, or grants from the headers or the body.

    Raises:
        S3Error: InvalidRequest for more than one way at once; MalformedACLError or
            InvalidArgument for a body or header S3 would refuse.
    """
    canned = check_canned_acl(request.header(CANNED_HEADER))
    header_grants = [(name, permission) for name, permission in GRANT_HEADERS.items() if name in request.headers]
    body = read_body(request, api.request_timeout)
    ways = (canned is not None) + bool(header_grants) + bool(body)
    if ways > 1:
        raise S3Error("InvalidRequest", "Specify an ACL by exactly one of x-amz-acl, x-amz-grant-* or the body.")
    if canned is not None:
        return canned
    if header_grants:
        grants = []
        for name, permission in header_grants:
            grants.extend([grantee, permission] for grantee in _header_grantees(name, request.headers[name]))
        return grants
    if not body:
        raise S3Error("MalformedACLError")
    return _body_grants(body)


def _header_grantees(name: str, value: str) -> list[str]:
    """Grantees of an x-amz-grant-* header: `id="..."`, `uri="..."`, comma-separated."""
    grantees = []
    for item in value.split(","):
        kind, _, text = item.strip().partition("=")
        text = text.strip().strip('"')
        kind = kind.strip().lower()
        if kind == "id" and text:
            grantees.append(acl.ID_PREFIX + text)
        elif kind == "uri" and text in acl.GROUPS:
            grantees.append(acl.GROUPS[text])
        elif kind == "emailaddress":
            raise S3Error("UnresolvableGrantByEmailAddress")
        else:
            raise S3Error("InvalidArgument", None, ArgumentName=name, ArgumentValue=value[:1024])
    return grantees


def _body_grants(body: bytes) -> list:
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
            grants.append([acl.ID_PREFIX + grantee.findtext("ID").strip(), permission])
        elif kind == "Group" and (grantee.findtext("URI") or "").strip() in acl.GROUPS:
            grants.append([acl.GROUPS[grantee.findtext("URI").strip()], permission])
        elif kind == "AmazonCustomerByEmail":
            raise S3Error("UnresolvableGrantByEmailAddress")
        else:
            raise S3Error("MalformedACLError")
    return grants


def get_bucket_acl(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    owner = bucket["owner"]
    _render(resp, owner, acl.grants_of(bucket.get("acl"), owner, owner), owner)


def put_bucket_acl(api, request, resp) -> None:
    api.layer.bucket(request.bucket)
    requested = _requested_grants(api, request)
    api.layer.configure_bucket(request.bucket, "acl", None if requested == "private" else requested)


def get_object_acl(api, request, resp) -> None:
    bucket = api.layer.bucket(request.bucket)
    record, _ = api.layer.head(request.bucket, request.key, request.query.get("versionId"))
    owner = record.get("owner")
    version_header(resp, record)
    _render(resp, owner, acl.grants_of(record.get("acl"), owner, bucket["owner"]), bucket["owner"])


def put_object_acl(api, request, resp) -> None:
    version = request.query.get("versionId")
    record, _ = api.layer.head(request.bucket, request.key, version)
    api.layer.update(request.bucket, request.key, version, {"acl": _requested_grants(api, request)})
    version_header(resp, record)
