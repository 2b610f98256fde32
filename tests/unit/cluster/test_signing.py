"""Signatures of calls between nodes: only the secret's holder can make one, for one method,
path and node, within the clock skew."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nebulaio.cluster.signing import MAX_CLOCK_SKEW, NODE_HEADER, SIGNATURE_HEADER, TIME_HEADER, sign, verify

SECRET = b"cluster secret"
NOW = 1_700_000_000.0
methods = st.sampled_from(["GET", "PUT", "POST", "DELETE"])
paths = st.text(min_size=1, max_size=80)
nodes = st.text(min_size=1, max_size=16)


@given(methods, paths, nodes, st.floats(min_value=-MAX_CLOCK_SKEW, max_value=MAX_CLOCK_SKEW))
def test_a_signed_call_is_accepted_within_the_skew(method, path, node, drift):
    assert verify(SECRET, method, path, sign(SECRET, method, path, node, NOW + drift), NOW)


@given(methods, paths, nodes, st.floats(min_value=MAX_CLOCK_SKEW + 1, max_value=10**7), st.sampled_from([-1, 1]))
def test_an_old_or_future_signature_is_refused(method, path, node, drift, sign_of):
    assert not verify(SECRET, method, path, sign(SECRET, method, path, node, NOW + sign_of * drift), NOW)


@given(methods, methods, paths, paths, nodes)
def test_a_signature_serves_only_its_method_and_path(method, other_method, path, other_path, node):
    headers = sign(SECRET, method, path, node, NOW)
    assert verify(SECRET, other_method, other_path, headers, NOW) == (method == other_method and path == other_path)


@given(methods, paths, nodes, nodes, st.binary(min_size=1, max_size=32))
def test_another_secret_or_node_is_refused(method, path, node, other_node, other_secret):
    headers = sign(SECRET, method, path, node, NOW)
    if other_secret != SECRET:
        assert not verify(other_secret, method, path, headers, NOW)
    forged = dict(headers, **{NODE_HEADER: other_node})
    assert verify(SECRET, method, path, forged, NOW) == (other_node == node)


@given(st.dictionaries(st.sampled_from([NODE_HEADER, TIME_HEADER, SIGNATURE_HEADER]), st.text(max_size=70)))
def test_missing_or_garbled_headers_are_refused_without_raising(headers):
    assert not verify(SECRET, "PUT", "/internal/v1/files/b/h/f", headers, NOW)


def test_no_secret_accepts_nothing():
    assert not verify(b"", "GET", "/x", sign(b"", "GET", "/x", "node0", NOW), NOW)
