"""The client address behind trusted proxies: X-Forwarded-For walked from the right past trusted
hops (nginx's real_ip_recursive), X-Real-IP without it, and nothing believed from anyone else."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.util.clientaddress import TrustedProxies, parse_address

PROXIES = TrustedProxies.parse("10.0.0.0/8, 192.0.2.7 2001:db8:1::/48")
TRUSTED_PEER = "10.1.2.3"
UNTRUSTED_PEER = "198.51.100.9"

untrusted_v4 = st.ip_addresses(v=4).filter(lambda a: not PROXIES.trusts(a))
untrusted_v6 = st.ip_addresses(v=6).filter(lambda a: not PROXIES.trusts(a) and a.ipv4_mapped is None)
untrusted = st.one_of(untrusted_v4, untrusted_v6)
trusted = st.one_of(
    st.ip_addresses(network="10.0.0.0/8"),
    st.just(ipaddress.ip_address("192.0.2.7")),
    st.ip_addresses(network="2001:db8:1::/48"),
)
separators = st.sampled_from([",", ", ", " ,", " , ", ",  "])


def environ(peer: str, forwarded: str | None = None, real_ip: str | None = None) -> dict:
    env = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        env["HTTP_X_FORWARDED_FOR"] = forwarded
    if real_ip is not None:
        env["HTTP_X_REAL_IP"] = real_ip
    return env


def written(address) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


@given(
    clients=st.lists(st.one_of(untrusted, trusted), max_size=4),
    hops=st.lists(trusted, max_size=4),
    separator=separators,
)
def test_the_client_is_the_rightmost_hop_no_trusted_proxy_added(clients, hops, separator):
    chain = clients + hops
    header = separator.join(str(address) for address in chain)
    beyond_proxies = [address for address in chain if not PROXIES.trusts(address)]
    if beyond_proxies:
        expected = str(beyond_proxies[-1])
    else:
        expected = str(chain[0]) if chain else TRUSTED_PEER
    assert PROXIES.client_address(environ(TRUSTED_PEER, header)) == expected


@given(header=st.text(max_size=80), real_ip=st.one_of(st.none(), st.text(max_size=40)))
def test_an_untrusted_peer_is_the_client_whatever_it_sends(header, real_ip):
    assert PROXIES.client_address(environ(UNTRUSTED_PEER, header, real_ip)) == UNTRUSTED_PEER


@given(header=st.text(max_size=80), peer=st.one_of(trusted, untrusted))
def test_without_trusted_proxies_the_peer_is_the_client(header, peer):
    assert TrustedProxies.parse("").client_address(environ(str(peer), header, "203.0.113.1")) == str(peer)


@given(header=st.text(alphabet=st.sampled_from("0123456789abcdef.:[], x"), max_size=60))
def test_any_header_gives_the_peer_or_an_address_it_names(header):
    """Never an exception, never an address made up: the peer, or one the header names."""
    answer = PROXIES.client_address(environ(TRUSTED_PEER, header))
    named = {parse_address(hop) for hop in header.split(",")}
    assert answer == TRUSTED_PEER or ipaddress.ip_address(answer) in named


@given(client=untrusted, hop=trusted, port=st.integers(1, 65535))
def test_addresses_with_ports_and_brackets(client, hop, port):
    header = f"{written(client)}:{port}, {written(hop)}"
    assert PROXIES.client_address(environ(TRUSTED_PEER, header)) == str(client)


def test_a_hop_that_is_not_an_address_ends_the_walk_at_the_last_good_one():
    header = "203.0.113.5, not-an-address, 10.9.9.9"
    assert PROXIES.client_address(environ(TRUSTED_PEER, header)) == "10.9.9.9"
    assert PROXIES.client_address(environ(TRUSTED_PEER, "garbage")) == TRUSTED_PEER


def test_x_real_ip_counts_only_without_x_forwarded_for():
    assert PROXIES.client_address(environ(TRUSTED_PEER, real_ip="203.0.113.5")) == "203.0.113.5"
    assert PROXIES.client_address(environ(TRUSTED_PEER, "203.0.113.6", "203.0.113.5")) == "203.0.113.6"
    assert PROXIES.client_address(environ(TRUSTED_PEER, real_ip="nonsense")) == TRUSTED_PEER


def test_an_ipv4_mapped_peer_is_trusted_as_its_ipv4_address():
    assert PROXIES.client_address(environ("::ffff:10.0.0.1", "203.0.113.5")) == "203.0.113.5"


@pytest.mark.parametrize("setting", ["10.0.0.1/8", "proxy.example.com", "10.0.0.0/33", "::1/129", "1.2.3"])
def test_a_bad_setting_is_refused_by_name(setting):
    with pytest.raises(ValueError, match="trusted_proxies: .* is not an IPv4 or IPv6 address or CIDR network"):
        TrustedProxies.parse(f"127.0.0.1, {setting}")


@pytest.mark.parametrize(
    "proxies,peer,proto,https",
    [
        (PROXIES, "10.1.2.3", "https", True),
        (PROXIES, "10.1.2.3", "http", False),
        (PROXIES, "203.0.113.9", "https", False),  # not a trusted proxy: anyone can send the header
        (TrustedProxies.parse(""), "127.0.0.1", "https", False),  # no proxy is trusted by default
    ],
)
def test_only_a_trusted_proxy_says_the_client_used_https(proxies, peer, proto, https):
    assert proxies.forwarded_https({"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_PROTO": proto}) is https
