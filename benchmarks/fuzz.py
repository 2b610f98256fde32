"""A fuzz campaign against a live node: hostile requests, counted by the answers they get.

`python -m benchmarks.fuzz [--requests 100000] [--seed 1] [--threads 4]` starts a node (or
takes `--s3`, `--admin`, `--access-key` and `--secret-key` of a running one) and sends requests
of seven families, each a valid request mutated at random:

    sigv4      header-signed requests with a broken signature, credential, date or payload hash
    presigned  presigned URLs with broken query parameters
    chunked    aws-chunked uploads with broken framing or chunk signatures
    xml        configuration and batch bodies: truncated, flipped, nested deep, with entities
    range      GETs with hostile Range headers
    key        PUT, GET, HEAD and DELETE of hostile keys
    admin      Admin API logins and calls with hostile JSON

What must hold: no answer is a 5xx and every request is answered; a request with a broken
signature is refused; the guarded bucket (the target of every broken signature) and every
configuration a refused request tried to change are unchanged at the end; and when the
campaign started the node, its processes are the ones it started with (no worker died).
Reported: the status counts of each family, and every violation.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import psutil

from benchmarks.peers import HOST, NebulaIO, stop_on_signals
from benchmarks.sigv4 import chunk_signature, presign_target, sign_target

GUARDED, SCRATCH = "fuzz-guarded", "fuzz-scratch-{}"
"""The bucket no request may change, and each thread's bucket of its own (so what one thread
changes never looks like a change another thread's refused request made)."""
GUARDED_KEYS = ("kept/one", "kept/two")
SCRATCH_OBJECT = "ranged"
SCRATCH_SIZE = 10_000
RANGED_CONTENT = bytes(index % 251 for index in range(SCRATCH_SIZE))
TIMEOUT = 30.0
SIGNATURE_VALUE = re.compile(r"Signature=([0-9a-fA-F]+)")
FAMILIES = ("sigv4", "presigned", "chunked", "xml", "range", "key", "admin")


