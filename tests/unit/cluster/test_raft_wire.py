"""How raft's commands and entries are encoded once the cluster package has mended PySyncObj:
bytes pickle as bytes, while what an older member pickled (protocol 2) still loads."""

from __future__ import annotations

import os
import pickle

from pysyncobj import pickle as raft_pickle

import nebulaio.cluster  # noqa: F401  (mends PySyncObj on import)

BODY = os.urandom(4096)
COMMAND = (7, ([({"op": "object.put", "bucket": "b", "record": {"key": "k"}}, BODY)],), {})


def test_a_command_holds_its_bytes_as_they_are():
    encoded = raft_pickle.dumps(COMMAND)
    assert BODY in encoded
    assert len(encoded) < len(BODY) + 256
    assert raft_pickle.loads(encoded) == COMMAND


def test_a_command_an_older_member_pickled_still_loads():
    older = pickle.dumps(COMMAND, 2)
    assert BODY not in older  # protocol 2 wrote the bytes as text
    assert raft_pickle.loads(older) == COMMAND
