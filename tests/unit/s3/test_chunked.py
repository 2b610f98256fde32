"""aws-chunked decoding: AWS's worked examples, chains built here, and botocore's own framing."""

import contextlib
import hashlib
import io
import json
import time
from calendar import timegm
from pathlib import Path

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha1Checksum, Sha256Checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3 import sigv4
from nebulaio.s3.chunked import READ_BLOCK, AwsChunkedDecoder
from nebulaio.util.checksums import new_checksum

EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "conformance" / "sigv4" / "aws_s3_examples.json").read_text(encoding="utf-8")
)
EXAMPLES_NOW = timegm(time.strptime(EXAMPLES["now"], "%Y%m%dT%H%M%SZ"))
SEED_REQUESTS = {
    example["headers"]["x-amz-content-sha256"]: example
    for example in EXAMPLES["requests"]
    if example["headers"].get("x-amz-content-sha256", "").startswith("STREAMING")
}
SIGNED = sigv4.STREAMING_PAYLOAD
SIGNED_TRAILER = sigv4.STREAMING_PAYLOAD_TRAILER
UNSIGNED_TRAILER = sigv4.STREAMING_UNSIGNED_PAYLOAD_TRAILER


def seed_context(mode: str) -> sigv4.SigningContext:
    """The context `authenticate` gives for AWS's chunked example request of this mode."""
    example = SEED_REQUESTS[mode]
    return sigv4.authenticate(
        example["method"],
        example["path"],
        example["query"],
        example["headers"],
        {EXAMPLES["access_key"]: EXAMPLES["secret_key"]}.get,
        EXAMPLES_NOW,
    )


def frame(chunks: list[bytes], signatures: list[str] | None, trailer_lines: list[str]) -> bytes:
    """An aws-chunked body: data chunks, the final empty chunk, trailer lines, an empty line."""
    body = bytearray()
    for index, chunk in enumerate([*chunks, b""]):
        extension = f";chunk-signature={signatures[index]}" if signatures else ""
        body += f"{len(chunk):x}{extension}\r\n".encode() + chunk
        if chunk:
            body += b"\r\n"
    for line in trailer_lines:
        body += line.encode("latin-1") + b"\r\n"
    return bytes(body + b"\r\n")


def chain(ctx: sigv4.SigningContext, chunks: list[bytes], trailers: dict[str, str] | None = None):
    """Chunk signatures (and the trailer lines) computed here, straight from AWS's formulas."""
    previous = ctx.seed_signature
    signatures = []
    for chunk in [*chunks, b""]:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                ctx.amz_date,
                ctx.scope,
                previous,
                hashlib.sha256(b"").hexdigest(),
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = sigv4.sign(ctx.signing_key, to_sign)
        signatures.append(previous)
    lines = []
    if trailers is not None:
        lines = [f"{name}:{value}" for name, value in trailers.items()]
        canonical = "".join(line + "\n" for line in lines).encode()
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-TRAILER", ctx.amz_date, ctx.scope, previous, hashlib.sha256(canonical).hexdigest()]
        )
        lines.append(f"x-amz-trailer-signature:{sigv4.sign(ctx.signing_key, to_sign)}")
    return signatures, lines


class Trickle:
    """A raw body that answers at most `step` bytes a read, and counts what it gave."""

    def __init__(self, data: bytes, step: int):
        self._stream = io.BytesIO(data)
        self._step = step
        self.given = 0

    def read(self, size: int) -> bytes:
        data = self._stream.read(min(size, self._step))
        self.given += len(data)
        return data


def decode(body: bytes, ctx, mode: str, decoded_length: int | None, step: int = 1 << 20, size: int = -1):
    decoder = AwsChunkedDecoder(Trickle(body, step).read, ctx, mode, decoded_length)
    if size < 0:
        return decoder.read(), decoder.trailers
    pieces = []
    while piece := decoder.read(size):
        assert len(piece) <= size
        pieces.append(piece)
    assert decoder.read(size) == b""
    return b"".join(pieces), decoder.trailers


# --- AWS's examples ------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES["chunked"], ids=lambda example: example["mode"])
@pytest.mark.parametrize(("step", "size"), [(1 << 20, -1), (4096, 65536), (7, 1000), (65536, 1)])
def test_aws_chunked_examples_decode(example, step, size):
    ctx = seed_context(example["mode"])
    assert ctx.seed_signature == example["seed_signature"]
    chunks = [b"a" * length for length in example["chunk_sizes"] if length]
    body = frame(chunks, example["chunk_signatures"], example["trailer"])
    if "encoded_length" in example:
        assert len(body) == example["encoded_length"]
    data, trailers = decode(body, ctx, example["mode"], sum(example["chunk_sizes"]), step, size)
    assert data == b"a" * 66560
    assert trailers == {line.split(":")[0]: line.split(":")[1] for line in example["trailer"][:-1]}


