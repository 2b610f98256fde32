"""Bucket lifecycle configuration (?lifecycle): Put, Get and Delete, validated as S3 validates.

A configuration is parsed and checked here, then stored as the bucket setting "lifecycle" in
the form `nebulaio.lifecycle.rules` describes; the supervisor's sweeper enforces it.

NOTE: there is one storage class, so Transition and NoncurrentVersionTransition actions are
answered NotImplemented rather than accepted and silently never carried out; their days, dates
and storage classes are checked first, so a bad one is the 400 S3 answers.

`expiration_header` answers x-amz-expiration on writes and reads of objects a rule expires.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from nebulaio.engine.errors import S3Error
from nebulaio.lifecycle.rules import Lifecycle
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check
from nebulaio.util.timefmt import http_date, iso8601

SETTING = "lifecycle"
EXPIRATION_HEADER = "x-amz-expiration"
XML_TYPE = "application/xml"
# 1000 rules, each with a 1 KiB prefix and tags, with room for XML entities.
MAX_BODY = 2 * 1024 * 1024
MAX_RULES = 1000
MAX_ID_LENGTH = 255
MAX_PREFIX_LENGTH = 1024
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256
MAX_DAYS = 2**31 - 1
MAX_SIZE = 2**63 - 1
MAX_NEWER_VERSIONS = 100
DAY_SECONDS = 86400

MINIMUM_SIZE_HEADER = "x-amz-transition-default-minimum-object-size"
MINIMUM_SIZES = frozenset(("all_storage_classes_128K", "varies_by_storage_class"))
DEFAULT_MINIMUM_SIZE = "all_storage_classes_128K"

STATUSES = {"Enabled": True, "Disabled": False}
BOOLEANS = {"true": True, "false": False}
RULE_ELEMENTS = frozenset(
    (
        "ID Prefix Filter Status Expiration Transition NoncurrentVersionTransition "
        "NoncurrentVersionExpiration AbortIncompleteMultipartUpload"
    ).split()
)
UNSUPPORTED_ACTIONS = ("Transition", "NoncurrentVersionTransition")
TRANSITION_ELEMENTS = frozenset(("Days", "Date", "StorageClass"))
NONCURRENT_TRANSITION_ELEMENTS = frozenset(("NoncurrentDays", "NewerNoncurrentVersions", "StorageClass"))
TRANSITION_CLASSES = frozenset(
    ("GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR")
)
FILTER_PREDICATES = frozenset(("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"))
FILTER_ELEMENTS = FILTER_PREDICATES | {"And"}
EXPIRATION_ELEMENTS = frozenset(("Days", "Date", "ExpiredObjectDeleteMarker"))
# ISO 8601 as S3 takes it: a calendar date, optionally with a time and a UTC offset.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?)?", re.ASCII)
INTEGER = re.compile(r"[+-]?\d{1,20}", re.ASCII)


# -- handlers ----------------------------------------------------------------------------


def put_bucket_lifecycle_configuration(api, request, resp) -> None:
    require_integrity_check(request)
    api.layer.bucket(request.bucket)
    minimum_size = request.header(MINIMUM_SIZE_HEADER, DEFAULT_MINIMUM_SIZE)
    if minimum_size not in MINIMUM_SIZES:
        raise S3Error(
            "InvalidArgument",
            f"Invalid {MINIMUM_SIZE_HEADER} value.",
            ArgumentName=MINIMUM_SIZE_HEADER,
            ArgumentValue=minimum_size[:64],
        )
    configuration = parse_configuration(read_body(request, api.request_timeout, MAX_BODY))
    configuration["minimum_size"] = minimum_size
    api.layer.configure_bucket(request.bucket, SETTING, configuration)
    resp.set_header(MINIMUM_SIZE_HEADER, minimum_size)


def get_bucket_lifecycle_configuration(api, request, resp) -> None:
    configuration = api.layer.bucket(request.bucket).get(SETTING)
    if not configuration:
        raise S3Error("NoSuchLifecycleConfiguration", BucketName=request.bucket)
    resp.set_header(MINIMUM_SIZE_HEADER, configuration["minimum_size"])
    resp.content_type = XML_TYPE
    resp.data = render_configuration(configuration)


def delete_bucket_lifecycle(api, request, resp) -> None:
    api.layer.bucket(request.bucket)
    api.layer.configure_bucket(request.bucket, SETTING, None)
    resp.status = 204


def expiration_header(api, request, resp, record: dict) -> None:
    """x-amz-expiration on an answer about a current version an enabled Expiration rule will
    expire: `expiry-date="<HTTP date>", rule-id="<URL-encoded ID>"`, as S3 writes it."""
    if record.get("noncurrent_since") is not None:
        return
    bucket = api.layer.reader.get_bucket(request.bucket)
    configuration = None if bucket is None else bucket.get(SETTING)
    if not configuration:
        return
    due = Lifecycle(configuration, api.lifecycle_day_seconds).expiration(request.key, record)
    if due is not None:
        when, rule_id = due
        resp._headers[EXPIRATION_HEADER] = f'expiry-date="{http_date(when)}", rule-id="{xml.url_quote(rule_id)}"'


# -- parsing -----------------------------------------------------------------------------


def _malformed() -> S3Error:
    return S3Error("MalformedXML")


def _children(node: Element, allowed: frozenset[str]) -> dict[str, list[Element]]:
    """The node's child elements by tag; an element the schema does not allow is MalformedXML."""
    children: dict[str, list[Element]] = {}
    for child in node:
        if child.tag not in allowed:
            raise _malformed()
        children.setdefault(child.tag, []).append(child)
    return children


