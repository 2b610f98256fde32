"""Raft dumps: raft's bookkeeping only, and an earlier version's dumps still load."""

import io
import pickle

import pytest

from nebulaio.cluster.raft import IMAGE_DUMP_HEADER, IMAGE_DUMP_MAGIC, encode_dump, read_dump

RAFT_DATA = ((b"\x01batch", 41, 3), (b"\x01batch", 40, 3), {"127.0.0.1:9003", "127.0.0.1:9013"})


def test_a_dump_holds_raft_bookkeeping_and_where_the_replica_can_be_fetched():
    data = encode_dump(41, 39, "127.0.0.1:9001", RAFT_DATA)
    dump = read_dump(io.BytesIO(data))
    assert (dump.index, dump.replica_index, dump.source, dump.raft_data) == (41, 39, "127.0.0.1:9001", RAFT_DATA)
    assert len(data) < 1024


def test_an_earlier_versions_dump_is_read_for_its_bookkeeping():
    header = pickle.dumps((41, RAFT_DATA))
    data = IMAGE_DUMP_MAGIC + IMAGE_DUMP_HEADER.pack(len(header)) + header + b"\0" * 8192  # its image
    dump = read_dump(io.BytesIO(data))
    assert (dump.index, dump.replica_index, dump.source, dump.raft_data) == (41, 0, None, RAFT_DATA)


def test_anything_else_is_refused():
    with pytest.raises(ValueError):
        read_dump(io.BytesIO(b"PYSYNCOBJ" + b"\0" * 64))
