"""The policy grammar and evaluator: examples from AWS's documentation, and properties."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulaio.iam.actions import ACTIONS, KNOWN_ACTIONS
from nebulaio.iam.policy import (
    ALLOW,
    DENY,
    USER_ARN_PREFIX,
    Context,
    PolicyError,
    Principal,
    evaluate,
    parse,
)

ALICE = Principal("user", "alice", "alice-id")
ANONYMOUS = Principal("anonymous", None, None)


def context(**values) -> Context:
    return Context({key.replace("_", ":", 1).lower(): value for key, value in values.items()})


def document(*statements, version="2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def decide(policy_text: str, action: str, resource: str, ctx: Context | None = None, principal=ALICE, bucket=None):
    return parse(policy_text, bucket).decision(principal, action, resource, ctx or Context({}))


def test_a_single_statement_object_and_wildcards():
    text = json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:get*", "Resource": "arn:aws:s3:::b/a?c/*"}})
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b/abc/x/y") == ALLOW
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b/ac/x") is None
    assert decide(text, "s3:PutObject", "arn:aws:s3:::b/abc/x") is None
    assert decide(text, "s3:GetObject", "arn:aws:s3:::B/abc/x") is None  # resources keep their case


def test_deny_wins_across_policies():
    allow_all = document({"Effect": "Allow", "Action": "*", "Resource": "*"})
    deny_get = document({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"})
    policies = [parse(allow_all), parse(deny_get)]
    assert evaluate(policies, ALICE, "s3:GetObject", "arn:aws:s3:::b/k", Context({})) == DENY
    assert evaluate(policies, ALICE, "s3:PutObject", "arn:aws:s3:::b/k", Context({})) == ALLOW
    assert evaluate([], ALICE, "s3:PutObject", "arn:aws:s3:::b/k", Context({})) is None


def test_variables_fill_from_the_request_and_never_act_as_wildcards():
    text = document({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}/${*}"})
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b/alice/*", context(aws_username=["alice"])) == ALLOW
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b/alice/x", context(aws_username=["alice"])) is None
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b/a*/*", context(aws_username=["a*"])) == ALLOW
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b/ab/*", context(aws_username=["a*"])) is None
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b//*", Context({})) is None


@pytest.mark.parametrize(
    ("operator", "key", "values", "request_values", "expected"),
    [
        ("StringEquals", "s3:prefix", ["a", "b"], ["b"], True),
        ("StringNotEquals", "s3:prefix", ["a", "b"], ["b"], False),
        ("StringNotEquals", "s3:prefix", ["a"], None, True),
        ("StringEquals", "s3:prefix", ["a"], None, False),
        ("StringEqualsIfExists", "s3:prefix", ["a"], None, True),
        ("StringEqualsIgnoreCase", "s3:prefix", ["ABC"], ["abc"], True),
        ("StringNotEqualsIgnoreCase", "s3:prefix", ["ABC"], ["abc"], False),
        ("StringLike", "s3:prefix", ["home/*/x?"], ["home/a/b/xy"], True),
        ("StringNotLike", "s3:prefix", ["home/*"], ["other"], True),
        ("NumericLessThan", "s3:max-keys", ["10"], ["9"], True),
        ("NumericLessThan", "s3:max-keys", ["10"], ["10"], False),
        ("NumericLessThanEquals", "s3:max-keys", ["10"], ["10"], True),
        ("NumericGreaterThan", "s3:max-keys", ["10"], ["11"], True),
        ("NumericGreaterThanEquals", "s3:max-keys", ["10"], ["9"], False),
        ("NumericEquals", "s3:max-keys", ["10"], ["10.0"], True),
        ("NumericNotEquals", "s3:max-keys", ["10"], ["abc"], True),
        ("DateLessThan", "aws:CurrentTime", ["2020-01-01T00:00:00Z"], ["2019-12-31T23:59:59Z"], True),
        ("DateGreaterThan", "aws:CurrentTime", ["2020-01-01"], ["2019-12-31T23:59:59Z"], False),
        ("DateEquals", "aws:EpochTime", ["2020-01-01T00:00:00Z"], ["1577836800"], True),
        ("DateNotEquals", "aws:EpochTime", ["1577836800"], ["1577836801"], True),
        ("DateLessThanEquals", "aws:CurrentTime", ["1577836800"], ["2020-01-01T00:00:00Z"], True),
        ("DateGreaterThanEquals", "aws:CurrentTime", ["1577836800"], ["2020-01-01T00:00:00Z"], True),
        ("Bool", "aws:SecureTransport", ["true"], ["false"], False),
        ("Bool", "aws:SecureTransport", ["false"], ["false"], True),
        ("IpAddress", "aws:SourceIp", ["10.0.0.0/8", "2001:db8::/32"], ["2001:db8::1"], True),
        ("NotIpAddress", "aws:SourceIp", ["10.0.0.0/8"], ["10.1.2.3"], False),
        ("IpAddress", "aws:SourceIp", ["10.0.0.0/8"], ["not-an-ip"], False),
        ("ArnLike", "aws:PrincipalArn", ["arn:aws:iam::*:user/a*"], ["arn:aws:iam::000000000000:user/alice"], True),
        ("ArnNotLike", "aws:PrincipalArn", ["arn:aws:iam::*:user/a*"], ["arn:aws:iam::000000000000:user/bob"], True),
        ("ArnEquals", "aws:PrincipalArn", ["arn:x"], ["arn:x"], True),
        ("ArnNotEquals", "aws:PrincipalArn", ["arn:x"], ["arn:x"], False),
        ("Null", "s3:prefix", ["true"], None, True),
        ("Null", "s3:prefix", ["true"], ["p"], False),
        ("Null", "s3:prefix", ["false"], ["p"], True),
        ("ForAnyValue:StringEquals", "s3:RequestObjectTagKeys", ["a"], ["b", "a"], True),
        ("ForAnyValue:StringEquals", "s3:RequestObjectTagKeys", ["a"], None, False),
        ("ForAllValues:StringEquals", "s3:RequestObjectTagKeys", ["a", "b"], ["b", "a"], True),
        ("ForAllValues:StringEquals", "s3:RequestObjectTagKeys", ["a"], ["b", "a"], False),
        ("ForAllValues:StringEquals", "s3:RequestObjectTagKeys", ["a"], None, True),
        ("ForAllValues:StringNotEquals", "s3:RequestObjectTagKeys", ["x"], ["a", "b"], True),
        ("ForAnyValue:StringLikeIfExists", "s3:RequestObjectTagKeys", ["a*"], None, True),
    ],
)
def test_condition_operators(operator, key, values, request_values, expected):
    text = document({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {operator: {key: values}}})
    ctx = Context({} if request_values is None else {key.lower(): request_values})
    assert (decide(text, "s3:GetObject", "arn:aws:s3:::b/k", ctx) == ALLOW) is expected


def test_lazy_keys_are_computed_once():
    calls = []

    def tag(name):
        calls.append(name)
        return ["v"] if name == "Class" else None

    text = document(
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"s3:ExistingObjectTag/Class": "v"},
                "Null": {"s3:ExistingObjectTag/Class": "false"},
            },
        }
    )

    class ObjectTags(Context):
        def compute(self, key: str):
            prefix, _, name = key.partition("/")
            return tag(name) if prefix == "s3:existingobjecttag" else None

    ctx = ObjectTags({})
    assert decide(text, "s3:GetObject", "arn:aws:s3:::b/k", ctx) == ALLOW
    assert calls == ["Class"]


def test_bucket_policy_principals():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    everyone = document(dict(statement, Principal="*"))
    assert decide(everyone, "s3:GetObject", "arn:aws:s3:::b/k", principal=ANONYMOUS, bucket="b") == ALLOW
    alice = document(dict(statement, Principal={"AWS": [USER_ARN_PREFIX + "alice"]}))
    assert decide(alice, "s3:GetObject", "arn:aws:s3:::b/k", bucket="b") == ALLOW
    assert decide(alice, "s3:GetObject", "arn:aws:s3:::b/k", principal=ANONYMOUS, bucket="b") is None
    canonical = document(dict(statement, Principal={"CanonicalUser": "alice-id"}))
    assert decide(canonical, "s3:GetObject", "arn:aws:s3:::b/k", bucket="b") == ALLOW
    not_alice = document(dict(statement, NotPrincipal={"AWS": USER_ARN_PREFIX + "alice"}))
    assert decide(not_alice, "s3:GetObject", "arn:aws:s3:::b/k", bucket="b") is None
    assert decide(not_alice, "s3:GetObject", "arn:aws:s3:::b/k", principal=ANONYMOUS, bucket="b") == ALLOW
    assert parse(everyone, "b").public and parse(not_alice, "b").public and not parse(alice, "b").public


@pytest.mark.parametrize(
    ("condition", "public"),
    [
        ({}, True),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, False),
        ({"IpAddress": {"aws:SourceIp": ["2001:db8::/32", "10.0.0.0/8"]}}, False),
        ({"IpAddress": {"aws:SourceIp": "::/0"}}, True),
        ({"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}, True),  # the whole space, in halves
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True),
        ({"StringEquals": {"aws:SourceAccount": "111122223333"}}, False),
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:111122223333:topic"}}, False),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*"}}, True),
        ({"StringLike": {"aws:SourceVpc": "vpc-91237329"}}, False),
        ({"StringLike": {"aws:SourceVpc": "vpc-?"}}, True),
        ({"StringEquals": {"aws:userid": "${aws:username}"}}, True),
        ({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}, True),
        ({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}, True),
        ({"ForAllValues:StringEquals": {"aws:SourceVpce": "vpce-1"}}, True),
        ({"Null": {"aws:SourceVpce": "false"}}, True),
        ({"StringEquals": {"aws:Referer": "https://example.com/"}}, True),  # anyone can send a Referer
        ({"StringEquals": {"aws:UserAgent": "x"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, False),
    ],
)
def test_which_bucket_policies_are_public(condition, public):
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    assert parse(document(dict(statement, Condition=condition) if condition else statement), "b").public is public


def test_a_deny_to_everyone_is_not_public():
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
    assert not parse(document(statement), "b").public


def test_every_operation_maps_to_a_well_formed_action():
    from nebulaio.s3.app import HANDLERS
    from nebulaio.s3.router import PREFLIGHT

    assert set(HANDLERS) - {PREFLIGHT} <= set(ACTIONS)
    assert all(re.fullmatch(r"s3:[A-Za-z]+", action) for action in KNOWN_ACTIONS)


# -- properties ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
FIELDS = ["Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition", "Sid"]
statement_like = st.dictionaries(st.sampled_from(FIELDS), json_values | st.sampled_from(["Allow", "Deny", "*", "s3:*"]))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=64), st.binary(max_size=64), json_values.map(json.dumps)))
def test_any_input_parses_or_is_refused_with_a_message(text):
    try:
        parse(text)
    except PolicyError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(statement_like, min_size=1, max_size=3), st.sampled_from([None, "b"]))
def test_statement_shaped_documents_parse_or_are_refused(statements, bucket):
    try:
        policy = parse(json.dumps({"Version": "2012-10-17", "Statement": statements}), bucket)
    except PolicyError as exc:
        assert str(exc)
        return
    decision = policy.decision(ALICE, "s3:GetObject", "arn:aws:s3:::b/k", Context({}))
    assert decision in (ALLOW, DENY, None)


names = st.text(alphabet="ab*?/", max_size=6)


@settings(max_examples=300, deadline=None)
@given(names, st.text(alphabet="ab/", max_size=8))
def test_wildcards_match_as_fnmatch_does(pattern, resource):
    import fnmatch

    text = document({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::" + pattern})
    expected = fnmatch.fnmatchcase(resource, pattern.replace("[", "[[]"))
    assert (decide(text, "s3:GetObject", "arn:aws:s3:::" + resource) == ALLOW) is expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Allow", "Deny"]), min_size=1, max_size=5))
def test_any_matching_deny_decides(effects):
    policies = [parse(document({"Effect": e, "Action": "*", "Resource": "*"})) for e in effects]
    expected = DENY if "Deny" in effects else ALLOW
    assert evaluate(policies, ALICE, "s3:GetObject", "arn:aws:s3:::b/k", Context({})) == expected
