"""Object lock: a bucket's configuration (?object-lock), a version's retention (?retention) and
legal hold (?legal-hold), and the x-amz-object-lock-* headers of uploads and reads.

Whether a version may be deleted, or its retention changed, is decided when the command is
applied (nebulaio.meta.objectlock); this module reads and writes S3's documents and headers.
"""

from __future__ import annotations

import re

from nebulaio.engine.errors import S3Error
from nebulaio.meta.objectlock import MAX_DAYS, MAX_YEARS, MODES
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check
from nebulaio.util.ids import now_ms
from nebulaio.util.timefmt import iso8601, parse_iso8601

MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
LEGAL_HOLD_HEADER = "x-amz-object-lock-legal-hold"
BYPASS_HEADER = "x-amz-bypass-governance-retention"
HOLD_STATES = {"ON": True, "OFF": False}
HOLD_NAMES = {True: "ON", False: "OFF"}
PERIODS = (("Days", "days", MAX_DAYS), ("Years", "years", MAX_YEARS))
PERIOD_SHAPE = re.compile(r"-?[0-9]{1,12}", re.ASCII)
XML_TYPE = "application/xml"

MISSING_LOCK_MESSAGE = "Bucket is missing Object Lock Configuration"
VERSIONING_REQUIRED_MESSAGE = "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
PUT_INTEGRITY_MESSAGE = (
    "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters"
)
BOTH_HEADERS_MESSAGE = "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
PAST_DATE_MESSAGE = "The retain until date must be in the future!"
UNKNOWN_MODE_MESSAGE = "Unknown wormMode directive."
NOT_POSITIVE_MESSAGE = "Default retention period must be a positive integer value."


def bypasses_governance(request) -> bool:
    return request.headers.get(BYPASS_HEADER, "").strip().lower() == "true"


def require_lock(bucket: dict) -> None:
    """Refuse a lock operation on a bucket without object lock, as S3 does."""
    if not bucket.get("object_lock"):
        raise S3Error("InvalidRequest", MISSING_LOCK_MESSAGE)


def _future(until: int) -> int:
    if until <= now_ms():
        raise S3Error("InvalidArgument", PAST_DATE_MESSAGE)
    return until


def lock_fields(api, request) -> dict:
    """The lock an upload (PutObject, CopyObject, CreateMultipartUpload) asks for in its
    x-amz-object-lock-* headers, as record fields; empty when it names none.

    Raises:
        S3Error: InvalidArgument for a mode without a date (or the reverse), an unknown mode,
            a date that is not ISO 8601 or not in the future, a legal hold neither ON nor OFF;
            InvalidRequest when the bucket has no object lock.
    """
    headers = request.headers
    mode, until_text, hold = headers.get(MODE_HEADER), headers.get(UNTIL_HEADER), headers.get(LEGAL_HOLD_HEADER)
    if mode is None and until_text is None and hold is None:
        return {}
    require_lock(api.layer.bucket(request.bucket))
    fields = {}
    if (mode is None) != (until_text is None):
        raise S3Error("InvalidArgument", BOTH_HEADERS_MESSAGE)
    if mode is not None:
        if mode not in MODES:
            raise S3Error("InvalidArgument", UNKNOWN_MODE_MESSAGE, ArgumentName=MODE_HEADER, ArgumentValue=mode[:32])
        until = parse_iso8601(until_text)
        if until is None:
            raise S3Error(
                "InvalidArgument",
                "The retain until date must be an ISO 8601 date and time.",
                ArgumentName=UNTIL_HEADER,
                ArgumentValue=until_text[:64],
            )
        fields["retention"] = {"mode": mode, "until": _future(until)}
    if hold is not None:
        if hold not in HOLD_STATES:
            raise S3Error(
                "InvalidArgument",
                "Legal Hold must be either of 'ON' or 'OFF'",
                ArgumentName=LEGAL_HOLD_HEADER,
                ArgumentValue=hold[:16],
            )
        fields["legal_hold"] = HOLD_STATES[hold]
    return fields


def lock_headers(headers: dict, record: dict) -> None:
    """A version's lock as GET and HEAD answer it."""
    retention = record.get("retention")
    if retention is not None:
        headers[MODE_HEADER] = retention["mode"]
        headers[UNTIL_HEADER] = iso8601(retention["until"])
    hold = record.get("legal_hold")
    if hold is not None:
        headers[LEGAL_HOLD_HEADER] = HOLD_NAMES[hold]


# -- the bucket's configuration --------------------------------------------------------------


