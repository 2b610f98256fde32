"""Object bytes in a cluster: placed on R holders whatever their size (never in the log or
the metadata replicas), readable byte for byte from every node, surviving a stopped holder,
refused without a write quorum, freed everywhere on delete, and moved between nodes only by
calls signed with the cluster secret.
"""

from __future__ import annotations

import hashlib
import http.client
import mmap
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from botocore.exceptions import ClientError
from conftest import CLUSTER_SECRET, S3Connection, wait_for

from nebulaio.cluster import signing
from nebulaio.cluster.ipc import SupervisorClient
from nebulaio.cluster.peers import file_path
from nebulaio.cluster.placement import placement
from nebulaio.meta import MetaReader, open_env
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import key_hash
from nebulaio.util.ids import version_id
from nebulaio.util.purposekeys import PEER_SIGNING, derive

MIB = 1024 * 1024
SMALL = 4 * 1024
"""Below the inline threshold: a body a lone node keeps inside its record."""
REPLICAS = 3


def stored_record(node, bucket: str, key: str) -> dict:
    """A key's record in a node's replica, once that replica has applied it (reading LMDB
    directly has no read fence)."""

    def lookup():
        env = open_env(str(node.data / "metadata" / "kv"), readonly=True)
        try:
            found = MetaReader(env).get_object(bucket, key)
            return None if found is None else found[0]
        finally:
            env.close()

    return wait_for(lookup, 30, f"{key} in the replica")


def ready_cluster(cluster_factory, storage: int):
    return cluster_factory(3, storage=storage)


@pytest.fixture(scope="module")
def trio(cluster_factory):
    return ready_cluster(cluster_factory, storage=0)


@pytest.fixture(scope="module")
def five(cluster_factory):
    """Three hybrid voters and two storage nodes: R = 3 of 5 holders."""
    return ready_cluster(cluster_factory, storage=2)


@pytest.fixture(params=["trio", "five"])
def cluster(request):
    return request.getfixturevalue(request.param)


def new_bucket(nodes) -> str:
    name = f"data-{uuid.uuid4().hex[:16]}"
    nodes[0].client().create_bucket(Bucket=name)
    return name


def holding(nodes, bucket: str, key: str, name: str) -> list[int]:
    """Positions of the nodes with the file `name` of `key` on disk."""
    return [
        position
        for position, node in enumerate(nodes)
        if os.path.exists(node.data / "objects" / bucket / key_hash(key) / name)
    ]


def key_files(nodes, bucket: str, key: str) -> dict[int, list[str]]:
    """Every file of a key on every node that has one, by node position."""
    found = {}
    for position, node in enumerate(nodes):
        directory = node.data / "objects" / bucket / key_hash(key)
        if directory.exists() and os.listdir(directory):
            found[position] = sorted(os.listdir(directory))
    return found


def read_everywhere(nodes, bucket: str, key: str, body: bytes) -> None:
    for node in nodes:
        client = node.client()
        got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.md5(got).hexdigest() == hashlib.md5(body).hexdigest(), node.ports
        ranged = client.get_object(Bucket=bucket, Key=key, Range="bytes=1000-300999")["Body"].read()
        assert ranged == body[1000:301000], node.ports
        assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)


def check_holders(nodes, bucket: str, key: str) -> list[int]:
    """The recorded holders are R nodes, exactly the ones with the file on disk."""
    record = stored_record(nodes[0], bucket, key)
    on_disk = holding(nodes, bucket, key, record["vid"])
    assert len(record["holders"]) == REPLICAS
    assert sorted(f"node{position}" for position in on_disk) == sorted(record["holders"])
    return on_disk


def test_an_object_put_on_any_node_is_read_on_every_node(cluster):
    bucket = new_bucket(cluster)
    for position, node in enumerate(cluster):
        key, body = f"object-{position}", os.urandom(MIB + position)
        node.client().put_object(Bucket=bucket, Key=key, Body=body)
        read_everywhere(cluster, bucket, key, body)
        check_holders(cluster, bucket, key)


def files_containing(nodes, needle: bytes) -> dict[int, list[str]]:
    """Every file under each node's data directory whose bytes include `needle` (its raft
    journal and dumps, its LMDB replica, its object files), by node position."""
    found = {}
    for position, node in enumerate(nodes):
        for directory, _, names in os.walk(node.data):
            for name in names:
                path = os.path.join(directory, name)
                if not os.path.isfile(path) or os.path.getsize(path) == 0:
                    continue
                with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    if mapped.find(needle) >= 0:
                        found.setdefault(position, []).append(os.path.relpath(path, node.data))
    return found


def test_a_small_object_is_stored_only_on_its_holders_never_in_the_log_or_the_replicas(cluster):
    bucket = new_bucket(cluster)
    body = os.urandom(SMALL)
    cluster[-1].client().put_object(Bucket=bucket, Key="small", Body=body)
    for node in cluster:
        assert node.client().get_object(Bucket=bucket, Key="small")["Body"].read() == body
        record = stored_record(node, bucket, "small")  # every replica has applied it
    assert not record["inline"]
    on_disk = check_holders(cluster, bucket, "small")
    version_file = os.path.join("objects", bucket, key_hash("small"), record["vid"])
    assert files_containing(cluster, body) == dict.fromkeys(on_disk, [version_file])


