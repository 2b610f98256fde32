"""Multipart upload: S3 semantics without HTTP, over the object layer.

An upload proceeds as: create (a record, no bytes) -> parts, each streamed to temp/ and
placed (fsynced and renamed beside the object's versions; in a cluster on the upload's
holders, which every part shares) before its record is committed -> complete (the parts'
files concatenated in the kernel into one version file, on each holder, then one command
checks the part list again and makes it the current version) or abort. Completion and
abort free every part file through the supervisor's release of unreferenced files, the
same path as an overwritten version.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable

from nebulaio.encryption.pages import PageSealer, sealed_size, segment_key
from nebulaio.engine.errors import S3Error
from nebulaio.engine.objects import ObjectLayer, Payload, copy_sealed, read_plain, receive, with_version
from nebulaio.meta.objectlock import LOCK_FIELDS
from nebulaio.meta.uploads import check_part_list, same_completion
from nebulaio.storage.objects import TempObject, file_size
from nebulaio.util.checksums import COMPOSITE, composite_checksum, full_object_checksum, new_checksum
from nebulaio.util.ids import now_ms, version_id

MAX_PART_SIZE = 5 * 1024**3
UPLOAD_ID_SHAPE = re.compile(r"[0-9a-f]{32}", re.ASCII)
# What an upload keeps for the object it becomes ("tags" and the lock only when it was given them).
CONTENT_FIELDS = ("ctype", "headers", "meta", "tags", "owner", "acl", *LOCK_FIELDS)
SALT_BYTES = 16


def create(
    layer: ObjectLayer,
    bucket: str,
    key: str,
    owner: str,
    fields: dict,
    checksum_algorithm: str | None,
    checksum_type: str | None = None,
) -> dict:
    """Open an upload; `fields` are the object's content type, headers, metadata and tags.

    `checksum_type` (COMPOSITE or FULL_OBJECT) says how the parts' checksums of
    `checksum_algorithm` become the object's.
    """
    layer.bucket(bucket)
    record = dict(
        fields,
        key=key,
        upload_id=version_id(),
        initiated=now_ms(),
        owner=owner,
        checksum_algorithm=checksum_algorithm,
    )
    if checksum_algorithm:
        record["checksum_type"] = checksum_type
    layer.submit({"op": "upload.create", "bucket": bucket, "record": record})
    return record


def open_upload(layer: ObjectLayer, bucket: str, key: str, upload_id: str) -> dict:
    """The open upload's record (NoSuchBucket, else NoSuchUpload, when there is none)."""
    record = layer.reader.uploads.get(bucket, key, upload_id) if UPLOAD_ID_SHAPE.fullmatch(upload_id) else None
    if record is None:
        layer.bucket(bucket)
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    return record


def put_part(
    layer: ObjectLayer,
    bucket: str,
    key: str,
    upload_id: str,
    number: int,
    payload: Payload,
    data_key: bytes | None = None,
) -> dict:
    """Store one part's body and commit its record; returns the part record.

    A part of an upload created with a checksum algorithm always gets that checksum. A part
    of an encrypted upload is sealed under a key of its own derived from the upload's
    `data_key` (see encryption.pages).
    """
    upload = open_upload(layer, bucket, key, upload_id)
    if upload["checksum_algorithm"]:
        payload.require_checksum(upload["checksum_algorithm"])
    limit = min(MAX_PART_SIZE, layer.max_object_size)
    if payload.size is not None and payload.size > limit:
        raise S3Error("EntityTooLarge", ProposedSize=str(payload.size), MaxSizeAllowed=str(limit))
    salt = None if data_key is None else secrets.token_hex(SALT_BYTES)
    sealer = None if data_key is None else PageSealer(segment_key(data_key, salt))
    temp, _, size, md5 = receive(layer.store, payload, limit, -1, sealer)
    if temp is None:  # an empty part still has a file, like every other part
        temp = layer.store.new_temp()
    try:
        checksums = payload.finish(md5.digest())
    except BaseException:
        temp.abort()
        raise
    return _commit_part(layer, bucket, key, upload_id, number, temp, md5.hexdigest(), size, checksums, salt)


