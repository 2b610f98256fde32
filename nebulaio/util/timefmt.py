"""Timestamps as S3 writes them: HTTP dates in headers, ISO 8601 in XML bodies.

Metadata stores times as integer epoch milliseconds; these are the only conversions to
text and back. Formatting is table-driven rather than `strftime` so the output never
depends on the process locale, and listings that format thousands of times stay cheap.
"""

import calendar
import functools
import re
import time
from datetime import datetime

__all__ = ["http_date", "http_date_now", "iso8601", "parse_http_date", "parse_iso8601"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_NUMBERS = {name: number for number, name in enumerate(MONTHS, start=1)}
LONG_WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"

# RFC 9110 section 5.6.7: IMF-fixdate, then the two obsolete forms a recipient must accept.
IMF_FIXDATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT")
RFC850_DATE = re.compile(rf"(?:{LONG_WEEKDAYS}), (\d\d)-([A-Z][a-z]{{2}})-(\d\d) (\d\d):(\d\d):(\d\d) GMT")
ASCTIME_DATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})")

# An ISO 8601 date and time as clients send it (retain-until dates): seconds required, any
# fraction, and a zone (Z or an offset); without a zone the time is UTC.
ISO8601_DATETIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|([+-])(\d\d):?(\d\d))?", re.ASCII
)

# A two-digit RFC 850 year that would land more than this far in the future means the
# previous century (RFC 9110 section 5.6.7).
RFC850_FUTURE_YEARS = 50


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    """PERF: objects in one listing share seconds often enough for a cache to pay off."""
    year, month, day, hour, minute, sec = time.gmtime(second)[:6]
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}"


# PERF: the millisecond tails, made once; with the cache above a timestamp costs ~0.2 us.
ISO_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))


def iso8601(epoch_ms: int) -> str:
    """`2009-10-12T17:50:30.000Z`: the form of LastModified and CreationDate in S3 XML."""
    return _iso_second(epoch_ms // 1000) + ISO_MILLIS[epoch_ms % 1000]


def _http_date_of_second(second: int) -> str:
    year, month, day, hour, minute, sec, weekday = time.gmtime(second)[:7]
    return f"{WEEKDAYS[weekday]}, {day:02d} {MONTHS[month - 1]} {year:04d} {hour:02d}:{minute:02d}:{sec:02d} GMT"


def http_date(epoch_ms: int) -> str:
    """RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for Last-Modified and friends."""
    return _http_date_of_second(epoch_ms // 1000)


_now_cache: tuple[int, str] = (-1, "")


def http_date_now() -> str:
    """The Date header for a response; formatted once per second, not once per request."""
    global _now_cache
    second = int(time.time())
    cached_second, text = _now_cache
    if cached_second != second:
        text = _http_date_of_second(second)
        _now_cache = (second, text)
    return text


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float | None:
    try:
        datetime(year, month, day, hour, minute, second)  # rejects Feb 30, hour 25, ...
    except ValueError:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second)))


def parse_http_date(text: str | None) -> float | None:
    """Epoch seconds of an HTTP date in any of its three forms; None when it is not one.

    Conditional headers with an unparsable date are ignored (RFC 9110), so callers need
    None rather than an error.
    """
    if not text:
        return None
    text = text.strip()
    match = IMF_FIXDATE.fullmatch(text)
    if match:
        day, month_name, year, hour, minute, second = match.groups()
        year_number = int(year)
    else:
        match = RFC850_DATE.fullmatch(text)
        if match:
            day, month_name, year, hour, minute, second = match.groups()
            year_number = 2000 + int(year)
            if year_number > time.gmtime().tm_year + RFC850_FUTURE_YEARS:
                year_number -= 100
        else:
            match = ASCTIME_DATE.fullmatch(text)
            if not match:
                return None
            month_name, day, hour, minute, second, year = match.groups()
            year_number = int(year)
    month = MONTH_NUMBERS.get(month_name)
    if month is None:
        return None
    return _epoch(year_number, month, int(day), int(hour), int(minute), int(second))


def parse_iso8601(text: str) -> int | None:
    """Epoch milliseconds of an ISO 8601 date and time (a fraction below 1 ms is dropped);
    None when `text` is not one."""
    match = ISO8601_DATETIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone, sign, zone_hours, zone_minutes = match.groups()
    seconds = _epoch(int(year), int(month), int(day), int(hour), int(minute), int(second))
    if seconds is None:
        return None
    if zone is not None and zone != "Z":
        hours, minutes = int(zone_hours), int(zone_minutes)
        if hours > 23 or minutes > 59:
            return None
        seconds -= (1 if sign == "+" else -1) * (hours * 3600 + minutes * 60)
    return int(seconds) * 1000 + int((fraction or "0")[:3].ljust(3, "0"))
