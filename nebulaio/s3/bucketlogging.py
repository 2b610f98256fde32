"""Server access logging: Put/GetBucketLogging (`?logging`); s3/accesslog.py records the
requests and delivers them to the target bucket."""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check

XML_TYPE = "application/xml"
SETTING = "logging"
# BucketLoggingStatus keeps the namespace of S3's first API, as AWS answers it.
LOGGING_NAMESPACE = "http://doc.s3.amazonaws.com/2006-03-01"
DATE_SOURCES = frozenset(("EventTime", "DeliveryTime"))
LOGGING_ELEMENTS = frozenset(("TargetBucket", "TargetPrefix", "TargetGrants", "TargetObjectKeyFormat"))
NO_TARGET_MESSAGE = "The target bucket for logging does not exist"
OWNER_MESSAGE = "The owner for the bucket to be logged and the target bucket must be the same."
GRANTS_MESSAGE = "TargetGrants are not supported: grant access to the logs with the target bucket's policy."
REGION_MESSAGE = "The target bucket for logging must be in the same region as the bucket being logged."
RETENTION_MESSAGE = "The target bucket for logging must not have a default retention period configured."


def parse_bucket_logging(body: bytes) -> dict | None:
    """The "logging" setting a BucketLoggingStatus asks for: {"bucket", "prefix", "partitioned"}
    ("partitioned" is None for SimplePrefix keys, else the PartitionDateSource); None turns
    logging off.

    Raises:
        S3Error: MalformedXML for an unknown or repeated element, a LoggingEnabled without
            TargetBucket or TargetPrefix, or a key format that is not exactly one of SimplePrefix
            and PartitionedPrefix; NotImplemented for TargetGrants.
    """
    tree = xml.parse(body, "BucketLoggingStatus")
    children = list(tree)
    if not children:
        return None
    if len(children) != 1 or children[0].tag != "LoggingEnabled":
        raise S3Error("MalformedXML")
    enabled = children[0]
    tags = [element.tag for element in enabled]
    if len(set(tags)) != len(tags) or not LOGGING_ELEMENTS.issuperset(tags):
        raise S3Error("MalformedXML")
    target = (enabled.findtext("TargetBucket") or "").strip()
    prefix = enabled.findtext("TargetPrefix")
    if not target or prefix is None:
        raise S3Error("MalformedXML")
    if enabled.find("TargetGrants") is not None:
        raise S3Error("NotImplemented", GRANTS_MESSAGE)
    return {"bucket": target, "prefix": prefix, "partitioned": _key_format(enabled.find("TargetObjectKeyFormat"))}


def _key_format(element) -> str | None:
    """None for SimplePrefix (also when no format is named), else PartitionedPrefix's date source."""
    if element is None:
        return None
    formats = list(element)
    if len(formats) != 1:
        raise S3Error("MalformedXML")
    chosen = formats[0]
    if chosen.tag == "SimplePrefix" and not len(chosen):
        return None
    if chosen.tag != "PartitionedPrefix":
        raise S3Error("MalformedXML")
    options = list(chosen)
    if not options:
        return "EventTime"
    source = (chosen.findtext("PartitionDateSource") or "").strip()
    if len(options) != 1 or source not in DATE_SOURCES:
        raise S3Error("MalformedXML")
    return source


def check_target(api, source: dict, target_name: str) -> None:
    """Refuse a target bucket AWS would refuse: one that does not exist, that another owner
    owns, that is in another region, or whose object lock would keep every log object for a
    default retention period.

    Raises:
        S3Error: InvalidTargetBucketForLogging.
    """
    target = api.layer.reader.get_bucket(target_name)
    if target is None:
        raise S3Error("InvalidTargetBucketForLogging", NO_TARGET_MESSAGE, TargetBucket=target_name)
    if target["owner"] != source["owner"]:
        raise S3Error("InvalidTargetBucketForLogging", OWNER_MESSAGE, TargetBucket=target_name)
    if target["region"] != source["region"]:
        raise S3Error("InvalidTargetBucketForLogging", REGION_MESSAGE, TargetBucket=target_name)
    if (target.get("object_lock") or {}).get("rule"):
        raise S3Error("InvalidTargetBucketForLogging", RETENTION_MESSAGE, TargetBucket=target_name)


def put_bucket_logging(api, request, resp) -> None:
    source = api.layer.bucket(request.bucket)
    require_integrity_check(request)
    setting = parse_bucket_logging(read_body(request, api.request_timeout))
    if setting is not None:
        check_target(api, source, setting["bucket"])
    api.layer.configure_bucket(request.bucket, SETTING, setting)


def get_bucket_logging(api, request, resp) -> None:
    setting = api.layer.bucket(request.bucket).get(SETTING)
    body = ""
    if setting is not None:
        partitioned = setting["partitioned"]
        key_format = (
            "<SimplePrefix/>"
            if partitioned is None
            else f"<PartitionedPrefix><PartitionDateSource>{partitioned}</PartitionDateSource></PartitionedPrefix>"
        )
        body = (
            f"<LoggingEnabled><TargetBucket>{xml.escape(setting['bucket'])}</TargetBucket>"
            f"<TargetPrefix>{xml.escape(setting['prefix'])}</TargetPrefix>"
            f"<TargetObjectKeyFormat>{key_format}</TargetObjectKeyFormat></LoggingEnabled>"
        )
    resp.content_type = XML_TYPE
    resp.data = (
        f'{xml.XML_DECLARATION}<BucketLoggingStatus xmlns="{LOGGING_NAMESPACE}">{body}</BucketLoggingStatus>'
    ).encode()