def copy_part(
    layer: ObjectLayer,
    bucket: str,
    key: str,
    upload_id: str,
    number: int,
    source_bucket: str,
    source_key: str,
    source_version: str | None,
    check_source: Callable[[dict], None],
    source_range: Callable[[int], tuple[int, int] | None],
    open_source: Callable[[dict], bytes | None] | None = None,
    data_key: bytes | None = None,
) -> dict:
    """UploadPartCopy: a byte range of a version of another object (by default its current
    one) becomes a part.

    `check_source(record)` raises when the source's preconditions fail; `source_range(size)`
    gives the inclusive (first, last) bytes to copy, or None for all of them. Local bytes are
    copied inside the kernel and hashed from a read-only map of the open source, so no
    buffer ever holds them; remote ones are hashed as they arrive. `open_source(record)` gives
    a sealed source's data key, and `data_key` is the upload's: with either, the range is
    decrypted and sealed again as it streams. Returns the part record.
    """
    upload = open_upload(layer, bucket, key, upload_id)
    source, body = layer.open(source_bucket, source_key, source_version)
    temp = None
    salt = None
    try:
        check_source(source)
        source_data_key = None if open_source is None else open_source(source)
        first, last = source_range(source["size"]) or (0, source["size"] - 1)
        length = last - first + 1
        limit = min(MAX_PART_SIZE, layer.max_object_size)
        if length > limit:
            raise S3Error("EntityTooLarge", ProposedSize=str(length), MaxSizeAllowed=str(limit))
        md5 = hashlib.md5()
        checksum = new_checksum(upload["checksum_algorithm"]) if upload["checksum_algorithm"] else None
        temp = layer.store.new_temp()
        if source_data_key is not None or data_key is not None:
            salt = None if data_key is None else secrets.token_hex(SALT_BYTES)
            plain = read_plain(body, source, source_data_key, first, length)
            copy_sealed(plain, temp, salt and segment_key(data_key, salt), lambda data: _hash(data, md5, checksum))
        elif source["inline"]:
            data = body[first : last + 1]
            temp.write(data)
            _hash(data, md5, checksum)
        elif length:
            body.copy_to(temp, first, length, lambda data: _hash(data, md5, checksum))
    except BaseException:
        if temp is not None:
            temp.abort()
        raise
    finally:
        if not source["inline"]:
            body.close()
    checksums = {} if checksum is None else {upload["checksum_algorithm"]: checksum.b64digest()}
    return _commit_part(layer, bucket, key, upload_id, number, temp, md5.hexdigest(), length, checksums, salt)


def _hash(data, md5, checksum) -> None:
    md5.update(data)
    if checksum is not None:
        checksum.update(data)


def _commit_part(
    layer: ObjectLayer,
    bucket: str,
    key: str,
    upload_id: str,
    number: int,
    temp: TempObject,
    etag: str,
    size: int,
    checksums: dict,
    salt: str | None = None,
) -> dict:
    """Move a received part into place and commit its record; returns the record. A sealed
    part keeps its key's `salt` and the size of its file."""
    part = {
        "number": number,
        "etag": etag,
        "size": size,
        "mtime": now_ms(),
        "checksums": checksums,
        "file": f"{upload_id}.{number}.{secrets.token_hex(8)}",
    }
    if salt is not None:
        part.update(sse_salt=salt, file_size=sealed_size(size))
    try:
        part.update(layer.data.place(temp, bucket, key, part["file"], upload_id))
    except BaseException:
        temp.abort()
        raise
    _submit_or_remove(
        layer,
        bucket,
        key,
        part["file"],
        part,
        {"op": "upload.part", "bucket": bucket, "key": key, "upload_id": upload_id, "part": part},
    )
    return part


def complete(
    layer: ObjectLayer,
    bucket: str,
    key: str,
    upload_id: str,
    requested: list[tuple[int, str]],
    requested_checksums: list[str | None],
    condition: dict | None = None,
    promised: dict | None = None,
) -> dict:
    """Build the object from the listed parts and commit it; returns the object's record.

    The list is checked here first, so a refused list moves no bytes; apply checks it again,
    and decides `condition` (as object.put's) on the state the object lands on.
    `requested_checksums` are the list's part checksums of the upload's algorithm (None
    where a part names none): each must be the stored part's. `promised` is what the client
    says of the whole object (see `_object_checksums`).
    """
    upload = open_upload(layer, bucket, key, upload_id)
    stored = layer.reader.uploads.all_parts(bucket, upload_id)
    refused = check_part_list(requested, stored)
    if refused is not None:
        raise S3Error(refused)
    parts = [stored[number] for number, _ in requested]
    size = sum(part["size"] for part in parts)
    checksums, checksum_fields = _object_checksums(upload, requested, requested_checksums, parts, size, promised or {})
    if size > layer.max_object_size:
        raise S3Error("EntityTooLarge", ProposedSize=str(size), MaxSizeAllowed=str(layer.max_object_size))
    vid = version_id()
    try:
        location = layer.data.assemble(bucket, key, vid, parts, upload_id)
    except FileNotFoundError:  # the part was uploaded again meanwhile and its old file freed
        raise S3Error("InvalidPart") from None
    digests = b"".join(bytes.fromhex(part["etag"]) for part in parts)
    record = {name: upload[name] for name in CONTENT_FIELDS if name in upload}
    record.update(
        key=key,
        vid=vid,
        size=size,
        etag=f"{hashlib.md5(digests).hexdigest()}-{len(parts)}",
        mtime=now_ms(),
        checksums=checksums,
        inline=False,
        part_sizes=[part["size"] for part in parts],
        **location,
    )
    record.update(checksum_fields)
    if "sse" in upload:
        record["sse"] = dict(upload["sse"], salts=[part["sse_salt"] for part in parts])
        record["file_size"] = sum(file_size(part) for part in parts)
    command = {
        "op": "upload.complete",
        "bucket": bucket,
        "upload_id": upload_id,
        "parts": [[number, etag] for number, etag in requested],
        "record": record,
    }
    if condition:
        command["condition"] = condition
    result = _submit_or_remove(layer, bucket, key, vid, record, command)
    if result.get("repeated"):
        # Another completion of this upload committed first: this file is not the object's.
        layer.data.discard(bucket, key, vid, record)
    return with_version(record, result)


