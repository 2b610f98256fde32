"""trusted_proxies: X-Forwarded-For and X-Real-IP name the client only when a trusted proxy sends them.

One node trusts 127.0.0.2 (and 127.0.0.1, where the shipped nginx configuration in front of it
connects from). Requests come from loopback source addresses of their own (127.0.0.0/8 is all
loopback): 127.0.0.2 plays the proxy, 127.0.0.3 a client that forges the headers. The headers
name documentation addresses (203.0.113.0/24 allowed, 198.51.100.0/24 not).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid

import orjson
import pytest
import requests
from conftest import Node, empty_bucket, fresh_bucket, wait_for
from test_nginx import NGINX, Nginx

PROXY = "127.0.0.2"
NGINX_PEER = "127.0.0.1"
FORGER = "127.0.0.3"
MAX_FAILURES = 3
ALLOWED_NETWORK = "203.0.113.0/24"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    base = tmp_path_factory.mktemp("proxied")
    node = Node(
        base / "data",
        base / "node.log",
        args=[
            "--trusted-proxies",
            f"{NGINX_PEER}/32, {PROXY}/32, 2001:db8::/32",
            "--login-max-failures",
            str(MAX_FAILURES),
            "--access-log-interval",
            "0.5",
        ],
    )
    try:
        yield node.start()
    finally:
        node.stop()


@pytest.fixture(scope="module")
def s3(proxied):
    return proxied.client()


@pytest.fixture
def bucket(s3):
    with fresh_bucket(s3, "proxied") as name:
        yield name


def request(node: Node, listener: str, method: str, path: str, source: str, headers=None, body=b""):
    """(status, headers, body) of one request on a new connection from `source`."""
    connection = http.client.HTTPConnection("127.0.0.1", node.ports[listener], timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, body, headers or {})
        answer = connection.getresponse()
        return answer.status, answer.headers, answer.read()
    finally:
        connection.close()


def anonymous_get(node: Node, bucket: str, key: str, source: str, headers=None) -> int:
    return request(node, "s3", "GET", f"/{bucket}/{key}", source, headers)[0]


def allow_reads_from(s3, bucket: str, network: str) -> None:
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"IpAddress": {"aws:SourceIp": network}},
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


def test_source_ip_is_the_client_a_trusted_proxy_names(proxied, s3, bucket):
    s3.put_object(Bucket=bucket, Key="report", Body=b"numbers")
    allow_reads_from(s3, bucket, ALLOWED_NETWORK)
    assert anonymous_get(proxied, bucket, "report", PROXY, {"X-Forwarded-For": "203.0.113.5"}) == 200
    assert anonymous_get(proxied, bucket, "report", PROXY, {"X-Forwarded-For": "198.51.100.5"}) == 403
    assert anonymous_get(proxied, bucket, "report", PROXY, {"X-Real-IP": "203.0.113.6"}) == 200
    assert anonymous_get(proxied, bucket, "report", PROXY, {"X-Real-IP": "198.51.100.6"}) == 403
    # The proxy's own address is not in the allowed network, whatever it forwards for.
    assert anonymous_get(proxied, bucket, "report", PROXY) == 403


def test_forwarded_chains_are_walked_past_trusted_hops_only(proxied, s3, bucket):
    s3.put_object(Bucket=bucket, Key="report", Body=b"numbers")
    allow_reads_from(s3, bucket, ALLOWED_NETWORK)
    # A client may write anything left of what the proxies added: the rightmost untrusted hop counts.
    chain = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7, 2001:db8::1"}
    assert anonymous_get(proxied, bucket, "report", PROXY, chain) == 403
    chain = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 2001:db8::1, 127.0.0.2"}
    assert anonymous_get(proxied, bucket, "report", PROXY, chain) == 200


def test_headers_from_an_untrusted_peer_are_ignored(proxied, s3, bucket):
    s3.put_object(Bucket=bucket, Key="report", Body=b"numbers")
    allow_reads_from(s3, bucket, ALLOWED_NETWORK)
    for forged in ({"X-Forwarded-For": "203.0.113.5"}, {"X-Real-IP": "203.0.113.5"}):
        assert anonymous_get(proxied, bucket, "report", FORGER, forged) == 403
    # The forger's own address is what the policy sees.
    allow_reads_from(s3, bucket, f"{FORGER}/32")
    assert anonymous_get(proxied, bucket, "report", FORGER, {"X-Forwarded-For": "198.51.100.5"}) == 200


@pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx missing")
def test_the_shipped_nginx_configuration_pairs_with_trusted_proxies(proxied, s3, bucket, tmp_path):
    """nginx appends the client's address to whatever X-Forwarded-For it was sent: the node,
    trusting nginx alone, takes that rightmost address and never one a client wrote."""
    s3.put_object(Bucket=bucket, Key="report", Body=b"numbers")
    client, other = "127.0.0.5", "127.0.0.6"
    allow_reads_from(s3, bucket, f"{client}/32")
    nginx = Nginx(tmp_path, [proxied] * 3).start()
    try:

        def get(source: str, headers=None) -> int:
            with requests.Session() as session:
                session.mount("http://", SourceAdapter(source))
                return session.get(f"{nginx.s3_url}/{bucket}/report", headers=headers, timeout=30).status_code

        assert get(client) == 200
        assert get(other) == 403
        assert get(other, {"X-Forwarded-For": client, "X-Real-IP": client}) == 403
    finally:
        nginx.stop()


class SourceAdapter(requests.adapters.HTTPAdapter):
    """Connections from one loopback source address."""

    def __init__(self, source: str):
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


def test_the_access_log_names_the_forwarded_client(proxied, s3, bucket):
    target = f"proxied-logs-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=target)
    try:
        s3.put_bucket_logging(
            Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": "l/"}}
        )
        request(proxied, "s3", "GET", f"/{bucket}/nothing", PROXY, {"X-Forwarded-For": "203.0.113.77"})
        request(proxied, "s3", "GET", f"/{bucket}/nothing", FORGER, {"X-Forwarded-For": "203.0.113.78"})

        def delivered() -> str | None:
            listed = s3.list_objects_v2(Bucket=target).get("Contents", [])
            text = "".join(s3.get_object(Bucket=target, Key=item["Key"])["Body"].read().decode() for item in listed)
            return text if f"] {FORGER} " in text and "] 203.0.113.77 " in text else None

        text = wait_for(delivered, 60, "both access log records", interval=0.3)
        assert "203.0.113.78" not in text
        assert f"] {PROXY} " not in text
    finally:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})
        empty_bucket(s3, target)
        s3.delete_bucket(Bucket=target)


def admin_login(node: Node, user: str, source: str, headers=None) -> int:
    body = orjson.dumps({"username": user, "password": "wrong"})
    headers = {"Content-Type": "application/json", **(headers or {})}
    return request(node, "admin", "POST", "/api/v1/auth/login", source, headers, body)[0]


def audited_addresses(node: Node, user: str) -> list[str]:
    lines = (node.data / "audit.jsonl").read_text().splitlines()
    return [entry["address"] for entry in map(json.loads, lines) if entry["user"] == user]


def test_login_throttle_counts_the_forwarded_client_from_a_trusted_proxy(proxied):
    client = {"X-Forwarded-For": "203.0.113.20"}
    for attempt in range(MAX_FAILURES):
        assert admin_login(proxied, f"proxied-{attempt}", PROXY, client) == 401
    assert admin_login(proxied, "proxied-next", PROXY, client) == 429
    # Another client behind the same proxy has a count of its own.
    assert admin_login(proxied, "proxied-other", PROXY, {"X-Forwarded-For": "203.0.113.21"}) == 401
    assert audited_addresses(proxied, "proxied-0") == ["203.0.113.20"]


def test_login_throttle_counts_an_untrusted_peer_whatever_it_forwards(proxied):
    for attempt in range(MAX_FAILURES):
        forged = {"X-Forwarded-For": f"203.0.113.{30 + attempt}", "X-Real-IP": f"203.0.113.{40 + attempt}"}
        assert admin_login(proxied, f"forged-{attempt}", FORGER, forged) == 401
    assert admin_login(proxied, "forged-next", FORGER, {"X-Forwarded-For": "203.0.113.50"}) == 429
    assert audited_addresses(proxied, "forged-0") == [FORGER]


def console_login(node: Node, user: str, source: str, headers=None) -> int:
    body = orjson.dumps({"accessKey": user, "secretKey": "wrong"})
    headers = {"Content-Type": "application/json", **(headers or {})}
    return request(node, "console", "POST", "/session", source, headers, body)[0]


def test_the_console_names_the_browser_a_trusted_proxy_forwards_for(proxied):
    assert console_login(proxied, "console-proxied", PROXY, {"X-Forwarded-For": "203.0.113.60"}) == 401
    assert audited_addresses(proxied, "console-proxied") == ["203.0.113.60"]
    # A source of its own: FORGER's failures may have reached the limit in another test.
    forger = "127.0.0.4"
    assert console_login(proxied, "console-forged", forger, {"X-Forwarded-For": "203.0.113.61"}) == 401
    assert audited_addresses(proxied, "console-forged") == [forger]


@pytest.mark.parametrize("setting", ["10.0.0.1/8", "proxy.example.com", "10.0.0.0/33"])
def test_a_bad_setting_refuses_to_start(tmp_path, setting):
    started = subprocess.run(
        [sys.executable, "-m", "nebulaio", "server", "--data", str(tmp_path), "--trusted-proxies", setting],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert f"trusted_proxies: {setting!r} is not an IPv4 or IPv6 address or CIDR network" in started.stderr
    assert not any(tmp_path.iterdir())
