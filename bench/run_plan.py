"""`make bench`: run every command of bench/plan.txt, resumably, and list what failed.

bench/plan.txt holds one command per line: the command recorded in each file of bench/results (so a
full run rewrites every current figure) and the commands that regenerate the files parked in
bench/results/stale/. ``tests/test_bench_integrity.py`` checks that every recorded command is in the
plan and that every plan line is a command its script accepts.

A full run takes many hours on a 2-core machine, longer than a working session, so the run is resumable:
each finished command leaves a record (exit code, seconds, commit, load average) in ``.bench-state/``
(git-ignored), and the next ``make bench`` runs only the commands with no successful record. A command
that fails is recorded as failed, the run goes on to the next, and the failures are listed at the end
(exit status 1). ``--fresh`` forgets every record and starts over.

    make bench                                   # resume (a fresh clone starts from the first line)
    make bench BENCH_ARGS=--fresh                # start over
    python bench/run_plan.py --status            # what ran, how long, what is left
    python bench/run_plan.py --only finetune     # the plan lines containing "finetune"

Each command runs from the repository root with the environment variables written on its line, the
thread variables (OMP/OPENBLAS/MKL_NUM_THREADS) set only where the line sets them, ``PYTHONPATH=src``,
and this interpreter in place of ``python``; so the command each results file records equals its plan line.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "bench" / "plan.txt"
STATE = ROOT / ".bench-state"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # = common.THREAD_VARS (common loads tagwise)
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$")


def read_plan(path: Path = PLAN) -> list[str]:
    """The plan's commands in order: one per line, blank lines and ``#`` comments skipped."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def normalize(command: str) -> str:
    """A command with ``PYTHONPATH=src`` dropped and whitespace collapsed: the runner always sets
    PYTHONPATH=src, and some results files were written by runs that set it elsewhere."""
    return " ".join(w for w in shlex.split(command) if w != "PYTHONPATH=src")


def split(command: str) -> tuple[dict[str, str], list[str]]:
    """'OMP_NUM_THREADS=1 PYTHONPATH=src python bench/x.py --a 1' -> ({'OMP_NUM_THREADS': '1', ...},
    ['bench/x.py', '--a', '1'])."""
    words = shlex.split(command)
    env = {}
    while words and ASSIGNMENT.match(words[0]):
        name, value = ASSIGNMENT.match(words.pop(0)).groups()
        env[name] = value
    if len(words) < 2 or not re.match(r"^(\S*/)?python3?$", words[0]) or not words[1].endswith(".py"):
        raise ValueError(f"bench/plan.txt: {command!r} is not 'VARS... python SCRIPT ARGS'; "
                         f"fix the line so it names a python script")
    return env, words[1:]


def key(command: str) -> str:
    return hashlib.sha1(normalize(command).encode()).hexdigest()[:16]


def record_path(state: Path, command: str) -> Path:
    return state / f"{key(command)}.json"


def read_record(state: Path, command: str) -> dict | None:
    path = record_path(state, command)
    return json.loads(path.read_text()) if path.exists() else None


def write_record(state: Path, command: str, record: dict) -> None:
    """Atomically: a run killed mid-write leaves the previous record, never half of one."""
    state.mkdir(parents=True, exist_ok=True)
    path = record_path(state, command)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"command": command, **record}, indent=2) + "\n")
    tmp.replace(path)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_command(command: str, root: Path = ROOT) -> int:
    """Run one plan line from ``root``; its output goes straight to ours. -> exit code."""
    assigned, argv = split(command)
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(assigned)
    env["PYTHONPATH"] = "src" + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, *argv], cwd=root, env=env).returncode


def fmt_s(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def status_lines(commands: list[str], state: Path) -> tuple[list[str], float, list[str], list[str]]:
    """-> (one line per command, seconds of the successful runs, failed commands, commands not run)."""
    lines, total, failed, left = [], 0.0, [], []
    for i, command in enumerate(commands, 1):
        rec = read_record(state, command)
        if rec is None:
            mark = "not run"
            left.append(command)
        elif rec["returncode"] == 0:
            mark = f"ok {fmt_s(rec['seconds'])} ({rec['commit']}, load {rec['load_average_start']:.1f})"
            total += rec["seconds"]
        else:
            mark = f"FAILED rc={rec['returncode']} after {fmt_s(rec['seconds'])} ({rec['commit']})"
            failed.append(command)
        lines.append(f"[{i:>2}/{len(commands)}] {mark:<42} {command}")
    return lines, total, failed, left


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", default=str(PLAN))
    ap.add_argument("--state", default=str(STATE), help="where the per-command records are kept")
    ap.add_argument("--fresh", action="store_true", help="forget every record and run the whole plan")
    ap.add_argument("--status", action="store_true", help="print what ran and what is left; run nothing")
    ap.add_argument("--only", default=None, help="run only the plan lines containing this text")
    args = ap.parse_args(argv)
    state = Path(args.state)
    commands = read_plan(Path(args.plan))
    for command in commands:
        split(command)  # a malformed line fails before hours of running, not after
    if args.fresh and state.exists():
        for path in state.glob("*.json"):
            path.unlink()
    if not args.status:
        todo = [c for c in commands if (args.only is None or args.only in c)
                and (read_record(state, c) or {}).get("returncode") != 0]
        print(f"bench plan: {len(commands)} commands, {len(todo)} to run "
              f"({len(commands) - len(todo)} done earlier; --fresh starts over)", flush=True)
        for i, command in enumerate(todo, 1):
            print(f"\n== [{i}/{len(todo)}] {command}", flush=True)
            load = os.getloadavg()[0]
            start = time.time()
            rc = run_command(command)
            seconds = time.time() - start
            write_record(state, command, {"returncode": rc, "seconds": round(seconds, 1), "commit": commit(),
                                          "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                          "load_average_start": round(load, 2)})
            print(f"== [{i}/{len(todo)}] {'ok' if rc == 0 else f'FAILED rc={rc}'} in {fmt_s(seconds)}", flush=True)
    lines, total, failed, left = status_lines(commands, state)
    print("\n" + "\n".join(lines))
    print(f"\n{len(commands) - len(failed) - len(left)} of {len(commands)} commands ran; "
          f"their wall time adds up to {fmt_s(total)}")
    if failed:
        print("FAILED:\n  " + "\n  ".join(failed))
    if left:
        print(f"not run yet: {len(left)} (rerun `make bench` to go on)")
    elif not failed:
        print("every benchmark ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
