"""Secrets a node generates on first start and keeps beside its metadata."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

SECRET_BYTES = 32


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def read_or_create(path: str, make: Callable[[], str] = new_secret) -> str:
    """The value kept in `path`, else a new one from `make` written there (mode 0600, fsynced)."""
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except FileNotFoundError:
        pass
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    return value
