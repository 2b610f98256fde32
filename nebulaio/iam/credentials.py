"""The root user from the configuration: it always exists and is always allowed everything."""

from __future__ import annotations

import hashlib

from nebulaio.iam.policy import Principal


class Credentials:
    __slots__ = ("root_user", "_root_secret", "root_owner_id", "principal")

    def __init__(self, root_user: str, root_secret: str):
        self.root_user = root_user
        self._root_secret = root_secret
        self.root_owner_id = canonical_id(root_user)
        self.principal = Principal("root", root_user, self.root_owner_id)

    def secret_for(self, access_key: str) -> str | None:
        return self._root_secret if access_key == self.root_user else None


def canonical_id(user: str) -> str:
    """A stable 64-hex-digit canonical user id, as S3 shows owners."""
    return hashlib.sha256(b"nebulaio-user:" + user.encode()).hexdigest()
