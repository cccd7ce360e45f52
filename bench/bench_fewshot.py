"""Few labels: learning curves, zero-shot and semi-supervised, tagwise vs peers, on the same USE embeddings.

Run by hand (SetFit runs inside this run on the same draws; --setfit off skips it):
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/bench_fewshot.py
    (--datasets semeval2018 goemotions --shots 8 16 32 64 --seeds 0 1 2 --sections curves zeroshot semi)
    --with-minilm adds the same head on USE + the bundled MiniLM side by side (torch extra).
    Time the curves with the thread count of SetFit's run (its JSON records "threads": "2"):
    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_fewshot.py --sections curves --with-minilm
    Each section's thread count is kept under "threads" in the JSON.
Writes bench/results/fewshot.json and bench/results/fewshot_curves.png.

Protocol
- Draws: ``sample_k_per_label`` (bench/_fewshot_data.py): rows shuffled by seed, labels visited from
  rarest to most frequent, rows carrying the label added until it has >= k positives.
- Metric: macro-F1 over labels on the official test split. No method sees the dev split, except the
  plain zero-shot baseline whose single global cosine cut is chosen on dev (as the issue defines it).
- tagwise "best default" = ``FewShotClassifier`` (linear head shrunk to the zero-shot label-name
  prior; thresholds from 5-fold CV on the drawn examples). Its zero-shot prior is standardised over
  the unlabeled train texts (no labels); its fit time includes fitting that prior.
- Logistic regression peers: scikit-learn OneVsRest(LogisticRegression()) with default and
  class_weight="balanced", at threshold 0.5 and with per-label cuts from the few-shot head's own
  procedure (``fewshot_cv_thresholds``: its 5 seeded folds over the drawn rows, its
  ``best_f1_thresholds`` call with the same shrinkage).
- SetFit (bench_fewshot_setfit.run_setfit, bundled all-MiniLM-L6-v2) on the same draws in the same
  run: its documented default budget unless --setfit capped; its own 0.5 rule and the same CV cuts.
- Semi-supervised: the rest of train is the unlabeled pool (texts + embeddings, no labels). tagwise's
  default is co-training (CoTrainingClassifier: the head + a character n-gram student distilled on
  the pool). Controls: the same head without unlabeled data; head + the n-gram view trained on the
  labeled rows only (what the second view alone brings, without the pool); graph self-training
  (SemiSupervisedClassifier); scikit-learn LabelSpreading(kernel="knn") run per label (it is
  single-label) on the same whole pool, with the same CV cuts (a labeled row's out-of-fold score
  is its spread score with its own label hidden). Seconds include fitting the model (and, for graph
  self-training and LabelSpreading, their kNN graphs).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.multiclass import OneVsRestClassifier  # noqa: E402
from tqdm import tqdm  # noqa: E402

from _fewshot_data import CACHE, fewshot_cv_thresholds, load_dataset, macro_f1, sample_k_per_label  # noqa: E402
from _stats import compare, mean_sd  # noqa: E402
from common import peak_rss_mb, save_figure, save_results  # noqa: E402
from tagwise.encoders import embed_texts  # noqa: E402
from tagwise.learn.cotrain import CoTrainingClassifier  # noqa: E402
from tagwise.learn.fewshot import FewShotClassifier  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402
from tagwise.learn.semisupervised import SemiSupervisedClassifier, knn_graph  # noqa: E402
from tagwise.learn.zeroshot import label_embeddings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
warnings.filterwarnings("ignore", category=ConvergenceWarning)
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=RuntimeWarning)  # LabelSpreading divides 0/0 on isolated nodes


def ms(values) -> dict:
    """mean ± sample sd over seeds (bench/_stats.py)."""
    return mean_sd(values, digits=6)


def lr(balanced: bool):
    return OneVsRestClassifier(LogisticRegression(max_iter=1000, class_weight="balanced" if balanced else None))


def fit_sklearn(model, X, Y):
    # OneVsRest refuses a label with a single class; drawn sets always have >= k positives per label
    return model.fit(X, Y)


def lr_cv_thresholds(balanced: bool, X, Y, seed: int):
    """(fitted OvR LogisticRegression, thresholds tuned as the tagwise few-shot head tunes its own)."""
    th = fewshot_cv_thresholds(lambda tr, te: fit_sklearn(lr(balanced), X[tr], Y[tr]).predict_proba(X[te]), Y, seed)
    return fit_sklearn(lr(balanced), X, Y), th


SECOND_ENCODER = "st:all-minilm-l6-v2"  # the tagwise_use_minilm variant: USE + bundled MiniLM side by side


def curves(name, names, data, embed, shots, seeds, with_minilm=False, setfit=None, setfit_shots=None,
           setfit_seeds=None):
    tr, te = data["train"], data["test"]
    out = {}
    if with_minilm:  # torch extra: the same head on use+st:all-minilm-l6-v2 (encoders/registry.py ConcatEncoder)
        from tagwise.encoders import get_encoder
        from tagwise.encoders.base import join_parts

        both = get_encoder("use+" + SECOND_ENCODER)
        minilm = both.parts[1]
        _, data_m, _ = load_dataset(name, encoder=SECOND_ENCODER)
        X_both, X_both_test = join_parts([tr.X, data_m["train"].X]), join_parts([te.X, data_m["test"].X])
        embed_both = lambda t: embed_texts(list(t), both, CACHE, progress=False)[0]  # noqa: E731
    methods = ("tagwise", "lr_default", "lr_balanced", "lr_default_cv_thresholds", "lr_balanced_cv_thresholds") \
        + (("tagwise_use_minilm",) if with_minilm else ()) + (("setfit_default_cv_thresholds",) if setfit else ())
    for k in shots:
        sf = setfit if setfit and (setfit_shots is None or k in setfit_shots) else None
        rows = {m: {"f1": [], "sec": []} for m in methods if sf or not m.startswith("setfit")}
        n_train, body_steps, sf_seeds = [], [], []
        for seed in tqdm(seeds, desc=f"{name} k={k}", leave=False):
            idx = sample_k_per_label(tr.Y, k, seed)
            X, Y = tr.X[idx], tr.Y[idx]
            n_train.append(len(idx))
            t0 = time.perf_counter()
            zs = fit_zero_shot(names, tr.X, embed)
            model = FewShotClassifier(random_state=seed).fit(X, Y, zeroshot=zs, X_corpus=tr.X)
            rows["tagwise"]["sec"].append(time.perf_counter() - t0)
            rows["tagwise"]["f1"].append(macro_f1(te.Y, model.predict(te.X)))
            if with_minilm:
                # timed: MiniLM encoding of the drawn texts (cached features are used for the fit,
                # USE's share is not counted, as for "tagwise") + prior + head
                t0 = time.perf_counter()
                minilm.encode([tr.texts[i] for i in idx])
                zs = fit_zero_shot(names, X_both, embed_both)
                model = FewShotClassifier(random_state=seed).fit(X_both[idx], Y, zeroshot=zs, X_corpus=X_both)
                rows["tagwise_use_minilm"]["sec"].append(time.perf_counter() - t0)
                rows["tagwise_use_minilm"]["f1"].append(macro_f1(te.Y, model.predict(X_both_test)))
            for m, bal in (("lr_default", False), ("lr_balanced", True)):
                t0 = time.perf_counter()
                clf = fit_sklearn(lr(bal), X, Y)
                rows[m]["sec"].append(time.perf_counter() - t0)
                rows[m]["f1"].append(macro_f1(te.Y, clf.predict(te.X)))
            for m, bal in (("lr_default_cv_thresholds", False), ("lr_balanced_cv_thresholds", True)):
                t0 = time.perf_counter()
                clf, th = lr_cv_thresholds(bal, X, Y, seed)
                rows[m]["sec"].append(time.perf_counter() - t0)
                rows[m]["f1"].append(macro_f1(te.Y, clf.predict_proba(te.X) >= th[None, :]))
            # SetFit in this same run, same draw, same per-label threshold procedure
            if sf and (setfit_seeds is None or seed in setfit_seeds):
                from bench_fewshot_setfit import run_setfit

                r = run_setfit([tr.texts[i] for i in idx], Y, te.texts, te.Y, seed, **sf)
                rows["setfit_default_cv_thresholds"]["sec"].append(r["setfit_cv_thresholds"]["train_seconds"])
                rows["setfit_default_cv_thresholds"]["f1"].append(r["setfit_cv_thresholds"]["macro_f1"])
                for variant in ("setfit_default", "setfit_balanced"):
                    rows.setdefault(variant + "_same_run", {"f1": [], "sec": []})
                    rows[variant + "_same_run"]["sec"].append(r[variant]["train_seconds"])
                    rows[variant + "_same_run"]["f1"].append(r[variant]["macro_f1"])
                body_steps.append(r["body_steps"])
                sf_seeds.append(seed)
        out[str(k)] = {m: {"macro_f1": ms(v["f1"]), "train_seconds": ms(v["sec"]), "per_seed": v["f1"]}
                       for m, v in rows.items()}
        out[str(k)]["n_train"] = ms(n_train)
        # seed by seed on the same draws: tagwise against each peer (wins / losses, mean ± sd difference)
        out[str(k)]["tagwise_vs"] = {m: compare(rows["tagwise"]["f1"], v["f1"]) for m, v in rows.items()
                                     if m != "tagwise" and len(v["f1"]) == len(rows["tagwise"]["f1"])}
        if sf:
            out[str(k)]["setfit_seeds"] = sf_seeds
            out[str(k)]["tagwise_on_setfit_seeds"] = ms([rows["tagwise"]["f1"][seeds.index(s)] for s in sf_seeds])
            out[str(k)]["setfit_body_steps"] = body_steps
            out[str(k)]["setfit_budget"] = "SetFit defaults" if sf["max_steps"] is None else sf
        print(f"{name} k={k:>2} n~{np.mean(n_train):.0f}: " + "  ".join(
            f"{m} {np.mean(v['f1']):.3f}±{np.std(v['f1'], ddof=1) if len(v['f1']) > 1 else 0:.3f} ({np.mean(v['sec']):.2f}s)"
            for m, v in rows.items()), flush=True)
    return out


def zeroshot_section(name, names, data, embed):
    tr, dev, te = data["train"], data["dev"], data["test"]
    t0 = time.perf_counter()
    zs = fit_zero_shot(names, tr.X, embed)
    secs = time.perf_counter() - t0
    res = {"tagwise_zero_shot": macro_f1(te.Y, zs.predict(te.X)), "tagwise_seconds": secs,
           "predict_all": macro_f1(te.Y, np.ones_like(te.Y))}
    # plain baseline: cosine to the bare label-name embedding, one global cut chosen on dev
    L = label_embeddings(names, None, embed=embed, templates=("{label}",))
    S_dev, S_te = dev.X @ L.T, te.X @ L.T
    cuts = np.quantile(S_dev, np.linspace(0.0, 0.995, 200))
    f1s = [macro_f1(dev.Y, S_dev >= c) for c in cuts]
    best = float(cuts[int(np.argmax(f1s))])
    res["plain_cosine_dev_threshold"] = macro_f1(te.Y, S_te >= best)
    res["plain_cosine_threshold"] = best
    # the same zero-shot model with its cuts recalibrated from 8 labeled examples per label
    idx = sample_k_per_label(tr.Y, 8, 0)
    res["tagwise_zero_shot_calibrated_8"] = macro_f1(te.Y, zs.calibrate(tr.X[idx], tr.Y[idx]).predict(te.X))
    print(f"{name} zero-shot: tagwise {res['tagwise_zero_shot']:.3f} ({secs:.1f}s) | plain cosine+dev cut "
          f"{res['plain_cosine_dev_threshold']:.3f} | predict-all {res['predict_all']:.3f} | tagwise calibrated "
          f"on 8/label {res['tagwise_zero_shot_calibrated_8']:.3f}", flush=True)
    return res


def knn_connectivity(X_train, X_test, n_neighbors=7):
    """What LabelSpreading(kernel="knn") computes from X: the train kNN connectivity graph (sparse,
    self included, as ``kneighbors_graph(_fit_X)``) and each test row's train neighbours."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=n_neighbors).fit(X_train)
    return nn.kneighbors_graph(X_train, n_neighbors, mode="connectivity"), nn.kneighbors(X_test, return_distance=False)


