"""Building a file from pieces of others inside the kernel (multipart completion, copies)."""

import pytest

from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    layout = DataLayout(str(tmp_path / "data"))
    layout.create()
    return ObjectStore(layout)


def _committed(store: ObjectStore, name: str, data: bytes) -> None:
    temp = store.new_temp()
    temp.write(data)
    temp.commit("bucket", "key", name)


def test_copy_from_appends_whole_files_and_ranges(store):
    _committed(store, "one", b"first part|")
    _committed(store, "two", b"0123456789")
    temp = store.new_temp()
    temp.write(b">")
    with store.open("bucket", "key", "one") as one, store.open("bucket", "key", "two") as two:
        temp.copy_from(one.fileno(), 0, 11)
        temp.copy_from(two.fileno(), 3, 4)
        temp.copy_from(two.fileno(), 0, 0)
    assert temp.size == 16
    temp.commit("bucket", "key", "joined")
    with store.open("bucket", "key", "joined") as joined:
        assert joined.read() == b">first part|3456"


def test_copy_from_a_short_source_fails(store):
    _committed(store, "short", b"abc")
    temp = store.new_temp()
    with store.open("bucket", "key", "short") as short, pytest.raises(EOFError):
        temp.copy_from(short.fileno(), 1, 5)
    temp.abort()
