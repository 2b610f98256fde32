"""Query arguments several S3 operations share, validated the way S3 does."""

from __future__ import annotations

from nebulaio.engine.errors import S3Error

MAX_INTEGER_ARGUMENT = 2**31 - 1
MAX_INTEGER_DIGITS = len(str(MAX_INTEGER_ARGUMENT))
MAX_PART_NUMBER = 10000


def part_number(query: dict) -> int:
    """The partNumber argument of UploadPart, UploadPartCopy, GetObject and HeadObject."""
    value = query.get("partNumber", "")
    if not (value.isascii() and value.isdigit() and len(value) <= 5 and 1 <= int(value) <= MAX_PART_NUMBER):
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=value[:64],
        )
    return int(value)


def integer(query: dict, name: str, default: int, minimum: int = 0) -> int:
    """A non-negative 32-bit integer argument (max-keys, max-parts, part-number-marker, ...)."""
    value = query.get(name)
    if value is None:
        return default
    if (
        not (value.isascii() and value.isdigit())
        or len(value) > MAX_INTEGER_DIGITS
        or not minimum <= int(value) <= MAX_INTEGER_ARGUMENT
    ):
        raise S3Error(
            "InvalidArgument",
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=value[:64],
        )
    return int(value)


def url_encoding(query: dict) -> bool:
    """Whether the listing's keys are to be URL-encoded (encoding-type=url)."""
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
