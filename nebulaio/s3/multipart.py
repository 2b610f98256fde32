"""Multipart upload: CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
AbortMultipartUpload, ListParts and ListMultipartUploads, with their XML documents.
"""

from __future__ import annotations

import re
from functools import partial

from nebulaio.engine import multipart
from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_object_key
from nebulaio.iam.acl import owner_of
from nebulaio.s3 import arguments, encryption, xml
from nebulaio.s3.body import CHECKSUM_HEADERS, RequestPayload, checksum_algorithm, read_body
from nebulaio.s3.copy import COPY_SOURCE, XML_TYPE, check_copy_source, parse_copy_source
from nebulaio.s3.lifecycle import expiration_header
from nebulaio.s3.objectlock import lock_fields
from nebulaio.s3.objects import upload_fields, write_condition
from nebulaio.s3.versioning import written_version_header
from nebulaio.util.checksums import CHECKSUM_TYPES, COMPOSITE, MULTIPART_TYPES
from nebulaio.util.timefmt import iso8601

MAX_PARTS = 1000
MAX_UPLOADS = 1000
# S3 reads these arguments as signed 32-bit integers.
# A CompleteMultipartUpload body lists at most 10,000 parts of about 100 bytes each.
MAX_COMPLETE_BODY = 4 * 1024 * 1024
TRUE_FALSE = {True: "true", False: "false"}
COPY_SOURCE_RANGE = "x-amz-copy-source-range"
OBJECT_SIZE = "x-amz-mp-object-size"
COPY_RANGE_SHAPE = re.compile(r"bytes=([0-9]{1,19})-([0-9]{1,19})", re.ASCII)
COPY_RANGE_MESSAGE = (
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are "
    "the zero-based offsets of the first and last bytes to copy"
)


def _checksum_choice(request) -> tuple[str | None, str | None]:
    """CreateMultipartUpload's checksum algorithm and type (each algorithm has a default type).

    Raises:
        S3Error: InvalidRequest for an unknown algorithm or type, a type without an
            algorithm, or a type the algorithm does not have.
    """
    checksum_type = request.header("x-amz-checksum-type")
    if checksum_type is not None and checksum_type.upper() not in CHECKSUM_TYPES:
        raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    algorithm = checksum_algorithm(request)
    if algorithm is None:
        if checksum_type is not None:
            raise S3Error(
                "InvalidRequest",
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            )
        return None, None
    allowed = MULTIPART_TYPES[algorithm]
    checksum_type = allowed[0] if checksum_type is None else checksum_type.upper()
    if checksum_type not in allowed:
        raise S3Error(
            "InvalidRequest",
            f"The {checksum_type} checksum type cannot be used with the {algorithm} checksum algorithm.",
        )
    return algorithm, checksum_type


def _promised(request) -> dict:
    """What a CompleteMultipartUpload's headers state of the whole object, for the engine to check."""
    headers = request.headers
    size = headers.get(OBJECT_SIZE)
    if size is not None and not (size.isascii() and size.isdigit() and len(size) <= 19):
        raise S3Error("InvalidArgument", f"{OBJECT_SIZE} is not a valid size.", ArgumentName=OBJECT_SIZE)
    checksum_type = headers.get("x-amz-checksum-type")
    return {
        "size": None if size is None else int(size),
        "checksum_type": None if checksum_type is None else checksum_type.upper(),
        "checksums": {name: headers[header] for header, name in CHECKSUM_HEADERS.items() if header in headers},
    }


def _checksum_choice_xml(upload: dict) -> str:
    """An upload's ChecksumAlgorithm and ChecksumType elements, as ListParts and ListMultipartUploads show them."""
    algorithm = upload["checksum_algorithm"]
    return xml.algorithm_elements((algorithm,) if algorithm else (), upload.get("checksum_type") or COMPOSITE)


def _owner_xml(element: str, owner: str | None) -> str:
    owner_id, name = owner_of(owner)
    return f"<{element}><ID>{owner_id}</ID><DisplayName>{xml.escape(name)}</DisplayName></{element}>"


