"""docs/s3-compatibility.md against the router and AWS's API model, so the table cannot go stale.

When a route is added, its row must say supported or partial; when the S3 API (botocore's
model of it) gains an operation, the table needs a row for it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import parse_qsl

import botocore.session
import pytest

from nebulaio.s3.app import HANDLERS
from nebulaio.s3.router import ROUTED_OPERATIONS, SUBRESOURCES

TABLE = Path(__file__).resolve().parents[3] / "docs" / "s3-compatibility.md"
ROW = re.compile(r"^\| `(?P<name>[A-Za-z0-9]+)` \| (?P<status>[^|]+?) \| (?P<notes>[^|]*?) ?\|$")
STATUSES = ("supported", "partial", "not supported")
ROUTED_STATUSES = ("supported", "partial")
HEADERS_SECTION = "## Request and response headers"


def table_rows() -> dict[str, tuple[str, str]]:
    """The operations' rows (the header families' section that follows is not checked)."""
    rows: dict[str, tuple[str, str]] = {}
    operations = TABLE.read_text().partition(HEADERS_SECTION)[0]
    for line in operations.splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        name = match["name"]
        assert name not in rows, f"{name} has two rows"
        rows[name] = (match["status"], match["notes"].strip())
    return rows


@functools.cache
def api_model():
    return botocore.session.get_session().get_service_model("s3")


def test_every_row_has_a_known_status_and_says_why_when_not_full():
    for name, (status, notes) in table_rows().items():
        assert status in STATUSES, f"{name}: status {status!r}"
        if status != "supported":
            assert notes, f"{name} is {status}: the row must say how or why"


def test_every_operation_of_the_s3_api_has_a_row():
    missing = sorted(set(api_model().operation_names) - table_rows().keys())
    assert not missing, f"operations of the S3 API without a row in {TABLE.name}: {missing}"


def test_every_routed_operation_is_supported_or_partial():
    rows = table_rows()
    wrong = sorted(
        f"{name} ({rows[name][0] if name in rows else 'no row'})"
        for name in ROUTED_OPERATIONS
        if name not in rows or rows[name][0] not in ROUTED_STATUSES
    )
    assert not wrong, f"routed operations the table does not mark supported or partial: {wrong}"


def test_every_supported_or_partial_operation_is_routed_and_handled():
    claimed = {name for name, (status, _) in table_rows().items() if status in ROUTED_STATUSES}
    assert sorted(claimed - ROUTED_OPERATIONS) == []
    assert sorted(ROUTED_OPERATIONS - HANDLERS.keys()) == []


def test_rows_name_api_operations_or_routed_ones():
    known = set(api_model().operation_names) | ROUTED_OPERATIONS
    assert sorted(table_rows().keys() - known) == []


@pytest.mark.parametrize("name", api_model().operation_names)
def test_every_subresource_of_the_api_is_known_to_the_router(name):
    """So an operation that is not implemented is answered NotImplemented, never taken for a
    plain object or bucket operation."""
    query = api_model().operation_model(name).http["requestUri"].partition("?")[2]
    for parameter, _ in parse_qsl(query, keep_blank_values=True):
        if parameter not in ("list-type", "select-type", "x-id"):
            assert parameter in SUBRESOURCES, f"{name}: ?{parameter} is not a subresource the router knows"
