"""Stored files' digests: taken as bytes are written (or read back when they were copied in the
kernel), and checked before serving, with a worker trusting only an unchanged file it verified."""

import os

import pytest
import xxhash

from nebulaio.storage.integrity import DamagedPart, FileChecks, file_digest
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore


def make_store(tmp_path) -> ObjectStore:
    layout = DataLayout(str(tmp_path / "data"))
    layout.create()
    return ObjectStore(layout)


def stored(store: ObjectStore, name: str, data: bytes) -> str:
    temp = store.new_temp()
    temp.write(data)
    digest = temp.digest()
    temp.commit_to(store.file_dir("b", "h" * 32), name)
    return digest


def test_a_digest_is_of_the_bytes_written_or_copied(tmp_path):
    store = make_store(tmp_path)
    first, second = os.urandom(300_000), os.urandom(5)
    assert stored(store, "first", first) == xxhash.xxh3_64_hexdigest(first)
    stored(store, "second", second)
    parts = [("first", len(first), xxhash.xxh3_64_hexdigest(first)), ("second", 2, None)]
    digest = store.concatenate(store.file_dir("b", "h" * 32), "whole", parts)
    assert digest == xxhash.xxh3_64_hexdigest(first + second[:2])
    with open(os.path.join(store.file_dir("b", "h" * 32), "whole"), "rb") as whole:
        assert file_digest(whole.fileno()) == digest


def test_no_object_is_built_from_a_damaged_part(tmp_path):
    store = make_store(tmp_path)
    first, second = os.urandom(70_000), os.urandom(9)
    recorded = [stored(store, "first", first), stored(store, "second", second)]
    with open(os.path.join(store.file_dir("b", "h" * 32), "second"), "r+b") as part:
        part.write(b"!")
    parts = [("first", len(first), recorded[0]), ("second", len(second), recorded[1])]
    with pytest.raises(DamagedPart, match="second"):
        store.concatenate(store.file_dir("b", "h" * 32), "whole", parts)
    assert sorted(os.listdir(store.file_dir("b", "h" * 32))) == ["first", "second"]
    assert os.listdir(store.layout.temp_dir) == []


def test_a_changed_file_is_checked_again_and_reported(tmp_path):
    store = make_store(tmp_path)
    data = os.urandom(100_000)
    digest = stored(store, "v", data)
    path = os.path.join(store.file_dir("b", "h" * 32), "v")
    reports = []
    checks = FileChecks(3600, reports.append)
    with open(path, "rb") as file:
        assert checks.intact(file.fileno(), digest, {"file": "v"})
        assert checks.intact(file.fileno(), None)  # an old record: nothing to check against
    with open(path, "r+b") as file:
        file.seek(500)
        file.write(bytes([data[500] ^ 1]))
    with open(path, "rb") as file:
        assert not checks.intact(file.fileno(), digest, {"file": "v"})
    assert reports == [{"file": "v"}]


def test_without_trust_every_check_reads_the_file(tmp_path):
    store = make_store(tmp_path)
    digest = stored(store, "v", b"x" * 1000)
    path = os.path.join(store.file_dir("b", "h" * 32), "v")
    checks = FileChecks(0)
    with open(path, "rb") as file:
        assert checks.intact(file.fileno(), digest)
        stat = os.fstat(file.fileno())
    with open(path, "r+b") as file:
        file.write(b"y")
    # Even with its times put back, a damaged file with no trust is read and refused.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with open(path, "rb") as file:
        assert not checks.intact(file.fileno(), digest)
