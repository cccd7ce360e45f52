"""FewShotClassifier's solver: speed, stability and macro-F1 of three versions, in the same run.

Issue 29 ("Training is not stable"). The versions, each the ``learn/fewshot.py`` of a commit, loaded
from git so they run side by side on the same data and machine:
- ``capped`` (935cdc4): float32 L-BFGS-B stopped after 100 (final) / 40 (fold) iterations;
- ``tol1e-6`` (f3700fa): float64 L-BFGS-B on the raw problem, solved until the largest gradient
  entry is 1e-6 of its start (stable but slow; ``suggest`` then passed the old caps as a budget);
- ``preconditioned`` (the working tree): per-label L-BFGS on the preconditioned problem, float64,
  solved to ``tol``; folds from the zero-shot start, the final fit from the folds' mean.
All three get the same hyper-parameters (C=1, prior_strength=4, threshold_shrink=20, cv=5).

Measured:
- fit time (median of ``--repeats``; one BLAS thread, as ``fit`` uses at this size) on the demo
  sample (examples/goemotions-sample: 3,000 labeled rows, 28 labels, its 500 unlabeled rows as the
  pool; "pool" cuts as ``suggest`` fits it and "cv" cuts as ``train``) and on 300 SemEval-2018 rows;
- stability: the share of 300 SemEval-2018 test tweets whose predicted label set changes when the
  300 labeled and 700 pool embeddings get Gaussian noise of sd 1e-6 (``--perturbations`` draws, as
  ``tests/test_training_stability.py``), and the largest probability change;
- macro-F1 on k-per-label draws from the train split of XED-en and ISEAR (draws from half A, scored
  on half B, as ``choose_fewshot.py``; no test split is read): mean ± sd and per-draw wins/losses of
  ``preconditioned`` against the two others. Nothing is chosen here.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/bench_fewshot_solver.py [--repeats 3] [--k 8 32] \
        [--seeds 100 101 102] [--datasets xed_en isear] [--versions capped preconditioned --out NAME]
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fewshot_data import CACHE, macro_f1  # noqa: E402
from _stats import compare, mean_sd  # noqa: E402
from choose_fewshot import draws  # noqa: E402
from common import BENCH, save_results  # noqa: E402

import tagwise.learn.fewshot as current  # noqa: E402
from tagwise.encoders import embed_texts, get_encoder  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402
from tagwise.sources import ingest, load_spec, parse_spec  # noqa: E402
from tagwise.types import LabelSpace  # noqa: E402

ROOT = BENCH.parent
VERSIONS = {"capped": "935cdc4", "tol1e-6": "f3700fa", "preconditioned": None}
PARAMS = {"C": 1.0, "prior_strength": 4.0, "threshold_shrink": 20.0, "cv": 5}
SEMEVAL = ROOT.parent / "shared" / "data" / "semeval2018_ec_en"
SEMEVAL_NAMES = ["anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism", "sadness",
                 "surprise", "trust"]


def module_at(commit: str | None):
    """``tagwise.learn.fewshot`` as it was at ``commit`` (None: the working tree's)."""
    if commit is None:
        return current
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:src/tagwise/learn/fewshot.py"],
                            check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"tagwise.learn._fewshot_{commit}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "tagwise.learn"  # its relative imports resolve to today's package
    exec(compile(source, f"{commit}:src/tagwise/learn/fewshot.py", "exec"), module.__dict__)
    return module


def fit(module, X, Y, zs, corpus, pool, method="cv", seed=0):
    return module.FewShotClassifier(**PARAMS, threshold_method=method, random_state=seed).fit(
        X, Y, zeroshot=zs, X_corpus=corpus, X_unlabeled=pool)


def demo_data(enc):
    folder = ROOT / "examples" / "goemotions-sample"
    rows = ingest(load_spec(folder / "spec.yaml"))
    names = [line.strip() for line in (folder / "labels.txt").read_text().splitlines() if line.strip()]
    X, _ = embed_texts(rows.texts, enc, CACHE, progress=False)
    Y = LabelSpace(tuple(names)).to_matrix(rows.labels)
    train = np.asarray(rows.splits) == "train"
    U, _ = embed_texts(ingest(load_spec(folder / "unlabeled.yaml")).texts, enc, CACHE, progress=False)
    return names, X[train], Y[train], U


def semeval_data(enc):
    """300 labeled + 700 pool train tweets and 300 test tweets (the stability test's slice)."""
    spec = {"name": "semeval", "format": "tsv", "quoting": "none", "limit": 1000,
            "splits": {"train": str(SEMEVAL / "E-c-En-train.txt"), "test": str(SEMEVAL / "E-c-En-test-gold.txt")},
            "columns": {"text": "Tweet", "id": "ID"},
            "labels": {"format": "onehot", "onehot_columns": SEMEVAL_NAMES}}
    rows = ingest(parse_spec(spec, SEMEVAL / "spec.yaml"))
    X, _ = embed_texts(rows.texts, enc, CACHE, progress=False)
    Y = LabelSpace(tuple(SEMEVAL_NAMES)).to_matrix(rows.labels)
    split = np.asarray(rows.splits)
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")[:300]
    return X[train[:300]], Y[train[:300]], X[train[300:]], X[test]


def timings(modules, slices, repeats):
    """Fit times, the versions interleaved (repeat r of each before repeat r + 1 of any), so a change
    of the machine's load during the run hits them alike."""
    out = {}
    for slice_name, (X, Y, zs, corpus, pool, method) in slices.items():
        times = {version: [] for version in modules}
        for _ in range(repeats):
            for version, module in modules.items():
                t0 = time.perf_counter()
                fit(module, X, Y, zs, corpus, pool, method)
                times[version].append(time.perf_counter() - t0)
        out[slice_name] = {version: {"median_s": round(float(np.median(t)), 3), "runs_s": [round(x, 3) for x in t]}
                           for version, t in times.items()}
        print(f"time {slice_name}: " + ", ".join(f"{v} {np.median(t):.2f}s" for v, t in times.items()), flush=True)
    return out


def stability(modules, X, Y, U, Xt, zs, n_perturbations):
    out = {}
    for version, module in modules.items():
        rng = np.random.default_rng(0)
        base = fit(module, X, Y, zs, np.concatenate([X, U]), U)
        pred, proba = base.predict(Xt), base.predict_proba(Xt)
        changed, dp = [], []
        for _ in range(n_perturbations):
            Xp = X + rng.normal(scale=1e-6, size=X.shape).astype(np.float32)
            Up = U + rng.normal(scale=1e-6, size=U.shape).astype(np.float32)
            again = fit(module, Xp, Y, zs, np.concatenate([Xp, Up]), Up)
            changed.append(float((again.predict(Xt) != pred).any(1).mean()))
            dp.append(float(np.abs(again.predict_proba(Xt) - proba).max()))
        out[version] = {"label_sets_changed": changed, "max_label_sets_changed": max(changed),
                        "max_proba_change": max(dp)}
        print(f"stability {version}: label sets changed {changed}, max |dp| {max(dp):.2e}", flush=True)
    return out


def quality(modules, args):
    f1 = {version: [] for version in modules}
    keys = []
    for key, names, A, B, idx, rest, zs in draws(args.datasets, args.k, args.seeds, args.eval_rows, args.max_rows):
        keys.append(key)
        zs.choose_expansion(A["X"][idx], A["Y"][idx])
        for version, module in modules.items():
            model = fit(module, A["X"][idx], A["Y"][idx], zs, A["X"], A["X"][rest])
            f1[version].append(macro_f1(B["Y"], model.predict(B["X"])))
        print(f"{key}: " + ", ".join(f"{v} {f1[v][-1]:.4f}" for v in modules), flush=True)
    out = {"draws": keys, "macro_f1": {v: mean_sd(s) for v, s in f1.items()},
           "per_draw": {v: [round(x, 4) for x in s] for v, s in f1.items()}}
    for other in modules:
        if other != "preconditioned" and "preconditioned" in modules:
            out[f"preconditioned_vs_{other}"] = compare(f1["preconditioned"], f1[other])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--perturbations", type=int, default=2)
    ap.add_argument("--datasets", nargs="+", default=["xed_en", "isear"])
    ap.add_argument("--k", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102])
    ap.add_argument("--eval-rows", type=int, default=2000)
    ap.add_argument("--max-rows", type=int, default=6000)
    ap.add_argument("--versions", nargs="+", choices=list(VERSIONS), default=list(VERSIONS),
                    help="versions to run (the tol1e-6 one takes ~100 s per demo fit; leave it out for more repeats)")
    ap.add_argument("--out", default="fewshot_solver")
    args = ap.parse_args()
    modules = {version: module_at(VERSIONS[version]) for version in args.versions}
    enc = get_encoder("use")
    embed = lambda t: embed_texts(list(t), enc, CACHE, progress=False)[0]  # noqa: E731
    names, Xd, Yd, Ud = demo_data(enc)
    zs_demo = fit_zero_shot(names, np.concatenate([Xd, Ud]), embed)
    zs_demo.choose_expansion(Xd, Yd)
    Xs, Ys, Us, Xst = semeval_data(enc)
    zs_sem = fit_zero_shot(SEMEVAL_NAMES, np.concatenate([Xs, Us]), embed)
    zs_sem.choose_expansion(Xs, Ys)
    with threadpool_limits(1, user_api="blas"):
        times = timings(modules, {
            "demo_3000_pool_cuts": (Xd, Yd, zs_demo, np.concatenate([Xd, Ud]), Ud, "pool"),
            "demo_3000_cv_cuts": (Xd, Yd, zs_demo, np.concatenate([Xd, Ud]), Ud, "cv"),
            "semeval_300_cv_cuts": (Xs, Ys, zs_sem, np.concatenate([Xs, Us]), Us, "cv")}, args.repeats)
        stable = stability(modules, Xs, Ys, Us, Xst, zs_sem, args.perturbations)
        scores = quality(modules, args)
    save_results(args.out, {"versions": {v: VERSIONS[v] or "working tree" for v in args.versions}, "params": PARAMS,
                            "fit_time": times, "stability_1e-6": stable, "macro_f1": scores})


if __name__ == "__main__":
    main()
