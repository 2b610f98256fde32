"""Deterministic apply: result codes, replay by raft index, and release of orphaned bytes."""

from nebulaio.meta import applied_index

BUCKET = "photos"


def create(bucket: str, owner: str = "owner-1") -> dict:
    return {"op": "bucket.create", "bucket": bucket, "owner": owner, "created": 1700000000000, "region": "eu-1"}


def put(replica, key: str, vid: str, inline: bool, blob: bytes | None = None) -> tuple[dict, bytes | None]:
    return {"op": "object.put", "bucket": BUCKET, "record": replica.record(key, vid, inline)}, blob


def test_bucket_create_results(replica):
    results = replica.apply(create(BUCKET), create(BUCKET), create(BUCKET, owner="someone-else"))
    assert [r["status"] for r in results] == ["ok", "BucketAlreadyOwnedByYou", "BucketAlreadyExists"]
    assert replica.reader.get_bucket(BUCKET) == {
        "name": BUCKET,
        "owner": "owner-1",
        "created": 1700000000000,
        "region": "eu-1",
        "versioning": None,
    }


def test_bucket_delete_results(replica):
    replica.create_bucket(BUCKET)
    replica.create_bucket(BUCKET + "-other")
    replica.apply(put(replica, "k", "v1", True, b"x"))
    delete = {"op": "bucket.delete", "bucket": BUCKET}
    assert replica.apply(delete, {"op": "bucket.delete", "bucket": "missing"}) == [
        {"status": "BucketNotEmpty"},
        {"status": "NoSuchBucket"},
    ]
    results = replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "k"}, delete, delete)
    assert [r["status"] for r in results] == ["ok", "ok", "NoSuchBucket"]
    assert replica.reader.get_bucket(BUCKET) is None
    assert [b["name"] for b in replica.reader.list_buckets()] == [BUCKET + "-other"]


def test_put_and_get_inline_and_file_backed(replica):
    replica.create_bucket(BUCKET)
    results = replica.apply(put(replica, "small", "v1", True, b"\0bytes"), put(replica, "large", "v2", False))
    assert results == [{"status": "ok", "version": None}] * 2
    record, inline = replica.reader.get_object(BUCKET, "small")
    assert (record["vid"], inline) == ("v1", b"\0bytes")
    record, inline = replica.reader.get_object(BUCKET, "large")
    assert (record["vid"], inline) == ("v2", None)
    assert replica.reader.get_object(BUCKET, "absent") is None


def test_put_into_missing_bucket(replica):
    assert replica.apply(put(replica, "k", "v1", True)) == [{"status": "NoSuchBucket"}]
    assert replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "k"}) == [{"status": "NoSuchBucket"}]


def test_replacing_and_deleting_release_only_file_backed_versions(replica):
    replica.create_bucket(BUCKET)
    replica.apply(put(replica, "k", "v1", False), put(replica, "i", "v1", True, b"a"))
    assert replica.released == []
    assert replica.apply(put(replica, "k", "v2", True, b"b"), put(replica, "i", "v2", False)) == [
        {"status": "ok", "version": None},
        {"status": "ok", "version": None},
    ]
    assert replica.released == [(BUCKET, "k", "v1")]
    delete_i = {"op": "object.delete", "bucket": BUCKET, "key": "i"}
    assert replica.apply(delete_i, delete_i) == [{"status": "ok"}] * 2
    assert replica.released == [(BUCKET, "k", "v1"), (BUCKET, "i", "v2")]
    assert replica.reader.bucket_is_empty(BUCKET) is False


def test_file_versions_name_what_the_sweeper_must_keep(replica):
    replica.create_bucket(BUCKET)
    replica.create_bucket(BUCKET + "2")
    replica.apply(put(replica, "a", "va", False), put(replica, "b", "vb", True, b"x"), put(replica, "c", "vc", False))
    assert replica.reader.file_versions(BUCKET) == {"va", "vc"}
    assert replica.reader.file_versions(BUCKET + "2") == set()
    assert replica.reader.file_versions("missing") == set()


def test_the_same_version_committed_twice_keeps_its_bytes(replica):
    replica.create_bucket(BUCKET)
    replica.apply(put(replica, "k", "v1", False))
    assert replica.apply(put(replica, "k", "v1", False)) == [{"status": "ok", "version": None}]
    assert replica.released == []


def test_release_runs_after_commit_and_its_failure_is_contained(replica):
    replica.create_bucket(BUCKET)
    replica.apply(put(replica, "k", "v1", False))
    seen = []

    def release(bucket, key, vid):
        seen.append(replica.reader.get_object(bucket, key)[0]["vid"])  # the batch is visible already
        raise OSError("disk gone")

    replica.applier._release = release
    assert replica.apply(put(replica, "k", "v2", False)) == [{"status": "ok", "version": None}]
    assert seen == ["v2"]


def test_replayed_entries_are_skipped(replica):
    assert replica.applier.apply_batch(5, [(create(BUCKET), None)]) == [{"status": "ok"}]
    assert applied_index(replica.env) == replica.reader.applied_index() == 5
    drop = {"op": "bucket.delete", "bucket": BUCKET}
    assert replica.applier.apply_batch(5, [(drop, None)]) is None
    assert replica.applier.apply_batch(3, [(drop, None)]) is None
    assert replica.reader.get_bucket(BUCKET) is not None
    assert replica.applier.apply_batch(6, []) == []
    assert replica.reader.applied_index() == 6


