"""The console session: the Admin API's tokens and the user's key pair, sealed into one cookie.

The cookie is HttpOnly and SameSite=Strict, so page scripts never see it and other sites never
send it. Its content is encrypted and authenticated (AES-GCM, a key derived from the admin
secret), so every node that shares the admin secret opens it and nobody else can read or
forge it. The key pair lets the console sign S3 calls on the user's behalf; the browser never
holds the secret after logging in.
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

COOKIE = "nebulaio_session"
NONCE_BYTES = 12
SEAL_CONTEXT = b"nebulaio console session v1"
CSRF_CONTEXT = b"nebulaio console csrf v1"


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

    __slots__ = ("_aead", "_csrf_key")

    def __init__(self, admin_secret: str):
        secret = admin_secret.encode()
        self._aead = AESGCM(hmac.new(secret, SEAL_CONTEXT, hashlib.sha256).digest())
        self._csrf_key = hmac.new(secret, CSRF_CONTEXT, hashlib.sha256).digest()

    def seal(self, session: Session) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, orjson.dumps(asdict(session)), SEAL_CONTEXT)
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None for a missing, forged or malformed one."""
        if not value:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            document = orjson.loads(self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], SEAL_CONTEXT))
            return Session(**document)
        except (ValueError, TypeError, InvalidTag, orjson.JSONDecodeError):
            return None

    def csrf_token(self, session: Session) -> str:
        """Bound to the session's refresh token: stable while the session lasts, useless after."""
        return hmac.new(self._csrf_key, session.refresh_token.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, session: Session, provided: str | None) -> bool:
        return bool(provided) and hmac.compare_digest(self.csrf_token(session), provided)
