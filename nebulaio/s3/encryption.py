"""Server-side encryption at the S3 edge: what a request asks for (SSE-C, SSE-S3, SSE-KMS or
the bucket's default), the headers that answer it, and Put/Get/DeleteBucketEncryption.

The sealing itself is nebulaio.encryption's; this module turns headers into its requests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import orjson

from nebulaio.encryption.keys import SSE_C, SSE_KMS, SSE_S3, WRONG_KEY_MESSAGE, kms_key_arn
from nebulaio.engine.errors import S3Error
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check

XML_TYPE = "application/xml"
ENCRYPTION = "encryption"
SSE = "x-amz-server-side-encryption"
KMS_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id"
CONTEXT = "x-amz-server-side-encryption-context"
BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
ALGORITHMS = (SSE_S3, SSE_KMS)
CUSTOMER_KEY_BYTES = 32
INSECURE_MESSAGE = (
    "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."
)
KEY_NEEDED_MESSAGE = (
    "The object was stored using a form of Server Side Encryption. "
    "The correct parameters must be provided to retrieve the object."
)
NOT_CUSTOMER_KEYED_MESSAGE = "The encryption parameters are not applicable to this object."


def _invalid(message: str, name: str, value: str = "") -> S3Error:
    return S3Error("InvalidArgument", message, ArgumentName=name, ArgumentValue=value[:256])


def customer_key(api, request, prefix: str = CUSTOMER, headers: dict | None = None) -> dict | None:
    """The SSE-C key a request sends under `prefix` (its own, or its copy source's), checked:
    {"customer_key", "key_md5"}; None when it sends none.

    Raises:
        S3Error: InvalidRequest over plain HTTP (unless allowed); InvalidEncryptionAlgorithmError;
            InvalidArgument for a missing or malformed key or an MD5 that is not the key's.
    """
    headers = request.headers if headers is None else headers
    algorithm = headers.get(prefix + "algorithm")
    key = headers.get(prefix + "key")
    md5 = headers.get(prefix + "key-md5")
    if algorithm is None and key is None and md5 is None:
        return None
    if not api.sse_c_over_http and request.environ.get("wsgi.url_scheme") != "https":
        raise S3Error("InvalidRequest", INSECURE_MESSAGE)
    if algorithm is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid"
            " encryption algorithm.",
            prefix + "algorithm",
        )
    if algorithm != SSE_S3:
        raise S3Error(
            "InvalidEncryptionAlgorithmError",
            "The encryption request you specified is not valid. The valid value is AES256.",
            ArgumentName=prefix + "algorithm",
            ArgumentValue=algorithm[:64],
        )
    if key is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate"
            " secret key.",
            prefix + "key",
        )
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != CUSTOMER_KEY_BYTES:
        raise _invalid("The secret key was invalid for the specified algorithm.", prefix + "key")
    digest = base64.b64encode(hashlib.md5(raw).digest()).decode()
    if md5 is None:
        raise _invalid(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client"
            " calculated MD5 of the secret key.",
            prefix + "key-MD5",
        )
    if md5 != digest:
        raise _invalid(
            "The calculated MD5 hash of the key did not match the hash that was provided.", prefix + "key-MD5"
        )
    return {"mode": SSE_C, "customer_key": raw, "key_md5": digest}


def requested(api, request, bucket: dict, key: str, headers: dict) -> dict | None:
    """How a new object (or upload) `key` of `bucket` (its record) is to be encrypted: what
    `headers` (the request's, or a browser form's fields) ask, else the bucket's default; None
    for not at all.

    Raises:
        S3Error: InvalidArgument for an unknown algorithm, KMS headers without aws:kms, SSE-C
            together with another mode, or a malformed encryption context.
    """
    customer = customer_key(api, request, CUSTOMER, headers)
    algorithm = headers.get(SSE)
    if customer is not None:
        if algorithm is not None:
            raise _invalid(
                "Server Side Encryption with Customer provided key is incompatible with the"
                " encryption method specified",
                SSE,
                algorithm,
            )
        return customer
    if algorithm is None:
        for name in (KMS_KEY_ID, CONTEXT):
            if name in headers:
                raise _invalid(
                    "x-amz-server-side-encryption header is not supported for this operation.", name, headers[name]
                )
        default = bucket.get(ENCRYPTION)
        if default is None:
            return None
        return dict(default, context=default_context(bucket["name"], key, default.get("bucket_key", False)))
    if algorithm not in ALGORITHMS:
        raise _invalid("The encryption method specified is not supported", SSE, algorithm)
    if algorithm == SSE_S3:
        for name in (KMS_KEY_ID, CONTEXT):
            if name in headers:
                raise _invalid(f"{name} is only valid with aws:kms.", name, headers[name])
        return {"mode": SSE_S3}
    bucket_key = _bucket_key(headers, bucket)
    return {
        "mode": SSE_KMS,
        "kms_key": kms_key_id(headers.get(KMS_KEY_ID)) or (bucket.get(ENCRYPTION) or {}).get("kms_key"),
        "context": _context(headers.get(CONTEXT)) or default_context(bucket["name"], key, bucket_key),
        "bucket_key": bucket_key,
    }


def _bucket_key(headers: dict, bucket: dict) -> bool:
    value = headers.get(BUCKET_KEY)
    if value is None:
        return bool((bucket.get(ENCRYPTION) or {}).get("bucket_key"))
    if value.lower() not in ("true", "false"):
        raise _invalid("The bucket key setting must be true or false.", BUCKET_KEY, value)
    return value.lower() == "true"


def kms_key_id(value: str | None) -> str | None:
    """The key store's id of a key named by id, by ARN (arn:...:key/ID) or, for the default
    key, by its alias."""
    if not value:
        return None
    return value.rsplit(":key/", 1)[-1].rsplit("alias/", 1)[-1]


def _context(value: str | None) -> dict | None:
    if value is None:
        return None
    try:
        context = orjson.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        context = None
    if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
        raise _invalid("The encryption context must be base64-encoded JSON of string values.", CONTEXT, value)
    return context


def default_context(bucket: str, key: str, bucket_key: bool) -> dict:
    """AWS's encryption context when the request gives none: the object's ARN (the bucket's
    with a bucket key)."""
    return {"aws:s3:arn": f"arn:aws:s3:::{bucket}" + ("" if bucket_key else f"/{key}")}


def new_key(api, request, key: str | None = None, headers: dict | None = None) -> tuple[bytes, dict] | None:
    """A new object's (data key, record "sse" field) as its request (or `headers`, a form's
    fields) and bucket ask for object `key` (the request's by default); None: plain."""
    bucket = api.layer.bucket(request.bucket)
    wanted = requested(api, request, bucket, key or request.key, request.headers if headers is None else headers)
    return None if wanted is None else api.layer.keys.new(wanted, request.bucket)


def check_customer_key(api, request, record: dict, prefix: str = CUSTOMER) -> dict | None:
    """The customer key the request sends under `prefix` for an existing object (or upload)
    `record`, checked against it: the key when the object is SSE-C, else None.

    Raises:
        S3Error: InvalidRequest when the object is SSE-C and the request sends no key, or sends
            one for an object that is not; AccessDenied for a key whose MD5 is not the object's.
    """
    sse = record.get("sse")
    customer = customer_key(api, request, prefix)
    if sse is None or sse["mode"] != SSE_C:
        if customer is not None:
            raise S3Error("InvalidRequest", NOT_CUSTOMER_KEYED_MESSAGE)
        return None
    if customer is None:
        raise S3Error("InvalidRequest", KEY_NEEDED_MESSAGE)
    if customer["key_md5"] != sse["key_md5"]:
        raise S3Error("AccessDenied", WRONG_KEY_MESSAGE)
    return customer


def object_key(api, request, record: dict, bucket: str, prefix: str = CUSTOMER) -> bytes | None:
    """The data key to read an existing object (or upload) `record` of `bucket` with, by the
    customer key the request sends under `prefix`; None when the object is plain.

    Raises:
        S3Error: as `check_customer_key`; KMS.DisabledException for a disabled key-store key.
    """
    customer = check_customer_key(api, request, record, prefix)
    sse = record.get("sse")
    if sse is None:
        return None
    return api.layer.keys.open(sse, None if customer is None else customer["customer_key"], bucket)


def source_key(api, request, bucket: str, record: dict) -> bytes | None:
    """The data key of a copy's source `record` (of `bucket`), by the x-amz-copy-source-
    customer key the request sends for it; None when the source is plain."""
    return object_key(api, request, record, bucket, COPY_SOURCE_CUSTOMER)


def answer_headers(resp, record: dict) -> None:
    """The encryption headers of an object (or upload) answered on PUT, GET, HEAD, copies and parts."""
    sse = record.get("sse")
    if sse is None:
        return
    headers = resp._headers
    if sse["mode"] == SSE_C:
        headers[CUSTOMER + "algorithm"] = SSE_S3
        headers[CUSTOMER + "key-MD5"] = sse["key_md5"]
        return
    headers[SSE] = sse["mode"]
    if sse["mode"] == SSE_KMS:
        headers[KMS_KEY_ID] = kms_key_arn(sse["kms_key"])
        headers[CONTEXT] = base64.b64encode(orjson.dumps(sse["context"])).decode()
        if sse.get("bucket_key"):
            headers[BUCKET_KEY] = "true"


# -- Put/Get/DeleteBucketEncryption --------------------------------------------------------


def parse_configuration(body: bytes) -> dict:
    """A ServerSideEncryptionConfiguration's one rule: {"mode", "kms_key"?, "bucket_key"}.

    Raises:
        S3Error: MalformedXML for a document that is not one; InvalidArgument for an unknown
            algorithm or a key id without aws:kms.
    """
    rules = list(xml.parse(body, "ServerSideEncryptionConfiguration"))
    if len(rules) != 1 or rules[0].tag != "Rule":
        raise S3Error("MalformedXML")
    rule = {child.tag: child for child in rules[0]}
    default = rule.get("ApplyServerSideEncryptionByDefault")
    if default is None or set(rule) - {"ApplyServerSideEncryptionByDefault", "BucketKeyEnabled"}:
        raise S3Error("MalformedXML")
    fields = {child.tag: (child.text or "").strip() for child in default}
    if set(fields) - {"SSEAlgorithm", "KMSMasterKeyID"} or "SSEAlgorithm" not in fields:
        raise S3Error("MalformedXML")
    algorithm = fields["SSEAlgorithm"]
    if algorithm not in ALGORITHMS:
        raise _invalid("The encryption method specified is not supported", "SSEAlgorithm", algorithm)
    configuration = {"mode": algorithm, "bucket_key": False}
    if fields.get("KMSMasterKeyID"):
        if algorithm != SSE_KMS:
            raise _invalid(
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
                "ApplyServerSideEncryptionByDefault",
            )
        configuration["kms_key"] = kms_key_id(fields["KMSMasterKeyID"])
    if "BucketKeyEnabled" in rule:
        value = (rule["BucketKeyEnabled"].text or "").strip().lower()
        if value not in ("true", "false"):
            raise S3Error("MalformedXML")
        configuration["bucket_key"] = value == "true"
    return configuration


def put_bucket_encryption(api, request, resp) -> None:
    api.layer.bucket(request.bucket)
    require_integrity_check(request)
    configuration = parse_configuration(read_body(request, api.request_timeout))
    if configuration["mode"] == SSE_KMS and configuration.get("kms_key"):
        api.layer.keys.check_kms_key(configuration["kms_key"])
    api.layer.configure_bucket(request.bucket, ENCRYPTION, configuration)


def get_bucket_encryption(api, request, resp) -> None:
    configuration = api.layer.bucket(request.bucket).get(ENCRYPTION)
    if configuration is None:
        raise S3Error("ServerSideEncryptionConfigurationNotFoundError", BucketName=request.bucket)
    key = (
        f"<KMSMasterKeyID>{xml.escape(configuration['kms_key'])}</KMSMasterKeyID>"
        if configuration.get("kms_key")
        else ""
    )
    resp.content_type = XML_TYPE
    resp.data = xml.document(
        "ServerSideEncryptionConfiguration",
        f"<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>{configuration['mode']}</SSEAlgorithm>{key}"
        f"</ApplyServerSideEncryptionByDefault>"
        f"<BucketKeyEnabled>{xml.TRUE_FALSE[configuration['bucket_key']]}</BucketKeyEnabled></Rule>",
    )


def delete_bucket_encryption(api, request, resp) -> None:
    api.layer.configure_bucket(request.bucket, ENCRYPTION, None)
    resp.status = 204
