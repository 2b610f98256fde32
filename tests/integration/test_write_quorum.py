"""The write quorum comes from placement, not from liveness: a PUT is acknowledged once a
majority of R = min(replicas, registered storage nodes) holders have its bytes, the storage
nodes that are down counted. Run on separated planes (three management voters, three storage
nodes), so stopping storage nodes leaves raft whole and only the quorum can refuse a write.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import S3Connection, wait_for
from test_cluster_data import key_files, stored_record
from test_gossip import DETECTION_DEADLINE, states_seen_by
from test_separated_planes import MANAGEMENT, STORAGE, start_planes, wait_all_alive

from nebulaio.cluster.view import VIEW_TTL
from nebulaio.storage.objects import key_hash

SMALL = 4 * 1024
LARGE = 2 * 1024 * 1024
"""Held in memory below the inline threshold, streamed through temp/ above it."""


def temp_files(node) -> list[str]:
    return os.listdir(node.data / "temp")


def refused_put(node, bucket: str, key: str, size: int) -> bytes:
    """A PUT that must answer 503 ServiceUnavailable; returns the error document."""
    connection = S3Connection(node, timeout=60)
    try:
        status, _, answer = connection.request("PUT", f"/{bucket}/{key}", os.urandom(size))
    finally:
        connection.close()
    assert status == 503 and b"<Code>ServiceUnavailable</Code>" in answer, (status, answer)
    return answer


def assert_absent(nodes, bucket: str, key: str) -> None:
    for node in nodes:
        client = node.client()
        with pytest.raises(ClientError) as missing:
            client.head_object(Bucket=bucket, Key=key)
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert not key_files(nodes, bucket, key)


def test_a_put_before_any_storage_node_registered_is_refused_and_leaves_nothing(cluster_factory):
    management = start_planes(cluster_factory, storage=[])
    try:
        receiver = management[1]
        bucket = f"early-{uuid.uuid4().hex[:12]}"
        receiver.client().create_bucket(Bucket=bucket)
        for size in (SMALL, LARGE):
            answer = refused_put(receiver, bucket, f"early-{size}", size)
            assert b"No storage node" in answer
            assert temp_files(receiver) == []
            assert_absent(management, bucket, f"early-{size}")
    finally:
        for node in management:
            node.stop()


@pytest.fixture(scope="module")
def planes(cluster_factory):
    return start_planes(cluster_factory)


def storage_node(planes, name: str):
    return planes[len(MANAGEMENT) + STORAGE.index(name)]


def test_two_of_three_storage_nodes_down_refuse_every_put(planes):
    receiver = planes[0]
    bucket = f"quorum-{uuid.uuid4().hex[:12]}"
    receiver.client().create_bucket(Bucket=bucket)
    stopped = [storage_node(planes, name) for name in STORAGE[1:]]
    for node in stopped:
        node.stop()
    try:
        # Right after the stop: the holders that are down fail, and one copy is not a quorum.
        for size in (SMALL, LARGE):
            refused_put(receiver, bucket, f"refused-{size}", size)
            assert temp_files(receiver) == []

        # Once gossip has declared them dead they are not even tried, and still count in R.
        def both_dead():
            states = states_seen_by(receiver)
            return all(states.get(name) == "dead" for name in STORAGE[1:])

        wait_for(both_dead, DETECTION_DEADLINE, "both storage nodes declared dead", interval=0.2)
        time.sleep(VIEW_TTL)  # NOTE: by then every worker's cached gossip view is as new
        for size in (SMALL, LARGE):
            assert b"are up" in refused_put(receiver, bucket, f"refused-{size}", size)
            assert temp_files(receiver) == []
    finally:
        for node in stopped:
            node.start()
        wait_all_alive(planes, MANAGEMENT + STORAGE)
        time.sleep(VIEW_TTL)  # NOTE: the workers' cached gossip views see them back too
    survivor = storage_node(planes, STORAGE[0])
    assert_absent(planes, bucket, f"refused-{SMALL}")
    assert_absent(planes, bucket, f"refused-{LARGE}")
    assert temp_files(survivor) == []


def test_one_of_three_storage_nodes_down_leaves_two_copies(planes):
    receiver = planes[2]
    bucket = f"quorum-{uuid.uuid4().hex[:12]}"
    receiver.client().create_bucket(Bucket=bucket)
    stopped = storage_node(planes, STORAGE[2])
    stopped.stop()
    try:
        for size in (SMALL, LARGE):
            key, body = f"accepted-{size}", os.urandom(size)
            receiver.client().put_object(Bucket=bucket, Key=key, Body=body)
            record = stored_record(planes[0], bucket, key)
            assert not record["inline"]
            assert sorted(record["holders"]) == STORAGE[:2]
            holders = [planes.index(storage_node(planes, name)) for name in STORAGE[:2]]
            assert key_files(planes, bucket, key) == dict.fromkeys(holders, [record["vid"]])
            assert not (stopped.data / "objects" / bucket / key_hash(key)).exists()
            for node in planes:
                if node is not stopped:
                    assert node.client().get_object(Bucket=bucket, Key=key)["Body"].read() == body
    finally:
        stopped.start()
    for size in (SMALL, LARGE):  # read from the two holders by the node that missed the write
        assert stopped.client().head_object(Bucket=bucket, Key=f"accepted-{size}")["ContentLength"] == size
