"""The web console on :9002: a single-page app served from the package, and its session.

The browser talks only to this listener (one origin, so the Content-Security-Policy can say
`connect-src 'self'`). The console holds the session in a sealed HttpOnly cookie and calls the
node's Admin API (with the session's JWT as Bearer) and S3 API (signed with SigV4 for the
logged-in user) over loopback, as any client would:

- `/session`: GET who is logged in, POST log in, DELETE log out.
- `/api/v1/...` and `/metrics`: the Admin API, the token added.
- `/s3/{bucket}/{key}?...`: the S3 API, the request signed; bodies stream both ways.
- `/share`: a presigned GET URL on the S3 listener, for a link to give away.

Every call that changes something needs the session's CSRF token in `X-CSRF-Token` (the page
gets it from `/session`, keeps it in memory only) and, when the browser sends one, an Origin of
this listener.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import mimetypes
import ssl
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import falcon
import orjson

from nebulaio.config import split_address
from nebulaio.console.session import COOKIE, Sealer, Session
from nebulaio.console.signer import Signer, encode
from nebulaio.util import clientaddress
from nebulaio.util.clientaddress import TrustedProxies
from nebulaio.util.jsonerror import JsonError, error_body
from nebulaio.util.purposekeys import admin_secrets
from nebulaio.util.sigv4spec import MAX_PRESIGNED_EXPIRES, UNSIGNED_PAYLOAD

log = logging.getLogger("nebulaio.console")

STATIC_DIR = Path(__file__).parent / "static"
JSON_TYPE = "application/json"
UPSTREAM_TIMEOUT = 300
BLOCK = 1024 * 1024
# NOTE: a body this small is read whole, so its SHA-256 is signed and its MD5 sent (S3 wants
# Content-MD5 or a checksum on DeleteObjects, lifecycle and lock configurations).
SIGNED_BODY_LIMIT = 1024 * 1024
MAX_LOGIN_BODY = 4096
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Objects are user content: never run it on the console's origin.
OBJECT_HEADERS = {"Content-Security-Policy": "sandbox; default-src 'none'", "Content-Disposition": "attachment"}
FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "content-type",
        "content-md5",
        "content-disposition",
        "content-encoding",
        "content-language",
        "cache-control",
        "expires",
        "range",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    }
)
OWN_AMZ_HEADERS = frozenset({"x-amz-date", "x-amz-content-sha256", "x-amz-security-token"})
DROPPED_RESPONSE_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "server", "date", "set-cookie", "content-security-policy"}
)
STATIC_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"


def _render_error(req, resp, error: JsonError, params) -> None:
    resp.set_headers(error.headers)
    resp.status = error.status
    resp.content_type = JSON_TYPE
    resp.data = error_body(error.code, error.message)


def _unexpected(req, resp, error: Exception, params) -> None:
    log.exception("unhandled error in %s %s", req.method, req.path)
    _render_error(req, resp, JsonError(500, "InternalError", "The console met an internal error."), params)


class Upstream:
    """One listener of this node, reached over loopback (TLS when the node serves TLS)."""

    __slots__ = ("host", "port", "_tls")

    def __init__(self, address: str, tls: bool):
        host, self.port = split_address(address)
        self.host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self._tls = ssl._create_unverified_context() if tls else None  # NOTE: loopback to ourselves

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def request(self, method: str, target: str, headers: dict, body=None) -> http.client.HTTPResponse:
        if self._tls:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=UPSTREAM_TIMEOUT, context=self._tls, blocksize=BLOCK
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=UPSTREAM_TIMEOUT, blocksize=BLOCK)
        try:
            conn.request(method, target, body=body, headers=headers)
            return conn.getresponse()
        except OSError as exc:
            conn.close()
            raise JsonError(502, "BadGateway", f"The node's listener did not answer: {exc}.") from exc

    def json(
        self, method: str, target: str, document: dict | None = None, token: str | None = None, headers=None
    ) -> tuple[int, dict | None, http.client.HTTPMessage]:
        """(status, decoded JSON answer, headers) of one small Admin API call."""
        headers = {"Content-Type": JSON_TYPE, **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        answer = self.request(method, target, headers, orjson.dumps(document) if document is not None else None)
        with answer:
            raw = answer.read()
        return answer.status, orjson.loads(raw) if raw else None, answer.headers


class Security:
    """Falcon middleware: security headers on every answer; CSRF and Origin checks on writes."""

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        for name, value in SECURITY_HEADERS.items():
            if resp.get_header(name) is None:  # the S3 proxy's stricter policy stays
                resp.set_header(name, value)

    def process_request(self, req, resp) -> None:
        if req.method in SAFE_METHODS:
            return
        origin = req.get_header("Origin")
        if origin and urlsplit(origin).netloc != req.netloc:
            raise JsonError(403, "CrossOrigin", "Requests from another origin are refused.")


class BrowserAddress:
    """Falcon middleware: `req.context.address` is the browser's (the client a trusted proxy names)."""

    def __init__(self, proxies: TrustedProxies):
        self._proxies = proxies

    def process_request(self, req, resp) -> None:
        req.context.address = self._proxies.client_address(req.env)


