"""Tag sets of objects and buckets, checked against S3's limits.

S3 allows 10 tags on an object and 50 on a bucket; a key is 1 to 128 characters and a value
0 to 256, counted in UTF-16 code units as S3 stores them; both may hold only Unicode letters,
numbers and spaces and `_ . : / = + - @`; keys are unique, and `aws:` is reserved for AWS.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from nebulaio.engine.errors import S3Error

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
RESERVED_PREFIX = "aws:"
SYMBOLS = frozenset("_.:/=+-@")
# Unicode general categories S3 takes as letters, numbers and white space (\p{L}\p{N}\p{Z}).
ALLOWED_CATEGORIES = frozenset("LNZ")
TOO_MANY = {
    MAX_OBJECT_TAGS: "Object tags cannot be greater than 10",
    MAX_BUCKET_TAGS: "Bucket tag count cannot be greater than 50",
}
RESERVED_MESSAGE = {
    MAX_OBJECT_TAGS: "Your TagKey cannot be prefixed with aws:",
    MAX_BUCKET_TAGS: "System tags cannot be added/updated by requester",
}


def _utf16_length(text: str) -> int:
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _allowed(text: str) -> bool:
    return all(char in SYMBOLS or unicodedata.category(char)[0] in ALLOWED_CATEGORIES for char in text)


def valid_key(key: str) -> bool:
    return 1 <= _utf16_length(key) <= MAX_KEY_LENGTH and _allowed(key)


def valid_value(value: str) -> bool:
    return _utf16_length(value) <= MAX_VALUE_LENGTH and _allowed(value)


def check_tags(pairs: Iterable[tuple[str, str]], limit: int) -> dict[str, str]:
    """The tag set of (key, value) pairs, sorted by key, as S3 lists it.

    `limit` is MAX_OBJECT_TAGS or MAX_BUCKET_TAGS.

    Raises:
        S3Error: InvalidTag over `limit` tags, for a key or value S3 refuses, a repeated key
            or a reserved `aws:` key.
    """
    pairs = list(pairs)
    if len(pairs) > limit:
        raise S3Error("InvalidTag", TOO_MANY[limit])
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not valid_key(key):
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid", TagKey=key)
        if not valid_value(value):
            raise S3Error("InvalidTag", "The TagValue you have provided is invalid", TagKey=key, TagValue=value)
        if key[: len(RESERVED_PREFIX)].lower() == RESERVED_PREFIX:
            raise S3Error("InvalidTag", RESERVED_MESSAGE[limit], TagKey=key)
        if key in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key", TagKey=key)
        tags[key] = value
    return dict(sorted(tags.items()))