@pytest.mark.parametrize("example", EXAMPLES["chunked"], ids=lambda example: example["mode"])
def test_chain_built_here_reproduces_aws_signatures(example):
    ctx = seed_context(example["mode"])
    chunks = [b"a" * length for length in example["chunk_sizes"] if length]
    trailers = dict(line.split(":") for line in example["trailer"][:-1]) if example["trailer"] else None
    signatures, lines = chain(ctx, chunks, trailers)
    assert signatures == example["chunk_signatures"]
    assert lines == example["trailer"]


def test_crc32c_trailer_of_the_aws_example_is_the_checksum_of_its_data():
    checksum = new_checksum("crc32c")
    checksum.update(b"a" * 66560)
    assert checksum.b64digest() == "sOO8/Q=="


# --- chains built here ---------------------------------------------------------------------

CTX = seed_context(SIGNED)
CTX_TRAILER = seed_context(SIGNED_TRAILER)


def signed_body(chunks, ctx=CTX, trailers=None):
    signatures, lines = chain(ctx, chunks, trailers)
    return frame(chunks, signatures, lines)


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=40000),
    chunk_size=st.integers(min_value=8192, max_value=20000),
    step=st.integers(min_value=1, max_value=70000),
    size=st.integers(min_value=1, max_value=70000),
    trailer=st.booleans(),
)
def test_signed_streams_round_trip(data, chunk_size, step, size, trailer):
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    checksum = new_checksum("sha256")
    checksum.update(data)
    trailers = {"x-amz-checksum-sha256": checksum.b64digest()} if trailer else None
    ctx, mode = (CTX_TRAILER, SIGNED_TRAILER) if trailer else (CTX, SIGNED)
    body = signed_body(chunks, ctx, trailers)
    decoded, got = decode(body, ctx, mode, len(data), max(step, 1), size)
    assert decoded == data
    assert got == (trailers or {})


def test_a_changed_byte_fails_its_chunk_before_the_chunk_is_all_returned():
    chunks = [b"x" * 65536, b"y" * 9000]
    body = bytearray(signed_body(chunks))
    body[body.index(b"x") + 30000] = ord("z")
    decoder = AwsChunkedDecoder(io.BytesIO(bytes(body)).read, CTX, SIGNED, 74536)
    returned = 0
    with pytest.raises(S3Error) as caught:
        while piece := decoder.read(1000):
            returned += len(piece)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert returned < 65536


def test_reordered_chunks_fail():
    chunks = [b"a" * 8192, b"b" * 8192]
    signatures, _ = chain(CTX, chunks)
    body = frame([chunks[1], chunks[0]], [signatures[1], signatures[0], signatures[2]], [])
    with pytest.raises(S3Error, match="SignatureDoesNotMatch"):
        decode(body, CTX, SIGNED, 16384)


def test_dropping_the_final_chunk_or_truncating_anywhere_fails():
    chunks = [b"a" * 8192, b"b" * 300]
    body = signed_body(chunks)
    for cut in range(0, len(body), 37):
        with pytest.raises(S3Error):
            decode(body[:cut], CTX, SIGNED, 8492)
    with pytest.raises(S3Error, match="IncompleteBody"):
        decode(body[:-2], CTX, SIGNED, 8492)


@pytest.mark.parametrize("declared", [0, 8491, 8493])
def test_decoded_length_must_agree(declared):
    with pytest.raises(S3Error, match="IncompleteBody"):
        decode(signed_body([b"a" * 8192, b"b" * 300]), CTX, SIGNED, declared)


def test_only_the_last_signed_chunk_may_be_small():
    with pytest.raises(S3Error, match="InvalidChunkSizeError"):
        decode(signed_body([b"a" * 100, b"b" * 100]), CTX, SIGNED, 200)


def test_trailer_signature_is_checked():
    trailers = {"x-amz-checksum-crc32": "AAAAAA=="}
    body = signed_body([b"a" * 10], CTX_TRAILER, trailers)
    assert decode(body, CTX_TRAILER, SIGNED_TRAILER, 10)[1] == trailers
    with pytest.raises(S3Error, match="SignatureDoesNotMatch"):
        decode(body.replace(b"AAAAAA==", b"AAAAAB=="), CTX_TRAILER, SIGNED_TRAILER, 10)
    signatures, lines = chain(CTX_TRAILER, [b"a" * 10], trailers)
    with pytest.raises(S3Error, match="MalformedTrailerError"):
        decode(frame([b"a" * 10], signatures, lines[:-1]), CTX_TRAILER, SIGNED_TRAILER, 10)


