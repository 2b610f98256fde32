"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from nebulaio.engine.errors import S3Error
from nebulaio.iam import acl
from nebulaio.s3 import arguments, xml

MAX_KEYS = 1000
TOKEN_VERSION = "1"


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


def owner_elements(bucket: dict) -> Callable[[dict], str]:
    """The Owner element of each listed version of the bucket: its own owner's (iam/acl.py
    says who that is), rendered once per owner."""
    rendered: dict[str | None, str] = {}

    def element(record: dict) -> str:
        owner = acl.object_owner(bucket, record)
        text = rendered.get(owner)
        if text is None:
            text = rendered[owner] = xml.owner_element(*acl.owner_of(owner))
        return text

    return element


def list_objects_v1(api, request, resp) -> None:
    query = request.query
    max_keys = min(arguments.integer(query, "max-keys", MAX_KEYS), MAX_KEYS)
    url_encode = arguments.url_encoding(query)
    prefix, delimiter, marker = query.get("prefix", ""), query.get("delimiter", ""), query.get("marker", "")
    bucket, page = api.layer.list(request.bucket, prefix, delimiter, marker or None, max_keys)
    resp.data = xml.list_objects_v1(
        request.bucket, prefix, delimiter, marker, max_keys, url_encode, page, owner_elements(bucket)
    )


def list_objects_v2(api, request, resp) -> None:
    query = request.query
    max_keys = min(arguments.integer(query, "max-keys", MAX_KEYS), MAX_KEYS)
    url_encode = arguments.url_encoding(query)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    token = query.get("continuation-token")
    start_after = query.get("start-after", "")
    if token:  # NOTE: an empty one is no token, as on S3 (and echoed back empty)
        after = read_token(token)
    else:
        after = start_after or None
    bucket, page = api.layer.list(request.bucket, prefix, delimiter, after, max_keys)
    next_token = make_token(page.last) if page.truncated and page.last is not None else None
    owner = owner_elements(bucket) if query.get("fetch-owner", "").lower() == "true" else None
    resp.data = xml.list_objects_v2(
        request.bucket, prefix, delimiter, max_keys, url_encode, page, token, next_token, start_after, owner
    )
