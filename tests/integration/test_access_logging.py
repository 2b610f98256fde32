"""Server access logging on a real node: Put/GetBucketLogging, the checks of the target bucket,
and the AWS-format records delivered as objects under the target prefix."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import uuid

import pytest
import requests
import trustme
from botocore.exceptions import ClientError
from conftest import ROOT_USER, S3Connection, allow, empty_bucket, iam_service, make_client, wait_for

from nebulaio.iam.credentials import canonical_id
from nebulaio.iam.policy import USER_ARN_PREFIX

ROOT_ID = canonical_id(ROOT_USER)
DELIVERY_TIMEOUT = 30.0
LOG_NAME = re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-F]{16}")
LOG_TIME = re.compile(r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\]")
FIELDS = (
    "bucket_owner bucket time remote_ip requester request_id operation key request_uri status error_code"
    " bytes_sent object_size total_time turn_around_time referer user_agent version_id host_id"
    " signature_version cipher_suite authentication_type host_header tls_version access_point_arn acl_required"
).split()


@pytest.fixture(scope="module")
def log_node(node_factory):
    """A node that delivers its access logs twice a second."""
    return node_factory(extra_env={"NEBULAIO_ACCESS_LOG_INTERVAL": "0.5"})


@pytest.fixture(scope="module")
def s3(log_node):
    return log_node.client()


@pytest.fixture
def new_bucket(s3):
    """new_bucket(**create_bucket arguments) -> a bucket's name; every one is emptied and removed after the test."""
    made = []

    def make(**arguments) -> str:
        name = f"log-{uuid.uuid4().hex[:20]}"
        s3.create_bucket(Bucket=name, **arguments)
        made.append(name)
        return name

    yield make
    for name in made:
        s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={})
    for name in reversed(made):
        # Records queued before logging was turned off may still arrive: empty until it stays empty.
        wait_for(lambda name=name: removed(s3, name), DELIVERY_TIMEOUT, f"bucket {name} emptied and removed")


def removed(s3, name: str) -> bool:
    empty_bucket(s3, name)
    try:
        s3.delete_bucket(Bucket=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "BucketNotEmpty":
            return False
        raise
    return True


def refusal(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def enable(s3, bucket: str, target: str, prefix: str, **extra) -> None:
    status = {"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": prefix, **extra}}
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)


def parse_line(line: str) -> dict[str, str]:
    """A log line's fields by name: the time's brackets and the quoted fields hold spaces."""
    head, _, rest = line.partition(" [")
    when, _, rest = rest.partition("] ")
    values = head.split(" ") + [f"[{when}]"] + shlex.split(rest)
    assert len(values) == len(FIELDS), line
    return dict(zip(FIELDS, values, strict=True))


def log_objects(s3, target: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=target, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in listed]


def records(s3, target: str, prefix: str) -> list[dict[str, str]]:
    lines = []
    for key in log_objects(s3, target, prefix):
        lines += s3.get_object(Bucket=target, Key=key)["Body"].read().decode().splitlines()
    return [parse_line(line) for line in lines]


def wait_for_records(s3, target: str, prefix: str, request_ids: set[str]) -> dict[str, dict[str, str]]:
    """The delivered records of these requests, by request id, once every one has arrived."""

    def delivered():
        found = {record["request_id"]: record for record in records(s3, target, prefix)}
        return found if request_ids <= found.keys() else None

    return wait_for(delivered, DELIVERY_TIMEOUT, f"access log records of {sorted(request_ids)}", interval=0.2)


def with_md5(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


def request_id(answer: dict) -> str:
    return answer["ResponseMetadata"]["RequestId"]


# -- the configuration ---------------------------------------------------------------------


def test_logging_status_round_trip(s3, new_bucket):
    source, target = new_bucket(), new_bucket()
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)
    enable(s3, source, target, "logs/")
    enabled = s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]
    assert (enabled["TargetBucket"], enabled["TargetPrefix"]) == (target, "logs/")
    assert enabled["TargetObjectKeyFormat"] == {"SimplePrefix": {}}
    partitioned = {"PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}}
    enable(s3, source, target, "p/", TargetObjectKeyFormat=partitioned)
    assert s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]["TargetObjectKeyFormat"] == partitioned
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)


def test_a_bucket_that_does_not_exist_has_no_logging_status(s3):
    assert refusal(lambda: s3.get_bucket_logging(Bucket=f"missing-{uuid.uuid4().hex[:12]}")) == ("NoSuchBucket", 404)