@dataclass
class Probe:
    """One request as bytes on the wire, and what its answer must be."""

    family: str
    port: str
    """"s3" or "admin"."""
    method: str
    target: str
    headers: dict
    body: bytes = b""
    refused: bool = False
    """Its signature is broken: any 2xx is a violation."""
    guards: str | None = None
    """A subresource of a scratch bucket (e.g. "/fuzz-scratch-0?tagging") a refused request must leave as it was."""

    def wire(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if (self.body or self.method in ("PUT", "POST")) and "content-length" not in map(str.lower, self.headers):
            lines.append(f"content-length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\nconnection: close\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


@dataclass
class Report:
    statuses: dict[str, Counter] = field(default_factory=lambda: {family: Counter() for family in FAMILIES})
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, probe: Probe, status: int, problem: str | None) -> None:
        with self.lock:
            self.statuses[probe.family][status] += 1
            if problem is not None and len(self.violations) < 200:
                self.violations.append(f"{probe.family} {probe.method} {probe.target[:120]!r}: {problem}")

    def table(self) -> str:
        rows = ["| family | requests | answers |", "|---|---:|---|"]
        for family, counts in self.statuses.items():
            answers = ", ".join(f"{status}: {count:,}" for status, count in sorted(counts.items()))
            rows.append(f"| {family} | {sum(counts.values()):,} | {answers} |")
        return "\n".join(rows)


class Node:
    """Where the campaign sends its requests, and as whom."""

    def __init__(self, s3_port: int, admin_port: int, access_key: str, secret_key: str):
        self.ports = {"s3": s3_port, "admin": admin_port}
        self.access_key = access_key
        self.secret_key = secret_key
        self.host = f"{HOST}:{s3_port}"
        self.token = ""

    def exchange(self, probe: Probe) -> tuple[int, bytes]:
        """Send the probe on a connection of its own; (status, body), status 0 when unanswered."""
        with socket.create_connection((HOST, self.ports[probe.port]), timeout=TIMEOUT) as conn:
            # NOTE: closed with a reset, so 100,000 connections leave no TIME_WAIT behind.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                conn.sendall(probe.wire())
            except OSError:
                pass  # answered and closed before the body was in: the answer is still there
            response = http.client.HTTPResponse(conn, method=probe.method)
            try:
                response.begin()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                return 0, b""

    def signed(self, family: str, method: str, target: str, body: bytes = b"", headers: dict | None = None) -> Probe:
        signature = sign_target(
            method, self.host, target, headers or {}, hashlib.sha256(body).hexdigest(), self.access_key, self.secret_key
        )
        return Probe(family, "s3", method, target, dict(signature.headers), body)

    def call(self, method: str, target: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, bytes]:
        return self.exchange(self.signed("setup", method, target, body, headers))


# -- mutations ---------------------------------------------------------------------------------

HOSTILE_TEXT = (
    "",
    " ",
    "\t",
    "%",
    "%00",
    "%zz",
    "\u00e9",
    "\u202e",
    "\ufeff",
    "../..",
    "a" * 8192,
    "=" * 64,
    ",,,",
    "AWS4-HMAC-SHA256",
    "Credential=",
    "\\x00",
    "-1",
    "99999999999999999999",
    "NaN",
    "null",
)


def flip(text: str, rng: random.Random) -> str:
    """`text` with one character changed, so a signature or digest in it no longer matches."""
    if not text:
        return "0"
    position = rng.randrange(len(text))
    replacement = "0" if text[position] != "0" else "1"
    return text[:position] + replacement + text[position + 1 :]


def hostile(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(HOSTILE_TEXT)
    return "".join(chr(rng.choice((rng.randrange(0x20, 0x7F), rng.randrange(0x80, 0x800)))) for _ in range(12))


def mutate_headers(headers: dict, rng: random.Random) -> dict:
    """One to three changes to a signed request's headers; the signature is broken by the caller."""
    headers = dict(headers)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(9)
        if "authorization" not in headers:
            break  # dropped by an earlier change: the request is anonymous now
        if choice == 0:
            headers["authorization"] = headers["authorization"][: rng.randrange(len(headers["authorization"]))]
        elif choice == 1:
            field_name = rng.choice(("Credential=", "SignedHeaders=", "Signature="))
            headers["authorization"] = headers["authorization"].replace(field_name, field_name + hostile(rng))
        elif choice == 2:
            headers["authorization"] = headers["authorization"].replace(", ", rng.choice((",", " ", ",,", "")))
        elif choice == 3:
            headers["x-amz-date"] = rng.choice(("", "20991231T000000Z", "19700101T000000Z", hostile(rng)))
        elif choice == 4:
            headers["x-amz-content-sha256"] = rng.choice(("", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", hostile(rng)))
        elif choice == 5:
            headers[f"x-amz-meta-{rng.randrange(100)}"] = hostile(rng)
        elif choice == 6:
            headers["authorization"] = headers["authorization"].replace("AWS4-HMAC-SHA256", hostile(rng), 1)
        elif choice == 7:
            headers["authorization"] = headers["authorization"] + ", " + hostile(rng)
        else:
            headers.pop(rng.choice([name for name in headers if name != "host"]), None)
    return headers


def break_signature(headers: dict) -> dict:
    """Make sure no mutation left a valid signature: the first hex digit of every one changes."""
    authorization = headers.get("authorization")
    if authorization:
        headers["authorization"] = SIGNATURE_VALUE.sub(
            lambda found: "Signature=" + ("1" if found.group(1)[0] == "0" else "0") + found.group(1)[1:], authorization
        )
    return headers


# -- the families ------------------------------------------------------------------------------


def sigv4(node: Node, rng: random.Random, scratch: str) -> Probe:
    method, target, body = rng.choice(
        (
            ("GET", f"/{GUARDED}/{GUARDED_KEYS[0]}", b""),
            ("PUT", f"/{GUARDED}/{GUARDED_KEYS[1]}", b"overwritten"),
            ("DELETE", f"/{GUARDED}/{GUARDED_KEYS[0]}", b""),
            ("GET", f"/{GUARDED}?list-type=2", b""),
            ("PUT", f"/{GUARDED}?tagging", b"<Tagging><TagSet></TagSet></Tagging>"),
            ("DELETE", f"/{GUARDED}", b""),
        )
    )
    probe = node.signed("sigv4", method, target, body)
    probe.headers = break_signature(mutate_headers(probe.headers, rng))
    probe.refused = True
    return probe


def presigned(node: Node, rng: random.Random, scratch: str) -> Probe:
    method, path = rng.choice(
        (("GET", f"/{GUARDED}/{GUARDED_KEYS[0]}"), ("PUT", f"/{GUARDED}/{GUARDED_KEYS[1]}"), ("DELETE", f"/{GUARDED}"))
    )
    query = presign_target(method, node.host, path, node.access_key, node.secret_key, rng.choice((1, 60, 604800)))
    params = [pair.partition("=")[::2] for pair in query.split("&")]
    for _ in range(rng.randint(1, 3)):
        position = rng.randrange(len(params))
        name, value = params[position]
        choice = rng.randrange(5)
        if choice == 0:
            params[position] = (name, quote(hostile(rng), safe=""))
        elif choice == 1:
            params.append((name, value))
        elif choice == 2:
            del params[position]
        elif choice == 3:
            params[position] = (name, value[: rng.randrange(len(value) + 1)])
        else:
            params.append((quote(hostile(rng), safe=""), quote(hostile(rng), safe="")))
    params = [(name, flip(value, rng) if name == "X-Amz-Signature" else value) for name, value in params]
    target = path + "?" + "&".join(f"{name}={value}" for name, value in params)
    body = b"presigned" if method == "PUT" else b""
    return Probe("presigned", "s3", method, target, {"host": node.host}, body, refused=True)


def chunked(node: Node, rng: random.Random, scratch: str) -> Probe:
    pieces = [rng.randbytes(rng.choice((1, 100, 8192))) for _ in range(rng.randint(1, 3))]
    body = b"".join(pieces)
    target = f"/{scratch}/chunked-{rng.randrange(50)}"
    frames = []
    declared = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(body))}
    signature = sign_target(
        "PUT", node.host, target, declared, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", node.access_key, node.secret_key
    )
    previous = signature.signature
    for piece in [*pieces, b""]:
        previous = chunk_signature(signature, previous, piece)
        frames.append([f"{len(piece):x}", f";chunk-signature={previous}", piece])
    for _ in range(rng.randint(1, 3)):
        frame = rng.choice(frames)
        choice = rng.randrange(7)
        if choice == 0:
            frame[0] = rng.choice(("", "-1", "ffffffffffffffff", "zz", " 1", "0x10", hostile(rng)))
        elif choice == 1:
            frame[1] = rng.choice(("", ";chunk-signature=", ";chunk-signature=" + "0" * 64, ";" + hostile(rng)))
        elif choice == 2:
            frame[2] = frame[2][: rng.randrange(len(frame[2]) + 1)]
        elif choice == 3:
            frame[2] = frame[2] + rng.randbytes(rng.randint(1, 10))
        elif choice == 4:
            frames.remove(frame) if len(frames) > 1 else None
        elif choice == 5:
            declared["x-amz-decoded-content-length"] = rng.choice(("0", "-5", str(len(body) + 1), hostile(rng)))
        else:
            frame[1] = frame[1].replace(";", rng.choice((";;", "; ", ";a=b;")), 1)
    wire = b"".join(size.encode() + extension.encode() + b"\r\n" + data + b"\r\n" for size, extension, data in frames)
    headers = {**signature.headers, **declared}
    return Probe("chunked", "s3", "PUT", target, headers, wire)


XML_DOCUMENTS = {
    "tagging": b"<Tagging><TagSet><Tag><Key>team</Key><Value>storage</Value></Tag></TagSet></Tagging>",
    "cors": (
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        b"<MaxAgeSeconds>30</MaxAgeSeconds></CORSRule></CORSConfiguration>"
    ),
    "lifecycle": (
        b"<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>"
        b"<Expiration><Days>3</Days></Expiration></Rule></LifecycleConfiguration>"
    ),
    "versioning": b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
    "delete": b"<Delete><Object><Key>gone-1</Key></Object><Object><Key>gone-2</Key></Object></Delete>",
}
ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)
EXTERNAL_ENTITY = b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def mutate_xml(document: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(9)
    if choice == 0:
        return document[: rng.randrange(len(document))]
    if choice == 1:
        position = rng.randrange(len(document))
        return document[:position] + bytes([document[position] ^ (1 << rng.randrange(8))]) + document[position + 1 :]
    if choice == 2:
        depth = rng.choice((100, 5_000))
        return document.replace(b">", b">" + b"<a>" * depth + b"</a>" * depth, 1)
    if choice == 3:
        return ENTITY_BOMB + document.replace(b"storage", b"&d;").replace(b"Enabled", b"&d;")
    if choice == 4:
        return EXTERNAL_ENTITY + document.replace(b"storage", b"&x;").replace(b"Enabled", b"&x;")
    if choice == 5:
        return document.replace(b"</", b"<" + hostile(rng).encode(errors="ignore") + b"></", 1)
    if choice == 6:
        return json.dumps({"not": "xml"}).encode()
    if choice == 7:
        return document + document
    return document.replace(b">", b' a="' + b"x" * 100_000 + b'">', 1)


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def xml(node: Node, rng: random.Random, scratch: str) -> Probe:
    subresource = rng.choice(list(XML_DOCUMENTS))
    body = mutate_xml(XML_DOCUMENTS[subresource], rng)
    method = "POST" if subresource == "delete" else "PUT"
    headers = {"content-md5": content_md5(body)}
    probe = node.signed("xml", method, f"/{scratch}?{subresource}", body, headers)
    probe.guards = None if subresource == "delete" else f"/{scratch}?{subresource}"
    return probe


def ranged(node: Node, rng: random.Random, scratch: str) -> Probe:
    first, last = rng.randrange(-5, SCRATCH_SIZE + 5), rng.randrange(-5, SCRATCH_SIZE + 5)
    value = rng.choice(
        (
            f"bytes={first}-{last}",
            f"bytes=-{abs(last)}",
            f"bytes={first}-",
            f"bytes={first}-{last},{last}-{first}",
            f"bytes={10**30}-{10**31}",
            "bytes=",
            "bytes=-",
            f"items={first}-{last}",
            "bytes=" + hostile(rng),
            hostile(rng),
        )
    )
    return node.signed("range", rng.choice(("GET", "HEAD")), f"/{scratch}/{SCRATCH_OBJECT}", b"", {"range": value})


def hostile_key(rng: random.Random) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return "".join(f"%{rng.randrange(256):02X}" for _ in range(rng.randint(1, 40)))
    if choice == 1:
        return rng.choice(("..", "../x", "./", "a//b", "%2e%2e/%2e%2e", "x/../../y", "%00", "%C3%28", "%ED%A0%80"))
    if choice == 2:
        return quote("k" * rng.choice((1024, 1025, 4096)), safe="")
    if choice == 3:
        return quote(hostile(rng), safe="/")
    if choice == 4:
        return "key?" + quote(hostile(rng), safe="")
    return quote(rng.randbytes(16).decode("latin-1"), safe="")


def key(node: Node, rng: random.Random, scratch: str) -> Probe:
    method = rng.choice(("PUT", "GET", "HEAD", "DELETE"))
    body = b"hostile key" if method == "PUT" else b""
    return node.signed("key", method, f"/{scratch}/{hostile_key(rng)}", body)


def admin(node: Node, rng: random.Random, scratch: str) -> Probe:
    path, document = rng.choice(
        (
            ("/api/v1/auth/login", {"username": node.access_key, "password": "wrong"}),
            ("/api/v1/users", {"name": "fuzz-user"}),
            ("/api/v1/policies/fuzz-policy", {"Version": "2012-10-17", "Statement": []}),
            ("/api/v1/buckets", {"name": "fuzz-made"}),
            ("/api/v1/groups", {"name": "fuzz-group"}),
        )
    )
    choice = rng.randrange(6)
    if choice == 0:
        body = json.dumps(document).encode()[: rng.randrange(20)]
    elif choice == 1:
        body = json.dumps({name: rng.choice((None, 1, [], {}, hostile(rng), 10**40)) for name in document}).encode()
    elif choice == 2:
        body = b"[" * 10_000 + b"]" * 10_000
    elif choice == 3:
        body = rng.randbytes(rng.randint(1, 200))
    elif choice == 4:
        body = json.dumps({**document, hostile(rng): hostile(rng)}).encode()
    else:
        body = json.dumps(document).replace('"', "'").encode()
    headers = {"host": f"{HOST}:{node.ports['admin']}", "content-type": rng.choice(("application/json", "text/plain"))}
    if path != "/api/v1/auth/login":
        headers["authorization"] = "Bearer " + node.token
    method = "PUT" if path.startswith("/api/v1/policies/") else "POST"
    if rng.random() < 0.1:
        method = rng.choice(("PUT", "PATCH", "DELETE"))
    return Probe("admin", "admin", method, path, headers, body)


GENERATORS: dict[str, Callable[[Node, random.Random, str], Probe]] = {
    "sigv4": sigv4,
    "presigned": presigned,
    "chunked": chunked,
    "xml": xml,
    "range": ranged,
    "key": key,
    "admin": admin,
}


# -- the campaign ------------------------------------------------------------------------------


def prepare(node: Node, scratches: list[str]) -> None:
    """The guarded bucket with its objects and tags, the scratch buckets with an object to range over."""
    tags = b"<Tagging><TagSet><Tag><Key>kept</Key><Value>yes</Value></Tag></TagSet></Tagging>"
    for target, body, headers in (
        (f"/{GUARDED}", b"", None),
        *((f"/{scratch}", b"", None) for scratch in scratches),
        *((f"/{GUARDED}/{name}", name.encode(), None) for name in GUARDED_KEYS),
        (f"/{GUARDED}?tagging", tags, {"content-md5": content_md5(tags)}),
        *((f"/{scratch}/{SCRATCH_OBJECT}", RANGED_CONTENT, None) for scratch in scratches),
    ):
        status, answer = node.call("PUT", target, body, headers)
        if status not in (200, 204):
            raise SystemExit(f"PUT {target} answered {status}: {answer[:300]!r}")
    login = Probe(
        "setup",
        "admin",
        "POST",
        "/api/v1/auth/login",
        {"host": f"{HOST}:{node.ports['admin']}", "content-type": "application/json"},
        json.dumps({"username": node.access_key, "password": node.secret_key}).encode(),
    )
    status, body = node.exchange(login)
    if status != 200:
        raise SystemExit(f"the Admin API login answered {status}")
    node.token = json.loads(body)["token"]


def guarded_state(node: Node) -> list[tuple[int, bytes]]:
    """What no refused request may change: the guarded bucket's listing, objects and tags."""
    targets = [f"/{GUARDED}?list-type=2", f"/{GUARDED}?tagging", *(f"/{GUARDED}/{name}" for name in GUARDED_KEYS)]
    return [strip_request_ids(node.call("GET", target)) for target in targets]


def strip_request_ids(answer: tuple[int, bytes]) -> tuple[int, bytes]:
    status, body = answer
    for tag in (b"RequestId", b"HostId"):
        start = body.find(b"<" + tag + b">")
        if start >= 0:
            end = body.find(b"</" + tag + b">", start)
            body = body[:start] + body[end:]
    return status, body


def run_probe(node: Node, probe: Probe, report: Report) -> None:
    before = node.call("GET", probe.guards) if probe.guards else None
    status, _ = node.exchange(probe)
    problem = None
    if status == 0:
        problem = "no answer"
    elif status >= 500:
        problem = f"answered {status}"
    elif probe.refused and status < 300:
        problem = f"a broken signature was accepted ({status})"
    elif (
        probe.guards
        and status >= 400
        and strip_request_ids(node.call("GET", probe.guards)) != strip_request_ids(before)
    ):
        problem = f"refused with {status} but changed {probe.guards}"
    report.record(probe, status, problem)


def campaign(node: Node, requests: int, seed: int, threads: int) -> Report:
    scratches = [SCRATCH.format(number) for number in range(threads)]
    prepare(node, scratches)
    guarded = guarded_state(node)
    report = Report()
    per_thread = requests // threads

    def worker(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        for _ in range(per_thread):
            family = FAMILIES[rng.randrange(len(FAMILIES))]
            try:
                probe = GENERATORS[family](node, rng, scratches[number])
            except (ValueError, IndexError):
                continue  # a mutation that cannot apply to this request: draw again
            run_probe(node, probe, report)

    workers = [threading.Thread(target=worker, args=(number,)) for number in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if guarded_state(node) != guarded:
        report.violations.append("the guarded bucket changed")
    return report


def process_tree(roots: list[int]) -> set[int]:
    """The PIDs of `roots` and of every process below them."""
    found = set()
    for root in roots:
        try:
            process = psutil.Process(root)
            found |= {process.pid, *(child.pid for child in process.children(recursive=True))}
        except psutil.NoSuchProcess:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--s3", type=int, help="S3 port of a running node (else one is started)")
    parser.add_argument("--admin", type=int, help="Admin API port of that node")
    parser.add_argument("--access-key", help="a root access key of that node")
    parser.add_argument("--secret-key", help="its secret key")
    args = parser.parse_args(argv)
    stop_on_signals()
    started = time.monotonic()
    if args.s3:
        node = Node(args.s3, args.admin, args.access_key, args.secret_key)
        report = campaign(node, args.requests, args.seed, args.threads)
        crashed: list[str] = []
    else:
        with NebulaIO() as target:
            before = process_tree(target.server_pids())
            node = Node(target.port, target.admin_port, target.access_key, target.secret_key)
            report = campaign(node, args.requests, args.seed, args.threads)
            crashed = [f"process {pid} of the node is gone" for pid in before - process_tree(target.server_pids())]
    report.violations += crashed
    total = sum(sum(counts.values()) for counts in report.statuses.values())
    print(f"{total:,} requests in {time.monotonic() - started:.0f} s (seed {args.seed})\n")
    print(report.table())
    print(f"\n{len(report.violations)} violations")
    for violation in report.violations:
        print("  " + violation)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
