"""Log compaction and catching up past it: members that missed compacted entries fetch an image.

The cluster compacts its log after a few dozen entries or half a second, so every test here
runs through several compactions: a node stopped meanwhile, a storage node that joins late,
and a node whose disk was replaced can only catch up from an image of a peer's replica,
fetched over the internal endpoint, since the entries they missed are gone.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import shutil
import socket
import struct
import threading
import time
import uuid

import pytest
import requests
from conftest import CLUSTER_SECRET, wait_for
from pysyncobj.journal import LAST_RECORD_OFFSET_OFFSET
from test_cluster import leader_of, put_with_retries

from nebulaio.cluster.journal import ZERO_STEP
from nebulaio.cluster.peers import PeerClient
from nebulaio.cluster.raft import read_dump
from nebulaio.meta import open_env
from nebulaio.meta.snapshot import ReplicaImages
from nebulaio.util.purposekeys import PEER_SIGNING, KeyRing

SNAPSHOT_ARGS = ["--snapshot-entries", "40", "--snapshot-interval", "0.5"]
CATCH_UP = 120.0
OBJECTS_PER_ROUND = 30
ACKNOWLEDGED = 150
INSTALLED = "installed an image at raft index"
RETRY_FOR = 2.0
CUT_AFTER = 16 * 1024
"""Bytes a cutting proxy lets through from the node before it breaks the connection."""
RAFT_BYTES_PER_OBJECT = 1024


@pytest.fixture(scope="module")
def trio(cluster_factory):
    return cluster_factory(3, args=SNAPSHOT_ARGS)


def raft_status(node) -> dict:
    return requests.get(node.admin_url + "/health/ready", timeout=5).json()["raft"]


def dump_index(node) -> int:
    """The raft index of the node's newest dump (0 before its first compaction)."""
    try:
        with open(node.data / "metadata" / "raft" / "dump", "rb") as dump:
            return read_dump(dump).index
    except FileNotFoundError:
        return 0


def wait_compacted_to(nodes, index: int) -> None:
    """Until every node's newest dump is at `index` or later (its log keeps entries from dump - 1 on)."""
    wait_for(lambda: all(dump_index(node) >= index for node in nodes), CATCH_UP, f"a dump at {index}")


def write_round(client, tag: str, number: int) -> None:
    """Buckets, inline objects, deletes, versions and delete markers, uploads, tags: ~60 entries."""
    bucket = f"snap-{tag}-{number}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "round", "Value": str(number)}]})
    for n in range(OBJECTS_PER_ROUND):
        client.put_object(Bucket=bucket, Key=f"dir{n % 3}/key{n}", Body=f"{number}/{n};".encode() * (n + 1))
    for n in range(0, OBJECTS_PER_ROUND, 6):
        client.delete_object(Bucket=bucket, Key=f"dir{n % 3}/key{n}")
    client.put_object_tagging(Bucket=bucket, Key="dir1/key1", Tagging={"TagSet": [{"Key": "t", "Value": tag}]})
    versioned = f"snap-{tag}-versioned"
    if number == 0:
        client.create_bucket(Bucket=versioned)
        client.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    for version in range(3):
        client.put_object(Bucket=versioned, Key="doc", Body=f"doc {number}.{version}".encode())
    client.delete_object(Bucket=versioned, Key="doc")
    client.put_object(Bucket=versioned, Key=f"other/{number}", Body=b"other")
    for upload in range(3):
        started = client.create_multipart_upload(Bucket=bucket, Key=f"mp/{upload}")
        client.upload_part(
            Bucket=bucket, Key=f"mp/{upload}", UploadId=started["UploadId"], PartNumber=1, Body=b"part" * upload
        )


def view(client, tag: str) -> dict:
    """Everything a client sees of the buckets named with `tag`, and the bytes of every inline object."""
    seen: dict = {}
    for bucket in (entry["Name"] for entry in client.list_buckets()["Buckets"] if tag in entry["Name"]):
        objects = [
            (item["Key"], item["ETag"], item["Size"])
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        ]
        versions = [
            (item["Key"], item["VersionId"], item["IsLatest"], item.get("ETag"))
            for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket)
            for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        uploads = [
            (item["Key"], item["UploadId"], [part["ETag"] for part in parts(client, bucket, item)])
            for item in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        ]
        bodies = {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key, _, _ in objects}
        try:
            tags = client.get_bucket_tagging(Bucket=bucket)["TagSet"]
        except client.exceptions.ClientError:
            tags = None
        seen[bucket] = {"objects": objects, "versions": versions, "uploads": uploads, "bodies": bodies, "tags": tags}
    return seen


def parts(client, bucket: str, upload: dict) -> list[dict]:
    return client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", [])


