"""The cluster: the raft state machine, gossip, the supervisor and the planes between nodes.

Every module here imports PySyncObj through this package, which mends two of its process-wide
settings once, here:

- PySyncObj replaces `socket.inet_ntop` with a Windows-only version when it is imported (its
  win_inet_pton module does so on every platform), which breaks whatever else in the process
  formats an address with it (psutil's connection listing). The C library's is put back,
  from `_socket`, which nothing replaces: a module that imported PySyncObj before this
  package would have made a copy of `socket.inet_ntop` taken here the broken one.
- PySyncObj pickles every command, log entry and message with pickle's protocol 2, which
  has no type for bytes: it writes an object's inline bytes as a latin-1 text to be encoded
  again on load. A batch of three 4 KiB PUTs took 46 µs to pickle and 44 µs to load that way,
  2 and 3 µs with protocol 5, and its entry was 19 KB instead of 13 KB. Any protocol loads
  alike, so members and journals of either kind read each other.
"""

import _socket
import socket

import pysyncobj.pickle
import pysyncobj.win_inet_pton  # noqa: F401

socket.inet_ntop = _socket.inet_ntop

RAFT_PICKLE_PROTOCOL = 5
vars(pysyncobj.pickle)["__protocol"] = RAFT_PICKLE_PROTOCOL