def browser(admin_secret: str, req: falcon.Request) -> dict[str, str]:
    """The browser's address, for the Admin API's login throttle and audit log (which see only
    the console's loopback connection)."""
    return {clientaddress.HEADER: clientaddress.seal(admin_secret, req.context.address)}


class Sessions:
    """Opens, renews and writes the session cookie; every private resource goes through it."""

    def __init__(self, sealer: Sealer, admin: Upstream, generation, secure: bool):
        self._sealer = sealer
        self._admin = admin
        self._generation = generation
        self._secure = secure

    def write(self, resp: falcon.Response, session: Session) -> None:
        resp.set_cookie(
            COOKIE,
            self._sealer.seal(session),
            max_age=session.lifetime(time.time()),
            path="/",
            secure=self._secure,
            http_only=True,
            same_site="Strict",
        )

    def clear(self, resp: falcon.Response) -> None:
        resp.unset_cookie(COOKIE, path="/", same_site="Strict")

    def csrf_token(self, session: Session) -> str:
        return self._sealer.csrf_token(session)

    def require(self, req: falcon.Request, resp: falcon.Response) -> Session:
        """The caller's live session (renewed when half its token's life is gone), or 401."""
        session = self._sealer.open(req.cookies.get(COOKIE))
        if session is None:
            raise JsonError(401, "Unauthorized", "Log in first.")
        claims = session.claims()
        if claims["gen"] != self._generation(claims["sub"]):  # a user's tokens name the user, not the key
            self.clear(resp)
            raise JsonError(401, "RevokedToken", "The session has ended; log in again.")
        if req.method not in SAFE_METHODS and not self._sealer.csrf_matches(session, req.get_header(CSRF_HEADER)):
            raise JsonError(403, "InvalidCsrfToken", f"This call needs the session's {CSRF_HEADER} header.")
        if session.needs_renewal(time.time()):
            status, answer, _ = self._admin.json(
                "POST", "/api/v1/auth/refresh", {"refreshToken": session.refresh_token}
            )
            if status != 200:
                self.clear(resp)
                raise JsonError(401, "SessionExpired", "The session has expired; log in again.")
            session.token, session.refresh_token = answer["token"], answer["refreshToken"]
            self.write(resp, session)
        return session


class Static:
    """The app's files, read once; index.html names the others with their ETag in the URL."""

    def __init__(self):
        self._files: dict[str, tuple[bytes, str, str, str]] = {}
        for path in sorted(STATIC_DIR.iterdir()):
            if path.name != "index.html":
                self._files[path.name] = self._entry(path.name, path.read_bytes(), STATIC_CACHE)
        page = (STATIC_DIR / "index.html").read_bytes()
        for name, (_, etag, _, _) in self._files.items():
            page = page.replace(f"/static/{name}".encode(), f"/static/{name}?v={etag.strip(chr(34))}".encode())
        self._index = self._entry("index.html", page, PAGE_CACHE)

    @staticmethod
    def _entry(name: str, data: bytes, cache: str) -> tuple[bytes, str, str, str]:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        return data, f'"{hashlib.sha256(data).hexdigest()[:20]}"', kind, cache

    def _send(self, req, resp, entry) -> None:
        data, etag, kind, cache = entry
        resp.set_header("Cache-Control", cache)
        resp.etag = etag
        if etag in (req.get_header("If-None-Match") or ""):
            resp.status = 304
            return
        resp.content_type = kind
        resp.data = data

    def on_get_index(self, req, resp):
        self._send(req, resp, self._index)

    def on_get(self, req, resp, name):
        entry = self._files.get(name)
        if entry is None:
            raise JsonError(404, "NotFound", "No such file.")
        self._send(req, resp, entry)


