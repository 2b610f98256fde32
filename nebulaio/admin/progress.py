"""Progress bars for the CLI's long waits and transfers, drawn on stderr."""

from __future__ import annotations

import sys
import time

REDRAW = 0.25
"""Seconds between two redraws of a transfer's bar."""
BAR_WIDTH = 30


def human_size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def bar(fraction: float) -> str:
    filled = round(min(max(fraction, 0.0), 1.0) * BAR_WIDTH)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%}"


class Progress:
    """Files and bytes done of a known total, redrawn on stderr at most every REDRAW seconds
    (in place on a terminal, a line each otherwise) and once more at the end."""

    def __init__(self, files: int, total: int, stream=None):
        self.files, self.total = files, total
        self.files_done = self.bytes_done = 0
        self._stream = stream or sys.stderr
        self._started = self._drawn = time.monotonic()

    def advance(self, count: int) -> None:
        self.bytes_done += count
        if time.monotonic() - self._drawn >= REDRAW:
            self.draw()

    def file_done(self) -> None:
        self.files_done += 1

    def line(self) -> str:
        fraction = self.bytes_done / self.total if self.total else self.files_done / max(self.files, 1)
        rate = self.bytes_done / max(time.monotonic() - self._started, 1e-6)
        return (
            f"{bar(fraction)}  {self.files_done}/{self.files} files, "
            f"{human_size(self.bytes_done)} of {human_size(self.total)}, {human_size(rate)}/s"
        )

    def draw(self, last: bool = False) -> None:
        self._drawn = time.monotonic()
        end = "\n" if last or not self._stream.isatty() else "\r"
        self._stream.write(self.line() + end)
        self._stream.flush()
