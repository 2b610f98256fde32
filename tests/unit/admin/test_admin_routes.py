"""Every route and method the Admin API serves is in its OpenAPI document, and nothing else is."""

from types import SimpleNamespace

from falcon import inspect

from nebulaio.admin import app as admin_app
from nebulaio.admin.audit import AuditLog
from nebulaio.admin.openapi import DOCUMENT
from nebulaio.admin.throttle import LoginThrottle
from nebulaio.iam.credentials import Credentials
from nebulaio.iam.service import IamService
from nebulaio.util.clientaddress import TrustedProxies
from nebulaio.util.purposekeys import ClusterKeys

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
CONFIG = {
    "admin_secret": "s" * 43,
    "admin_secret_accepted": "",
    "admin_token_ttl": 60,
    "admin_refresh_ttl": 600,
    "region": "us-east-1",
    "replicas": 3,
}


def test_served_routes_are_the_documented_ones(tmp_path):
    layer = SimpleNamespace(reader=SimpleNamespace(token_generation=lambda user: 0))
    iam = IamService(layer.reader, None, Credentials("root", "secret"), ClusterKeys(["c" * 43]))
    throttle = LoginThrottle(str(tmp_path / "failures.sqlite"), 10, 60)
    audit = AuditLog(str(tmp_path / "audit.jsonl"))
    config = {**CONFIG, "data": str(tmp_path)}
    app = admin_app.create(
        layer, iam, config, str(tmp_path), members=None, throttle=throttle, audit=audit, proxies=TrustedProxies(())
    )
    served = {
        (route.path, method.method.lower())
        for route in inspect.inspect_routes(app)
        for method in route.methods
        if not method.internal
    }
    documented = {
        (path, method)
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }
    assert served == documented
