"""Put/GetBucketNotificationConfiguration: which events of a bucket go to which targets.

A rule names its target by the ARN the Admin API gave it (`arn:nebulaio:sqs:<region>:<id>:<kind>`),
whatever element holds it (Queue, Topic or CloudFunction). A configuration that names a target
this cluster does not know is refused as S3 refuses a destination it cannot validate, and the
bucket keeps its old configuration.
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.meta.notify import EVENT_NAMES
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body
from nebulaio.util.ids import version_id

KINDS = {"QueueConfiguration": "Queue", "TopicConfiguration": "Topic", "CloudFunctionConfiguration": "CloudFunction"}
FILTER_NAMES = ("prefix", "suffix")
MAX_RULES = 100
MAX_ID_LENGTH = 255
SKIP_VALIDATION = "x-amz-skip-destination-validation"
XML_TYPE = "application/xml"


def _parse_filter(node, rule: dict) -> None:
    if len(node) != 1 or node[0].tag != "S3Key":
        raise S3Error("MalformedXML")
    for filter_rule in node[0]:
        name, value = filter_rule.find("Name"), filter_rule.find("Value")
        if filter_rule.tag != "FilterRule" or name is None or value is None:
            raise S3Error("MalformedXML")
        field = (name.text or "").lower()
        if field not in FILTER_NAMES:
            raise S3Error("InvalidArgument", "filter rule name must be either prefix or suffix")
        if field in rule:
            raise S3Error("InvalidArgument", f"Cannot specify more than one {field} rule in a filter.")
        rule[field] = value.text or ""


def _parse_rule(node, kind: str) -> dict:
    rule: dict = {"kind": kind, "events": []}
    for child in node:
        text = (child.text or "").strip()
        if child.tag == "Id" and "id" not in rule:
            if len(text) > MAX_ID_LENGTH:
                raise S3Error("InvalidArgument", "The Id may hold at most 255 characters.")
            rule["id"] = text
        elif child.tag == kind and "arn" not in rule:
            rule["arn"] = text
        elif child.tag == "Event":
            if text not in EVENT_NAMES:
                raise S3Error(
                    "InvalidArgument",
                    "The event is not supported for notifications",
                    ArgumentName="Event",
                    ArgumentValue=text,
                )
            rule["events"].append(text)
        elif child.tag == "Filter" and "prefix" not in rule and "suffix" not in rule:
            _parse_filter(child, rule)
        else:
            raise S3Error("MalformedXML")
    if not rule.get("arn") or not rule["events"]:
        raise S3Error("MalformedXML")
    rule.setdefault("id", version_id())
    rule["events"] = list(dict.fromkeys(rule["events"]))
    return rule


def parse_notification(body: bytes) -> list[dict]:
    """The rules of a NotificationConfiguration document, each {"id", "kind", "arn", "events",
    "prefix", "suffix"} (the filters only when given).

    Raises:
        S3Error: MalformedXML for a document of another shape; InvalidArgument for an event
            that is not one of EVENT_NAMES, a filter other than one prefix and one suffix, a
            repeated Id or an EventBridgeConfiguration (there is no EventBridge here).
    """
    tree = xml.parse(body, "NotificationConfiguration")
    rules = []
    for node in tree:
        kind = KINDS.get(node.tag)
        if kind is None:
            if node.tag == "EventBridgeConfiguration":
                raise S3Error("InvalidArgument", "EventBridge is not available: name a target of this cluster.")
            raise S3Error("MalformedXML")
        rules.append(_parse_rule(node, kind))
    if len(rules) > MAX_RULES:
        raise S3Error("InvalidArgument", f"A configuration holds at most {MAX_RULES} rules.")
    ids = [rule["id"] for rule in rules]
    if len(set(ids)) != len(ids):
        raise S3Error("InvalidArgument", "Configuration Ids must be unique")
    return rules


def notification_document(rules: list[dict]) -> bytes:
    parts = []
    for rule in rules:
        kind = rule["kind"]
        events = "".join(f"<Event>{xml.escape(event)}</Event>" for event in rule["events"])
        filters = "".join(
            f"<FilterRule><Name>{name.capitalize()}</Name><Value>{xml.escape(rule[name])}</Value></FilterRule>"
            for name in FILTER_NAMES
            if name in rule
        )
        filter_xml = f"<Filter><S3Key>{filters}</S3Key></Filter>" if filters else ""
        parts.append(
            f"<{kind}Configuration><Id>{xml.escape(rule['id'])}</Id><{kind}>{xml.escape(rule['arn'])}</{kind}>"
            f"{events}{filter_xml}</{kind}Configuration>"
        )
    return xml.document("NotificationConfiguration", "".join(parts))


def check_destinations(api, rules: list[dict]) -> None:
    """Refuse rules naming a target this cluster does not know, as S3 refuses an unreachable destination."""
    unknown = list(dict.fromkeys(rule["arn"] for rule in rules if api.layer.reader.notify.target(rule["arn"]) is None))
    if not unknown:
        return
    fields = {}
    for number, arn in enumerate(unknown, start=1):
        fields[f"ArgumentName{number}"] = arn
        fields[f"ArgumentValue{number}"] = (
            "No notification target with this ARN is defined (see the Admin API's targets)."
        )
    raise S3Error("InvalidArgument", "Unable to validate the following destination configurations", **fields)


def put_bucket_notification_configuration(api, request, resp) -> None:
    api.layer.bucket(request.bucket)
    rules = parse_notification(read_body(request, api.request_timeout))
    if request.headers.get(SKIP_VALIDATION, "").lower() != "true":
        check_destinations(api, rules)
    api.layer.configure_bucket(request.bucket, "notification", {"rules": rules} if rules else None)


def get_bucket_notification_configuration(api, request, resp) -> None:
    setting = api.layer.bucket(request.bucket).get("notification") or {}
    resp.content_type = XML_TYPE
    resp.data = notification_document(setting.get("rules", []))
