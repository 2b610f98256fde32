"""Command line: `nebulaio server [--data DIR] [--config FILE] [--<setting> VALUE ...]`, `nebulaio admin ...`,
`nebulaio cluster certs DIR --nodes a,b,c`."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from nebulaio import __version__
from nebulaio import config as configuration
from nebulaio.admin import cli as admin_cli
from nebulaio.cluster import certs
from nebulaio.storage.layout import DataLayout
from nebulaio.util import keyfile


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nebulaio", description="NebulaIO, an S3-compatible object store.")
    parser.add_argument("--version", action="version", version=f"nebulaio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="run a node")
    server.add_argument("--config", help="TOML configuration file (NEBULAIO_CONFIG)")
    for setting in configuration.SETTINGS:
        server.add_argument(setting.flag, dest=setting.name, default=None, help=f"{setting.help} [{setting.env}]")
    commands.add_parser("print-config", help="print the documented default configuration file")
    credentials = commands.add_parser(
        "credentials", help='print the node\'s root pair as shell exports: eval "$(nebulaio credentials)"'
    )
    credentials.add_argument("--config", help="TOML configuration file (NEBULAIO_CONFIG)")
    credentials.add_argument("--data", help="data directory (NEBULAIO_DATA)")
    cluster = commands.add_parser("cluster", help="prepare a cluster").add_subparsers(dest="action", required=True)
    certs = cluster.add_parser(
        "certs", help="make a CA and node certificates for mTLS between nodes (internal_tls_ca, _cert, _key)"
    )
    certs.add_argument("directory", help="where ca.pem, ca-key.pem, NODE.pem and NODE-key.pem are written")
    certs.add_argument("--nodes", required=True, help="comma-separated node names (DNS names or IP addresses)")
    admin_cli.add_parser(commands)
    return parser


def make_certificates(args: argparse.Namespace) -> int:
    nodes = [node.strip() for node in args.nodes.split(",") if node.strip()]
    try:
        written = certs.make(args.directory, nodes)
    except (OSError, ValueError) as exc:
        print(f"nebulaio: no certificates made: {exc}", file=sys.stderr)
        return 1
    print("\n".join(written))
    print(
        f"Give each node {certs.CA_FILE}, its NODE.pem and NODE-key.pem as internal_tls_ca, internal_tls_cert and"
        f" internal_tls_key; keep {certs.CA_KEY_FILE} off the nodes."
    )
    return 0


def print_credentials(config: dict) -> int:
    """The root pair a node with these settings uses, as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY exports."""
    user, password = config["root_user"], config["root_password"]
    if not user:
        path = DataLayout(config["data"]).root_credentials_file
        try:
            user, password = keyfile.read_pair(path)
        except OSError as exc:
            print(
                f"nebulaio: no root credentials readable in {path} ({exc.strerror}): start the node once"
                " (it generates them), or set root_user and root_password",
                file=sys.stderr,
            )
            return 1
    print(f"export AWS_ACCESS_KEY_ID={shlex.quote(user)}\nexport AWS_SECRET_ACCESS_KEY={shlex.quote(password)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "print-config":
        sys.stdout.write(configuration.render_toml())
        return 0
    if args.command == "admin":
        return admin_cli.run(args)
    if args.command == "cluster":
        return make_certificates(args)
    flags = {s.name: getattr(args, s.name, None) for s in configuration.SETTINGS}
    try:
        config = configuration.resolve(args.config, flags)
    except (OSError, ValueError) as exc:
        print(f"nebulaio: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "credentials":
        return print_credentials(config)
    logging.basicConfig(
        level=config["log_level"].upper(), format="%(asctime)s %(levelname)s [node] %(name)s: %(message)s"
    )
    from nebulaio import node

    return node.run(config)


if __name__ == "__main__":
    raise SystemExit(main())
