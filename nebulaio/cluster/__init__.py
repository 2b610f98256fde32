"""The cluster: the raft state machine, gossip, the supervisor and the planes between nodes.

PySyncObj replaces `socket.inet_ntop` with a Windows-only version when it is imported (its
win_inet_pton module does so on every platform), which breaks whatever else in the process
formats an address with it (psutil's connection listing). Every module here imports
PySyncObj through this package, so the original is put back once, here.
"""

import socket

_inet_ntop = socket.inet_ntop
import pysyncobj.win_inet_pton  # noqa: E402, F401

socket.inet_ntop = _inet_ntop
