"""Data keys in each mode: they open with what sealed them and with nothing else."""

from __future__ import annotations

import os

import pytest

from nebulaio.encryption.keys import SSE_C, SSE_KMS, SSE_S3, DataKeys, MasterKey
from nebulaio.engine.errors import S3Error


class KeyStore:
    """Key-store records as the replica keeps them, made the way the Admin API makes them."""

    def __init__(self):
        self.records: dict[str, dict] = {}
        self.keys = DataKeys(MasterKey("cluster secret"), self.records.get)

    def create(self, key_id: str) -> None:
        self.records[key_id] = {"id": key_id, "enabled": True, "versions": [self.keys.new_kms_material(key_id)]}

    def rotate(self, key_id: str) -> None:
        self.records[key_id]["versions"].append(self.keys.new_kms_material(key_id))


@pytest.fixture
def store():
    return KeyStore()


def code_of(call) -> str:
    with pytest.raises(S3Error) as refused:
        call()
    return refused.value.code


def test_sse_s3_opens_under_its_cluster_secret_only(store):
    data_key, sse = store.keys.new({"mode": SSE_S3}, "b")
    assert sse["key"] and data_key not in sse["key"].encode()
    assert store.keys.open(sse, None, "b") == data_key
    other = DataKeys(MasterKey("another secret"), store.records.get)
    assert code_of(lambda: other.open(sse, None, "b")) == "InternalError"


def test_sse_c_opens_with_the_customer_key_only(store):
    customer = os.urandom(32)
    data_key, sse = store.keys.new({"mode": SSE_C, "customer_key": customer, "key_md5": "m"}, "b")
    assert "customer_key" not in sse and customer.hex() not in str(sse)
    assert store.keys.open(sse, customer, "b") == data_key
    assert code_of(lambda: store.keys.open(sse, os.urandom(32), "b")) == "AccessDenied"


def test_kms_keys_rotate_disable_and_bind_their_context_and_bucket(store):
    store.create("k1")
    wanted = {"mode": SSE_KMS, "kms_key": "k1", "context": {"team": "a"}, "bucket_key": True}
    old_key, old = store.keys.new(wanted, "b")
    store.rotate("k1")
    new_key, new = store.keys.new(wanted, "b")
    assert (old["kms_version"], new["kms_version"]) == (0, 1)
    assert store.keys.open(old, None, "b") == old_key and store.keys.open(new, None, "b") == new_key
    assert code_of(lambda: store.keys.open(dict(old, context={"team": "b"}), None, "b")) == "InternalError"
    assert code_of(lambda: store.keys.open(old, None, "another-bucket")) == "InternalError"
    store.records["k1"]["enabled"] = False
    assert code_of(lambda: store.keys.open(old, None, "b")) == "KMS.DisabledException"
    assert code_of(lambda: store.keys.new(wanted, "b")) == "KMS.DisabledException"
    assert code_of(lambda: store.keys.new(dict(wanted, kms_key="missing"), "b")) == "KMS.NotFoundException"


def test_the_default_kms_key_needs_no_record(store):
    data_key, sse = store.keys.new({"mode": SSE_KMS, "context": {}}, "b")
    assert sse["kms_key"] == "aws/s3"
    assert store.keys.open(sse, None, "b") == data_key
