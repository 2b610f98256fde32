"""Every setting is declared once here; the file, the environment and the CLI all read this table.

Precedence, lowest first: the defaults below, the TOML file (`--config` or NEBULAIO_CONFIG),
`NEBULAIO_<NAME>` environment variables, command-line flags. `conf/nebulaio.toml` is the
documented copy of these defaults and a test keeps the two equal.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from nebulaio.util.clientaddress import TrustedProxies
from nebulaio.util.purposekeys import secret_list

RESOLVED_ENV = "NEBULAIO_RESOLVED_CONFIG"
"""The launcher hands the fully resolved settings to its children in this variable."""

PUBLIC_ROOT_PASSWORD = "nebulaadmin"
"""The root password that earlier releases shipped as a default: public, so refused."""


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: Callable[[str], Any] = str
    section: str = "node"

    @property
    def env(self) -> str:
        return "NEBULAIO_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _size(text: str) -> int:
    """Bytes, with an optional K/M/G/T (binary) suffix: '5G', '64K', '1048576'."""
    text = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    factor = 1
    if text and text[-1] in "KMGT":
        factor = 1024 ** ("KMGT".index(text[-1]) + 1)
        text = text[:-1]
    return int(float(text) * factor)


MIN_SECRET_BYTES = 32
SETTINGS: tuple[Setting, ...] = (
    Setting("data", "data", "Data directory: metadata/, objects/ and temp/ live here."),
    Setting("s3_address", ":9000", "S3 API listener, HOST:PORT (empty host = all interfaces).", section="listen"),
    Setting("admin_address", ":9001", "Admin API listener (IAM, buckets, cluster, metrics, health).", section="listen"),
    Setting("console_address", ":9002", "Web console listener.", section="listen"),
    Setting("raft_address", ":9003", "Raft consensus listener (keep the port below 32768).", section="listen"),
    Setting("gossip_address", ":9004", "Gossip membership listener.", section="listen"),
    Setting(
        "internal_address",
        ":9005",
        "Inter-node data listener (object bytes, removals and metadata images between nodes): open it to the"
        " other nodes only, never to clients.",
        section="listen",
    ),
    Setting(
        "root_user",
        "",
        "Root access key, set together with root_password. Both empty: a pair generated on first start and kept"
        " (mode 0600) in <data>/metadata/root-credentials; `nebulaio credentials` prints it. A cluster needs"
        " the same pair set on every node.",
        section="auth",
    ),
    Setting("root_password", "", "Root secret key (see root_user).", section="auth"),
    Setting(
        "admin_secret",
        "",
        f"Secret that signs Admin API tokens (HS256), at least {MIN_SECRET_BYTES} bytes; generated and kept"
        " in the data directory if empty. "
        "Nodes that share it accept each other's tokens.",
        section="auth",
    ),
    Setting(
        "admin_secret_accepted",
        "",
        "Earlier admin secrets, comma-separated: the tokens and console sessions they signed are still accepted"
        " until they expire, new ones are signed with admin_secret. Set only while admin_secret is rotated.",
        section="auth",
    ),
    Setting("admin_token_ttl", 900, "Seconds an Admin API access token stays valid.", int, "auth"),
    Setting(
        "admin_refresh_ttl", 7 * 86400, "Seconds an Admin API refresh token stays valid (until revoked).", int, "auth"
    ),
    Setting(
        "login_max_failures",
        10,
        "Failed logins (Admin API and console) from one address, or for one user, after which every login of"
        " either is answered 429 until login_window seconds have passed since the first; 0 = no limit.",
        int,
        "auth",
    ),
    Setting(
        "login_window", 300, "Seconds over which failed logins are counted (see login_max_failures).", float, "auth"
    ),
    Setting("region", "us-east-1", "Region this node reports (GetBucketLocation, signing).", section="s3"),
    Setting(
        "domain",
        "",
        "Comma-separated domains for virtual-hosted-style requests (bucket.DOMAIN); empty = path style only.",
        section="s3",
    ),
    Setting(
        "max_object_size", 5 * 1024**3, "Largest object a single PUT may store (bytes; K/M/G suffixes).", _size, "s3"
    ),
    Setting(
        "inline_threshold",
        16 * 1024,
        "Objects up to this size are held in memory while received, and on a single node kept inside"
        " the metadata store instead of a file of their own.",
        _size,
        "s3",
    ),
    Setting("request_timeout", 60, "Seconds a client may stay silent while sending a body.", int, "s3"),
    Setting(
        "access_log_interval",
        60,
        "Seconds between a worker's deliveries of server access log records to their target buckets.",
        float,
        "s3",
    ),
    Setting(
        "access_log_records",
        1000,
        "Queued server access log records after which a worker delivers them at once; also the most"
        " records one log object holds.",
        int,
        "s3",
    ),
    Setting(
        "aws_bucket_defaults",
        False,
        "New buckets start as AWS's have since April 2023: every Block Public Access switch on and Object"
        " Ownership BucketOwnerEnforced (ACLs disabled) unless CreateBucket's x-amz-object-ownership says"
        " otherwise. Off: no Block Public Access and ACLs enabled, which public canned ACLs need.",
        _bool,
        "s3",
    ),
    Setting(
        "sse_c_over_http",
        False,
        "Accept SSE-C (customer-provided encryption keys) over plain HTTP, as AWS never does: the key"
        " would cross the network in the clear. Only for tests and trusted networks.",
        _bool,
        "s3",
    ),
    Setting(
        "encryption_master_keys",
        "",
        "Master keys that seal the keys of encrypted objects and of the key store, comma-separated, newest first,"
        " each at least 32 bytes and the same on every node: the first seals, every one opens. Empty: a key"
        " derived from the cluster secret. Keys derived from the cluster secrets always still open what they"
        " sealed.",
        section="s3",
    ),
    Setting("workers", 0, "HTTP worker processes; 0 means one per core.", int, "http"),
    Setting("threads", 16, "Threads per HTTP worker process.", int, "http"),
    Setting("tls_cert", "", "PEM certificate file; with tls_key set, every listener serves HTTPS.", section="http"),
    Setting("tls_key", "", "PEM private key file for tls_cert.", section="http"),
    Setting(
        "trusted_proxies",
        "",
        "Comma-separated addresses and CIDR networks (IPv4 or IPv6) of reverse proxies whose X-Forwarded-For"
        " (else X-Real-IP) names the client, on the S3 API, the Admin API and the console: for aws:SourceIp, the"
        " logs and the login throttle. Empty = every request's client is its peer and those headers are ignored.",
        section="http",
    ),
    Setting(
        "cluster_secret",
        "",
        "Secret that authenticates raft traffic and object bytes between nodes, the same on every node;"
        " a lone node generates and keeps one if empty. Raft, gossip, peer signing and sealing each use a key"
        " derived from it for that use alone.",
        section="cluster",
    ),
    Setting(
        "cluster_secret_accepted",
        "",
        "Other cluster secrets accepted from peers (comma-separated), never used to sign: set only while the"
        ' cluster secret is rotated (README, "Rotating the cluster secret"). What was sealed under one of'
        " them (IAM secrets, object keys) still opens.",
        section="cluster",
    ),
    Setting(
        "cluster_secret_retired",
        "",
        "Earlier cluster secrets (comma-separated) that authenticate nothing between nodes any more but still"
        " open what was sealed under them: IAM secret keys, and object and key-store keys when"
        " encryption_master_keys is empty. Keep them for as long as such data may exist.",
        section="cluster",
    ),
    Setting(
        "node_id",
        "",
        "This node's id; generated on first start and kept in the data directory if empty.",
        section="cluster",
    ),
    Setting(
        "role",
        "hybrid",
        "hybrid (votes and stores bytes), management (votes) or storage (stores bytes, follows the log).",
        section="cluster",
    ),
    Setting(
        "raft_peers",
        "",
        "Comma-separated raft addresses of the voters, this node's own included or not; empty = a single node.",
        section="cluster",
    ),
    Setting("join", "", "Gossip address of any member, for a node joining a running cluster.", section="cluster"),
    Setting(
        "advertise_raft_address",
        "",
        "Raft address given to peers; empty = raft_address (127.0.0.1 for a wildcard host).",
        section="cluster",
    ),
    Setting(
        "advertise_gossip_address",
        "",
        "Gossip address given to peers; empty = gossip_address (127.0.0.1 for a wildcard host).",
        section="cluster",
    ),
    Setting(
        "advertise_internal_address",
        "",
        "Inter-node data address given to peers; empty = internal_address (127.0.0.1 for a wildcard host).",
        section="cluster",
    ),
    Setting(
        "internal_tls_ca",
        "",
        "PEM CA certificate for mTLS between nodes: set with internal_tls_cert and internal_tls_key, every node"
        " presents its certificate and accepts only peers whose certificate this CA signed, on internal_address,"
        " raft_address and gossip_address's TCP channel; gossip datagrams are then sealed with a key each node"
        " makes at start and gives only over TLS (`nebulaio cluster certs` makes a CA and node certificates).",
        section="cluster",
    ),
    Setting(
        "internal_tls_cert",
        "",
        "PEM certificate this node presents to its peers (see internal_tls_ca).",
        section="cluster",
    ),
    Setting("internal_tls_key", "", "PEM private key file for internal_tls_cert.", section="cluster"),
    Setting(
        "replicas",
        3,
        "Copies of each object's bytes in a cluster (at most the number of storage nodes).",
        int,
        "cluster",
    ),
    Setting(
        "read_consistency",
        "strong",
        "strong: every read sees every acknowledged write, on any node; eventual: a node reads its own replica as is.",
        section="cluster",
    ),
    Setting(
        "snapshot_entries",
        20000,
        "Raft log entries after which the log is compacted (a dump of raft's bookkeeping: LMDB is the state).",
        int,
        "cluster",
    ),
    Setting(
        "snapshot_interval",
        600,
        "Seconds after which the raft log is compacted, however few entries it holds.",
        float,
        "cluster",
    ),
    Setting(
        "repair_interval",
        60,
        "Seconds a storage node's repair loop (restoring its share of the copies, removing the rest) rests after"
        " a walk over every placed file that changed nothing; while work is left, passes follow at once.",
        float,
        "cluster",
    ),
    Setting(
        "repair_batch",
        10000,
        "Placed files one repair pass walks; the next pass goes on from there, with a fresh look at the peers.",
        int,
        "cluster",
    ),
    Setting(
        "repair_bandwidth",
        64 * 1024**2,
        "Bytes per second a repair pass may copy from other nodes (K/M/G suffixes).",
        _size,
        "cluster",
    ),
    Setting(
        "scrub_interval",
        7 * 86400,
        "Seconds between the starts of two scrub passes (each storage node re-reads every file it holds, checks"
        " it against the checksum recorded when it was written, and heals a damaged copy from another holder);"
        " the first starts that long after the node. `nebulaio admin scrub start` starts one now.",
        float,
        "cluster",
    ),
    Setting(
        "scrub_rate",
        32 * 1024**2,
        "Bytes per second a scrub pass may read from this node's disk (K/M/G suffixes).",
        _size,
        "cluster",
    ),
    Setting(
        "read_verify_cache",
        600,
        "Seconds a worker serves an object file it has checked against its recorded checksum, and that is"
        " unchanged since (same inode, size, mtime and ctime), without reading it again first (reads stay on"
        " sendfile); 0 checks the file before every read.",
        float,
        "cluster",
    ),
    Setting(
        "lifecycle_interval",
        3600,
        "Seconds between the raft leader's passes over the buckets' lifecycle rules.",
        float,
        "lifecycle",
    ),
    Setting(
        "lifecycle_day_seconds",
        86400,
        "Length of a lifecycle rule's day in seconds; shorter only for tests.",
        int,
        "lifecycle",
    ),
    Setting("log_level", "info", "debug, info, warning or error.", section="node"),
)

BY_NAME = {s.name: s for s in SETTINGS}
HTTP_LISTENERS = ("s3_address", "admin_address", "console_address", "internal_address")
"""The listeners the HTTP workers serve (raft and gossip are the supervisor's)."""
INTERNAL_TLS_SETTINGS = ("internal_tls_ca", "internal_tls_cert", "internal_tls_key")
ROLES = ("hybrid", "management", "storage")
CHOICES = {"role": ROLES, "read_consistency": ("strong", "eventual")}


def _coerce(setting: Setting, value: Any) -> Any:
    if isinstance(value, str) and setting.kind is not str:
        return setting.kind(value)
    if setting.kind is _size and not isinstance(value, int):
        return _size(value)
    return value


def _from_file(path: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        document = tomllib.load(fh)
    values: dict[str, Any] = {}
    for section in document.values():
        if not isinstance(section, dict):
            continue
        for name, value in section.items():
            if name not in BY_NAME:
                raise ValueError(f"{path}: unknown setting {name!r}")
            values[name] = value
    return values


def resolve(config_file: str | None = None, flags: dict[str, Any] | None = None, environ=None) -> dict[str, Any]:
    """Merge defaults, file, environment and flags into one plain dict of settings."""
    environ = os.environ if environ is None else environ
    values = {s.name: s.default for s in SETTINGS}
    config_file = config_file or environ.get("NEBULAIO_CONFIG")
    if config_file:
        values.update(_from_file(config_file))
    for setting in SETTINGS:
        if setting.env in environ:
            values[setting.name] = environ[setting.env]
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = value
    resolved = {name: _coerce(BY_NAME[name], value) for name, value in values.items()}
    resolved["data"] = os.path.abspath(resolved["data"])
    for name, allowed in CHOICES.items():
        if resolved[name] not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {resolved[name]!r}")
    for name in ("repair_batch", "repair_bandwidth", "scrub_rate", "login_window", "access_log_records"):
        if resolved[name] < 1:
            raise ValueError(f"{name} must be at least 1, not {resolved[name]!r}")
    if resolved["scrub_interval"] <= 0:
        raise ValueError(f"scrub_interval must be more than 0, not {resolved['scrub_interval']!r}")
    if resolved["read_verify_cache"] < 0:
        raise ValueError(f"read_verify_cache must be 0 or more, not {resolved['read_verify_cache']!r}")
    if resolved["access_log_interval"] <= 0:
        raise ValueError(f"access_log_interval must be more than 0, not {resolved['access_log_interval']!r}")
    if resolved["login_max_failures"] < 0:
        raise ValueError(f"login_max_failures must be 0 (no limit) or more, not {resolved['login_max_failures']!r}")
    if isinstance(resolved["trusted_proxies"], list):  # a TOML array
        resolved["trusted_proxies"] = ",".join(map(str, resolved["trusted_proxies"]))
    TrustedProxies.parse(resolved["trusted_proxies"])
    check_root_credentials(resolved)
    internal_tls = [resolved[name] for name in INTERNAL_TLS_SETTINGS]
    if any(internal_tls) and not all(internal_tls):
        raise ValueError(f"{', '.join(INTERNAL_TLS_SETTINGS)} are set together (or all left empty)")
    if 0 < len(resolved["admin_secret"].encode()) < MIN_SECRET_BYTES:
        # HS256 keys shorter than its hash are guessable offline from any one token.
        raise ValueError(f"admin_secret must be at least {MIN_SECRET_BYTES} bytes (or empty, to generate one)")
    for name in ("admin_secret_accepted", "encryption_master_keys"):
        if any(len(key.encode()) < MIN_SECRET_BYTES for key in secret_list("", resolved[name])):
            raise ValueError(f"every key of {name} must be at least {MIN_SECRET_BYTES} bytes")
    return resolved


def split_address(address: str) -> tuple[str, int]:
    """':9000' -> ('0.0.0.0', 9000); '[::1]:9000' -> ('::1', 9000)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def advertised(config: dict[str, Any], listener: str) -> str:
    """The HOST:PORT peers use to reach one of this node's listeners ("raft", "gossip", "internal")."""
    explicit = config[f"advertise_{listener}_address"]
    if explicit:
        return explicit
    host, port = split_address(config[f"{listener}_address"])
    return f"{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"


def raft_voters(config: dict[str, Any]) -> list[str]:
    """The voters' raft addresses, this node's own included when it is a voter."""
    peers = [peer.strip() for peer in config["raft_peers"].split(",") if peer.strip()]
    own = advertised(config, "raft")
    if config["role"] != "storage" and own not in peers:
        peers.append(own)
    return sorted(set(peers))


def is_cluster(config: dict[str, Any]) -> bool:
    """Whether this node was started as a member of a cluster. A node started alone may still
    become one when others join it: what depends on that looks at the registered nodes."""
    return len(raft_voters(config)) > 1 or config["role"] == "storage" or bool(config["join"])


def check_root_credentials(config: dict[str, Any]) -> None:
    """Refuse a root pair that is public, half set, or left to each node of a cluster to make up."""
    if config["root_password"] == PUBLIC_ROOT_PASSWORD:
        # NOTE: refused rather than warned about: a node reachable with a published password is
        # anyone's, and a warning in a log nobody reads does not stop a single request.
        raise ValueError(
            f"root_password {PUBLIC_ROOT_PASSWORD!r} is public; set a secret of your own, or leave root_user and"
            " root_password empty to have a pair generated"
        )
    if bool(config["root_user"]) != bool(config["root_password"]):
        raise ValueError("root_user and root_password are set together (or both left empty, to generate a pair)")
    if not config["root_user"] and is_cluster(config):
        raise ValueError(
            "a cluster needs root_user and root_password, the same on every node (each node would generate a"
            " pair of its own); a node that generated one prints it with `nebulaio credentials`"
        )


def export(config: dict[str, Any]) -> str:
    return orjson.dumps(config).decode()


def from_environment() -> dict[str, Any]:
    """The settings a launcher resolved for this process (supervisor, gunicorn, workers)."""
    raw = os.environ.get(RESOLVED_ENV)
    if raw is None:
        return resolve()
    return orjson.loads(raw)


def render_toml() -> str:
    """The documented default file, generated from SETTINGS (conf/nebulaio.toml)."""
    lines = [
        "# NebulaIO configuration. Every value shown is the built-in default.",
        "# Precedence: defaults < this file (--config / NEBULAIO_CONFIG) < NEBULAIO_<NAME> environment",
        "# variables < command-line flags (--name-with-dashes).",
    ]
    sections: dict[str, list[Setting]] = {}
    for setting in SETTINGS:
        sections.setdefault(setting.section, []).append(setting)
    for section, settings in sections.items():
        lines += ["", f"[{section}]"]
        for setting in settings:
            lines.append(f"# {setting.help} ({setting.env}, {setting.flag})")
            lines.append(f"{setting.name} = {_toml_value(setting.default)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
