"""Reading an open file in pieces with pread: its offset stays put, so one descriptor can be
hashed, sent and copied by several readers at once."""

from __future__ import annotations

import os
from collections.abc import Iterator

PIECE = 1024 * 1024


def pieces(fd: int, size: int | None = None, offset: int = 0, piece: int = PIECE) -> Iterator[bytes]:
    """The file's bytes from `offset`: `size` of them (EOFError if it ends first), or to its end."""
    end = None if size is None else offset + size
    while end is None or offset < end:
        chunk = os.pread(fd, piece if end is None else min(piece, end - offset), offset)
        if not chunk:
            if end is not None:
                raise EOFError(f"the file ended at byte {offset} of {end}")
            return
        offset += len(chunk)
        yield chunk
