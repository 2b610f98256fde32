"""Command line: `nebulaio server [--data DIR] [--config FILE] [--<setting> VALUE ...]`, `nebulaio admin ...`."""

from __future__ import annotations

import argparse
import logging
import sys

from nebulaio import __version__
from nebulaio import config as configuration
from nebulaio.admin import cli as admin_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nebulaio", description="NebulaIO, an S3-compatible object store.")
    parser.add_argument("--version", action="version", version=f"nebulaio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="run a node")
    server.add_argument("--config", help="TOML configuration file (NEBULAIO_CONFIG)")
    for setting in configuration.SETTINGS:
        server.add_argument(setting.flag, dest=setting.name, default=None, help=f"{setting.help} [{setting.env}]")
    commands.add_parser("print-config", help="print the documented default configuration file")
    admin_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "print-config":
        sys.stdout.write(configuration.render_toml())
        return 0
    if args.command == "admin":
        return admin_cli.run(args)
    flags = {s.name: getattr(args, s.name) for s in configuration.SETTINGS}
    try:
        config = configuration.resolve(args.config, flags)
    except (OSError, ValueError) as exc:
        print(f"nebulaio: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config["log_level"].upper(), format="%(asctime)s %(levelname)s [node] %(name)s: %(message)s"
    )
    from nebulaio import node

    return node.run(config)


if __name__ == "__main__":
    raise SystemExit(main())
