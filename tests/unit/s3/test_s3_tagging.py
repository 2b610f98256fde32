"""Tag sets from untrusted input: the x-amz-tagging query, the Tagging document, S3's limits."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, quote_plus, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.engine.tags import MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, check_tags, valid_key, valid_value
from nebulaio.s3.tagging import parse_tag_query, parse_tag_set, tagging_document

# Characters S3 allows in tags: letters, numbers, white space and _ . : / = + - @.
tag_char = st.characters(categories=("L", "N", "Z")) | st.sampled_from("_.:/=+-@")
tag_key = st.text(tag_char, min_size=1, max_size=64).filter(lambda k: not k.lower().startswith("aws:"))
tag_value = st.text(tag_char, max_size=128)
tag_sets = st.dictionaries(tag_key, tag_value, max_size=MAX_OBJECT_TAGS)


def spec_allows(text: str) -> bool:
    return all(char in "_.:/=+-@" or unicodedata.category(char)[0] in "LNZ" for char in text)


@given(tag_sets)
def test_document_round_trip(tags):
    assert parse_tag_set(tagging_document(tags), MAX_OBJECT_TAGS) == dict(sorted(tags.items()))


@given(tag_sets, st.sampled_from([quote, quote_plus]))
def test_query_round_trip(tags, quote_via):
    query = urlencode(list(tags.items()), quote_via=quote_via)
    assert parse_tag_query(query) == dict(sorted(tags.items()))


@given(st.binary(max_size=300))
def test_any_document_is_a_tag_set_or_an_s3_error(body):
    try:
        tags = parse_tag_set(body, MAX_BUCKET_TAGS)
    except S3Error as error:
        assert error.code in ("MalformedXML", "InvalidTag", "BadRequest")
        return
    assert len(tags) <= MAX_BUCKET_TAGS
    assert all(valid_key(key) and valid_value(value) for key, value in tags.items())


@given(st.text(max_size=200))
def test_any_query_is_a_tag_set_or_an_s3_error(query):
    try:
        tags = parse_tag_query(query)
    except S3Error as error:
        assert error.code in ("InvalidArgument", "InvalidTag", "BadRequest")
        return
    assert len(tags) <= MAX_OBJECT_TAGS
    assert all(valid_key(key) and valid_value(value) for key, value in tags.items())


@given(st.text(max_size=140))
def test_key_rule_is_s3s(text):
    utf16_units = len(text.encode("utf-16-le")) // 2
    assert valid_key(text) == (1 <= utf16_units <= 128 and spec_allows(text))
    assert valid_value(text) == (utf16_units <= 256 and spec_allows(text))


@pytest.mark.parametrize(
    "pairs,code,message",
    [
        ([(f"k{i}", "") for i in range(11)], "InvalidTag", "Object tags cannot be greater than 10"),
        ([("a", "1"), ("a", "2")], "InvalidTag", "Cannot provide multiple Tags with the same key"),
        ([("", "v")], "InvalidTag", "The TagKey you have provided is invalid"),
        ([("aws:x", "v")], "InvalidTag", "Your TagKey cannot be prefixed with aws:"),
        ([("Aws:x", "v")], "InvalidTag", "Your TagKey cannot be prefixed with aws:"),
        ([("k", "<")], "InvalidTag", "The TagValue you have provided is invalid"),
    ],
)
def test_object_tag_refusals(pairs, code, message):
    with pytest.raises(S3Error) as caught:
        check_tags(pairs, MAX_OBJECT_TAGS)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_bucket_limits():
    assert len(check_tags([(f"k{i}", "") for i in range(50)], MAX_BUCKET_TAGS)) == 50
    with pytest.raises(S3Error) as caught:
        check_tags([(f"k{i}", "") for i in range(51)], MAX_BUCKET_TAGS)
    assert caught.value.message == "Bucket tag count cannot be greater than 50"
    with pytest.raises(S3Error) as caught:
        check_tags([("aws:x", "")], MAX_BUCKET_TAGS)
    assert caught.value.message == "System tags cannot be added/updated by requester"


@pytest.mark.parametrize(
    "query,expected",
    [
        ("foo=bar&bar", {"bar": "", "foo": "bar"}),
        ("a+b=c%2Bd", {"a b": "c+d"}),
        ("&&a=1&", {"a": "1"}),
        ("", {}),
    ],
)
def test_query_forms(query, expected):
    assert parse_tag_query(query) == expected


@pytest.mark.parametrize("query", ["a=1&a=2", "=v", "a=b=c", "a=%FF", "%C3=v"])
def test_query_refusals_are_invalid_argument(query):
    with pytest.raises(S3Error) as caught:
        parse_tag_query(query)
    assert caught.value.code == "InvalidArgument"
    assert caught.value.fields["ArgumentName"] == "x-amz-tagging"
