"""HTTP and ISO 8601 dates against the standard library and RFC 9110's examples."""

import email.utils
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.util import timefmt

# 1994-11-06T08:49:37Z, RFC 9110's example instant.
RFC_EXAMPLE_SECONDS = 784111777

epoch_ms = st.integers(min_value=0, max_value=253402300799999)  # through 9999-12-31


def test_rfc_9110_example_in_all_three_forms():
    assert timefmt.http_date(RFC_EXAMPLE_SECONDS * 1000 + 999) == "Sun, 06 Nov 1994 08:49:37 GMT"
    for text in ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"):
        assert timefmt.parse_http_date(text) == RFC_EXAMPLE_SECONDS


def test_iso8601_has_milliseconds_and_z():
    assert timefmt.iso8601(1255369830000) == "2009-10-12T17:50:30.000Z"
    assert timefmt.iso8601(1255369830042) == "2009-10-12T17:50:30.042Z"
    assert timefmt.iso8601(0) == "1970-01-01T00:00:00.000Z"


@given(epoch_ms)
def test_iso8601_agrees_with_datetime(ms):
    expected = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert timefmt.iso8601(ms) == f"{expected}.{ms % 1000:03d}Z"


@given(epoch_ms)
def test_http_date_agrees_with_email_utils_and_parses_back(ms):
    text = timefmt.http_date(ms)
    assert text == email.utils.formatdate(ms // 1000, usegmt=True)
    assert timefmt.parse_http_date(text) == ms // 1000


def test_http_date_now_is_the_current_second():
    before = int(time.time())
    parsed = timefmt.parse_http_date(timefmt.http_date_now())
    assert before <= parsed <= time.time()


def test_two_digit_years_more_than_50_years_ahead_are_last_century():
    this_year = time.gmtime().tm_year
    ahead = (this_year + 51) % 100
    parsed = timefmt.parse_http_date(f"Monday, 01-Jan-{ahead:02d} 00:00:00 GMT")
    assert time.gmtime(parsed).tm_year == this_year + 51 - 100
    near = (this_year + 1) % 100
    parsed = timefmt.parse_http_date(f"Monday, 01-Jan-{near:02d} 00:00:00 GMT")
    assert time.gmtime(parsed).tm_year == this_year + 1


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sun, 6 Nov 1994 08:49:37 GMT",
    ],
)
def test_unparsable_dates_are_none(text):
    assert timefmt.parse_http_date(text) is None


@given(epoch_ms)
def test_iso8601_parses_back(ms):
    assert timefmt.parse_iso8601(timefmt.iso8601(ms)) == ms


@given(epoch_ms, st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59), st.integers(0, 999_999))
def test_parse_iso8601_agrees_with_datetime(ms, offset_minutes, micros):
    from datetime import timedelta, timezone

    zone = timezone(timedelta(minutes=offset_minutes))
    try:
        moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=micros).astimezone(zone)
    except OverflowError:  # the offset pushes the moment past year 9999 or before year 1
        return
    expected = (ms // 1000) * 1000 + micros // 1000
    assert timefmt.parse_iso8601(moment.isoformat()) == expected
    assert timefmt.parse_iso8601(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")) == expected


@given(st.text(max_size=40))
def test_parse_iso8601_takes_any_text(text):
    value = timefmt.parse_iso8601(text)
    assert value is None or isinstance(value, int)


@pytest.mark.parametrize(
    "text",
    [
        "2030-02-30T00:00:00Z",
        "2030-01-01",
        "2030-01-01T00:00Z",
        "2030-01-01T24:00:00Z",
        "2030-01-01T00:00:00+24:00",
        "",
    ],
)
def test_unparsable_iso8601_is_none(text):
    assert timefmt.parse_iso8601(text) is None
