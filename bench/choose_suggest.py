"""Choose `suggest`'s selection rule and its head's ``threshold_method`` on training data only (issue 29).

What is chosen. Before this choice ``tagwise suggest`` fitted the few-shot head with
``threshold_method="pool"`` and picked half of each batch at the labels' cuts
(``select.active.select_batch(rule="closeness")``: closeness exp(-|logit p - logit cut|), label-wise
round robin, boundary share 0.5) and half k-means-diverse rows; grid point ``suggest/pool`` here.
Both were chosen on SemEval-2018 *test* curves (``bench_active_variants.py``, ``bench_active.py``). Here every
rule that comparison tried (``bench_active_variants.VARIANTS`` but random: boundary shares 30/50/70%,
BALD over a fold committee, information density and its inverse, co-testing, the two views' summed
score, Gumbel-perturbed picks) is crossed with ``threshold_method`` in {pool, cv}.

Protocol. Choice datasets: XED English and ISEAR (``--datasets``; neither takes part in the active-
learning figures, which are reported on SemEval-2018, GoEmotions and Reuters). Each one's train split
is shuffled (seed 0) and cut to ``--max-rows`` rows, then in two halves: half A is the simulation's
pool (labels hidden until a row is picked), half B (at most ``--eval-rows`` rows) scores the head after
every batch. No test split is read. The loop is ``bench_active.simulate``'s: a k-means cold start
of ``--batch`` rows, then batches of ``--batch`` chosen by the rule from the head fitted on the rows
labeled so far (``FewShotClassifier`` with the zero-shot label-name prior and the grid point's
``threshold_method``, the model `suggest` fits), up to ``--max-labels``. The scored model is that
same head, as in ``bench_active.py``. Criterion: the area under the macro-F1 curve (mean macro-F1
over the batches, 50 to ``--max-labels`` labels), averaged over (dataset, seed) draws (seeds
``--seeds``); the best mean is the *development best*, reported with its sample sd and per-draw
wins/losses against the shipped default and every other point (``bench/_stats.py``); random sampling
runs on the same draws as a reference. Decision rule: the development best replaces the shipped
default only when its paired mean difference over the default on the draws exceeds twice its
standard error (sample sd / sqrt(draws)); otherwise the default is kept (no point beats it beyond the
draw-to-draw noise). Then the decision, the shipped default, the development best, the best point
with another rule, the decision's rule with the other ``threshold_method`` and random sampling are
run on the test split of ``--held-out``
datasets (their whole train split as the pool, capped at ``--held-out-pool`` rows, seeds
``--held-out-seeds``, which no earlier choice used), up to ``--held-out-max-labels``: a report,
not a choice.
The script reports a choice; changing a default in ``src/`` is a separate, reviewed commit.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/choose_suggest.py [--datasets xed_en isear] \
        [--seeds 100 101 102 103 104] [--max-labels 300] [--held-out semeval2018] [--jobs 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fewshot_data import CACHE, load_dataset, train_halves  # noqa: E402
from _stats import compare, mean_sd  # noqa: E402
from bench_active import simulate  # noqa: E402
from bench_active_variants import VARIANTS, boundary_criterion, pool_density  # noqa: E402
from common import peak_rss_mb, save_results  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

from tagwise.encoders import embed_texts  # noqa: E402
from tagwise.learn.lexical import CharNgramTfidf  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402

RULES = ["suggest"] + [v for v in VARIANTS if v not in ("random", "suggest")]
# BALD refits a 5-head committee every batch (6x the cost of the others); it is in the grid only when named
DEFAULT_RULES = [r for r in RULES if r != "bald"]
THRESHOLD_METHODS = ["pool", "cv"]
# The default this choice is compared with (fixed here, so the script rewrites the same file after a
# default has been changed to its choice): select_batch's closeness alone at boundary share 0.5
# (rule="closeness"), and `suggest`'s FewShotClassifier(threshold_method="pool") of before issue 29.
DEFAULT = ("suggest", "pool")


def key(point) -> str:
    return f"{point[0]}/{point[1]}"


def run_points(points, A, B, names, embed, seeds, batch, max_labels, jobs):
    """{key(point): (seeds, rounds) macro-F1 on B}, plus the label counts; random included as 'random'."""
    zs = fit_zero_shot(names, A["X"], embed)  # half B stays unseen until it scores
    density = pool_density(A["X"])
    tfidf = CharNgramTfidf().fit_transform(list(A["texts"])).tocsr()
    tasks = [("random", "pool")] + list(points)
    jobs_list = []
    for rule, method in tasks:
        boundary = None if rule == "random" else partial(boundary_criterion, rule, density, tfidf)
        for s in seeds:
            jobs_list.append(((rule, method), s, boundary))
    runs = Parallel(n_jobs=jobs, backend="multiprocessing")(delayed(simulate)(  # fork: __main__ is shared
        "random" if p[0] == "random" else "tagwise", A["X"], A["Y"], B["X"], B["Y"], zs, s, batch, max_labels,
        threshold_method=p[1], boundary=b) for p, s, b in jobs_list)
    curves: dict = {}
    for (p, s, _), r in zip(jobs_list, runs):
        curves.setdefault(key(p), []).append(r[1])
    return [int(n) for n in runs[0][0]], {k: np.asarray(v) for k, v in curves.items()}


def held_out(datasets, points: dict, seeds, batch, max_labels, pool_rows, jobs) -> dict:
    """Named points on datasets that took no part in the choice: pool = their train split (a seeded
    sample of at most ``pool_rows``), macro-F1 on their test split. A report, not a choice."""
    out = {}
    for name in datasets:
        t0 = time.perf_counter()
        names, data, enc = load_dataset(name)
        tr, te = data["train"], data["test"]
        keep = np.sort(np.random.default_rng(0).permutation(len(tr.Y))[:pool_rows])
        A = {"X": tr.X[keep], "Y": tr.Y[keep], "texts": [tr.texts[i] for i in keep]}
        B = {"X": te.X, "Y": te.Y}
        embed = lambda t: embed_texts(list(t), enc, CACHE, progress=False)[0]  # noqa: E731
        labels, curves = run_points(list(dict.fromkeys(points.values())), A, B, names, embed, seeds, batch,
                                    max_labels, jobs)
        auc = {k: v.mean(1) for k, v in curves.items()}
        final = {k: v[:, -1] for k, v in curves.items()}
        chosen = key(points["chosen"])
        res = {"pool_rows": len(keep), "test_rows": len(te.Y), "labels": labels, "points": {}}
        res["same_as_chosen"] = [role for role, p in points.items() if role != "chosen" and key(p) == chosen]
        for role, p in {**points, "random": ("random", "pool")}.items():
            k = key(p)
            if role in res["same_as_chosen"]:
                continue
            row = {"point": k, "auc_macro_f1": mean_sd(auc[k]), "final_macro_f1": mean_sd(final[k]),
                   "macro_f1_curve_mean": np.round(curves[k].mean(0), 4).tolist()}
            if role != "chosen":
                row["chosen_vs_this_auc"] = compare(auc[chosen], auc[k])
                row["chosen_vs_this_final"] = compare(final[chosen], final[k])
            res["points"][role] = row
        out[name] = res
        print(f"held out {name} ({len(keep)} pool rows, {time.perf_counter() - t0:.0f}s): " + "; ".join(
            f"{role} {r['point']} AUC {r['auc_macro_f1']['mean']:.4f} ± {r['auc_macro_f1']['sd']:.4f}, "
            f"at {labels[-1]} {r['final_macro_f1']['mean']:.4f}" for role, r in res["points"].items()), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["xed_en", "isear"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102, 103, 104])
    ap.add_argument("--rules", nargs="+", default=DEFAULT_RULES, choices=RULES)
    ap.add_argument("--threshold-methods", nargs="+", default=THRESHOLD_METHODS, choices=THRESHOLD_METHODS)
    ap.add_argument("--max-rows", type=int, default=4000, help="seeded sample of each train split")
    ap.add_argument("--eval-rows", type=int, default=2000, help="rows of train half B that score the head")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--max-labels", type=int, default=300)
    ap.add_argument("--held-out", nargs="*", default=["semeval2018"],
                    help="datasets (no part in the choice) whose test split reports the chosen point")
    ap.add_argument("--held-out-seeds", nargs="+", type=int, default=[12, 13, 14, 15])
    ap.add_argument("--held-out-max-labels", type=int, default=500)
    ap.add_argument("--held-out-pool", type=int, default=8000, help="seeded sample of each held-out train split")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="choose_suggest")
    args = ap.parse_args()
    points = [(r, m) for r in args.rules for m in args.threshold_methods]
    if DEFAULT not in points:
        ap.error(f"the grid must hold the shipped default {key(DEFAULT)}")
    results = {"protocol": __doc__.split("Protocol.", 1)[1].split("    OMP_NUM_THREADS")[0].strip(),
               "datasets": args.datasets, "seeds": args.seeds, "max_rows": args.max_rows,
               "eval_rows": args.eval_rows, "batch": args.batch, "max_labels": args.max_labels,
               "grid": {"rule": args.rules, "threshold_method": args.threshold_methods},
               "default": key(DEFAULT), "criterion": "area under the macro-F1 curve (mean over batches) on half B"}
    t0 = time.perf_counter()
    auc: dict = {}
    final: dict = {}
    draws, per_dataset = [], {}
    for name in args.datasets:
        t1 = time.perf_counter()
        names, A, B, embed = train_halves(name, args.max_rows, args.eval_rows)
        labels, curves = run_points(points, A, B, names, embed, args.seeds, args.batch, args.max_labels, args.jobs)
        draws += [f"{name}/seed={s}" for s in args.seeds]
        for k, c in curves.items():
            auc.setdefault(k, []).extend(c.mean(1).tolist())
            final.setdefault(k, []).extend(c[:, -1].tolist())
        per_dataset[name] = {"pool_rows": len(A["Y"]), "eval_rows": len(B["Y"]), "labels": labels,
                             "auc_mean": {k: round(float(c.mean()), 4) for k, c in curves.items()},
                             "macro_f1_curve_mean": {k: np.round(c.mean(0), 4).tolist() for k, c in curves.items()}}
        print(f"{name}: {len(curves)} points x {len(args.seeds)} seeds in {time.perf_counter() - t1:.0f}s; "
              + ", ".join(f"{k} {v:.4f}" for k, v in sorted(per_dataset[name]["auc_mean"].items(),
                                                           key=lambda kv: -kv[1])), flush=True)
    grid_keys = [key(p) for p in points]
    best = max(grid_keys, key=lambda k: (np.mean(auc[k]), -grid_keys.index(k)))
    ranking = sorted(grid_keys, key=lambda k: -np.mean(auc[k]))
    dev_best = points[grid_keys.index(best)]
    diff = np.asarray(auc[best]) - np.asarray(auc[key(DEFAULT)])
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    beyond_noise = bool(diff.mean() > 2 * se)
    chosen = dev_best if beyond_noise else DEFAULT
    table = {k: {"auc_macro_f1": mean_sd(auc[k]), "final_macro_f1": mean_sd(final[k]),
                 "dev_best_vs_this_auc": None if k == best else compare(auc[best], auc[k])}
             for k in ranking + ["random/pool"]}
    results.update(draws=draws, per_dataset=per_dataset, grid_scores=table, ranking=ranking,
                   dev_best=best, default_rank=1 + ranking.index(key(DEFAULT)),
                   dev_best_vs_default=compare(auc[best], auc[key(DEFAULT)]),
                   decision_rule="the development best replaces the default only if its paired mean difference "
                                 "over the default exceeds 2 standard errors (sample sd / sqrt(draws))",
                   dev_best_minus_default={"mean": round(float(diff.mean()), 4), "se": round(se, 4)},
                   chosen=key(chosen), chosen_is_default=chosen == DEFAULT)
    print(f"development best {best} AUC {np.mean(auc[best]):.4f}; default {key(DEFAULT)} "
          f"{np.mean(auc[key(DEFAULT)]):.4f} (rank {results['default_rank']} of {len(grid_keys)}; difference "
          f"{diff.mean():+.4f}, se {se:.4f}); random {np.mean(auc['random/pool']):.4f}; chosen {key(chosen)}",
          flush=True)
    save_results(args.out, results)
    if args.held_out:
        other_rule = next(k for k in ranking if k.split("/")[0] != chosen[0])
        other_method = [m for m in THRESHOLD_METHODS if m != chosen[1]][0]
        report = {"chosen": chosen, "default": DEFAULT, "dev_best": dev_best,
                  "best_other_rule": tuple(other_rule.split("/")),
                  "chosen_rule_other_threshold_method": (chosen[0], other_method)}
        results["held_out_seeds"] = args.held_out_seeds
        results["held_out_max_labels"] = args.held_out_max_labels
        results["held_out"] = held_out(args.held_out, report, args.held_out_seeds, args.batch,
                                       args.held_out_max_labels, args.held_out_pool, args.jobs)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(f"results -> {save_results(args.out, results)}")


if __name__ == "__main__":
    main()
