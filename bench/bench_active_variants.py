"""Active-learning ablation: other boundary criteria in place of `suggest`'s, same loop as bench_active.

Run by hand (about 10 min on 2 cores for SemEval-2018, 12 seeds; peak 330 MB + 2 workers):
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bench_active_variants.py
    (--dataset semeval2018 --seeds 0 .. 11 --max-labels 700 --jobs 2)
Writes bench/results/active_variants_<dataset>.json.

Why: `suggest` needs 84% of random sampling's labels on SemEval-2018 (target 70%), while it needs
47-60% on Reuters and GoEmotions. This asks whether a better-known selection rule closes that gap.
Every variant keeps the loop of ``bench_active.py`` (cold start, batches of 50, the same few-shot
head and pool thresholds) and ``select_batch``'s mix (a boundary part chosen label by label,
round robin weighted by 1 / (1 + labeled positives), plus k-means diverse rows); only the boundary
criterion (``closeness``, (n, K) in (0, 1]) or the boundary share changes:

- ``suggest``: exp(-|logit p - logit cut|), half of the batch (the shipped rule);
- ``random``: random rows (run to 1,000 labels: the target is its final macro-F1);
- ``boundary30`` / ``boundary70``: the shipped criterion on 30% / 70% of the batch;
- ``bald``: mutual information of a committee of 5 heads, each fitted without one fold of the
  labeled rows (BALD with a cross-validation committee), on logits relative to the cut;
- ``density`` / ``sparse``: closeness times / divided by the row's pool density rank
  (information density, Settles & Craven 2008; and its inverse);
- ``cotest``: co-testing (Muslea et al. 2000): closeness, scaled by 0.3 unless the head and a
  character n-gram ridge fitted on the labeled rows disagree about the row (the two views of
  ``tagwise train --semi-supervised``);
- ``twoview``: closeness of the summed z-scores of both views to their cut at the head's rate;
- ``gumbel``: closeness perturbed by Gumbel noise (stochastic batch, Kirsch et al. 2023).

Headline per variant: mean test macro-F1 at 700 labels (the 70% mark) with its standard error over
seeds, the paired difference to ``suggest`` on the same seeds, and random's macro-F1 at 1,000.
"""
from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from scipy.special import expit, logit  # noqa: E402

from _fewshot_data import CACHE, load_dataset  # noqa: E402
from bench_active import fit_head, simulate  # noqa: E402
from common import peak_rss_mb, save_results  # noqa: E402
from tagwise.encoders import embed_texts  # noqa: E402
from tagwise.learn.cotrain import _ridge, _zstats  # noqa: E402
from tagwise.learn.lexical import CharNgramTfidf  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402
from tagwise.learn.thresholds import cuts_at_rate  # noqa: E402

VARIANTS = ["random", "suggest", "boundary30", "boundary70", "bald", "density", "sparse", "cotest",
            "twoview", "gumbel"]


