"""HTTPS on every listener, with a throwaway CA made by trustme.

Over HTTPS botocore sends every upload as aws-chunked with an unsigned checksum trailer and
no Content-Length: the path real SDKs take, checked here with bodies of several MiB.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest
import requests
import trustme
from conftest import make_client

BIG = 6 * 1024 * 1024 + 5


@pytest.fixture(scope="module")
def tls_node(node_factory, tmp_path_factory):
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("tls")
    cert, key, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    node = node_factory(tls=(str(cert), str(key)))
    node.ca_file = str(ca_file)
    return node


@pytest.fixture(scope="module")
def tls_client(tls_node):
    client = make_client(tls_node.s3_url, verify=tls_node.ca_file)
    sent: list[dict] = []

    def record(request, **_):
        sent.append(
            {
                name.lower(): value.decode() if isinstance(value, bytes) else value
                for name, value in request.headers.items()
            }
        )

    client.meta.events.register("before-send.s3.PutObject", record)
    client.sent = sent
    return client


@pytest.mark.parametrize(
    "size, streamed",
    [(0, False), (1000, False), (BIG, False), (BIG, True)],
    ids=["empty", "small", "6MiB", "6MiB-unseekable"],
)
def test_put_get_list_delete_over_https(tls_client, size, streamed):
    client = tls_client
    bucket = f"tls-{size}-{'stream' if streamed else 'bytes'}"
    client.create_bucket(Bucket=bucket)
    body = os.urandom(size)
    source = _Unseekable(body) if streamed else body
    answer = client.put_object(Bucket=bucket, Key="object", Body=source)
    sent = client.sent[-1]
    assert sent["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert "aws-chunked" in sent["content-encoding"]
    if streamed:
        assert "content-length" not in sent and sent.get("transfer-encoding") == "chunked"
    assert answer["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = client.get_object(Bucket=bucket, Key="object")
    assert hashlib.md5(got["Body"].read()).hexdigest() == hashlib.md5(body).hexdigest()
    assert got["ContentLength"] == size
    if size:
        ranged = client.get_object(Bucket=bucket, Key="object", Range="bytes=0-9")["Body"].read()
        assert ranged == body[:10]
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["object"]
    client.delete_object(Bucket=bucket, Key="object")
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    client.delete_bucket(Bucket=bucket)


class _Unseekable(io.RawIOBase):
    """A body botocore cannot measure in advance: it must stream it chunked."""

    def __init__(self, data: bytes):
        self._stream = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_admin_health_over_https(tls_node):
    for path in ("/health/live", "/health/ready"):
        response = requests.get(tls_node.admin_url + path, verify=tls_node.ca_file, timeout=10)
        assert response.status_code == 200, response.text


def test_plain_http_is_not_served(tls_node):
    with pytest.raises(requests.RequestException):
        requests.get(tls_node.s3_url.replace("https://", "http://"), timeout=5)
