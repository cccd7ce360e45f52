"""Long fuzz run (Hypothesis) of the spec parser, the readers and the corrections reader (issue 21).

Runs the properties of ``tests/test_fuzz.py`` (success or a one-line TagwiseError, store unchanged on
failure) round-robin for ``--minutes``, each round with fresh random inputs, and writes how many inputs
each target tried, how they ended, and every distinct failure (type, message, the shrunk input) to
``bench/results/fuzz.json``. A failure does not stop the run: it is recorded and the next round starts.

    PYTHONPATH=src python tools/fuzz.py --minutes 12
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import test_fuzz as tf  # noqa: E402


def properties(project):
    yaml_text = st.one_of(st.text(max_size=200), st.lists(st.sampled_from(
        ["path: data.csv\n", "path: data.jsonl\n", "name: a\n", "x: &a [*a]\n", "a: &a [1,1]\nb: &b [*a,*a]\n",
         "labels: {format: onehot, onehot_columns: [joy]}\n", "columns: {text: {a: 1}}\n",
         "splits: {train: data.csv, test: data.tsv}\n", "- 1\n", "!!python/object:os.system\n", "limit: true\n",
         "language: [en, de]\n", "format: lines\n", "header: false\n", "separator: '|'\n"]), max_size=8).map("".join))
    return {
        "spec": given(tf.specs)(lambda spec: tf.check_spec(project, spec)),
        "spec_text": given(yaml_text)(lambda text: tf.check_spec_text(project, text)),
        "reader": given(st.sampled_from(["csv", "tsv", "jsonl"]), st.booleans(), st.sampled_from(["minimal", "none"]),
                        tf.file_bytes, st.sampled_from(["delimited", "list", "single", "onehot"]))(
            lambda fmt, header, quoting, data, lf: tf.check_reader(project, fmt, header, quoting, data, lf)),
        "corrections": given(tf.issue_files,
                             st.sampled_from(["jsonl", "csv"]),
                             st.one_of(st.none(), st.none(), st.none(), tf.file_bytes))(
            lambda rows, fmt, raw: tf.check_corrections(project, rows, fmt, raw)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--per-round", type=int, default=200, help="inputs per target per round")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fuzz.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tagwise-fuzz-") as tmp:
        project = tf.fresh_project(Path(tmp))
        run = settings(max_examples=args.per_round, deadline=None, database=None, print_blob=True,
                       suppress_health_check=list(HealthCheck))
        failures: dict[str, dict] = {}
        rounds = 0
        t0 = time.time()
        while time.time() - t0 < args.minutes * 60:
            rounds += 1
            for name, prop in properties(project).items():  # fresh wrappers: settings apply once each
                try:
                    run(prop)()
                except Exception as exc:  # noqa: BLE001  (recorded, then the run goes on)
                    key = f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                    entry = failures.setdefault(key, {"target": name, "count": 0,
                                                      "traceback": traceback.format_exc()[-3000:]})
                    entry["count"] += 1
                    print(f"[{time.time() - t0:.0f}s] FAILURE {key}", flush=True)
                    if entry["count"] == 1:
                        print(entry["traceback"], flush=True)
            tried = {k: v for k, v in tf.COUNTS.items() if ":" not in k}
            print(f"[{time.time() - t0:.0f}s] round {rounds}: inputs tried {tried}", flush=True)
        project.close()
    seconds = time.time() - t0
    result = {
        "command": f"PYTHONPATH=src python tools/fuzz.py --minutes {args.minutes:g} --per-round {args.per_round}",
        "seconds": round(seconds, 1), "rounds": rounds,
        "inputs_tried": {k: v for k, v in tf.COUNTS.items() if ":" not in k},
        "inputs_total": sum(v for k, v in tf.COUNTS.items() if ":" not in k),
        "outcomes": {k: v for k, v in sorted(tf.COUNTS.items()) if ":" in k},
        "failures": list(failures.values()), "distinct_failures": len(failures),
        "python": platform.python_version(),
        "note": "inputs_tried counts every call of a property, shrinking steps included; outcomes 'ok' = the "
                "command succeeded, 'error' = a TagwiseError with the store unchanged.",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: result[k] for k in ("seconds", "inputs_total", "distinct_failures")}))


if __name__ == "__main__":
    main()
