"""Active-learning simulation: tagwise `suggest` strategy vs random sampling, same head, same embeddings.

Run by hand:
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bench_active.py
    (--datasets semeval2018 goemotions --seeds 0 1 2 3 4 5 --batch 50 --max-labels 1000)
    Another encoder (stored as "semeval2018 [st:all-minilm-l6-v2]"; needs make torch):
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_active.py --datasets semeval2018 --encoder st:all-minilm-l6-v2 \
        --seeds 0 1 2 3 4 5 6 7 8 9 10 11
    Reuters (long documents: the co-training model is skipped, ~10x slower there):
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_active.py --datasets reuters --cotrain-every 0
Writes bench/results/fewshot_active.json and bench/results/fewshot_active.png.

Protocol: the pool is the official train split with its labels hidden; the oracle reveals a row's gold
labels when it is selected. Round 0 starts from 0 labels: tagwise takes a coverage cold start
(k-means representatives), random takes a random batch. After each batch of 50 both fit the same
head (tagwise ``FewShotClassifier`` with the zero-shot label-name prior) and are scored by macro-F1
on the official test split. Thresholds: by default ``threshold_method="cv"`` for both, as
``tagwise suggest`` does since issue 29 (the cross-validated cuts of ``tagwise train --few-shot``;
chosen with the selection rule by ``bench/choose_suggest.py``); ``--thresholds pool`` gives the cuts
at the best expected F1 on the still-unlabeled pool (out-of-fold scores of the labeled rows,
Platt-calibrated with weights that match their score distribution to the pool's).
Headline: labels tagwise needs to reach random's macro-F1 at 1,000 labels (mean curve over seeds;
linear interpolation between batches). Every ``--cotrain-every`` labels both labeled sets also train
the ``--semi-supervised`` model (co-training with the rest of the pool), scored the same way.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _fewshot_data import CACHE, load_dataset, macro_f1  # noqa: E402
from common import RESULTS, save_figure, save_results  # noqa: E402
from tagwise.encoders import embed_texts  # noqa: E402
from tagwise.learn.cotrain import CoTrainingClassifier  # noqa: E402
from tagwise.learn.fewshot import FewShotClassifier  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402
from tagwise.select.active import select_batch  # noqa: E402


def fit_head(X, Y, labeled, zs, seed: int, threshold_method: str = "pool") -> FewShotClassifier:
    """The head both strategies train after each batch: X (n, d), Y (n, K), labeled (n,) bool."""
    return FewShotClassifier(threshold_method=threshold_method, random_state=seed).fit(
        X[labeled], Y[labeled], zeroshot=zs, X_corpus=X, X_unlabeled=X[~labeled])


def simulate(strategy: str, X, Y, X_test, Y_test, zs, seed: int, batch: int, max_labels: int,
             threshold_method: str = "pool", texts=None, test_texts=None, cotrain_every: int = 0,
             boundary=None):
    """One run. Returns (labels (r,), macro_f1 (r,), select_seconds, cotrain) where ``cotrain`` lists
    (labels, macro_f1) of a ``CoTrainingClassifier`` fitted every ``cotrain_every`` labels on the
    labeled rows + the rest of the pool (the model a user trains with ``--semi-supervised`` after
    labeling the suggested rows; the selection itself always runs on the few-shot head).
    ``boundary``: optional ``f(ctx) -> (closeness (n_pool, K) or None, boundary_share)`` replacing
    suggest's boundary criterion (``bench_active_variants.py``); ctx holds P, model, pool, labeled,
    X, Y, zs, seed."""
    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(X), dtype=bool)
    n_labels, f1s, select_secs, cotrain = [], [], 0.0, []
    model = None
    while labeled.sum() < max_labels:
        pool = np.flatnonzero(~labeled)
        t0 = time.perf_counter()
        if strategy == "random":
            pick = rng.choice(pool, batch, replace=False)
        elif model is None:
            pick = pool[select_batch(X[pool], batch, seed=seed).index]
        else:
            P = model.predict_proba(X[pool])
            n_pos = Y[labeled].sum(0)
            closeness, share = (None, 0.5) if boundary is None else boundary(
                dict(P=P, model=model, pool=pool, labeled=labeled, X=X, Y=Y, zs=zs, seed=seed))
            pick = pool[select_batch(X[pool], batch, P, model.threshold_, n_pos, boundary_share=share,
                                     seed=seed, closeness=closeness).index]
        select_secs += time.perf_counter() - t0
        labeled[pick] = True
        model = fit_head(X, Y, labeled, zs, seed, threshold_method)
        n_labels.append(int(labeled.sum()))
        f1s.append(macro_f1(Y_test, model.predict(X_test)))
        if cotrain_every and n_labels[-1] % cotrain_every == 0:
            lab, rest = np.flatnonzero(labeled), np.flatnonzero(~labeled)
            co = CoTrainingClassifier(head_params={"threshold_method": threshold_method}, random_state=seed).fit(
                X[lab], Y[lab], texts=[texts[i] for i in lab], X_unlabeled=X[rest],
                texts_unlabeled=[texts[i] for i in rest], zeroshot=zs)
            cotrain.append((n_labels[-1], macro_f1(Y_test, co.predict(X_test, texts=test_texts))))
    return np.asarray(n_labels), np.asarray(f1s), select_secs, cotrain


def labels_to_reach(n_labels, curve, target) -> float | None:
    """First (interpolated) label count where the curve reaches ``target``; None if never."""
    for i, v in enumerate(curve):
        if v >= target:
            if i == 0:
                return float(n_labels[0])
            x0, x1, y0, y1 = n_labels[i - 1], n_labels[i], curve[i - 1], curve[i]
            return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["semeval2018", "goemotions", "reuters"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--max-labels", type=int, default=1000)
    ap.add_argument("--thresholds", default="cv", choices=["pool", "cv"],
                    help="FewShotClassifier threshold_method for both strategies (suggest uses cv)")
    ap.add_argument("--cotrain-every", type=int, default=100,
                    help="also score a co-training model (--semi-supervised) every N labels; 0 = off")
    ap.add_argument("--encoder", default="use",
                    help="embeddings for both strategies; results of any other than use are stored "
                         "as '<dataset> [<encoder>]'")
    ap.add_argument("--out", default=str(RESULTS / "fewshot_active.json"))
    args = ap.parse_args()
    out_path = Path(args.out)
    results = {}
    for name in args.datasets:
        names, data, enc = load_dataset(name, encoder=args.encoder, progress=True)
        key = name if args.encoder == "use" else f"{name} [{args.encoder}]"
        tr, te = data["train"], data["test"]
        zs = fit_zero_shot(names, tr.X, lambda t: embed_texts(list(t), enc, CACHE, progress=False)[0])
        runs = {}
        co_runs = {}
        for strategy in ("tagwise", "random"):
            curves, secs, co_curves = [], [], []
            for seed in args.seeds:
                t0 = time.perf_counter()
                n_labels, f1, sel, co = simulate(strategy, tr.X, tr.Y, te.X, te.Y, zs, seed, args.batch,
                                                 args.max_labels, args.thresholds, tr.texts, te.texts,
                                                 args.cotrain_every)
                curves.append(f1)
                secs.append(sel)
                co_curves.append([v for _, v in co])
                print(f"{name} {strategy} seed {seed}: " + " ".join(f"{n}:{v:.3f}" for n, v in
                      zip(n_labels[::4], f1[::4])) + f" ... {n_labels[-1]}:{f1[-1]:.3f} "
                      f"({time.perf_counter() - t0:.0f}s, selection {sel:.1f}s)", flush=True)
                if co:
                    print("  co-training model: " + " ".join(f"{n}:{v:.3f}" for n, v in co), flush=True)
            curves = np.stack(curves)
            runs[strategy] = {"labels": n_labels.tolist(), "macro_f1_mean": curves.mean(0).tolist(),
                              "macro_f1_sd": curves.std(0, ddof=1).tolist() if len(curves) > 1 else [0.0] * len(n_labels),
                              "per_seed": curves.tolist(), "selection_seconds": float(np.mean(secs))}
            if co:
                co_runs[strategy] = {"labels": [n for n, _ in co], "macro_f1_mean": np.mean(co_curves, 0).tolist(),
                                     "per_seed": co_curves}
        target = runs["random"]["macro_f1_mean"][-1]
        need = labels_to_reach(np.asarray(runs["tagwise"]["labels"]), runs["tagwise"]["macro_f1_mean"], target)
        per_seed = [labels_to_reach(np.asarray(runs["tagwise"]["labels"]), c, runs["random"]["per_seed"][i][-1])
                    for i, c in enumerate(runs["tagwise"]["per_seed"])]
        runs["threshold_method"] = args.thresholds
        runs["encoder"] = args.encoder
        runs["seeds"] = args.seeds
        runs["random_final_macro_f1"] = target
        runs["tagwise_labels_to_reach_random_final"] = need
        runs["ratio_to_random_labels"] = None if need is None else need / runs["random"]["labels"][-1]
        runs["per_seed_labels_to_reach"] = per_seed
        if co_runs:
            co_target = co_runs["random"]["macro_f1_mean"][-1]
            co_labels = np.asarray(co_runs["tagwise"]["labels"])
            co_need = labels_to_reach(co_labels, co_runs["tagwise"]["macro_f1_mean"], co_target)
            co_runs.update(random_final_macro_f1=co_target, tagwise_labels_to_reach_random_final=co_need,
                           ratio_to_random_labels=None if co_need is None else co_need / co_labels[-1],
                           per_seed_labels_to_reach=[labels_to_reach(co_labels, c, co_runs["random"]["per_seed"][i][-1])
                                                     for i, c in enumerate(co_runs["tagwise"]["per_seed"])])
            runs["cotrain_final_model"] = co_runs
            print(f"{key} (co-training model): random reaches {co_target:.3f} at {co_labels[-1]} labels; tagwise "
                  f"at {'never' if co_need is None else f'{co_need:.0f}'} labels", flush=True)
        results["protocol"] = __doc__.split("Protocol:", 1)[1].strip()
        results[key] = runs
        final_n = runs["random"]["labels"][-1]
        need_s = "never" if need is None else f"{need:.0f}"
        pct_s = "n/a" if need is None else f"{100 * need / final_n:.0f}%"
        print(f"{key}: random reaches {target:.3f} at {final_n} labels; tagwise reaches it at {need_s} labels "
              f"({pct_s}); per seed {per_seed}", flush=True)
        save_results(out_path, results)
    plot(results, out_path.with_suffix(".png"))


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [k for k in results if isinstance(results[k], dict) and "tagwise" in results[k]]
    if not sets:
        return
    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for strategy, label in (("tagwise", "tagwise suggest"), ("random", "random")):
            r = results[name][strategy]
            m, s = np.asarray(r["macro_f1_mean"]), np.asarray(r["macro_f1_sd"])
            ax.plot(r["labels"], m, label=label)
            ax.fill_between(r["labels"], m - s, m + s, alpha=0.2)
        co = results[name].get("cotrain_final_model")
        if co:
            for strategy, color in (("tagwise", "C0"), ("random", "C1")):
                ax.plot(co[strategy]["labels"], co[strategy]["macro_f1_mean"], ls="--", marker=".", c=color,
                        label=f"{'tagwise suggest' if strategy == 'tagwise' else 'random'}, co-training model")
        ax.axhline(results[name]["random_final_macro_f1"], ls="--", c="gray", lw=0.8)
        ax.set_xlabel("labeled examples")
        ax.set_ylabel("macro-F1 (test)")
        ax.set_title(f"{name}: active learning vs random")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