def test_a_node_stopped_through_compactions_catches_up_from_a_snapshot(trio):
    tag = uuid.uuid4().hex[:8]
    leader = wait_for(lambda: leader_of(trio), CATCH_UP, "a leader")
    stopped = next(node for node in trio if node is not leader)
    running = [node for node in trio if node is not stopped]
    client = leader.client()
    write_round(client, tag, 0)
    wait_for(lambda: raft_status(stopped)["lastApplied"] >= raft_status(leader)["commitIndex"], CATCH_UP, "replica")
    stopped_at = raft_status(stopped)["lastApplied"]
    stopped.stop()
    dumps = set()
    for number in range(1, 4):
        write_round(running[number % 2].client(), tag, number)
        dumps.add(dump_index(leader))
        wait_compacted_to(running, raft_status(leader)["commitIndex"])
    assert len(dumps | {dump_index(leader)}) >= 3, "the log compacted several times"
    assert dump_index(leader) > stopped_at + 100

    stopped.start()  # the same data directory: no manual step
    assert INSTALLED in stopped.log_path.read_text()
    expected = view(leader.client(), tag)
    assert view(stopped.client(), tag) == expected
    assert len(expected) == 5


def test_a_new_storage_node_joins_after_compaction(trio, node_factory):
    tag = uuid.uuid4().hex[:8]
    client = trio[0].client()
    for number in range(2):
        write_round(client, tag, number)
    wait_compacted_to(trio, raft_status(trio[0])["commitIndex"])
    peers = ",".join(f"127.0.0.1:{node.ports['raft']}" for node in trio)
    late = node_factory(
        args=[*SNAPSHOT_ARGS, "--raft-peers", peers, "--role", "storage", "--node-id", f"late-{tag}"],
        extra_env={"NEBULAIO_CLUSTER_SECRET": CLUSTER_SECRET},
    )
    try:
        assert INSTALLED in late.log_path.read_text()
        assert view(late.client(), tag) == view(client, tag)
        # The log goes on after the snapshot: a write anywhere is read on the new node.
        client.put_object(Bucket=f"snap-{tag}-0", Key="after", Body=b"after the snapshot")
        assert late.client().get_object(Bucket=f"snap-{tag}-0", Key="after")["Body"].read() == b"after the snapshot"
    finally:
        late.stop()


def test_a_node_that_lost_its_replica_but_kept_its_log_fetches_one_from_a_peer(trio):
    """Its own dump names a replica index its replica no longer holds: it fetches an image, then
    applies its journal's tail on top."""
    tag = uuid.uuid4().hex[:8]
    client = trio[0].client()
    write_round(client, tag, 0)
    wait_compacted_to(trio, raft_status(trio[0])["commitIndex"])
    write_round(client, tag, 1)  # entries after the dump: the journal's tail
    lost = trio[2]
    installs_before = lost.log_path.read_text().count(INSTALLED)
    lost.stop()
    shutil.rmtree(lost.data / "metadata" / "kv")
    lost.start()
    assert lost.log_path.read_text().count(INSTALLED) > installs_before
    assert view(lost.client(), tag) == view(client, tag)


def raft_dir_size(node) -> int:
    raft_dir = node.data / "metadata" / "raft"
    return sum(entry.stat().st_size for entry in raft_dir.iterdir() if entry.is_file())


def put_acknowledged(client, bucket: str, prefix: str, count: int) -> dict[str, bytes]:
    bodies = {f"{prefix}/{n}": f"{prefix}:{n};".encode() * 40 for n in range(count)}
    for key, body in bodies.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return bodies


def replace_disk(node) -> None:
    """What an operator does: kill the node's processes, empty its data directory, start it at once."""
    node.kill_group()
    shutil.rmtree(node.data)
    node.start(wait=False)


def assert_rejoined(node, running, bucket: str, acknowledged: dict[str, bytes]) -> None:
    node.wait_ready(CATCH_UP)
    leader = wait_for(lambda: leader_of(running + [node]), CATCH_UP, "a leader")
    wait_for(
        lambda: raft_status(node)["lastApplied"] >= raft_status(leader)["commitIndex"], CATCH_UP, "the replaced replica"
    )
    assert INSTALLED in node.log_path.read_text()
    client = node.client()
    for key, body in acknowledged.items():
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
    listed = {
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    }
    assert listed == set(acknowledged)
    # The log goes on after the image: a write anywhere is read on the replaced node.
    running[0].client().put_object(Bucket=bucket, Key="after", Body=b"after the image")
    assert client.get_object(Bucket=bucket, Key="after")["Body"].read() == b"after the image"


@pytest.mark.parametrize("role", ["leader", "follower"])
def test_a_node_whose_disk_was_replaced_rejoins_with_every_acknowledged_object(trio, role):
    leader = wait_for(lambda: leader_of(trio), CATCH_UP, "a leader")
    replaced = leader if role == "leader" else next(node for node in trio if node is not leader)
    running = [node for node in trio if node is not replaced]
    bucket = f"replaced-{role}-{uuid.uuid4().hex[:8]}"
    client = running[0].client()
    client.create_bucket(Bucket=bucket)
    acknowledged = put_acknowledged(client, bucket, "before", 60)
    wait_compacted_to(trio, raft_status(leader)["commitIndex"])

    replace_disk(replaced)
    deadline = time.monotonic() + CATCH_UP
    for n in range(40):  # writes go on while the node is away and while it catches up
        key, body = f"during/{n}", f"during:{n};".encode() * 40
        assert put_with_retries(running[n % 2].client(), bucket, key, body, deadline), key
        acknowledged[key] = body
    assert_rejoined(replaced, running, bucket, acknowledged)
    assert replaced.process.poll() is None, replaced.log_tail()


