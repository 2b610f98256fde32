"""AWS's exact answers, as a table: each case is a request and the status, error code, headers
and body bytes AWS answers it with (its API reference, and what an S3 conformance suite sees
AWS answer). Every case runs against a real node with raw signed HTTP, so nothing a client
library does hides the detail.

Two nodes: the session's shared one (region us-east-1, days of 86400 s), and one in eu-west-1
whose lifecycle passes run every tenth of a second over one-second days.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
import requests
from conftest import ROOT_PASSWORD, ROOT_USER, Node, S3Connection, empty_bucket, wait_for

from benchmarks.sigv4 import presign_target
from nebulaio.testing import abort_uploads

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
OTHER_REGION = "eu-west-1"
SWEEP_TIMEOUT = 30.0
ABSENT = None
"""A header AWS leaves out of its answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        if not self.body.startswith(b"<?xml") or b"<Error>" not in self.body:
            return None
        return ElementTree.fromstring(self.body).findtext("Code")


class World:
    """What a case's request needs: the nodes, and buckets made for it (removed afterwards)."""

    def __init__(self, node: Node, other: Node):
        self.node = node
        self.other = other
        self._made: list[tuple[Node, str]] = []

    def send(self, method: str, target: str, body: bytes = b"", headers=None, node=None, payload_hash=None) -> Answer:
        connection = S3Connection(node or self.node)
        try:
            status, answer_headers, data = connection.request(method, target, body, headers, payload_hash)
        finally:
            connection.close()
        return Answer(status, answer_headers, data)

    def bucket(self, node: Node | None = None, *, versioning: str | None = None, lock: bool = False) -> str:
        node = node or self.node
        name = f"aws-{uuid.uuid4().hex[:20]}"
        headers = {"x-amz-bucket-object-lock-enabled": "true"} if lock else {}
        assert self.send("PUT", f"/{name}", headers=headers, node=node).status == 200
        self._made.append((node, name))
        if versioning is not None:
            document = (
                f'<VersioningConfiguration xmlns="{S3_XMLNS}"><Status>{versioning}</Status></VersioningConfiguration>'
            )
            assert self.send("PUT", f"/{name}?versioning", document.encode(), node=node).status == 200
        return name

    def put(self, bucket: str, key: str, body: bytes = b"data", headers=None) -> Answer:
        answer = self.send("PUT", f"/{bucket}/{quote(key, safe='/')}", body, headers)
        assert answer.status == 200, answer.body
        return answer

    def clean(self) -> None:
        for node, name in self._made:
            s3 = node.client()
            abort_uploads(s3, name)
            empty_bucket(s3, name)
            s3.delete_bucket(Bucket=name)


@dataclass(frozen=True)
class Case:
    behaviour: str
    request: Callable[[World], Answer]
    status: int
    code: str | None = None
    headers: dict[str, str | re.Pattern | Callable[[], re.Pattern] | None] = field(default_factory=dict)
    """Each header's exact value, a pattern its value matches (or what makes one as the answer is
    checked), or ABSENT."""
    body_has: tuple[bytes, ...] = ()
    body_lacks: tuple[bytes, ...] = ()


