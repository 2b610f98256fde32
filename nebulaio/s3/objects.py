"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, with their preconditions."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from nebulaio.encryption.pages import open_plain
from nebulaio.engine.conditions import NOT_MODIFIED, REQUEST_CONDITIONS, evaluate
from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_object_key
from nebulaio.s3 import arguments, encryption, xml
from nebulaio.s3.acl import header_acl, ownership
from nebulaio.s3.body import RequestPayload, require_integrity_check
from nebulaio.s3.lifecycle import expiration_header
from nebulaio.s3.objectlock import PUT_INTEGRITY_MESSAGE, bypasses_governance, lock_fields, lock_headers
from nebulaio.s3.ranges import parse_range
from nebulaio.s3.tagging import header_tags
from nebulaio.s3.versioning import version_header, written_version_header
from nebulaio.util.checksums import FULL_OBJECT
from nebulaio.util.timefmt import http_date

# Content headers S3 stores with an object and returns on GET/HEAD.
STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control", "expires")
# GET query parameters that override response headers (signed requests only, as in S3).
OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
META_PREFIX = "x-amz-meta-"
MAX_METADATA_BYTES = 2048
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
XML_TYPE = "application/xml"
OBJECT_ATTRIBUTES = frozenset(("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"))
MAX_ATTRIBUTE_PARTS = 1000
UNKNOWN_ATTRIBUTE_MESSAGE = "Invalid attribute name specified."
MISSING_ATTRIBUTES_MESSAGE = (
    "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty"
)
TRUE_FALSE = {True: "true", False: "false"}


def content_fields(headers: Mapping[str, str]) -> dict:
    """What a write keeps besides the bytes: content type, content headers, user metadata.

    `headers` are lower-cased names: a request's headers, or a browser form's fields.
    """
    stored = {}
    for name in STORED_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == "content-encoding":
            value = without_aws_chunked(value)
            if not value:
                continue
        stored[name] = value
    meta = {}
    meta_size = 0
    for name, value in headers.items():
        if name.startswith(META_PREFIX):
            short = name[len(META_PREFIX) :]
            meta[short] = value
            meta_size += len(short.encode()) + len(value.encode())
    if meta_size > MAX_METADATA_BYTES:
        raise S3Error("MetadataTooLarge", Size=str(meta_size), MaxSizeAllowed=str(MAX_METADATA_BYTES))
    return {"ctype": headers.get("content-type") or DEFAULT_CONTENT_TYPE, "headers": stored, "meta": meta}


def without_aws_chunked(content_encoding: str) -> str:
    """The Content-Encoding an object keeps: aws-chunked describes this request's framing, not
    the object, so S3 drops it from the list and keeps the other codings byte for byte."""
    codings = content_encoding.split(",")
    kept = [coding for coding in codings if coding.strip().lower() != "aws-chunked"]
    if len(kept) == len(codings):
        return content_encoding
    return ",".join(kept).strip()


def write_condition(request) -> dict | None:
    """A conditional write's If-None-Match: * / If-Match: "etag", as the engine takes it.

    Raises:
        S3Error: NotImplemented for If-None-Match with anything but *, as S3 answers it.
    """
    headers = request.headers
    none_match = headers.get("if-none-match")
    match = headers.get("if-match")
    if none_match is None and match is None:
        return None
    condition = {}
    if none_match is not None:
        if none_match.strip() != "*":
            raise S3Error("NotImplemented", "If-None-Match on a write accepts only '*'.", Header="If-None-Match")
        condition["if-none-match"] = "*"
    if match is not None:
        condition["if-match"] = match.strip().strip('"')
    return condition


def upload_fields(api, request) -> dict:
    """What a new object keeps from its upload request: content fields, x-amz-tagging's tags,
    and its owner and ACL."""
    fields = content_fields(request.headers)
    tags = header_tags(request)
    if tags:
        fields["tags"] = tags
    fields.update(ownership(api, request, header_acl(request)))
    return fields


def put_object(api, request, resp):
    check_object_key(request.key)
    fields = upload_fields(api, request)
    lock = lock_fields(api, request)
    if lock:
        require_integrity_check(request, PUT_INTEGRITY_MESSAGE)
        fields.update(lock)
    condition = write_condition(request)
    sealing = encryption.new_key(api, request)
    payload = RequestPayload(request.environ, request.headers, request.auth, api.request_timeout)
    proposal = api.layer.propose_put(request.bucket, request.key, payload, fields, condition, sealing)
    return proposal, functools.partial(_put_answer, api, request)


