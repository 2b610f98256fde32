"""Signatures of calls between nodes: only the secret's holder can make one, for one method,
path, node, nonce and body hash, within the clock skew; a nonce is served once."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from nebulaio.cluster.signing import (
    CONTENT_HASH_HEADER,
    MAX_CLOCK_SKEW,
    NODE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TARGET_HEADER,
    TIME_HEADER,
    ReplayCache,
    sign,
    verify,
)

SECRET = b"cluster secret"
NOW = 1_700_000_000.0
methods = st.sampled_from(["GET", "PUT", "POST", "DELETE"])
paths = st.text(min_size=1, max_size=80)
nodes = st.text(min_size=1, max_size=16)


@given(methods, paths, nodes, st.floats(min_value=-MAX_CLOCK_SKEW, max_value=MAX_CLOCK_SKEW))
def test_a_signed_call_is_accepted_within_the_skew(method, path, node, drift):
    assert verify((SECRET,), method, path, sign(SECRET, method, path, node, NOW + drift), NOW)


@given(methods, paths, nodes, st.floats(min_value=MAX_CLOCK_SKEW + 1, max_value=10**7), st.sampled_from([-1, 1]))
def test_an_old_or_future_signature_is_refused(method, path, node, drift, sign_of):
    assert not verify((SECRET,), method, path, sign(SECRET, method, path, node, NOW + sign_of * drift), NOW)


@given(methods, methods, paths, paths, nodes)
def test_a_signature_serves_only_its_method_and_path(method, other_method, path, other_path, node):
    headers = sign(SECRET, method, path, node, NOW)
    assert verify((SECRET,), other_method, other_path, headers, NOW) == (method == other_method and path == other_path)


@given(nodes, nodes)
def test_a_signature_names_the_node_it_is_for(target, other_target):
    headers = sign(SECRET, "DELETE", "/x", "node0", NOW, target)
    assert headers[TARGET_HEADER] == target
    redirected = dict(headers, **{TARGET_HEADER: other_target})
    assert verify((SECRET,), "DELETE", "/x", redirected, NOW) == (target == other_target)


@given(methods, paths, nodes, nodes, st.binary(min_size=1, max_size=32))
def test_another_secret_or_node_is_refused(method, path, node, other_node, other_secret):
    headers = sign(SECRET, method, path, node, NOW)
    if other_secret != SECRET:
        assert not verify((other_secret,), method, path, headers, NOW)
    forged = dict(headers, **{NODE_HEADER: other_node})
    assert verify((SECRET,), method, path, forged, NOW) == (other_node == node)


@given(
    st.dictionaries(
        st.sampled_from([NODE_HEADER, TIME_HEADER, TARGET_HEADER, NONCE_HEADER, CONTENT_HASH_HEADER, SIGNATURE_HEADER]),
        st.text(max_size=70),
    )
)
def test_missing_or_garbled_headers_are_refused_without_raising(headers):
    assert not verify((SECRET,), "PUT", "/internal/v1/files/b/h/f", headers, NOW)


def test_no_secret_accepts_nothing():
    assert not verify((), "GET", "/x", sign(b"", "GET", "/x", "node0", NOW), NOW)


def test_any_key_of_the_ring_is_accepted():
    """A cluster secret being rotated: a request signed with either secret's key is taken."""
    old, new = b"old key", b"new key"
    for key in (old, new):
        assert verify((new, old), "GET", "/x", sign(key, "GET", "/x", "node0", NOW), NOW)
    assert not verify((new,), "GET", "/x", sign(old, "GET", "/x", "node0", NOW), NOW)


@given(st.binary(max_size=64), st.binary(max_size=64), st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))
def test_the_body_hash_and_the_nonce_are_signed(body, other_body, other_nonce):
    headers = sign(SECRET, "PUT", "/x", "node0", NOW, content_hash=hashlib.sha256(body).hexdigest())
    swapped = dict(headers, **{CONTENT_HASH_HEADER: hashlib.sha256(other_body).hexdigest()})
    assert verify((SECRET,), "PUT", "/x", swapped, NOW) == (body == other_body)
    renonced = dict(headers, **{NONCE_HEADER: other_nonce})
    assert verify((SECRET,), "PUT", "/x", renonced, NOW) == (other_nonce == headers[NONCE_HEADER])
    stripped = {name: value for name, value in headers.items() if name != CONTENT_HASH_HEADER}
    assert not verify((SECRET,), "PUT", "/x", stripped, NOW)


def test_every_signature_has_its_own_nonce():
    assert (
        sign(SECRET, "GET", "/x", "node0", NOW)[NONCE_HEADER] != sign(SECRET, "GET", "/x", "node0", NOW)[NONCE_HEADER]
    )


def test_a_nonce_is_served_once_by_every_process_sharing_the_cache(tmp_path):
    path = str(tmp_path / "nonces.sqlite")
    first, second = ReplayCache(path), ReplayCache(path)
    headers = sign(SECRET, "GET", "/x", "node0", NOW)
    assert first.first_use(headers, NOW)
    assert not first.first_use(headers, NOW) and not second.first_use(headers, NOW)
    assert second.first_use(sign(SECRET, "GET", "/x", "node0", NOW), NOW)


def test_expired_nonces_are_pruned(tmp_path):
    cache = ReplayCache(str(tmp_path / "nonces.sqlite"))
    for _ in range(ReplayCache.PRUNE_EVERY - 1):
        assert cache.first_use(sign(SECRET, "GET", "/x", "node0", NOW), NOW)
    later = NOW + 2 * MAX_CLOCK_SKEW + 2
    assert cache.first_use(sign(SECRET, "GET", "/x", "node0", later), later)
    assert cache._db.execute("SELECT count(*) FROM nonces").fetchone() == (1,)
