"""What the cluster package mends in PySyncObj: raft's commands and entries pickle bytes as
bytes, while what an older member pickled (protocol 2) still loads; and the process formats
addresses again, whichever was imported first."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

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


def test_addresses_format_again_even_when_pysyncobj_was_imported_first():
    program = (
        "import pysyncobj.utility, socket, nebulaio.cluster\n"
        "print(socket.inet_ntop(socket.AF_INET, bytes([127, 0, 0, 1])))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "127.0.0.1"
