"""Datagrams of a cluster with mTLS between nodes: sealed with the sender's own key, opened
only with the key learnt from that sender, and a request for the key at most once a second
per sender."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nebulaio.cluster.gossipnet import (
    KEY_REQUEST_INTERVAL,
    MAX_KEY_REQUESTS,
    DatagramKeys,
    seal,
    seal_from,
    sender_of,
    unseal,
    unseal_from,
)

SENDER = "10.0.0.1:9004"
NOW = 1000.0


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def receiver() -> tuple[DatagramKeys, list[str], Clock]:
    requested: list[str] = []
    clock = Clock()
    return DatagramKeys("10.0.0.2:9004", requested.append, clock), requested, clock


def test_a_datagram_names_its_sender_and_opens_only_with_the_senders_key():
    sender = DatagramKeys(SENDER, lambda address: None)
    sealed = sender.seal({"type": "ping", "seq": 1}, NOW)
    assert sender_of(sealed) == SENDER
    assert unseal_from(sender.own, sealed, NOW)["seq"] == 1
    assert unseal_from(b"k" * 32, sealed, NOW) is None
    assert unseal_from(sender.own, sealed, NOW + 500) is None  # stale
    forged = sealed[:-2] + b"9}"
    assert unseal_from(sender.own, forged, NOW) is None
    # The sender's address is covered by the tag: the datagram cannot be passed off as another's.
    other = sealed.replace(SENDER.encode(), b"10.0.0.9:9004")
    assert sender_of(other) == "10.0.0.9:9004" and unseal_from(sender.own, other, NOW) is None


def test_the_two_framings_open_only_as_what_they_are():
    key = b"k" * 32
    assert unseal((key,), seal_from(SENDER, key, {"type": "ping"}, NOW), NOW) is None
    assert sender_of(seal(key, {"type": "ping"}, NOW)) is None


def test_an_unknown_sender_is_refused_and_asked_for_its_key_once_a_second():
    keys, requested, clock = receiver()
    sender = DatagramKeys(SENDER, lambda address: None)
    sealed = sender.seal({"type": "ping", "seq": 1}, NOW)
    assert keys.open(sealed, NOW) is None
    assert keys.open(sealed, NOW) is None
    assert requested == [SENDER]
    clock.now += KEY_REQUEST_INTERVAL
    assert keys.open(sealed, NOW) is None
    assert requested == [SENDER, SENDER]
    keys.learn(SENDER, sender.own)
    assert keys.open(sealed, NOW)["seq"] == 1
    assert requested == [SENDER, SENDER]


def test_a_sender_with_a_new_key_is_asked_again():
    keys, requested, clock = receiver()
    before = DatagramKeys(SENDER, lambda address: None)
    keys.learn(SENDER, before.own)
    restarted = DatagramKeys(SENDER, lambda address: None)
    assert restarted.own != before.own
    sealed = restarted.seal({"type": "ping", "seq": 2}, NOW)
    assert keys.open(sealed, NOW) is None
    assert requested == [SENDER]
    keys.learn(SENDER, restarted.own)
    assert keys.open(sealed, NOW)["seq"] == 2


def test_made_up_senders_cost_a_bounded_number_of_requests():
    keys, requested, clock = receiver()
    for number in range(3 * MAX_KEY_REQUESTS):
        keys.open(seal_from(f"10.1.{number // 256}.{number % 256}:9004", b"k" * 32, {}, NOW), NOW)
    assert len(requested) == MAX_KEY_REQUESTS
    clock.now += KEY_REQUEST_INTERVAL
    keys.open(seal_from(SENDER, b"k" * 32, {}, NOW), NOW)
    assert requested[-1] == SENDER


@given(st.binary(max_size=400))
def test_any_bytes_not_sealed_by_a_known_sender_are_refused(data):
    keys, _, _ = receiver()
    keys.learn(SENDER, b"k" * 32)
    assert keys.open(data, NOW) is None
    assert keys.open(b"NG2" + data, NOW) is None
