"""Bucket event notifications on a real node: the configuration, and delivery to a real webhook
receiver, a real redis-server and a real nats-server, through outages and a kill -9."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import shutil
import socket
import subprocess
import threading
import uuid
from urllib.parse import unquote_plus

import orjson
import pytest
import requests
from botocore.exceptions import ClientError
from conftest import ROOT_PASSWORD, ROOT_USER, free_port, metric_samples, wait_for
from test_console import browser, console_url, expected_errors, page, ui_login  # noqa: F401 (fixtures)

TIMEOUT = 10
DELIVERY_TIMEOUT = 60.0
SECRET = "webhook-signing-secret"


# -- the Admin API's targets ------------------------------------------------------------------


def admin(node, method: str, path: str, **kwargs) -> requests.Response:
    token = requests.post(
        node.admin_url + "/api/v1/auth/login", json={"username": ROOT_USER, "password": ROOT_PASSWORD}, timeout=TIMEOUT
    ).json()["token"]
    return requests.request(
        method, node.admin_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, **kwargs
    )


def define_target(node, target_id: str, **fields) -> str:
    """Define a target through the Admin API; its ARN."""
    response = admin(node, "PUT", f"/api/v1/notify/targets/{target_id}", json=fields)
    assert response.status_code == 200, response.text
    return response.json()["arn"]


def notify(s3, bucket: str, arn: str, events=("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), **filters) -> None:
    rule = {"Id": "rule-" + arn.rsplit(":", 2)[1], "QueueArn": arn, "Events": list(events)}
    if filters:
        rule["Filter"] = {"Key": {"FilterRules": [{"Name": name, "Value": value} for name, value in filters.items()]}}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [rule]})


# -- a webhook receiver -----------------------------------------------------------------------


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook endpoint that keeps what it is sent; while `failing`, it answers 503."""

    daemon_threads = True

    def __init__(self):
        self.received: list[dict] = []
        self.refused = 0
        self.failing = False
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _ReceiverHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"

    def records(self) -> list[dict]:
        with self.lock:
            return [record for message in self.received for record in message["body"]["Records"]]


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        with server.lock:
            if server.failing:
                server.refused += 1
                status = 503
            else:
                server.received.append({"headers": dict(self.headers), "raw": body, "body": orjson.loads(body)})
                status = 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


def keys_of(records: list[dict]) -> list[str]:
    return [unquote_plus(record["s3"]["object"]["key"]) for record in records]


# -- the configuration ------------------------------------------------------------------------


def test_a_configuration_reads_back_and_an_unknown_target_changes_nothing(node, s3, bucket, receiver):
    arn = define_target(node, "config-hook", kind="webhook", endpoint=receiver.url, secret=SECRET)
    assert arn.startswith("arn:nebulaio:sqs:") and arn.endswith(":config-hook:webhook")
    notify(s3, bucket, arn, events=["s3:ObjectCreated:Put", "s3:ObjectRemoved:Delete"], prefix="in/", suffix=".csv")
    stored = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert stored == [
        {
            "Id": "rule-config-hook",
            "QueueArn": arn,
            "Events": ["s3:ObjectCreated:Put", "s3:ObjectRemoved:Delete"],
            "Filter": {
                "Key": {"FilterRules": [{"Name": "Prefix", "Value": "in/"}, {"Name": "Suffix", "Value": ".csv"}]}
            },
        }
    ]

    unknown = arn.replace("config-hook", "no-such-target")
    with pytest.raises(ClientError) as refused:
        notify(s3, bucket, unknown)
    error = refused.value.response["Error"]
    assert (error["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidArgument", 400)
    assert error["Message"] == "Unable to validate the following destination configurations"
    assert error["ArgumentName1"] == unknown
    with pytest.raises(ClientError) as refused:
        notify(s3, bucket, arn, events=["s3:ObjectCreated:Teleport"])
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"] == stored

    in_use = admin(node, "DELETE", "/api/v1/notify/targets/config-hook")
    assert (in_use.status_code, in_use.json()["error"]["code"]) == (409, "TargetInUse")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)
    assert admin(node, "DELETE", "/api/v1/notify/targets/config-hook").status_code == 204
    assert admin(node, "GET", "/api/v1/notify/targets/config-hook").status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "carrier-pigeon", "endpoint": "http://127.0.0.1:1/"},
        {"kind": "webhook", "endpoint": "ftp://127.0.0.1/"},
        {"kind": "redis", "endpoint": "redis://127.0.0.1:6379"},
        {"kind": "redis", "endpoint": "redis://127.0.0.1", "key": "events"},
        {"kind": "nats", "endpoint": "nats://127.0.0.1:4222", "subject": "a b"},
        {"kind": "webhook", "endpoint": "http://127.0.0.1:1/", "subject": "x"},
    ],
    ids=["kind", "scheme", "no-key", "no-port", "subject", "foreign-field"],
)
def test_bad_targets_are_refused(node, fields):
    response = admin(node, "PUT", "/api/v1/notify/targets/bad-target", json=fields)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "InvalidArgument")
    assert admin(node, "GET", "/api/v1/notify/targets/bad-target").status_code == 404