def _binary_entropy(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def boundary_criterion(variant: str, density: np.ndarray, tfidf, ctx: dict) -> tuple[np.ndarray | None, float]:
    """(closeness (n_pool, K), boundary share) of one variant.

    density: (n,) pool density rank of every train row; tfidf: (n, V) CSR n-grams of the train
    texts; ctx: the loop's state (see ``bench_active.simulate``). ``suggest`` is the closeness to the
    cuts alone (``select_batch(rule="closeness")``, the shipped rule before issue 29; ``sparse`` is
    the one ``bench/choose_suggest.py`` chose)."""
    P, cut = ctx["P"], logit(np.clip(ctx["model"].threshold_, 1e-7, 1 - 1e-7))
    if variant == "suggest" or variant.startswith("boundary"):
        # in float64, exactly as select_batch(rule="closeness") computes it
        Z64 = logit(np.clip(np.asarray(P, dtype=np.float64), 1e-7, 1 - 1e-7))
        near64 = np.exp(-np.abs(Z64 - cut[None, :]))
        return near64, 0.5 if variant == "suggest" else int(variant[8:]) / 100
    Z = logit(np.clip(P, 1e-7, 1 - 1e-7))
    near = np.exp(-np.abs(Z - cut[None, :]))
    if variant == "density":
        return near * density[ctx["pool"], None], 0.5
    if variant == "sparse":
        return near * (density.min() / density[ctx["pool"], None]), 0.5
    if variant == "gumbel":
        rng = np.random.default_rng(ctx["seed"] * 7919 + int(ctx["labeled"].sum()))
        g = np.exp(-np.abs(Z - cut[None, :]) + rng.gumbel(size=Z.shape))
        return g / g.max(), 0.5
    if variant == "bald":
        X, Y, labeled, seed = ctx["X"], ctx["Y"], ctx["labeled"], ctx["seed"]
        lab = np.flatnonzero(labeled)
        folds = np.random.default_rng(seed).permutation(np.arange(len(lab)) % 5)
        S = []
        for f in range(5):
            keep = np.zeros(len(X), bool)
            keep[lab[folds != f]] = True
            head = fit_head(X, Y, keep, ctx["zs"], seed)
            S.append(head.decision_function(X[ctx["pool"]]) - cut[None, :])
        S = np.stack(S)
        info = (_binary_entropy(expit(S).mean(0)) - _binary_entropy(expit(S)).mean(0)) / np.log(2)
        return np.clip(info, 1e-6, 1.0), 0.5
    # the two views of co-training: the head and a character n-gram ridge on the labeled rows
    T, lab = tfidf, np.flatnonzero(ctx["labeled"])
    Yl = ctx["Y"][lab].astype(np.float32)
    coef, b = _ridge(T[lab], np.where(Yl > 0, 2.0, -1.0).astype(np.float32), np.ones_like(Yl, bool), 3.0)
    L = np.asarray(T[ctx["pool"]] @ coef) + b
    rate = (Z >= cut[None, :]).mean(0)
    mH, sH = _zstats(Z)
    mL, sL = _zstats(L)
    zl = (L - mL) / sL
    if variant == "cotest":
        disagree = (Z >= cut[None, :]) != (zl >= cuts_at_rate(zl, rate)[None, :])
        return near * np.where(disagree, 1.0, 0.3), 0.5
    if variant == "twoview":
        E = (Z - mH) / sH + zl
        return np.exp(-np.abs(E - cuts_at_rate(E, rate)[None, :]) * sH), 0.5
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")


def pool_density(X: np.ndarray, k: int = 20) -> np.ndarray:
    """(n,) rank in (0, 1] of each row's mean cosine to its k nearest rows (1 = densest)."""
    import faiss

    Xn = np.ascontiguousarray(X / np.linalg.norm(X, axis=1, keepdims=True), np.float32)
    index = faiss.IndexFlatIP(Xn.shape[1])
    index.add(Xn)
    sims, _ = index.search(Xn, k + 1)
    mean_sim = sims[:, 1:].mean(1)
    return (np.argsort(np.argsort(mean_sim)) + 1) / len(mean_sim)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="semeval2018")
    ap.add_argument("--variants", nargs="+", default=VARIANTS)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(12)))
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--max-labels", type=int, default=700, help="random always runs to 1,000")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    names, data, enc = load_dataset(a.dataset, progress=True)
    tr, te = data["train"], data["test"]
    zs = fit_zero_shot(names, tr.X, lambda t: embed_texts(list(t), enc, CACHE, progress=False)[0])
    density = pool_density(tr.X)
    tfidf = CharNgramTfidf().fit_transform(list(tr.texts)).tocsr()
    out = {"dataset": a.dataset, "seeds": a.seeds, "batch": a.batch, "variants": {}}
    for v in a.variants:
        t0 = time.perf_counter()
        boundary = None if v == "random" else partial(boundary_criterion, v, density, tfidf)
        runs = Parallel(n_jobs=a.jobs, backend="multiprocessing")(delayed(simulate)(  # fork: __main__ is shared
            "random" if v == "random" else "tagwise", tr.X, tr.Y, te.X, te.Y, zs, s, a.batch,
            1000 if v == "random" else a.max_labels, boundary=boundary) for s in a.seeds)
        n_labels = [int(n) for n in runs[0][0]]
        f1 = np.array([r[1] for r in runs])
        out["variants"][v] = {"labels": n_labels, "macro_f1_per_seed": f1.tolist(),
                              "macro_f1_mean": f1.mean(0).tolist(),
                              "select_seconds_per_run": float(np.mean([r[2] for r in runs])),
                              "wall_seconds": time.perf_counter() - t0}
        print(f"{v:11s} done in {time.perf_counter() - t0:.0f}s", flush=True)
    at = a.max_labels // a.batch - 1
    ref = np.array(out["variants"]["suggest"]["macro_f1_per_seed"])[:, at] if "suggest" in out["variants"] else None
    summary = {}
    for v, r in out["variants"].items():
        f = np.array(r["macro_f1_per_seed"])[:, at]
        row = {"macro_f1": float(f.mean()), "se": float(f.std(ddof=1) / np.sqrt(len(f)))}
        if ref is not None:
            d = f - ref
            row["minus_suggest"] = float(d.mean())
            row["minus_suggest_se"] = float(d.std(ddof=1) / np.sqrt(len(d)))
        summary[v] = row
    if "random" in out["variants"]:
        summary["random_at_1000"] = float(np.mean(out["variants"]["random"]["macro_f1_per_seed"], 0)[-1])
    out["at_labels"] = (at + 1) * a.batch
    out["summary"] = summary
    print(f"\n{a.dataset}: test macro-F1 at {(at + 1) * a.batch} labels, {len(a.seeds)} seeds (mean ± se)")
    for v, row in summary.items():
        if v == "random_at_1000":
            print(f"  random at 1,000 labels (the target): {row:.4f}")
        elif "minus_suggest" in row:
            print(f"  {v:11s} {row['macro_f1']:.4f} ± {row['se']:.4f}   vs suggest "
                  f"{row['minus_suggest']:+.4f} ± {row['minus_suggest_se']:.4f}")
    out["peak_rss_mb"] = peak_rss_mb()
    print(f"peak memory of this process (the workers add theirs): {out['peak_rss_mb']:.0f} MB")
    print(f"wrote {save_results(f'active_variants_{a.dataset}', out)}")


if __name__ == "__main__":
    main()