def _put_answer(api, request, resp, record: dict) -> None:
    headers = resp._headers
    headers["etag"] = f'"{record["etag"]}"'
    written_version_header(resp, record)
    expiration_header(api, request, resp, record)
    encryption.answer_headers(resp, record)
    _checksum_headers(resp, record["checksums"], FULL_OBJECT)


def _object_headers(request, resp, record: dict) -> None:
    headers = resp._headers
    headers["etag"] = f'"{record["etag"]}"'
    headers["last-modified"] = http_date(record["mtime"])
    headers["accept-ranges"] = "bytes"
    version_header(resp, record)
    resp.content_type = record["ctype"]
    for name, value in record["headers"].items():
        headers[name] = _latin1(value)
    for name, value in record["meta"].items():
        headers[META_PREFIX + name] = _latin1(value)
    tags = record.get("tags")
    if tags:
        headers["x-amz-tagging-count"] = str(len(tags))
    lock_headers(headers, record)
    encryption.answer_headers(resp, record)
    if len(request.query) and request.auth is not None:
        for parameter, header in OVERRIDES.items():
            value = request.query.get(parameter)
            if value is not None:
                if header == "content-type":
                    resp.content_type = value
                else:
                    headers[header] = _latin1(value)


def _latin1(value: str) -> str:
    """WSGI header values are latin-1 strings: pass UTF-8 bytes through unchanged."""
    return value if value.isascii() else value.encode("utf-8").decode("latin-1")


def _checksum_headers(resp, checksums: dict, checksum_type: str | None) -> None:
    headers = resp._headers
    for name, value in checksums.items():
        headers[f"x-amz-checksum-{name}"] = value
        if checksum_type:
            headers["x-amz-checksum-type"] = checksum_type


def _part_range(request, resp, record: dict, checksum_mode: bool) -> tuple[int, int] | None:
    """The inclusive byte range of the part that partNumber names; None for all of the object
    (part 1 of an object that was not uploaded in parts).

    Raises:
        S3Error: InvalidRequest together with a Range; InvalidPartNumber past the last part.
    """
    number = arguments.part_number(request.query)
    if request.header("range") is not None:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
    sizes = record.get("part_sizes")
    count = 1 if sizes is None else len(sizes)
    if number > count:
        raise S3Error("InvalidPartNumber", PartNumberRequested=str(number), ActualPartCount=str(count))
    if sizes is None:
        return None
    resp._headers["x-amz-mp-parts-count"] = str(count)
    part_checksums = record.get("part_checksums")
    if checksum_mode and part_checksums:
        _checksum_headers(resp, {name: part_checksums[number - 1] for name in record["checksums"]}, None)
    start = sum(sizes[: number - 1])
    return start, start + sizes[number - 1] - 1


