"""Access log records from a real replica's bucket settings: what is queued, what a line holds,
and that a stalled delivery bounds the queue."""

from __future__ import annotations

import shlex
from types import SimpleNamespace

import pytest

from nebulaio.engine.errors import S3Error
from nebulaio.s3.accesslog import MAX_QUEUED_OBJECTS, AccessLog, format_record, log_time
from nebulaio.s3.bucketlogging import REGION_MESSAGE, check_target
from nebulaio.s3.request import S3Request

LOGGING = {"bucket": "target", "prefix": "logs/", "partitioned": None}


def logging_replica(replica) -> AccessLog:
    replica.create_bucket("logged")
    replica.create_bucket("quiet")
    replica.apply({"op": "bucket.configure", "bucket": "logged", "setting": "logging", "value": LOGGING})
    # Never started: nothing is delivered, the queue is looked at directly.
    return AccessLog(SimpleNamespace(reader=replica.reader), "us-east-1", 3600, 2)


def request(bucket: str, user_agent: str = "agent/1.0") -> S3Request:
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/{bucket}/a%20key?versionId=v1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "HTTP_HOST": "s3.example",
        "HTTP_USER_AGENT": user_agent,
    }
    return S3Request(environ, "0123456789ABCDEF", ())


def test_only_a_bucket_that_logs_queues_records(replica):
    access_log = logging_replica(replica)
    access_log.record(request("quiet"), "GetObject", 200, None, 5, 5, 0.002)
    access_log.record(request("missing"), "GetObject", 404, "NoSuchBucket", 0, 0, 0.001)
    assert len(access_log._queue) == 0
    access_log.record(request("logged"), "GetObject", 200, None, 5, 5, 0.002)
    assert len(access_log._queue) == 1


def test_a_line_has_every_field_and_quotes_cannot_split_one(replica):
    access_log = logging_replica(replica)
    access_log.record(request("logged", 'evil" agent'), None, 403, "AccessDenied", 243, 0, 0.0004)
    line = format_record(access_log._queue[0])
    assert line.endswith("\n") and line.count("\n") == 1
    head, _, rest = line.partition(" [")
    when, _, rest = rest.partition("] ")
    fields = head.split(" ") + [when] + shlex.split(rest)
    assert len(fields) == 26
    assert fields[1:4] == ["logged", when, "192.0.2.7"]
    assert f"[{when}]" == log_time(access_log._queue[0][3])
    assert fields[4:9] == [
        "-",
        "0123456789ABCDEF",
        "REST.GET.UNKNOWN",
        "a%20key",
        "GET /logged/a%20key?versionId=v1 HTTP/1.1",
    ]
    assert fields[9:14] == ["403", "AccessDenied", "243", "-", "1"]
    assert fields[16:18] == ["evil%22 agent", "v1"]
    assert fields[19:] == ["-", "-", "-", "s3.example", "-", "-", "-"]


def test_a_stalled_delivery_drops_records_beyond_its_bound(replica):
    access_log = logging_replica(replica)
    bound = MAX_QUEUED_OBJECTS * access_log.batch_records
    for _ in range(bound + 3):
        access_log.record(request("logged"), "GetObject", 200, None, 5, 5, 0.002)
    assert (len(access_log._queue), access_log._dropped) == (bound, 3)


def test_a_target_in_another_region_is_refused(replica):
    replica.create_bucket("source")
    owner = replica.reader.get_bucket("source")["owner"]
    replica.apply({"op": "bucket.create", "bucket": "far", "owner": owner, "created": 1, "region": "eu-west-1"})
    api = SimpleNamespace(layer=SimpleNamespace(reader=replica.reader))
    with pytest.raises(S3Error) as refused:
        check_target(api, replica.reader.get_bucket("source"), "far")
    assert (refused.value.code, refused.value.message) == ("InvalidTargetBucketForLogging", REGION_MESSAGE)
    replica.create_bucket("near")
    check_target(api, replica.reader.get_bucket("source"), "near")
