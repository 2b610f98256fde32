"""S3's XML: response documents written from string templates, request bodies read safely.

Responses are built by joining pre-made fragments instead of through an XML library:
a 1000-key listing is the hot response of the API, and an element tree would cost more
than everything else the request does. Every piece of text taken from a request or from
metadata goes through `escape` or `url_quote` on its way in.

Request bodies are untrusted and go through defusedxml with DTDs refused, so entity
expansion, external entities and DTD tricks all end as MalformedXML.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from nebulaio.engine.errors import S3Error
from nebulaio.meta.reader import LISTED_RECORDS
from nebulaio.util.checksums import ALGORITHMS, FULL_OBJECT
from nebulaio.util.memo import BoundedMemo
from nebulaio.util.timefmt import iso8601

__all__ = [
    "CHECKSUM_ELEMENTS",
    "S3_NAMESPACE",
    "ListPage",
    "checksums",
    "copy_result",
    "delete_result",
    "document",
    "error",
    "escape",
    "list_buckets",
    "list_objects_v1",
    "list_objects_v2",
    "last_modified",
    "location_constraint",
    "optional_element",
    "owner_element",
    "parse",
    "parse_create_bucket",
    "parse_delete",
    "post_response",
    "url_quote",
]

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
US_EAST_1 = "us-east-1"

# Element text: markup characters as entities; characters XML 1.0 cannot carry as numeric
# references the way S3 writes them (\r too, which a parser would otherwise turn into \n).
# NOTE: strict parsers refuse those references; that is why clients ask for encoding-type=url.
XML_UNSAFE = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]")
XML_ESCAPES = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}
XML_ESCAPES.update({code: f"&#x{code:X};" for code in (*range(0x09), *range(0x0B, 0x20), 0xFFFE, 0xFFFF)})

# encoding-type=url: S3 percent-encodes UTF-8 bytes, a space as %20 and "+" as %2B (so either
# decoder, unquote or unquote_plus, gets the key back), and keeps "/" and "*"; "~" is escaped.
URL_UNSAFE = re.compile(r"[^A-Za-z0-9_.*/-]", re.ASCII)
URL_SAFE_EXTRA = "/*"


def escape(text: str) -> str:
    """Text made safe to place between XML tags."""
    if XML_UNSAFE.search(text) is None:
        return text
    return text.translate(XML_ESCAPES)


def url_quote(text: str) -> str:
    """A key, prefix or marker as S3 writes it under `encoding-type=url` (also XML-safe)."""
    if URL_UNSAFE.search(text) is None:
        return text
    return quote(text, safe=URL_SAFE_EXTRA).replace("~", "%7E")


def document(root: str, body: str, namespace: bool = True) -> bytes:
    """A whole response: declaration, `root` element (with the S3 namespace) around `body`.

    `body` must already be escaped.
    """
    attributes = f' xmlns="{S3_NAMESPACE}"' if namespace else ""
    return f"{XML_DECLARATION}<{root}{attributes}>{body}</{root}>".encode()


def owner_element(owner_id: str, owner_name: str) -> str:
    return f"<Owner><ID>{escape(owner_id)}</ID><DisplayName>{escape(owner_name)}</DisplayName></Owner>"


def list_buckets(owner_id: str, owner_name: str, buckets: Iterable[tuple[str, int]]) -> bytes:
    """ListBuckets: `buckets` are (name, created epoch ms) in the order to list them."""
    parts = [owner_element(owner_id, owner_name), "<Buckets>"]
    for name, created_ms in buckets:
        parts.append(f"<Bucket><Name>{escape(name)}</Name><CreationDate>{iso8601(created_ms)}</CreationDate></Bucket>")
    parts.append("</Buckets>")
    return document("ListAllMyBucketsResult", "".join(parts))


LOCATION_US_EAST_1 = f'{XML_DECLARATION}<LocationConstraint xmlns="{S3_NAMESPACE}"/>'.encode()


def location_constraint(region: str | None) -> bytes:
    """GetBucketLocation: an empty element stands for us-east-1, as on S3."""
    if not region or region == US_EAST_1:
        return LOCATION_US_EAST_1
    return document("LocationConstraint", escape(region))


def last_modified(mtime_ms: int) -> str:
    """An object's LastModified in XML, to the second like its Last-Modified header.

    A client that compares a listing with HEAD (sync tools do) must see the same time.
    """
    return iso8601(mtime_ms - mtime_ms % 1000)


CHECKSUM_ELEMENTS = {name: f"Checksum{name.upper()}" for name in ALGORITHMS}


def checksums(values: Mapping[str, str]) -> str:
    """Checksum elements (ChecksumCRC32, ...) of {algorithm: base64 value}."""
    return "".join(f"<{CHECKSUM_ELEMENTS[name]}>{value}</{CHECKSUM_ELEMENTS[name]}>" for name, value in values.items())


def algorithm_elements(algorithms: Iterable[str], checksum_type: str) -> str:
    """ChecksumAlgorithm elements and a ChecksumType, as listings of objects and uploads show them."""
    names = "".join(f"<ChecksumAlgorithm>{name.upper()}</ChecksumAlgorithm>" for name in algorithms)
    return f"{names}<ChecksumType>{checksum_type}</ChecksumType>" if names else ""


def listed_checksum(record: Mapping[str, Any]) -> str:
    """A listed version's checksum algorithm and type; nothing when it has no checksum."""
    return algorithm_elements(record.get("checksums") or (), record.get("checksum_type", FULL_OBJECT))