def parse_lock_configuration(body: bytes) -> dict:
    """The "object_lock" setting an ObjectLockConfiguration document asks for.

    Raises:
        S3Error: MalformedXML unless ObjectLockEnabled is Enabled and a Rule holds one
            DefaultRetention with a known Mode and exactly one of Days and Years, a whole
            number; InvalidRetentionPeriod for a period that is not positive, InvalidArgument
            for one over 100 years.
    """
    tree = xml.parse(body, "ObjectLockConfiguration")
    if (tree.findtext("ObjectLockEnabled") or "").strip() != "Enabled":
        raise S3Error("MalformedXML")
    rule = tree.find("Rule")
    if rule is None:
        return {"enabled": True}
    retention = rule.find("DefaultRetention")
    if retention is None or (retention.findtext("Mode") or "").strip() not in MODES:
        raise S3Error("MalformedXML")
    periods = [(name, field, limit) for name, field, limit in PERIODS if retention.find(name) is not None]
    if len(periods) != 1:
        raise S3Error("MalformedXML")
    name, field, limit = periods[0]
    text = (retention.findtext(name) or "").strip()
    if PERIOD_SHAPE.fullmatch(text) is None:
        raise S3Error("MalformedXML")
    period = int(text)
    if period <= 0:
        raise S3Error("InvalidRetentionPeriod", NOT_POSITIVE_MESSAGE, ArgumentName=name)
    if period > limit:
        raise S3Error("InvalidArgument", f"Default retention period cannot exceed {limit} {name}.", ArgumentName=name)
    return {"enabled": True, "rule": {"mode": retention.findtext("Mode").strip(), field: period}}


def put_object_lock_configuration(api, request, resp) -> None:
    require_integrity_check(request)
    api.layer.bucket(request.bucket)
    configuration = parse_lock_configuration(read_body(request, api.request_timeout))
    api.layer.configure_bucket(
        request.bucket,
        "object_lock",
        configuration,
        refusals={"InvalidBucketState": lambda: S3Error("InvalidBucketState", VERSIONING_REQUIRED_MESSAGE)},
    )


def get_object_lock_configuration(api, request, resp) -> None:
    configuration = api.layer.bucket(request.bucket).get("object_lock")
    if not configuration:
        raise S3Error("ObjectLockConfigurationNotFoundError", BucketName=request.bucket)
    body = "<ObjectLockEnabled>Enabled</ObjectLockEnabled>"
    rule = configuration.get("rule")
    if rule is not None:
        name, field = next((name, field) for name, field, _ in PERIODS if field in rule)
        period = f"<Mode>{rule['mode']}</Mode><{name}>{rule[field]:d}</{name}>"
        body += f"<Rule><DefaultRetention>{period}</DefaultRetention></Rule>"
    resp.content_type = XML_TYPE
    resp.data = xml.document("ObjectLockConfiguration", body)


# -- a version's retention and legal hold ----------------------------------------------------


def parse_retention(body: bytes) -> dict | None:
    """The retention a Retention document asks for; None for an empty one (remove it).

    Raises:
        S3Error: MalformedXML for a Mode without a RetainUntilDate (or the reverse), an
            unknown Mode or a date that is not ISO 8601.
    """
    tree = xml.parse(body, "Retention")
    mode, until_text = tree.findtext("Mode"), tree.findtext("RetainUntilDate")
    if mode is None and until_text is None:
        return None
    until = None if until_text is None else parse_iso8601(until_text)
    if mode is None or mode.strip() not in MODES or until is None:
        raise S3Error("MalformedXML")
    return {"mode": mode.strip(), "until": until}


def _locked_version(api, request) -> dict:
    """The record of the version a lock read names, in a bucket that has object lock."""
    require_lock(api.layer.bucket(request.bucket))
    record, _ = api.layer.head(request.bucket, request.key, request.query.get("versionId"))
    return record


def _read_document(api, request) -> bytes:
    require_integrity_check(request)
    require_lock(api.layer.bucket(request.bucket))
    return read_body(request, api.request_timeout)


def put_object_retention(api, request, resp) -> None:
    retention = parse_retention(_read_document(api, request))
    if retention is not None:
        _future(retention["until"])
    changes = {"retention": retention}
    api.layer.update(request.bucket, request.key, request.query.get("versionId"), changes, bypasses_governance(request))


def get_object_retention(api, request, resp) -> None:
    retention = _locked_version(api, request).get("retention")
    if retention is None:
        raise S3Error("NoSuchObjectLockConfiguration")
    resp.content_type = XML_TYPE
    resp.data = xml.document(
        "Retention", f"<Mode>{retention['mode']}</Mode><RetainUntilDate>{iso8601(retention['until'])}</RetainUntilDate>"
    )


def put_object_legal_hold(api, request, resp) -> None:
    tree = xml.parse(_read_document(api, request), "LegalHold")
    status = (tree.findtext("Status") or "").strip()
    if status not in HOLD_STATES:
        raise S3Error("MalformedXML")
    api.layer.update(request.bucket, request.key, request.query.get("versionId"), {"legal_hold": HOLD_STATES[status]})


def get_object_legal_hold(api, request, resp) -> None:
    hold = _locked_version(api, request).get("legal_hold")
    if hold is None:
        raise S3Error("NoSuchObjectLockConfiguration")
    resp.content_type = XML_TYPE
    resp.data = xml.document("LegalHold", f"<Status>{HOLD_NAMES[hold]}</Status>")
