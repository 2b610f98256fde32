"""Replica images: frozen at one moment whatever is applied after, installed in one transaction."""

import os

import pytest
from conftest import Replica

from nebulaio.meta import ImageShelf, ReplicaImages
from nebulaio.meta.env import DATABASES
from nebulaio.meta.snapshot import FrozenReplica, ImageBehind, image_digest


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
    frozen = FrozenReplica(replica.env)
    applied = replica.reader.applied_index()
    replica.put_keys("photos", [f"b{n}" for n in range(100)])  # applied after the freeze
    replica.create_bucket("later")
    write_image(frozen, tmp_path / "image.mdb")

    other = Replica(str(tmp_path / "other"))
    other.create_bucket("stale")
    other.put_keys("stale", [f"s{n}" for n in range(50)])
    upload = {"op": "upload.create", "bucket": "stale", "record": {"key": "k", "upload_id": "u1"}}
    assert other.apply(upload) == [{"status": "ok"}]
    assert ReplicaImages(other.env).install(str(tmp_path / "image.mdb")) == applied

    installed = content(other.env)
    assert installed == expected
    assert other.reader.applied_index() == applied
    assert other.reader.get_bucket("stale") is None and other.reader.get_bucket("later") is None
    other.env.close()


def test_a_reader_sees_the_old_replica_or_the_new_one(replica, tmp_path):
    replica.create_bucket("new")
    write_image(FrozenReplica(replica.env), tmp_path / "image.mdb")
    applied = replica.reader.applied_index()
    other = Replica(str(tmp_path / "other"))
    other.create_bucket("old")
    other.create_bucket("older")
    with other.env.begin() as before:  # a worker in the middle of a request
        ReplicaImages(other.env).install(str(tmp_path / "image.mdb"))
        buckets = other.env.open_db(b"buckets", txn=before)
        assert [key for key, _ in before.cursor(db=buckets)] == [b"old", b"older"]
    assert [bucket["name"] for bucket in other.reader.list_buckets()] == ["new"]
    # Applying goes on from the installed index; replays of older entries are skipped.
    assert other.applier.apply_batch(applied, []) is None
    assert other.applier.apply_batch(applied + 1, []) == []
    other.env.close()


def test_a_shelved_image_is_made_only_of_a_replica_that_applied_enough(replica, tmp_path):
    replica.create_bucket("photos")
    replica.put_keys("photos", [f"a{n}" for n in range(100)])
    applied = replica.reader.applied_index()
    shelf_dir = tmp_path / "images"
    shelf_dir.mkdir()
    shelf = ImageShelf(replica.env, str(shelf_dir))
    with pytest.raises(ImageBehind):
        shelf.make(applied + 1)
    assert os.listdir(shelf_dir) == []
    image = shelf.make(applied)
    assert image["index"] == applied
    assert os.path.getsize(shelf.path(image["id"])) == image["size"]
    assert image_digest(shelf.path(image["id"])) == image["digest"]
    shelf.remove(image["id"])
    assert os.listdir(shelf_dir) == []
