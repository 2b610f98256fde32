"""Data keys in each mode: they open with what sealed them and with nothing else; master keys
rotate (the newest seals, every one opens) and what earlier releases sealed still opens."""

from __future__ import annotations

import base64
import hmac
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nebulaio.encryption.keys import SSE_C, SSE_KMS, SSE_S3, DataKeys, master_keys
from nebulaio.engine.errors import S3Error
from nebulaio.util.purposekeys import ClusterKeys, KeyRing

MASTER_KEY = "a configured master key, 32 bytes or more"
NEWER_MASTER_KEY = "a newer configured master key, 32 bytes or more"


def keys_of(records: dict, configured: str = "", *cluster_secrets: str) -> DataKeys:
    return DataKeys(master_keys(configured, ClusterKeys(list(cluster_secrets or ["cluster secret"]))), records.get)


def sealed_by_earlier_releases(cluster_secret: str, secret: bytes, label: str) -> str:
    """Sealed as releases before the purpose keys did: under HMAC(cluster secret, a label)."""
    master = hmac.digest(cluster_secret.encode(), b"nebulaio object encryption master key", "sha256")
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(master).encrypt(nonce, secret, label.encode())).decode()


class KeyStore:
    """Key-store records as the replica keeps them, made the way the Admin API makes them."""

    def __init__(self):
        self.records: dict[str, dict] = {}
        self.keys = keys_of(self.records)

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
    other = keys_of(store.records, "", "another secret")
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


def test_a_configured_master_key_seals_and_what_the_cluster_secret_sealed_still_opens(store):
    store.create("k1")
    wanted = [{"mode": SSE_S3}, {"mode": SSE_KMS, "context": {}}, {"mode": SSE_KMS, "kms_key": "k1", "context": {}}]
    before = [store.keys.new(one, "b") for one in wanted]
    configured = keys_of(store.records, MASTER_KEY)
    for data_key, sse in before:
        assert configured.open(sse, None, "b") == data_key
    # A key-store key made under the earlier master key still takes new objects.
    data_key, sse = configured.new(wanted[2], "b")
    assert configured.open(sse, None, "b") == data_key
    data_key, sse = configured.new({"mode": SSE_S3}, "b")
    assert code_of(lambda: store.keys.open(sse, None, "b")) == "InternalError"
    only_configured = DataKeys(KeyRing(master_keys(MASTER_KEY, ClusterKeys(["x"])).keys[:1]), store.records.get)
    assert only_configured.open(sse, None, "b") == data_key


def test_a_rotated_master_key_keeps_opening_and_the_newest_seals(store):
    old = keys_of(store.records, MASTER_KEY)
    old_key, old_sse = old.new({"mode": SSE_S3}, "b")
    rotated = keys_of(store.records, f"{NEWER_MASTER_KEY},{MASTER_KEY}")
    assert rotated.open(old_sse, None, "b") == old_key
    new_key, new_sse = rotated.new({"mode": SSE_KMS, "context": {}}, "b")
    assert rotated.open(new_sse, None, "b") == new_key
    assert code_of(lambda: old.open(new_sse, None, "b")) == "InternalError"
    assert keys_of(store.records, NEWER_MASTER_KEY).open(new_sse, None, "b") == new_key


def test_what_earlier_releases_sealed_under_the_cluster_secret_still_opens(store):
    """A data directory written before: an SSE-S3 record and a key-store key's material sealed
    under the old master key derivation, and an aws/s3 record whose key derives from it."""
    data_key = os.urandom(32)
    sse = {"mode": SSE_S3, "key": sealed_by_earlier_releases("cluster secret", data_key, SSE_S3)}
    assert store.keys.open(sse, None, "b") == data_key
    material = os.urandom(32)
    store.records["old"] = {
        "id": "old",
        "enabled": True,
        "versions": [sealed_by_earlier_releases("cluster secret", material, "kms:old")],
    }
    wrapped = base64.b64encode(b"\0" * 12 + AESGCM(material).encrypt(b"\0" * 12, data_key, b"{}")).decode()
    record = {"mode": SSE_KMS, "kms_key": "old", "kms_version": 0, "context": {}, "bucket_key": False, "key": wrapped}
    assert store.keys.open(record, None, "b") == data_key
    assert keys_of(store.records, MASTER_KEY, "new secret", "cluster secret").open(record, None, "b") == data_key
    assert code_of(lambda: keys_of(store.records, "", "new secret").open(record, None, "b")) == "InternalError"
    # New keys are sealed with the purpose key, never again the old way.
    _, fresh = store.keys.new({"mode": SSE_S3}, "b")
    legacy_only = KeyRing([hmac.digest(b"cluster secret", b"nebulaio object encryption master key", "sha256")])
    assert code_of(lambda: DataKeys(legacy_only, store.records.get).open(fresh, None, "b")) == "InternalError"


def test_a_retired_cluster_secret_still_opens_what_its_master_key_sealed(store):
    store.create("k1")
    before = [store.keys.new(one, "b") for one in ({"mode": SSE_S3}, {"mode": SSE_KMS, "kms_key": "k1", "context": {}})]
    retired = DataKeys(master_keys("", ClusterKeys(["new secret"], retired=["cluster secret"])), store.records.get)
    for data_key, sse in before:
        assert retired.open(sse, None, "b") == data_key
    _, after = retired.new({"mode": SSE_S3}, "b")
    assert code_of(lambda: store.keys.open(after, None, "b")) == "InternalError"
