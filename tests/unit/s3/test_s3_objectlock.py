"""Object lock documents from untrusted input: ObjectLockConfiguration and Retention."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.meta.objectlock import valid_rule
from nebulaio.s3.objectlock import parse_lock_configuration, parse_retention
from nebulaio.util.timefmt import iso8601

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def configuration(inner: str) -> bytes:
    return f'<ObjectLockConfiguration xmlns="{XMLNS}">{inner}</ObjectLockConfiguration>'.encode()


def default_retention(mode: str, period: str) -> bytes:
    return configuration(
        f"<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>{mode}</Mode>"
        f"{period}</DefaultRetention></Rule>"
    )


def test_configurations_as_stored():
    assert parse_lock_configuration(configuration("<ObjectLockEnabled>Enabled</ObjectLockEnabled>")) == {
        "enabled": True
    }
    assert parse_lock_configuration(default_retention("GOVERNANCE", "<Days>30</Days>")) == {
        "enabled": True,
        "rule": {"mode": "GOVERNANCE", "days": 30},
    }
    assert parse_lock_configuration(default_retention("COMPLIANCE", "<Years> 7 </Years>")) == {
        "enabled": True,
        "rule": {"mode": "COMPLIANCE", "years": 7},
    }


@given(st.sampled_from(["GOVERNANCE", "COMPLIANCE", "governance", ""]), st.sampled_from(["Days", "Years"]), st.text())
def test_a_parsed_rule_is_one_apply_stores(mode, name, period):
    body = default_retention(mode, f"<{name}>{period.replace('<', '').replace('&', '')}</{name}>")
    try:
        parsed = parse_lock_configuration(body)
    except S3Error as error:
        assert error.code in ("MalformedXML", "InvalidArgument", "InvalidRetentionPeriod")
        return
    assert valid_rule(parsed["rule"])


@given(st.binary(max_size=300))
def test_any_bytes_are_a_configuration_or_an_s3_error(body):
    for parse in (parse_lock_configuration, parse_retention):
        try:
            parse(body)
        except S3Error:
            pass


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (default_retention("GOVERNANCE", "<Days>0</Days>"), "InvalidRetentionPeriod"),
        (default_retention("GOVERNANCE", "<Days>36501</Days>"), "InvalidArgument"),
        (default_retention("GOVERNANCE", "<Days>1.5</Days>"), "MalformedXML"),
        (default_retention("GOVERNANCE", "<Days>--1</Days>"), "MalformedXML"),
        (default_retention("GOVERNANCE", "<Days>1</Days><Years>1</Years>"), "MalformedXML"),
        (default_retention("GOVERNANCE", ""), "MalformedXML"),
        (configuration("<Rule/>"), "MalformedXML"),
    ],
)
def test_bad_configurations(body, code):
    with pytest.raises(S3Error) as caught:
        parse_lock_configuration(body)
    assert caught.value.code == code


@given(st.sampled_from(["GOVERNANCE", "COMPLIANCE"]), st.integers(min_value=0, max_value=253402300799999))
def test_retention_round_trip(mode, until):
    body = f"<Retention><Mode>{mode}</Mode><RetainUntilDate>{iso8601(until)}</RetainUntilDate></Retention>"
    assert parse_retention(body.encode()) == {"mode": mode, "until": until}


def test_an_empty_retention_removes_it_and_half_a_retention_is_malformed():
    assert parse_retention(f'<Retention xmlns="{XMLNS}"/>'.encode()) is None
    for inner in ("<Mode>GOVERNANCE</Mode>", "<RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate>"):
        with pytest.raises(S3Error) as caught:
            parse_retention(f"<Retention>{inner}</Retention>".encode())
        assert caught.value.code == "MalformedXML"
