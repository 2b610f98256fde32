"""Sealed secrets: round trips under one cluster secret, and nothing else opens them; values
sealed under an accepted secret, or by earlier releases (v1), still open."""

import base64
import hmac
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.iam.sealing import Sealer, SealError
from nebulaio.util.purposekeys import ClusterKeys


def sealer(*secrets: str) -> Sealer:
    return Sealer(ClusterKeys(list(secrets)))


def sealed_by_v1(cluster_secret: str, secret: str) -> str:
    """A value as earlier releases sealed it: the labels applied to the cluster secret itself."""
    root = cluster_secret.encode()
    encryption = hmac.digest(root, b"nebulaio iam secret encryption", "sha256")
    authentication = hmac.digest(root, b"nebulaio iam secret authentication", "sha256")
    plain, nonce = secret.encode(), os.urandom(16)
    stream = hmac.digest(encryption, nonce + (0).to_bytes(4, "big"), "sha256")
    cipher = bytes(a ^ b for a, b in zip(plain, stream[: len(plain)], strict=True))
    return "v1:" + base64.b64encode(nonce + cipher + hmac.digest(authentication, nonce + cipher, "sha256")).decode()


@given(st.text(min_size=1, max_size=200))
def test_round_trip(secret):
    one = sealer("cluster")
    sealed = one.seal(secret)
    assert secret not in sealed or len(secret) < 4
    assert one.unseal(sealed) == secret


def test_another_cluster_secret_or_a_changed_byte_does_not_unseal():
    sealed = sealer("one").seal("my-secret-key")
    with pytest.raises(SealError):
        sealer("two").unseal(sealed)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(SealError):
        sealer("one").unseal(tampered)
    assert sealer("one").seal("same") != sealer("one").seal("same")


def test_the_seal_is_not_keyed_by_the_cluster_secret_itself():
    sealed = sealer("one").seal("my-secret-key")
    assert sealed.startswith("v2:")
    forged_as_v1 = "v1:" + sealed.removeprefix("v2:")
    with pytest.raises(SealError):
        sealer("one").unseal(forged_as_v1)


def test_values_sealed_by_earlier_releases_still_open_and_are_never_written():
    old = sealed_by_v1("cluster secret", "AKIA-secret-key-0123456789")
    assert sealer("cluster secret").unseal(old) == "AKIA-secret-key-0123456789"
    assert sealer("new secret", "cluster secret").unseal(old) == "AKIA-secret-key-0123456789"
    with pytest.raises(SealError):
        sealer("another secret").unseal(old)


def test_a_rotation_opens_what_either_secret_sealed_and_seals_with_the_current_one():
    under_old = sealer("old").seal("sealed before")
    both = sealer("new", "old")
    assert both.unseal(under_old) == "sealed before"
    under_new = both.seal("sealed during")
    assert sealer("new").unseal(under_new) == "sealed during"
    with pytest.raises(SealError):
        sealer("old").unseal(under_new)


def test_a_retired_secret_still_opens_what_it_sealed_but_seals_nothing():
    under_old = sealer("old").seal("sealed before")
    old_v1 = sealed_by_v1("old", "sealed by an earlier release")
    retired = Sealer(ClusterKeys(["new"], retired=["old"]))
    assert retired.unseal(under_old) == "sealed before"
    assert retired.unseal(old_v1) == "sealed by an earlier release"
    with pytest.raises(SealError):
        sealer("old").unseal(retired.seal("sealed after"))
