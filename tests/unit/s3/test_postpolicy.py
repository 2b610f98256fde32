"""POST policies: conditions hold or fail with S3's messages; any document parses or fails cleanly.

The form signatures are checked here against independent signers: botocore's own
`generate_presigned_post` (SigV4) and a hand-made SigV2 HMAC-SHA1.
"""

import base64
import hashlib
import hmac
import json

import pytest
from botocore.auth import S3SigV4PostAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3 import sigv4
from nebulaio.s3.postpolicy import check_policy, parse_policy

FUTURE = "2999-12-31T23:59:59.000Z"
NOW = 1_700_000_000.0
ACCESS_KEY = "formuser"
SECRET = "form-secret"


def encode(document) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def policy_of(*conditions, expiration=FUTURE):
    return parse_policy(encode({"expiration": expiration, "conditions": list(conditions)}))


def refusal(policy, fields, bucket="photos") -> str:
    with pytest.raises(S3Error) as caught:
        check_policy(policy, fields, bucket, NOW)
    assert caught.value.code == "AccessDenied"
    return caught.value.message


def test_every_condition_kind_holds():
    policy = policy_of(
        {"bucket": "photos"},
        {"acl": "private"},
        ["eq", "$Content-Type", "image/png"],
        ["starts-with", "$key", "user/42/"],
        ["starts-with", "$x-amz-meta-note", ""],
        ["content-length-range", 1, 1000],
    )
    fields = {"key": "user/42/cat.png", "acl": "private", "content-type": "image/png", "x-amz-meta-note": "hi"}
    check_policy(policy, fields, "photos", NOW)
    assert policy.length_range == (1, 1000)


@pytest.mark.parametrize(
    "condition,fields,message",
    [
        ({"bucket": "photos"}, {}, None),
        ({"bucket": "other"}, {}, '["eq", "$bucket", "other"]'),
        (["eq", "$key", "a"], {"key": "b"}, '["eq", "$key", "a"]'),
        (["EQ", "$Key", "a"], {"key": "a"}, None),
        (["starts-with", "$key", "user/"], {"key": "admin/x"}, '["starts-with", "$key", "user/"]'),
        (["starts-with", "$key", "user/"], {"key": "user/x"}, None),
        ({"acl": "private"}, {"key": "k"}, '["eq", "$acl", "private"]'),
    ],
)
def test_a_condition_that_fails_is_named(condition, fields, message):
    policy = policy_of(condition, ["starts-with", "$key", ""])
    fields = dict(fields)
    fields.setdefault("key", "k")
    if message is None:
        check_policy(policy, fields, "photos", NOW)
    else:
        assert refusal(policy, fields) == f"Invalid according to Policy: Policy Condition failed: {message}"


def test_fields_no_condition_names_are_extra():
    policy = policy_of(["starts-with", "$key", ""])
    signature_fields = {"key": "k", "policy": "p", "x-amz-signature": "s", "file": "", "x-ignore-me": "1"}
    check_policy(policy, signature_fields, "photos", NOW)
    message = refusal(policy, {**signature_fields, "x-amz-meta-note": "n", "success_action_status": "201"})
    assert message == "Invalid according to Policy: Extra input fields: x-amz-meta-note, success_action_status"


def test_an_expired_policy_is_refused():
    policy = policy_of(["starts-with", "$key", ""], expiration="2020-01-01T00:00:00Z")
    assert refusal(policy, {"key": "k"}) == "Invalid according to Policy: Policy expired."


@pytest.mark.parametrize(
    "encoded",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        encode([]),
        encode({"conditions": []}),
        encode({"expiration": FUTURE}),
        encode({"expiration": "tomorrow", "conditions": []}),
        encode({"expiration": FUTURE, "conditions": {}}),
        encode({"expiration": FUTURE, "conditions": [{"a": "1", "b": "2"}]}),
        encode({"expiration": FUTURE, "conditions": [{"a": 1}]}),
        encode({"expiration": FUTURE, "conditions": [["in", "$key", "x"]]}),
        encode({"expiration": FUTURE, "conditions": [["eq", "key", "x"]]}),
        encode({"expiration": FUTURE, "conditions": [["eq", "$key"]]}),
        encode({"expiration": FUTURE, "conditions": [["content-length-range", "1", 2]]}),
        encode({"expiration": FUTURE, "conditions": [["content-length-range", -1, 2]]}),
        encode({"expiration": FUTURE, "conditions": ["key"]}),
    ],
)
def test_malformed_policies_are_invalid_documents(encoded):
    with pytest.raises(S3Error) as caught:
        parse_policy(encoded)
    assert caught.value.code == "InvalidPolicyDocument"
    assert caught.value.message.startswith("Invalid Policy: ")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@given(st.one_of(st.text(max_size=80), json_values.map(encode)))
