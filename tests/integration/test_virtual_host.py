"""Virtual-hosted-style requests (`Host: <bucket>.<domain>`) against a node with a domain.

No DNS is needed: boto3 builds and signs virtual-hosted URLs under the domain, and a
before-send hook delivers each request to the node's loopback address with its Host header
unchanged. Raw signed requests cover the Host header forms boto3 never sends.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError
from conftest import make_client, raw_exchange, sign_v4

DOMAIN = "s3.test"


@pytest.fixture(scope="module")
def domain_node(node_factory):
    return node_factory(extra_env={"NEBULAIO_DOMAIN": DOMAIN})


def loopback_client(node, addressing_style: str):
    """A boto3 client that addresses `DOMAIN` but reaches the node on 127.0.0.1."""
    port = node.ports["s3"]
    client = make_client(f"http://{DOMAIN}:{port}", s3={"addressing_style": addressing_style})

    def to_loopback(request, **_):
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))

    client.meta.events.register("before-send.s3", to_loopback)
    return client


@pytest.fixture(scope="module")
def virtual(domain_node):
    return loopback_client(domain_node, "virtual")


@pytest.fixture(scope="module")
def path_style(domain_node):
    return domain_node.client()


@pytest.fixture
def vbucket(virtual, path_style):
    name = f"vhost-{uuid.uuid4().hex[:16]}"
    virtual.create_bucket(Bucket=name)
    yield name
    for page in path_style.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            path_style.delete_object(Bucket=name, Key=item["Key"])
    path_style.delete_bucket(Bucket=name)


def signed(node, method: str, host: str, target: str, body: bytes = b"", headers: dict | None = None):
    """(status, headers, body) of a raw request with an explicit Host header, signed for it."""
    import hashlib

    signature = sign_v4(method, host, target, headers or {}, hashlib.sha256(body).hexdigest())
    lines = [f"{method} {target} HTTP/1.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in signature.headers.items()]
    received = raw_exchange(node, ("\r\n".join(lines) + "\r\n\r\n").encode(), (body,) if body else ())
    head, _, content = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found, content


def error_code(content: bytes) -> str:
    return ElementTree.fromstring(content).findtext("Code")


def test_bucket_created_virtually_is_seen_path_style(virtual, path_style, vbucket):
    assert vbucket in [b["Name"] for b in path_style.list_buckets()["Buckets"]]
    path_style.head_bucket(Bucket=vbucket)
    virtual.head_bucket(Bucket=vbucket)
    assert virtual.get_bucket_location(Bucket=vbucket)["LocationConstraint"] is None


def test_object_operations_virtual_style(virtual, path_style, vbucket):
    keys = ["plain", "dir/sub/file.txt", "a//b", "trailing/", "space and+plus", "caf\u00e9", "../x"]
    for key in keys:
        virtual.put_object(Bucket=vbucket, Key=key, Body=key.encode(), ContentType="text/plain")
    for key in keys:
        assert virtual.get_object(Bucket=vbucket, Key=key)["Body"].read() == key.encode()
        assert path_style.get_object(Bucket=vbucket, Key=key)["Body"].read() == key.encode()
        assert virtual.head_object(Bucket=vbucket, Key=key)["ContentLength"] == len(key.encode())
    got = virtual.get_object(Bucket=vbucket, Key="plain", Range="bytes=1-3")
    assert got["Body"].read() == b"lai"
    listed = [o["Key"] for o in virtual.list_objects_v2(Bucket=vbucket)["Contents"]]
    assert listed == sorted(keys)
    assert [o["Key"] for o in virtual.list_objects(Bucket=vbucket)["Contents"]] == sorted(keys)
    page = virtual.list_objects_v2(Bucket=vbucket, Delimiter="/", Prefix="dir/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir/sub/"]
    for key in keys:
        virtual.delete_object(Bucket=vbucket, Key=key)
    assert virtual.list_objects_v2(Bucket=vbucket)["KeyCount"] == 0


def test_delete_bucket_virtual_style(virtual, path_style):
    name = f"vhost-{uuid.uuid4().hex[:16]}"
    virtual.create_bucket(Bucket=name)
    virtual.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as caught:
        virtual.delete_bucket(Bucket=name)
    assert caught.value.response["Error"]["Code"] == "BucketNotEmpty"
    virtual.delete_object(Bucket=name, Key="k")
    virtual.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as caught:
        path_style.head_bucket(Bucket=name)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_missing_bucket_virtual_style(virtual):
    with pytest.raises(ClientError) as caught:
        virtual.get_object(Bucket="no-such-vhost-bucket", Key="k")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_bucket_name_with_dots(domain_node, path_style):
    name = f"dotted.{uuid.uuid4().hex[:8]}.bucket"
    path_style.create_bucket(Bucket=name)
    try:
        host = f"{name}.{DOMAIN}:{domain_node.ports['s3']}"
        assert signed(domain_node, "PUT", host, "/k", b"dots")[0] == 200
        assert path_style.get_object(Bucket=name, Key="k")["Body"].read() == b"dots"
        path_style.delete_object(Bucket=name, Key="k")
    finally:
        path_style.delete_bucket(Bucket=name)


@pytest.mark.parametrize(
    "host_form",
    ["{bucket}.{domain}:{port}", "{bucket}.{domain}", "{bucket}.S3.Test:{port}", "{upper}.{domain}:{port}"],
    ids=["with-port", "without-port", "domain-in-capitals", "bucket-in-capitals"],
)
def test_host_header_forms(domain_node, path_style, vbucket, host_form):
    path_style.put_object(Bucket=vbucket, Key="hello", Body=b"hi")
    host = host_form.format(bucket=vbucket, upper=vbucket.upper(), domain=DOMAIN, port=domain_node.ports["s3"])
    status, headers, content = signed(domain_node, "GET", host, "/hello")
    assert status == 200, content
    assert content == b"hi"
    assert headers["x-amz-request-id"]


def test_path_style_still_works_on_the_domain_itself(domain_node, path_style, vbucket):
    path_style.put_object(Bucket=vbucket, Key="k", Body=b"path")
    port = domain_node.ports["s3"]
    for host in (f"{DOMAIN}:{port}", f"127.0.0.1:{port}", f"localhost:{port}"):
        status, _, content = signed(domain_node, "GET", host, f"/{vbucket}/k")
        assert (status, content) == (200, b"path"), host
    status, _, content = signed(domain_node, "GET", f"{DOMAIN}:{port}", "/")
    assert status == 200 and vbucket.encode() in content


def test_virtual_host_bucket_and_path_bucket_are_not_mixed(domain_node, path_style, vbucket):
    """Under a virtual host the whole path is the key, even when it starts with a bucket name."""
    path_style.put_object(Bucket=vbucket, Key=f"{vbucket}/inner", Body=b"inner")
    host = f"{vbucket}.{DOMAIN}:{domain_node.ports['s3']}"
    status, _, content = signed(domain_node, "GET", host, f"/{vbucket}/inner")
    assert (status, content) == (200, b"inner")
    status, _, content = signed(domain_node, "GET", host, "/inner")
    assert status == 404 and error_code(content) == "NoSuchKey"


@pytest.mark.parametrize(
    "host",
    [".{domain}:{port}", "..{domain}:{port}", "UP_per.{domain}:{port}", "a..b.{domain}:{port}", "-x.{domain}:{port}"],
    ids=["empty-label", "dot-label", "invalid-chars", "double-dot", "leading-dash"],
)
def test_bad_virtual_host_bucket_is_a_clean_error(domain_node, host, path_style, vbucket):
    host = host.format(domain=DOMAIN, port=domain_node.ports["s3"])
    for method, target in (("GET", "/"), ("PUT", "/"), ("GET", "/key"), ("PUT", "/key")):
        status, headers, content = signed(domain_node, method, host, target, b"x" if method == "PUT" else b"")
        assert 400 <= status < 500, (method, target, status, content)
        assert headers["x-amz-request-id"]
        assert error_code(content) in ("NoSuchBucket", "InvalidBucketName", "InvalidURI")
    path_style.head_bucket(Bucket=vbucket)


def test_list_buckets_under_the_domain_with_boto3(domain_node, vbucket):
    client = loopback_client(domain_node, "path")
    assert vbucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
