"""CopyObject: a PUT naming its source in x-amz-copy-source instead of carrying a body.

`parse_copy_source` and `check_copy_source` serve any operation that reads a copy source
(UploadPartCopy too): the source is named the same way and answers the same preconditions.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import unquote, unquote_to_bytes

from nebulaio.engine.conditions import COPY_SOURCE_CONDITIONS, evaluate
from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_object_key, decode_key
from nebulaio.s3 import encryption, xml
from nebulaio.s3.acl import header_acl, ownership
from nebulaio.s3.body import checksum_algorithm
from nebulaio.s3.lifecycle import expiration_header
from nebulaio.s3.objectlock import lock_fields
from nebulaio.s3.objects import content_fields, write_condition
from nebulaio.s3.request import parse_query
from nebulaio.s3.tagging import copy_tags
from nebulaio.s3.versioning import written_version_header

COPY_SOURCE = "x-amz-copy-source"
METADATA_DIRECTIVE = "x-amz-metadata-directive"
METADATA_DIRECTIVES = ("COPY", "REPLACE")
XML_TYPE = "application/xml"
SELF_COPY_MESSAGE = (
    "This copy request is illegal because it is trying to copy an object to itself without changing "
    "the object's metadata, storage class, website redirect location or encryption attributes."
)


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id or None) of an x-amz-copy-source value:
    `[/]bucket/key[?versionId=id]`, percent-encoded.

    Raises:
        S3Error: InvalidArgument when it names no bucket and key.
    """
    path, _, query = value.partition("?")
    version = parse_query(query).get("versionId") if query else None
    bucket_part, slash, key_part = path.removeprefix("/").partition("/")
    bucket = unquote(bucket_part)
    if not bucket or not key_part:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName=COPY_SOURCE,
            ArgumentValue=value[:1100],
        )
    return bucket, decode_key(unquote_to_bytes(key_part)), version


def check_copy_source(headers: dict, record: dict) -> None:
    """Refuse a source whose x-amz-copy-source-if-* preconditions fail (always 412 for a copy).

    Raises:
        S3Error: PreconditionFailed, naming the condition.
    """
    verdict = evaluate(record["etag"], record["mtime"], headers, COPY_SOURCE_CONDITIONS)
    if verdict is not None:
        raise S3Error("PreconditionFailed", Condition=verdict[1])


def copy_object(api, request, resp) -> None:
    check_object_key(request.key)
    headers = request.headers
    source_bucket, source_key, source_version = parse_copy_source(headers[COPY_SOURCE])
    directive = headers.get(METADATA_DIRECTIVE, "COPY")
    if directive not in METADATA_DIRECTIVES:
        raise S3Error(
            "InvalidArgument", "Unknown metadata directive.", ArgumentName=METADATA_DIRECTIVE, ArgumentValue=directive
        )
    fields = content_fields(request.headers) if directive == "REPLACE" else None
    algorithm = checksum_algorithm(request)
    onto_itself = (source_bucket, source_key, source_version) == (request.bucket, request.key, None)
    changes_encryption = any(name.startswith(encryption.SSE) for name in headers)
    if fields is None and algorithm is None and onto_itself and not changes_encryption:
        raise S3Error("InvalidRequest", SELF_COPY_MESSAGE)
    tags = copy_tags(request)
    if tags is not None:
        fields = dict(fields or {}, tags=tags)
    fields = dict(fields or {}, **ownership(api, request, header_acl(request)))
    lock = lock_fields(api, request)
    if lock:
        fields.update(lock)
    sealing = encryption.new_key(api, request)
    record = api.layer.copy(
        source_bucket,
        source_key,
        source_version,
        partial(check_copy_source, headers),
        request.bucket,
        request.key,
        fields,
        write_condition(request),
        algorithm,
        partial(encryption.source_key, api, request, source_bucket),
        sealing,
    )
    if source_version is not None:
        resp._headers["x-amz-copy-source-version-id"] = source_version
    written_version_header(resp, record)
    expiration_header(api, request, resp, record)
    encryption.answer_headers(resp, record)
    resp.content_type = XML_TYPE
    resp.data = xml.copy_result(record["etag"], record["mtime"], extra=xml.checksum_elements(record))