def test_any_policy_parses_or_is_an_invalid_document(encoded):
    try:
        policy = parse_policy(encoded)
    except S3Error as error:
        assert error.code == "InvalidPolicyDocument"
        return
    try:
        check_policy(policy, {"key": "k"}, "b", NOW)
    except S3Error as error:
        assert error.code == "AccessDenied"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["eq", "starts-with"]),
            st.text(min_size=1, max_size=8).filter(lambda name: name.lower() != "bucket"),
            st.text(max_size=8),
        ),
        max_size=5,
    )
)
def test_conditions_agree_with_a_plain_reading(triples):
    """Fields made from the first condition on each name pass exactly when the others agree with it."""
    conditions = [[op, "$" + name, value] for op, name, value in triples]
    fields = {}
    for op, name, value in triples:
        fields.setdefault(name.lower(), value + ("-more" if op == "starts-with" else ""))
    satisfiable = all(
        fields[name.lower()] == value if op == "eq" else fields[name.lower()].startswith(value)
        for op, name, value in triples
    )
    policy = policy_of(*conditions)
    if satisfiable:
        check_policy(policy, fields, "b", NOW)
    else:
        refusal(policy, fields)


# --- the signature of a form --------------------------------------------------------------


def secret_for(access_key):
    return SECRET if access_key == ACCESS_KEY else None


def botocore_form(secret=SECRET, access_key=ACCESS_KEY) -> dict:
    """The fields botocore's POST signer (what generate_presigned_post uses) gives a policy."""
    request = AWSRequest(method="POST", url="http://127.0.0.1/b")
    fields = request.context["s3-presign-post-fields"] = {}
    request.context["s3-presign-post-policy"] = {"expiration": FUTURE, "conditions": []}
    S3SigV4PostAuth(Credentials(access_key, secret), "s3", "us-east-1").add_auth(request)
    return {name.lower(): value for name, value in fields.items()}


def v2_form(secret=SECRET) -> dict:
    policy = encode({"expiration": FUTURE, "conditions": []})
    signature = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {"awsaccesskeyid": ACCESS_KEY, "signature": signature, "policy": policy}


def test_a_botocore_signed_form_is_verified():
    context = sigv4.authenticate_form(botocore_form(), secret_for)
    assert (context.access_key, context.version) == (ACCESS_KEY, 4)


def test_a_v2_signed_form_is_verified():
    context = sigv4.authenticate_form(v2_form(), secret_for)
    assert (context.access_key, context.version) == (ACCESS_KEY, 2)


def test_a_form_without_credentials_is_anonymous():
    assert sigv4.authenticate_form({"key": "k", "policy": "p"}, secret_for) is None


@pytest.mark.parametrize(
    "form,code",
    [
        (botocore_form(secret="wrong"), "SignatureDoesNotMatch"),
        (v2_form(secret="wrong"), "SignatureDoesNotMatch"),
        (botocore_form(access_key="stranger"), "InvalidAccessKeyId"),
        (
            {**botocore_form(), "policy": encode({"expiration": FUTURE, "conditions": [["eq", "$key", "x"]]})},
            "SignatureDoesNotMatch",
        ),
        ({**botocore_form(), "x-amz-algorithm": "AWS4-HMAC-SHA1"}, "InvalidArgument"),
        ({**botocore_form(), "x-amz-credential": "formuser/2024/us-east-1/s3"}, "InvalidArgument"),
        ({**botocore_form(), "x-amz-date": "yesterday"}, "InvalidArgument"),
        ({k: v for k, v in botocore_form().items() if k != "x-amz-signature"}, "InvalidArgument"),
        ({k: v for k, v in botocore_form().items() if k != "policy"}, "InvalidArgument"),
        ({k: v for k, v in v2_form().items() if k != "signature"}, "InvalidArgument"),
    ],
)
def test_form_signature_refusals(form, code):
    with pytest.raises(S3Error) as caught:
        sigv4.authenticate_form(form, secret_for)
    assert caught.value.code == code
