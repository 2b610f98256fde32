"""`nebulaio admin ...`: the common Admin API tasks from a shell, over the same HTTP API.

`login` keeps the token pair in a file only its owner can read (by default
`~/.config/nebulaio/admin-token.json`); later commands send its access token and renew it
with the refresh token once it has expired.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import urllib.error
import urllib.request

import orjson

DEFAULT_URL = "http://127.0.0.1:9001"
TIMEOUT = 30.0


def default_token_file() -> str:
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "nebulaio", "admin-token.json")


class CommandFailed(Exception):
    """A request the API refused, or that did not reach it; the message is for the user."""


def add_parser(commands) -> None:
    admin = commands.add_parser("admin", help="manage a node over its Admin API")
    admin.add_argument("--url", help=f"Admin API address (NEBULAIO_ADMIN_URL; the login's, else {DEFAULT_URL})")
    admin.add_argument(
        "--token-file", help="where login keeps the tokens (NEBULAIO_ADMIN_TOKEN_FILE; ~/.config/nebulaio/...)"
    )
    admin.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    tasks = admin.add_subparsers(dest="task", required=True)
    login = tasks.add_parser("login", help="log in and keep the token")
    login.add_argument("--username", help="root user or access key (NEBULAIO_ADMIN_USER)")
    login.add_argument("--password", help="password or secret key (NEBULAIO_ADMIN_PASSWORD; asked if absent)")
    tasks.add_parser("logout", help="revoke every token issued to you and forget the kept one")
    bucket = tasks.add_parser("bucket", help="list, create or delete buckets").add_subparsers(
        dest="action", required=True
    )
    bucket.add_parser("list", help="buckets with their object count and size")
    for action in ("create", "delete", "show"):
        bucket.add_parser(action, help=f"{action} a bucket").add_argument("name")
    cluster = tasks.add_parser("cluster", help="cluster status, members joining and leaving").add_subparsers(
        dest="action", required=True
    )
    cluster.add_parser("status", help="raft, members and this node's figures")
    cluster.add_parser("add", help="add a raft voter started with --join").add_argument("raft_address")
    cluster.add_parser("remove", help="remove a node (a voter leaves raft first)").add_argument("node_id")


class Session:
    """The kept tokens and the requests that use them."""

    def __init__(self, url: str | None, token_file: str):
        self.token_file = token_file
        self.saved = self._load()
        self.url = (url or os.environ.get("NEBULAIO_ADMIN_URL") or self.saved.get("url") or DEFAULT_URL).rstrip("/")

    def _load(self) -> dict:
        try:
            with open(self.token_file, "rb") as fh:
                return orjson.loads(fh.read())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}

    def save(self, pair: dict) -> None:
        self.saved = dict(pair, url=self.url)
        os.makedirs(os.path.dirname(self.token_file) or ".", mode=0o700, exist_ok=True)
        temporary = self.token_file + ".new"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(self.saved))
        os.replace(temporary, self.token_file)

    def forget(self) -> None:
        try:
            os.unlink(self.token_file)
        except FileNotFoundError:
            pass

    def request(self, method: str, path: str, body: dict | None = None, authenticated: bool = True) -> dict | None:
        try:
            return self._send(method, path, body, authenticated)
        except CommandFailed as failed:
            if not authenticated or failed.args[1] != "ExpiredToken" or not self.saved.get("refreshToken"):
                raise
        self.save(self._send("POST", "/api/v1/auth/refresh", {"refreshToken": self.saved["refreshToken"]}, False))
        return self._send(method, path, body, authenticated)

    def _send(self, method: str, path: str, body: dict | None, authenticated: bool) -> dict | None:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        if authenticated:
            if not self.saved.get("token"):
                raise CommandFailed("Not logged in: run `nebulaio admin login` first.", "NotLoggedIn")
            headers["Authorization"] = "Bearer " + self.saved["token"]
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            try:
                problem = orjson.loads(error.read())["error"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                problem = {"code": str(error.code), "message": error.reason}
            raise CommandFailed(
                f"{problem['message']} ({problem['code']}, HTTP {error.code})", problem["code"]
            ) from error
        except (urllib.error.URLError, OSError) as error:
            raise CommandFailed(f"Cannot reach {self.url}: {error}", "Unreachable") from error
        return orjson.loads(payload) if payload else None


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _render(args, document: dict | None) -> str:
    """What a command prints: the JSON with --json, else a table or a short line."""
    if args.json:
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() if document is not None else ""
    if args.task == "bucket" and args.action == "list":
        rows = [[b["name"], str(b["objects"]), _size(b["size"]), b["created"]] for b in document["buckets"]]
        return _table(rows, ["NAME", "OBJECTS", "SIZE", "CREATED"])
    if args.task == "bucket" and args.action == "show":
        return "\n".join(f"{name}: {value}" for name, value in document.items())
    if args.task == "bucket":
        return f"bucket {args.name}: {'created' if args.action == 'create' else 'deleted'}"
    if args.task == "cluster" and args.action == "add":
        return f"voter {args.raft_address}: added"
    if args.task == "cluster" and args.action == "remove":
        return f"node {args.node_id}: removed"
    if args.task == "cluster":
        raft, node = document["raft"], document["node"]
        lines = [
            f"node {node['id']} ({node['role']}, {node['state']}); leader {raft['leader']}",
            f"term {raft['term']}, commit index {raft['commitIndex']}, applied index {raft['appliedIndex']}",
            f"disk {_size(document['disk']['used'])} used of {_size(document['disk']['total'])}; "
            f"memory {_size(document['memory']['available'])} available of {_size(document['memory']['total'])}",
            "",
        ]
        reach = {True: "yes", False: "no", None: "-"}
        members = [
            [m["id"] or "?", m["address"], m["role"], reach[m["connected"]], m["state"] or "-"]
            for m in document["members"]
        ]
        return "\n".join(lines) + _table(members, ["NODE", "RAFT ADDRESS", "ROLE", "CONNECTED", "GOSSIP"])
    if args.task == "login":
        return f"logged in to {args.url_used}; the token expires at {document['expiresAt']}"
    return "logged out: every token issued to you is revoked"


def run(args: argparse.Namespace) -> int:
    session = Session(args.url, args.token_file or os.environ.get("NEBULAIO_ADMIN_TOKEN_FILE") or default_token_file())
    args.url_used = session.url
    try:
        if args.task == "login":
            username = args.username or os.environ.get("NEBULAIO_ADMIN_USER") or input("username: ")
            password = args.password or os.environ.get("NEBULAIO_ADMIN_PASSWORD") or getpass.getpass("password: ")
            document = session.request(
                "POST", "/api/v1/auth/login", {"username": username, "password": password}, authenticated=False
            )
            session.save(document)
        elif args.task == "logout":
            document = session.request("POST", "/api/v1/auth/logout")
            session.forget()
        elif args.task == "bucket" and args.action == "list":
            document = session.request("GET", "/api/v1/buckets")
        elif args.task == "bucket" and args.action == "create":
            document = session.request("POST", "/api/v1/buckets", {"name": args.name})
        elif args.task == "bucket":
            method = "GET" if args.action == "show" else "DELETE"
            document = session.request(method, "/api/v1/buckets/" + urllib.request.quote(args.name, safe=""))
        elif args.action == "add":
            document = session.request("POST", "/api/v1/cluster/nodes", {"raftAddress": args.raft_address})
        elif args.action == "remove":
            document = session.request("DELETE", "/api/v1/cluster/nodes/" + urllib.request.quote(args.node_id, safe=""))
        else:
            document = session.request("GET", "/api/v1/cluster/status")
    except CommandFailed as failed:
        print(f"nebulaio admin: {failed.args[0]}", file=sys.stderr)
        return 1
    output = _render(args, document)
    if output:
        print(output)
    return 0
