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
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import orjson

from nebulaio.admin import transfer
from nebulaio.admin.progress import bar
from nebulaio.admin.progress import human_size as _size

DEFAULT_URL = "http://127.0.0.1:9001"
TIMEOUT = 30.0
DRAIN_POLL = 1.0
"""Seconds between two looks at a drain's, a repair's or a scrub's progress."""
REPAIR_PATH = "/api/v1/cluster/repair"
SCRUB_PATH = "/api/v1/cluster/scrub"


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

    bucket = _actions(tasks, "bucket", "buckets and their policies")
    bucket.add_parser("list", help="buckets with their object count and size")
    for action in ("create", "delete", "show"):
        bucket.add_parser(action, help=f"{action} a bucket").add_argument("name")
    bucket.add_parser("policy", help="print a bucket's policy").add_argument("name")
    set_policy = bucket.add_parser("set-policy", help="set a bucket's policy from a JSON file ('-': stdin)")
    set_policy.add_argument("name")
    set_policy.add_argument("file")
    bucket.add_parser("delete-policy", help="remove a bucket's policy").add_argument("name")
    upload = bucket.add_parser("import", help="upload a directory tree into a bucket through S3, with a progress bar")
    upload.add_argument("directory")
    upload.add_argument("name")
    download = bucket.add_parser("export", help="download a bucket into a directory through S3, with a progress bar")
    download.add_argument("name")
    download.add_argument("directory")
    for command in (upload, download):
        command.add_argument("--prefix", default="", help="keys under this prefix (the prefix is not a path)")
        command.add_argument("--s3-url", help=f"S3 API address (NEBULAIO_S3_URL; {transfer.DEFAULT_S3_URL})")
        command.add_argument("--access-key", help="S3 access key (AWS_ACCESS_KEY_ID)")
        command.add_argument("--secret-key", help="S3 secret key (AWS_SECRET_ACCESS_KEY)")
        command.add_argument("--region", help="signing region (AWS_DEFAULT_REGION; us-east-1)")

    user = _actions(tasks, "user", "IAM users")
    user.add_parser("list", help="every user")
    for action in ("create", "show", "enable", "disable", "delete"):
        user.add_parser(action, help=f"{action} a user").add_argument("name")

    key = _actions(tasks, "key", "access keys")
    key.add_parser("list", help="a user's access keys").add_argument("user")
    create_key = key.add_parser("create", help="a new key pair for a user (the secret is shown once)")
    create_key.add_argument("user")
    create_key.add_argument("--access-key", help="import this access key (with --secret-key)")
    create_key.add_argument("--secret-key", help="import this secret key (with --access-key)")
    for action in ("enable", "disable", "delete"):
        key.add_parser(action, help=f"{action} an access key").add_argument("access_key")

    group = _actions(tasks, "group", "groups and their members")
    group.add_parser("list", help="every group")
    for action in ("create", "show", "delete"):
        group.add_parser(action, help=f"{action} a group").add_argument("name")
    for action, help_text in (("add", "add a user to a group"), ("remove", "remove a user from a group")):
        membership = group.add_parser(action, help=help_text)
        membership.add_argument("name")
        membership.add_argument("user")

    policy = _actions(tasks, "policy", "managed policies")
    policy.add_parser("list", help="every managed policy")
    for action in ("show", "delete"):
        policy.add_parser(action, help=f"{action} a policy").add_argument("name")
    put = policy.add_parser("put", help="create or replace a policy from a JSON file ('-': stdin)")
    put.add_argument("name")
    put.add_argument("file")
    for action in ("attach", "detach"):
        attachment = policy.add_parser(action, help=f"{action} a policy to a user or a group")
        attachment.add_argument("name")
        holder = attachment.add_mutually_exclusive_group(required=True)
        holder.add_argument("--user")
        holder.add_argument("--group")

    kms = _actions(tasks, "kms", "the key store's keys (SSE-KMS)")
    kms.add_parser("list", help="every key (never its material)")
    kms.add_parser("create", help="a new key; prints its id").add_argument("--description", default="")
    for action in ("show", "enable", "disable", "rotate"):
        kms.add_parser(action, help=f"{action} a key").add_argument("key_id")

    audit = tasks.add_parser("audit", help="this node's audit log, a page at a time (oldest first)")
    audit.add_argument("--limit", type=int, default=100, help="entries in the page (1 to 1000; default 100)")
    audit.add_argument("--after", type=int, help="the id of the last entry already read")

    cluster = _actions(tasks, "cluster", "cluster status, members joining and leaving")
    cluster.add_parser("status", help="raft, members and this node's figures")
    cluster.add_parser("add", help="add a raft voter started with --join").add_argument("raft_address")
    cluster.add_parser("remove", help="remove a node (a voter leaves raft first)").add_argument("node_id")
    drain = cluster.add_parser("drain", help="move a storage node's objects to the others, with a progress bar")
    drain.add_argument("node_id")
    drain.add_argument("--no-wait", action="store_true", help="start the drain and return at once")
    repair = cluster.add_parser("repair", help="this node's repair progress")
    repair.add_argument(
        "--wait",
        action="store_true",
        help="draw the progress until a walk begun after the command finds nothing to repair on this node",
    )

    scrub = _actions(tasks, "scrub", "this node's scrub: every file it holds checked against its recorded checksum")
    scrub.add_parser("status", help="the pass under way or the last one, and the damage found and healed")
    start = scrub.add_parser("start", help="start a pass now")
    start.add_argument("--wait", action="store_true", help="draw the pass's progress until it has ended")


