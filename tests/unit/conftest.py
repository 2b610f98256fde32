"""Unit-test fixtures: a real LMDB replica in a temporary directory, its applier and a reader."""

import itertools

import pytest

from nebulaio.meta import Applier, MetaReader, open_env

OWNER = "owner-1"
SMALL_MAP = 1 << 30


def object_record(key: str, vid: str = "v1", inline: bool = True, size: int = 0) -> dict:
    return {
        "key": key,
        "vid": vid,
        "size": size,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "mtime": 1_700_000_000_000,
        "ctype": "application/octet-stream",
        "headers": {},
        "meta": {},
        "checksums": {},
        "inline": inline,
    }


class Replica:
    """Proposes commands the way a supervisor would: each call is one raft entry."""

    def __init__(self, path: str) -> None:
        self.env = open_env(path, readonly=False, map_size=SMALL_MAP)
        self.released: list[tuple[str, str, str]] = []
        self.applier = Applier(self.env, lambda *version: self.released.append(version))
        self.reader = MetaReader(self.env)
        self._raft_index = itertools.count(1)

    record = staticmethod(object_record)

    def apply(self, *commands: dict | tuple[dict, bytes | None]) -> list[dict]:
        batch = [command if isinstance(command, tuple) else (command, None) for command in commands]
        return self.applier.apply_batch(next(self._raft_index), batch)

    def create_bucket(self, bucket: str, owner: str = OWNER) -> None:
        command = {"op": "bucket.create", "bucket": bucket, "owner": owner, "created": 1, "region": "us-east-1"}
        assert self.apply(command) == [{"status": "ok"}]

    def put_keys(self, bucket: str, keys, batch_size: int = 5000) -> None:
        keys = list(keys)
        for start in range(0, len(keys), batch_size):
            commands = [
                ({"op": "object.put", "bucket": bucket, "record": object_record(key)}, b"")
                for key in keys[start : start + batch_size]
            ]
            assert all(result["status"] == "ok" for result in self.apply(*commands))


@pytest.fixture
def replica(tmp_path):
    replica = Replica(str(tmp_path / "kv"))
    yield replica
    replica.env.close()


@pytest.fixture(scope="module")
def shared_replica(tmp_path_factory):
    """One replica for a whole module, for property tests that make a bucket per example."""
    replica = Replica(str(tmp_path_factory.mktemp("kv")))
    yield replica
    replica.env.close()
