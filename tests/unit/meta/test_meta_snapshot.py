"""Replica images: frozen at one moment whatever is applied after, installed in one transaction."""

import os

from conftest import Replica

from nebulaio.meta import ReplicaImages
from nebulaio.meta.env import DATABASES


def content(env) -> dict[bytes, list[tuple[bytes, bytes]]]:
    """Every named database's items."""
    with env.begin() as txn:
        return {name: list(txn.cursor(db=env.open_db(name, txn=txn))) for name in DATABASES}


def write_image(frozen, path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        frozen.write(fd)
    finally:
        frozen.close()
        os.close(fd)


def test_an_image_holds_the_moment_it_was_frozen(replica, tmp_path):
    replica.create_bucket("photos")
    replica.put_keys("photos", [f"a{n}" for n in range(100)])
    expected = content(replica.env)
    frozen = ReplicaImages(replica.env).freeze()
    replica.put_keys("photos", [f"b{n}" for n in range(100)])  # applied after the freeze
    replica.create_bucket("later")
    write_image(frozen, tmp_path / "image.mdb")

    other = Replica(str(tmp_path / "other"))
    other.create_bucket("stale")
    other.put_keys("stale", [f"s{n}" for n in range(50)])
    upload = {"op": "upload.create", "bucket": "stale", "record": {"key": "k", "upload_id": "u1"}}
    assert other.apply(upload) == [{"status": "ok"}]
    ReplicaImages(other.env).install(str(tmp_path / "image.mdb"), raft_index=40)

    installed = content(other.env)
    applied = installed.pop(b"system")
    expected.pop(b"system")
    assert installed == expected
    assert other.reader.applied_index() == 40 and len(applied) == 1
    assert other.reader.get_bucket("stale") is None and other.reader.get_bucket("later") is None
    other.env.close()


def test_a_reader_sees_the_old_replica_or_the_new_one(replica, tmp_path):
    replica.create_bucket("new")
    write_image(ReplicaImages(replica.env).freeze(), tmp_path / "image.mdb")
    other = Replica(str(tmp_path / "other"))
    other.create_bucket("old")
    with other.env.begin() as before:  # a worker in the middle of a request
        ReplicaImages(other.env).install(str(tmp_path / "image.mdb"), raft_index=9)
        buckets = other.env.open_db(b"buckets", txn=before)
        assert [key for key, _ in before.cursor(db=buckets)] == [b"old"]
    assert [bucket["name"] for bucket in other.reader.list_buckets()] == ["new"]
    # Applying goes on from the installed index; replays of older entries are skipped.
    assert other.applier.apply_batch(9, []) is None
    assert other.applier.apply_batch(10, []) == []
    other.env.close()
