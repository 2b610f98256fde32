"""The LMDB key scheme keeps S3 order, except inside groups of long keys, which it makes contiguous."""

from hypothesis import given
from hypothesis import strategies as st

from nebulaio.meta.keys import (
    SHORT_KEY_LIMIT,
    is_long_suffix,
    key_suffix,
    long_key_group,
    object_key,
    seek_suffix,
    successor,
)

LONGEST_BUCKET = "b" * 63
LONGEST_KEY = "é" * 512  # 1024 UTF-8 bytes
LMDB_MAX_KEY = 511

heads = st.sampled_from(["", "a" * 399, "a" * 400, "a" * 398 + "é", "a" * 399 + "é", "a" * 400 + "/"])
tails = st.text(alphabet=st.sampled_from("\0\x01a/é\U0001f600"), max_size=8)
keys = st.builds(lambda head, tail: (head + tail).encode(), heads, tails)


def test_longest_names_fit_lmdb():
    assert len(object_key(LONGEST_BUCKET, LONGEST_KEY)) <= LMDB_MAX_KEY


def test_short_keys_are_stored_verbatim():
    key = b"a\0b/../\x01"
    assert key_suffix(key) == key
    assert not is_long_suffix(key_suffix(b"x" * SHORT_KEY_LIMIT))


def test_long_keys_share_a_group_by_head():
    first, second = b"x" * 400 + b"1", b"x" * 400 + b"2"
    assert is_long_suffix(key_suffix(first))
    assert long_key_group(key_suffix(first)) == long_key_group(key_suffix(second))
    assert key_suffix(first) != key_suffix(second)


@given(keys, keys)
def test_stored_order_is_s3_order_outside_groups(left, right):
    left_suffix, right_suffix = key_suffix(left), key_suffix(right)
    same_group = is_long_suffix(left_suffix) and is_long_suffix(right_suffix) and left[:400] == right[:400]
    if not same_group:
        assert (left < right) == (left_suffix < right_suffix)
        assert (left == right) == (left_suffix == right_suffix)


@given(keys, keys)
def test_seek_never_passes_a_key_at_or_after_the_target(key, target):
    if key >= target:
        assert key_suffix(key) >= seek_suffix(target)
    if len(target) <= SHORT_KEY_LIMIT:  # exact: the seek lands on the first key >= target
        assert (key >= target) == (key_suffix(key) >= seek_suffix(target))


def test_successor_bounds_every_key_under_a_prefix():
    assert successor(b"photos/") == b"photos0"
    assert successor("a\u00e9".encode()) > "a\u00e9\U0010ffff".encode()