# -- the webhook ------------------------------------------------------------------------------


def test_the_webhook_gets_signed_s3_events_as_the_rules_ask(node, s3, bucket, receiver):
    arn = define_target(node, "hook-" + uuid.uuid4().hex[:8], kind="webhook", endpoint=receiver.url, secret=SECRET)
    notify(s3, bucket, arn, prefix="in/")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="in/a file+.txt", Body=b"hello")
    s3.put_object(Bucket=bucket, Key="elsewhere.txt", Body=b"not asked for")
    s3.copy_object(Bucket=bucket, Key="in/copy", CopySource={"Bucket": bucket, "Key": "in/a file+.txt"})
    upload = s3.create_multipart_upload(Bucket=bucket, Key="in/parts")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="in/parts", UploadId=upload, PartNumber=1, Body=b"p" * 10)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="in/parts",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    s3.delete_object(Bucket=bucket, Key="in/copy")
    s3.delete_object(
        Bucket=bucket, Key="in/parts", VersionId=s3.head_object(Bucket=bucket, Key="in/parts")["VersionId"]
    )

    wait_for(lambda: len(receiver.records()) >= 5, DELIVERY_TIMEOUT, "five events")
    records = receiver.records()
    assert [record["eventName"] for record in records] == [
        "ObjectCreated:Put",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectRemoved:DeleteMarkerCreated",
        "ObjectRemoved:Delete",
    ]
    assert keys_of(records) == ["in/a file+.txt", "in/copy", "in/parts", "in/copy", "in/parts"]
    first = records[0]
    assert first["eventVersion"] == "2.1" and first["eventSource"] == "aws:s3"
    assert first["s3"]["bucket"]["name"] == bucket
    assert first["s3"]["configurationId"] == "rule-" + arn.rsplit(":", 2)[1]
    assert first["s3"]["object"]["key"] == "in/a+file%2B.txt"
    assert first["s3"]["object"]["size"] == 5
    assert first["s3"]["object"]["eTag"] == put["ETag"].strip('"')
    assert first["s3"]["object"]["versionId"] == put["VersionId"]
    sequencers = [record["s3"]["object"]["sequencer"] for record in records]
    assert sequencers == sorted(sequencers) and len(set(sequencers)) == len(sequencers)
    for message in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), message["raw"], hashlib.sha256).hexdigest()
        assert message["headers"]["X-NebulaIO-Signature"] == expected
    label = f'{{target="{arn}"}}'
    # The receiver holds the fifth event a moment before the deliverer hears its answer.
    wait_for(lambda: metric_samples(node)[f"nebulaio_notify_delivered_total{label}"] == 5, 10, "five deliveries")
    wait_for(lambda: metric_samples(node)[f"nebulaio_notify_backlog{label}"] == 0, DELIVERY_TIMEOUT, "no backlog")


