"""Every operation of the S3 API that names a subresource NebulaIO does not route (the ones
docs/s3-compatibility.md marks not supported), sent to a real node as a raw signed request:
answered 501 NotImplemented, with the bucket and object unchanged (a PUT ?renameObject or a
DELETE ?annotation must not be taken for a PutObject or DeleteObject)."""

from __future__ import annotations

import re

import botocore.session
import pytest
from conftest import S3Connection

from nebulaio.engine.errors import S3Error
from nebulaio.s3.router import classify

BODY = b"kept as it was"


def unsupported_requests() -> list[tuple[str, str, str]]:
    """(operation, method, request URI with {Bucket} and {Key+}) of each API operation that
    names a subresource the router refuses."""
    model = botocore.session.get_session().get_service_model("s3")
    requests = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http["requestUri"]
        if "?" not in uri or "{Bucket}" not in uri:
            continue
        query = dict(part.partition("=")[::2] for part in uri.partition("?")[2].split("&"))
        try:
            classify(http["method"], "b", "k" if "{Key+}" in uri else None, query, {})
        except S3Error as error:
            if error.code == "NotImplemented":
                requests.append((name, http["method"], uri))
    return requests


UNSUPPORTED = unsupported_requests()


def test_the_dangerous_ones_are_among_them():
    names = {name for name, _, _ in UNSUPPORTED}
    assert {"RenameObject", "DeleteObjectAnnotation", "PutObjectAnnotation", "GetPart"} <= names


@pytest.mark.parametrize(("name", "method", "uri"), UNSUPPORTED, ids=[name for name, _, _ in UNSUPPORTED])
def test_an_unsupported_operation_is_not_implemented_and_changes_nothing(node, s3, bucket, name, method, uri):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    target = re.sub(r"\{Key\+\}", "k", uri.replace("{Bucket}", bucket))
    connection = S3Connection(node)
    try:
        status, _, answer = connection.request(method, target, b"<Anything/>" if method in ("PUT", "POST") else b"")
    finally:
        connection.close()
    assert (status, b"<Code>NotImplemented</Code>" in answer) == (501, True), answer
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == BODY
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
