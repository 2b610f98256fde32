"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

import base64
import binascii

from nebulaio.engine.errors import S3Error
from nebulaio.iam.credentials import canonical_id
from nebulaio.s3 import xml

MAX_KEYS = 1000
# S3 reads max-keys as a signed 32-bit integer and refuses what does not fit.
MAX_KEYS_ARGUMENT = 2**31 - 1
MAX_KEYS_DIGITS = len(str(MAX_KEYS_ARGUMENT))
TOKEN_VERSION = "1"


def _max_keys(query: dict) -> int:
    value = query.get("max-keys")
    if value is None:
        return MAX_KEYS
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_KEYS_DIGITS or int(value) > MAX_KEYS_ARGUMENT:
        raise S3Error(
            "InvalidArgument",
            "Provided max-keys not an integer or within integer range",
            ArgumentName="max-keys",
            ArgumentValue=value[:64],
        )
    return min(int(value), MAX_KEYS)


def _url_encode(query: dict) -> bool:
    encoding = query.get("encoding-type")
    if encoding is None:
        return False
    if encoding.lower() != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=encoding[:64],
        )
    return True


def make_token(position: str) -> str:
    """Continuation tokens are opaque to clients: a version tag and the position, base64."""
    return base64.urlsafe_b64encode((TOKEN_VERSION + position).encode()).decode()


def read_token(token: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        decoded = ""
    if not decoded.startswith(TOKEN_VERSION):
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=token[:128],
        )
    return decoded[len(TOKEN_VERSION) :]


def _owner_of(bucket: dict) -> tuple[str, str]:
    return canonical_id(bucket["owner"]), bucket["owner"]


def list_objects_v1(api, request, resp) -> None:
    query = request.query
    max_keys = _max_keys(query)
    url_encode = _url_encode(query)
    prefix, delimiter, marker = query.get("prefix", ""), query.get("delimiter", ""), query.get("marker", "")
    bucket, page = api.layer.list(request.bucket, prefix, delimiter, marker or None, max_keys)
    resp.data = xml.list_objects_v1(
        request.bucket, prefix, delimiter, marker, max_keys, url_encode, page, _owner_of(bucket)
    )


def list_objects_v2(api, request, resp) -> None:
    query = request.query
    max_keys = _max_keys(query)
    url_encode = _url_encode(query)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    token = query.get("continuation-token")
    start_after = query.get("start-after", "")
    if token is not None:
        after = read_token(token)
    else:
        after = start_after or None
    bucket, page = api.layer.list(request.bucket, prefix, delimiter, after, max_keys)
    next_token = make_token(page.last) if page.truncated and page.last is not None else None
    owner = _owner_of(bucket) if query.get("fetch-owner", "").lower() == "true" else None
    resp.data = xml.list_objects_v2(
        request.bucket, prefix, delimiter, max_keys, url_encode, page, token, next_token, start_after, owner
    )