MALFORMED = {
    "not xml": b"<BucketLoggingStatus",
    "another root": b"<LoggingStatus/>",
    "no target prefix": b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>{target}</TargetBucket>"
    b"</LoggingEnabled></BucketLoggingStatus>",
    "no target bucket": b"<BucketLoggingStatus><LoggingEnabled><TargetPrefix>x/</TargetPrefix>"
    b"</LoggingEnabled></BucketLoggingStatus>",
    "unknown element": b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>{target}</TargetBucket>"
    b"<TargetPrefix>x/</TargetPrefix><Verbose>true</Verbose></LoggingEnabled></BucketLoggingStatus>",
    "two key formats": b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>{target}</TargetBucket>"
    b"<TargetPrefix>x/</TargetPrefix><TargetObjectKeyFormat><SimplePrefix/><PartitionedPrefix/>"
    b"</TargetObjectKeyFormat></LoggingEnabled></BucketLoggingStatus>",
    "unknown date source": b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>{target}</TargetBucket>"
    b"<TargetPrefix>x/</TargetPrefix><TargetObjectKeyFormat><PartitionedPrefix><PartitionDateSource>Now"
    b"</PartitionDateSource></PartitionedPrefix></TargetObjectKeyFormat></LoggingEnabled></BucketLoggingStatus>",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_logging_document_changes_nothing(log_node, s3, new_bucket, case):
    """Raw signed requests: boto3 would refuse to send most of these documents."""
    source, target = new_bucket(), new_bucket()
    enable(s3, source, target, "kept/")
    connection = S3Connection(log_node)
    try:
        body = MALFORMED[case].replace(b"{target}", target.encode())
        status, _, answer = connection.request("PUT", f"/{source}?logging", body, with_md5(body))
    finally:
        connection.close()
    assert (status, b"<Code>MalformedXML</Code>" in answer) == (400, True), answer
    assert s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]["TargetPrefix"] == "kept/"


def test_a_logging_document_needs_an_integrity_check(log_node, s3, new_bucket):
    source, target = new_bucket(), new_bucket()
    body = (
        f"<BucketLoggingStatus><LoggingEnabled><TargetBucket>{target}</TargetBucket>"
        "<TargetPrefix>x/</TargetPrefix></LoggingEnabled></BucketLoggingStatus>"
    ).encode()
    connection = S3Connection(log_node)
    try:
        refused = connection.request("PUT", f"/{source}?logging", body)
        accepted = connection.request("PUT", f"/{source}?logging", body, with_md5(body))
    finally:
        connection.close()
    assert (refused[0], b"<Code>InvalidRequest</Code>" in refused[2]) == (400, True), refused[2]
    assert accepted[0] == 200, accepted[2]
    assert s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]["TargetBucket"] == target


def test_target_grants_are_refused_and_change_nothing(s3, new_bucket):
    source, target = new_bucket(), new_bucket()
    grants = [{"Grantee": {"Type": "CanonicalUser", "ID": ROOT_ID}, "Permission": "READ"}]
    assert refusal(lambda: enable(s3, source, target, "x/", TargetGrants=grants)) == ("NotImplemented", 501)
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)


def test_a_missing_target_bucket_is_refused(s3, new_bucket):
    source = new_bucket()
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    assert refusal(lambda: enable(s3, source, missing, "x/")) == ("InvalidTargetBucketForLogging", 400)
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)


def test_a_target_with_default_retention_is_refused(s3, new_bucket):
    source, target = new_bucket(), new_bucket(ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=target,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    assert refusal(lambda: enable(s3, source, target, "x/")) == ("InvalidTargetBucketForLogging", 400)


def test_a_target_another_user_owns_is_refused(log_node, s3, new_bucket):
    iam = iam_service(log_node)
    name = f"user-{uuid.uuid4().hex[:12]}"
    iam.create_user(name)
    policy = f"policy-{uuid.uuid4().hex[:12]}"
    try:
        iam.put_policy(policy, json.dumps(allow(["s3:*"], ["*"])))
        iam.attach_policy(policy, user=name)
        pair = iam.create_access_key(name)
        user = make_client(log_node.s3_url, access_key=pair["accessKey"], secret_key=pair["secretKey"])
        theirs = f"log-{uuid.uuid4().hex[:20]}"
        user.create_bucket(Bucket=theirs)
        try:
            source = new_bucket()
            assert refusal(lambda: enable(s3, source, theirs, "x/")) == ("InvalidTargetBucketForLogging", 400)
            assert refusal(lambda: enable(user, theirs, source, "x/")) == ("InvalidTargetBucketForLogging", 400)
            assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)
        finally:
            user.delete_bucket(Bucket=theirs)
    finally:
        iam.delete_user(name)
        iam.delete_policy(policy)


# -- the records ---------------------------------------------------------------------------