def test_an_outage_is_retried_with_backoff_and_shows_on_metrics(node, s3, bucket, receiver):
    arn = define_target(node, "hook-" + uuid.uuid4().hex[:8], kind="webhook", endpoint=receiver.url)
    notify(s3, bucket, arn)
    label = f'{{target="{arn}"}}'
    receiver.failing = True
    for number in range(5):
        s3.put_object(Bucket=bucket, Key=f"during-outage-{number}", Body=b"x")
    wait_for(lambda: receiver.refused >= 3, DELIVERY_TIMEOUT, "retries")
    samples = metric_samples(node)
    assert samples[f"nebulaio_notify_backlog{label}"] == 5
    assert samples[f"nebulaio_notify_failures_total{label}"] >= 3
    assert samples[f"nebulaio_notify_retrying{label}"] == 1
    listed = admin(node, "GET", "/api/v1/notify/targets").json()["targets"]
    shown = next(target for target in listed if target["arn"] == arn)
    assert shown["backlog"] == 5 and shown["retrying"] and "503" in shown["lastError"]
    receiver.failing = False
    wait_for(lambda: len(receiver.records()) >= 5, DELIVERY_TIMEOUT, "the events after the outage")
    assert keys_of(receiver.records()) == [f"during-outage-{number}" for number in range(5)]
    wait_for(lambda: metric_samples(node)[f"nebulaio_notify_backlog{label}"] == 0, DELIVERY_TIMEOUT, "no backlog")
    assert metric_samples(node)[f"nebulaio_notify_retrying{label}"] == 0


def test_events_queued_at_a_kill_9_are_all_delivered_once_after_the_restart(node_factory, receiver):
    node = node_factory()
    s3 = node.client()
    bucket = "kill-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    arn = define_target(node, "killed", kind="webhook", endpoint=receiver.url)
    notify(s3, bucket, arn)
    receiver.failing = True
    keys = [f"queued-{number:03d}" for number in range(60)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    label = f'{{target="{arn}"}}'
    assert metric_samples(node)[f"nebulaio_notify_backlog{label}"] == len(keys)

    node.kill_group()
    receiver.failing = False
    node.start()
    wait_for(lambda: len(receiver.records()) >= len(keys), DELIVERY_TIMEOUT, "every queued event")
    wait_for(lambda: metric_samples(node)[f"nebulaio_notify_backlog{label}"] == 0, DELIVERY_TIMEOUT, "no backlog")
    s3.put_object(Bucket=bucket, Key="after-restart", Body=b"x")
    wait_for(lambda: "after-restart" in keys_of(receiver.records()), DELIVERY_TIMEOUT, "the next event")
    assert keys_of(receiver.records()) == [*keys, "after-restart"]


# -- Redis and NATS -----------------------------------------------------------------------------


def _server(binary: str, *args: str) -> subprocess.Popen:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (apt-get install -y redis-server nats-server)")
    return subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _connect(port: int, process: subprocess.Popen) -> socket.socket:
    def attempt():
        assert process.poll() is None, "the server exited"
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        except OSError:
            return None

    return wait_for(attempt, TIMEOUT, "the server to listen")


@pytest.fixture
def redis_port(tmp_path):
    port = free_port()
    process = _server("redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(tmp_path))
    _connect(port, process).close()
    yield port
    process.kill()
    process.wait()


def redis_call(port: int, *words: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words))
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


def test_redis_gets_events_by_lpush_and_publish(node, s3, bucket, redis_port):
    listed = define_target(node, "redis-list", kind="redis", endpoint=f"redis://127.0.0.1:{redis_port}", key="s3events")
    published = define_target(
        node, "redis-channel", kind="redis", endpoint=f"redis://127.0.0.1:{redis_port}", key="s3chan", mode="publish"
    )
    subscriber = socket.create_connection(("127.0.0.1", redis_port), timeout=TIMEOUT)
    subscriber.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\ns3chan\r\n")
    stream = subscriber.makefile("rb")
    assert [stream.readline() for _ in range(6)][-1] == b":1\r\n"  # subscribed
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"Id": "list", "QueueArn": listed, "Events": ["s3:ObjectCreated:*"]},
                {"Id": "channel", "QueueArn": published, "Events": ["s3:ObjectCreated:*"]},
            ]
        },
    )
    for number in range(3):
        s3.put_object(Bucket=bucket, Key=f"redis-{number}", Body=b"r")

    def listed_keys():
        reply = redis_call(redis_port, "LRANGE", "s3events", "0", "-1")
        messages = [line for line in reply.split(b"\r\n") if line.startswith(b"{")]
        return [orjson.loads(message)["Records"][0]["s3"]["object"]["key"] for message in messages]

    wait_for(lambda: len(listed_keys()) >= 3, DELIVERY_TIMEOUT, "three pushed events")
    assert listed_keys() == ["redis-2", "redis-1", "redis-0"]  # LPUSH: newest first
    pushed = []
    while len(pushed) < 3:
        line = stream.readline()
        if line.startswith(b"{"):
            pushed.append(orjson.loads(line)["Records"][0]["s3"]["object"]["key"])
    assert pushed == ["redis-0", "redis-1", "redis-2"]
    subscriber.close()