def _single(children: dict[str, list[Element]], tag: str) -> Element | None:
    found = children.get(tag)
    if found is None:
        return None
    if len(found) > 1:
        raise _malformed()
    return found[0]


def _text(node: Element) -> str:
    return node.text or ""


def _integer(node: Element, maximum: int) -> int:
    """An integer element; one that is not a number or exceeds its type is MalformedXML."""
    text = _text(node).strip()
    if not INTEGER.fullmatch(text) or int(text) > maximum:
        raise _malformed()
    return int(text)


def _positive(node: Element, what: str) -> int:
    value = _integer(node, MAX_DAYS)
    if value <= 0:
        raise S3Error("InvalidArgument", f"{what} must be a positive integer")
    return value


def _prefix(node: Element) -> str:
    prefix = _text(node)
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise S3Error("InvalidRequest", f"The maximum size of a prefix is {MAX_PREFIX_LENGTH}.")
    return prefix


def _tag(node: Element) -> list[str]:
    children = _children(node, frozenset(("Key", "Value")))
    key, value = _single(children, "Key"), _single(children, "Value")
    if key is None:
        raise _malformed()
    name, text = _text(key), "" if value is None else _text(value)
    if len(name) > MAX_TAG_KEY_LENGTH:
        raise S3Error("InvalidRequest", f"A tag key may be at most {MAX_TAG_KEY_LENGTH} characters long.")
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise S3Error("InvalidRequest", f"A tag value may be at most {MAX_TAG_VALUE_LENGTH} characters long.")
    return [name, text]


def _size(node: Element | None) -> int | None:
    return None if node is None else _integer(node, MAX_SIZE)


def _predicates(children: dict[str, list[Element]], tags: list[Element]) -> dict:
    prefix = _single(children, "Prefix")
    parsed = {
        "prefix": None if prefix is None else _prefix(prefix),
        "tags": [_tag(tag) for tag in tags],
        "gt": _size(_single(children, "ObjectSizeGreaterThan")),
        "lt": _size(_single(children, "ObjectSizeLessThan")),
    }
    names = [name for name, _ in parsed["tags"]]
    if len(set(names)) != len(names):
        raise S3Error("InvalidRequest", "Duplicate Tag Keys are not allowed.")
    greater, less = parsed["gt"], parsed["lt"]
    if (greater is not None and greater < 0) or (less is not None and less < 0):
        raise S3Error("InvalidArgument", "An object size filter must not be negative.")
    if greater is not None and less is not None and greater >= less:
        raise S3Error("InvalidArgument", "ObjectSizeGreaterThan must be less than ObjectSizeLessThan.")
    return parsed


def _filter(node: Element) -> dict:
    """A Filter element: empty, exactly one predicate, or And over two or more."""
    children = _children(node, FILTER_ELEMENTS)
    if len(children) > 1 or any(len(found) > 1 for found in children.values()):
        raise _malformed()
    conjunction = _single(children, "And")
    if conjunction is None:
        return {"form": "filter", **_predicates(children, children.get("Tag", []))}
    inner = _children(conjunction, FILTER_PREDICATES)
    tags = inner.get("Tag", [])
    if len(tags) + sum(len(found) for name, found in inner.items() if name != "Tag") < 2:
        raise _malformed()
    return {"form": "and", **_predicates(inner, tags)}


