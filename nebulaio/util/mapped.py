"""Hand a file mapping's resident pages back to the kernel's page cache.

LMDB reads through a shared, read-only memory map of its data file: every page a lookup or a
commit walks stays mapped into the process, so a long-running writer's RSS grows to the size
of the metadata it ever touched, though none of it is the process's own memory. Dropping
those pages from the process (MADV_DONTNEED on a shared file mapping) leaves them in the
page cache, shared and reclaimable; the next access maps them again from there.
"""

from __future__ import annotations

import ctypes
import os

MADV_DONTNEED = 4
# NOTE: the process's own symbols hold libc's; ctypes.util.find_library would run ldconfig.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def release_file_pages(path: str) -> int:
    """Drop this process's resident pages of every shared mapping of `path`; the bytes mapped."""
    wanted = os.path.realpath(path)
    released = 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or fields[5].rstrip("\n") != wanted or fields[1][3] != "s":
                continue
            start, end = (int(bound, 16) for bound in fields[0].split("-"))
            if _libc.madvise(start, end - start, MADV_DONTNEED) != 0:
                raise OSError(ctypes.get_errno(), "madvise failed on " + wanted)
            released += end - start
    return released
