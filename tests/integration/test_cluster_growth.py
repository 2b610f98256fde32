"""A node started alone, as the README starts it, grows into a cluster of three with no
restart: two nodes started with --join are added as voters through the Admin API, the
objects it wrote alone are read from every node, and the repair loop records R holders for
them and copies them to those holders, with its progress shown by the Admin API.
"""

from __future__ import annotations

import os
import uuid

import pytest
import requests
from conftest import CLUSTER_SECRET, Node, registered, wait_for
from test_cluster_data import holding, stored_record
from test_cluster_repair import record_of, repair_figures
from test_gossip import gossip_alive, token_of

from nebulaio.cluster.placement import placement

REPAIR_ARGS = ["--repair-interval", "0.5", "--repair-batch", "3"]
"""Passes of three records: a file is reached only if each pass goes on where the last stopped."""
SIZE = 64 * 1024
KEYS = [f"alone-{number}" for number in range(8)]
GROWTH_TIMEOUT = 120.0


def join(tmp_path, lone: Node, name: str, secret: str) -> Node:
    """A voter started with --join toward the lone node, then added through its Admin API."""
    joiner = Node(tmp_path / name / "data", tmp_path / f"{name}.log")
    (tmp_path / name).mkdir()
    joiner.args = [*REPAIR_ARGS, "--node-id", name, "--join", f"127.0.0.1:{lone.ports['gossip']}"]
    joiner.extra_env["NEBULAIO_CLUSTER_SECRET"] = secret
    joiner.start(wait=False)
    wait_for(lambda: gossip_alive(lone, name), GROWTH_TIMEOUT, f"{name} known to the lone node's gossip")
    headers = {"Authorization": f"Bearer {token_of(lone)}"}
    raft_address = f"127.0.0.1:{joiner.ports['raft']}"
    added = requests.post(
        lone.admin_url + "/api/v1/cluster/nodes", json={"raftAddress": raft_address}, headers=headers, timeout=60
    )
    assert added.status_code == 200, added.text
    joiner.wait_ready()
    return joiner


@pytest.mark.parametrize("configured", [True, False], ids=["given-secret", "generated-secret"])
def test_a_lone_node_grows_into_a_cluster_and_replicates_what_it_wrote_alone(node_factory, tmp_path, configured):
    """Started with a cluster secret, or without one: then the joiners are given the one it generated."""
    lone = node_factory(
        args=[*REPAIR_ARGS, "--node-id", "lone"],
        extra_env={"NEBULAIO_CLUSTER_SECRET": CLUSTER_SECRET} if configured else {},
    )
    secret = CLUSTER_SECRET if configured else (lone.data / "metadata" / "cluster-secret").read_text().strip()
    client = lone.client()
    bucket = f"grow-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    bodies = {key: os.urandom(SIZE) for key in KEYS}
    for key, body in bodies.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    assert all("holders" not in record_of(lone, bucket, key) for key in KEYS)

    # A voter that never joined is refused: one voter becoming two would stop every commit.
    headers = {"Authorization": f"Bearer {token_of(lone)}"}
    nobody = requests.post(
        lone.admin_url + "/api/v1/cluster/nodes", json={"raftAddress": "127.0.0.1:1"}, headers=headers, timeout=60
    )
    assert nobody.status_code == 409 and nobody.json()["error"]["code"] == "NotJoined"
    client.put_object(Bucket=bucket, Key="still-alone", Body=b"the lone node still commits")

    joined = []
    try:
        for name in ("grown1", "grown2"):
            joined.append(join(tmp_path, lone, name, secret))
        nodes = [lone, *joined]
        ids = ["lone", "grown1", "grown2"]
        for node in nodes:
            wait_for(lambda node=node: len(registered(node)) == 3, GROWTH_TIMEOUT, "every node registered")

        # Readable from every node at once, before repair has recorded a holder.
        for node in nodes:
            for key, body in bodies.items():
                assert node.client().get_object(Bucket=bucket, Key=key)["Body"].read() == body

        def replicated(key: str) -> bool:
            record = record_of(lone, bucket, key)
            wanted, _ = placement(ids, record["vid"], 3)
            on_disk = sorted(ids[position] for position in holding(nodes, bucket, key, record["vid"]))
            return sorted(record.get("holders", ())) == sorted(wanted) == on_disk

        for key in KEYS:
            wait_for(lambda key=key: replicated(key), GROWTH_TIMEOUT, f"{key} on its three holders")
        figures = repair_figures(lone)
        assert figures["claimed"] >= len(KEYS) and figures["cycles"] >= 1

        # Written after the growth: placed on its holders from the start, readable everywhere.
        grown = os.urandom(SIZE)
        joined[0].client().put_object(Bucket=bucket, Key="grown", Body=grown)
        assert len(stored_record(lone, bucket, "grown")["holders"]) == 3
        for node in nodes:
            assert node.client().get_object(Bucket=bucket, Key="grown")["Body"].read() == grown
            for key, body in bodies.items():
                assert node.client().get_object(Bucket=bucket, Key=key)["Body"].read() == body
    finally:
        for node in joined:
            node.stop()
