"""The JSON error of the Admin API and the console: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import orjson


class JsonError(Exception):
    """A failure answered as JSON: HTTP status, a stable code, a message for people and any headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str, request_id: str | None = None) -> bytes:
    error = {"code": code, "message": message}
    if request_id is not None:
        error["requestId"] = request_id
    return orjson.dumps({"error": error})
