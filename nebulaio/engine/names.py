"""What may be called a bucket and what may be called a key.

Bucket names follow AWS's rules for general purpose buckets, so any name that works
here also works on AWS (and in virtual-host URLs and TLS wildcard certificates). Keys
are any UTF-8 string from 1 to 1024 bytes, as on S3; they never become file names
(object files are named by a hash of the key), so no character needs refusing.
"""

import re

from nebulaio.engine.errors import S3Error

__all__ = ["MAX_KEY_BYTES", "check_bucket_name", "check_object_key", "decode_key"]

MAX_KEY_BYTES = 1024
# No key of this many characters can exceed MAX_KEY_BYTES: UTF-8 spends at most 4 bytes on one.
ALWAYS_SHORT_KEY_CHARS = MAX_KEY_BYTES // 4

# 3-63 of [a-z0-9.-], first and last a letter or digit.
BUCKET_NAME_SHAPE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", re.ASCII)
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str) -> None:
    """Refuse a name AWS would refuse for a new general purpose bucket.

    Raises:
        S3Error: InvalidBucketName, with AWS's message (which names no rule) and the name.
    """
    if (
        BUCKET_NAME_SHAPE.fullmatch(name) is None
        or ".." in name
        or IPV4_SHAPE.fullmatch(name) is not None
        or name.startswith(RESERVED_BUCKET_PREFIXES)
        or name.endswith(RESERVED_BUCKET_SUFFIXES)
    ):
        raise S3Error("InvalidBucketName", BucketName=name)


def check_object_key(key: str) -> None:
    """Refuse the keys S3 refuses: empty, or longer than 1024 bytes of UTF-8.

    Raises:
        S3Error: UserKeyMustBeSpecified for an empty key, KeyTooLongError for a long one.
    """
    if not key:
        raise S3Error("UserKeyMustBeSpecified")
    if len(key) > ALWAYS_SHORT_KEY_CHARS:
        size = len(key.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            raise S3Error("KeyTooLongError", Size=str(size), MaxSizeAllowed=str(MAX_KEY_BYTES))


def decode_key(raw: bytes) -> str:
    """The key named by the request path's bytes (already percent-decoded).

    Strict UTF-8: a key that is not valid UTF-8 (including encoded surrogates) could not
    be listed back or compared byte for byte, so the request is refused like S3 does.

    Raises:
        S3Error: InvalidURI when the bytes are not UTF-8.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI") from None
