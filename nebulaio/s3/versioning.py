"""Bucket versioning: Put/GetBucketVersioning and ListObjectVersions.

Which version an object operation acts on (versionId) is each operation's business; this
module holds what concerns the bucket as a whole.
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.meta.versions import NULL_VERSION, version_of
from nebulaio.s3 import arguments, xml
from nebulaio.s3.body import read_body
from nebulaio.s3.listing import owner_elements

MAX_KEYS = 1000
STATES = ("Enabled", "Suspended")
EMPTY_CONFIGURATION = xml.document("VersioningConfiguration", "")
LOCKED_VERSIONING_MESSAGE = (
    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
)


def version_header(resp, record: dict) -> None:
    """x-amz-version-id, for versions written since versioning was first configured."""
    version = record.get("version")
    if version is not None:
        resp._headers["x-amz-version-id"] = version


def written_version_header(resp, record: dict) -> None:
    """x-amz-version-id of a write: none for a null version (a bucket never versioned, or
    suspended), which S3 leaves unnamed in its answer to PUT, POST, copy and completion."""
    if record.get("version") != NULL_VERSION:
        version_header(resp, record)


def put_bucket_versioning(api, request, resp) -> None:
    api.layer.bucket(request.bucket)
    tree = xml.parse(read_body(request, api.request_timeout), "VersioningConfiguration")
    status = (tree.findtext("Status") or "").strip()
    if (tree.findtext("MfaDelete") or "Disabled").strip() != "Disabled":
        raise S3Error("NotImplemented", "MFA delete is not supported.")
    if status not in STATES:
        raise S3Error("IllegalVersioningConfigurationException", "The Versioning element must be specified")
    api.layer.configure_bucket(
        request.bucket,
        "versioning",
        status,
        refusals={"InvalidBucketState": lambda: S3Error("InvalidBucketState", LOCKED_VERSIONING_MESSAGE)},
    )


def get_bucket_versioning(api, request, resp) -> None:
    status = api.layer.bucket(request.bucket)["versioning"]
    if status is None:
        resp.data = EMPTY_CONFIGURATION
        return
    resp.data = xml.document("VersioningConfiguration", f"<Status>{status}</Status><MfaDelete>Disabled</MfaDelete>")


def list_object_versions(api, request, resp) -> None:
    query = request.query
    max_keys = min(arguments.integer(query, "max-keys", MAX_KEYS), MAX_KEYS)
    encode = xml.url_quote if arguments.url_encoding(query) else xml.escape
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    key_marker = query.get("key-marker", "")
    version_marker = query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise S3Error(
            "InvalidArgument",
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    bucket, page = api.layer.list_versions(
        request.bucket, prefix, delimiter, key_marker or None, version_marker or None, max_keys
    )
    owner = owner_elements(bucket)
    parts = [
        f"<Name>{xml.escape(request.bucket)}</Name><Prefix>{encode(prefix)}</Prefix>",
        f"<KeyMarker>{encode(key_marker)}</KeyMarker><VersionIdMarker>{xml.escape(version_marker)}</VersionIdMarker>",
    ]
    if page.truncated:
        parts.append(xml.optional_element("NextKeyMarker", encode(page.next_key or "")))
        parts.append(xml.optional_element("NextVersionIdMarker", page.next_version or ""))
    parts.append(f"<MaxKeys>{max_keys:d}</MaxKeys>")
    parts.append(xml.optional_element("Delimiter", encode(delimiter)))
    parts.append(f"<IsTruncated>{xml.TRUE_FALSE[page.truncated]}</IsTruncated>")
    for record, latest in page.entries:
        common = (
            f"<Key>{encode(record['key'])}</Key><VersionId>{version_of(record)}</VersionId>"
            f"<IsLatest>{xml.TRUE_FALSE[latest]}</IsLatest><LastModified>{xml.last_modified(record['mtime'])}</LastModified>"
        )
        if record.get("marker"):
            parts.append(f"<DeleteMarker>{common}{owner(record)}</DeleteMarker>")
        else:
            parts.append(
                f"<Version>{common}<ETag>&quot;{record['etag']}&quot;</ETag>{xml.listed_checksum(record)}"
                f"<Size>{record['size']:d}</Size>"
                f"<StorageClass>STANDARD</StorageClass>{owner(record)}</Version>"
            )
    parts.extend(f"<CommonPrefixes><Prefix>{encode(prefix)}</Prefix></CommonPrefixes>" for prefix in page.prefixes)
    if encode is xml.url_quote:
        parts.append("<EncodingType>url</EncodingType>")
    resp.data = xml.document("ListVersionsResult", "".join(parts))
