"""Peak memory and wall time of the audit at scale, with and without partitioning (issue 20).

Synthetic clustered vectors as in ``bench_audit.py``'s scale check (d = 512, K = 100 labels, ~3
labels per row), written in chunks to .npy files and passed to the audit as read-only memory maps
(what a user auditing 10M rows would pass), with 2% of rows given one flipped label cell so that
both runs' rankings can be scored (AUROC of label quality for the planted rows). Each run is a
fresh process, so its peak RSS (VmHWM) is its own; the unpartitioned run reads the whole mapped X,
which counts in its resident memory, the partitioned one drops each partition's pages of X after
copying them.

Run (from the repo root; ~15 min on one core at 1M)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 .venv/bin/python \\
        bench/bench_audit_partition.py --n 1000000 --partition-rows 250000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from common import peak_rss_mb, save_results  # noqa: E402


def make_data(directory: Path, n: int, d: int = 512, K: int = 100, seed: int = 0, chunk: int = 100_000):
    """X (n, d) float32, noisy labels (n, K) uint8 and the planted rows (n,) bool as .npy files."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((K, d)).astype(np.float32)
    X = np.lib.format.open_memmap(directory / "X.npy", mode="w+", dtype=np.float32, shape=(n, d))
    Y = np.lib.format.open_memmap(directory / "Y.npy", mode="w+", dtype=np.uint8, shape=(n, K))
    planted = np.zeros(n, dtype=bool)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        y = (rng.random((m, K)) < 0.02).astype(np.uint8)
        y[np.arange(m), rng.integers(0, K, m)] = 1
        X[s:s + m] = (y.astype(np.float32) @ centers) / np.sqrt(y.sum(1, keepdims=True)) \
            + rng.standard_normal((m, d), dtype=np.float32)
        flip = rng.random(m) < 0.02
        rows = np.flatnonzero(flip)
        y[rows, rng.integers(0, K, len(rows))] ^= 1  # one wrong or missing cell
        empty = y.sum(1) == 0
        flip &= ~empty  # a flip that emptied the row is undone: every row keeps a label
        y[empty] = (X[s:s + m][empty] @ centers.T).argmax(1)[:, None] == np.arange(K)
        Y[s:s + m] = y
        planted[s:s + m] = flip
    X.flush()
    Y.flush()
    del X, Y
    np.save(directory / "planted.npy", planted)


def auroc(scores_low_is_bad: np.ndarray, truth: np.ndarray) -> float:
    from scipy.stats import rankdata
    r = rankdata(-scores_low_is_bad)
    pos = truth.sum()
    return float((r[truth].sum() - pos * (pos + 1) / 2) / (pos * (len(truth) - pos)))


def child(directory: Path, partition_rows: int | None) -> dict:
    from tagwise.audit.core import audit_arrays

    X = np.load(directory / "X.npy", mmap_mode="r")
    Y = np.load(directory / "Y.npy", mmap_mode="r")
    planted = np.load(directory / "planted.npy")
    before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    res = audit_arrays(X, Y, folds=5, progress=True, partition_rows=partition_rows, scratch_dir=directory)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n": int(len(Y)), "partition_rows": partition_rows, "seconds": round(sec, 1), "cpu_seconds": round(cpu, 1),
            "stages": {k: round(v, 1) for k, v in res.seconds.items()}, "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_before_audit_mb": round(before, 1), "auroc_planted": round(auroc(res.label_quality, planted), 4),
            "planted_rows": int(planted.sum()), "estimated_errors": round(float(res.estimated_errors), 1),
            "flag_budget": int(res.flag_budget),
            "precision_at_budget": round(float(planted[res.flagged_rows].mean()) if res.flag_budget else 0.0, 4),
            "choices": res.choices}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--partition-rows", type=int, default=250_000)
    ap.add_argument("--skip-unpartitioned", action="store_true")
    ap.add_argument("--out", default=None, help="results file (default bench/results/audit_partition.json)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-partition", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child), args.child_partition or None)), flush=True)
        return
    out = args.out or "audit_partition"
    results = {"runs": []}  # this run only: nothing is read back from an earlier file
    results["threads"] = {k: os.environ.get(k, "default") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with tempfile.TemporaryDirectory(prefix="bench-audit-part-", dir=os.environ.get("BENCH_TMP")) as tmp:
        t0 = time.perf_counter()
        make_data(Path(tmp), args.n)
        print(f"data {args.n} x 512 x 100 written in {time.perf_counter() - t0:.0f}s", flush=True)
        modes = [args.partition_rows] + ([] if args.skip_unpartitioned else [0])
        for part in modes:
            proc = subprocess.run([sys.executable, __file__, "--child", tmp, "--child-partition", str(part)],
                                  capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-3000:], flush=True)
                raise SystemExit(proc.returncode)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(json.dumps(r), flush=True)
            results["runs"].append(r)
            save_results(out, results)
    by = {(r["n"], r["partition_rows"]): r for r in results["runs"]}
    if (args.n, None) in by and (args.n, args.partition_rows) in by:
        a, b = by[(args.n, None)], by[(args.n, args.partition_rows)]
        results[f"ratio_{args.n}"] = {"peak_rss_unpartitioned_over_partitioned": round(a["peak_rss_mb"] / b["peak_rss_mb"], 2),
                                      "wall_unpartitioned_over_partitioned": round(a["seconds"] / b["seconds"], 2),
                                      "cpu_unpartitioned_over_partitioned": round(a["cpu_seconds"] / b["cpu_seconds"], 2)}
        print(results[f"ratio_{args.n}"])
        save_results(out, results)


if __name__ == "__main__":
    main()
