"""``tagwise`` command line: a thin layer over ``tagwise.workflows``.

Each module listed in ``COMMAND_MODULES`` defines ``register(subparsers)`` and adds its
sub-commands; a sub-command's handler takes the parsed ``args``, calls the application layer and
prints. Handlers never touch the store.

A command group (``labels``, ``corrections``, ``lf``, ``taxonomy``, ...: a command with actions of
its own) is written ``tagwise GROUP ACTION PROJECT ...``; ``normalize_argv`` also accepts
``tagwise GROUP PROJECT ACTION ...`` (the order some groups used first) for every group.
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


def _command_groups(parser: argparse.ArgumentParser) -> dict[str, tuple[set[str], bool]]:
    """Each command group's name -> (its action names, whether its parser wants PROJECT before ACTION).

    Read from the parser itself, so a group added by any module (e.g. ``users``) is covered."""
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    groups = {}
    for name, sub in top.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            project_first = any(not a.option_strings and a is not nested[0] for a in sub._actions)
            groups[name] = (set(nested[0].choices), project_first)
    return groups


def normalize_argv(argv: list[str], parser: argparse.ArgumentParser | None = None) -> list[str]:
    """``GROUP PROJECT ACTION ...`` and ``GROUP ACTION PROJECT ...`` -> the order ``parser`` expects.

    Swaps the two words after a group name when the first is not one of the group's actions and the
    second is (a project named like an action is read as the documented ``GROUP ACTION PROJECT``).
    """
    argv = list(argv)
    if len(argv) < 3:
        return argv
    groups = _command_groups(parser or build_parser())
    if argv[0] not in groups or argv[1].startswith("-") or argv[2].startswith("-"):
        return argv
    actions, project_first = groups[argv[0]]
    first_is_action, second_is_action = argv[1] in actions, argv[2] in actions
    if (project_first and first_is_action and not second_is_action) or \
            (not project_first and not first_is_action and second_is_action):
        argv[1], argv[2] = argv[2], argv[1]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv, parser))
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
