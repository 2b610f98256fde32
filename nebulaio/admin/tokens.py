"""Admin API tokens: a short-lived access JWT and a longer refresh JWT, both HS256.

Every token carries its user's token generation; logging out raises the generation (a
command through the log, so every node of the cluster sees it), which refuses every token
issued before. A user's token also names the access key it logged in with (claim "key"),
so disabling or deleting that key refuses the token too. Only HS256 is accepted: `alg: none`,
other algorithms and forged signatures are refused by the decoder itself.

Tokens are signed with the admin secret's token key (`purposekeys.ADMIN_TOKENS`), never the
secret itself. While the admin secret is rotated (`admin_secret_accepted`), tokens are signed
with the new secret's key and those of the earlier secrets are still accepted until they
expire or their secret is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from nebulaio.util.purposekeys import ADMIN_TOKENS, KeyRing
from nebulaio.util.timefmt import iso8601

ALGORITHM = "HS256"
ISSUER = "nebulaio"
ACCESS = "access"
REFRESH = "refresh"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "sub", "typ", "gen")
_DECODE_OPTIONS = {"require": list(REQUIRED_CLAIMS)}


class TokenRefused(Exception):
    """A token that does not grant access; `code` says why (ExpiredToken, InvalidToken, RevokedToken)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Tokens:
    """Issues and checks the tokens of one node (every worker shares the secrets)."""

    __slots__ = ("_access_ttl", "_generation", "_refresh_ttl", "_keys")

    def __init__(self, secrets: list[str], access_ttl: int, refresh_ttl: int, generation: Callable[[str], int]):
        """`secrets`: the admin secrets, the signing one first."""
        self._keys = KeyRing.of(secrets, ADMIN_TOKENS)
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._generation = generation

    def issue(self, user: str, access_key: str | None = None) -> dict:
        """A fresh access token and refresh token for `user` (logged in with `access_key`, None
        for the root user), as the login answer shows them."""
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user, "gen": self._generation(user), "iat": now}
        if access_key is not None:
            claims["key"] = access_key
        expires = now + self._access_ttl
        return {
            "token": self._encode(claims, ACCESS, expires),
            "expiresAt": iso8601(expires * 1000),
            "refreshToken": self._encode(claims, REFRESH, now + self._refresh_ttl),
        }

    def _encode(self, claims: dict, kind: str, expires: int) -> str:
        return jwt.encode(dict(claims, typ=kind, exp=expires), self._keys.current, algorithm=ALGORITHM)

    def _decode(self, token: str) -> dict:
        """The claims of a token signed with any of the keys (the last one's refusal is raised)."""
        *earlier, last = self._keys.keys
        for key in earlier:
            try:
                return jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER, options=_DECODE_OPTIONS)
            except jwt.InvalidSignatureError:
                continue
        return jwt.decode(token, last, algorithms=[ALGORITHM], issuer=ISSUER, options=_DECODE_OPTIONS)

    def verify(self, token: str, kind: str) -> tuple[str, str | None]:
        """The user a valid, unrevoked token of `kind` was issued to, and its access key.

        Raises:
            TokenRefused: expired, malformed, forged, of another algorithm or kind, or revoked.
        """
        try:
            claims = self._decode(token)
        except jwt.ExpiredSignatureError as exc:
            raise TokenRefused("ExpiredToken", "The token has expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRefused("InvalidToken", f"The token is not valid: {exc}.") from exc
        user, access_key = claims["sub"], claims.get("key")
        if claims["typ"] != kind or not isinstance(user, str) or not isinstance(access_key, str | None):
            raise TokenRefused("InvalidToken", f"The token is not valid here: this call takes the {kind} token.")
        if claims["gen"] != self._generation(user):
            raise TokenRefused("RevokedToken", "The token has been revoked.")
        return user, access_key
