"""NotificationConfiguration documents from untrusted input: what is kept, what is refused."""

from __future__ import annotations

import pytest

from nebulaio.engine.errors import S3Error
from nebulaio.s3.notification import notification_document, parse_notification

ARN = "arn:nebulaio:sqs:us-east-1:hook:webhook"


def document(*configurations: str) -> bytes:
    return (
        '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        + "".join(configurations)
        + "</NotificationConfiguration>"
    ).encode()


def queue(body: str, element: str = "Queue") -> str:
    return f"<{element}Configuration>{body}</{element}Configuration>"


def test_every_kind_of_configuration_round_trips():
    filters = (
        "<Filter><S3Key><FilterRule><Name>Prefix</Name><Value>in/</Value></FilterRule>"
        "<FilterRule><Name>suffix</Name><Value>.csv</Value></FilterRule></S3Key></Filter>"
    )
    rules = parse_notification(
        document(
            queue(f"<Id>q</Id><Queue>{ARN}</Queue><Event>s3:ObjectCreated:*</Event>{filters}"),
            queue(f"<Id>t</Id><Topic>{ARN}</Topic><Event>s3:ObjectRemoved:Delete</Event>", "Topic"),
            queue(f"<CloudFunction>{ARN}</CloudFunction><Event>s3:ObjectCreated:Put</Event>", "CloudFunction"),
        )
    )
    assert rules[0] == {
        "id": "q",
        "kind": "Queue",
        "arn": ARN,
        "events": ["s3:ObjectCreated:*"],
        "prefix": "in/",
        "suffix": ".csv",
    }
    assert [rule["kind"] for rule in rules] == ["Queue", "Topic", "CloudFunction"]
    assert rules[2]["id"]  # an Id is made up when the document names none
    assert parse_notification(notification_document(rules)) == rules
    assert parse_notification(document()) == []


@pytest.mark.parametrize(
    "body, code",
    [
        (queue(f"<Queue>{ARN}</Queue><Event>s3:ObjectCreated:Teleport</Event>"), "InvalidArgument"),
        (queue(f"<Queue>{ARN}</Queue>"), "MalformedXML"),
        (queue("<Event>s3:ObjectCreated:*</Event>"), "MalformedXML"),
        (queue(f"<Topic>{ARN}</Topic><Event>s3:ObjectCreated:*</Event>"), "MalformedXML"),
        (
            queue(
                f"<Queue>{ARN}</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>middle</Name>"
                "<Value>x</Value></FilterRule></S3Key></Filter>"
            ),
            "InvalidArgument",
        ),
        (
            queue(
                f"<Queue>{ARN}</Queue><Event>s3:ObjectCreated:*</Event><Filter><S3Key>"
                + "<FilterRule><Name>prefix</Name><Value>a</Value></FilterRule>" * 2
                + "</S3Key></Filter>"
            ),
            "InvalidArgument",
        ),
        ("<EventBridgeConfiguration/>", "InvalidArgument"),
        (queue(f"<Id>same</Id><Queue>{ARN}</Queue><Event>s3:ObjectCreated:*</Event>") * 2, "InvalidArgument"),
        ("<Unknown/>", "MalformedXML"),
    ],
    ids=[
        "event",
        "no-event",
        "no-arn",
        "wrong-element",
        "filter-name",
        "two-prefixes",
        "eventbridge",
        "same-id",
        "unknown",
    ],
)
def test_bad_configurations_are_refused(body, code):
    with pytest.raises(S3Error) as refused:
        parse_notification(document(body))
    assert refused.value.code == code
