"""Server-side encryption against a real node: SSE-S3, SSE-C and SSE-KMS with boto3.

The bytes the node keeps (object files, the metadata replica, the raft log) never hold the
plaintext; range reads decrypt correctly at every page boundary; refusals carry AWS's codes
and change nothing; a node killed with SIGKILL in the middle of an encrypted multipart upload
keeps every part it acknowledged.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import threading
import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import (
    empty_bucket,
    fresh_bucket,
    make_client,
    signed_request,
    strace_works,
    traced_sendfile,
    wait_for,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cluster_repair import record_of
from test_tls import tls_node  # noqa: F401 (a fixture)

from nebulaio.encryption.pages import PAGE, sealed_size
from nebulaio.storage.objects import key_hash

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def sse_node(node_factory):
    """A node that accepts SSE-C over plain HTTP, as tests need (AWS only takes it over HTTPS)."""
    return node_factory(extra_env={"NEBULAIO_SSE_C_OVER_HTTP": "true"})


@pytest.fixture(scope="module")
def client(sse_node):
    return sse_node.client()


@pytest.fixture(scope="module")
def raw(sse_node):
    """raw(method, path, body=b"", headers=None) -> requests.Response, signed as root, to the SSE node."""
    return lambda *args, **kwargs: signed_request(sse_node, *args, **kwargs)


@pytest.fixture
def bucket(client):
    with fresh_bucket(client, "sse") as name:
        yield name


def customer(key: bytes, prefix: str = "") -> dict:
    return {f"{prefix}SSECustomerAlgorithm": "AES256", f"{prefix}SSECustomerKey": key}


def error_of(call) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def admin(node, method: str, path: str, **kwargs) -> requests.Response:
    login = {"username": node.root_user, "password": node.root_password}
    token = requests.post(node.admin_url + "/api/v1/auth/login", json=login, timeout=10).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, node.admin_url + path, headers=headers, timeout=10, **kwargs)


def stored_files(node):
    """Every regular file under the node's data directory (not its sockets)."""
    for directory, _, files in os.walk(node.data):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                yield path


def on_disk(node, needle: bytes) -> list[str]:
    """Every file under the node's data directory that holds `needle`."""
    found = []
    for path in stored_files(node):
        try:
            with open(path, "rb") as file:
                tail = b""
                while block := file.read(4 * MiB):
                    if needle in tail + block:
                        found.append(path)
                        break
                    tail = block[-len(needle) :]
        except OSError:  # removed meanwhile
            continue
    return found


# -- each mode, and what reaches the disk ------------------------------------------------


@pytest.mark.parametrize("size", [100, 3 * PAGE + 17], ids=["inline", "file"])
def test_no_mode_leaves_the_plaintext_on_disk(sse_node, client, bucket, size):
    marker = os.urandom(16).hex().encode()
    body = (marker * (size // len(marker) + 1))[:size]
    kms_key = admin(sse_node, "POST", "/api/v1/kms/keys", json={"description": "disk"}).json()["id"]
    modes = {
        "s3": {"ServerSideEncryption": "AES256"},
        "c": customer(os.urandom(32)),
        "kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key},
    }
    for name, mode in modes.items():
        answer = client.put_object(Bucket=bucket, Key=name, Body=body, **mode)
        assert answer["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        reading = {k: v for k, v in mode.items() if k.startswith("SSECustomer")}
        assert client.get_object(Bucket=bucket, Key=name, **reading)["Body"].read() == body
    assert on_disk(sse_node, marker[:32]) == []
    client.put_object(Bucket=bucket, Key="plain", Body=body)
    assert on_disk(sse_node, marker[:32]) != []  # the scan can find a plaintext


def test_sse_s3_answers_its_headers(client, bucket):
    put = client.put_object(Bucket=bucket, Key="k", Body=b"data", ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert client.head_object(Bucket=bucket, Key="k")["ServerSideEncryption"] == "AES256"
    got = client.get_object(Bucket=bucket, Key="k")
    assert (got["ServerSideEncryption"], got["Body"].read()) == ("AES256", b"data")
    assert "ServerSideEncryption" not in client.put_object(Bucket=bucket, Key="p", Body=b"x")


@pytest.mark.parametrize("size", [0, PAGE, 5 * MiB], ids=["empty", "one-page", "large"])
def test_sizes_at_the_edges_read_back(client, bucket, size):
    body = os.urandom(size)
    key = os.urandom(32)
    client.put_object(Bucket=bucket, Key="s3", Body=body, ServerSideEncryption="AES256")
    client.put_object(Bucket=bucket, Key="c", Body=body, **customer(key))
    assert client.get_object(Bucket=bucket, Key="s3")["Body"].read() == body
    got = client.get_object(Bucket=bucket, Key="c", **customer(key))
    assert (got["ContentLength"], got["Body"].read()) == (size, body)


def test_sse_c_needs_the_right_key(client, bucket):
    key = os.urandom(32)
    put = client.put_object(Bucket=bucket, Key="k", Body=b"secret", **customer(key))
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(key).digest()).decode()
    got = client.get_object(Bucket=bucket, Key="k", **customer(key))
    assert got["Body"].read() == b"secret"
    assert got["SSECustomerKeyMD5"] == put["SSECustomerKeyMD5"]
    assert client.head_object(Bucket=bucket, Key="k", **customer(key))["ContentLength"] == 6
    wrong = customer(os.urandom(32))
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="k", **wrong)) == (403, "AccessDenied")
    assert error_of(lambda: client.head_object(Bucket=bucket, Key="k", **wrong))[0] == 403
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="k")) == (400, "InvalidRequest")
    assert error_of(lambda: client.head_object(Bucket=bucket, Key="k"))[0] == 400
    # a key for a plain object is refused too
    client.put_object(Bucket=bucket, Key="plain", Body=b"p")
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="plain", **customer(key))) == (400, "InvalidRequest")


