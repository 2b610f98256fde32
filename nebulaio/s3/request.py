"""An S3 request as the handlers see it: bucket, key, query and headers, decoded once."""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import decode_key

# WSGI carries these two without the HTTP_ prefix.
_UNPREFIXED = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}
_HEADER_NAMES: dict[str, str] = {}


def _header_name(environ_key: str) -> str:
    name = _HEADER_NAMES.get(environ_key)
    if name is None:
        name = environ_key[5:].replace("_", "-").lower()
        _HEADER_NAMES[environ_key] = name
    return name


def _header_value(value: str) -> str:
    """WSGI hands header bytes over as latin-1; clients send UTF-8 (e.g. in x-amz-meta-*)."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def headers_of(environ: dict) -> dict[str, str]:
    headers = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            headers[_header_name(name)] = _header_value(value)
        elif name in _UNPREFIXED:
            if value:
                headers[_UNPREFIXED[name]] = value
    return headers


def parse_query(raw_query: str) -> dict[str, str]:
    """Query parameters decoded as S3 does ('+' is a literal plus sign, not a space)."""
    query: dict[str, str] = {}
    if not raw_query:
        return query
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            query[unquote(name, errors="strict")] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise S3Error("InvalidArgument", "A query parameter is not valid UTF-8.") from None
    return query


def _virtual_host_bucket(host: str, domains: tuple[str, ...]) -> str | None:
    """The bucket a Host header names under one of `domains` (DNS names ignore case), or None.

    Raises:
        S3Error: InvalidBucketName when the Host is a domain with an empty bucket label.
    """
    host = host.lower()
    host = host.rpartition(":")[0] or host
    for domain in domains:
        if host.endswith("." + domain):
            bucket = host[: -len(domain) - 1]
            if not bucket:
                raise S3Error("InvalidBucketName", "The Host header names no bucket.", BucketName="")
            return bucket
    return None


class S3Request:
    __slots__ = (
        "environ",
        "method",
        "raw_path",
        "raw_query",
        "query",
        "headers",
        "bucket",
        "key",
        "request_id",
        "auth",
        "user",
        "principal",
        "iam",
        "virtual_host",
        "client_address",
    )

    def __init__(self, environ: dict, request_id: str, domains: tuple[str, ...], client_address: str | None = None):
        """`client_address` is where the request came from when a trusted proxy says so (its peer otherwise)."""
        self.environ = environ
        self.client_address = client_address or environ.get("REMOTE_ADDR", "")
        self.request_id = request_id
        self.method = environ["REQUEST_METHOD"]
        raw_uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
        if not raw_uri.isascii():
            # gunicorn decodes the request line as latin-1; get the client's bytes back.
            raw_uri = raw_uri.encode("latin-1").decode("utf-8", "surrogateescape")
        if not raw_uri.startswith("/"):
            # absolute-form request target: http://host/path
            scheme, _, rest = raw_uri.partition("://")
            raw_uri = "/" + rest.partition("/")[2] if scheme and rest else "/" + raw_uri
        self.raw_path, _, self.raw_query = raw_uri.partition("?")
        self.query = parse_query(self.raw_query)
        self.headers = headers_of(environ)
        self.auth = None
        self.user = None
        self.principal = None
        self.iam = None  # the request's IamLookups, once it is authenticated
        bucket = _virtual_host_bucket(self.headers.get("host", ""), domains) if domains else None
        path = self.raw_path
        self.virtual_host = bucket is not None
        if bucket is None:
            bucket_part, slash, key_part = path[1:].partition("/")
            bucket = unquote(bucket_part) or None
            path = key_part if slash else ""
        else:
            path = path[1:]
        self.bucket = bucket
        self.key = decode_key(unquote_to_bytes(path)) if path else None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)
