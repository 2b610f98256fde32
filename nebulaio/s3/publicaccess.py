"""Block Public Access: Put/Get/DeletePublicAccessBlock (`?publicAccessBlock`); iam/publicaccess.py
says what each switch does and where it is enforced."""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.iam.publicaccess import PUBLIC_ACCESS_BLOCK, SWITCHES
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check

XML_TYPE = "application/xml"
BOOLEANS = {"true": True, "false": False}


def parse_public_access_block(body: bytes) -> dict[str, bool]:
    """The four switches of a PublicAccessBlockConfiguration; one it leaves out is off.

    Raises:
        S3Error: MalformedXML for an unknown or repeated element, or a value that is not a boolean.
    """
    switches = dict.fromkeys(SWITCHES, False)
    seen = set()
    for element in xml.parse(body, "PublicAccessBlockConfiguration"):
        value = BOOLEANS.get((element.text or "").strip().lower())
        if element.tag not in switches or element.tag in seen or value is None:
            raise S3Error("MalformedXML")
        seen.add(element.tag)
        switches[element.tag] = value
    return switches


def put_public_access_block(api, request, resp) -> None:
    api.layer.bucket(request.bucket)
    require_integrity_check(request)
    switches = parse_public_access_block(read_body(request, api.request_timeout))
    api.layer.configure_bucket(request.bucket, PUBLIC_ACCESS_BLOCK, switches)


def get_public_access_block(api, request, resp) -> None:
    switches = api.layer.bucket(request.bucket).get(PUBLIC_ACCESS_BLOCK)
    if switches is None:
        raise S3Error("NoSuchPublicAccessBlockConfiguration", BucketName=request.bucket)
    resp.content_type = XML_TYPE
    resp.data = xml.document(
        "PublicAccessBlockConfiguration",
        "".join(f"<{name}>{xml.TRUE_FALSE[switches[name]]}</{name}>" for name in SWITCHES),
    )


def delete_public_access_block(api, request, resp) -> None:
    api.layer.configure_bucket(request.bucket, PUBLIC_ACCESS_BLOCK, None)
    resp.status = 204