def test_sse_c_bad_keys_are_refused_and_change_nothing(client, bucket, raw):
    key = os.urandom(32)
    client.put_object(Bucket=bucket, Key="k", Body=b"first", **customer(key))
    short = base64.b64encode(b"short").decode()
    bad = {
        "a bad algorithm": (
            {"SSECustomerAlgorithm": "AES128", "SSECustomerKey": key},
            "InvalidEncryptionAlgorithmError",
        ),
        "a short key": (
            {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": short, "SSECustomerKeyMD5": short},
            "InvalidArgument",
        ),
    }
    for mode, code in bad.values():
        assert error_of(lambda mode=mode: client.put_object(Bucket=bucket, Key="k", Body=b"second", **mode)) == (
            400,
            code,
        )
    md5 = base64.b64encode(hashlib.md5(b"another").digest()).decode()
    encoded = base64.b64encode(key).decode()
    answer = raw(
        "PUT",
        f"/{bucket}/k",
        body=b"second",
        headers={
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": encoded,
            "x-amz-server-side-encryption-customer-key-md5": md5,
        },
    )
    assert answer.status_code == 400 and b"<Code>InvalidArgument</Code>" in answer.content
    assert client.get_object(Bucket=bucket, Key="k", **customer(key))["Body"].read() == b"first"


def test_sse_c_is_refused_over_plain_http_by_default(s3, node):
    name = f"sse-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    try:
        status, code = error_of(lambda: s3.put_object(Bucket=name, Key="k", Body=b"x", **customer(os.urandom(32))))
        assert (status, code) == (400, "InvalidRequest")
        assert error_of(lambda: s3.head_object(Bucket=name, Key="k"))[0] == 404
    finally:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)


def test_sse_c_over_https_needs_no_setting(tls_node):  # noqa: F811 (the fixture)
    client = make_client(tls_node.s3_url, verify=tls_node.ca_file)
    client.create_bucket(Bucket="sse-https")
    key, body = os.urandom(32), os.urandom(PAGE + 3)
    client.put_object(Bucket="sse-https", Key="k", Body=body, **customer(key))
    assert client.get_object(Bucket="sse-https", Key="k", **customer(key))["Body"].read() == body


# -- ranges ---------------------------------------------------------------------------------

RANGED_SIZE = 3 * PAGE + 123
BOUNDARIES = sorted({max(0, min(RANGED_SIZE - 1, p * PAGE + d)) for p in range(4) for d in (-1, 0, 1)})