@pytest.fixture
def nats_port():
    port = free_port()
    process = _server("nats-server", "-a", "127.0.0.1", "-p", str(port))
    _connect(port, process).close()
    yield port
    process.kill()
    process.wait()


def test_nats_gets_events_on_its_subject(node, s3, bucket, nats_port):
    arn = define_target(
        node, "nats-subject", kind="nats", endpoint=f"nats://127.0.0.1:{nats_port}", subject="s3.events"
    )
    subscriber = socket.create_connection(("127.0.0.1", nats_port), timeout=TIMEOUT)
    stream = subscriber.makefile("rb")
    assert stream.readline().startswith(b"INFO ")
    subscriber.sendall(b'CONNECT {"verbose":false}\r\nSUB s3.events 1\r\nPING\r\n')
    assert stream.readline() == b"PONG\r\n"
    notify(s3, bucket, arn, events=["s3:ObjectRemoved:*"])
    s3.put_object(Bucket=bucket, Key="nats-object", Body=b"n")
    s3.delete_object(Bucket=bucket, Key="nats-object")
    line = stream.readline()
    while line == b"PING\r\n":
        subscriber.sendall(b"PONG\r\n")
        line = stream.readline()
    assert line.startswith(b"MSG s3.events 1 ")
    record = orjson.loads(stream.readline())["Records"][0]
    assert (record["eventName"], record["s3"]["object"]["key"]) == ("ObjectRemoved:Delete", "nats-object")
    subscriber.close()


# -- the console --------------------------------------------------------------------------------


def test_the_console_defines_a_target_and_shows_its_backlog_and_failures(page, console_url, s3, bucket, receiver):  # noqa: F811
    target_id = "console-" + uuid.uuid4().hex[:8]
    ui_login(page, console_url)
    page.get_by_role("link", name="Notifications").click()
    page.get_by_label("Target id").fill(target_id)
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_label("Endpoint").fill(receiver.url)
    page.get_by_label("signing secret (optional)").fill(SECRET)
    page.get_by_role("button", name="Save target").click()
    row = page.get_by_role("row").filter(has_text=target_id)
    arn = row.locator("code").inner_text()
    assert arn.endswith(f":{target_id}:webhook")

    receiver.failing = True
    notify(s3, bucket, arn)
    s3.put_object(Bucket=bucket, Key="shown", Body=b"x")
    wait_for(lambda: "retrying: the webhook answered 503" in row.inner_text(), 30, "the failure on the page")
    assert row.locator("td").nth(4).inner_text() == "1"  # the backlog
    receiver.failing = False
    wait_for(lambda: row.locator("td").nth(7).inner_text() == "ok", 30, "the delivery on the page")
    assert [row.locator("td").nth(n).inner_text() for n in (4, 5)] == ["0", "1"]
    assert keys_of(receiver.records()) == ["shown"]
