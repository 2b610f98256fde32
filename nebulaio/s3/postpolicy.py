"""POST policies: the signed document that says what a browser form may upload.

The policy is base64 JSON: an `expiration` and a list of `conditions`. Every condition must
hold for the form's fields, and every field must be named by a condition (except the few that
carry the signature itself), else the upload is refused with S3's "Invalid according to
Policy" messages. See "Creating a POST policy" in the S3 API reference.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import NamedTuple

import orjson

from nebulaio.engine.errors import S3Error

__all__ = ["Policy", "check_policy", "parse_policy"]

EQ = "eq"
STARTS_WITH = "starts-with"
LENGTH_RANGE = "content-length-range"
MATCHES = (EQ, STARTS_WITH)
# Fields a policy never has to name: the signature, the policy, the file, and x-ignore-*.
UNCOVERED_FIELDS = frozenset(("policy", "file", "x-amz-signature", "signature", "awsaccesskeyid"))
IGNORED_PREFIX = "x-ignore-"
BUCKET_FIELD = "bucket"

_INVALID = "Invalid Policy: "
_REFUSED = "Invalid according to Policy: "


class Condition(NamedTuple):
    """One exact or prefix match: `field` lower-cased, `name` as the policy spells it."""

    operator: str
    field: str
    name: str
    value: str

    def holds(self, fields: dict[str, str]) -> bool:
        # NOTE: a field the form lacks reads as empty, so ["starts-with", "$x", ""] allows none.
        given = fields.get(self.field, "")
        return given == self.value if self.operator == EQ else given.startswith(self.value)

    def __str__(self) -> str:
        return json.dumps([self.operator, "$" + self.name, self.value])


class Policy(NamedTuple):
    expiration: float
    conditions: tuple[Condition, ...]
    length_range: tuple[int, int] | None


def _invalid(detail: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", _INVALID + detail)


def parse_policy(encoded: str) -> Policy:
    """The policy a form's `policy` field carries.

    Raises:
        S3Error: InvalidPolicyDocument for anything that is not a well-formed policy.
    """
    try:
        document = orjson.loads(base64.b64decode(encoded.strip(), validate=True))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise _invalid("Invalid JSON.")
    if "expiration" not in document:
        raise _invalid("Policy missing expiration.")
    if "conditions" not in document:
        raise _invalid("Policy missing conditions.")
    conditions = document["conditions"]
    if not isinstance(conditions, list):
        raise _invalid("Policy conditions must be a list.")
    length_range = None
    parsed = []
    for condition in conditions:
        if isinstance(condition, list) and condition and condition[0] == LENGTH_RANGE:
            length_range = _length_range(condition)
        else:
            parsed.append(_condition(condition))
    return Policy(_expiration(document["expiration"]), tuple(parsed), length_range)


def _expiration(value) -> float:
    """Seconds since the epoch of an ISO 8601 date-time in UTC (`2030-01-01T00:00:00.000Z`)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) and value.endswith("Z") else None
        if moment is not None:
            return moment.timestamp()
    except (ValueError, OverflowError):
        pass
    raise _invalid(f"Invalid 'expiration' value: '{value}'")


def _condition(condition) -> Condition:
    if isinstance(condition, dict):
        if len(condition) != 1:
            raise _invalid("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.")
        ((name, value),) = condition.items()
        if not isinstance(value, str):
            raise _invalid(f"Invalid Simple-Condition: value of '{name}' must be a string.")
        return Condition(EQ, name.lower(), name, value)
    if not isinstance(condition, list) or len(condition) != 3 or not all(isinstance(p, str) for p in condition):
        raise _invalid(f"Invalid Condition: {json.dumps(condition)}")
    operator, variable, value = condition
    operator = operator.lower()
    if operator not in MATCHES:
        raise _invalid(f"Invalid Condition: unknown operation '{condition[0]}'.")
    if not variable.startswith("$") or len(variable) < 2:
        raise _invalid(f"Invalid Condition: '{variable}' must name a field as '$name'.")
    return Condition(operator, variable[1:].lower(), variable[1:], value)


def _length_range(condition: list) -> tuple[int, int]:
    bounds = condition[1:]
    if len(bounds) != 2 or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bounds):
        raise _invalid("Invalid content-length-range: expecting two non-negative integers.")
    return bounds[0], bounds[1]


def check_policy(policy: Policy, fields: dict[str, str], bucket: str, now: float) -> None:
    """Refuse a form the policy does not allow; `fields` are lower-cased, variables expanded.

    Raises:
        S3Error: AccessDenied with S3's message for an expired policy, a condition that
            fails, or fields that no condition names.
    """
    if now > policy.expiration:
        raise S3Error("AccessDenied", _REFUSED + "Policy expired.")
    values = dict(fields)
    values[BUCKET_FIELD] = bucket
    for condition in policy.conditions:
        if not condition.holds(values):
            raise S3Error("AccessDenied", f"{_REFUSED}Policy Condition failed: {condition}")
    covered = {condition.field for condition in policy.conditions}
    extra = [
        name
        for name in fields
        if name not in covered and name not in UNCOVERED_FIELDS and not name.startswith(IGNORED_PREFIX)
    ]
    if extra:
        raise S3Error("AccessDenied", f"{_REFUSED}Extra input fields: {', '.join(extra)}")