def test_an_image_transfer_cut_midway_resumes_where_it_stopped(trio, tmp_path):
    proxy = CuttingProxy(("127.0.0.1", trio[0].ports["internal"]), CUT_AFTER)
    try:
        image_path = str(tmp_path / "image.mdb")
        image = PeerClient(KeyRing.of([CLUSTER_SECRET], PEER_SIGNING), "test-fetcher").fetch_image(
            proxy.address, 1, image_path
        )
    finally:
        proxy.close()
    assert image["size"] > 4 * CUT_AFTER, "the image is large enough to be cut several times"
    assert proxy.connections > image["size"] // CUT_AFTER, "every piece came over a new connection"
    # Resumed, not restarted: little more than the image itself came through.
    assert proxy.forwarded < image["size"] + proxy.connections * 1024
    assert os.path.getsize(image_path) == image["size"]
    env = open_env(str(tmp_path / "kv"), readonly=False)
    try:
        assert ReplicaImages(env).install(image_path) == image["index"] >= 1
    finally:
        env.close()


def test_the_raft_directory_stays_small_whatever_is_stored(node_factory):
    node = node_factory(args=SNAPSHOT_ARGS)
    try:
        client = node.client()
        client.create_bucket(Bucket="small-raft")
        stored = len(put_acknowledged(client, "small-raft", "object", 300))
        wait_compacted_to([node], raft_status(node)["commitIndex"])
        raft_dir = node.data / "metadata" / "raft"
        journal_size = (raft_dir / "journal").stat().st_size
        with open(raft_dir / "journal", "rb") as journal:
            journal.seek(LAST_RECORD_OFFSET_OFFSET)
            journal_used = struct.unpack("<I", journal.read(4))[0]
        assert raft_dir_size(node) - journal_size + journal_used <= RAFT_BYTES_PER_OBJECT * stored
        # Past its last entry the journal holds zeroed space it writes into next: a step at most.
        assert journal_size - journal_used <= ZERO_STEP + journal_used
        assert (node.data / "metadata" / "raft" / "dump").stat().st_size < 16 * 1024
    finally:
        node.stop()


def test_a_small_body_rides_the_log_as_its_own_bytes(node_factory):
    """A lone node's inline body is in its journal byte for byte: with PySyncObj's own pickle
    protocol (2), 4 KiB of random bytes went in as about 6 KiB of text."""
    node = node_factory()
    try:
        client = node.client()
        client.create_bucket(Bucket="log-bytes")
        body = os.urandom(4096)
        client.put_object(Bucket="log-bytes", Key="small", Body=body)
        assert body in (node.data / "metadata" / "raft" / "journal").read_bytes()
    finally:
        node.stop()


class CuttingProxy:
    """A TCP proxy on loopback that breaks each connection once `cut_after` bytes came back through it."""

    def __init__(self, upstream: tuple[str, int], cut_after: int):
        self._upstream = upstream
        self._cut_after = cut_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        self.forwarded = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with client, socket.create_connection(self._upstream) as upstream:
                self._pump(client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        budget = self._cut_after
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while budget > 0 and not self._closed.is_set():
                for key, _ in selector.select(0.1):
                    data = key.fileobj.recv(min(65536, budget) if key.fileobj is upstream else 65536)
                    if not data:
                        return
                    if key.fileobj is upstream:
                        budget -= len(data)
                        self.forwarded += len(data)
                    key.data.sendall(data)

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self._listener.close()


def test_killing_every_node_loses_no_acknowledged_write(trio):
    bucket = f"snap-crash-{uuid.uuid4().hex[:8]}"
    trio[0].client().create_bucket(Bucket=bucket)
    acknowledged: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(number: int) -> None:
        client = trio[number % 3].client()
        sequence = 0
        while not stop.is_set():
            key, body = f"w{number}/{sequence}", f"{number}:{sequence}".encode() * 20
            if put_with_retries(client, bucket, key, body, time.monotonic() + RETRY_FOR):
                with lock:
                    acknowledged[key] = body
                sequence += 1

    first_dumps = [dump_index(node) for node in trio]
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: (
            len(acknowledged) > ACKNOWLEDGED and all(dump_index(n) > d for n, d in zip(trio, first_dumps, strict=True))
        ),
        CATCH_UP,
        "writes through a compaction on every node",
    )
    for node in trio:  # SIGKILL, every process of every node, while the writes go on
        node.kill_group()
    stop.set()
    for thread in threads:
        thread.join(30)
    for node in trio:
        node.start(wait=False)
    for node in trio:
        node.wait_ready()
    expected = {key: f'"{hashlib.md5(body).hexdigest()}"' for key, body in acknowledged.items()}
    for node in trio:
        listed = {
            item["Key"]: item["ETag"]
            for page in node.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        }
        assert expected.items() <= listed.items(), node.ports
    client = trio[0].client()
    for key, body in acknowledged.items():
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
