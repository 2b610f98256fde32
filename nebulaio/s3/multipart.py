"""Multipart upload: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
AbortMultipartUpload, ListParts and ListMultipartUploads, with their XML documents.

UploadPartCopy waits for the copy machinery and is answered NotImplemented.
"""

from __future__ import annotations

from nebulaio.engine import multipart
from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_object_key
from nebulaio.iam.credentials import canonical_id
from nebulaio.s3 import arguments, xml
from nebulaio.s3.body import RequestPayload, read_body
from nebulaio.s3.objects import content_fields, write_condition
from nebulaio.util.checksums import ALGORITHMS
from nebulaio.util.timefmt import iso8601

MAX_PARTS = 1000
MAX_UPLOADS = 1000
# S3 reads these arguments as signed 32-bit integers.
# A CompleteMultipartUpload body lists at most 10,000 parts of about 100 bytes each.
MAX_COMPLETE_BODY = 4 * 1024 * 1024
CHECKSUM_ELEMENTS = {name: f"Checksum{name.upper()}" for name in ALGORITHMS}
TRUE_FALSE = {True: "true", False: "false"}


def _part_number(query: dict) -> int:
    value = query.get("partNumber", "")
    if not (value.isascii() and value.isdigit() and len(value) <= 5 and 1 <= int(value) <= multipart.MAX_PART_NUMBER):
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {multipart.MAX_PART_NUMBER}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=value[:64],
        )
    return int(value)


def _checksum_algorithm(request) -> str | None:
    value = request.header("x-amz-checksum-algorithm")
    if value is None:
        return None
    if value.lower() not in ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {value[:32]!r} is not supported.")
    return value.lower()


def _owner_xml(element: str, owner: str) -> str:
    return f"<{element}><ID>{canonical_id(owner)}</ID><DisplayName>{xml.escape(owner)}</DisplayName></{element}>"


def _checksums_xml(checksums: dict) -> str:
    return "".join(
        f"<{CHECKSUM_ELEMENTS[name]}>{value}</{CHECKSUM_ELEMENTS[name]}>" for name, value in checksums.items()
    )


# -- handlers ------------------------------------------------------------------------------


def create_multipart_upload(api, request, resp) -> None:
    check_object_key(request.key)
    algorithm = _checksum_algorithm(request)
    record = multipart.create(
        api.layer, request.bucket, request.key, request.user, content_fields(request.headers), algorithm
    )
    if algorithm is not None:
        resp._headers["x-amz-checksum-algorithm"] = algorithm.upper()
    resp.data = xml.document(
        "InitiateMultipartUploadResult",
        f"<Bucket>{xml.escape(request.bucket)}</Bucket><Key>{xml.escape(request.key)}</Key>"
        f"<UploadId>{record['upload_id']}</UploadId>",
    )


def upload_part(api, request, resp) -> None:
    if "x-amz-copy-source" in request.headers:
        raise S3Error("NotImplemented", "UploadPartCopy is not supported yet.")
    number = _part_number(request.query)
    payload = RequestPayload(request.environ, request.headers, request.auth, api.request_timeout)
    part = multipart.put_part(api.layer, request.bucket, request.key, request.query["uploadId"], number, payload)
    headers = resp._headers
    headers["etag"] = f'"{part["etag"]}"'
    for name, value in part["checksums"].items():
        headers[f"x-amz-checksum-{name}"] = value


def _requested_parts(body: bytes) -> list[tuple[int, str]]:
    """The (part number, ETag) list of a CompleteMultipartUpload body."""
    parts = []
    for node in xml.parse(body, "CompleteMultipartUpload").findall("Part"):
        number, etag = node.findtext("PartNumber"), node.findtext("ETag")
        number = (number or "").strip()
        if not (number.isascii() and number.isdigit() and len(number) <= 10) or etag is None:
            raise S3Error("MalformedXML")
        parts.append((int(number), etag.strip()))
    if not parts:
        raise S3Error("MalformedXML", "You must specify at least one part.")
    return parts


def complete_multipart_upload(api, request, resp) -> None:
    condition = write_condition(request)
    upload_id = request.query["uploadId"]
    multipart.open_upload(api.layer, request.bucket, request.key, upload_id)
    requested = _requested_parts(read_body(request, api.request_timeout, MAX_COMPLETE_BODY))
    record = multipart.complete(api.layer, request.bucket, request.key, upload_id, requested, condition)
    host = request.header("host", "")
    location = f"http://{host}{request.raw_path}" if host else request.raw_path
    resp.data = xml.document(
        "CompleteMultipartUploadResult",
        f"<Location>{xml.escape(location)}</Location><Bucket>{xml.escape(request.bucket)}</Bucket>"
        f"<Key>{xml.escape(request.key)}</Key><ETag>&quot;{record['etag']}&quot;</ETag>",
    )