def with_md5(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


# -- CreateBucket of a bucket the caller owns ---------------------------------------------------


def create_owned_bucket(node_of: Callable[[World], Node]) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        node = node_of(world)
        name = world.bucket(node)
        return world.send("PUT", f"/{name}", node=node)

    return request


# -- x-amz-version-id of a PUT -------------------------------------------------------------------


def put_into(versioning: str | None) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        return world.put(world.bucket(versioning=versioning), "k")

    return request


# -- an expired presigned URL --------------------------------------------------------------------


def expired_presigned(method: str) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        bucket = world.bucket()
        world.put(bucket, "k")
        path = f"/{bucket}/k"
        host = f"127.0.0.1:{world.node.ports['s3']}"
        query = presign_target(method, host, path, ROOT_USER, ROOT_PASSWORD, expires=60, when=time.time() - 3600)
        answer = requests.request(method, f"{world.node.s3_url}{path}?{query}", data=b"late", timeout=30)
        return Answer(answer.status_code, dict(answer.headers), answer.content)

    return request


# -- object lock: the default retention period -----------------------------------------------------


def lock_period(element: str, value: str) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        bucket = world.bucket(lock=True)
        document = (
            f'<ObjectLockConfiguration xmlns="{S3_XMLNS}"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>'
            f"<DefaultRetention><Mode>GOVERNANCE</Mode><{element}>{value}</{element}></DefaultRetention>"
            "</Rule></ObjectLockConfiguration>"
        ).encode()
        return world.send("PUT", f"/{bucket}?object-lock", document, with_md5(document))

    return request


# -- too many tags ---------------------------------------------------------------------------------


def tagging_document(count: int) -> bytes:
    tags = "".join(f"<Tag><Key>k{i}</Key><Value>v</Value></Tag>" for i in range(count))
    return f'<Tagging xmlns="{S3_XMLNS}"><TagSet>{tags}</TagSet></Tagging>'.encode()


def object_tags(count: int) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        bucket = world.bucket()
        world.put(bucket, "k")
        document = tagging_document(count)
        return world.send("PUT", f"/{bucket}/k?tagging", document, with_md5(document))

    return request


def tagging_header(count: int) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        tags = "&".join(f"k{i}=v" for i in range(count))
        return world.send("PUT", f"/{world.bucket()}/k", b"data", {"x-amz-tagging": tags})

    return request


def bucket_tags(count: int) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        document = tagging_document(count)
        return world.send("PUT", f"/{world.bucket()}?tagging", document, with_md5(document))

    return request


# -- UploadPartCopy's range --------------------------------------------------------------------------


def copy_part_range(copy_range: str) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        bucket = world.bucket()
        world.put(bucket, "source", b"0123456789")
        created = world.send("POST", f"/{bucket}/target?uploads")
        upload_id = ElementTree.fromstring(created.body).findtext(f"{{{S3_XMLNS}}}UploadId")
        headers = {"x-amz-copy-source": f"/{bucket}/source", "x-amz-copy-source-range": copy_range}
        return world.send("PUT", f"/{bucket}/target?partNumber=1&uploadId={upload_id}", headers=headers)

    return request


# -- lifecycle: x-amz-expiration, expired delete markers, transition dates ------------------------------

EXPIRE_DAYS = 3
EXPIRING_RULE = "expire-docs"


def lifecycle_document(rules: str) -> bytes:
    return f'<LifecycleConfiguration xmlns="{S3_XMLNS}">{rules}</LifecycleConfiguration>'.encode()


def configure_lifecycle(world: World, bucket: str, rules: str, node: Node | None = None) -> Answer:
    document = lifecycle_document(rules)
    return world.send("PUT", f"/{bucket}?lifecycle", document, with_md5(document), node=node)


def expiry_dates(days: int) -> re.Pattern:
    """x-amz-expiration for an object written now: `days` later, rounded up to midnight UTC
    (either of two dates, should the case run across a midnight)."""
    midnights = [(int(time.time()) // 86400 + days + extra) * 86400 for extra in (1, 2)]
    dates = "|".join(time.strftime("%a, %d %b %Y 00:00:00 GMT", time.gmtime(moment)) for moment in midnights)
    return re.compile(f'expiry-date="({dates})", rule-id="{EXPIRING_RULE}"')


EXPIRY = partial(expiry_dates, EXPIRE_DAYS)


def expiring(method: str, key: str) -> Callable[[World], Answer]:
    """PUT, GET or HEAD of `key` in a bucket whose rule expires docs/ after EXPIRE_DAYS days."""

    def request(world: World) -> Answer:
        bucket = world.bucket()
        rule = (
            f"<Rule><ID>{EXPIRING_RULE}</ID><Filter><Prefix>docs/</Prefix></Filter><Status>Enabled</Status>"
            f"<Expiration><Days>{EXPIRE_DAYS}</Days></Expiration></Rule>"
        )
        assert configure_lifecycle(world, bucket, rule).status == 200
        put = world.put(bucket, key)
        return put if method == "PUT" else world.send(method, f"/{bucket}/{key}")

    return request


def expired_delete_marker(world: World) -> Answer:
    """A delete marker left as its key's only version, under ExpiredObjectDeleteMarker: the next
    lifecycle pass removes it, and the versions listing no longer shows it."""
    node = world.other
    bucket = world.bucket(node, versioning="Enabled")
    rule = (
        "<Rule><ID>markers</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
    )
    assert configure_lifecycle(world, bucket, rule, node).status == 200
    put = world.send("PUT", f"/{bucket}/gone", b"data", node=node)
    version = put.headers["x-amz-version-id"]
    assert world.send("DELETE", f"/{bucket}/gone", node=node).headers["x-amz-delete-marker"] == "true"
    assert world.send("DELETE", f"/{bucket}/gone?versionId={version}", node=node).status == 204

    def listed() -> Answer | None:
        answer = world.send("GET", f"/{bucket}?versions", node=node)
        return None if b"<DeleteMarker>" in answer.body else answer

    return wait_for(listed, SWEEP_TIMEOUT, "the expired delete marker removed", interval=0.2)


def transition(action: str) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        rule = f"<Rule><ID>t</ID><Filter></Filter><Status>Enabled</Status>{action}</Rule>"
        return configure_lifecycle(world, world.bucket(), rule)

    return request


# -- Content-Encoding of an aws-chunked upload ------------------------------------------------------


def chunked_upload(content_encoding: str) -> Callable[[World], Answer]:
    """An aws-chunked PUT (unsigned payload, CRC32 trailer) sent with `content_encoding`, then a HEAD."""

    def request(world: World) -> Answer:
        bucket = world.bucket()
        body = b"x" * 5000
        crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        framed = f"{len(body):x}\r\n".encode() + body + f"\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
        headers = {
            "content-encoding": content_encoding,
            "content-length": str(len(framed)),
            "x-amz-decoded-content-length": str(len(body)),
            "x-amz-trailer": "x-amz-checksum-crc32",
        }
        put = world.send("PUT", f"/{bucket}/k", framed, headers, payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        assert put.status == 200, put.body
        return world.send("HEAD", f"/{bucket}/k")

    return request


# -- listings -----------------------------------------------------------------------------------------

ODD_KEYS = ("a b", "a+b", "ctl\x01char", "tab\tkey", "paren(1)", "caf\u00e9", "sp ace/x", "plus+dir/y")


def url_encoded_listing(query: str) -> Callable[[World], Answer]:
    def request(world: World) -> Answer:
        bucket = world.bucket()
        for key in ODD_KEYS:
            world.put(bucket, key)
        return world.send("GET", f"/{bucket}?{query}")

    return request


def empty_continuation_token(world: World) -> Answer:
    bucket = world.bucket()
    for key in ("one", "two"):
        world.put(bucket, key)
    return world.send("GET", f"/{bucket}?list-type=2&continuation-token=")


ENCODED_KEYS = tuple(
    f"<Key>{key}</Key>".encode() for key in ("a%20b", "a%2Bb", "ctl%01char", "tab%09key", "paren%281%29", "caf%C3%A9")
)
ENCODED_PREFIXES = (b"<Prefix>sp%20ace/</Prefix>", b"<Prefix>plus%2Bdir/</Prefix>")


CASES = [
    Case("CreateBucket of an owned bucket in us-east-1", create_owned_bucket(lambda w: w.node), 200),
    Case(
        f"CreateBucket of an owned bucket in {OTHER_REGION}",
        create_owned_bucket(lambda w: w.other),
        409,
        "BucketAlreadyOwnedByYou",
    ),
    Case("PUT in a bucket never versioned", put_into(None), 200, headers={"x-amz-version-id": ABSENT}),
    Case("PUT in a suspended bucket", put_into("Suspended"), 200, headers={"x-amz-version-id": ABSENT}),
    Case("PUT in a versioned bucket", put_into("Enabled"), 200, headers={"x-amz-version-id": re.compile("[0-9a-f]+")}),
    Case("GET with an expired presigned URL", expired_presigned("GET"), 403, "AccessDenied"),
    Case("PUT with an expired presigned URL", expired_presigned("PUT"), 403, "AccessDenied"),
    Case("default retention of 0 days", lock_period("Days", "0"), 400, "InvalidRetentionPeriod"),
    Case("default retention of -1 days", lock_period("Days", "-1"), 400, "InvalidRetentionPeriod"),
    Case("default retention of 0 years", lock_period("Years", "0"), 400, "InvalidRetentionPeriod"),
    Case("default retention of -2 years", lock_period("Years", "-2"), 400, "InvalidRetentionPeriod"),
    Case("PutObjectTagging with 11 tags", object_tags(11), 400, "InvalidTag"),
    Case("PutObject with 11 tags in x-amz-tagging", tagging_header(11), 400, "InvalidTag"),
    Case("PutBucketTagging with 51 tags", bucket_tags(51), 400, "InvalidTag"),
    Case("UploadPartCopy of a range past the source's end", copy_part_range("bytes=0-10"), 416, "InvalidRange"),
    Case("UploadPartCopy of a range starting past the end", copy_part_range("bytes=10-12"), 416, "InvalidRange"),
    Case("PUT under an expiration rule", expiring("PUT", "docs/a"), 200, headers={"x-amz-expiration": EXPIRY}),
    Case("GET under an expiration rule", expiring("GET", "docs/a"), 200, headers={"x-amz-expiration": EXPIRY}),
    Case("HEAD under an expiration rule", expiring("HEAD", "docs/a"), 200, headers={"x-amz-expiration": EXPIRY}),
    Case("HEAD outside the expiration rule", expiring("HEAD", "other/a"), 200, headers={"x-amz-expiration": ABSENT}),
    Case("expired delete marker removed", expired_delete_marker, 200, body_lacks=(b"<DeleteMarker>", b"<Version>")),
    Case(
        "Transition Date not at midnight",
        transition("<Transition><Date>2030-01-01T10:00:00Z</Date><StorageClass>GLACIER</StorageClass></Transition>"),
        400,
        "InvalidArgument",
    ),
    Case(
        "Transition Date that is no date",
        transition("<Transition><Date>20300101</Date><StorageClass>GLACIER</StorageClass></Transition>"),
        400,
        "MalformedXML",
    ),
    Case(
        "Transition Days below 0",
        transition("<Transition><Days>-1</Days><StorageClass>GLACIER</StorageClass></Transition>"),
        400,
        "InvalidArgument",
    ),
    Case(
        "NoncurrentVersionTransition NoncurrentDays of 0",
        transition(
            "<NoncurrentVersionTransition><NoncurrentDays>0</NoncurrentDays><StorageClass>GLACIER</StorageClass>"
            "</NoncurrentVersionTransition>"
        ),
        400,
        "InvalidArgument",
    ),
    Case(
        "Content-Encoding aws-chunked alone", chunked_upload("aws-chunked"), 200, headers={"content-encoding": ABSENT}
    ),
    Case(
        "Content-Encoding aws-chunked,gzip",
        chunked_upload("aws-chunked,gzip"),
        200,
        headers={"content-encoding": "gzip"},
    ),
    Case(
        "Content-Encoding gzip, aws-chunked, br",
        chunked_upload("gzip, aws-chunked, br"),
        200,
        headers={"content-encoding": "gzip, br"},
    ),
    Case(
        "ListObjectsV2 encoding-type=url",
        url_encoded_listing("list-type=2&encoding-type=url&delimiter=%2F"),
        200,
        body_has=(*ENCODED_KEYS, *ENCODED_PREFIXES, b"<Delimiter>/</Delimiter>"),
    ),
    Case(
        "ListObjects encoding-type=url",
        url_encoded_listing("encoding-type=url&delimiter=%2F"),
        200,
        body_has=(*ENCODED_KEYS, *ENCODED_PREFIXES),
    ),
    Case(
        "ListObjectsV2 with an empty continuation-token",
        empty_continuation_token,
        200,
        body_has=(b"<ContinuationToken></ContinuationToken>", b"<Key>one</Key>", b"<Key>two</Key>"),
    ),
]


@pytest.fixture(scope="module")
def other(node_factory) -> Node:
    return node_factory(
        args=["--region", OTHER_REGION],
        extra_env={"NEBULAIO_LIFECYCLE_INTERVAL": "0.1", "NEBULAIO_LIFECYCLE_DAY_SECONDS": "1"},
    )


@pytest.fixture
def world(node, other):
    made = World(node, other)
    yield made
    made.clean()


@pytest.mark.parametrize("case", CASES, ids=[case.behaviour for case in CASES])
def test_aws_answers(world, case):
    answer = case.request(world)
    assert (answer.status, answer.code) == (case.status, case.code), answer.body
    headers = {name.lower(): value for name, value in answer.headers.items()}
    for name, expected in case.headers.items():
        if callable(expected):
            expected = expected()
        value = headers.get(name)
        if expected is ABSENT:
            assert value is None, (name, value)
        elif isinstance(expected, re.Pattern):
            assert value is not None and expected.fullmatch(value), (name, value)
        else:
            assert value == expected, (name, value)
    for part in case.body_has:
        assert part in answer.body, (part, answer.body)
    for part in case.body_lacks:
        assert part not in answer.body, (part, answer.body)
