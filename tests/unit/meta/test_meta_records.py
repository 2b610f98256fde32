"""Values carry a schema version and decode through the migration chain."""

import pytest

from nebulaio.meta.records import OBJECT, RecordType


def test_round_trip_with_inline_bytes():
    value = OBJECT.encode({"key": "k", "inline": True}, b"\0payload")
    header, inline = OBJECT.decode(value)
    assert header == {"key": "k", "inline": True}
    assert bytes(inline) == b"\0payload"
    assert OBJECT.decode_header(value) == header


def test_old_versions_upgrade_step_by_step():
    old = RecordType("thing", 1, {}).encode({"size": 3})
    upgrades = {1: lambda h: {**h, "tags": {}}, 2: lambda h: {**h, "size": h["size"] * 10}}
    current = RecordType("thing", 3, upgrades)
    assert current.decode_header(old) == {"size": 30, "tags": {}}


def test_values_from_a_newer_release_are_refused():
    newer = RecordType("thing", 2, {1: dict}).encode({})
    with pytest.raises(ValueError, match="schema version 2"):
        RecordType("thing", 1, {}).decode_header(newer)
