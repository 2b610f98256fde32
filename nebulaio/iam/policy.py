"""AWS policy documents: parsed and compiled once, then evaluated per request without parsing.

The grammar is AWS's (Version, Statement as an object or a list, Sid, Effect, Principal /
NotPrincipal, Action / NotAction, Resource / NotResource, Condition). `*` and `?` are
wildcards in actions and resources; actions ignore case, resources do not. With Version
2012-10-17, `${key}` in a resource or a string condition value is a policy variable, filled
from the request (`${*}`, `${?}` and `${$}` are the literal characters); a variable whose key
the request lacks makes that element match nothing.

Principals, as bucket policies name them: `"*"` or `{"AWS": "*"}` (everyone, anonymous
included), `{"AWS": "arn:aws:iam::000000000000:user/<name>"}` (a user; ACCOUNT_ID is the one
account a node serves), `{"AWS": "arn:aws:iam::000000000000:root"}` (the root user), or
`{"CanonicalUser": "<canonical id>"}`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from nebulaio.iam.publicaccess import BLOCK_PUBLIC_POLICY, blocks

ACCOUNT_ID = "000000000000"
USER_ARN_PREFIX = f"arn:aws:iam::{ACCOUNT_ID}:user/"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:root"
VERSIONS = ("2012-10-17", "2008-10-17")
VARIABLES_VERSION = "2012-10-17"
BUCKET_POLICY_LIMIT = 20 * 1024
"""S3's limit on a bucket policy, in bytes."""
IDENTITY_POLICY_LIMIT = 6144
"""IAM's limit on a managed policy, in characters other than white space."""

ALLOW = "Allow"
DENY = "Deny"
STATEMENT_FIELDS = frozenset(
    ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition")
)
PRINCIPAL_TYPES = frozenset(("AWS", "CanonicalUser"))
ACTION_SYNTAX = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
CONDITION_KEY_SYNTAX = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9_.\-*]+(/.+)?")
VARIABLE = re.compile(r"\$\{([^}]*)\}")
LITERAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}


class PolicyError(ValueError):
    """A document that is not a valid policy; the message says what is wrong."""


class PublicPolicyBlocked(Exception):
    """A valid policy that is public, for a bucket whose Block Public Access refuses public policies."""


# -- what a request looks like to a policy -------------------------------------------------


class Principal:
    """Who is asking: kind is "root", "user" or "anonymous"."""

    __slots__ = ("kind", "name", "canonical_id", "arn")

    def __init__(self, kind: str, name: str | None, canonical_id: str | None):
        self.kind = kind
        self.name = name
        self.canonical_id = canonical_id
        self.arn = ROOT_ARN if kind == "root" else (USER_ARN_PREFIX + name if name else None)


class Context:
    """Condition keys of one request: values given up front, or worked out by `compute` (a
    subclass's) the first time a condition asks, then kept. Keys are compared in lower case
    (AWS's keys ignore case), except what follows a `/` (a tag's key).
    """

    __slots__ = ("values",)

    def __init__(self, values: dict[str, list[str] | None]):
        self.values = values

    def get(self, key: str) -> list[str] | None:
        values = self.values.get(key, self)
        if values is self:
            values = self.values[key] = self.compute(key)
        return values  # type: ignore[return-value]

    def compute(self, key: str) -> list[str] | None:
        """The values of a key not given up front; None: the request has no such key."""
        return None


NO_CONTEXT = Context({})
"""For matching actions, which hold no policy variables and so consult no condition key."""


def normalize_key(key: str) -> str:
    prefix, slash, rest = key.partition("/")
    return prefix.lower() + slash + rest


# -- wildcards and variables -------------------------------------------------------------