def label_spreading_probs(X_all, y_all, X_test, graph, test_neighbors, n_neighbors=7):
    """scikit-learn LabelSpreading(kernel="knn", n_neighbors, max_iter=100) on one binary label.

    y_all: (n,) 1/0 for labeled rows, -1 for unlabeled. The kNN graph is passed in because it
    depends only on X: scikit-learn rebuilds it on every fit, which per label, fold and seed over a
    43k-row pool would take hours; the spreading and the prediction are scikit-learn's own.
    Returns (P(label) of every row of X_all, P(label) of the test rows).
    """
    from sklearn.semi_supervised import LabelSpreading

    class _GivenGraph(LabelSpreading):
        def _get_kernel(self, X, y=None):
            return graph if y is None else test_neighbors

    ls = _GivenGraph(kernel="knn", n_neighbors=n_neighbors, max_iter=100).fit(X_all, y_all)
    if 1 not in ls.classes_:
        return np.zeros(len(X_all)), np.zeros(len(test_neighbors))
    col = int(np.flatnonzero(ls.classes_ == 1)[0])
    return ls.label_distributions_[:, col], ls.predict_proba(X_test)[:, col]


def label_spreading_cv(X_all, Y, X_test, graph, test_neighbors, seed):
    """LabelSpreading per label with per-label cuts from the few-shot head's CV procedure.

    X_all: (n_lab + m, d) labeled rows first, then the pool; Y: (n_lab, K). Out-of-fold scores
    of a labeled row = its spread score when its own label is hidden (the row joins the pool).
    Returns (n_test, K) {0,1} predictions.
    """
    n_lab, K = Y.shape
    pool = -np.ones(len(X_all) - n_lab, dtype=int)

    def spread(lab_mask):
        """(n_all, K) spread scores and (n_test, K) test scores, labels known only where lab_mask."""
        S = np.zeros((len(X_all), K))
        T = np.zeros((len(test_neighbors), K))
        for j in range(K):
            y = np.where(lab_mask, Y[:, j].astype(int), -1)
            S[:, j], T[:, j] = label_spreading_probs(X_all, np.concatenate([y, pool]), X_test, graph,
                                                           test_neighbors)
        return S, T

    th = fewshot_cv_thresholds(lambda tr, te: spread(tr)[0][:n_lab][te], Y, seed)
    _, T = spread(np.ones(n_lab, dtype=bool))
    return (T >= th[None, :]).astype(np.uint8)


