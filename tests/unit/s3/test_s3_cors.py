"""CORS: the configuration document from untrusted input, rule matching against S3's
description of it, the per-revision compile cache, and routing of OPTIONS.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3.cors import (
    METHODS,
    CompiledRule,
    CorsRules,
    configuration_document,
    first_match,
    parse_configuration,
    requested_headers,
)
from nebulaio.s3.router import PREFLIGHT, classify

# Printable text XML carries as is; at most one "*" where S3 allows a wildcard.
plain = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*<>&"), max_size=12)
one_star = st.one_of(plain, st.builds(lambda head, tail: f"{head}*{tail}", plain, plain))
methods = st.lists(st.sampled_from(sorted(METHODS)), min_size=1, max_size=5)
rules = st.fixed_dictionaries(
    {"origins": st.lists(one_star, min_size=1, max_size=3), "methods": methods},
    optional={
        "headers": st.lists(one_star, min_size=1, max_size=3),
        "expose": st.lists(plain, min_size=1, max_size=3),
        "id": plain,
        "max_age": st.integers(0, 2**31 - 1),
    },
)


def spec_matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """S3's wildcard: `*` stands for any run of characters, the rest must be equal."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def spec_first_match(stored: list[dict], origin: str, method: str, headers: list[str]) -> int | None:
    for index, rule in enumerate(stored):
        if (
            method in rule["methods"]
            and any(spec_matches(pattern, origin) for pattern in rule["origins"])
            and all(any(spec_matches(p.lower(), h) for p in rule.get("headers", ())) for h in headers)
        ):
            return index
    return None


@given(st.lists(rules, min_size=1, max_size=5))
def test_document_round_trip(stored):
    assert parse_configuration(configuration_document(stored)) == stored


@given(st.binary(max_size=400))
def test_any_document_is_rules_or_an_s3_error(body):
    try:
        parsed = parse_configuration(body)
    except S3Error as error:
        assert error.code in ("MalformedXML", "InvalidRequest", "InvalidArgument")
        return
    assert 1 <= len(parsed) <= 100
    assert all(rule["origins"] and set(rule["methods"]) <= METHODS for rule in parsed)


@given(st.lists(rules, min_size=1, max_size=4), plain, st.sampled_from(sorted(METHODS)), st.lists(plain, max_size=3))
def test_first_match_is_the_first_rule_s3_would_pick(stored, origin, method, headers):
    compiled = tuple(CompiledRule(rule) for rule in stored)
    names = [name.lower() for name in headers]
    found = first_match(compiled, origin, method, names)
    expected = spec_first_match(stored, origin, method, names)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found[0] is compiled[expected]
        assert found[1] == spec_allow_origin(stored[expected], origin)


def spec_allow_origin(rule: dict, origin: str) -> str:
    """`*` when the rule's first origin matching the request's is `*`, else the origin itself."""
    matched = next(pattern for pattern in rule["origins"] if spec_matches(pattern, origin))
    return "*" if matched == "*" else origin


@given(one_star, plain)
def test_origin_wildcard_matches_like_the_spec(pattern, origin):
    rule = CompiledRule({"origins": [pattern], "methods": ["GET"]})
    assert (rule.allowed_origin(origin, "GET", []) is not None) == spec_matches(pattern, origin)


@given(one_star, plain.filter(lambda text: "," not in text))
def test_header_wildcard_ignores_case(pattern, header):
    rule = CompiledRule({"origins": ["*"], "methods": ["GET"], "headers": [pattern]})
    allowed = rule.allowed_origin("o", "GET", requested_headers(header)) is not None
    assert allowed == (not header.strip() or spec_matches(pattern.lower(), header.strip().lower()))


def test_requested_headers_are_lower_cased_in_order():
    assert requested_headers("X-Amz-Date, content-type,,Authorization ") == [
        "x-amz-date",
        "content-type",
        "authorization",
    ]
    assert requested_headers(None) == []


@pytest.mark.parametrize(
    "body,code",
    [
        (b"<CORSConfiguration/>", "MalformedXML"),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod/></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            b"<MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            b"<ID>a</ID><ID>b</ID></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
    ],
)
def test_configuration_refusals(body, code):
    with pytest.raises(S3Error) as caught:
        parse_configuration(body)
    assert caught.value.code == code


def test_rules_compile_once_per_revision():
    cache = CorsRules()
    stored = [{"origins": ["*"], "methods": ["GET"]}]
    bucket = {"name": "b", "cors": {"revision": "r1", "rules": stored}}
    first = cache.of(bucket)
    assert cache.of({"name": "b", "cors": {"revision": "r1", "rules": stored}}) is first
    changed = cache.of({"name": "b", "cors": {"revision": "r2", "rules": stored}})
    assert changed is not first
    assert cache.of({"name": "b"}) is None


@pytest.mark.parametrize("query", [{}, {"uploads": ""}, {"tagging": "", "acl": ""}, {"X-Amz-Signature": "x"}])
@pytest.mark.parametrize("key", [None, "k"])
def test_options_is_a_preflight_whatever_the_query(query, key):
    assert classify("OPTIONS", "bucket", key, query, {}) == PREFLIGHT


@pytest.mark.parametrize(
    "method,key,subresource,operation",
    [
        ("GET", "k", "tagging", "GetObjectTagging"),
        ("PUT", "k", "tagging", "PutObjectTagging"),
        ("DELETE", "k", "tagging", "DeleteObjectTagging"),
        ("GET", None, "tagging", "GetBucketTagging"),
        ("PUT", None, "tagging", "PutBucketTagging"),
        ("DELETE", None, "tagging", "DeleteBucketTagging"),
        ("GET", None, "cors", "GetBucketCors"),
        ("PUT", None, "cors", "PutBucketCors"),
        ("DELETE", None, "cors", "DeleteBucketCors"),
    ],
)
def test_routes(method, key, subresource, operation):
    assert classify(method, "bucket", key, {subresource: ""}, {}) == operation
