"""The OpenAPI document stays true: schemathesis drives every documented route of a real node.

Every response must have a documented status, content type and body shape, and no request,
however odd, may get a 500. Bounded to a few examples per operation so it stays fast.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from conftest import ROOT_PASSWORD, ROOT_USER
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def admin_schema(node):
    return schemathesis.openapi.from_url(node.admin_url + "/api/v1/openapi.json")


@pytest.fixture(scope="module")
def admin_token(node):
    login = {"username": ROOT_USER, "password": ROOT_PASSWORD}
    return requests.post(node.admin_url + "/api/v1/auth/login", json=login, timeout=10).json()["token"]


schema = schemathesis.pytest.from_fixture("admin_schema")


@schema.exclude(path="/api/v1/auth/logout").parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_documented(case, admin_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)
