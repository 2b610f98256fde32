"""The gunicorn worker class of a node: gthread, with errors answered in the API's own format,
and mTLS of its own on the inter-node listener.

gunicorn answers a request it cannot parse (bad request line, header without a colon,
negative Content-Length) with an HTML page of its own. S3 clients expect S3's XML error
document with a request id, and Admin API and peer clients expect JSON, so this worker writes
those.

gunicorn has one TLS setting for every listener it binds. The inter-node listener needs
another one (its own certificate, client certificates required and checked against the
cluster's CA), so this worker hands that listener's connections a view of the settings whose
TLS is the listener's own.
"""

from __future__ import annotations

import errno
import signal
import ssl

import gunicorn.http.wsgi
import orjson
from gunicorn import util
from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseHeaderName, ParseException
from gunicorn.workers.gthread import TConn, ThreadWorker

from nebulaio import config as configuration
from nebulaio.cluster.peers import listener_tls
from nebulaio.s3 import xml
from nebulaio.util.ids import request_id

SERVER = "NebulaIO"
# gunicorn names itself in the Server header of every response.
gunicorn.http.wsgi.SERVER = SERVER


class ListenerSettings:
    """gunicorn's settings as seen by one listener that serves TLS with a context of its own."""

    is_ssl = True

    def __init__(self, settings, context: ssl.SSLContext):
        self._settings = settings
        self._context = context

    def __getattr__(self, name):
        return getattr(self._settings, name)

    def ssl_context(self, settings, default_factory) -> ssl.SSLContext:
        return self._context


class NodeWorker(ThreadWorker):
    def init_signals(self):
        """Leave Ctrl-C to the arbiter: it stops the workers with SIGQUIT.

        Ctrl-C reaches every process of the foreground group; a worker that also took the
        SIGINT ran gthread's quit handler twice, and the nested call could deadlock on the
        thread pool's lock (seen with py-spy), so the arbiter waited out graceful_timeout.
        """
        super().init_signals()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def init_process(self):
        settings = configuration.from_environment()
        self.admin_port = configuration.split_address(settings["admin_address"])[1]
        self.internal_port = configuration.split_address(settings["internal_address"])[1]
        context = listener_tls(settings)
        self.internal_settings = self.cfg if context is None else ListenerSettings(self.cfg, context)
        super().init_process()

    def accept(self, listener):
        """gthread's accept, with the inter-node listener's connections given its own settings."""
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            server = listener.getsockname()
            settings = self.internal_settings if server[1] == self.internal_port else self.cfg
            self.enqueue_req(TConn(settings, client_sock, client_addr, server))
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise

    def handle_error(self, req, client, addr, exc):
        app_fault = isinstance(exc, (InvalidResponseHeader, InvalidResponseHeaderName))
        if isinstance(exc, (ParseException, ssl.SSLError)) and not app_fault:
            self.log.warning("invalid request from %s: %s", (addr or ("",))[0], exc)
            status, code, message = 400, "InvalidRequest", f"The request could not be parsed: {exc}"
        else:
            self.log.exception("error handling a request")
            status, code, message = 500, "InternalError", "We encountered an internal error. Please try again."
        rid = request_id()
        try:
            port = client.getsockname()[1]
        except OSError:
            port = None
        if port == self.internal_port and isinstance(exc, ssl.SSLError):
            # A peer refused at the handshake (no certificate, or one the CA did not sign): the
            # connection carries no HTTP to answer.
            self.log.warning("refused a connection from %s to the inter-node listener: %s", (addr or ("",))[0], exc)
            util.close(client)
            return
        if port in (self.admin_port, self.internal_port):
            content_type = "application/json"
            body = orjson.dumps({"error": {"code": code, "message": message, "requestId": rid}})
        else:
            content_type = "application/xml"
            body = xml.error(code, message, rid)
        head = (
            f"HTTP/1.1 {status} {'Bad Request' if status == 400 else 'Internal Server Error'}\r\n"
            f"Server: {SERVER}\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nx-amz-request-id: {rid}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:
            self.log.debug("failed to send an error answer")
