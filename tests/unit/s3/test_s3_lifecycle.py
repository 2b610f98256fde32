"""Lifecycle configuration documents: botocore's requests parse, render and parse back in
botocore unchanged; anything else is refused with S3's error codes and nothing worse."""

import calendar
from datetime import UTC, datetime

import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3.lifecycle import parse_configuration, parse_date, render_configuration

MODEL = botocore.session.get_session().get_service_model("s3")
PUT = MODEL.operation_model("PutBucketLifecycleConfiguration")
GET = MODEL.operation_model("GetBucketLifecycleConfiguration")
ERROR_CODES = {"MalformedXML", "InvalidArgument", "InvalidRequest", "NotImplemented"}

# Text a client can put in a document: printable, no lone surrogates.
printable = st.characters(blacklist_categories=("Cs", "Cc"))
text = st.text(printable, max_size=40)
identifier = st.text(printable, min_size=1, max_size=255)
tag = st.fixed_dictionaries({"Key": st.text(printable, min_size=1, max_size=128), "Value": text})
size = st.integers(0, 2**40)
days = st.integers(1, 2**31 - 1)
midnight = st.dates(min_value=datetime(1971, 1, 1).date()).map(
    lambda day: datetime(day.year, day.month, day.day, tzinfo=UTC)
)


@st.composite
def and_filter(draw) -> dict:
    conjunction = {}
    if draw(st.booleans()):
        conjunction["Prefix"] = draw(text)
    tags = draw(st.lists(tag, max_size=4, unique_by=lambda t: t["Key"]))
    if tags:
        conjunction["Tags"] = tags
    bounds = sorted(draw(st.lists(size, min_size=2, max_size=2, unique=True)))
    if draw(st.booleans()):
        conjunction["ObjectSizeGreaterThan"] = bounds[0]
    if draw(st.booleans()):
        conjunction["ObjectSizeLessThan"] = bounds[1]
    if len(conjunction) + len(tags) - bool(tags) < 2:
        conjunction["Prefix"] = conjunction.get("Prefix", "")
        conjunction.setdefault("ObjectSizeGreaterThan", bounds[0])
    return {"And": conjunction}


selection = st.one_of(
    st.builds(lambda p: {"Prefix": p}, text),
    st.just({"Filter": {}}),
    st.builds(lambda p: {"Filter": {"Prefix": p}}, text),
    st.builds(lambda t: {"Filter": {"Tag": t}}, tag),
    st.builds(lambda n: {"Filter": {"ObjectSizeGreaterThan": n}}, size),
    st.builds(lambda n: {"Filter": {"ObjectSizeLessThan": n}}, size),
    st.builds(lambda f: {"Filter": f}, and_filter()),
)


def has_tags(rule: dict) -> bool:
    found = rule.get("Filter", {})
    return "Tag" in found or "Tags" in found.get("And", {})


def has_sizes(rule: dict) -> bool:
    found = rule.get("Filter", {})
    return any("ObjectSize" in name for name in (*found, *found.get("And", {})))


@st.composite
def rule(draw) -> dict:
    drawn = {"ID": draw(identifier), "Status": draw(st.sampled_from(["Enabled", "Disabled"])), **draw(selection)}
    expirations = [st.builds(lambda n: {"Days": n}, days), st.builds(lambda d: {"Date": d}, midnight)]
    if not has_tags(drawn):
        expirations.append(st.builds(lambda b: {"ExpiredObjectDeleteMarker": b}, st.booleans()))
    actions = {
        "Expiration": st.one_of(expirations),
        "NoncurrentVersionExpiration": st.builds(
            lambda n, newer: {"NoncurrentDays": n, **({} if newer is None else {"NewerNoncurrentVersions": newer})},
            days,
            st.none() | st.integers(1, 100),
        ),
    }
    if not has_tags(drawn) and not has_sizes(drawn):
        actions["AbortIncompleteMultipartUpload"] = st.builds(lambda n: {"DaysAfterInitiation": n}, days)
    chosen = draw(st.lists(st.sampled_from(sorted(actions)), min_size=1, unique=True))
    drawn.update({name: draw(actions[name]) for name in chosen})
    return drawn


