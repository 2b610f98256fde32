"""Sealed secrets: round trips under one cluster secret, and nothing else opens them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.iam.sealing import Sealer, SealError


@given(st.text(min_size=1, max_size=200))
def test_round_trip(secret):
    sealer = Sealer("cluster")
    sealed = sealer.seal(secret)
    assert secret not in sealed or len(secret) < 4
    assert sealer.unseal(sealed) == secret


def test_another_cluster_secret_or_a_changed_byte_does_not_unseal():
    sealed = Sealer("one").seal("my-secret-key")
    with pytest.raises(SealError):
        Sealer("two").unseal(sealed)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(SealError):
        Sealer("one").unseal(tampered)
    assert Sealer("one").seal("same") != Sealer("one").seal("same")