@pytest.fixture(scope="module")
def ranged(client):
    """One object of each mode, a few pages long."""
    name = f"sse-ranges-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    body = os.urandom(RANGED_SIZE)
    key = os.urandom(32)
    client.put_object(Bucket=name, Key="s3", Body=body, ServerSideEncryption="AES256")
    client.put_object(Bucket=name, Key="c", Body=body, **customer(key))
    yield name, body, {"s3": {}, "c": customer(key)}
    empty_bucket(client, name)
    client.delete_bucket(Bucket=name)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    first=st.one_of(st.sampled_from(BOUNDARIES), st.integers(0, RANGED_SIZE - 1)),
    length=st.one_of(st.sampled_from([1, 2, PAGE - 1, PAGE, PAGE + 1]), st.integers(1, RANGED_SIZE)),
    mode=st.sampled_from(["s3", "c"]),
)
def test_range_reads_decrypt_at_every_page_boundary(client, ranged, first, length, mode):
    name, body, reading = ranged
    last = min(first + length, RANGED_SIZE) - 1
    got = client.get_object(Bucket=name, Key=mode, Range=f"bytes={first}-{last}", **reading[mode])
    assert got["ContentRange"] == f"bytes {first}-{last}/{RANGED_SIZE}"
    assert got["Body"].read() == body[first : last + 1]


def test_suffix_and_open_ranges(client, ranged):
    name, body, reading = ranged
    assert client.get_object(Bucket=name, Key="c", Range="bytes=-70000", **reading["c"])["Body"].read() == body[-70000:]
    assert client.get_object(Bucket=name, Key="s3", Range=f"bytes={PAGE}-")["Body"].read() == body[PAGE:]


# -- bucket default --------------------------------------------------------------------------


def test_bucket_default_encryption(sse_node, client, bucket):
    assert error_of(lambda: client.get_bucket_encryption(Bucket=bucket)) == (
        404,
        "ServerSideEncryptionConfigurationNotFoundError",
    )
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert client.put_object(Bucket=bucket, Key="k", Body=b"x")["ServerSideEncryption"] == "AES256"
    assert client.head_object(Bucket=bucket, Key="k")["ServerSideEncryption"] == "AES256"

    kms_key = admin(sse_node, "POST", "/api/v1/kms/keys", json={}).json()["id"]
    rule = {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key},
        "BucketKeyEnabled": True,
    }
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    put = client.put_object(Bucket=bucket, Key="m", Body=b"y")
    assert (put["ServerSideEncryption"], put["BucketKeyEnabled"]) == ("aws:kms", True)
    assert put["SSEKMSKeyId"].endswith(f":key/{kms_key}")
    assert client.get_object(Bucket=bucket, Key="m")["Body"].read() == b"y"

    client.delete_bucket_encryption(Bucket=bucket)
    assert error_of(lambda: client.get_bucket_encryption(Bucket=bucket))[0] == 404
    assert "ServerSideEncryption" not in client.put_object(Bucket=bucket, Key="n", Body=b"z")


def test_malformed_bucket_encryption_changes_nothing(client, bucket, raw):
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    bodies = {
        b"<ServerSideEncryptionConfiguration><Rule><Nope/></Rule></ServerSideEncryptionConfiguration>": "MalformedXML",
        b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>DES"
        b"</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>": (
            "InvalidArgument"
        ),
    }
    for body, code in bodies.items():
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        answer = raw("PUT", f"/{bucket}?encryption", body=body, headers={"content-md5": md5})
        assert answer.status_code == 400 and f"<Code>{code}</Code>".encode() in answer.content
    rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


# -- SSE-KMS ---------------------------------------------------------------------------------


def test_kms_keys_create_rotate_disable(sse_node, client, bucket):
    created = admin(sse_node, "POST", "/api/v1/kms/keys", json={"description": "backups"})
    assert created.status_code == 201
    key_id = created.json()["id"]
    assert key_id in {key["id"] for key in admin(sse_node, "GET", "/api/v1/kms/keys").json()["keys"]}
    context = base64.b64encode(b'{"team":"backup"}').decode()
    put = client.put_object(
        Bucket=bucket,
        Key="old",
        Body=b"sealed before rotation",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_id,
        SSEKMSEncryptionContext=context,
    )
    assert put["SSEKMSKeyId"].endswith(f":key/{key_id}") and "BucketKeyEnabled" not in put
    head = client.head_object(Bucket=bucket, Key="old")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == put["SSEKMSKeyId"]

    rotated = admin(sse_node, "POST", f"/api/v1/kms/keys/{key_id}/rotate").json()
    assert rotated["versions"] == 2
    client.put_object(Bucket=bucket, Key="new", Body=b"after", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    assert client.get_object(Bucket=bucket, Key="old")["Body"].read() == b"sealed before rotation"
    assert client.get_object(Bucket=bucket, Key="new")["Body"].read() == b"after"

    assert admin(sse_node, "PATCH", f"/api/v1/kms/keys/{key_id}", json={"enabled": False}).json()["enabled"] is False
    refused = lambda: client.put_object(  # noqa: E731
        Bucket=bucket, Key="refused", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id
    )
    assert error_of(refused) == (400, "KMS.DisabledException")
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="old")) == (400, "KMS.DisabledException")
    assert error_of(lambda: client.head_object(Bucket=bucket, Key="refused"))[0] == 404
    admin(sse_node, "PATCH", f"/api/v1/kms/keys/{key_id}", json={"enabled": True})
    assert client.get_object(Bucket=bucket, Key="old")["Body"].read() == b"sealed before rotation"

    unknown = lambda: client.put_object(  # noqa: E731
        Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=str(uuid.uuid4())
    )
    assert error_of(unknown) == (400, "KMS.NotFoundException")
    too_long = lambda: client.put_object(  # noqa: E731
        Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="k" * 2000
    )
    assert error_of(too_long) == (400, "KMS.NotFoundException")
    assert admin(sse_node, "GET", f"/api/v1/kms/keys/{'k' * 2000}").status_code == 404
    assert admin(sse_node, "GET", f"/api/v1/kms/keys/{uuid.uuid4()}").status_code == 404


