"""Request heads and chunked bodies: what parses, what is refused, and that framing never
depends on where the network split the bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.util.httphead import BadRequest, ChunkedDecoder, parse_head

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+.^`|~-", min_size=1)
VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=40
)


@given(
    method=TOKEN,
    target=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80),
    fields=st.dictionaries(TOKEN.filter(lambda name: "_" not in name), VALUE, max_size=8),
)
def test_a_well_formed_head_reaches_the_environ_whole(method, target, fields):
    fields = {
        name: value for name, value in fields.items() if name.lower() not in ("content-length", "transfer-encoding")
    }
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in fields.items())]
    head = parse_head("\r\n".join(lines).encode("latin-1"))
    assert (head.method, head.target, head.length, head.chunked) == (method, target, None, False)
    expected: dict[str, list[str]] = {}
    for name, value in fields.items():
        key = "CONTENT_TYPE" if name.lower() == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        expected.setdefault(key, []).append(value.strip(" \t"))
    assert {key: head.environ[key] for key in expected} == {key: ",".join(values) for key, values in expected.items()}


@pytest.mark.parametrize(
    "head",
    [
        b"GET /a HTTP/2.0",
        b"GET /caf\xc3\xa9 HTTP/1.1",
        b"GET /a b HTTP/1.1",
        b"PUT /a HTTP/1.1\r\nContent-Length: -5",
        b"PUT /a HTTP/1.1\r\nContent-Length: 0x10",
        b"PUT /a HTTP/1.1\r\nContent-Length: " + b"5" * 65,
        b"PUT /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6",
        b"PUT /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked",
        b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
        b"GET /a HTTP/1.1\r\nNo-Colon-Here",
        b"GET /a HTTP/1.1\r\nBad Name: v",
        b"GET /a HTTP/1.1\r\n: empty",
        b"GET /a HTTP/1.1\r\nX-Nul: a\x00b",
        b"GET /a HTTP/1.1\r\nX-Bare-Cr: a\rb",
        b"GET /a HTTP/1.1\r\nX-Bare-Lf: a\nb",
        b"GET /a HTTP/1.1\r\nHost: a\r\nX-Bare-Lf-Last: b\n",
    ],
)
def test_smuggling_shapes_are_refused(head):
    with pytest.raises(BadRequest):
        parse_head(head)


@given(
    name=TOKEN,
    value=VALUE,
    control=st.characters(max_codepoint=0x1F, blacklist_characters="\t").map(ord) | st.just(0x7F),
    where=st.integers(min_value=0, max_value=40),
)
def test_a_control_character_anywhere_in_a_value_is_refused(name, value, control, where):
    cut = min(where, len(value))
    raw = f"{name}: {value[:cut]}".encode("latin-1") + bytes([control]) + value[cut:].encode("latin-1")
    with pytest.raises(BadRequest):
        parse_head(b"GET /a HTTP/1.1\r\nHost: h\r\n" + raw)


def test_names_with_underscores_never_pose_as_names_with_dashes():
    head = parse_head(b"GET / HTTP/1.1\r\nX_Amz_Date: forged\r\nX-Amz-Date: real")
    assert head.environ["HTTP_X_AMZ_DATE"] == "real"


def test_connection_persistence_follows_the_protocol_version():
    assert parse_head(b"GET / HTTP/1.1").keep_alive
    assert not parse_head(b"GET / HTTP/1.1\r\nConnection: close").keep_alive
    assert not parse_head(b"GET / HTTP/1.0").keep_alive
    assert parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive").keep_alive


def frame(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part) + b"0\r\nTrailer: x\r\n\r\n"


@given(
    parts=st.lists(st.binary(max_size=300), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
    following=st.binary(max_size=20),
)
def test_a_chunked_body_decodes_the_same_however_it_is_split(parts, cuts, following):
    stream = frame(parts) + following
    decoder = ChunkedDecoder()
    body, rest = [], b""
    previous = 0
    for cut in [*sorted(min(cut, len(stream)) for cut in cuts), len(stream)]:
        if decoder.done:
            rest += stream[previous:cut]
        else:
            pieces, left = decoder.feed(stream[previous:cut])
            body += pieces
            rest += left
        previous = cut
    assert decoder.done
    assert b"".join(body) == b"".join(parts)
    assert rest == following


@pytest.mark.parametrize("stream", [b"zz\r\n", b"5\r\nabcdeXY", b"1" * 20000])
def test_a_malformed_chunked_body_is_refused(stream):
    with pytest.raises(BadRequest):
        ChunkedDecoder().feed(stream)
