"""Every `tagwise …` command line in README.md and docs/*.md parses with the CLI's own parser.

The docs are a contract a newcomer follows word for word, so a command they show must be one the CLI
accepts. Lines are taken from fenced code blocks whose language is empty, ``bash``, ``sh``, ``shell``
or ``console`` (``text`` blocks hold program output or usage lines and are skipped). Per line:
a ``$ `` prompt is dropped, ``\\`` continuations are joined, leading ``VAR=value`` assignments are
dropped, ``# …`` comments are stripped (shell rules, quotes respected), and a shell pipe or redirect
ends the command. Placeholders are expanded, not skipped:

- an optional group ``[--json]`` / ``[--format jsonl|csv]`` gives one variant without it and one per
  alternative with it;
- a bare word with ``|`` alternatives (``--consensus model|majority``) gives one variant per
  alternative.

A line that cannot be a real command (``...`` in it, say) fails unless its comment carries the
explicit marker ``docs-test: skip``. The failure names the file, the line and the parser's message.
"""
from __future__ import annotations

import argparse
import itertools
import re
import shlex
from pathlib import Path

import pytest

from tagwise import cli
from tagwise.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
SKIP_MARKER = "docs-test: skip"
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_OPTIONAL = re.compile(r"\[([^\[\]]+)\]")
_WORD_ALTERNATIVES = re.compile(r"^[\w.:+-]+(\|[\w.:+-]+)+$")
_SHELL_STOP = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "&"}
MAX_VARIANTS = 64


class DocParseError(Exception):
    """What argparse would have printed before exiting."""


def _raising_parser() -> argparse.ArgumentParser:
    """``build_parser()`` with every (sub)parser raising instead of printing and exiting."""
    parser = build_parser()

    def patch(p: argparse.ArgumentParser) -> None:
        def error(message: str, _p=p):
            raise DocParseError(f"{_p.prog}: {message}")

        p.error = error  # type: ignore[method-assign]
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in set(action.choices.values()):
                    patch(sub)

    patch(parser)
    return parser


def command_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, command text)`` of every ``tagwise`` line in the shell code blocks of ``path``."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    language = ""
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _FENCE.match(raw)
        if m and (fence is None or m.group(2).startswith(fence)) and (fence is None or not m.group(3)):
            if fence is None:
                fence, language = m.group(2)[:3], m.group(3).lower()
            else:
                fence = None
            pending = None
            continue
        if fence is None or language not in SHELL_LANGUAGES:
            continue
        line = raw.strip()
        if pending is not None:
            start, text = pending
            line = f"{text} {line}"
            number = start
            pending = None
        if line.startswith("$ "):
            line = line[2:]
        if line.endswith("\\"):
            pending = (number, line[:-1].rstrip())
            continue
        words = line.split()
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
        if words[:1] == ["tagwise"]:
            out.append((number, " ".join(words)))
    return out


