"""How S3 names map onto LMDB keys without losing S3's listing order.

The LMDB built into this deployment refuses keys longer than 511 bytes, while an S3 key may
be 1024 UTF-8 bytes after a bucket name of up to 63. An object's LMDB key is therefore

    bucket \\0 key                                      key of at most SHORT_KEY_LIMIT bytes
    bucket \\0 key[:SHORT_KEY_LIMIT] \\xff xxh3_128(key)  longer keys (481 bytes at most)

Bucket names never contain \\0, so one bucket's keys are one contiguous range. Valid UTF-8
never contains 0xff, so the byte order of these LMDB keys is exactly S3's order (the byte
order of the UTF-8 key) with one exception: long keys sharing their first SHORT_KEY_LIMIT
bytes form a contiguous *group* ordered by digest. A listing reads such a group whole and
sorts it by the full key that the record keeps.

Seeking is exact too: for a target t of at most SHORT_KEY_LIMIT bytes, the LMDB keys at or
after `bucket \\0 t` are exactly the S3 keys >= t. For a longer target, seeking to its first
SHORT_KEY_LIMIT bytes lands at most one short key and one group early; the reader filters
those by their full key.
"""

import xxhash

MAX_LMDB_KEY = 511
# A bucket name is at most 63 bytes, and its separator follows it.
MAX_BUCKET_PREFIX = 64
SHORT_KEY_LIMIT = 400
LONG_KEY_MARK = b"\xff"
DIGEST_SIZE = 16
BUCKET_SEPARATOR = b"\0"


def bucket_prefix(bucket: str) -> bytes:
    """The first bytes of every LMDB key of this bucket's objects."""
    return bucket.encode() + BUCKET_SEPARATOR


def key_suffix(key: bytes, limit: int = SHORT_KEY_LIMIT) -> bytes:
    """The part of an object's LMDB key that follows the bucket prefix.

    Another keyspace that adds bytes around the key passes its own, smaller `limit`.
    """
    if len(key) <= limit:
        return key
    return key[:limit] + LONG_KEY_MARK + xxhash.xxh3_128_digest(key)


def object_key(bucket: str, key: str) -> bytes:
    """The LMDB key of the object `key` in `bucket`."""
    return bucket_prefix(bucket) + key_suffix(key.encode())


def is_long_suffix(suffix: bytes) -> bool:
    """Whether a stored suffix is a truncated long key (its full key lives in the record)."""
    return len(suffix) > SHORT_KEY_LIMIT


def long_key_group(suffix: bytes) -> bytes:
    """What every stored suffix in a long key's group starts with: its head and the mark."""
    return suffix[: SHORT_KEY_LIMIT + len(LONG_KEY_MARK)]


def seek_suffix(target: bytes) -> bytes:
    """Where a cursor seeks to find the keys >= target (see the module docstring)."""
    return target[:SHORT_KEY_LIMIT]


def successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with `prefix`.

    NOTE: `prefix` ends in a UTF-8 delimiter, whose last byte is never 0xff, so incrementing
    it cannot overflow.
    """
    return prefix[:-1] + bytes((prefix[-1] + 1,))


def bucket_entries(cursor, bucket: str, after: bytes | None = None):
    """A database's (LMDB key, value) pairs of one bucket, from just after the LMDB key
    `after` (which need no longer exist) on."""
    prefix = bucket_prefix(bucket)
    if cursor.set_range(prefix if after is None else after):
        for lmdb_key, value in cursor.iternext():
            if not lmdb_key.startswith(prefix):
                break
            if lmdb_key != after:
                yield lmdb_key, value
