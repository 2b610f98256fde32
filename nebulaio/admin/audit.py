"""The audit log: every Admin API request that may change something (POST, PUT, PATCH, DELETE),
one JSON line each, in `<data>/audit.jsonl`, readable page by page through the Admin API.

Any worker appends: the file is opened with O_APPEND and each line goes out in one write(), so
lines of concurrent workers never interleave; it is fdatasync'ed before the answer leaves.
A line names who (the caller, or the name a login tried), what (method and path), when, from
where and the result (HTTP status and error code), never a body, header or query: passwords,
secret keys and tokens travel only there. Each node keeps the log of the requests it answered.
"""

from __future__ import annotations

import logging
import os

import orjson

from nebulaio.util.ids import now_ms
from nebulaio.util.timefmt import iso8601

log = logging.getLogger("nebulaio.admin.audit")

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BadCursor(ValueError):
    """An `after` that names no entry of the log."""


class AuditLog:
    def __init__(self, path: str):
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def record(self, user: str | None, address: str, method: str, path: str, status: int, error: str | None) -> None:
        """Append one entry and make it durable; a failure is logged, the request it describes is done."""
        entry = {
            "time": iso8601(now_ms()),
            "user": user,
            "address": address,
            "method": method,
            "path": path,
            "status": status,
            "error": error,
        }
        line = orjson.dumps(entry) + b"\n"
        try:
            written = os.write(self._fd, line)
            os.fdatasync(self._fd)
        except OSError:
            log.exception("the audit log %s could not be written: %s", self._path, line)
            return
        if written != len(line):
            log.error("the audit log %s took %d of %d bytes of %s", self._path, written, len(line), line)

    def page(self, after: int | None, limit: int) -> tuple[list[dict], bool]:
        """Up to `limit` entries, oldest first, that follow the entry whose id is `after` (from the
        start without one); and whether more follow. An entry's id is its byte offset in the file."""
        with open(self._path, "rb") as fh:
            if after is not None:
                if not 0 <= after <= os.fstat(fh.fileno()).st_size:
                    raise BadCursor(after)  # NOTE: a seek past what a C long holds would raise
                if after:
                    fh.seek(after - 1)
                    if fh.read(1) != b"\n":
                        raise BadCursor(after)
                if not fh.readline().endswith(b"\n"):
                    raise BadCursor(after)
            entries = []
            while True:
                offset = fh.tell()
                line = fh.readline()
                if not line.endswith(b"\n"):  # the end, or a line still being written
                    return entries, False
                if len(entries) == limit:
                    return entries, True
                entries.append({"id": offset, **orjson.loads(line)})
