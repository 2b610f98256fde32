"""Object and bucket tagging: the `?tagging` subresource and the x-amz-tagging header.

Object tags live in the object's record (changed in place, not as a new version); bucket
tags are the bucket's "tagging" setting. Both are the same `Tagging` document.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from nebulaio.engine.errors import S3Error
from nebulaio.engine.tags import MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, check_tags
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check
from nebulaio.s3.versioning import version_header

TAGGING_HEADER = "x-amz-tagging"
TAGGING_DIRECTIVE = "x-amz-tagging-directive"
TAGGING_DIRECTIVES = ("COPY", "REPLACE")
TAGGING_HEADER_MESSAGE = (
    "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters "
    "without tag name duplicates."
)
XML_TYPE = "application/xml"


# -- the x-amz-tagging header ------------------------------------------------------------


def parse_tag_query(value: str) -> dict[str, str]:
    """The tag set of an x-amz-tagging value: `k1=v1&k2=v2`, form-encoded ("+" is a space).

    A name without "=" holds the empty value.

    Raises:
        S3Error: InvalidArgument for a pair that is not `name[=value]` with a name, for text
            that is not UTF-8, and for a repeated name; what check_tags raises for the tags.
    """
    pairs = []
    names = set()
    for part in value.split("&"):
        if not part:
            continue
        name, _, text = part.partition("=")
        try:
            if not name or "=" in text:
                raise ValueError(part)
            key = unquote_plus(name, errors="strict")
            if key in names:
                raise ValueError(part)
            pairs.append((key, unquote_plus(text, errors="strict")))
        except (ValueError, UnicodeDecodeError):
            raise S3Error(
                "InvalidArgument", TAGGING_HEADER_MESSAGE, ArgumentName=TAGGING_HEADER, ArgumentValue=value[:1024]
            ) from None
        names.add(key)
    return check_tags(pairs, MAX_OBJECT_TAGS)


def header_tags(request) -> dict[str, str]:
    """The tags an upload names in x-amz-tagging; empty without the header."""
    value = request.headers.get(TAGGING_HEADER)
    return {} if value is None else parse_tag_query(value)


def copy_tags(request) -> dict[str, str] | None:
    """The tags of a copy: None keeps the source's (COPY, the default); REPLACE takes the header's.

    Raises:
        S3Error: InvalidArgument for an unknown x-amz-tagging-directive.
    """
    directive = request.headers.get(TAGGING_DIRECTIVE, "COPY")
    if directive not in TAGGING_DIRECTIVES:
        raise S3Error(
            "InvalidArgument", "Unknown tagging directive.", ArgumentName=TAGGING_DIRECTIVE, ArgumentValue=directive
        )
    return header_tags(request) if directive == "REPLACE" else None


# -- the Tagging document ----------------------------------------------------------------


def parse_tag_set(body: bytes, limit: int) -> dict[str, str]:
    """The tag set of a `Tagging` document; `limit` is the most tags it may hold.

    Raises:
        S3Error: MalformedXML unless the document is one TagSet of Tag elements, each with
            exactly one Key and one Value; what check_tags raises for the tags.
    """
    tree = xml.parse(body, "Tagging")
    if len(tree) != 1 or tree[0].tag != "TagSet":
        raise S3Error("MalformedXML")
    pairs = []
    for tag in tree[0]:
        if tag.tag != "Tag" or len(tag) != 2:
            raise S3Error("MalformedXML")
        key, value = tag.find("Key"), tag.find("Value")
        if key is None or value is None:
            raise S3Error("MalformedXML")
        pairs.append((key.text or "", value.text or ""))
    return check_tags(pairs, limit)


def tagging_document(tags: dict[str, str]) -> bytes:
    tag_xml = "".join(
        f"<Tag><Key>{xml.escape(key)}</Key><Value>{xml.escape(value)}</Value></Tag>" for key, value in tags.items()
    )
    return xml.document("Tagging", f"<TagSet>{tag_xml}</TagSet>")


def _read_tag_set(api, request, limit: int) -> dict[str, str]:
    require_integrity_check(request)
    return parse_tag_set(read_body(request, api.request_timeout), limit)


# -- handlers ------------------------------------------------------------------------------


def put_object_tagging(api, request, resp) -> None:
    tags = _read_tag_set(api, request, MAX_OBJECT_TAGS)
    resp._headers["x-amz-version-id"] = api.layer.set_tags(request.bucket, request.key, _version(request), tags)


def get_object_tagging(api, request, resp) -> None:
    record, _ = api.layer.head(request.bucket, request.key, _version(request))
    version_header(resp, record)
    resp.content_type = XML_TYPE
    resp.data = tagging_document(record.get("tags") or {})


def delete_object_tagging(api, request, resp) -> None:
    resp._headers["x-amz-version-id"] = api.layer.set_tags(request.bucket, request.key, _version(request), {})
    resp.status = 204


def _version(request) -> str | None:
    return request.query.get("versionId")


def put_bucket_tagging(api, request, resp) -> None:
    tags = _read_tag_set(api, request, MAX_BUCKET_TAGS)
    api.layer.configure_bucket(request.bucket, "tagging", tags or None)
    resp.status = 204


def get_bucket_tagging(api, request, resp) -> None:
    tags = api.layer.bucket(request.bucket).get("tagging")
    if not tags:
        raise S3Error("NoSuchTagSet", BucketName=request.bucket)
    resp.content_type = XML_TYPE
    resp.data = tagging_document(tags)


def delete_bucket_tagging(api, request, resp) -> None:
    api.layer.configure_bucket(request.bucket, "tagging", None)
    resp.status = 204
