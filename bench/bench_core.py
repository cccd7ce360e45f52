"""Issue 2 benchmark: tagwise's head vs the pipeline a user would write with scikit-learn.

Same USE embeddings for both, same training rows (the whole train split), same test split.
Peers (issue 16: treated as well as tagwise):
- ``peer_0.5``: OneVsRestClassifier(LogisticRegression()) at threshold 0.5 (scikit-learn's default rule);
- ``peer_cv_thresholds``: the same model with per-label thresholds chosen exactly as tagwise chooses
  its own: out-of-fold probabilities from 5-fold cross-validation on train (tagwise's fold ids),
  then ``tagwise.learn.thresholds.best_f1_thresholds`` with tagwise's shrinkage; the model used
  on test is refitted on the whole train split;
- ``peer_balanced_cv_thresholds``: LogisticRegression(class_weight="balanced"), same thresholds.
No dev split and no test figure is used by either side. tagwise tunes everything by internal
cross-validation on train. Before issue 16 the tuned peer used raw F1-optimal cuts on a held-out
15% of train (Reuters) or the dev split (GoEmotions) and fitted on the rest.

    python bench/bench_core.py [--datasets goemotions reuters] [--skip-embed]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, load_dataset, save_results, timed  # noqa: E402

from tagwise.evaluate.metrics import multilabel_report  # noqa: E402
from tagwise.folds import random_folds  # noqa: E402
from tagwise.learn.linear import MultiLabelLinear  # noqa: E402
from tagwise.learn.thresholds import best_f1_thresholds  # noqa: E402


PEERS = ("peer_0.5", "peer_cv_thresholds", "peer_balanced_cv_thresholds")


def scores(Y, Z, P, names):
    r = multilabel_report(Y, Z, P, names)
    return {"macro_f1": round(r["macro_f1"], 4), "micro_f1": round(r["micro_f1"], 4),
            "macro_ap": round(r["macro_ap"], 4)}


def cv_threshold_peer(make, X, Y, n_folds: int = 5, seed: int = 0):
    """Fit ``make()`` on all of (X, Y) and tune per-label thresholds as MultiLabelLinear does.

    Out-of-fold probabilities come from ``n_folds``-fold CV over tagwise's fold ids (seed 0, as
    MultiLabelLinear's random_state=0), thresholds from ``best_f1_thresholds`` with MultiLabelLinear's shrinkage.
    Returns (fitted model, (K,) thresholds, seconds for the CV + the final fit).
    """
    t0 = time.perf_counter()
    folds = random_folds(len(X), n_folds, seed)
    oof = np.zeros(Y.shape, dtype=np.float64)
    for f in range(n_folds):
        tr, te = folds != f, folds == f
        oof[te] = make().fit(X[tr], Y[tr]).predict_proba(X[te])
    th = best_f1_thresholds(Y, oof, shrink=MultiLabelLinear().threshold_shrink)
    th[Y.sum(0) == 0] = 1.0 + 1e-9
    model = make().fit(X, Y)
    return model, th, time.perf_counter() - t0


def bench_dataset(name: str) -> dict:
    d = load_dataset(name)
    X, Y, splits, names = d["X"], d["Y"], d["splits"], d["labels"].names
    train, test = splits == "train", splits == "test"
    keep = Y[train].sum(0) > 0  # labels never seen in train cannot be learned by either side
    Y = Y[:, keep]
    names = [n for n, k in zip(names, keep) if k]
    out = {"dataset": name, "n_train": int(train.sum()), "n_test": int(test.sum()), "n_labels": len(names)}
    Xtr, Ytr, Xte, Yte = X[train], Y[train], X[test], Y[test]

    def lr(balanced=False):
        return OneVsRestClassifier(LogisticRegression(max_iter=1000, class_weight="balanced" if balanced else None))

    peer_full, t_full = timed(lr().fit, Xtr, Ytr)
    P = peer_full.predict_proba(Xte)
    out["peer_0.5"] = {**scores(Yte, P >= 0.5, P, names), "fit_s": round(t_full, 2)}
    for key, balanced in (("peer_cv_thresholds", False), ("peer_balanced_cv_thresholds", True)):
        model, th, secs = cv_threshold_peer(lambda: lr(balanced), Xtr, Ytr)
        P = model.predict_proba(Xte)
        out[key] = {**scores(Yte, P >= th[None, :], P, names), "fit_s": round(secs, 2)}

    model, t_tw = timed(MultiLabelLinear().fit, Xtr, Ytr)
    P = model.predict_proba(Xte)
    out["tagwise"] = {**scores(Yte, model.predict(Xte), P, names), "fit_s": round(t_tw, 2)}
    best_peer = max(out[k]["macro_f1"] for k in PEERS)
    out["ratio_macro_f1_vs_best_peer"] = round(out["tagwise"]["macro_f1"] / best_peer, 4)
    out["ratio_fit_time_vs_peer_0.5"] = round(out["tagwise"]["fit_s"] / out["peer_0.5"]["fit_s"], 3)
    # like for like: both sides fit 5 CV folds + 1 final model
    out["ratio_fit_time_vs_peer_cv_thresholds"] = round(out["tagwise"]["fit_s"] / out["peer_cv_thresholds"]["fit_s"], 3)
    return out


def bench_embed() -> dict:
    """`tagwise embed` on GoEmotions train (43k texts): cold cache, then warm. Wall time + peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "p"
        spec = Path(tmp) / "goemotions-train.yaml"
        data = (BENCH.parent.parent / "shared" / "data" / "goemotions").resolve()
        spec.write_text(f"name: goemotions-train\npath: {data}/original_train.tsv\nformat: tsv\nheader: false\n"
                        f"quoting: none\ncolumns: {{text: 0, labels: 1, id: 2}}\n"
                        f"labels: {{format: delimited, names_file: {data}/original_labels.txt}}\nsplit: train\n")
        env = {k: v for k, v in os.environ.items() if k != "TAGWISE_CACHE_DIR"}  # a cold, private cache
        cli = [sys.executable, "-m", "tagwise"]
        subprocess.run(cli + ["init", str(project)], check=True, env=env)
        subprocess.run(cli + ["add-source", str(project), str(spec)], check=True, env=env)
        out = {}
        for run in ("first", "cached"):
            t0 = time.perf_counter()
            proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cli, "embed", str(project)], env=env,
                                  capture_output=True, text=True, check=True)
            out[run] = {"seconds": round(time.perf_counter() - t0, 2),
                        "peak_rss_mb": round(int(proc.stderr.strip().splitlines()[-1]) / 1024, 1),
                        "message": proc.stdout.strip()}
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="*", default=["goemotions", "reuters"],
                    help="none: only the embed timing")
    ap.add_argument("--skip-embed", action="store_true")
    ap.add_argument("--out", default="core", help="results name under bench/results/")
    args = ap.parse_args()
    # the file holds this run only (issue 29: a --datasets subset writes a file with only those)
    results = {"datasets": {}}
    for name in args.datasets:
        r = bench_dataset(name)
        results["datasets"][name] = r
        print(f"\n== {name}: {r['n_train']} train / {r['n_test']} test, {r['n_labels']} labels")
        print(f"{'':30}{'macro-F1':>10}{'micro-F1':>10}{'macro-AP':>10}{'fit s':>9}")
        for key in PEERS + ("tagwise",):
            m = r[key]
            print(f"{key:30}{m['macro_f1']:>10.4f}{m['micro_f1']:>10.4f}{m['macro_ap']:>10.4f}{m['fit_s']:>9.1f}")
        print(f"tagwise / best peer macro-F1: {r['ratio_macro_f1_vs_best_peer']:.3f}   "
              f"fit time tagwise / peer at 0.5: {r['ratio_fit_time_vs_peer_0.5']:.2f}, "
              f"/ peer with CV thresholds: {r['ratio_fit_time_vs_peer_cv_thresholds']:.2f}", flush=True)
    if not args.skip_embed:
        results["embed_goemotions_train"] = e = bench_embed()
        print(f"\n== tagwise embed, GoEmotions train: first {e['first']['seconds']}s "
              f"(peak {e['first']['peak_rss_mb']} MB), cached {e['cached']['seconds']}s "
              f"(peak {e['cached']['peak_rss_mb']} MB)")
    print(f"\nresults -> {save_results(args.out, results)}")


if __name__ == "__main__":
    main()