def _comment(line: str) -> str:
    """The text after the first unquoted `` #`` of a shell line ("" when there is none)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i + 1:]
    return ""


def _expand_optional(line: str) -> list[str]:
    """Variants of ``line`` for its ``[ ... ]`` optional groups (outside quotes): each group left out,
    or put in with each of its ``a|b`` alternatives."""
    groups = [m for m in _OPTIONAL.finditer(line) if m.group(1).lstrip().startswith("-")]
    if not groups:
        return [line]
    choices = []
    for m in groups:
        inner = m.group(1).strip()
        head, _, rest = inner.partition(" ")
        alts = [inner]
        if rest and _WORD_ALTERNATIVES.match(rest.strip()):
            alts = [f"{head} {alt}" for alt in rest.strip().split("|")]
        elif _WORD_ALTERNATIVES.match(inner):
            alts = inner.split("|")
        choices.append([""] + alts)
    variants = []
    for combo in itertools.islice(itertools.product(*choices), MAX_VARIANTS):
        text, last = [], 0
        for m, pick in zip(groups, combo):
            text.append(line[last:m.start()])
            text.append(pick)
            last = m.end()
        text.append(line[last:])
        variants.append("".join(text))
    return variants


def argument_lists(command: str) -> list[list[str]]:
    """The argv lists (without the leading ``tagwise``) that ``command`` stands for."""
    out: list[list[str]] = []
    for variant in _expand_optional(command):
        tokens = shlex.split(variant, comments=True)
        for i, tok in enumerate(tokens):
            if tok in _SHELL_STOP:
                tokens = tokens[:i]
                break
        words = [tok.split("|") if _WORD_ALTERNATIVES.match(tok) else [tok] for tok in tokens[1:]]
        for combo in itertools.islice(itertools.product(*words), MAX_VARIANTS):
            out.append(list(combo))
    return out


def _cases():
    for path in DOC_FILES:
        for number, command in command_lines(path):
            yield pytest.param(path, number, command, id=f"{path.relative_to(ROOT)}:{number}")


def test_docs_have_commands():
    """The scan finds the documented commands at all (a broken fence parser would pass every doc)."""
    found = {path.name: len(command_lines(path)) for path in DOC_FILES}
    assert found.get("README.md", 0) >= 10, found
    assert found.get("your-data.md", 0) >= 10, found


@pytest.mark.parametrize("path, number, command", list(_cases()))
def test_documented_command_parses(path: Path, number: int, command: str):
    where = f"{path.relative_to(ROOT)}:{number}"
    if SKIP_MARKER in _comment(command):
        pytest.skip(f"{where}: marked {SKIP_MARKER!r}")
    body = shlex.split(command, comments=True)
    assert "..." not in body and "…" not in body, (
        f"{where}: `{command}` has a '...' placeholder; write a real command, or mark the line "
        f"'# {SKIP_MARKER}'")
    parser = _raising_parser()
    # what `tagwise` itself does with argv: main() may first put a group's words in the parser's order
    normalize = getattr(cli, "normalize_argv", lambda argv, parser=None: argv)
    for argv in argument_lists(command):
        try:
            parser.parse_args(normalize(argv, parser))
        except DocParseError as exc:
            pytest.fail(f"{where}: `tagwise {' '.join(argv)}` does not parse: {exc}", pytrace=False)
        except SystemExit as exc:  # --help or a parser that exits another way
            pytest.fail(f"{where}: `tagwise {' '.join(argv)}` makes the parser exit ({exc.code})",
                        pytrace=False)


def test_scanner_reads_blocks_like_a_reader(tmp_path: Path):
    """Prompts, continuations, comments, env assignments and non-shell blocks are handled as documented."""
    doc = tmp_path / "doc.md"
    doc.write_text("\n".join([
        "```bash",
        "$ tagwise train p --few-shot   # a comment with --bogus in it",
        "TAGWISE_ENGINE=ray tagwise audit p \\",
        "    --out issues.csv",
        "echo tagwise train p",
        "```",
        "```text",
        "tagwise train p --not-an-option",
        "```",
        "```yaml",
        "tagwise: not a command",
        "```",
        "```",
        "tagwise evaluate p --json | head",
        "```",
    ]), encoding="utf-8")
    found = command_lines(doc)
    assert [n for n, _ in found] == [2, 3, 14]
    assert found[1][1] == "tagwise audit p --out issues.csv"
    assert argument_lists(found[0][1]) == [["train", "p", "--few-shot"]]
    assert argument_lists(found[2][1]) == [["evaluate", "p", "--json"]]


def test_placeholders_expand_and_bad_lines_fail():
    """Optional groups and word alternatives become every variant; each variant meets the parser."""
    variants = argument_lists("tagwise train p [--consensus model|majority]")
    assert variants == [["train", "p"], ["train", "p", "--consensus", "model"],
                        ["train", "p", "--consensus", "majority"]]
    assert argument_lists("tagwise labels export p --out l.jsonl --format jsonl|csv")[1][-1] == "csv"
    parser = _raising_parser()
    with pytest.raises(DocParseError, match="--bogus"):
        parser.parse_args(["train", "p", "--bogus"])
    with pytest.raises(DocParseError, match="invalid choice"):
        parser.parse_args(["train", "p", "--consensus", "plurality"])