SEMI_METHODS = {
    "head_only": "FewShotClassifier on the labeled rows (no unlabeled data)",
    "head_plus_lexical_labeled_only": "CoTrainingClassifier(self_train=False): head + char n-gram ridge on the "
                                      "labeled rows only (the pool only scales the scores)",
    "cotrain": "CoTrainingClassifier (tagwise default for --semi-supervised)",
    "graph_self_training": "SemiSupervisedClassifier: head self-trained on kNN-graph pseudo-labels",
    "label_spreading": "scikit-learn LabelSpreading(kernel='knn', n_neighbors=7) per label on the same pool as "
                       "tagwise, per-label cuts by the few-shot head's CV procedure",
}


def semi_section(name, names, data, embed, shots, seeds):
    tr, te = data["train"], data["test"]
    zs = fit_zero_shot(names, tr.X, embed)
    t0 = time.perf_counter()
    S_full = knn_graph(tr.X, k=15, progress=True)
    graph_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    ls_graph, ls_test_nb = knn_connectivity(tr.X, te.X)
    ls_graph_seconds = time.perf_counter() - t0
    out = {"graph_seconds": graph_seconds, "n_pool": int(len(tr.X)), "label_spreading_graph_seconds": ls_graph_seconds,
           "methods": SEMI_METHODS}
    for k in shots:
        rows = {m: {"f1": [], "sec": []} for m in SEMI_METHODS}
        pseudo = {"cotrain": [], "graph_self_training": []}

        def timed(method, fit_predict):
            t0 = time.perf_counter()
            pred = fit_predict()
            rows[method]["sec"].append(time.perf_counter() - t0)
            rows[method]["f1"].append(macro_f1(te.Y, pred))

        for seed in seeds:
            idx = sample_k_per_label(tr.Y, k, seed)
            rest = np.setdiff1d(np.arange(len(tr.Y)), idx)
            order = np.concatenate([idx, rest])
            X, Y, U = tr.X[idx], tr.Y[idx], tr.X[rest]
            T, T_pool = [tr.texts[i] for i in idx], [tr.texts[i] for i in rest]
            timed("head_only", lambda: FewShotClassifier(random_state=seed).fit(
                X, Y, zeroshot=zs, X_corpus=tr.X).predict(te.X))
            for method, self_train in (("head_plus_lexical_labeled_only", False), ("cotrain", True)):
                model = CoTrainingClassifier(self_train=self_train, random_state=seed)
                timed(method, lambda: model.fit(X, Y, texts=T, X_unlabeled=U, texts_unlabeled=T_pool,
                                                zeroshot=zs).predict(te.X, texts=te.texts))
            pseudo["cotrain"].append(model.n_pseudo_)
            graph = S_full[order][:, order].tocsr()
            ss = SemiSupervisedClassifier(random_state=seed)
            timed("graph_self_training", lambda: ss.fit(X, Y, X_unlabeled=U, zeroshot=zs, graph=graph).predict(te.X))
            rows["graph_self_training"]["sec"][-1] += graph_seconds
            pseudo["graph_self_training"].append(ss.n_pseudo_)
            # the same pool as tagwise; the kNN graph (computed once, timed once) is reordered to this draw
            inv = np.empty(len(order), dtype=np.int64)
            inv[order] = np.arange(len(order))
            g_ord, nb_ord = ls_graph[order][:, order].tocsr(), inv[ls_test_nb]
            timed("label_spreading", lambda: label_spreading_cv(tr.X[order], Y, te.X, g_ord, nb_ord, seed))
            rows["label_spreading"]["sec"][-1] += ls_graph_seconds
        out[str(k)] = {m: {"macro_f1": ms(v["f1"]), "train_seconds": ms(v["sec"]), "per_seed": v["f1"]}
                       for m, v in rows.items()}
        out[str(k)]["pseudo_labels"] = pseudo
        for m in ("cotrain", "graph_self_training", "head_plus_lexical_labeled_only"):
            gain = np.subtract(rows[m]["f1"], rows["head_only"]["f1"])
            out[str(k)][f"gain_{m}_over_head"] = ms(gain)
            out[str(k)][f"{m}_vs_head"] = compare(rows[m]["f1"], rows["head_only"]["f1"])
        print(f"{name} semi k={k}: " + "  ".join(
            f"{m} {np.mean(v['f1']):.3f}±{np.std(v['f1'], ddof=1) if len(v['f1']) > 1 else 0:.3f} ({np.mean(v['sec']):.1f}s)"
            for m, v in rows.items()), flush=True)
    return out


