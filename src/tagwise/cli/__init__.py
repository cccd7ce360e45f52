"""``tagwise`` command line: a thin layer over the library.

Each module listed in ``COMMAND_MODULES`` defines ``register(subparsers)`` and adds its
sub-commands; a sub-command's handler takes the parsed ``args`` and returns an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..types import TagwiseError

COMMAND_MODULES = ["core", "fewshot", "audit", "taxonomy", "annotators"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagwise", description="Messy multi-source datasets -> one "
                                     "reliable multi-label classifier.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TagwiseError as exc:
        print(f"tagwise: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tagwise: interrupted; stored data is unchanged by the unfinished step", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
