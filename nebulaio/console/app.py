"""The web console on :9002. The console itself is not built yet; the listener says so."""

from __future__ import annotations

import falcon

PAGE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>NebulaIO</title>"
    b"<h1>NebulaIO</h1><p>The web console is not part of this release yet. "
    b"Use the S3 API and the Admin API.</p></html>"
)


class Placeholder:
    def on_get(self, req, resp):
        resp.status = 503
        resp.content_type = "text/html; charset=utf-8"
        resp.data = PAGE


def create() -> falcon.App:
    app = falcon.App()
    app.add_sink(Placeholder().on_get, prefix="/")
    return app