def abort_multipart_upload(api, request, resp) -> None:
    multipart.abort(api.layer, request.bucket, request.key, request.query["uploadId"])
    resp.status = 204


def list_parts(api, request, resp) -> None:
    query = request.query
    upload_id = query["uploadId"]
    max_parts = min(arguments.integer(query, "max-parts", MAX_PARTS, 0), MAX_PARTS)
    marker = arguments.integer(query, "part-number-marker", 0, 0)
    upload, parts, truncated = multipart.list_parts(
        api.layer, request.bucket, request.key, upload_id, min(marker, multipart.MAX_PART_NUMBER), max_parts
    )
    algorithm = upload["checksum_algorithm"]
    body = [
        f"<Bucket>{xml.escape(request.bucket)}</Bucket><Key>{xml.escape(request.key)}</Key>",
        f"<UploadId>{upload_id}</UploadId>",
        _owner_xml("Initiator", upload["owner"]),
        _owner_xml("Owner", upload["owner"]),
        "<StorageClass>STANDARD</StorageClass>",
        f"<PartNumberMarker>{marker}</PartNumberMarker>",
        f"<NextPartNumberMarker>{parts[-1]['number'] if parts else marker}</NextPartNumberMarker>",
        f"<MaxParts>{max_parts}</MaxParts><IsTruncated>{TRUE_FALSE[truncated]}</IsTruncated>",
        f"<ChecksumAlgorithm>{algorithm.upper()}</ChecksumAlgorithm>" if algorithm else "",
    ]
    body.extend(
        f"<Part><PartNumber>{part['number']}</PartNumber><LastModified>{iso8601(part['mtime'])}</LastModified>"
        f"<ETag>&quot;{part['etag']}&quot;</ETag><Size>{part['size']}</Size>{_checksums_xml(part['checksums'])}</Part>"
        for part in parts
    )
    resp.data = xml.document("ListPartsResult", "".join(body))


def list_multipart_uploads(api, request, resp) -> None:
    query = request.query
    max_uploads = min(arguments.integer(query, "max-uploads", MAX_UPLOADS, 0), MAX_UPLOADS)
    url_encode = arguments.url_encoding(query)
    encode = xml.url_quote if url_encode else xml.escape
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    key_marker = query.get("key-marker") or None
    upload_id_marker = (query.get("upload-id-marker") or None) if key_marker else None
    _, page = multipart.list_uploads(
        api.layer, request.bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads
    )
    next_key = page.next_key if page.truncated else None
    next_upload_id = page.next_upload_id if page.truncated else None
    body = [
        f"<Bucket>{xml.escape(request.bucket)}</Bucket>",
        f"<KeyMarker>{encode(key_marker or '')}</KeyMarker>",
        f"<UploadIdMarker>{xml.escape(upload_id_marker or '')}</UploadIdMarker>",
        f"<NextKeyMarker>{encode(next_key or '')}</NextKeyMarker>",
        f"<NextUploadIdMarker>{next_upload_id or ''}</NextUploadIdMarker>",
        f"<Delimiter>{encode(delimiter)}</Delimiter>" if delimiter else "",
        f"<Prefix>{encode(prefix)}</Prefix>",
        f"<MaxUploads>{max_uploads}</MaxUploads><IsTruncated>{TRUE_FALSE[page.truncated]}</IsTruncated>",
        "<EncodingType>url</EncodingType>" if url_encode else "",
    ]
    body.extend(
        f"<Upload><Key>{encode(upload['key'])}</Key><UploadId>{upload['upload_id']}</UploadId>"
        f"{_owner_xml('Initiator', upload['owner'])}{_owner_xml('Owner', upload['owner'])}"
        f"<StorageClass>STANDARD</StorageClass><Initiated>{iso8601(upload['initiated'])}</Initiated>"
        + (
            f"<ChecksumAlgorithm>{upload['checksum_algorithm'].upper()}</ChecksumAlgorithm>"
            if upload["checksum_algorithm"]
            else ""
        )
        + "</Upload>"
        for upload in page.uploads
    )
    body.extend(f"<CommonPrefixes><Prefix>{encode(name)}</Prefix></CommonPrefixes>" for name in page.prefixes)
    resp.data = xml.document("ListMultipartUploadsResult", "".join(body))