def checksum_elements(record: dict) -> str:
    """A version's checksum elements and its ChecksumType; nothing when it has no checksum."""
    if not record["checksums"]:
        return ""
    return f"{checksums(record['checksums'])}<ChecksumType>{record.get('checksum_type', FULL_OBJECT)}</ChecksumType>"


def copy_result(etag: str, mtime_ms: int, root: str = "CopyObjectResult", extra: str = "") -> bytes:
    """CopyObject's result (UploadPartCopy's with `root` CopyPartResult); `etag` is the bare
    hex digest, `extra` more elements, already escaped."""
    return document(
        root,
        f"<LastModified>{last_modified(mtime_ms)}</LastModified><ETag>&quot;{escape(etag)}&quot;</ETag>{extra}",
    )


def post_response(location: str, bucket: str, key: str, etag: str) -> bytes:
    """PostObject's answer when the form asks for status 201; `etag` is the bare hex digest."""
    return document(
        "PostResponse",
        f"<Location>{escape(location)}</Location><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
        f"<ETag>&quot;{escape(etag)}&quot;</ETag>",
        namespace=False,
    )


def delete_result(outcomes: Iterable[tuple[str, str | None, tuple[str, str] | dict]], quiet: bool) -> bytes:
    """DeleteObjects' result: `outcomes` are (key, version id asked for or None, outcome), the
    outcome being (code, message) for a refusal or what the engine reported for a deletion.

    In quiet mode only the errors are listed, as on S3.
    """
    parts = []
    for key, version, outcome in outcomes:
        version_xml = "" if version is None else f"<VersionId>{escape(version)}</VersionId>"
        if isinstance(outcome, tuple):
            code, message = outcome
            parts.append(
                f"<Error><Key>{escape(key)}</Key>{version_xml}<Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message></Error>"
            )
        elif not quiet:
            marker = ""
            if outcome.get("marker"):
                marker = "<DeleteMarker>true</DeleteMarker>"
                if version is None:
                    marker += f"<DeleteMarkerVersionId>{outcome['version']}</DeleteMarkerVersionId>"
            parts.append(f"<Deleted><Key>{escape(key)}</Key>{version_xml}{marker}</Deleted>")
    return document("DeleteResult", "".join(parts))