def completion(layer: ObjectLayer, bucket: str, key: str, upload_id: str) -> dict | None:
    """The completion kept for an upload of `key` already completed (None otherwise): a
    CompleteMultipartUpload retried after it applied answers the same ETag and version."""
    completed = layer.reader.requests.completed_upload(upload_id) if UPLOAD_ID_SHAPE.fullmatch(upload_id) else None
    return completed if completed is not None and (completed["bucket"], completed["key"]) == (bucket, key) else None


def repeat(completed: dict, requested: list[tuple[int, str]]) -> dict:
    """What a completion already applied answered, for the same part list; NoSuchUpload for another."""
    if not same_completion(completed, completed["bucket"], completed["key"], requested):
        raise S3Error("NoSuchUpload")
    return with_version(dict(completed["record"]), completed["result"])


def _object_checksums(
    upload: dict,
    requested: list[tuple[int, str]],
    requested_checksums: list[str | None],
    parts: list,
    size: int,
    promised: dict,
) -> tuple[dict, dict]:
    """The `size` bytes object's {algorithm: checksum} and the record fields its parts' checksums add.

    `promised` holds what the client states of the whole object, each checked when given:
    "size", "checksum_type" and "checksums" ({algorithm: value}).

    Raises:
        S3Error: InvalidPart for a part checksum that is not the stored one; BadDigest for a
            checksum or checksum type of the object that is not this upload's; InvalidRequest
            for a size that is not the parts' sum.
    """
    if promised.get("size") is not None and promised["size"] != size:
        raise S3Error(
            "InvalidRequest",
            f"The provided 'x-amz-mp-object-size' header value {promised['size']} "
            f"does not match what was computed: {size}",
        )
    algorithm = upload["checksum_algorithm"]
    checksum_type = upload.get("checksum_type") or COMPOSITE
    if promised.get("checksum_type") not in (None, checksum_type if algorithm else None):
        raise S3Error(
            "BadDigest",
            f"The upload was created using the {checksum_type if algorithm else 'null'} checksum mode. "
            f"The complete request must use the same checksum mode.",
        )
    if not algorithm:
        if promised.get("checksums"):
            raise S3Error("BadDigest", "The upload was created without a checksum algorithm.")
        return {}, {}
    part_checksums = [part["checksums"].get(algorithm) for part in parts]
    for number, given, kept in zip((n for n, _ in requested), requested_checksums, part_checksums, strict=True):
        if kept is None or given not in (None, kept):
            raise S3Error("InvalidPart", f"The {algorithm.upper()} checksum of part {number} does not match.")
    if checksum_type == COMPOSITE:
        value = composite_checksum(algorithm, part_checksums)
    else:
        value = full_object_checksum(algorithm, part_checksums, [part["size"] for part in parts])
    for name, given in promised.get("checksums", {}).items():
        if name != algorithm or given != value:
            raise S3Error("BadDigest", f"The {name.upper()} you specified did not match the calculated checksum.")
    return {algorithm: value}, {"checksum_type": checksum_type, "part_checksums": part_checksums}


def abort(layer: ObjectLayer, bucket: str, key: str, upload_id: str) -> None:
    open_upload(layer, bucket, key, upload_id)
    layer.submit({"op": "upload.abort", "bucket": bucket, "key": key, "upload_id": upload_id})


def list_parts(layer: ObjectLayer, bucket: str, key: str, upload_id: str, after: int, max_parts: int):
    """The upload's record, one page of its parts, and whether more follow."""
    upload = open_upload(layer, bucket, key, upload_id)
    parts, truncated = layer.reader.uploads.list_parts(bucket, upload_id, after, max_parts)
    return upload, parts, truncated


def list_uploads(
    layer: ObjectLayer,
    bucket: str,
    prefix: str,
    delimiter: str,
    key_marker: str | None,
    upload_id_marker: str | None,
    max_uploads: int,
):
    """The bucket's record and one page of its open uploads."""
    record = layer.bucket(bucket)
    page = layer.reader.uploads.list_uploads(bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads)
    return record, page


def _submit_or_remove(layer: ObjectLayer, bucket: str, key: str, file: str, placed: dict, command: dict) -> dict:
    """Submit a command whose file is in place where `placed` (its part's or version's record)
    says; remove the file if the command is refused.

    A timed-out command may still commit: its file is left to the start-up sweep.
    """
    try:
        return layer.submit(command)
    except S3Error as exc:
        if exc.code != "ServiceUnavailable":
            layer.data.discard(bucket, key, file, placed)
        raise