def test_a_policy_can_require_encrypted_uploads(new_user, s3):
    name = f"sse-policy-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{name}/*",
                "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
            },
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{name}/*",
                "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "forbidden"}},
            },
        ],
    }
    _, user, _ = new_user(document)
    try:
        assert error_of(lambda: user.put_object(Bucket=name, Key="plain", Body=b"x")) == (403, "AccessDenied")
        denied = lambda: user.put_object(  # noqa: E731
            Bucket=name, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="forbidden"
        )
        assert error_of(denied) == (403, "AccessDenied")
        user.put_object(Bucket=name, Key="sealed", Body=b"x", ServerSideEncryption="AES256")
        assert [item["Key"] for item in s3.list_objects_v2(Bucket=name)["Contents"]] == ["sealed"]
    finally:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)


def test_kms_without_a_key_id_uses_the_default_key(client, bucket):
    put = client.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", BucketKeyEnabled=True)
    assert put["SSEKMSKeyId"].endswith(":alias/aws/s3") and put["BucketKeyEnabled"] is True
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


# -- multipart and copies --------------------------------------------------------------------


def test_sse_c_multipart_needs_the_key_for_each_part(client, bucket):
    key = os.urandom(32)
    created = client.create_multipart_upload(Bucket=bucket, Key="mp", **customer(key))
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    assert (created["SSECustomerAlgorithm"], created["SSECustomerKeyMD5"]) == ("AES256", md5)
    upload = created["UploadId"]
    assert error_of(lambda: client.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"x")) == (
        400,
        "InvalidRequest",
    )
    first, second = os.urandom(5 * MiB + 3), os.urandom(PAGE + 5)
    answers = [
        client.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n, Body=body, **customer(key))
        for n, body in ((1, first), (2, second))
    ]
    assert {answer["SSECustomerKeyMD5"] for answer in answers} == {md5}
    etags = [answer["ETag"] for answer in answers]
    parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
    client.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    whole = first + second
    assert client.get_object(Bucket=bucket, Key="mp", **customer(key))["Body"].read() == whole
    across = f"bytes={len(first) - PAGE - 2}-{len(first) + 10}"
    got = client.get_object(Bucket=bucket, Key="mp", Range=across, **customer(key))["Body"].read()
    assert got == whole[len(first) - PAGE - 2 : len(first) + 11]
    assert client.get_object(Bucket=bucket, Key="mp", PartNumber=2, **customer(key))["Body"].read() == second
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="mp"))[0] == 400


def test_copies_between_modes(sse_node, client, bucket):
    body = os.urandom(2 * PAGE + 99)
    source_key, target_key = os.urandom(32), os.urandom(32)
    client.put_object(Bucket=bucket, Key="c1", Body=body, **customer(source_key))
    copied = client.copy_object(
        Bucket=bucket,
        Key="c2",
        CopySource={"Bucket": bucket, "Key": "c1"},
        **customer(source_key, "CopySource"),
        **customer(target_key),
    )
    assert copied["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(target_key).digest()).decode()
    assert client.get_object(Bucket=bucket, Key="c2", **customer(target_key))["Body"].read() == body
    assert error_of(lambda: client.get_object(Bucket=bucket, Key="c2", **customer(source_key)))[0] == 403
    assert (
        error_of(lambda: client.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "c1"}))[0]
        == 400
    )

    to_s3 = client.copy_object(
        Bucket=bucket,
        Key="s3",
        CopySource={"Bucket": bucket, "Key": "c2"},
        ServerSideEncryption="AES256",
        **customer(target_key, "CopySource"),
    )
    assert to_s3["ServerSideEncryption"] == "AES256"
    kms_key = admin(sse_node, "POST", "/api/v1/kms/keys", json={}).json()["id"]
    client.copy_object(
        Bucket=bucket,
        Key="kms",
        CopySource={"Bucket": bucket, "Key": "s3"},
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
    )
    client.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "kms"})
    for key in ("s3", "kms", "plain"):
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
    assert "ServerSideEncryption" not in client.head_object(Bucket=bucket, Key="plain")
    # an object re-encrypted onto itself is no "copy onto itself without changes"
    client.copy_object(
        Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "plain"}, ServerSideEncryption="AES256"
    )
    assert client.head_object(Bucket=bucket, Key="plain")["ServerSideEncryption"] == "AES256"


def test_upload_part_copy_between_modes(client, bucket):
    body = os.urandom(3 * PAGE)
    source_key = os.urandom(32)
    client.put_object(Bucket=bucket, Key="src", Body=body, **customer(source_key))
    upload = client.create_multipart_upload(Bucket=bucket, Key="dst", ServerSideEncryption="AES256")["UploadId"]
    part = client.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes={PAGE - 1}-{2 * PAGE + 1}",
        **customer(source_key, "CopySource"),
    )
    parts = [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]
    done = client.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload, MultipartUpload={"Parts": parts})
    assert done["ServerSideEncryption"] == "AES256"
    assert client.get_object(Bucket=bucket, Key="dst")["Body"].read() == body[PAGE - 1 : 2 * PAGE + 2]


# -- a crash in the middle of an encrypted upload ---------------------------------------------


def test_kill_during_encrypted_multipart_loses_no_acknowledged_part(node_factory):
    node = node_factory()
    client = node.client()
    client.create_bucket(Bucket="sse-crash")
    upload = client.create_multipart_upload(Bucket="sse-crash", Key="big", ServerSideEncryption="AES256")["UploadId"]
    bodies = [os.urandom(5 * MiB + n) for n in range(3)]
    etags = [
        client.upload_part(Bucket="sse-crash", Key="big", UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in enumerate(bodies, 1)
    ]
    # A fourth part is being received when the node is killed.
    url = client.generate_presigned_url(
        "upload_part", Params={"Bucket": "sse-crash", "Key": "big", "UploadId": upload, "PartNumber": 4}
    )
    sending, killed = threading.Event(), threading.Event()

    def slow_body():
        yield os.urandom(MiB)
        sending.set()
        killed.wait(30)
        yield os.urandom(MiB)

    def send():
        try:
            requests.put(url, data=slow_body(), timeout=30)
        except requests.RequestException:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    assert sending.wait(30)
    node.kill_group()
    killed.set()
    sender.join(30)
    node.start()
    client = node.client()
    listed = client.list_parts(Bucket="sse-crash", Key="big", UploadId=upload)["Parts"]
    assert [(part["PartNumber"], part["ETag"]) for part in listed] == list(enumerate(etags, 1))
    parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
    client.complete_multipart_upload(Bucket="sse-crash", Key="big", UploadId=upload, MultipartUpload={"Parts": parts})
    got = client.get_object(Bucket="sse-crash", Key="big")
    assert got["ServerSideEncryption"] == "AES256"
    assert got["Body"].read() == b"".join(bodies)


def test_browser_form_uploads_are_encrypted_as_asked_or_by_default(sse_node, client, bucket):
    def form_upload(key: str, fields: dict) -> int:
        signed = client.generate_presigned_post(
            bucket, key, Fields=fields, Conditions=[{name: value} for name, value in fields.items()]
        )["fields"]
        boundary = "----sse-form"
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in signed.items()
        )
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'.encode()
        body += b"form body\r\n" + f"--{boundary}--\r\n".encode()
        answer = requests.post(
            f"{sse_node.s3_url}/{bucket}",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )
        return answer.status_code

    assert form_upload("asked", {"x-amz-server-side-encryption": "aws:kms"}) == 204
    assert client.head_object(Bucket=bucket, Key="asked")["ServerSideEncryption"] == "aws:kms"
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    assert form_upload("default", {}) == 204
    got = client.get_object(Bucket=bucket, Key="default")
    assert (got["ServerSideEncryption"], got["Body"].read()) == ("AES256", b"form body")


def test_object_attributes_of_an_sse_c_object_need_its_key(client, bucket):
    key = os.urandom(32)
    client.put_object(Bucket=bucket, Key="k", Body=b"abc", **customer(key))
    attributes = lambda **extra: client.get_object_attributes(  # noqa: E731
        Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"], **extra
    )
    # botocore encodes no SSE-C key of this operation: it is sent as the headers carry it
    encoded = {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(key).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }
    assert attributes(**encoded)["ObjectSize"] == 3
    assert error_of(attributes)[0] == 400


def test_cluster_copies_are_ciphertext_and_every_node_reads_them(cluster_factory):
    """Four nodes, three copies of each object: at least one node reads from another's copy;
    a holder whose copies are wiped gets the sealed files back whole from the repair loop."""
    nodes = cluster_factory(
        3, storage=1, args=["--repair-interval", "0.5"], extra_env={"NEBULAIO_SSE_C_OVER_HTTP": "true"}
    )
    writer = nodes[0].client()
    writer.create_bucket(Bucket="sse-cluster")
    marker = os.urandom(16).hex().encode()
    body = (marker * (3 * PAGE // len(marker) + 1))[: 3 * PAGE + 5]
    key = os.urandom(32)
    writer.put_object(Bucket="sse-cluster", Key="s3", Body=body, ServerSideEncryption="AES256")
    writer.put_object(Bucket="sse-cluster", Key="c", Body=body, **customer(key))
    upload = writer.create_multipart_upload(Bucket="sse-cluster", Key="mp", ServerSideEncryption="AES256")["UploadId"]
    parts = [
        {
            "PartNumber": n,
            "ETag": writer.upload_part(Bucket="sse-cluster", Key="mp", UploadId=upload, PartNumber=n, Body=part)[
                "ETag"
            ],
        }
        for n, part in enumerate((body * 27, body), 1)
    ]
    writer.complete_multipart_upload(Bucket="sse-cluster", Key="mp", UploadId=upload, MultipartUpload={"Parts": parts})
    span = f"bytes={PAGE - 3}-{2 * PAGE + 3}"
    for node in nodes:
        reader = node.client()
        assert reader.get_object(Bucket="sse-cluster", Key="s3")["Body"].read() == body
        assert (
            reader.get_object(Bucket="sse-cluster", Key="c", Range=span, **customer(key))["Body"].read()
            == (body[PAGE - 3 : 2 * PAGE + 4])
        )
        assert reader.get_object(Bucket="sse-cluster", Key="mp")["Body"].read() == body * 28
    for node in nodes:
        assert on_disk(node, marker) == [], node.data

    record = record_of(nodes[0], "sse-cluster", "mp")
    wiped = next(node for position, node in enumerate(nodes) if f"node{position}" in record["holders"])
    wiped.stop()
    shutil.rmtree(wiped.data / "objects")
    wiped.start()
    copy = wiped.data / "objects" / "sse-cluster" / key_hash("mp") / record["vid"]
    wait_for(lambda: copy.exists() and copy.stat().st_size == record["file_size"], 120, "the repaired copy")
    assert record["file_size"] == sealed_size(27 * len(body)) + sealed_size(len(body))  # one segment a part
    assert wiped.client().get_object(Bucket="sse-cluster", Key="mp")["Body"].read() == body * 28


@pytest.mark.skipif(not strace_works(), reason="strace missing, or not allowed to trace here")
def test_plain_objects_keep_sendfile_and_sealed_ones_never_use_it(node_factory, tmp_path):
    node = node_factory(args=["--workers", "1"])
    client = node.client()
    client.create_bucket(Bucket="sse-sendfile")
    body = os.urandom(MiB)
    client.put_object(Bucket="sse-sendfile", Key="plain", Body=body)
    client.put_object(Bucket="sse-sendfile", Key="sealed", Body=body, ServerSideEncryption="AES256")
    with traced_sendfile(node, tmp_path / "sendfile.log") as calls:
        for key in ("sealed", "plain"):
            assert client.get_object(Bucket="sse-sendfile", Key=key)["Body"].read() == body
    from_file = {
        key: [line for line in calls if f"/objects/sse-sendfile/{key_hash(key)}/" in line]
        for key in ("plain", "sealed")
    }
    assert from_file["plain"], calls
    assert from_file["sealed"] == [], from_file["sealed"]