class ListPage(Protocol):
    """One page of a listing as the engine returns it.

    `entries` are (key, record) with record["etag"] (hex, unquoted), record["size"] and
    record["mtime"] (epoch ms); `prefixes` are the common prefixes; `last` is the last key
    or prefix of the page, where the next page starts after.
    """

    entries: list[tuple[str, Mapping[str, Any]]]
    prefixes: list[str]
    truncated: bool
    last: str | None


TRUE_FALSE = {True: "true", False: "false"}


def _contents(key: str, record: dict, encode: Callable[[str], str], owner: Callable[[dict], str] | None) -> str:
    """PERF: one f-string per object, 3x faster than %-formatting."""
    return (
        f"<Contents><Key>{encode(key)}</Key><LastModified>{last_modified(record['mtime'])}</LastModified>"
        f"<ETag>&quot;{record['etag']}&quot;</ETag>{listed_checksum(record)}<Size>{record['size']:d}</Size>"
        f"<StorageClass>STANDARD</StorageClass>{owner(record) if owner else ''}</Contents>"
    )


_rendered: BoundedMemo[tuple[dict, str]] = BoundedMemo(LISTED_RECORDS)
"""As many rendered elements as the reader remembers records to render."""


def _remembered_contents(key: str, record: dict, encode: Callable[[str], str]) -> str:
    """The element of a listed object without its owner, rendered once per record.

    PERF: the reader hands out the same record dict while an object is unchanged
    (MetaReader.list_objects), so the element is remembered by the dict's identity. The memo
    holds the dict, so no other object can take its id while the entry lives.
    """
    memo_key = (id(record), encode)
    remembered = _rendered.get(memo_key)
    if remembered is not None and remembered[0] is record:
        return remembered[1]
    return _rendered.put(memo_key, (record, _contents(key, record, encode, None)))[1]


def _listing_body(
    parts: list[str], page: ListPage, encode: Callable[[str], str], owner: Callable[[dict], str] | None
) -> str:
    """PERF: one element per object, remembered when there is no owner to show, and a single join."""
    if owner is None:
        parts.extend([_remembered_contents(key, record, encode) for key, record in page.entries])
    else:
        parts.extend([_contents(key, record, encode, owner) for key, record in page.entries])
    parts.extend([f"<CommonPrefixes><Prefix>{encode(prefix)}</Prefix></CommonPrefixes>" for prefix in page.prefixes])
    return "".join(parts)


def optional_element(name: str, value: str) -> str:
    """The element, or nothing when there is no value: S3 omits these rather than empty them."""
    return f"<{name}>{value}</{name}>" if value else ""


def list_objects_v1(
    bucket: str,
    prefix: str | None,
    delimiter: str | None,
    marker: str | None,
    max_keys: int,
    url_encode: bool,
    page: ListPage,
    owner: Callable[[dict], str] | None,
) -> bytes:
    """ListObjects (version 1). `owner` gives each object's Owner element.

    NextMarker is written only when the page is truncated and a delimiter was given,
    as on S3; without a delimiter clients continue from the last key.
    """
    encode = url_quote if url_encode else escape
    next_marker = encode(page.last) if page.truncated and delimiter and page.last else ""
    parts = [
        f"<Name>{escape(bucket)}</Name><Prefix>{encode(prefix or '')}</Prefix>",
        f"<Marker>{encode(marker or '')}</Marker>",
        optional_element("NextMarker", next_marker),
        f"<MaxKeys>{max_keys:d}</MaxKeys>",
        optional_element("Delimiter", encode(delimiter or "")),
        f"<IsTruncated>{TRUE_FALSE[bool(page.truncated)]}</IsTruncated>",
        "<EncodingType>url</EncodingType>" if url_encode else "",
    ]
    return document("ListBucketResult", _listing_body(parts, page, encode, owner))


