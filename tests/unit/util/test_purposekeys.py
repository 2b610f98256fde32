"""Purpose keys: one key per use of a secret, none of them the secret; key rings for rotations."""

from __future__ import annotations

import time

import jwt
import pytest

from nebulaio.admin.tokens import ACCESS, ALGORITHM, TokenRefused, Tokens
from nebulaio.console.session import Sealer, Session
from nebulaio.util import clientaddress
from nebulaio.util.purposekeys import (
    ADMIN_TOKENS,
    CLIENT_ADDRESS,
    CONSOLE_CSRF,
    CONSOLE_SESSION,
    GOSSIP,
    IAM_SEALING,
    OBJECT_ENCRYPTION,
    PEER_SIGNING,
    RAFT,
    ClusterKeys,
    KeyRing,
    derive,
    secret_list,
)

PURPOSES = (
    RAFT,
    GOSSIP,
    PEER_SIGNING,
    IAM_SEALING,
    OBJECT_ENCRYPTION,
    ADMIN_TOKENS,
    CONSOLE_SESSION,
    CONSOLE_CSRF,
    CLIENT_ADDRESS,
)
OLD = "o" * 40
NEW = "n" * 40


def test_each_purpose_has_a_key_of_its_own_and_none_is_the_secret():
    keys = {derive("the cluster secret", purpose) for purpose in PURPOSES}
    assert len(keys) == len(PURPOSES)
    assert b"the cluster secret" not in keys and all(len(key) == 32 for key in keys)
    assert derive("the cluster secret", RAFT) == derive(b"the cluster secret", RAFT)
    assert derive("another secret", RAFT) != derive("the cluster secret", RAFT)


def test_the_current_secret_comes_first_and_accepted_ones_follow_once():
    assert secret_list("new", " old , new,,older ") == ["new", "old", "older"]
    assert secret_list("", "") == []
    ring = ClusterKeys(["new", "old"]).ring(GOSSIP)
    assert ring.current == derive("new", GOSSIP) and ring.keys == (derive("new", GOSSIP), derive("old", GOSSIP))
    assert ClusterKeys(["new", "old"]).raft_passwords() == [derive("new", RAFT).hex(), derive("old", RAFT).hex()]
    with pytest.raises(ValueError):
        KeyRing([])
    with pytest.raises(ValueError):
        ClusterKeys([])


def tokens(*secrets: str) -> Tokens:
    return Tokens(list(secrets), 60, 600, lambda user: 0)


def test_admin_tokens_survive_a_rotation_until_the_old_secret_is_dropped():
    issued_before = tokens(OLD).issue("root")["token"]
    rotating = tokens(NEW, OLD)
    assert rotating.verify(issued_before, ACCESS) == ("root", None)
    issued_during = rotating.issue("root")["token"]
    assert tokens(NEW).verify(issued_during, ACCESS) == ("root", None)
    with pytest.raises(TokenRefused) as refused:
        tokens(NEW).verify(issued_before, ACCESS)
    assert refused.value.code == "InvalidToken"
    # Signed with the token key, never with the admin secret itself.
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(issued_during, NEW, algorithms=[ALGORITHM])
    raw = jwt.encode({"iss": "nebulaio", "sub": "root", "gen": 0, "iat": 0, "typ": ACCESS, "exp": 2**40}, NEW)
    with pytest.raises(TokenRefused):
        rotating.verify(raw, ACCESS)


def test_an_expired_token_of_an_accepted_secret_is_answered_as_expired():
    expired = Tokens([OLD], -10, 600, lambda user: 0).issue("root")["token"]
    with pytest.raises(TokenRefused) as refused:
        tokens(NEW, OLD).verify(expired, ACCESS)
    assert refused.value.code == "ExpiredToken"


def test_console_sessions_and_client_addresses_open_under_an_accepted_secret():
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 60}, "k" * 32)
    session = Session("root", "secret", token, token, True)
    sealed_before = Sealer(OLD).seal(session)
    rotating = Sealer(NEW, OLD)
    assert rotating.open(sealed_before) == session
    assert rotating.csrf_matches(session, Sealer(OLD).csrf_token(session))
    assert Sealer(NEW).open(sealed_before) is None
    assert Sealer(NEW).open(rotating.seal(session)) == session
    header = clientaddress.seal(OLD, "192.0.2.7")
    assert clientaddress.opened([NEW, OLD], header) == "192.0.2.7"
    assert clientaddress.opened([NEW], header) is None


def test_a_retired_secret_authenticates_nothing_and_opens_what_it_sealed():
    keys = ClusterKeys(["new", "old"], retired=["older", "new"])
    assert keys.retired == ("older",)
    assert derive("older", GOSSIP) not in keys.ring(GOSSIP).keys
    assert keys.opening_ring(IAM_SEALING).keys == tuple(derive(s, IAM_SEALING) for s in ("new", "old", "older"))
    assert keys.opening_ring(IAM_SEALING).current == derive("new", IAM_SEALING)
