"""multipart/form-data streaming: any form, split anywhere, parses back exactly; junk fails cleanly."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3.formdata import MultipartForm, boundary_of

BOUNDARY_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_$"
LIMIT = 1 << 30

boundaries = st.text(BOUNDARY_CHARS, min_size=1, max_size=70)


def tricky(boundary: str, pieces):
    """Content made of `pieces` and of the shapes a parser can mistake for a delimiter."""
    delimiter = b"\r\n--" + boundary.encode()
    prefixes = [delimiter[:cut] for cut in range(1, len(delimiter))]
    decoys = st.sampled_from([b"\r\n", b"\r", b"\n", b"--", b"\r\n\r\n", b"-", *prefixes])
    return st.lists(st.one_of(pieces, decoys), max_size=12).map(b"".join)


def text_pieces():
    return st.text(max_size=20).map(lambda text: text.encode("utf-8"))


def disposition(name: str, filename: str | None = None) -> bytes:
    line = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        line += f'; filename="{filename}"'
    return line.encode() + b"\r\n"


def body_of(boundary: str, fields, file_name, file_bytes, after, preamble=b"") -> bytes:
    dash = b"--" + boundary.encode()
    body = bytearray(preamble + (b"\r\n" if preamble else b""))
    for name, value in fields:
        body += dash + b"\r\n" + disposition(name) + b"\r\n" + value + b"\r\n"
    if file_name is not None:
        body += dash + b"\r\n" + disposition("file", file_name) + b"Content-Type: image/png\r\n\r\n"
        body += file_bytes + b"\r\n"
    for name, value in after:
        body += dash + b"\r\n" + disposition(name) + b"\r\n" + value + b"\r\n"
    return bytes(body + dash + b"--\r\n")


def reader(data: bytes, sizes: list[int]):
    """read(n) that hands `data` out in pieces of the given sizes (cycled), never more than n."""
    state = {"at": 0, "turn": 0}

    def read(size: int) -> bytes:
        step = sizes[state["turn"] % len(sizes)]
        state["turn"] += 1
        piece = data[state["at"] : state["at"] + min(step, size)]
        state["at"] += len(piece)
        return piece

    return read


def read_all(form: MultipartForm, size: int) -> bytes:
    out = bytearray()
    while piece := form.read(size):
        assert len(piece) <= size
        out += piece
    return bytes(out)


@st.composite
def forms(draw):
    boundary = draw(boundaries)
    delimiter = b"\r\n--" + boundary.encode()
    names = draw(st.lists(st.text(NAME_CHARS, min_size=1, max_size=12), max_size=6, unique_by=str.lower))
    names = [name for name in names if name.lower() != "file"]
    fields = [(name, draw(tricky(boundary, text_pieces()))) for name in names]
    file_bytes = draw(tricky(boundary, st.binary(max_size=300)))
    after = [("key", draw(tricky(boundary, st.binary(max_size=30))))]
    preamble = draw(st.sampled_from([b"", b"a preamble", b"\r\n"]))
    for _, value in fields:
        assume(delimiter not in b"\r\n" + value + b"\r\n")
        assume(_decodes(value))
    assume(delimiter not in b"\r\n" + file_bytes + b"\r\n")
    assume(delimiter not in b"\r\n" + preamble + b"\r\n" or not preamble)
    return boundary, fields, file_bytes, after, preamble


def _decodes(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(
    forms(),
    st.lists(st.integers(1, 200), min_size=1, max_size=8),
    st.integers(1, 300),
    st.integers(1, 100),
)
def test_any_form_split_anywhere_parses_back(form_parts, sizes, chunk, file_read):
    boundary, fields, file_bytes, after, preamble = form_parts
    body = body_of(boundary, fields, "photo.png", file_bytes, after, preamble)
    form = MultipartForm(reader(body, sizes), boundary.encode(), chunk)
    parsed = form.read_fields(LIMIT)
    assert parsed == {name.lower(): value.decode() for name, value in fields}
    assert form.filename == "photo.png"
    assert form.file_type == "image/png"
    assert read_all(form, file_read) == file_bytes
    assert form.read(10) == b""


@given(forms(), st.lists(st.integers(1, 64), min_size=1, max_size=4))
def test_a_form_without_a_file_gives_its_fields(form_parts, sizes):
    boundary, fields, _, _, _ = form_parts
    form = MultipartForm(reader(body_of(boundary, fields, None, b"", []), sizes), boundary.encode(), 7)
    assert form.read_fields(LIMIT) == {name.lower(): value.decode() for name, value in fields}
    assert form.filename is None


@given(forms(), st.data())
def test_a_body_cut_short_is_malformed(form_parts, data):
    boundary, fields, file_bytes, _, _ = form_parts
    body = body_of(boundary, fields, "f", file_bytes, [])
    # Cut inside the file or before it, never after the file's delimiter.
    end_of_file = body.rindex(b"\r\n--" + boundary.encode())
    cut = data.draw(st.integers(0, end_of_file + len(boundary) + 3))
    form = MultipartForm(reader(body[:cut], [5]), boundary.encode(), 16)
    with pytest.raises(S3Error) as caught:
        form.read_fields(LIMIT)
        read_all(form, 100)
    assert caught.value.code == "MalformedPOSTRequest"


@given(st.binary(max_size=400), boundaries, st.integers(1, 64))
def test_junk_fails_only_with_s3_errors(junk, boundary, chunk):
    form = MultipartForm(reader(junk, [chunk]), boundary.encode(), chunk)
    try:
        form.read_fields(2048)
        read_all(form, 50)
    except S3Error as error:
        assert error.code in ("MalformedPOSTRequest", "MaxPostPreDataLengthExceeded", "InvalidArgument")


def test_fields_before_the_file_are_held_to_the_limit():
    value = b"x" * 5000
    body = body_of("b", [("a", value), ("c", value)], "f", b"data", [])
    form = MultipartForm(reader(body, [1000]), b"b", 1000)
    with pytest.raises(S3Error) as caught:
        form.read_fields(8000)
    assert caught.value.code == "MaxPostPreDataLengthExceeded"
    form = MultipartForm(reader(body, [1000]), b"b", 1000)
    assert form.read_fields(len(body) - len(b"data--b--\r\n"))["c"] == value.decode()


def test_endless_part_headers_are_held_to_the_limit():
    body = b"--b\r\nContent-Disposition: form-data; name=" + b"n" * 100_000
    with pytest.raises(S3Error) as caught:
        MultipartForm(reader(body, [4096]), b"b", 4096).read_fields(20480)
    assert caught.value.code == "MaxPostPreDataLengthExceeded"


def test_field_names_ignore_case_and_repeats_are_refused():
    form = MultipartForm(reader(body_of("b", [("Key", b"k")], "f", b"", []), [50]), b"b")
    assert form.read_fields(LIMIT) == {"key": "k"}
    repeated = body_of("b", [("Key", b"k"), ("key", b"j")], "f", b"", [])
    with pytest.raises(S3Error) as caught:
        MultipartForm(reader(repeated, [50]), b"b").read_fields(LIMIT)
    assert caught.value.code == "InvalidArgument"


@pytest.mark.parametrize(
    "content_type,boundary",
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('Multipart/Form-Data; charset=utf-8; boundary="a b;c"', b"a b;c"),
        ("multipart/form-data;boundary=----WebKitFormBoundary7MA4YWxk", b"----WebKitFormBoundary7MA4YWxk"),
    ],
)
def test_boundary_of(content_type, boundary):
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    "content_type,code",
    [
        ("application/x-www-form-urlencoded", "PreconditionFailed"),
        ("", "PreconditionFailed"),
        ("multipart/form-data", "MalformedPOSTRequest"),
        ("multipart/form-data; boundary=", "MalformedPOSTRequest"),
        ("multipart/form-data; boundary=" + "x" * 71, "MalformedPOSTRequest"),
    ],
)
def test_boundary_of_refuses(content_type, code):
    with pytest.raises(S3Error) as caught:
        boundary_of(content_type)
    assert caught.value.code == code
