"""The read fence of a cluster: raft's read index, confirmed by one round of the leader's pings.

A read on any node (a voter or a storage node) sees every write acknowledged anywhere before
it, yet appends nothing to the raft log; a request refused for its signature costs no round.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import ROOT_PASSWORD, admin_headers, signed_request, wait_for
from faults import leader_of, raft_status


@pytest.fixture(scope="module")
def quartet(cluster_factory):
    """Three voters and a storage node that follows the log without voting, all registered."""
    nodes = cluster_factory(3, storage=1)
    headers = admin_headers(nodes[0])

    def registered() -> bool:
        status = requests.get(nodes[0].admin_url + "/api/v1/cluster/status", headers=headers, timeout=10).json()
        return sum(bool(member["id"]) for member in status["members"]) == len(nodes)

    wait_for(registered, 60, "every node to register")
    return nodes


def test_a_read_anywhere_sees_a_write_acknowledged_elsewhere_just_before(quartet):
    clients = [node.client() for node in quartet]
    bucket = f"fence-{uuid.uuid4().hex[:12]}"
    clients[0].create_bucket(Bucket=bucket)
    for round_number in range(24):
        writer = clients[round_number % len(clients)]
        body = f"round {round_number}".encode()
        writer.put_object(Bucket=bucket, Key="k", Body=body)
        for reader in clients:  # no pause: the reader's replica may lag, the fence closes the gap
            assert reader.get_object(Bucket=bucket, Key="k")["Body"].read() == body
            assert reader.head_object(Bucket=bucket, Key="k")["ContentLength"] == len(body)
    clients[3].delete_object(Bucket=bucket, Key="k")
    for reader in clients:
        with pytest.raises(ClientError) as raised:
            reader.head_object(Bucket=bucket, Key="k")
        assert raised.value.response["Error"]["Code"] == "404"
    clients[1].delete_bucket(Bucket=bucket)


def commit_indexes(nodes) -> list[int]:
    return [raft_status(node)["commitIndex"] for node in nodes]


def test_reads_append_no_raft_entry(quartet):
    client = quartet[0].client()
    bucket = f"fence-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"read me")
    leader = leader_of(quartet[:3])
    assert leader is not None
    rounds = raft_status(leader)["readRounds"]
    before = commit_indexes(quartet)
    for node in quartet:
        reader = node.client()
        for _ in range(10):
            assert reader.get_object(Bucket=bucket, Key="k")["Body"].read() == b"read me"
            reader.head_object(Bucket=bucket, Key="k")
            reader.list_objects_v2(Bucket=bucket)
    assert commit_indexes(quartet) == before
    assert raft_status(leader)["readRounds"] > rounds  # the reads were fenced, by rounds of pings
    client.delete_object(Bucket=bucket, Key="k")
    client.delete_bucket(Bucket=bucket)


def test_a_refused_signature_costs_no_read_round(quartet):
    # The storage node holds no read lease (only voters of three do): its reads take rounds.
    storage, leader = quartet[3], leader_of(quartet[:3])
    rounds = raft_status(leader)["readRounds"]
    for _ in range(5):
        refused = signed_request(storage, "GET", "/", secret_key=ROOT_PASSWORD + "-wrong")
        assert refused.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in refused.text
    assert raft_status(leader)["readRounds"] == rounds
    assert signed_request(storage, "GET", "/").status_code == 200
    assert raft_status(leader)["readRounds"] > rounds


def test_a_key_made_on_one_node_signs_at_once_on_every_other(quartet):
    """An access key this replica does not know yet is looked up again after the fence."""
    creator = quartet[1]
    headers = admin_headers(creator)
    user = f"fence-{uuid.uuid4().hex[:8]}"
    assert requests.post(creator.admin_url + "/api/v1/users", json={"name": user}, headers=headers, timeout=10).ok
    for node in quartet:
        made = requests.post(f"{creator.admin_url}/api/v1/users/{user}/keys", headers=headers, timeout=10).json()
        answer = signed_request(node, "GET", "/", access_key=made["accessKey"], secret_key=made["secretKey"])
        # Known and verified: the user has no policy yet, so it is denied, not unknown.
        assert "<Code>AccessDenied</Code>" in answer.text, answer.text
        deleted = requests.delete(f"{creator.admin_url}/api/v1/keys/{made['accessKey']}", headers=headers, timeout=10)
        assert deleted.status_code == 204
        answer = signed_request(node, "GET", "/", access_key=made["accessKey"], secret_key=made["secretKey"])
        assert "<Code>InvalidAccessKeyId</Code>" in answer.text, answer.text
