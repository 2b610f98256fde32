"""The console's sealed session cookie: what a browser sends back is untrusted input."""

from __future__ import annotations

import time

import jwt
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.console.session import Sealer, Session

SECRET = "admin-secret-for-tests"
TOKEN_KEY = "k" * 32  # the console never checks it: the seal vouches for the token


def token(kind: str, lifetime: int, issued: int | None = None) -> str:
    issued = int(time.time()) if issued is None else issued
    return jwt.encode({"sub": "alice", "typ": kind, "gen": 0, "iat": issued, "exp": issued + lifetime}, TOKEN_KEY)


def session(**changes) -> Session:
    fields = dict(
        user="alice", secret="s3cr3t", token=token("access", 900), refresh_token=token("refresh", 3600), admin=False
    )
    return Session(**(fields | changes))


def test_a_sealed_session_opens_with_the_same_secret_only():
    original = session()
    sealed = Sealer(SECRET).seal(original)
    assert Sealer(SECRET).open(sealed) == original
    assert Sealer("another-secret").open(sealed) is None
    assert "s3cr3t" not in sealed


def test_a_tampered_cookie_is_refused():
    sealed = Sealer(SECRET).seal(session())
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert Sealer(SECRET).open(flipped) is None


@given(st.text(max_size=600))
def test_any_cookie_value_opens_to_a_session_or_none(value):
    assert Sealer(SECRET).open(value) is None


def test_the_csrf_token_is_bound_to_the_session():
    sealer = Sealer(SECRET)
    one, other = session(), session(refresh_token=token("refresh", 7200))
    assert sealer.csrf_matches(one, sealer.csrf_token(one))
    assert not sealer.csrf_matches(other, sealer.csrf_token(one))
    assert not sealer.csrf_matches(one, None)
    assert not sealer.csrf_matches(one, "")


def test_renewal_starts_at_half_of_the_token_life():
    issued = int(time.time())
    fresh = session(token=token("access", 900, issued))
    assert not fresh.needs_renewal(issued + 449)
    assert fresh.needs_renewal(issued + 450)
    assert 3590 <= fresh.lifetime(issued + 10) <= 3600