def list_objects_v2(
    bucket: str,
    prefix: str | None,
    delimiter: str | None,
    max_keys: int,
    url_encode: bool,
    page: ListPage,
    continuation_token: str | None,
    next_continuation_token: str | None,
    start_after: str | None,
    owner: Callable[[dict], str] | None,
) -> bytes:
    """ListObjectsV2. `owner` gives each object's Owner element when fetch-owner=true, else None.

    Continuation tokens are opaque here: the caller makes them and they are written as given.
    """
    encode = url_quote if url_encode else escape
    parts = [
        f"<Name>{escape(bucket)}</Name><Prefix>{encode(prefix or '')}</Prefix>",
        "" if continuation_token is None else f"<ContinuationToken>{escape(continuation_token)}</ContinuationToken>",
        optional_element("NextContinuationToken", escape(next_continuation_token or "")),
        f"<KeyCount>{len(page.entries) + len(page.prefixes):d}</KeyCount><MaxKeys>{max_keys:d}</MaxKeys>",
        optional_element("Delimiter", encode(delimiter or "")),
        f"<IsTruncated>{TRUE_FALSE[bool(page.truncated)]}</IsTruncated>",
        optional_element("StartAfter", encode(start_after or "")),
        "<EncodingType>url</EncodingType>" if url_encode else "",
    ]
    return document("ListBucketResult", _listing_body(parts, page, encode, owner))


# An error document echoes what the client sent (its path, key or bucket name). Characters
# XML 1.0 cannot carry even as references (and lone surrogates) are percent-encoded there
# instead, so that every client can parse the error it is given.
ERROR_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _percent_encoded(match: re.Match) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


def _error_text(text: str) -> str:
    return escape(ERROR_UNSAFE.sub(_percent_encoded, text))


def error(
    code: str,
    message: str,
    request_id: str,
    resource: str | None = None,
    fields: Mapping[str, Any] | None = None,
) -> bytes:
    """S3's error document. `fields` are extra elements (e.g. BucketName, Key) by name."""
    parts = [f"<Code>{escape(code)}</Code><Message>{_error_text(message)}</Message>"]
    if fields:
        parts.extend([f"<{name}>{_error_text(str(value))}</{name}>" for name, value in fields.items()])
    if resource is not None:
        parts.append(f"<Resource>{_error_text(resource)}</Resource>")
    parts.append(f"<RequestId>{escape(request_id)}</RequestId>")
    return document("Error", "".join(parts), namespace=False)


# Anything a hostile body can make the parser raise: syntax, DTD and entity tricks,
# an unknown encoding declaration.
PARSE_FAILURES = (ParseError, DefusedXmlException, ValueError, LookupError)


def parse(body: bytes, root: str) -> Element:
    """A request body as an element tree with namespaces stripped from every tag.

    Raises:
        S3Error: MalformedXML for anything that is not a well-formed document whose root
            is `root`, including any DTD or entity declaration.
    """
    try:
        tree = defused_fromstring(body, forbid_dtd=True)
    except PARSE_FAILURES:
        raise S3Error("MalformedXML") from None
    for node in tree.iter():
        node.tag = node.tag.rpartition("}")[2]
    if tree.tag != root:
        raise S3Error("MalformedXML")
    return tree


def parse_create_bucket(body: bytes) -> str | None:
    """The LocationConstraint of a CreateBucket body; None when there is none (us-east-1)."""
    if not body.strip():
        return None
    node = parse(body, "CreateBucketConfiguration").find("LocationConstraint")
    if node is None or not node.text or not node.text.strip():
        return None
    return node.text.strip()


def parse_delete(body: bytes) -> tuple[bool, list[tuple[str, str | None]]]:
    """A DeleteObjects body: (quiet, [(key, version id or None), ...]) in the order given.

    Raises:
        S3Error: MalformedXML when an Object has no Key.
    """
    tree = parse(body, "Delete")
    quiet = (tree.findtext("Quiet") or "").strip().lower() == "true"
    objects = []
    for node in tree.iterfind("Object"):
        key = node.find("Key")
        if key is None:
            raise S3Error("MalformedXML")
        objects.append((key.text or "", node.findtext("VersionId")))
    return quiet, objects