def test_bad_commands_fail_alone(replica, caplog):
    results = replica.apply(
        {"op": "bucket.explode"},
        {"op": "bucket.create", "bucket": "no-owner"},
        create("bad\0name"),
        create(BUCKET),
        ({"op": "object.put", "bucket": BUCKET, "record": replica.record("k", inline=False)}, b"stray"),
        {"op": "object.put", "bucket": BUCKET, "record": {"key": "no-vid"}},
    )
    assert [r["status"] for r in results] == [
        "InvalidRequest",
        "InvalidRequest",
        "InvalidBucketName",
        "ok",
        "InvalidRequest",
        "InvalidRequest",
    ]
    assert replica.reader.bucket_is_empty(BUCKET)
    assert [b["name"] for b in replica.reader.list_buckets()] == [BUCKET]
    assert "unknown command 'bucket.explode'" in caplog.text


def test_bucket_usage_follows_every_change_of_current_versions(replica):
    replica.create_bucket(BUCKET)
    replica.create_bucket(BUCKET + "-empty")

    def put_sized(key: str, vid: str, size: int) -> dict:
        return {"op": "object.put", "bucket": BUCKET, "record": replica.record(key, vid, False, size)}

    replica.apply(put_sized("a", "v1", 10), put_sized("b", "v2", 5), put_sized("a", "v3", 7))
    assert replica.reader.bucket_usage() == {
        BUCKET: {"objects": 2, "bytes": 12},
        BUCKET + "-empty": {"objects": 0, "bytes": 0},
    }
    replica.apply({"op": "bucket.configure", "bucket": BUCKET, "setting": "versioning", "value": "Enabled"})
    replica.apply(put_sized("a", "v4", 100))
    assert replica.reader.bucket_usage()[BUCKET] == {"objects": 2, "bytes": 105}
    (marker,) = replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "a", "mtime": 2})
    assert replica.reader.bucket_usage()[BUCKET] == {"objects": 1, "bytes": 5}
    # Deleting the delete marker makes the version under it current again.
    replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "a", "version": marker["version"]})
    assert replica.reader.bucket_usage()[BUCKET] == {"objects": 2, "bytes": 105}
    current = replica.reader.get_object(BUCKET, "a")[0]["version"]
    replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "a", "version": current})
    assert replica.reader.bucket_usage()[BUCKET] == {"objects": 2, "bytes": 12}
    replica.apply({"op": "bucket.delete", "bucket": BUCKET + "-empty"})
    assert BUCKET + "-empty" not in replica.reader.bucket_usage()


def test_bucket_usage_of_a_replica_older_than_the_counters(replica, tmp_path):
    from nebulaio.meta import Applier

    replica.create_bucket(BUCKET)
    replica.apply(({"op": "object.put", "bucket": BUCKET, "record": replica.record("k", "v1", True, 3)}, b"abc"))
    stats = replica.env.open_db(b"stats")
    with replica.env.begin(write=True) as txn:
        txn.drop(stats, delete=False)
    Applier(replica.env, lambda *version: None)
    assert replica.reader.bucket_usage() == {BUCKET: {"objects": 1, "bytes": 3}}


def test_revoking_tokens_raises_the_users_generation(replica):
    assert replica.reader.token_generation("admin") == 0
    results = replica.apply({"op": "auth.revoke", "user": "admin"}, {"op": "auth.revoke", "user": "admin"})
    assert [r["generation"] for r in results] == [1, 2]
    assert (replica.reader.token_generation("admin"), replica.reader.token_generation("other")) == (2, 0)


def test_a_drain_marks_a_registered_node_once_while_the_nodes_it_needs_remain(replica):
    def register(node_id: str) -> None:
        node = {"id": node_id, "role": "storage", "raft": "", "gossip": "", "internal": f"{node_id}:9005"}
        assert replica.apply({"op": "node.register", "node": node}) == [{"status": "ok"}]

    for node_id in ("a", "b", "c", "d"):
        register(node_id)
    assert replica.apply({"op": "node.drain", "id": "x", "at": 5, "require": []}) == [{"status": "NotFound"}]
    assert replica.apply({"op": "node.drain", "id": "d", "at": 5, "require": ["a", "b", "c"]}) == [
        {"status": "ok", "draining": 5}
    ]
    # Another drain counting on d, or a repeated one, changes nothing.
    refused = replica.apply({"op": "node.drain", "id": "c", "at": 6, "require": ["a", "b", "d"]})
    assert refused[0]["status"] == "Conflict" and "draining" not in replica.reader.nodes.get("c")
    assert replica.apply({"op": "node.drain", "id": "d", "at": 7, "require": []})[0]["draining"] == 5
    register("d")  # a node registering again stays draining
    assert replica.reader.nodes.get("d")["draining"] == 5
    assert replica.apply({"op": "node.drain", "id": "d"}) == [{"status": "InvalidRequest"}]