def _answer(request, resp, record: dict, body, data_key: bytes | None = None) -> None:
    """Headers, status and (for GET) the body of a whole, ranged or one-part object response;
    a sealed object's pages that hold the range are opened with `data_key`."""
    _object_headers(request, resp, record)
    size = record["size"]
    checksum_mode = request.header("x-amz-checksum-mode", "").upper() == "ENABLED"
    if "partNumber" in request.query:
        byte_range = _part_range(request, resp, record, checksum_mode)
    else:
        byte_range = parse_range(request.header("range"), size)
    if byte_range is None:
        start, end = 0, size - 1
        if checksum_mode:
            _checksum_headers(resp, record["checksums"], record.get("checksum_type", FULL_OBJECT))
    else:
        start, end = byte_range
        resp.status = 206
        resp._headers["content-range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1
    resp.content_length = length
    if body is None:
        return
    if data_key is not None:
        # NOTE: decrypted in this process, so never sent with sendfile
        resp.stream = open_plain(body, record, data_key, start, length)
        return
    if isinstance(body, (bytes, bytearray, memoryview)):
        resp.data = bytes(body[start : end + 1]) if byte_range else bytes(body)
        return
    resp.stream = body.range(start, length)


def _preconditions_hold(request, resp, record: dict) -> bool:
    """Whether to answer with the object; False once a 304 is set up.

    Raises:
        S3Error: PreconditionFailed (412), naming the condition that failed.
    """
    verdict = evaluate(record["etag"], record["mtime"], request.headers, REQUEST_CONDITIONS)
    if verdict is None:
        return True
    status, condition = verdict
    if status != NOT_MODIFIED:
        raise S3Error("PreconditionFailed", Condition=condition)
    resp.status = NOT_MODIFIED
    resp._headers["etag"] = f'"{record["etag"]}"'
    resp._headers["last-modified"] = http_date(record["mtime"])
    return False


def get_object(api, request, resp) -> None:
    record, body = api.layer.open(request.bucket, request.key, request.query.get("versionId"))
    answered = False
    try:
        data_key = encryption.object_key(api, request, record, request.bucket)
        if _preconditions_hold(request, resp, record):
            expiration_header(api, request, resp, record)
            _answer(request, resp, record, body, data_key)
            answered = True
    finally:
        if not answered and hasattr(body, "close"):
            body.close()


def head_object(api, request, resp) -> None:
    record, _ = api.layer.head(request.bucket, request.key, request.query.get("versionId"))
    encryption.check_customer_key(api, request, record)
    if _preconditions_hold(request, resp, record):
        expiration_header(api, request, resp, record)
        _answer(request, resp, record, None)


def get_object_attributes(api, request, resp) -> None:
    headers = request.headers
    wanted = {name.strip() for name in headers.get("x-amz-object-attributes", "").split(",") if name.strip()}
    if not wanted or not wanted <= OBJECT_ATTRIBUTES:
        raise S3Error(
            "InvalidArgument",
            UNKNOWN_ATTRIBUTE_MESSAGE if wanted else MISSING_ATTRIBUTES_MESSAGE,
            ArgumentName="x-amz-object-attributes",
            ArgumentValue=headers.get("x-amz-object-attributes", "")[:256],
        )
    max_parts = min(arguments.integer(headers, "x-amz-max-parts", MAX_ATTRIBUTE_PARTS), MAX_ATTRIBUTE_PARTS)
    marker = arguments.integer(headers, "x-amz-part-number-marker", 0)
    record, _ = api.layer.head(request.bucket, request.key, request.query.get("versionId"))
    encryption.check_customer_key(api, request, record)
    resp._headers["last-modified"] = http_date(record["mtime"])
    version_header(resp, record)
    body = []
    if "ETag" in wanted:
        body.append(f"<ETag>{record['etag']}</ETag>")
    if "Checksum" in wanted and record["checksums"]:
        body.append(f"<Checksum>{xml.checksum_elements(record)}</Checksum>")
    if "ObjectParts" in wanted and "part_sizes" in record:
        body.append(_object_parts(record, marker, max_parts))
    if "StorageClass" in wanted:
        body.append("<StorageClass>STANDARD</StorageClass>")
    if "ObjectSize" in wanted:
        body.append(f"<ObjectSize>{record['size']}</ObjectSize>")
    resp.content_type = XML_TYPE
    resp.data = xml.document("GetObjectAttributesOutput", "".join(body))


def _object_parts(record: dict, marker: int, max_parts: int) -> str:
    """GetObjectAttributes' ObjectParts; S3 lists each part only when the parts had checksums."""
    sizes, part_checksums = record["part_sizes"], record.get("part_checksums")
    parts = [f"<PartsCount>{len(sizes)}</PartsCount>"]
    if part_checksums:
        shown = range(marker, min(marker + max_parts, len(sizes)))
        parts.append(
            f"<PartNumberMarker>{marker}</PartNumberMarker>"
            f"<NextPartNumberMarker>{shown[-1] + 1 if shown else marker}</NextPartNumberMarker>"
            f"<MaxParts>{max_parts}</MaxParts><IsTruncated>{TRUE_FALSE[marker + max_parts < len(sizes)]}</IsTruncated>"
        )
        names = tuple(record["checksums"])
        parts.extend(
            f"<Part><PartNumber>{index + 1}</PartNumber><Size>{sizes[index]}</Size>"
            f"{xml.checksums(dict.fromkeys(names, part_checksums[index]))}</Part>"
            for index in shown
        )
    return f"<ObjectParts>{''.join(parts)}</ObjectParts>"


def delete_object(api, request, resp):
    proposal = api.layer.propose_delete(
        request.bucket, request.key, request.query.get("versionId"), bypasses_governance(request)
    )
    return proposal, _delete_answer


def _delete_answer(resp, result: dict) -> None:
    resp.status = 204
    if result.get("version") is not None:
        resp._headers["x-amz-version-id"] = result["version"]
    if result.get("marker"):
        resp._headers["x-amz-delete-marker"] = "true"