def _expiration(node: Element) -> dict:
    children = _children(node, EXPIRATION_ELEMENTS)
    if len(children) != 1:
        raise _malformed()
    days, date, marker = (_single(children, name) for name in ("Days", "Date", "ExpiredObjectDeleteMarker"))
    if days is not None:
        return {"days": _positive(days, "'Days' for Expiration action")}
    if date is not None:
        return {"date": parse_date(_text(date).strip())}
    flag = BOOLEANS.get(_text(marker).strip())
    if flag is None:
        raise _malformed()
    return {"delete_marker": flag}


def parse_date(text: str) -> int:
    """An Expiration Date as epoch ms: ISO 8601, and midnight UTC as S3 requires."""
    if not ISO_DATE.fullmatch(text):
        raise _malformed()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _malformed() from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    if seconds % DAY_SECONDS:
        raise S3Error("InvalidArgument", "'Date' must be at midnight GMT")
    return int(seconds) * 1000


def _noncurrent(node: Element) -> dict:
    children = _children(node, frozenset(("NoncurrentDays", "NewerNoncurrentVersions")))
    return _noncurrent_days(children, "NoncurrentVersionExpiration")


def _noncurrent_days(children: dict[str, list[Element]], action: str) -> dict:
    """NoncurrentDays and NewerNoncurrentVersions of a noncurrent version's expiration or transition."""
    days, newer = _single(children, "NoncurrentDays"), _single(children, "NewerNoncurrentVersions")
    if days is None:
        raise _malformed()
    parsed = {"days": _positive(days, f"'NoncurrentDays' for {action} action"), "newer": None}
    if newer is not None:
        parsed["newer"] = _integer(newer, MAX_DAYS)
        if not 0 < parsed["newer"] <= MAX_NEWER_VERSIONS:
            raise S3Error("InvalidArgument", f"NewerNoncurrentVersions must be between 1 and {MAX_NEWER_VERSIONS}.")
    return parsed