def test_trailer_lines_in_a_mode_without_trailers_fail():
    signatures, _ = chain(CTX, [b"a" * 10])
    with pytest.raises(S3Error, match="MalformedTrailerError"):
        decode(frame([b"a" * 10], signatures, ["x-amz-checksum-crc32:AAAAAA=="]), CTX, SIGNED, 10)


def test_missing_chunk_signature_and_bad_sizes_fail():
    for body in (frame([b"a" * 10], None, []), b"zz;chunk-signature=00\r\n", b"-1;chunk-signature=00\r\n", b"\r\n"):
        with pytest.raises(S3Error, match="InvalidArgument"):
            decode(body, CTX, SIGNED, None)


def test_framing_lines_are_bounded():
    endless = Trickle(b"1" * (10 * READ_BLOCK), READ_BLOCK)
    with pytest.raises(S3Error, match="InvalidArgument"):
        AwsChunkedDecoder(endless.read, None, UNSIGNED_TRAILER, None).read(100)
    assert endless.given <= 2 * READ_BLOCK
    long_trailer = b"0\r\nx-amz-checksum-crc32:" + b"A" * (10 * READ_BLOCK)
    endless = Trickle(long_trailer, READ_BLOCK)
    with pytest.raises(S3Error, match="MalformedTrailerError"):
        AwsChunkedDecoder(endless.read, None, UNSIGNED_TRAILER, None).read(100)
    assert endless.given <= 2 * READ_BLOCK


def test_a_large_chunk_streams_without_being_buffered():
    body = frame([b"q" * (4 * READ_BLOCK)], None, [])
    raw = Trickle(body, 1 << 30)
    decoder = AwsChunkedDecoder(raw.read, None, UNSIGNED_TRAILER, None)
    assert decoder.read(4096) == b"q" * 4096
    assert raw.given <= READ_BLOCK


def test_signed_modes_need_a_v4_context():
    with pytest.raises(S3Error, match="AccessDenied"):
        AwsChunkedDecoder(io.BytesIO().read, None, SIGNED, None)
    with pytest.raises(S3Error, match="InvalidArgument"):
        AwsChunkedDecoder(io.BytesIO().read, CTX, "UNSIGNED-PAYLOAD", None)


# --- botocore's unsigned-trailer framing ---------------------------------------------------


@pytest.mark.parametrize(
    ("checksum_class", "name"),
    [(Crc32Checksum, "crc32"), (Sha1Checksum, "sha1"), (Sha256Checksum, "sha256"), (None, None)],
)
@pytest.mark.parametrize("length", [0, 1, 5000, 3 * 1024 * 1024 + 17])
def test_botocore_unsigned_trailer_streams_decode(checksum_class, name, length):
    data = bytes(range(256)) * (length // 256) + b"\x01" * (length % 256)
    header = f"x-amz-checksum-{name}" if name else "x-amz-checksum"
    body = AwsChunkedWrapper(io.BytesIO(data), checksum_cls=checksum_class, checksum_name=header).read()
    decoded, trailers = decode(body, None, UNSIGNED_TRAILER, length, step=50000, size=65536)
    assert decoded == data
    if name:
        checksum = new_checksum(name)
        checksum.update(data)
        assert trailers == {header: checksum.b64digest()}
    else:
        assert trailers == {}


# --- garbage only ever raises S3Error ------------------------------------------------------

VALID = signed_body([b"a" * 8192, b"b" * 10])
VALID_TRAILER = signed_body([b"a" * 9000], CTX_TRAILER, {"x-amz-checksum-crc32": "AAAAAA=="})
VALID_UNSIGNED = AwsChunkedWrapper(
    io.BytesIO(b"c" * 3000), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32", chunk_size=1000
).read()
STREAMS = {SIGNED: (CTX, VALID), SIGNED_TRAILER: (CTX_TRAILER, VALID_TRAILER), UNSIGNED_TRAILER: (None, VALID_UNSIGNED)}


@settings(max_examples=200, deadline=None)
@given(
    mode=st.sampled_from(sorted(STREAMS)),
    garbage=st.binary(max_size=300),
    at=st.integers(min_value=0),
    replace=st.integers(min_value=0, max_value=40),
    whole=st.booleans(),
    declared=st.one_of(st.none(), st.integers(min_value=0, max_value=20000)),
)
def test_garbage_framing_only_raises_s3_error(mode, garbage, at, replace, whole, declared):
    ctx, valid = STREAMS[mode]
    if whole:
        body = garbage
    else:
        at %= len(valid)
        body = valid[:at] + garbage + valid[at + replace :]
    with contextlib.suppress(S3Error):
        decode(body, ctx, mode, declared, step=997, size=4096)