def print_table(results: dict) -> None:
    print("\nmacro-F1 (mean ± sd over seeds) and training seconds; ratio = SetFit best time / tagwise time")
    for ds, curve in results.get("curves", {}).items():
        for k, row in curve.items():
            tw = row["tagwise"]
            line = f"{ds:12s} k={k:>2}: tagwise {tw['macro_f1']['mean']:.3f}±{tw['macro_f1']['sd']:.3f} " \
                   f"({tw['train_seconds']['mean']:.2f}s)"
            for m in ("tagwise_use_minilm", "lr_default", "lr_balanced", "lr_default_cv_thresholds",
                      "lr_balanced_cv_thresholds", "setfit_default_cv_thresholds", "setfit_default_same_run",
                      "setfit_balanced_same_run"):
                if m in row:
                    line += f" | {m} {row[m]['macro_f1']['mean']:.3f}±{row[m]['macro_f1']['sd']:.3f}" \
                            f" ({row[m]['train_seconds']['mean']:.1f}s)"
            if "setfit_default_cv_thresholds" in row:
                best = max(("setfit_default_cv_thresholds", "setfit_default_same_run", "setfit_balanced_same_run"),
                           key=lambda m: row[m]["macro_f1"]["mean"])
                sf_sec = row[best]["train_seconds"]["mean"]
                line += f" | best SetFit={best}, time ratio {sf_sec / tw['train_seconds']['mean']:.0f}x"
                if "tagwise_use_minilm" in row:
                    line += f" (use_minilm {sf_sec / row['tagwise_use_minilm']['train_seconds']['mean']:.1f}x)"
            print(line)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves_ = results.get("curves", {})
    if not curves_:
        return
    fig, axes = plt.subplots(1, len(curves_), figsize=(6 * len(curves_), 4.2), squeeze=False)
    labels = {"tagwise": "tagwise few-shot (prior + linear)", "tagwise_use_minilm": "tagwise, USE + MiniLM features",
              "lr_default": "LogReg default",
              "lr_balanced": "LogReg balanced", "lr_default_cv_thresholds": "LogReg, CV thresholds",
              "lr_balanced_cv_thresholds": "LogReg balanced, CV thresholds",
              "setfit_default_cv_thresholds": "SetFit (MiniLM), CV thresholds",
              "setfit_default_same_run": "SetFit (MiniLM) default head"}
    for ax, (ds, curve) in zip(axes[0], curves_.items()):
        for m, lab in labels.items():
            ks = [int(k) for k in curve if m in curve[k]]
            if not ks:
                continue
            mean = [curve[str(k)][m]["macro_f1"]["mean"] for k in ks]
            sd = [curve[str(k)][m]["macro_f1"]["sd"] for k in ks]
            ax.errorbar(ks, mean, yerr=sd, marker="o", capsize=3, label=lab)
        zs = results.get("zeroshot", {}).get(ds)
        if zs:
            ax.axhline(zs["tagwise_zero_shot"], ls="--", c="gray", label="tagwise zero-shot (0 labels)")
        ax.set_xscale("log", base=2)
        ax.set_xticks([8, 16, 32, 64], ["8", "16", "32", "64"])
        ax.set_xlabel("labeled positives per label")
        ax.set_ylabel("macro-F1 (test)")
        ax.set_title(ds)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["semeval2018", "goemotions"])
    ap.add_argument("--shots", nargs="+", type=int, default=[8, 16, 32, 64])
    ap.add_argument("--semi-shots", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--sections", nargs="+", default=["curves", "zeroshot", "semi"])
    ap.add_argument("--out", default=str(RESULTS / "fewshot.json"))
    ap.add_argument("--with-minilm", action="store_true",
                    help="curves also for the head on USE + bundled MiniLM (torch extra)")
    ap.add_argument("--setfit", choices=["default", "capped", "off"], default="default",
                    help="SetFit in the same run on the same draws (torch extra + setfit): 'default' = its "
                         "documented TrainingArguments budget (slow on CPU), 'capped' = num_iterations=5, "
                         "max_steps=100 (earlier rounds), 'off' = skip")
    ap.add_argument("--setfit-shots", nargs="+", type=int, default=None,
                    help="only these curve points get SetFit (default: all of --shots)")
    ap.add_argument("--setfit-seeds", nargs="+", type=int, default=None,
                    help="only these seeds get SetFit (default: all of --seeds)")
    args = ap.parse_args()
    setfit = None if args.setfit == "off" else (
        {"num_iterations": None, "max_steps": None} if args.setfit == "default" else {"num_iterations": 5, "max_steps": 100})
    out_path = Path(args.out)
    results = {}  # this run only: nothing is read back from an earlier file
    results["protocol"] = __doc__.split("Protocol", 1)[1].strip()
    results["encoder"] = "use (multilingual USE v3, 512-d), shared cache"
    for section in args.sections:
        results.setdefault("threads", {})[section] = os.environ.get("OMP_NUM_THREADS")
    for name in args.datasets:
        names, data, enc = load_dataset(name)
        embed = lambda t: embed_texts(list(t), enc, CACHE, progress=False)[0]  # noqa: E731
        if "zeroshot" in args.sections:
            results.setdefault("zeroshot", {})[name] = zeroshot_section(name, names, data, embed)
        if "curves" in args.sections:
            results.setdefault("curves", {})[name] = curves(name, names, data, embed, args.shots, args.seeds,
                                                            with_minilm=args.with_minilm, setfit=setfit,
                                                            setfit_shots=args.setfit_shots,
                                                            setfit_seeds=args.setfit_seeds)
        if "semi" in args.sections:
            results.setdefault("semi_supervised", {})[name] = semi_section(name, names, data, embed,
                                                                          args.semi_shots, args.seeds)
        save_results(out_path, results)
    if set(args.sections) & {"curves", "zeroshot", "semi"}:
        results.setdefault("peak_rss_mb", {})["+".join(args.sections) + ":" + "+".join(args.datasets)] = \
            peak_rss_mb()
    save_results(out_path, results)
    print_table(results)
    figure = out_path.with_name(out_path.stem + "_curves.png")
    plot(results, figure)
    print(f"wrote {out_path} and {figure}")


if __name__ == "__main__":
    main()