def _abort_days(node: Element) -> int:
    days = _single(_children(node, frozenset(("DaysAfterInitiation",))), "DaysAfterInitiation")
    if days is None:
        raise _malformed()
    return _positive(days, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action")


def _storage_class(children: dict[str, list[Element]]) -> None:
    storage_class = _single(children, "StorageClass")
    if storage_class is None or _text(storage_class).strip() not in TRANSITION_CLASSES:
        raise _malformed()


def _check_transition(node: Element) -> None:
    """A Transition's days or date, checked as S3 checks them (a bad one is a 400, whatever
    becomes of the action)."""
    children = _children(node, TRANSITION_ELEMENTS)
    days, date = _single(children, "Days"), _single(children, "Date")
    if (days is None) == (date is None):
        raise _malformed()
    _storage_class(children)
    if days is not None and _integer(days, MAX_DAYS) < 0:
        raise S3Error("InvalidArgument", "'Days' for Transition action must be a positive integer")
    if date is not None:
        parse_date(_text(date).strip())


def _check_noncurrent_transition(node: Element) -> None:
    children = _children(node, NONCURRENT_TRANSITION_ELEMENTS)
    _noncurrent_days(children, "NoncurrentVersionTransition")
    _storage_class(children)


def _rule(node: Element) -> dict:
    children = _children(node, RULE_ELEMENTS)
    for tag, found in children.items():
        if len(found) > 1 and tag not in UNSUPPORTED_ACTIONS:
            raise _malformed()
    status = _single(children, "Status")
    if status is None or _text(status) not in STATUSES:
        raise _malformed()
    legacy_prefix, filter_node = _single(children, "Prefix"), _single(children, "Filter")
    if (legacy_prefix is None) == (filter_node is None):
        raise _malformed()  # exactly one of the two
    if legacy_prefix is not None:
        selection = {"form": "prefix", "prefix": _prefix(legacy_prefix), "tags": [], "gt": None, "lt": None}
    else:
        selection = _filter(filter_node)
    identifier = _single(children, "ID")
    rule_id = "" if identifier is None else _text(identifier)
    if len(rule_id) > MAX_ID_LENGTH:
        raise S3Error("InvalidArgument", f"ID length should not exceed allowed limit of {MAX_ID_LENGTH}")
    for transition in children.get("Transition", []):
        _check_transition(transition)
    for transition in children.get("NoncurrentVersionTransition", []):
        _check_noncurrent_transition(transition)
    for action in UNSUPPORTED_ACTIONS:
        if action in children:
            raise S3Error("NotImplemented", f"{action} actions are not supported: there is one storage class.")
    rule = {"id": rule_id or secrets.token_hex(24), "enabled": STATUSES[_text(status)], "filter": selection}
    expiration, noncurrent, abort = (
        _single(children, name)
        for name in ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")
    )
    if expiration is None and noncurrent is None and abort is None:
        raise S3Error("InvalidRequest", "At least one action needs to be specified in a rule.")
    if expiration is not None:
        rule["expiration"] = _expiration(expiration)
        if "delete_marker" in rule["expiration"] and selection["tags"]:
            raise S3Error("InvalidRequest", "ExpiredObjectDeleteMarker cannot be specified with tags.")
    if noncurrent is not None:
        rule["noncurrent"] = _noncurrent(noncurrent)
    if abort is not None:
        rule["abort_days"] = _abort_days(abort)
        if selection["tags"]:
            raise S3Error("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags.")
        if selection["gt"] is not None or selection["lt"] is not None:
            raise S3Error(
                "InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with an object size filter."
            )
    return rule


def parse_configuration(body: bytes) -> dict:
    """A LifecycleConfiguration document in its stored form (see `nebulaio.lifecycle.rules`).

    A rule without an ID is given a random one, as S3 does; the caller adds "minimum_size".

    Raises:
        S3Error: MalformedXML, InvalidArgument, InvalidRequest or NotImplemented, as S3 answers.
    """
    tree = xml.parse(body, "LifecycleConfiguration")
    nodes = _children(tree, frozenset(("Rule",))).get("Rule", [])
    if not nodes or len(nodes) > MAX_RULES:
        raise _malformed()
    rules = [_rule(node) for node in nodes]
    identifiers = {rule["id"] for rule in rules}
    if len(identifiers) != len(rules):
        raise S3Error("InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule")
    return {"rules": rules}


# -- rendering ---------------------------------------------------------------------------


def _element(name: str, value) -> str:
    return "" if value is None else f"<{name}>{value}</{name}>"


def _render_predicates(selection: dict) -> str:
    prefix = selection["prefix"]
    return "".join(
        (
            "" if prefix is None else f"<Prefix>{xml.escape(prefix)}</Prefix>",
            *(
                f"<Tag><Key>{xml.escape(name)}</Key><Value>{xml.escape(value)}</Value></Tag>"
                for name, value in selection["tags"]
            ),
            _element("ObjectSizeGreaterThan", selection["gt"]),
            _element("ObjectSizeLessThan", selection["lt"]),
        )
    )


def _render_selection(selection: dict) -> str:
    form = selection["form"]
    if form == "prefix":
        return f"<Prefix>{xml.escape(selection['prefix'])}</Prefix>"
    if form == "and":
        return f"<Filter><And>{_render_predicates(selection)}</And></Filter>"
    return f"<Filter>{_render_predicates(selection)}</Filter>"


def _render_expiration(expiration: dict) -> str:
    if "days" in expiration:
        inner = f"<Days>{expiration['days']:d}</Days>"
    elif "date" in expiration:
        inner = f"<Date>{iso8601(expiration['date'])}</Date>"
    else:
        inner = f"<ExpiredObjectDeleteMarker>{xml.TRUE_FALSE[expiration['delete_marker']]}</ExpiredObjectDeleteMarker>"
    return f"<Expiration>{inner}</Expiration>"


def _render_rule(rule: dict) -> str:
    parts = [
        f"<Rule><ID>{xml.escape(rule['id'])}</ID>",
        _render_selection(rule["filter"]),
        f"<Status>{'Enabled' if rule['enabled'] else 'Disabled'}</Status>",
    ]
    if "expiration" in rule:
        parts.append(_render_expiration(rule["expiration"]))
    if "noncurrent" in rule:
        noncurrent = rule["noncurrent"]
        parts.append(
            f"<NoncurrentVersionExpiration><NoncurrentDays>{noncurrent['days']:d}</NoncurrentDays>"
            f"{_element('NewerNoncurrentVersions', noncurrent['newer'])}</NoncurrentVersionExpiration>"
        )
    if "abort_days" in rule:
        parts.append(
            "<AbortIncompleteMultipartUpload>"
            f"<DaysAfterInitiation>{rule['abort_days']:d}</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload>"
        )
    parts.append("</Rule>")
    return "".join(parts)


def render_configuration(configuration: dict) -> bytes:
    """GetBucketLifecycleConfiguration's document, each filter written the way it was given."""
    return xml.document("LifecycleConfiguration", "".join(_render_rule(rule) for rule in configuration["rules"]))