def test_requests_are_delivered_in_aws_format(log_node, s3, new_bucket):
    source, target = new_bucket(), new_bucket()
    enable(s3, source, target, "access/")
    put = s3.put_object(Bucket=source, Key="dir/a file.txt", Body=b"x" * 1000)
    get = s3.get_object(Bucket=source, Key="dir/a file.txt")
    assert get["Body"].read() == b"x" * 1000
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=source, Key="nothing-here")
    presigned = s3.generate_presigned_url("head_object", Params={"Bucket": source, "Key": "dir/a file.txt"})
    head = requests.head(presigned, headers={"Referer": "https://example.com/page"}, timeout=10)
    anonymous = requests.get(f"{log_node.s3_url}/{source}/dir/a%20file.txt?x=1", timeout=10)
    assert (head.status_code, anonymous.status_code) == (200, 403)
    ids = {
        "put": request_id(put),
        "get": request_id(get),
        "missing": missing.value.response["ResponseMetadata"]["RequestId"],
        "head": head.headers["x-amz-request-id"],
        "anonymous": anonymous.headers["x-amz-request-id"],
    }
    found = wait_for_records(s3, target, "access/", set(ids.values()))
    for key in log_objects(s3, target, "access/"):
        assert LOG_NAME.fullmatch(key.removeprefix("access/")), key
    by_name = {name: found[rid] for name, rid in ids.items()}
    for record in by_name.values():
        assert (record["bucket_owner"], record["bucket"]) == (ROOT_ID, source)
        assert LOG_TIME.fullmatch(record["time"]), record["time"]
        assert record["remote_ip"] == "127.0.0.1"
        assert record["host_id"] == record["request_id"]
        assert record["host_header"] == f"127.0.0.1:{log_node.ports['s3']}"
        assert (record["cipher_suite"], record["tls_version"]) == ("-", "-")
        assert int(record["total_time"]) >= 1
    put_record = by_name["put"]
    assert (put_record["operation"], put_record["key"], put_record["status"]) == (
        "REST.PUT.OBJECT",
        "dir/a%20file.txt",
        "200",
    )
    assert put_record["request_uri"] == f"PUT /{source}/dir/a%20file.txt HTTP/1.1"
    assert (put_record["object_size"], put_record["error_code"]) == ("1000", "-")
    assert (put_record["requester"], put_record["signature_version"], put_record["authentication_type"]) == (
        ROOT_ID,
        "SigV4",
        "AuthHeader",
    )
    assert put_record["user_agent"].startswith("Boto3/")
    get_record = by_name["get"]
    assert (get_record["operation"], get_record["bytes_sent"], get_record["object_size"]) == (
        "REST.GET.OBJECT",
        "1000",
        "1000",
    )
    missing_record = by_name["missing"]
    assert (missing_record["status"], missing_record["error_code"], missing_record["key"]) == (
        "404",
        "NoSuchKey",
        "nothing-here",
    )
    head_record = by_name["head"]
    assert (head_record["operation"], head_record["authentication_type"], head_record["referer"]) == (
        "REST.HEAD.OBJECT",
        "QueryString",
        "https://example.com/page",
    )
    assert (head_record["bytes_sent"], head_record["object_size"]) == ("-", "1000")
    anonymous_record = by_name["anonymous"]
    assert (anonymous_record["requester"], anonymous_record["status"], anonymous_record["error_code"]) == (
        "-",
        "403",
        "AccessDenied",
    )
    assert anonymous_record["request_uri"] == f"GET /{source}/dir/a%20file.txt?x=1 HTTP/1.1"
    assert (anonymous_record["signature_version"], anonymous_record["authentication_type"]) == ("-", "-")
    delivered = s3.head_object(Bucket=target, Key=log_objects(s3, target, "access/")[0])
    assert delivered["ContentType"] == "text/plain"


def test_an_iam_user_is_logged_by_its_arn_and_bucket_calls_by_their_names(log_node, s3, new_bucket):
    source, target = new_bucket(), new_bucket()
    enable(s3, source, target, "calls/")
    logging_status = s3.get_bucket_logging(Bucket=source)
    listed = s3.list_objects_v2(Bucket=source)
    iam = iam_service(log_node)
    name = f"user-{uuid.uuid4().hex[:12]}"
    iam.create_user(name)
    try:
        pair = iam.create_access_key(name)
        user = make_client(log_node.s3_url, access_key=pair["accessKey"], secret_key=pair["secretKey"])
        with pytest.raises(ClientError) as denied:
            user.list_objects_v2(Bucket=source)
    finally:
        iam.delete_user(name)
    ids = {
        "status": request_id(logging_status),
        "list": request_id(listed),
        "denied": denied.value.response["ResponseMetadata"]["RequestId"],
    }
    found = wait_for_records(s3, target, "calls/", set(ids.values()))
    assert found[ids["status"]]["operation"] == "REST.GET.LOGGING_STATUS"
    assert (found[ids["list"]]["operation"], found[ids["list"]]["key"]) == ("REST.GET.BUCKET", "-")
    denied_record = found[ids["denied"]]
    assert (denied_record["requester"], denied_record["error_code"]) == (USER_ARN_PREFIX + name, "AccessDenied")