def plant_inline_record(node, bucket: str, key: str, body: bytes) -> None:
    """Commit a record with its bytes inline, as a node that ran alone wrote it before it
    joined a cluster (through the supervisor's socket: the S3 API of a cluster writes none)."""
    node.client().put_object(Bucket=bucket, Key=f"{key}-template", Body=b"")
    template = stored_record(node, bucket, f"{key}-template")
    record = {name: value for name, value in template.items() if name not in ("seq", "version", "holders")}
    record.update(key=key, vid=version_id(), size=len(body), etag=hashlib.md5(body).hexdigest(), checksums={})
    record["inline"] = True
    command = {"op": "object.put", "bucket": bucket, "record": record}
    supervisor = SupervisorClient(DataLayout(str(node.data)).ipc_socket)
    assert supervisor.call({"type": "submit", "command": command}, body)["status"] == "ok"


def test_an_inline_record_reads_on_every_node_and_its_copy_is_placed(five):
    bucket = new_bucket(five)
    body = os.urandom(SMALL)
    plant_inline_record(five[0], bucket, "legacy", body)
    for node in five:
        assert node.client().get_object(Bucket=bucket, Key="legacy")["Body"].read() == body
    five[3].client().copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "legacy"})
    record = stored_record(five[0], bucket, "copy")
    assert not record["inline"] and record["etag"] == hashlib.md5(body).hexdigest()
    check_holders(five, bucket, "copy")
    for node in five:
        assert node.client().get_object(Bucket=bucket, Key="copy")["Body"].read() == body


def test_placement_is_the_rendezvous_order_of_the_storage_nodes(five):
    bucket = new_bucket(five)
    five[4].client().put_object(Bucket=bucket, Key="placed", Body=os.urandom(MIB))
    record = stored_record(five[1], bucket, "placed")
    chosen, _ = placement([f"node{n}" for n in range(5)], record["vid"], REPLICAS)
    assert record["holders"] == chosen


def test_a_multipart_object_is_assembled_on_its_holders(five):
    bucket = new_bucket(five)
    key = "multipart/twenty"
    parts = [os.urandom(5 * MIB) for _ in range(4)]
    upload = five[0].client().create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = []
    for number, body in enumerate(parts, start=1):
        sender = five[number % len(five)].client()  # every part through another node
        etags.append(sender.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"])
    # Every part of the upload is on the same R holders.
    files = key_files(five, bucket, key)
    assert len(files) == REPLICAS and all(len(names) == len(parts) for names in files.values()), files
    five[3].client().complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]},
    )
    whole = b"".join(parts)
    read_everywhere(five, bucket, key, whole)
    check_holders(five, bucket, key)
    for node in five:
        got = node.client().get_object(Bucket=bucket, Key=key, PartNumber=3)
        assert got["Body"].read() == parts[2]
    # The parts' files are freed on every holder once the object is built.
    record = stored_record(five[0], bucket, key)
    wait_for(
        lambda: all(files == [record["vid"]] for files in key_files(five, bucket, key).values()),
        30,
        "the part files to be freed",
    )


def test_copies_read_their_source_from_a_holder_and_go_to_their_own_holders(five):
    bucket = new_bucket(five)
    body = os.urandom(6 * MIB)
    five[0].client().put_object(Bucket=bucket, Key="source", Body=body)
    source_holders = check_holders(five, bucket, "source")
    outsider = next(position for position in range(5) if position not in source_holders)
    client = five[outsider].client()
    client.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "source"})
    read_everywhere(five, bucket, "copy", body)
    check_holders(five, bucket, "copy")

    upload = client.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    copied = [
        client.upload_part_copy(
            Bucket=bucket,
            Key="assembled",
            UploadId=upload,
            PartNumber=number,
            CopySource={"Bucket": bucket, "Key": "source"},
            CopySourceRange=byte_range,
        )["CopyPartResult"]["ETag"]
        for number, byte_range in ((1, f"bytes=0-{MIB * 5 - 1}"), (2, f"bytes={MIB * 5}-{len(body) - 1}"))
    ]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(copied, start=1)]},
    )
    read_everywhere(five, bucket, "assembled", body)
    check_holders(five, bucket, "assembled")


def test_deleting_frees_the_bytes_on_every_holder(cluster):
    bucket = new_bucket(cluster)
    cluster[-1].client().put_object(Bucket=bucket, Key="doomed", Body=os.urandom(2 * MIB))
    assert len(check_holders(cluster, bucket, "doomed")) == REPLICAS
    cluster[1].client().delete_object(Bucket=bucket, Key="doomed")
    wait_for(lambda: not key_files(cluster, bucket, "doomed"), 30, "every holder to free the bytes")
    for node in cluster:
        with pytest.raises(ClientError):
            node.client().head_object(Bucket=bucket, Key="doomed")


