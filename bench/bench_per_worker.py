"""Per-worker (one core) throughput of each heavy step, the figures docs/scaling.md scales up.

On one BLAS/OpenMP thread, wall time and this process's CPU time for:
- embed: the default `use` encoder on `--embed-n` real mixed texts (bench_encoder_gpu.mixed_texts);
- train: the default head (`MultiLabelLinear()`: 5-fold thresholds) on `--n` synthetic clustered
  512-d vectors with 100 labels (bench_audit.scale_check's generator);
- predict: that head's `predict_proba` + `predict` on the same vectors (the embedding is the embed step);
- audit: `audit_arrays` on the same vectors, per stage (cross-fit, kNN, scoring).
The CPU-time rate (items per CPU-second) is the per-core figure: on a shared machine the wall time
also counts other people's work.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/bench_per_worker.py [--n 100000] [--embed-n 2000]
-> bench/results/per_worker.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))
sys.path.insert(0, str(BENCH))
from common import peak_rss_mb, save_results  # noqa: E402


def measure(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def figures(n, wall, cpu):
    return {"n": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "per_cpu_s": round(n / cpu, 1)}


def synthetic(n, d=512, K=100, seed=0):
    """bench_audit.scale_check's clustered vectors: 1 label each plus 2% extra per label."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((K, d)).astype(np.float32)
    Y = (rng.random((n, K)) < 0.02).astype(np.uint8)
    Y[np.arange(n), rng.integers(0, K, n)] = 1
    X = (Y.astype(np.float32) @ centers) / np.sqrt(Y.sum(1, keepdims=True)) + rng.standard_normal((n, d)).astype(np.float32)
    return X, Y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--embed-n", type=int, default=2000)
    ap.add_argument("--steps", default="embed,train,predict,audit")
    args = ap.parse_args()
    steps = args.steps.split(",")
    results = {"n": args.n, "d": 512, "K": 100}
    if "embed" in steps:
        from bench_encoder_gpu import mixed_texts

        from tagwise.encoders import get_encoder

        texts = mixed_texts(args.embed_n)
        enc = get_encoder("use")
        enc.encode(texts[:32])
        _, w, c = measure(lambda: enc.encode(texts))
        results["embed_use"] = figures(len(texts), w, c) | {"median_chars": int(np.median([len(t) for t in texts]))}
        print("embed_use", results["embed_use"], flush=True)
    X, Y = synthetic(args.n)
    if "train" in steps or "predict" in steps:
        from tagwise.learn.linear import MultiLabelLinear

        head, w, c = measure(lambda: MultiLabelLinear().fit(X, Y))
        results["train_default_head"] = figures(args.n, w, c)
        print("train", results["train_default_head"], flush=True)
        _, w, c = measure(lambda: (head.predict_proba(X), head.predict(X)))
        results["predict_head"] = figures(args.n, w, c)
        print("predict", results["predict_head"], flush=True)
    if "audit" in steps:
        from tagwise.audit.core import audit_arrays

        res, w, c = measure(lambda: audit_arrays(X, Y, folds=5, progress=True))
        results["audit"] = figures(args.n, w, c) | {"stages_wall_s": {k: round(v, 2) for k, v in res.seconds.items()}}
        print("audit", results["audit"], flush=True)
    results["peak_rss_mb"] = round(peak_rss_mb())
    print(f"results -> {save_results('per_worker', results)}")


if __name__ == "__main__":
    main()