def test_partitioned_keys_name_account_region_bucket_and_day(s3, new_bucket):
    source, target = new_bucket(), new_bucket()
    enable(
        s3, source, target, "part/", TargetObjectKeyFormat={"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    )
    answer = s3.head_bucket(Bucket=source)
    found = wait_for_records(s3, target, "part/", {request_id(answer)})
    assert found[request_id(answer)]["operation"] == "REST.HEAD.BUCKET"
    key = log_objects(s3, target, "part/")[0]
    account, region, bucket, year, month, day, name = key.removeprefix("part/").split("/")
    assert (account, region, bucket) == ("000000000000", "us-east-1", source)
    assert name.startswith(f"{year}-{month}-{day}-") and LOG_NAME.fullmatch(name), key


def test_a_bucket_logging_into_itself_never_logs_its_own_deliveries(s3, new_bucket):
    source = new_bucket()
    enable(s3, source, source, "self/")
    first = request_id(s3.put_object(Bucket=source, Key="data", Body=b"1"))
    wait_for_records(s3, source, "self/", {first})
    # These go over the same kept-alive connection, so to the worker that delivered the first
    # record: had that delivery been logged, its record would be queued before theirs.
    later = {request_id(s3.head_object(Bucket=source, Key="data")) for _ in range(8)}
    found = wait_for_records(s3, source, "self/", later)
    writes = [record["key"] for record in found.values() if record["operation"] == "REST.PUT.OBJECT"]
    assert writes == ["data"]


def test_logging_stops_when_turned_off(s3, new_bucket):
    source, target = new_bucket(), new_bucket()
    enable(s3, source, target, "off/")
    logged = request_id(s3.head_bucket(Bucket=source))
    wait_for_records(s3, target, "off/", {logged})
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={})
    unlogged = request_id(s3.head_bucket(Bucket=source))
    enable(s3, source, target, "on-again/")
    marker = request_id(s3.head_bucket(Bucket=source))
    wait_for_records(s3, target, "on-again/", {marker})
    everything = {record["request_id"] for record in records(s3, target, "")}
    assert unlogged not in everything


def test_a_worker_that_stops_delivers_what_it_holds(node_factory):
    """A node that would deliver only hourly: its records arrive when it is stopped."""
    node = node_factory(extra_env={"NEBULAIO_ACCESS_LOG_INTERVAL": "3600"})
    client = node.client()
    client.create_bucket(Bucket="source")
    client.create_bucket(Bucket="target")
    enable(client, "source", "target", "stop/")
    logged = request_id(client.head_bucket(Bucket="source"))
    assert log_objects(client, "target", "stop/") == []
    node.stop()
    node.start()
    found = wait_for_records(client, "target", "stop/", {logged})
    assert found[logged]["operation"] == "REST.HEAD.BUCKET"


def test_every_node_of_a_cluster_delivers_its_records(cluster_factory):
    nodes = cluster_factory(3, extra_env={"NEBULAIO_ACCESS_LOG_INTERVAL": "0.5"})
    clients = [node.client() for node in nodes]
    clients[0].create_bucket(Bucket="source")
    clients[0].create_bucket(Bucket="target")
    enable(clients[0], "source", "target", "cluster/")
    logged = {
        request_id(client.put_object(Bucket="source", Key=f"from-node{position}", Body=b"x"))
        for position, client in enumerate(clients)
    }
    found = wait_for_records(clients[2], "target", "cluster/", logged)
    hosts = {found[rid]["host_header"] for rid in logged}
    assert hosts == {f"127.0.0.1:{node.ports['s3']}" for node in nodes}


def test_https_requests_name_their_cipher_suite_and_tls_version(node_factory, tmp_path_factory):
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    directory = tmp_path_factory.mktemp("tls")
    cert, key, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    node = node_factory(tls=(str(cert), str(key)), extra_env={"NEBULAIO_ACCESS_LOG_INTERVAL": "0.5"})
    client = make_client(node.s3_url, verify=str(ca_file))
    client.create_bucket(Bucket="source")
    client.create_bucket(Bucket="target")
    enable(client, "source", "target", "tls/")
    logged = request_id(client.head_bucket(Bucket="source"))
    record = wait_for_records(client, "target", "tls/", {logged})[logged]
    assert record["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert re.fullmatch(r"[A-Z0-9_-]+", record["cipher_suite"]), record["cipher_suite"]
