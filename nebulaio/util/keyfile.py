"""Secrets a node generates on first start and keeps beside its metadata."""

from __future__ import annotations

import os
import secrets

SECRET_BYTES = 32


def read_or_create(path: str) -> str:
    """The secret kept in `path`, else a new random one written there (mode 0600, fsynced)."""
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret)
        fh.flush()
        os.fsync(fh.fileno())
    return secret
