"""The ``pytest-staging`` command line (also ``python -m pytest_staging``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-staging",
        description="Tools around the staging gate's promotion verdicts.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-staging {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return 0
