"""Secrets a node generates on first start and keeps beside its metadata."""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Callable

from nebulaio.util.durable import fsync_directory

SECRET_BYTES = 32
ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits
ACCESS_KEY_LENGTH = 20
# AWS's own secret-key characters: no '-', so a secret never reads as an option on a command line.
SECRET_KEY_ALPHABET = string.ascii_letters + string.digits + "+/"
SECRET_KEY_LENGTH = 40
ROOT_USER_NAME = "NEBULAIO_ROOT_USER"
ROOT_PASSWORD_NAME = "NEBULAIO_ROOT_PASSWORD"


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def new_key_pair() -> tuple[str, str]:
    """A random access key and secret key shaped like AWS's (20 and 40 characters): every S3 tool takes them."""
    access_key = "".join(secrets.choice(ACCESS_KEY_ALPHABET) for _ in range(ACCESS_KEY_LENGTH))
    secret_key = "".join(secrets.choice(SECRET_KEY_ALPHABET) for _ in range(SECRET_KEY_LENGTH))
    return access_key, secret_key


def _create(path: str, value: str) -> bool:
    """Write `value` to `path` (mode 0600, fsynced) unless the file exists; whether this call wrote it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    # A value shown once (the root pair) must not vanish with the file's name in a power cut.
    fsync_directory(os.path.dirname(path))
    return True


def read_or_create(path: str, make: Callable[[], str] = new_secret) -> str:
    """The value kept in `path`, else a new one from `make` written there (mode 0600, fsynced)."""
    _create(path, make())
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


def read_pair(path: str) -> tuple[str, str]:
    """The root access key and secret key kept in `path` (`NAME=value` lines, as an environment file)."""
    with open(path, encoding="ascii") as fh:
        values = dict(line.strip().split("=", 1) for line in fh if "=" in line)
    return values[ROOT_USER_NAME], values[ROOT_PASSWORD_NAME]


def read_or_create_pair(path: str) -> tuple[str, str, bool]:
    """The root pair kept in `path`, else a new random one written there; and whether it is new."""
    user, password = new_key_pair()
    created = _create(path, f"{ROOT_USER_NAME}={user}\n{ROOT_PASSWORD_NAME}={password}\n")
    return *read_pair(path), created
