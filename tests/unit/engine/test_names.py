"""Bucket and key names: AWS's rules, checked by examples and by properties."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import MAX_KEY_BYTES, check_bucket_name, check_object_key, decode_key

BUCKET_CHARS = string.ascii_lowercase + string.digits + ".-"
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def is_valid_bucket(name: str) -> bool:
    """AWS's rules, one per line, as the bucket naming page lists them."""
    return (
        3 <= len(name) <= 63
        and all(char in BUCKET_CHARS for char in name)
        and name[0].isalnum()
        and name[-1].isalnum()
        and ".." not in name
        and not (name.count(".") == 3 and all(part.isdigit() for part in name.split(".")))
        and not name.startswith(RESERVED_PREFIXES)
        and not name.endswith(RESERVED_SUFFIXES)
    )


def accepted(name: str) -> bool:
    try:
        check_bucket_name(name)
    except S3Error as error:
        assert error.code == "InvalidBucketName"
        assert error.status == 400
        assert error.fields == {"BucketName": name}
        return False
    return True


@pytest.mark.parametrize(
    "name",
    ["docexamplebucket1", "log-delivery-march-2020", "my-hosted-content", "a.b.c", "abc", "1-2", "a" * 63, "1.2.3"],
)
def test_aws_examples_of_valid_names(name):
    check_bucket_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "doc_example_bucket",
        "DocExampleBucket",
        "doc-example-bucket-",
        "-doc",
        ".doc",
        "ab",
        "a" * 64,
        "a..b",
        "192.168.5.4",
        "xn--bucket",
        "sthree-bucket",
        "sthree-configurator-x",
        "amzn-s3-demo-bucket",
        "bucket-s3alias",
        "bucket--ol-s3",
        "bucket.mrap",
        "bucket--x-s3",
        "bucket--table-s3",
        "",
        "bücket",
        "bucket\n",
        "buck et",
    ],
)
def test_aws_examples_of_invalid_names(name):
    assert not accepted(name)


@given(st.text(alphabet=BUCKET_CHARS + "A_ü/", max_size=70))
def test_bucket_names_follow_the_rules(name):
    assert accepted(name) == is_valid_bucket(name)


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", fullmatch=True))
def test_dotless_lowercase_names_are_valid_unless_reserved(name):
    assert accepted(name) == (not name.startswith(RESERVED_PREFIXES) and not name.endswith(RESERVED_SUFFIXES))


def test_key_length_is_counted_in_utf8_bytes():
    check_object_key("a" * MAX_KEY_BYTES)
    check_object_key("é" * (MAX_KEY_BYTES // 2))
    check_object_key("😀" * (MAX_KEY_BYTES // 4))
    for key in ("a" * (MAX_KEY_BYTES + 1), "é" * (MAX_KEY_BYTES // 2) + "a", "😀" * 257):
        with pytest.raises(S3Error) as caught:
            check_object_key(key)
        assert caught.value.code == "KeyTooLongError"
        assert caught.value.message == "Your key is too long"
        assert caught.value.fields == {"Size": str(len(key.encode())), "MaxSizeAllowed": "1024"}


def test_empty_key_is_refused():
    with pytest.raises(S3Error) as caught:
        check_object_key("")
    assert caught.value.status == 400


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_keys_are_legal_exactly_when_short_enough(key):
    if len(key.encode()) <= MAX_KEY_BYTES:
        check_object_key(key)
    else:
        with pytest.raises(S3Error):
            check_object_key(key)


@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_decode_key_reverses_utf8(key):
    assert decode_key(key.encode()) == key


@pytest.mark.parametrize(
    "raw", [b"\xff", b"abc\xc3", b"\xc0\xaf", b"\xed\xa0\x80"], ids=["ff", "cut", "overlong", "surrogate"]
)
def test_decode_key_refuses_invalid_utf8(raw):
    with pytest.raises(S3Error) as caught:
        decode_key(raw)
    assert caught.value.code == "InvalidURI"
    assert caught.value.status == 400