class SessionResource:
    def __init__(self, sessions: Sessions, admin: Upstream, admin_secret: str):
        self._sessions = sessions
        self._admin = admin
        self._admin_secret = admin_secret

    def on_get(self, req, resp):
        session = self._sessions.require(req, resp)
        resp.media = {"user": session.user, "admin": session.admin, "csrf": self._sessions.csrf_token(session)}

    def on_post(self, req, resp):
        """Log in with an access key and secret; a JSON body, so a plain cross-site form cannot."""
        if req.content_type != JSON_TYPE or not 0 < (req.content_length or 0) <= MAX_LOGIN_BODY:
            raise JsonError(400, "InvalidRequest", "Log in with a small JSON body.")
        try:
            document = orjson.loads(req.bounded_stream.read())
            user, secret = document["accessKey"], document["secretKey"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise JsonError(400, "InvalidRequest", "The body needs accessKey and secretKey.") from exc
        if not (isinstance(user, str) and isinstance(secret, str)):
            raise JsonError(400, "InvalidRequest", "accessKey and secretKey must be strings.")
        status, answer, headers = self._admin.json(
            "POST",
            "/api/v1/auth/login",
            {"username": user, "password": secret},
            headers=browser(self._admin_secret, req),
        )
        if status == 429:
            raise JsonError(
                429, answer["error"]["code"], answer["error"]["message"], {"Retry-After": headers["Retry-After"]}
            )
        if status != 200:
            raise JsonError(401, "InvalidCredentials", "The access key or secret key is not correct.")
        # NOTE: admin pages are shown to whoever the Admin API lets read the cluster's status.
        probe, _, _ = self._admin.json("GET", "/api/v1/cluster/status", token=answer["token"])
        session = Session(user, secret, answer["token"], answer["refreshToken"], probe == 200)
        self._sessions.write(resp, session)
        resp.media = {"user": user, "admin": session.admin, "csrf": self._sessions.csrf_token(session)}

    def on_delete(self, req, resp):
        session = self._sessions.require(req, resp)
        self._admin.json("POST", "/api/v1/auth/logout", token=session.token, headers=browser(self._admin_secret, req))
        self._sessions.clear(resp)
        resp.status = 204


def _pass_response(resp: falcon.Response, answer: http.client.HTTPResponse, method: str) -> None:
    resp.status = answer.status
    for name, value in answer.getheaders():
        if name.lower() not in DROPPED_RESPONSE_HEADERS:
            resp.append_header(name, value)
    if method == "HEAD" or answer.status in (204, 304):
        answer.close()
        return
    resp.stream = answer


class AdminProxy:
    """The Admin API with the session's token; login and logout go through /session instead."""

    def __init__(self, sessions: Sessions, admin: Upstream, admin_secret: str):
        self._sessions = sessions
        self._admin = admin
        self._admin_secret = admin_secret

    def __call__(self, req, resp, **params):
        if req.path.startswith("/api/v1/auth/"):
            raise JsonError(404, "NotFound", "Log in and out through /session.")
        session = self._sessions.require(req, resp)
        headers = {
            "Authorization": f"Bearer {session.token}",
            **browser(self._admin_secret, req),
        }
        body = None
        if req.content_length:
            if req.content_length > SIGNED_BODY_LIMIT:
                raise JsonError(413, "RequestTooLarge", "Admin API bodies are small.")
            body = req.bounded_stream.read()
            headers["Content-Type"] = req.content_type or JSON_TYPE
        # The path as the browser sent it, still percent-encoded: a name may be any Unicode.
        target = quote(req.path, safe="/") + (f"?{req.query_string}" if req.query_string else "")
        _pass_response(resp, self._admin.request(req.method, target, headers, body), req.method)


class S3Proxy:
    """The S3 API signed for the session's user: `/s3/bucket/key?query` is `/bucket/key?query`."""

    PREFIX = "/s3"

    def __init__(self, sessions: Sessions, s3: Upstream, region: str):
        self._sessions = sessions
        self._s3 = s3
        self._region = region

    def __call__(self, req, resp, **params):
        session = self._sessions.require(req, resp)
        raw_path, _, raw_query = req.env.get("RAW_URI", req.relative_uri).partition("?")
        path = encode(unquote(raw_path[len(self.PREFIX) :]) or "/", safe="/")
        pairs = parse_qsl(raw_query, keep_blank_values=True)
        headers = {"host": self._s3.netloc}
        for name, value in req.headers.items():
            name = name.lower()
            if name in FORWARDED_REQUEST_HEADERS or (name.startswith("x-amz-") and name not in OWN_AMZ_HEADERS):
                headers[name] = value
        body, payload = None, UNSIGNED_PAYLOAD
        length = req.content_length or 0
        if req.method in ("PUT", "POST") and req.content_length is None:
            raise JsonError(411, "LengthRequired", "Uploads need a Content-Length.")
        if length and length <= SIGNED_BODY_LIMIT:
            body = req.bounded_stream.read()
            payload = hashlib.sha256(body).hexdigest()
            headers.setdefault("content-md5", base64.b64encode(hashlib.md5(body).digest()).decode())
        elif length:
            body = req.bounded_stream
        signed = Signer(session.user, session.secret, self._region).headers(req.method, path, pairs, headers, payload)
        if req.method in ("PUT", "POST"):
            signed["content-length"] = str(length)
        target = path + (f"?{'&'.join(f'{encode(k)}={encode(v)}' for k, v in pairs)}" if pairs else "")
        _pass_response(resp, self._s3.request(req.method, target, signed, body), req.method)
        resp.set_headers(OBJECT_HEADERS)


class Share:
    """A presigned GET URL of one object on the S3 listener, as the browser reaches this node."""

    def __init__(self, sessions: Sessions, s3: Upstream, region: str, scheme: str):
        self._sessions = sessions
        self._s3 = s3
        self._region = region
        self._scheme = scheme

    def on_post(self, req, resp):
        session = self._sessions.require(req, resp)
        try:
            document = orjson.loads(req.bounded_stream.read(MAX_LOGIN_BODY))
            bucket, key, expires = document["bucket"], document["key"], int(document["expires"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise JsonError(400, "InvalidRequest", "The body needs bucket, key and expires.") from exc
        if not (isinstance(bucket, str) and isinstance(key, str) and bucket and key):
            raise JsonError(400, "InvalidRequest", "bucket and key must be non-empty strings.")
        if not 1 <= expires <= MAX_PRESIGNED_EXPIRES:
            raise JsonError(400, "InvalidRequest", f"expires must be 1 to {MAX_PRESIGNED_EXPIRES} seconds.")
        default_port = 443 if self._scheme == "https" else 80
        name = f"[{req.host}]" if ":" in req.host else req.host
        host = name if self._s3.port == default_port else f"{name}:{self._s3.port}"
        path = "/" + quote(bucket, safe="") + "/" + encode(key, safe="/")
        query = Signer(session.user, session.secret, self._region).presign(host, path, expires)
        resp.media = {"url": f"{self._scheme}://{host}{path}?{query}", "expires": expires}


def create(config: dict, generation, proxies: TrustedProxies) -> falcon.App:
    """The console app; `generation(user)` is the user's Admin API token generation, `proxies`
    may name the browser a request came for."""
    tls = bool(config["tls_cert"] and config["tls_key"])
    admin = Upstream(config["admin_address"], tls)
    s3 = Upstream(config["s3_address"], tls)
    sessions = Sessions(Sealer(*admin_secrets(config)), admin, generation, secure=tls)
    app = falcon.App(middleware=[BrowserAddress(proxies), Security()])
    app.req_options.strip_url_path_trailing_slash = False
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(JsonError, _render_error)
    static = Static()
    app.add_route("/", static, suffix="index")
    app.add_route("/static/{name}", static)
    app.add_route("/session", SessionResource(sessions, admin, config["admin_secret"]))
    app.add_route("/share", Share(sessions, s3, config["region"], "https" if tls else "http"))
    admin_proxy = AdminProxy(sessions, admin, config["admin_secret"])
    app.add_sink(admin_proxy, prefix="/api/v1/")
    app.add_sink(admin_proxy, prefix="/metrics")
    app.add_sink(S3Proxy(sessions, s3, config["region"]), prefix="/s3/")
    return app
