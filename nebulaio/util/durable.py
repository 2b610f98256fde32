"""What makes a file system change survive a power cut."""

from __future__ import annotations

import ctypes
import os

SYNC_FILE_RANGE_WRITE = 2
# The C library the interpreter is linked with: no search (ctypes.util.find_library runs
# ldconfig, a process of its own that a hardened service should not need).
_sync_file_range = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)


def fsync_directory(path: str) -> None:
    """fsync a directory, so the names created, renamed or removed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a range of a file to disk, without waiting for it.

    A large body written whole and then fdatasync'd waits for all of it at the end (34 ms for
    64 MiB here, a fifth of the PUT); started as it is written, the final fdatasync finds
    little left. Only a hint: without sync_file_range (not Linux) it does nothing.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)
