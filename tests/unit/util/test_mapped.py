"""Releasing a file mapping's resident pages: the process's RSS of the mapping falls to nothing
and every byte still reads back the same."""

from __future__ import annotations

import mmap
import os

from nebulaio.util.mapped import release_file_pages


def resident_bytes(path: str) -> int:
    """The RSS of this process's mappings of `path`, from /proc/self/smaps."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                inside = len(fields) == 6 and fields[5] == path
            elif inside and fields[0] == "Rss:":
                total += int(fields[1]) * 1024
    return total


def test_released_pages_leave_the_process_and_read_back_unchanged(tmp_path):
    path = str(tmp_path / "data")
    content = os.urandom(8 << 20)
    with open(path, "wb") as fh:
        fh.write(content)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert mapped[:] == content  # every page touched
        assert resident_bytes(path) >= 8 << 20
        assert release_file_pages(path) == 8 << 20
        assert resident_bytes(path) < 1 << 20
        assert mapped[:] == content


def test_a_file_not_mapped_releases_nothing(tmp_path):
    path = tmp_path / "unmapped"
    path.write_bytes(b"x")
    assert release_file_pages(str(path)) == 0