def request_body(rules: list[dict]) -> bytes:
    params = {"Bucket": "b", "LifecycleConfiguration": {"Rules": rules}, "ChecksumAlgorithm": "CRC32"}
    return botocore.serialize.create_serializer("rest-xml").serialize_to_request(params, PUT)["body"]


def parsed_by_botocore(document: bytes) -> list[dict]:
    response = {"body": document, "headers": {}, "status_code": 200}
    return botocore.parsers.RestXMLParser().parse(response, GET.output_shape)["Rules"]


@given(rules=st.lists(rule(), min_size=1, max_size=5, unique_by=lambda r: r["ID"]))
def test_a_botocore_configuration_round_trips(rules):
    configuration = parse_configuration(request_body(rules))
    configuration["minimum_size"] = "all_storage_classes_128K"
    assert parsed_by_botocore(render_configuration(configuration)) == rules


@given(body=st.binary(max_size=300))
def test_any_bytes_are_a_configuration_or_an_s3_error(body):
    try:
        parse_configuration(body)
    except S3Error as error:
        assert error.code in ERROR_CODES


VOCABULARY = [
    "Rule", "ID", "Prefix", "Filter", "Status", "Expiration", "Days", "Date", "And", "Tag", "Key", "Value",
    "ObjectSizeGreaterThan", "ObjectSizeLessThan", "ExpiredObjectDeleteMarker", "Transition",
    "NoncurrentVersionExpiration", "NoncurrentDays", "NewerNoncurrentVersions",
    "AbortIncompleteMultipartUpload", "DaysAfterInitiation", "Bogus",
]  # fmt: skip
leaf_text = st.sampled_from(
    ["", "0", "1", "-1", "7", "x", "Enabled", "Disabled", "true", "2020-01-01", "2020-01-01T01:00:00Z"]
)
element = st.recursive(
    st.builds(lambda name, body: f"<{name}>{body}</{name}>", st.sampled_from(VOCABULARY), leaf_text),
    lambda inner: st.builds(
        lambda name, children: f"<{name}>{''.join(children)}</{name}>",
        st.sampled_from(VOCABULARY),
        st.lists(inner, max_size=5),
    ),
    max_leaves=25,
)


@given(children=st.lists(element, max_size=4))
def test_any_tree_of_lifecycle_elements_parses_to_a_stable_form_or_an_s3_error(children):
    body = f"<LifecycleConfiguration>{''.join(children)}</LifecycleConfiguration>".encode()
    try:
        configuration = parse_configuration(body)
    except S3Error as error:
        assert error.code in ERROR_CODES
        return
    configuration["minimum_size"] = "all_storage_classes_128K"
    again = parse_configuration(render_configuration(configuration))
    assert again["rules"] == configuration["rules"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2020-01-01", (2020, 1, 1)),
        ("2020-01-01T00:00:00Z", (2020, 1, 1)),
        ("2020-01-01T00:00:00.000Z", (2020, 1, 1)),
        ("2020-01-02T02:00:00+02:00", (2020, 1, 2)),
    ],
)
def test_dates_are_iso_8601_at_midnight(text, expected):
    assert parse_date(text) == calendar.timegm((*expected, 0, 0, 0)) * 1000


@pytest.mark.parametrize(
    "text, code",
    [
        ("20200101", "MalformedXML"),
        ("2020-13-01", "MalformedXML"),
        ("tomorrow", "MalformedXML"),
        ("2020-01-01T10:00:00Z", "InvalidArgument"),
        ("2020-01-01T00:00:00+01:00", "InvalidArgument"),
    ],
)
def test_bad_dates(text, code):
    with pytest.raises(S3Error) as refused:
        parse_date(text)
    assert refused.value.code == code


def test_a_rule_without_an_id_is_given_one():
    body = request_body([{"Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}])
    [stored] = parse_configuration(body)["rules"]
    assert len(stored["id"]) == 48
