"""``tagwise`` command line: a thin layer over ``tagwise.workflows``.

Each module listed in ``COMMAND_MODULES`` defines ``register(subparsers)`` and adds its
sub-commands; a sub-command's handler takes the parsed ``args``, calls the application layer and
prints. Handlers never touch the store.
"""
from __future__ import annotations

import argparse
import sys

from ..types import TagwiseError
from . import annotators, audit, core, labels, lf, suggest, taxonomy, users

COMMAND_MODULES = [core, suggest, audit, taxonomy, lf, labels, annotators, users]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagwise", description="Messy multi-source datasets -> one "
                                     "reliable multi-label classifier.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TagwiseError as exc:
        print(f"tagwise: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `tagwise evaluate --json | head`: the reader left; not an error of ours
        try:
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115  (flushing at exit must not fail again)
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print("tagwise: interrupted; stored data is unchanged by the unfinished step", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
