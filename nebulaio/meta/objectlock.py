"""Object lock rules, decided at apply time from the stored state and the command's time.

A bucket's setting "object_lock" is {"enabled": True} plus, with a default retention,
"rule": {"mode": GOVERNANCE | COMPLIANCE, "days": n} (or "years": n). A version's record
keeps its own lock: "retention": {"mode", "until" (epoch ms)} and "legal_hold": bool (absent
until one is set). Apply alone decides whether a version may go or its retention may change,
so no request racing another can delete a locked version.

A "now" that is missing from a command counts as the beginning of time: retention never
expires for a command that does not say when it was made.
"""

from __future__ import annotations

import calendar
import time

GOVERNANCE = "GOVERNANCE"
COMPLIANCE = "COMPLIANCE"
MODES = (GOVERNANCE, COMPLIANCE)
LOCK_FIELDS = ("retention", "legal_hold")
"""The fields of a version's record that hold its lock (a copy never takes the source's)."""
DAY_MS = 86_400_000
MAX_DAYS = 36_500
MAX_YEARS = 100
LOCKED = "AccessDenied"
"""The result code of an action the lock forbids, as S3 answers it."""


def _active(retention: dict | None, now: int | None) -> bool:
    return retention is not None and (now is None or now < retention["until"])


def delete_refusal(record: dict, now: int | None, bypass: bool) -> str | None:
    """Why a version may not be deleted for good (LOCKED), or None when it may.

    A legal hold keeps it whatever; active COMPLIANCE retention keeps it; active GOVERNANCE
    retention keeps it unless the request bypasses governance.
    """
    if record.get("legal_hold"):
        return LOCKED
    retention = record.get("retention")
    if _active(retention, now) and (retention["mode"] == COMPLIANCE or not bypass):
        return LOCKED
    return None


def retention_change_refusal(stored: dict | None, new: dict | None, now: int | None, bypass: bool) -> str | None:
    """Why a version's retention may not become `new` (None removes it), or None when it may.

    Retention may always be kept or extended in its mode. Active COMPLIANCE retention can
    never be shortened, removed or changed to GOVERNANCE; active GOVERNANCE retention can be
    (or made COMPLIANCE) only by a request that bypasses governance.
    """
    if not _active(stored, now):
        return None
    if new is not None and new["mode"] == stored["mode"] and new["until"] >= stored["until"]:
        return None
    if stored["mode"] == GOVERNANCE and bypass:
        return None
    return LOCKED


def valid_rule(rule) -> bool:
    """Whether a default retention rule has the stored shape (apply must never store a bad one)."""
    if rule is None:
        return True
    if not isinstance(rule, dict) or rule.get("mode") not in MODES or len(rule) != 2:
        return False
    days, years = rule.get("days"), rule.get("years")
    if days is not None:
        return type(days) is int and 0 < days <= MAX_DAYS
    return type(years) is int and 0 < years <= MAX_YEARS


def default_retention(configuration: dict | None, created_ms: int) -> dict | None:
    """The retention a bucket's default rule gives a version created at `created_ms`, if any."""
    rule = None if configuration is None else configuration.get("rule")
    if rule is None:
        return None
    if "days" in rule:
        return {"mode": rule["mode"], "until": created_ms + rule["days"] * DAY_MS}
    return {"mode": rule["mode"], "until": add_years(created_ms, rule["years"])}


def add_years(epoch_ms: int, years: int) -> int:
    """The same date and time `years` calendar years later (29 February becomes 1 March)."""
    seconds, millis = divmod(epoch_ms, 1000)
    year, month, day, hour, minute, second = time.gmtime(seconds)[:6]
    year += years
    if (month, day) == (2, 29) and not calendar.isleap(year):
        month, day = 3, 1
    return calendar.timegm((year, month, day, hour, minute, second)) * 1000 + millis
