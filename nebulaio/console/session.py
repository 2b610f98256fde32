"""The console session: the Admin API's tokens and the user's key pair, sealed into one cookie.

The cookie is HttpOnly and SameSite=Strict, so page scripts never see it and other sites never
send it. Its content is encrypted and authenticated (AES-GCM, the admin secret's session key,
`purposekeys.CONSOLE_SESSION`), so every node that shares the admin secret opens it and nobody else can read or
forge it. While the admin secret is rotated, a cookie sealed under an earlier one still opens.
The key pair lets the console sign S3 calls on the user's behalf; the browser never holds the
secret after logging in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import asdict, dataclass

import jwt
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nebulaio.util.purposekeys import CONSOLE_CSRF, CONSOLE_SESSION, derive

COOKIE = "nebulaio_session"
NONCE_BYTES = 12
SEAL_CONTEXT = b"nebulaio console session v1"


@dataclass(slots=True)
class Session:
    user: str
    secret: str
    token: str
    refresh_token: str
    admin: bool

    def claims(self, token: str | None = None) -> dict:
        """The claims of a token this session holds; authentic because the cookie is sealed."""
        return jwt.decode(token or self.token, options={"verify_signature": False})

    def needs_renewal(self, now: float) -> bool:
        """Past half of the access token's life: renew it, so an active session never lapses."""
        claims = self.claims()
        return now >= (claims["iat"] + claims["exp"]) / 2

    def lifetime(self, now: float) -> int:
        """Seconds until the refresh token expires: the cookie's Max-Age."""
        return max(0, int(self.claims(self.refresh_token)["exp"] - now))


class Sealer:
    """Seals sessions into cookie values and opens them; derives each session's CSRF token."""

    __slots__ = ("_aeads", "_csrf_keys")

    def __init__(self, *admin_secrets: str):
        """The first secret seals; every one opens (the earlier ones of a rotation)."""
        self._aeads = [AESGCM(derive(secret, CONSOLE_SESSION)) for secret in admin_secrets]
        self._csrf_keys = [derive(secret, CONSOLE_CSRF) for secret in admin_secrets]

    def seal(self, session: Session) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aeads[0].encrypt(nonce, orjson.dumps(asdict(session)), SEAL_CONTEXT)
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None for a missing, forged or malformed one."""
        if not value:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except ValueError:
            return None
        for aead in self._aeads:
            try:
                return Session(**orjson.loads(aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], SEAL_CONTEXT)))
            except InvalidTag:
                continue
            except (ValueError, TypeError, orjson.JSONDecodeError):
                return None
        return None

    def csrf_token(self, session: Session) -> str:
        """Bound to the session's refresh token: stable while the session lasts, useless after."""
        return self._csrf_token(self._csrf_keys[0], session)

    def csrf_matches(self, session: Session, provided: str | None) -> bool:
        """Against each secret's token: a page shown before a rotation step keeps working."""
        return bool(provided) and any(
            hmac.compare_digest(self._csrf_token(key, session), provided) for key in self._csrf_keys
        )

    @staticmethod
    def _csrf_token(key: bytes, session: Session) -> str:
        return hmac.new(key, session.refresh_token.encode(), hashlib.sha256).hexdigest()
