"""Object bytes on disk: durable commit into place, temp cleanup, and the orphan sweep."""

import os
import time

from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore, key_hash


def make_store(tmp_path) -> ObjectStore:
    layout = DataLayout(str(tmp_path / "data"))
    layout.create()
    return ObjectStore(layout)


def test_commit_moves_bytes_into_the_layout(tmp_path):
    store = make_store(tmp_path)
    temp = store.new_temp()
    temp.write(b"hello ")
    temp.write(memoryview(b"world"))
    path = temp.commit("bucket", "a/../../key", "v1")
    assert path == os.path.join(store.layout.objects_dir, "bucket", key_hash("a/../../key"), "v1")
    assert os.path.realpath(path).startswith(os.path.realpath(store.layout.objects_dir) + os.sep)
    with store.open("bucket", "a/../../key", "v1") as fh:
        assert fh.read() == b"hello world"
    assert os.listdir(store.layout.temp_dir) == []


def test_abort_leaves_nothing(tmp_path):
    store = make_store(tmp_path)
    temp = store.new_temp()
    temp.write(b"partial")
    temp.abort()
    assert os.listdir(store.layout.temp_dir) == []
    assert os.listdir(store.layout.objects_dir) == []


def test_remove_deletes_the_version_and_its_empty_directory(tmp_path):
    store = make_store(tmp_path)
    temp = store.new_temp()
    temp.write(b"x")
    temp.commit("bucket", "key", "v1")
    store.remove("bucket", "key", "v1")
    store.remove("bucket", "key", "v1")  # a second release is harmless
    assert os.listdir(os.path.join(store.layout.objects_dir, "bucket")) == []


def test_clean_temp_empties_the_temp_directory(tmp_path):
    store = make_store(tmp_path)
    store.new_temp().write(b"in flight when the node stopped")
    store.clean_temp()
    assert os.listdir(store.layout.temp_dir) == []


def test_sweep_removes_old_unreferenced_files_only(tmp_path):
    store = make_store(tmp_path)
    for vid in ("kept", "orphan", "young"):
        temp = store.new_temp()
        temp.write(vid.encode())
        temp.commit("bucket", vid, vid)
    old = time.time() - 3600
    for vid in ("kept", "orphan"):
        os.utime(store.version_path("bucket", vid, vid), (old, old))
    removed = store.sweep(lambda bucket: {"kept"}, older_than=time.time() - 60)
    assert removed == 1
    assert os.path.exists(store.version_path("bucket", "kept", "kept"))
    assert not os.path.exists(store.version_path("bucket", "orphan", "orphan"))
    assert os.path.exists(store.version_path("bucket", "young", "young"))  # a PUT in flight


def test_long_data_directory_gets_a_short_socket_path(tmp_path):
    deep = tmp_path / ("d" * 120)
    layout = DataLayout(str(deep))
    assert len(layout.ipc_socket.encode()) <= 100
    assert DataLayout(str(deep)).ipc_socket == layout.ipc_socket