def signed_headers(node, method: str, path: str, secret: str = CLUSTER_SECRET, when: float | None = None) -> dict:
    """Headers of a call signed for `node`'s inter-node listener."""
    target = f"127.0.0.1:{node.ports['internal']}"
    return signing.sign(
        derive(secret, PEER_SIGNING), method, path, "node9", time.time() if when is None else when, target
    )


def raw_secret_signed(node, method: str, path: str) -> dict:
    target = f"127.0.0.1:{node.ports['internal']}"
    return signing.sign(CLUSTER_SECRET.encode(), method, path, "node9", time.time(), target)


def test_internal_calls_need_the_cluster_secret(trio):
    bucket = new_bucket(trio)
    body = os.urandom(64 * 1024)
    trio[0].client().put_object(Bucket=bucket, Key="guarded", Body=body)
    vid = stored_record(trio[0], bucket, "guarded")["vid"]
    existing = file_path(bucket, key_hash("guarded"), vid)
    planted = file_path(bucket, key_hash("planted"), uuid.uuid4().hex)
    url = trio[1].internal_url
    stale = time.time() - 3600
    refused = [
        requests.put(url + planted, data=b"forged", timeout=10),
        requests.put(
            url + planted, data=b"forged", headers=signed_headers(trio[1], "PUT", planted, "wrong secret"), timeout=10
        ),
        requests.put(
            url + planted, data=b"forged", headers=signed_headers(trio[1], "PUT", planted, when=stale), timeout=10
        ),
        requests.put(url + planted, data=b"forged", headers=signed_headers(trio[1], "PUT", existing), timeout=10),
        # The cluster secret itself is no signing key: only the key derived from it for peers is.
        requests.put(url + planted, data=b"forged", headers=raw_secret_signed(trio[1], "PUT", planted), timeout=10),
        requests.put(url + existing, data=b"forged", headers=signed_headers(trio[1], "GET", existing), timeout=10),
        requests.delete(url + existing, timeout=10),
        requests.get(url + existing, timeout=10),
    ]
    assert [answer.status_code for answer in refused] == [403] * len(refused)
    assert not key_files(trio, bucket, "planted")
    for node in trio:
        assert node.client().get_object(Bucket=bucket, Key="guarded")["Body"].read() == body
    # The same call signed with the secret is served: the signature is what was refused.
    answer = requests.get(
        url + existing, headers=dict(signed_headers(trio[1], "GET", existing), range="bytes=0-99"), timeout=10
    )
    assert answer.status_code == 206 and answer.content == body[:100]
    # A signed call still names only object files (sent raw: a client would fold the dots).
    for outside in (file_path("..", key_hash("x"), vid), file_path(bucket, "..", vid), file_path(bucket, "..", "..")):
        conn = http.client.HTTPConnection("127.0.0.1", trio[1].ports["internal"], timeout=10)
        conn.request("PUT", outside, body=b"x", headers=signed_headers(trio[1], "PUT", outside))
        assert conn.getresponse().status in (400, 404), outside
        conn.close()


def http_processes(node) -> list[psutil.Process]:
    """The node's gunicorn arbiter and workers (its S3, admin and internal listeners)."""
    found = []
    for pid in node.group_pids():
        try:
            process = psutil.Process(pid)
            if "nebulaio http" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def test_a_put_without_a_write_quorum_is_refused_and_leaves_nothing(trio):
    """Two of three holders stop answering (their HTTP processes frozen; raft goes on)."""
    bucket = new_bucket(trio)
    frozen = [process for node in trio[1:] for process in http_processes(node)]
    assert frozen
    for process in frozen:
        process.send_signal(signal.SIGSTOP)
    try:
        connection = S3Connection(trio[0], timeout=60)
        status, _, answer = connection.request("PUT", f"/{bucket}/lonely", os.urandom(MIB))
        connection.close()
        assert status == 503 and b"<Code>ServiceUnavailable</Code>" in answer
        assert 0 not in key_files(trio, bucket, "lonely")  # the copy that was made is removed
    finally:
        for process in frozen:
            process.send_signal(signal.SIGCONT)
    for node in trio:
        client = node.client()
        with pytest.raises(ClientError) as missing:
            client.head_object(Bucket=bucket, Key="lonely")
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_reads_go_on_from_the_other_holders_when_one_stops(five):
    bucket = new_bucket(five)
    # A key whose first holder is a storage node, so stopping it keeps every voter up and
    # makes every reader that is not a holder fall back past it.
    for attempt in range(40):
        key, body = f"sturdy-{attempt}", os.urandom(MIB)
        five[0].client().put_object(Bucket=bucket, Key=key, Body=body)
        first = stored_record(five[0], bucket, key)["holders"][0]
        if first in ("node3", "node4"):
            break
    else:
        pytest.fail("no key had a storage node as its first holder")
    stopped = five[int(first.removeprefix("node"))]
    stopped.stop()
    try:
        live = [node for node in five if node is not stopped]
        with ThreadPoolExecutor(len(live)) as pool:
            list(pool.map(lambda node: read_everywhere([node], bucket, key, body), live))
    finally:
        stopped.start()
