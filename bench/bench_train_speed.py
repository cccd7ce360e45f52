"""Issue 20, speed target 1: fit time of tagwise's default head vs scikit-learn's one-vs-rest
logistic regression on the same embeddings, with macro-F1 on the official test split.

Same USE embeddings (the shared cache, TAGWISE_CACHE_DIR), same training rows, one process,
one BLAS thread, peers and tagwise timed back to back in the SAME run (the machine is shared,
so only the ratios carry over). Labels without a training positive are dropped for both.
Peers (as in bench_core.py):
- ``peer_0.5``: OneVsRestClassifier(LogisticRegression(max_iter=1000)), threshold 0.5: one fit;
- ``peer_cv_thresholds``: the same model plus per-label thresholds tuned exactly as tagwise tunes
  its own (5-fold out-of-fold probabilities, ``best_f1_thresholds`` with tagwise's shrinkage),
  refitted on all of train: the peer with the same care and the same macro-F1;
- ``peer_balanced_cv_thresholds``: the same with ``class_weight="balanced"`` (tagwise weights rare
  labels' positives too).
``--synthetic N`` adds a synthetic scale run (N x 512 float32 Gaussian embeddings, 100 labels
from a low-rank latent logit model, ~1-10% positives each): fit seconds and peak memory
(tracemalloc peak of Python-allocated arrays, and the process's peak RSS) for tagwise, and
for the peer when ``--synthetic-peer`` is given (slow: one solver run per label).

    TAGWISE_CACHE_DIR=... OMP_NUM_THREADS=1 PYTHONPATH=src python bench/bench_train_speed.py \
        [--datasets goemotions reuters] [--synthetic 1000000] [--synthetic-peer]
Writes bench/results/train_speed.json, this run only (nothing is read back).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import cv_threshold_peer, scores  # noqa: E402
from common import load_dataset, peak_rss_mb, save_results, timed  # noqa: E402

from tagwise.learn.linear import MultiLabelLinear  # noqa: E402


def peer(balanced: bool = False):
    return OneVsRestClassifier(LogisticRegression(max_iter=1000, class_weight="balanced" if balanced else None))


def bench_dataset(name: str) -> dict:
    d = load_dataset(name)
    X, Y, splits = d["X"], d["Y"], d["splits"]
    train, test = splits == "train", splits == "test"
    keep = Y[train].sum(0) > 0
    Y = Y[:, keep]
    names = [n for n, k in zip(d["labels"].names, keep) if k]
    Xtr, Ytr, Xte, Yte = X[train], Y[train], X[test], Y[test]
    out = {"dataset": name, "n_train": int(train.sum()), "n_test": int(test.sum()), "n_labels": len(names),
           "embeddings": "use (multilingual USE v3, full text)"}
    out["tagwise_tol"] = MultiLabelLinear().tol
    model, secs = timed(MultiLabelLinear().fit, Xtr, Ytr)
    P = model.predict_proba(Xte)
    out["tagwise"] = {**scores(Yte, model.predict(Xte), P, names), "fit_s": round(secs, 2)}
    model, secs = timed(peer().fit, Xtr, Ytr)
    P = model.predict_proba(Xte)
    out["peer_0.5"] = {**scores(Yte, P >= 0.5, P, names), "fit_s": round(secs, 2)}
    model, th, secs = cv_threshold_peer(peer, Xtr, Ytr)
    P = model.predict_proba(Xte)
    out["peer_cv_thresholds"] = {**scores(Yte, P >= th[None, :], P, names), "fit_s": round(secs, 2)}
    # tagwise weights rare labels' positives (pos_weight="auto"); the weighted peer does too (issue 29)
    model, th, secs = cv_threshold_peer(lambda: peer(balanced=True), Xtr, Ytr)
    P = model.predict_proba(Xte)
    out["peer_balanced_cv_thresholds"] = {**scores(Yte, P >= th[None, :], P, names), "fit_s": round(secs, 2)}
    tw = out["tagwise"]
    for key in ("peer_0.5", "peer_cv_thresholds", "peer_balanced_cv_thresholds"):
        out[f"ratio_fit_time_vs_{key}"] = round(tw["fit_s"] / out[key]["fit_s"], 3)
        out[f"macro_f1_minus_{key}"] = round(tw["macro_f1"] - out[key]["macro_f1"], 4)
    return out


def synthetic(n: int, d: int = 512, K: int = 100, rank: int = 16, seed: int = 0):
    """(n, d) float32 Gaussian embeddings (unit-norm rows, anisotropic) and (n, K) uint8 labels.

    Labels come from a low-rank latent model: logits = (X A) B + bias + noise, with A (d, rank),
    B (rank, K), and per-label biases set for base rates between 1% and 10%.
    """
    rng = np.random.default_rng(seed)
    scales = (1.0 / np.sqrt(np.arange(1, d + 1))).astype(np.float32)  # anisotropic, like embeddings
    A = rng.normal(size=(d, rank)).astype(np.float32)
    B = rng.normal(size=(rank, K)).astype(np.float32) * 1.5
    rates = np.exp(rng.uniform(np.log(0.01), np.log(0.1), size=K))
    X = np.empty((n, d), dtype=np.float32)
    Y = np.empty((n, K), dtype=np.uint8)
    for start in range(0, n, 100_000):  # in blocks: no (n, K) float temporaries
        m = min(100_000, n - start)
        Xb = rng.normal(size=(m, d)).astype(np.float32) * scales
        Xb /= np.linalg.norm(Xb, axis=1, keepdims=True)
        H = (Xb * np.sqrt(d)) @ A
        H /= np.sqrt(rank)
        Z = H @ B + rng.normal(size=(m, K)).astype(np.float32)
        X[start:start + m] = Xb
        if start == 0:  # one bias per label from the first block's quantiles
            bias = -np.quantile(Z, 1 - rates, axis=0).diagonal().astype(np.float32)
        Y[start:start + m] = (Z + bias) > 0
    return X, Y


def measure(fit, *args) -> dict:
    tracemalloc.start()
    t0 = time.perf_counter()
    fit(*args)
    secs = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"fit_s": round(secs, 1), "tracemalloc_peak_mb": round(peak / 2 ** 20, 1),
            "process_peak_rss_mb_so_far": round(peak_rss_mb(), 1)}


def bench_synthetic(n: int, with_peer: bool, head_params: dict) -> dict:
    X, Y = synthetic(n)
    out = {"n": n, "d": X.shape[1], "n_labels": Y.shape[1], "positive_rate_mean": round(float(Y.mean()), 4),
           "input_mb": round((X.nbytes + Y.nbytes) / 2 ** 20, 1)}
    print(f"synthetic {n} x {X.shape[1]} x {Y.shape[1]}, input {out['input_mb']} MB", flush=True)
    out["tagwise_params"] = head_params  # {} = the defaults; a capped run times a few passes only
    out["tagwise"] = measure(MultiLabelLinear(**head_params).fit, X, Y)
    print("tagwise", out["tagwise"], flush=True)
    if with_peer:
        out["peer_0.5"] = measure(peer().fit, X, Y)
        print("peer_0.5", out["peer_0.5"], flush=True)
        out["ratio_fit_time_vs_peer_0.5"] = round(out["tagwise"]["fit_s"] / out["peer_0.5"]["fit_s"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="*", default=["goemotions", "reuters"])
    ap.add_argument("--synthetic", type=int, default=0, help="rows of the synthetic scale run (0: none)")
    ap.add_argument("--synthetic-peer", action="store_true")
    ap.add_argument("--synthetic-head", default="{}",
                    help="MultiLabelLinear params for the synthetic run as JSON, e.g. "
                         "'{\"thresholds\": 0.5, \"max_iter\": 3}' to time a few passes at 1M rows")
    ap.add_argument("--out", default="train_speed")
    args = ap.parse_args()
    results = {"datasets": {}}  # this run only: nothing is read back from an earlier file
    with threadpool_limits(1):
        for name in args.datasets:
            r = results["datasets"][name] = bench_dataset(name)
            print(f"\n== {name}: {r['n_train']} train / {r['n_test']} test, {r['n_labels']} labels")
            for key in ("tagwise", "peer_0.5", "peer_cv_thresholds"):
                m = r[key]
                print(f"{key:22} macro-F1 {m['macro_f1']:.4f}  micro-F1 {m['micro_f1']:.4f}  fit {m['fit_s']:.1f}s")
            print(f"fit time tagwise / peer_0.5: {r['ratio_fit_time_vs_peer_0.5']:.2f}, "
                  f"/ peer_cv_thresholds: {r['ratio_fit_time_vs_peer_cv_thresholds']:.2f}", flush=True)
            save_results(args.out, results)
        if args.synthetic:
            results[f"synthetic_{args.synthetic}"] = bench_synthetic(args.synthetic, args.synthetic_peer,
                                                                         json.loads(args.synthetic_head))
    print(f"\nresults -> {save_results(args.out, results)}")


if __name__ == "__main__":
    main()