def _actions(tasks, task: str, help_text: str):
    return tasks.add_parser(task, help=help_text).add_subparsers(dest="action", required=True)


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

    def request(
        self, method: str, path: str, body: dict | bytes | None = None, authenticated: bool = True
    ) -> dict | None:
        try:
            return self._send(method, path, body, authenticated)
        except CommandFailed as failed:
            if not authenticated or failed.args[1] != "ExpiredToken" or not self.saved.get("refreshToken"):
                raise
        self.save(self._send("POST", "/api/v1/auth/refresh", {"refreshToken": self.saved["refreshToken"]}, False))
        return self._send(method, path, body, authenticated)

    def _send(self, method: str, path: str, body: dict | bytes | None, authenticated: bool) -> dict | None:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
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


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _quoted(name: str) -> str:
    return urllib.request.quote(name, safe="")


def _read_file(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as error:
        raise CommandFailed(f"Cannot read {path}: {error.strerror}", "Unreadable") from error


def _key_body(args) -> dict:
    if (args.access_key is None) != (args.secret_key is None):
        raise CommandFailed("Give both --access-key and --secret-key to import a pair, or neither.", "Usage")
    return {} if args.access_key is None else {"accessKey": args.access_key, "secretKey": args.secret_key}


def _holder(args) -> dict:
    return {"user": args.user} if args.user is not None else {"group": args.group}


# (task, action) -> args -> (method, path, body); login and logout are apart
REQUESTS = {
    ("bucket", "list"): lambda args: ("GET", "/api/v1/buckets", None),
    ("bucket", "create"): lambda args: ("POST", "/api/v1/buckets", {"name": args.name}),
    ("bucket", "show"): lambda args: ("GET", f"/api/v1/buckets/{_quoted(args.name)}", None),
    ("bucket", "delete"): lambda args: ("DELETE", f"/api/v1/buckets/{_quoted(args.name)}", None),
    ("bucket", "policy"): lambda args: ("GET", f"/api/v1/buckets/{_quoted(args.name)}/policy", None),
    ("bucket", "set-policy"): lambda args: (
        "PUT",
        f"/api/v1/buckets/{_quoted(args.name)}/policy",
        _read_file(args.file),
    ),
    ("bucket", "delete-policy"): lambda args: ("DELETE", f"/api/v1/buckets/{_quoted(args.name)}/policy", None),
    ("user", "list"): lambda args: ("GET", "/api/v1/users", None),
    ("user", "create"): lambda args: ("POST", "/api/v1/users", {"name": args.name}),
    ("user", "show"): lambda args: ("GET", f"/api/v1/users/{_quoted(args.name)}", None),
    ("user", "enable"): lambda args: ("PATCH", f"/api/v1/users/{_quoted(args.name)}", {"enabled": True}),
    ("user", "disable"): lambda args: ("PATCH", f"/api/v1/users/{_quoted(args.name)}", {"enabled": False}),
    ("user", "delete"): lambda args: ("DELETE", f"/api/v1/users/{_quoted(args.name)}", None),
    ("key", "list"): lambda args: ("GET", f"/api/v1/users/{_quoted(args.user)}/keys", None),
    ("key", "create"): lambda args: ("POST", f"/api/v1/users/{_quoted(args.user)}/keys", _key_body(args)),
    ("key", "enable"): lambda args: ("PATCH", f"/api/v1/keys/{_quoted(args.access_key)}", {"enabled": True}),
    ("key", "disable"): lambda args: ("PATCH", f"/api/v1/keys/{_quoted(args.access_key)}", {"enabled": False}),
    ("key", "delete"): lambda args: ("DELETE", f"/api/v1/keys/{_quoted(args.access_key)}", None),
    ("group", "list"): lambda args: ("GET", "/api/v1/groups", None),
    ("group", "create"): lambda args: ("POST", "/api/v1/groups", {"name": args.name}),
    ("group", "show"): lambda args: ("GET", f"/api/v1/groups/{_quoted(args.name)}", None),
    ("group", "delete"): lambda args: ("DELETE", f"/api/v1/groups/{_quoted(args.name)}", None),
    ("group", "add"): lambda args: ("PUT", f"/api/v1/groups/{_quoted(args.name)}/members/{_quoted(args.user)}", None),
    ("group", "remove"): lambda args: (
        "DELETE",
        f"/api/v1/groups/{_quoted(args.name)}/members/{_quoted(args.user)}",
        None,
    ),
    ("policy", "list"): lambda args: ("GET", "/api/v1/policies", None),
    ("policy", "show"): lambda args: ("GET", f"/api/v1/policies/{_quoted(args.name)}", None),
    ("policy", "put"): lambda args: ("PUT", f"/api/v1/policies/{_quoted(args.name)}", _read_file(args.file)),
    ("policy", "delete"): lambda args: ("DELETE", f"/api/v1/policies/{_quoted(args.name)}", None),
    ("policy", "attach"): lambda args: ("POST", f"/api/v1/policies/{_quoted(args.name)}/attach", _holder(args)),
    ("policy", "detach"): lambda args: ("POST", f"/api/v1/policies/{_quoted(args.name)}/detach", _holder(args)),
    ("kms", "list"): lambda args: ("GET", "/api/v1/kms/keys", None),
    ("kms", "create"): lambda args: ("POST", "/api/v1/kms/keys", {"description": args.description}),
    ("kms", "show"): lambda args: ("GET", f"/api/v1/kms/keys/{_quoted(args.key_id)}", None),
    ("kms", "enable"): lambda args: ("PATCH", f"/api/v1/kms/keys/{_quoted(args.key_id)}", {"enabled": True}),
    ("kms", "disable"): lambda args: ("PATCH", f"/api/v1/kms/keys/{_quoted(args.key_id)}", {"enabled": False}),
    ("kms", "rotate"): lambda args: ("POST", f"/api/v1/kms/keys/{_quoted(args.key_id)}/rotate", None),
    ("cluster", "status"): lambda args: ("GET", "/api/v1/cluster/status", None),
    ("cluster", "add"): lambda args: ("POST", "/api/v1/cluster/nodes", {"raftAddress": args.raft_address}),
    ("cluster", "remove"): lambda args: ("DELETE", f"/api/v1/cluster/nodes/{_quoted(args.node_id)}", None),
}

DONE = {
    "create": "created",
    "delete": "deleted",
    "enable": "enabled",
    "disable": "disabled",
    "add": "added",
    "remove": "removed",
    "put": "stored",
    "attach": "attached",
    "detach": "detached",
    "set-policy": "policy set",
    "delete-policy": "policy deleted",
    "rotate": "rotated",
}


def _names(items: list[str]) -> str:
    return ",".join(items) or "-"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# (task, "list") -> (the listing's field, header, row of one item)
LISTINGS = {
    "bucket": (
        "buckets",
        ["NAME", "OBJECTS", "SIZE", "CREATED"],
        lambda b: [b["name"], str(b["objects"]), _size(b["size"]), b["created"]],
    ),
    "user": (
        "users",
        ["NAME", "ENABLED", "KEYS", "GROUPS", "POLICIES"],
        lambda u: [
            u["name"],
            _yes_no(u["enabled"]),
            str(len(u["accessKeys"])),
            _names(u["groups"]),
            _names(u["policies"]),
        ],
    ),
    "key": (
        "accessKeys",
        ["ACCESS KEY", "USER", "ENABLED", "CREATED"],
        lambda k: [k["accessKey"], k["user"], _yes_no(k["enabled"]), k["created"]],
    ),
    "group": (
        "groups",
        ["NAME", "MEMBERS", "POLICIES"],
        lambda g: [g["name"], _names(g["members"]), _names(g["policies"])],
    ),
    "policy": (
        "policies",
        ["NAME", "USERS", "GROUPS", "UPDATED"],
        lambda p: [p["name"], _names(p["users"]), _names(p["groups"]), p["updated"]],
    ),
    "kms": (
        "keys",
        ["KEY", "ENABLED", "VERSIONS", "CREATED", "DESCRIPTION"],
        lambda k: [k["id"], _yes_no(k["enabled"]), str(k["versions"]), k["created"], k["description"] or "-"],
    ),
}


def _render(args, document: dict | None) -> str:
    """What a command prints: the JSON with --json, else a table or a short line."""
    if args.json or (args.task, args.action) in (("bucket", "policy"), ("policy", "show")):
        return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() if document is not None else ""
    if args.action == "list":
        field, header, row = LISTINGS[args.task]
        return _table([row(item) for item in document[field]], header)
    if args.task == "key" and args.action == "create":
        pair = f"access key {document['accessKey']}\nsecret key {document['secretKey']}"
        return pair + "\n(the secret is not shown again)"
    if args.action == "show":
        return "\n".join(
            f"{name}: {_names(value) if isinstance(value, list) else value}" for name, value in document.items()
        )
    if args.task == "cluster" and args.action != "status":
        return f"node {args.raft_address if args.action == 'add' else args.node_id}: {DONE[args.action]}"
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
    if args.task == "kms":
        return f"kms key {document['id']}: {DONE[args.action]}"
    subject = args.access_key if args.task == "key" else args.name
    return f"{args.task} {subject}: {DONE[args.action]}"


def _audit(session: Session, args) -> str:
    """A page of the audit log as a table, and how to ask for the next one."""
    query = f"limit={args.limit}" + ("" if args.after is None else f"&after={args.after}")
    page = session.request("GET", f"/api/v1/audit?{query}")
    if args.json:
        return orjson.dumps(page, option=orjson.OPT_INDENT_2).decode()
    rows = [
        [
            str(e["id"]),
            e["time"],
            e["user"] or "-",
            e["address"] or "-",
            e["method"],
            e["path"],
            str(e["status"]),
            e["error"] or "-",
        ]
        for e in page["entries"]
    ]
    table = _table(rows, ["ID", "TIME", "USER", "ADDRESS", "METHOD", "PATH", "STATUS", "ERROR"])
    if page["isTruncated"]:
        table += f"\n(more: nebulaio admin audit --after {page['nextAfter']})"
    return table


def _draw(line: str) -> None:
    """One frame of a progress bar: redrawn in place on a terminal, one line each elsewhere."""
    sys.stderr.write(line + ("\r" if sys.stderr.isatty() else "\n"))
    sys.stderr.flush()


def _draw_until(session: Session, path: str, figures: dict, done: Callable[[dict], bool], line) -> dict:
    """Poll `path` and draw `line(figures)` until `done(figures)`; the last figures."""
    while not done(figures):
        _draw(line(figures))
        time.sleep(DRAIN_POLL)
        figures = session.request("GET", path)
    return figures


def _drain_line(progress: dict, first: int | None) -> str:
    """A progress bar of a drain: how much of the files counted first are gone, what is left, the ETA."""
    if progress["objects"] is None:
        return f"node {progress['node']}: draining; not counted yet"
    done = 1 - progress["objects"] / first if first else float(progress["done"])
    eta = progress["etaSeconds"]
    return f"{bar(done)}  {progress['objects']} files ({_size(progress['bytes'])}) left" + (
        "" if eta is None else f", about {eta:.0f} s"
    )


def _drain(session: Session, args) -> str:
    """Start a node's drain and, unless told not to wait, draw its progress until it is done."""
    path = f"/api/v1/cluster/nodes/{_quoted(args.node_id)}/drain"
    progress = session.request("POST", path)
    if args.json or args.no_wait:
        return orjson.dumps(progress, option=orjson.OPT_INDENT_2).decode() if args.json else _drain_line(progress, None)
    counted = []  # the first count of files: the bar's whole

    def line(figures: dict) -> str:
        if not counted and figures["objects"]:
            counted.append(figures["objects"])
        return _drain_line(figures, counted[0] if counted else None)

    _draw_until(session, path, progress, lambda figures: figures["done"], line)
    node = args.node_id
    return f"node {node}: drained; it holds no objects and can be removed (nebulaio admin cluster remove {node})"


def _backlog(figures: dict) -> int:
    """Files the last finished walk found short of copies, on unwanted holders or unclaimed."""
    return figures["underReplicated"] + figures["misplaced"] + figures["unclaimed"]


def _repair_line(figures: dict) -> str:
    """A progress bar of the walk under way (its length estimated by the last one), and what
    the last finished walk found."""
    checked, files = figures["cycleChecked"], figures["cycleFiles"]
    walk = f"walk {figures['cycles'] + 1}: {checked} files checked" + (f" of about {files}" if files else "")
    return (
        (f"{bar(min(checked / files, 1.0))}  " if files else "")
        + f"{walk}; {figures['copied']} copied ({_size(figures['bytesMoved'])}), {figures['removed']} given up;"
        f" last walk found {figures['underReplicated']} under-replicated, {figures['misplaced']} misplaced,"
        f" {figures['unclaimed']} unclaimed"
    )


def _repair(session: Session, args) -> str:
    """This node's repair figures; with --wait, drawn until a walk that began after the command
    (not one already under way, which may have passed damaged files) has found nothing to do."""
    figures = session.request("GET", REPAIR_PATH)
    if args.wait:
        needed = figures["cycles"] + (2 if figures["cycleChecked"] else 1)

        def repaired(figures: dict) -> bool:
            return figures["cycles"] >= needed and not _backlog(figures)

        figures = _draw_until(session, REPAIR_PATH, figures, repaired, _repair_line)
    if args.json:
        return orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode()
    if args.wait:
        return f"node {figures['node']}: repaired; a walk over {figures['cycleFiles']} files found nothing to do"
    return f"node {figures['node']}: " + _repair_line(figures)


def _scrub_line(figures: dict) -> str:
    """A progress bar of the scrub pass under way (or the last one), and the damage counted."""
    files, done = figures["files"], figures["filesDone"]
    fraction = figures["bytesDone"] / figures["bytes"] if figures["bytes"] else (done / files if files else 1.0)
    state = (
        "scrubbing" if figures["running"] else f"pass {figures['passes']} done" if figures["passes"] else "no pass yet"
    )
    return (
        f"{bar(fraction)}  {state}: {done} of {files} files ({_size(figures['bytesDone'])} of"
        f" {_size(figures['bytes'])}); {figures['corrupt']} damaged found, {figures['healed']} healed,"
        f" {figures['unhealed']} not healed"
    )


def _scrub(session: Session, args) -> str:
    """This node's scrub figures; `start` begins a pass, and with --wait draws it until it ends."""
    if args.action == "status":
        figures = session.request("GET", SCRUB_PATH)
    else:
        figures = session.request("POST", SCRUB_PATH)
        if args.wait:
            needed = figures["passes"] + (2 if figures["running"] else 1)
            figures = _draw_until(
                session, SCRUB_PATH, figures, lambda figures: figures["passes"] >= needed, _scrub_line
            )
    if args.json:
        return orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode()
    return f"node {figures['node']}: " + _scrub_line(figures)


def run(args: argparse.Namespace) -> int:
    session = Session(args.url, args.token_file or os.environ.get("NEBULAIO_ADMIN_TOKEN_FILE") or default_token_file())
    try:
        if args.task == "login":
            username = args.username or os.environ.get("NEBULAIO_ADMIN_USER") or input("username: ")
            password = args.password or os.environ.get("NEBULAIO_ADMIN_PASSWORD") or getpass.getpass("password: ")
            document = session.request(
                "POST", "/api/v1/auth/login", {"username": username, "password": password}, authenticated=False
            )
            session.save(document)
            output = f"logged in to {session.url}; the token expires at {document['expiresAt']}"
        elif args.task == "logout":
            session.request("POST", "/api/v1/auth/logout")
            session.forget()
            output = "logged out: every token issued to you is revoked"
        elif args.task == "audit":
            output = _audit(session, args)
        elif (args.task, args.action) == ("cluster", "drain"):
            output = _drain(session, args)
        elif (args.task, args.action) == ("cluster", "repair"):
            output = _repair(session, args)
        elif args.task == "scrub":
            output = _scrub(session, args)
        elif (args.task, args.action) == ("bucket", "import"):
            output = transfer.run(args, lambda s3: transfer.import_tree(s3, args.directory, args.name, args.prefix))
        elif (args.task, args.action) == ("bucket", "export"):
            output = transfer.run(args, lambda s3: transfer.export_tree(s3, args.name, args.directory, args.prefix))
        else:
            output = _render(args, session.request(*REQUESTS[args.task, args.action](args)))
    except (CommandFailed, transfer.TransferFailed) as failed:
        print(f"nebulaio admin: {failed.args[0]}", file=sys.stderr)
        return 1
    if output:
        print(output)
    return 0
