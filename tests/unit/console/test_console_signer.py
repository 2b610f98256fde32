"""The console's SigV4 signer, checked against botocore's own signer."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.console.signer import Signer, canonical_query, encode
from nebulaio.util.sigv4spec import UNSIGNED_PAYLOAD

HOST = "127.0.0.1:9000"
KEYS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)


@given(key=KEYS, value=st.text(max_size=20))
def test_header_signatures_match_botocore(key, value):
    path = "/bucket/" + encode(key, safe="/")
    pairs = [("prefix", value), ("list-type", "2")]
    signed = Signer("AKID", "secret", "us-east-1").headers("GET", path, pairs, {"host": HOST}, UNSIGNED_PAYLOAD)
    headers = {name: signed[name] for name in ("host", "x-amz-date", "x-amz-content-sha256")}
    request = AWSRequest("GET", f"http://{HOST}{path}?{canonical_query(pairs)}", headers=headers)
    request.context["timestamp"] = signed["x-amz-date"]
    auth = S3SigV4Auth(Credentials("AKID", "secret"), "s3", "us-east-1")
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    assert signed["authorization"].rsplit("Signature=", 1)[1] == expected


def test_presigned_urls_match_botocore(monkeypatch):
    path = "/bucket/dir/a%20b%2Bc.txt"
    query = Signer("AKID", "secret", "us-east-1").presign(HOST, path, 600)
    fields = dict(parse_qsl(query))
    signed_at = datetime.datetime.strptime(fields["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
    request = AWSRequest("GET", f"http://{HOST}{path}", headers={"host": HOST})
    S3SigV4QueryAuth(Credentials("AKID", "secret"), "s3", "us-east-1", expires=600).add_auth(request)
    expected = dict(parse_qsl(urlsplit(request.url).query))
    assert fields["X-Amz-Signature"] == expected["X-Amz-Signature"]
