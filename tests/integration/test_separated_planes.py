"""Separated planes, started from the example files in conf/separated-planes/: three
management voters that run raft and serve S3 but hold no object bytes, and three storage
nodes that hold them (R = 3) and follow the log without voting. Flags give each node loopback
addresses and a data directory; its role, node id and replicas come from its file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests
from conftest import REGISTRATION_TIMEOUT, registered, wait_for
from test_cluster_data import key_files, read_everywhere, stored_record
from test_gossip import states_seen_by

CONF = Path(__file__).resolve().parents[2] / "conf" / "separated-planes"
MANAGEMENT = [f"management{n}" for n in (1, 2, 3)]
STORAGE = [f"storage{n}" for n in (1, 2, 3)]
BODY_SIZE = 2 * 1024 * 1024 + 123
"""Larger than the inline threshold (a file of its own) and than the ranged reads check."""


def start_planes(cluster_factory, storage: list[str] = STORAGE) -> list:
    """The management voters and the `storage` nodes, once every node is registered and
    gossip on every node knows every other alive (a node stopped before any peer heard of it
    would never be declared dead)."""
    nodes = cluster_factory(
        len(MANAGEMENT),
        storage=len(storage),
        configs=[CONF / f"{name}.toml" for name in MANAGEMENT + storage],
        # The files advertise their machines' addresses; here every node is on loopback.
        advertise=lambda position, node: {"internal": f"127.0.0.1:{node.ports['internal']}"},
    )
    wait_all_alive(nodes, MANAGEMENT + storage)
    return nodes


def wait_all_alive(nodes, names: list[str]) -> None:
    """Until gossip on every node in `nodes` holds each of `names` alive."""
    for node in nodes:
        wait_for(
            lambda node=node: states_seen_by(node) == dict.fromkeys(names, "alive"),
            REGISTRATION_TIMEOUT,
            "every member alive in gossip",
        )


@pytest.fixture(scope="module")
def planes(cluster_factory):
    return start_planes(cluster_factory)


def raft_of(node) -> dict:
    return requests.get(node.admin_url + "/health/ready", timeout=10).json()["raft"]


def test_every_node_is_ready_in_the_role_its_file_gives(planes):
    for node in planes:
        assert requests.get(node.admin_url + "/health/ready", timeout=10).status_code == 200
    roles = {node["id"]: node["role"] for node in registered(planes[0])}
    assert roles == dict.fromkeys(MANAGEMENT, "management") | dict.fromkeys(STORAGE, "storage")
    voters = {f"127.0.0.1:{node.ports['raft']}" for node in planes[: len(MANAGEMENT)]}
    assert {raft_of(node)["leader"] for node in planes} <= voters
    assert {raft_of(node)["state"] for node in planes[len(MANAGEMENT) :]} == {"follower"}


def test_a_put_through_a_management_node_lands_only_on_the_storage_nodes(planes):
    management = planes[: len(MANAGEMENT)]
    bucket = f"planes-{uuid.uuid4().hex[:12]}"
    management[0].client().create_bucket(Bucket=bucket)
    storage_positions = list(range(len(MANAGEMENT), len(planes)))
    for number, writer in enumerate(management):
        key, body = f"through-{MANAGEMENT[number]}", os.urandom(BODY_SIZE)
        writer.client().put_object(Bucket=bucket, Key=key, Body=body)
        record = stored_record(planes[0], bucket, key)
        assert sorted(record["holders"]) == STORAGE  # R = 3 copies, on the storage plane only
        assert key_files(planes, bucket, key) == dict.fromkeys(storage_positions, [record["vid"]])
        read_everywhere(planes, bucket, key, body)
    for node in management:  # no management node holds a byte of any object
        assert not any(files for _, _, files in os.walk(node.data / "objects"))