def _wildcard_regex_text(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@functools.lru_cache(maxsize=4096)
def _compiled(regex_text: str, ignore_case: bool) -> re.Pattern:
    return re.compile(regex_text, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


class Patterns:
    """A list of wildcard patterns; `matches(value, context)` tests a value against any of them."""

    __slots__ = ("_regex", "_templates", "ignore_case", "everything")

    def __init__(self, patterns: list[str], ignore_case: bool, variables: bool):
        self.ignore_case = ignore_case
        self.everything = "*" in patterns
        fixed = [p for p in patterns if not (variables and "${" in p)]
        self._templates = [p for p in patterns if variables and "${" in p]
        self._regex = (
            _compiled("|".join(f"(?:{_wildcard_regex_text(p)})" for p in fixed), ignore_case) if fixed else None
        )

    def matches(self, value: str, context: Context) -> bool:
        if self.everything:
            return True
        if self._regex is not None and self._regex.fullmatch(value):
            return True
        for template in self._templates:
            text = substitute(template, context, _wildcard_regex_text, re.escape)
            if text is not None and _compiled(text, self.ignore_case).fullmatch(value):
                return True
        return False


def _identity(text: str) -> str:
    return text


def substitute(
    template: str, context: Context, literal: Callable[[str], str] = _identity, value: Callable[[str], str] = _identity
) -> str | None:
    """Fill a template's ${variables} from the context; None when one of them has no value.

    `literal` converts the template's own text, `value` a variable's value (so that a value's
    `*` is not taken for a wildcard).
    """
    parts = []
    position = 0
    for match in VARIABLE.finditer(template):
        parts.append(literal(template[position : match.start()]))
        name = match.group(1).strip()
        if name in LITERAL_VARIABLES:
            parts.append(value(LITERAL_VARIABLES[name]))
        else:
            values = context.get(normalize_key(name))
            if not values:
                return None
            parts.append(value(values[0]))
        position = match.end()
    parts.append(literal(template[position:]))
    return "".join(parts)


# -- conditions ---------------------------------------------------------------------------


def _parse_number(text: str) -> float:
    return float(text)


def parse_date(text: str) -> float:
    """An ISO 8601 date (time optional) or epoch seconds, as epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _parse_bool(text: str) -> str:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered


def _parse_network(text: str):
    return ipaddress.ip_network(text, strict=False)


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return _compiled(_wildcard_regex_text(policy), False).fullmatch(value) is not None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[float, str], bool]:
    def test(policy: float, value: str) -> bool:
        try:
            return compare(float(value), policy)
        except ValueError:
            return False

    return test


def _date(compare: Callable[[float, float], bool]) -> Callable[[float, str], bool]:
    def test(policy: float, value: str) -> bool:
        try:
            return compare(parse_date(value), policy)
        except ValueError:
            return False

    return test


def _bool_equals(policy: str, value: str) -> bool:
    return policy == value.lower()


def _in_network(policy, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in policy
    except ValueError:
        return False


def _equal(a: float, b: float) -> bool:
    return a == b


def _less(a: float, b: float) -> bool:
    return a < b


def _less_equal(a: float, b: float) -> bool:
    return a <= b


def _greater(a: float, b: float) -> bool:
    return a > b


def _greater_equal(a: float, b: float) -> bool:
    return a >= b


# name -> (how a policy value is parsed, test(parsed policy value, request value), negated,
# whether policy values may hold ${variables})
OPERATORS: dict[str, tuple[Callable[[str], object], Callable, bool, bool]] = {
    "StringEquals": (str, _string_equals, False, True),
    "StringNotEquals": (str, _string_equals, True, True),
    "StringEqualsIgnoreCase": (str, _string_equals_ignore_case, False, True),
    "StringNotEqualsIgnoreCase": (str, _string_equals_ignore_case, True, True),
    "StringLike": (str, _string_like, False, True),
    "StringNotLike": (str, _string_like, True, True),
    "ArnEquals": (str, _string_like, False, True),
    "ArnNotEquals": (str, _string_like, True, True),
    "ArnLike": (str, _string_like, False, True),
    "ArnNotLike": (str, _string_like, True, True),
    "NumericEquals": (_parse_number, _numeric(_equal), False, False),
    "NumericNotEquals": (_parse_number, _numeric(_equal), True, False),
    "NumericLessThan": (_parse_number, _numeric(_less), False, False),
    "NumericLessThanEquals": (_parse_number, _numeric(_less_equal), False, False),
    "NumericGreaterThan": (_parse_number, _numeric(_greater), False, False),
    "NumericGreaterThanEquals": (_parse_number, _numeric(_greater_equal), False, False),
    "DateEquals": (parse_date, _date(_equal), False, False),
    "DateNotEquals": (parse_date, _date(_equal), True, False),
    "DateLessThan": (parse_date, _date(_less), False, False),
    "DateLessThanEquals": (parse_date, _date(_less_equal), False, False),
    "DateGreaterThan": (parse_date, _date(_greater), False, False),
    "DateGreaterThanEquals": (parse_date, _date(_greater_equal), False, False),
    "Bool": (_parse_bool, _bool_equals, False, False),
    "IpAddress": (_parse_network, _in_network, False, False),
    "NotIpAddress": (_parse_network, _in_network, True, False),
}
NULL_OPERATOR = "Null"
SET_OPERATORS = ("ForAnyValue:", "ForAllValues:")
IF_EXISTS = "IfExists"


class Condition:
    """One (operator, key, values) test of a statement's Condition block."""

    __slots__ = ("key", "values", "test", "negated", "if_exists", "set_operator", "variables", "parse")

    def __init__(self, operator: str, key: str, raw_values: list[str], variables: bool):
        self.set_operator = None
        for prefix in SET_OPERATORS:
            if operator.startswith(prefix):
                self.set_operator = prefix[:-1]
                operator = operator[len(prefix) :]
        self.if_exists = operator.endswith(IF_EXISTS) and operator != IF_EXISTS
        if self.if_exists:
            operator = operator[: -len(IF_EXISTS)]
        if not CONDITION_KEY_SYNTAX.fullmatch(key):
            raise PolicyError(f"Policy has an invalid condition key: {key}")
        self.key = normalize_key(key)
        if operator == NULL_OPERATOR and not self.if_exists:
            self.parse = _parse_bool
            self.test = None
            self.negated = False
            self.variables = False
        elif operator in OPERATORS:
            self.parse, self.test, self.negated, allows_variables = OPERATORS[operator]
            self.variables = variables and allows_variables and any("${" in v for v in raw_values)
        else:
            raise PolicyError(f"Invalid Condition type : {operator}")
        try:
            self.values = [v if self.variables and "${" in v else self.parse(v) for v in raw_values]
        except ValueError:
            raise PolicyError(f"Invalid value for condition {operator} on key {key}") from None

    def holds(self, context: Context) -> bool:
        request_values = context.get(self.key)
        if self.test is None:  # Null: "true" means the key must be absent
            return (not request_values) == (self.values[0] == "true")
        if not request_values:
            if self.if_exists or self.set_operator == "ForAllValues":
                return True
            if self.set_operator == "ForAnyValue":
                return False
            return self.negated
        policy_values = self._policy_values(context)
        if self.set_operator == "ForAllValues":
            return all(self._one(policy_values, value) for value in request_values)
        if self.set_operator == "ForAnyValue" or not self.negated:
            return any(self._one(policy_values, value) for value in request_values)
        return all(self._one(policy_values, value) for value in request_values)

    def _one(self, policy_values: list, value: str) -> bool:
        matched = any(self.test(policy, value) for policy in policy_values)
        return matched != self.negated

    def _policy_values(self, context: Context) -> list:
        if not self.variables:
            return self.values
        filled = []
        for value in self.values:
            if isinstance(value, str) and "${" in value:
                value = substitute(value, context)
                if value is None:
                    continue
            filled.append(value)
        return filled


# -- statements and documents --------------------------------------------------------------


class PrincipalSet:
    """The principals a bucket policy statement names."""

    __slots__ = ("everyone", "arns", "canonical_ids")

    def __init__(self, everyone: bool, arns: frozenset[str], canonical_ids: frozenset[str]):
        self.everyone = everyone
        self.arns = arns
        self.canonical_ids = canonical_ids

    def contains(self, principal: Principal) -> bool:
        return (
            self.everyone
            or (principal.arn is not None and principal.arn in self.arns)
            or (principal.canonical_id is not None and principal.canonical_id in self.canonical_ids)
        )


class Statement:
    __slots__ = (
        "sid",
        "effect",
        "principals",
        "not_principal",
        "actions",
        "not_action",
        "resources",
        "not_resource",
        "conditions",
    )

    def names(self, action: str) -> bool:
        """Whether Action / NotAction covers `action` (actions hold no policy variables)."""
        return self.actions.matches(action, NO_CONTEXT) != self.not_action

    def applies(self, principal: Principal, resource: str, context: Context) -> bool:
        """Whether a statement that names the action applies to this principal, resource and request."""
        if self.principals is not None and self.principals.contains(principal) == self.not_principal:
            return False
        if self.resources is not None and self.resources.matches(resource, context) == self.not_resource:
            return False
        return all(condition.holds(context) for condition in self.conditions)


class Policy:
    """A compiled policy document; `text` is the document as it was given."""

    __slots__ = ("text", "statements", "public", "_by_action")

    def __init__(self, text: str, statements: list[Statement]):
        self.text = text
        self.statements = statements
        self.public = any(_grants_everyone(s) for s in statements)
        self._by_action: dict[str, tuple[Statement, ...]] = {}

    def decision(self, principal: Principal, action: str, resource: str, context: Context) -> str | None:
        """DENY when a Deny statement matches, else ALLOW when an Allow does, else None.

        Only the statements that name the action are weighed; which ones those are is worked
        out once per action (the actions are S3's and the Admin API's, a bounded set).
        """
        statements = self._by_action.get(action)
        if statements is None:
            statements = self._by_action[action] = tuple(s for s in self.statements if s.names(action))
        allowed = False
        for statement in statements:
            if statement.applies(principal, resource, context):
                if statement.effect == DENY:
                    return DENY
                allowed = True
        return ALLOW if allowed else None


RESTRICTING_KEYS = frozenset(
    (
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceowner",
        "aws:sourceaccount",
        "aws:userid",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principalorgid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:dataaccesspointarn",
        "s3:dataaccesspointaccount",
    )
)
"""Condition keys whose fixed values AWS trusts to make a statement to everyone non-public."""
EQUALITY_TESTS = (_string_equals, _string_equals_ignore_case, _string_like)
SOURCE_IP = "aws:sourceip"


def _grants_everyone(statement: Statement) -> bool:
    """An Allow to everyone that no trusted condition narrows: AWS's public policy statement.

    AWS starts from public and calls a statement non-public when a condition holds the
    request to fixed values of a key someone owns (RESTRICTING_KEYS, without wildcards or
    variables) or to a set of CIDRs (aws:SourceIp) that is not the whole address space.
    """
    if statement.effect != ALLOW or statement.principals is None:
        return False
    if statement.principals.everyone == statement.not_principal:
        return False
    return not any(_narrows(condition) for condition in statement.conditions)


def _narrows(condition: Condition) -> bool:
    if condition.negated or condition.if_exists or condition.variables or condition.set_operator == "ForAllValues":
        return False
    if condition.key == SOURCE_IP:
        if condition.test is not _in_network:
            return False
        networks = [n for version in (4, 6) for n in _collapsed(condition.values, version)]
        return all(network.prefixlen > 0 for network in networks)
    if condition.key not in RESTRICTING_KEYS or condition.test not in EQUALITY_TESTS:
        return False
    return not any("*" in value or "?" in value for value in condition.values)


def _collapsed(networks: list, version: int) -> list:
    return list(ipaddress.collapse_addresses(n for n in networks if n.version == version))


def parse(text: str | bytes, bucket: str | None = None) -> Policy:
    """Parse and compile a policy document.

    With `bucket`, the document is that bucket's policy: every statement must name a
    Principal, and its resources must lie in that bucket. Without it, the document is an
    identity policy: it names no Principal.

    Raises:
        PolicyError: with AWS's wording for what is wrong.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise PolicyError("Policies must be valid UTF-8") from None
    if bucket is not None and len(text.encode()) > BUCKET_POLICY_LIMIT:
        raise PolicyError(f"Policies must not exceed {BUCKET_POLICY_LIMIT} bytes")
    if bucket is None and sum(1 for c in text if not c.isspace()) > IDENTITY_POLICY_LIMIT:
        raise PolicyError(f"Policies must not exceed {IDENTITY_POLICY_LIMIT} characters other than white space")
    if not text.lstrip().startswith("{"):
        raise PolicyError("Policies must be valid JSON and the first byte must be '{'")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise PolicyError("This policy contains invalid Json") from None
    if not isinstance(document, dict):
        raise PolicyError("Policies must be valid JSON and the first byte must be '{'")
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"Unknown field {sorted(unknown)[0]}")
    version = document.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError("The policy must contain a valid version string")
    if "Id" in document and not isinstance(document["Id"], str):
        raise PolicyError("Id must be a string")
    raw_statements = document.get("Statement")
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise PolicyError("Policy document must contain a Statement")
    variables = version == VARIABLES_VERSION
    statements = [_statement(raw, bucket, variables) for raw in raw_statements]
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise PolicyError("Statement IDs (SID) in a single policy must be unique")
    return Policy(text, statements)


def _strings(value, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise PolicyError(f"{field} must be a string or a non-empty list of strings")


def _one_of(raw: dict, names: tuple[str, str], required: bool) -> tuple[object, bool]:
    """(value, whether it is the Not form) of a field that has a Not form."""
    plain, negated = names
    if plain in raw and negated in raw:
        raise PolicyError(f"A statement cannot have both {plain} and {negated}")
    if plain in raw:
        return raw[plain], False
    if negated in raw:
        return raw[negated], True
    if required:
        raise PolicyError(f"Missing required field {plain}")
    return None, False


def _statement(raw, bucket: str | None, variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Each Statement must be a JSON object")
    unknown = set(raw) - STATEMENT_FIELDS
    if unknown:
        raise PolicyError(f"Unknown field {sorted(unknown)[0]}")
    statement = Statement()
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise PolicyError("Sid must be a string")
    statement.sid = sid
    effect = raw.get("Effect")
    if effect not in (ALLOW, DENY):
        raise PolicyError("Missing required field Effect" if effect is None else f"Invalid effect: {effect}")
    statement.effect = effect
    principals, statement.not_principal = _one_of(raw, ("Principal", "NotPrincipal"), bucket is not None)
    if principals is not None and bucket is None:
        raise PolicyError("Policy document should not specify a principal.")
    statement.principals = None if principals is None else _principals(principals)
    actions, statement.not_action = _one_of(raw, ("Action", "NotAction"), True)
    action_list = _strings(actions, "Action")
    for action in action_list:
        if not ACTION_SYNTAX.fullmatch(action):
            raise PolicyError(f"Policy has invalid action: {action}")
    statement.actions = Patterns(action_list, ignore_case=True, variables=False)
    resources, statement.not_resource = _one_of(raw, ("Resource", "NotResource"), True)
    resource_list = _strings(resources, "Resource")
    for resource in resource_list:
        if resource != "*" and not resource.startswith("arn:"):
            raise PolicyError(f"Policy has invalid resource: {resource}")
        if bucket is not None and not _in_bucket(resource, bucket):
            raise PolicyError(f"Policy has invalid resource: {resource}")
    statement.resources = Patterns(resource_list, ignore_case=False, variables=variables)
    statement.conditions = _conditions(raw.get("Condition", {}), variables)
    return statement


def _in_bucket(resource: str, bucket: str) -> bool:
    """Whether a bucket policy's resource can name the bucket or its objects."""
    if resource == "*":
        return True
    if not resource.startswith("arn:aws:s3:::"):
        return False
    name = resource[len("arn:aws:s3:::") :].partition("/")[0]
    return _compiled(_wildcard_regex_text(name), False).fullmatch(bucket) is not None


def _principals(value) -> PrincipalSet:
    if value == "*":
        return PrincipalSet(True, frozenset(), frozenset())
    if not isinstance(value, dict) or not value or set(value) - PRINCIPAL_TYPES:
        raise PolicyError("Invalid principal in policy")
    arns = set()
    everyone = False
    for arn in _strings(value["AWS"], "Principal") if "AWS" in value else []:
        if arn == "*":
            everyone = True
        elif arn == ROOT_ARN or (arn.startswith(USER_ARN_PREFIX) and len(arn) > len(USER_ARN_PREFIX)):
            arns.add(arn)
        else:
            raise PolicyError("Invalid principal in policy")
    ids = _strings(value["CanonicalUser"], "Principal") if "CanonicalUser" in value else []
    return PrincipalSet(everyone, frozenset(arns), frozenset(ids))


def _conditions(block, variables: bool) -> list[Condition]:
    if not isinstance(block, dict):
        raise PolicyError("Condition must be a JSON object")
    conditions = []
    for operator, tests in block.items():
        if not isinstance(tests, dict) or not tests:
            raise PolicyError(f"Invalid Condition type : {operator}")
        for key, values in tests.items():
            if isinstance(values, bool | int | float) and not isinstance(values, str):
                values = orjson.dumps(values).decode()
            elif isinstance(values, list):
                values = [orjson.dumps(v).decode() if isinstance(v, bool | int | float) else v for v in values]
            conditions.append(Condition(operator, key, _strings(values, f"Condition {operator}"), variables))
    return conditions


def bucket_policy_setting(document: str | bytes, bucket: dict, revision: str) -> dict:
    """A bucket's stored "policy" setting: the validated document and the revision by which
    workers cache its compiled form. Both APIs that set a bucket policy store it so.

    Raises:
        PolicyError: with AWS's wording for what is wrong.
        PublicPolicyBlocked: for a public policy where `bucket` (its record) blocks public policies.
    """
    policy = parse(document, bucket["name"])
    if policy.public and blocks(bucket, BLOCK_PUBLIC_POLICY):
        raise PublicPolicyBlocked(bucket["name"])
    return {"document": policy.text, "revision": revision}


def evaluate(policies, principal: Principal, action: str, resource: str, context: Context) -> str | None:
    """The combined decision of several policies: DENY wins, then ALLOW, else None."""
    allowed = False
    for policy in policies:
        decision = policy.decision(principal, action, resource, context)
        if decision == DENY:
            return DENY
        if decision == ALLOW:
            allowed = True
    return ALLOW if allowed else None
