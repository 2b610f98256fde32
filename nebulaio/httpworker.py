"""The gunicorn worker class of a node: gthread, with errors answered in the API's own format.

gunicorn answers a request it cannot parse (bad request line, header without a colon,
negative Content-Length) with an HTML page of its own. S3 clients expect S3's XML error
document with a request id, and Admin API clients expect JSON, so this worker writes those.
"""

from __future__ import annotations

import signal
import ssl

import gunicorn.http.wsgi
import orjson
from gunicorn import util
from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseHeaderName, ParseException
from gunicorn.workers.gthread import ThreadWorker

from nebulaio import config as configuration
from nebulaio.s3 import xml
from nebulaio.util.ids import request_id

SERVER = "NebulaIO"
# gunicorn names itself in the Server header of every response.
gunicorn.http.wsgi.SERVER = SERVER


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
        super().init_process()

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
        if port == self.admin_port:
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