def _copy_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) of x-amz-copy-source-range within a source of `size` bytes.

    Unlike GET's Range, S3 takes only `bytes=first-last` here and refuses anything else
    (InvalidArgument); a well-formed range past the source's end is InvalidRange.
    """
    if header is None:
        return None
    match = COPY_RANGE_SHAPE.fullmatch(header.strip())
    if match is None or int(match[1]) > int(match[2]):
        raise S3Error("InvalidArgument", COPY_RANGE_MESSAGE, ArgumentName=COPY_SOURCE_RANGE, ArgumentValue=header[:64])
    first, last = int(match[1]), int(match[2])
    if last >= size:
        raise S3Error(
            "InvalidRange",
            f"Range specified is not valid for source object of size: {size}",
            ActualObjectSize=str(size),
            RangeRequested=header[:64],
        )
    return first, last


# -- handlers ------------------------------------------------------------------------------


def create_multipart_upload(api, request, resp) -> None:
    check_object_key(request.key)
    algorithm, checksum_type = _checksum_choice(request)
    fields = dict(upload_fields(api, request), **lock_fields(api, request))
    sealing = encryption.new_key(api, request)
    if sealing is not None:
        fields["sse"] = sealing[1]
    record = multipart.create(api.layer, request.bucket, request.key, request.user, fields, algorithm, checksum_type)
    encryption.answer_headers(resp, record)
    if algorithm is not None:
        resp._headers["x-amz-checksum-algorithm"] = algorithm.upper()
        resp._headers["x-amz-checksum-type"] = checksum_type
    resp.data = xml.document(
        "InitiateMultipartUploadResult",
        f"<Bucket>{xml.escape(request.bucket)}</Bucket><Key>{xml.escape(request.key)}</Key>"
        f"<UploadId>{record['upload_id']}</UploadId>",
    )


def upload_part(api, request, resp) -> None:
    number = arguments.part_number(request.query)
    upload = multipart.open_upload(api.layer, request.bucket, request.key, request.query["uploadId"])
    data_key = encryption.object_key(api, request, upload, request.bucket)
    payload = RequestPayload(request.environ, request.headers, request.auth, api.request_timeout)
    part = multipart.put_part(
        api.layer, request.bucket, request.key, request.query["uploadId"], number, payload, data_key
    )
    encryption.answer_headers(resp, upload)
    headers = resp._headers
    headers["etag"] = f'"{part["etag"]}"'
    for name, value in part["checksums"].items():
        headers[f"x-amz-checksum-{name}"] = value


def upload_part_copy(api, request, resp) -> None:
    number = arguments.part_number(request.query)
    headers = request.headers
    source_bucket, source_key, source_version = parse_copy_source(headers[COPY_SOURCE])
    upload = multipart.open_upload(api.layer, request.bucket, request.key, request.query["uploadId"])
    data_key = encryption.object_key(api, request, upload, request.bucket)
    part = multipart.copy_part(
        api.layer,
        request.bucket,
        request.key,
        request.query["uploadId"],
        number,
        source_bucket,
        source_key,
        source_version,
        partial(check_copy_source, headers),
        partial(_copy_range, headers.get(COPY_SOURCE_RANGE)),
        partial(encryption.source_key, api, request, source_bucket),
        data_key,
    )
    encryption.answer_headers(resp, upload)
    for name, value in part["checksums"].items():
        resp._headers[f"x-amz-checksum-{name}"] = value
    if source_version is not None:
        resp._headers["x-amz-copy-source-version-id"] = source_version
    resp.content_type = XML_TYPE
    resp.data = xml.copy_result(part["etag"], part["mtime"], "CopyPartResult", xml.checksums(part["checksums"]))


def _requested_parts(body: bytes, algorithm: str | None = None) -> tuple[list[tuple[int, str]], list[str | None]]:
    """The (part number, ETag) list of a CompleteMultipartUpload body, and each part's
    checksum of the upload's `algorithm` (None where it names none)."""
    parts, checksums = [], []
    element = xml.CHECKSUM_ELEMENTS[algorithm] if algorithm else None
    for node in xml.parse(body, "CompleteMultipartUpload").findall("Part"):
        number, etag = node.findtext("PartNumber"), node.findtext("ETag")
        number = (number or "").strip()
        if not (number.isascii() and number.isdigit() and len(number) <= 10) or etag is None:
            raise S3Error("MalformedXML")
        parts.append((int(number), etag.strip()))
        checksum = node.findtext(element) if element else None
        checksums.append(None if checksum is None else checksum.strip())
    if not parts:
        raise S3Error("MalformedXML", "You must specify at least one part.")
    return parts, checksums


def complete_multipart_upload(api, request, resp) -> None:
    condition = write_condition(request)
    promised = _promised(request)
    upload_id = request.query["uploadId"]
    completed = multipart.completion(api.layer, request.bucket, request.key, upload_id)
    upload = completed or multipart.open_upload(api.layer, request.bucket, request.key, upload_id)
    # Its x-amz-checksum-* headers are the whole object's checksum, not this body's.
    body = read_body(request, api.request_timeout, MAX_COMPLETE_BODY, body_checksums=False)
    requested, checksums = _requested_parts(body, upload["checksum_algorithm"])
    if completed is not None:
        record = multipart.repeat(completed, requested)
    else:
        record = multipart.complete(
            api.layer, request.bucket, request.key, upload_id, requested, checksums, condition, promised
        )
    written_version_header(resp, record)
    expiration_header(api, request, resp, record)
    encryption.answer_headers(resp, record)
    host = request.header("host", "")
    location = f"http://{host}{request.raw_path}" if host else request.raw_path
    resp.data = xml.document(
        "CompleteMultipartUploadResult",
        f"<Location>{xml.escape(location)}</Location><Bucket>{xml.escape(request.bucket)}</Bucket>"
        f"<Key>{xml.escape(request.key)}</Key><ETag>&quot;{record['etag']}&quot;</ETag>"
        f"{xml.checksum_elements(record)}",
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
        api.layer, request.bucket, request.key, upload_id, min(marker, arguments.MAX_PART_NUMBER), max_parts
    )
    body = [
        f"<Bucket>{xml.escape(request.bucket)}</Bucket><Key>{xml.escape(request.key)}</Key>",
        f"<UploadId>{upload_id}</UploadId>",
        _owner_xml("Initiator", upload["owner"]),
        _owner_xml("Owner", upload["owner"]),
        "<StorageClass>STANDARD</StorageClass>",
        f"<PartNumberMarker>{marker}</PartNumberMarker>",
        f"<NextPartNumberMarker>{parts[-1]['number'] if parts else marker}</NextPartNumberMarker>",
        f"<MaxParts>{max_parts}</MaxParts><IsTruncated>{TRUE_FALSE[truncated]}</IsTruncated>",
        _checksum_choice_xml(upload),
    ]
    body.extend(
        f"<Part><PartNumber>{part['number']}</PartNumber><LastModified>{iso8601(part['mtime'])}</LastModified>"
        f"<ETag>&quot;{part['etag']}&quot;</ETag><Size>{part['size']}</Size>{xml.checksums(part['checksums'])}</Part>"
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
        + _checksum_choice_xml(upload)
        + "</Upload>"
        for upload in page.uploads
    )
    body.extend(f"<CommonPrefixes><Prefix>{encode(name)}</Prefix></CommonPrefixes>" for name in page.prefixes)
    resp.data = xml.document("ListMultipartUploadsResult", "".join(body))
