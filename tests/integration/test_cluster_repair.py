"""The repair loop on real clusters: a holder that was down, a holder whose data directory was
wiped and a storage node that joins all end with every file on exactly its R wanted holders,
and the nodes report their progress in the Admin API and /metrics.
"""

from __future__ import annotations

import os
import shutil

import pytest
import requests
from conftest import CLUSTER_SECRET, ROOT_PASSWORD, ROOT_USER, metric_samples, wait_for
from test_cluster_data import holding, new_bucket, ready_cluster, registered

from nebulaio.cluster.placement import placement
from nebulaio.meta import MetaReader, open_env

REPAIR_ARGS = ["--repair-interval", "0.5"]
SIZE = 256 * 1024
REPLICAS = 3
REPAIR_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def trio(cluster_factory):
    return ready_cluster(lambda *args, **kwargs: cluster_factory(*args, args=REPAIR_ARGS, **kwargs), storage=0)


@pytest.fixture(scope="module")
def five(cluster_factory):
    return ready_cluster(lambda *args, **kwargs: cluster_factory(*args, args=REPAIR_ARGS, **kwargs), storage=2)


def record_of(node, bucket: str, key: str) -> dict | None:
    """A key's current record in a node's replica, read as a worker does."""
    env = open_env(str(node.data / "metadata" / "kv"), readonly=True)
    try:
        found = MetaReader(env).get_object(bucket, key)
        return None if found is None else found[0]
    finally:
        env.close()


def settled(nodes, bucket: str, key: str, ids: list[str], down: tuple[str, ...] = ()) -> bool:
    """The key's file is recorded on, and held by, exactly the wanted nodes of `ids` (a node
    that is `down` may stay recorded: only it can give up its copy)."""
    record = record_of(nodes[0], bucket, key)
    if record is None:
        return False
    wanted, _ = placement(ids, record["vid"], REPLICAS)
    on_disk = sorted(f"node{position}" for position in holding(nodes, bucket, key, record["vid"]))
    recorded = sorted(node for node in record["holders"] if node not in down)
    return recorded == sorted(wanted) == on_disk


def repair_figures(node) -> dict:
    """This node's repair figures from the Admin API, once it answers (a busy machine may make
    the supervisor slow to)."""
    login = {"username": ROOT_USER, "password": ROOT_PASSWORD}
    token = requests.post(node.admin_url + "/api/v1/auth/login", json=login, timeout=60).json()["token"]

    def figures():
        response = requests.get(
            node.admin_url + "/api/v1/cluster/repair", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        return response.json() if response.status_code == 200 else None

    return wait_for(figures, 60, "the repair figures")


def test_a_put_while_a_holder_is_down_ends_with_r_copies_once_it_returns(trio):
    bucket = new_bucket(trio)
    body = os.urandom(SIZE)
    away = trio[2]
    away.stop()
    try:
        trio[0].client().put_object(Bucket=bucket, Key="while-away", Body=body)
        record = wait_for(lambda: record_of(trio[0], bucket, "while-away"), 60, "the record")
        assert sorted(record["holders"]) == ["node0", "node1"]
    finally:
        away.start()
    ids = [f"node{position}" for position in range(3)]
    wait_for(lambda: settled(trio, bucket, "while-away", ids), REPAIR_TIMEOUT, "three copies")
    assert away.client().get_object(Bucket=bucket, Key="while-away")["Body"].read() == body
    figures = repair_figures(away)
    assert figures["node"] == "node2" and figures["passes"] >= 1 and figures["copied"] >= 1
    assert figures["bytesMoved"] >= SIZE and figures["checked"] >= 1 and figures["lastPassFinished"]


def test_a_holder_whose_data_directory_is_wiped_gets_its_copies_back(trio):
    bucket = new_bucket(trio)
    keys = [f"wiped-{number}" for number in range(4)]
    for key in keys:
        trio[0].client().put_object(Bucket=bucket, Key=key, Body=os.urandom(SIZE))
    ids = [f"node{position}" for position in range(3)]
    for key in keys:
        wait_for(lambda key=key: settled(trio, bucket, key, ids), REPAIR_TIMEOUT, f"{key} on its holders")
    wiped = trio[1]
    wiped.stop()
    shutil.rmtree(wiped.data / "objects")
    wiped.start()
    for key in keys:
        wait_for(lambda key=key: settled(trio, bucket, key, ids), REPAIR_TIMEOUT, f"{key} back on node1")


def test_a_joining_storage_node_takes_its_share_and_the_others_give_theirs_up(five, node_factory):
    bucket = new_bucket(five)
    keys = [f"share-{number}" for number in range(12)]
    for key in keys:
        five[0].client().put_object(Bucket=bucket, Key=key, Body=os.urandom(SIZE))
    ids = [f"node{position}" for position in range(5)]
    for key in keys:
        wait_for(lambda key=key: settled(five, bucket, key, ids), REPAIR_TIMEOUT, f"{key} on its holders")
    peers = ",".join(f"127.0.0.1:{node.ports['raft']}" for node in five[:3])
    late = node_factory(
        args=[*REPAIR_ARGS, "--raft-peers", peers, "--role", "storage", "--node-id", "node5"],
        extra_env={"NEBULAIO_CLUSTER_SECRET": CLUSTER_SECRET},
    )
    try:
        six = [*five, late]
        wait_for(lambda: len(registered(five[0])) == 6, 60, "the new node registered")
        ids.append("node5")
        for key in keys:
            wait_for(lambda key=key: settled(six, bucket, key, ids), REPAIR_TIMEOUT, f"{key} moved to its new holders")
        taken = [key for key in keys if "node5" in record_of(five[0], bucket, key)["holders"]]
        assert taken, "the new node was wanted for none of the keys"
        samples = metric_samples(late)
        assert samples["nebulaio_repair_copied_total"] >= len(taken)
        assert samples["nebulaio_repair_bytes_total"] >= len(taken) * SIZE
        assert sum(metric_samples(node)["nebulaio_repair_removed_total"] for node in five) >= len(taken)
        for key in keys:
            assert late.client().get_object(Bucket=bucket, Key=key)["ContentLength"] == SIZE
    finally:
        late.stop()
    # With node5 gone, the files it held are copied back to R live holders among the five.
    ids.remove("node5")
    for key in keys:
        wait_for(
            lambda key=key: settled(five, bucket, key, ids, down=("node5",)), REPAIR_TIMEOUT, f"{key} among the five"
        )
