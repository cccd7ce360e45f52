"""The label queue drawing from abstained rows (`suggest --strategy abstain`) vs suggest's default rule
vs random, on the same budget: simulated labeling on a real dataset.

Protocol (per dataset and seed): the pool is the official train split with its labels hidden; the
oracle reveals a row's gold labels when it is selected. Every strategy starts from the same
``--start`` random labeled rows (seeded) and then takes ``--rounds`` batches of ``--batch``:

- ``suggest``: ``select.active.select_batch`` on the head's pool probabilities and cuts (what
  ``tagwise suggest`` does: label-wise boundary rows weighted to rare labels, plus diverse rows);
- ``abstain``: a ``ConformalRiskController`` for ``--risk`` calibrated on the official dev split
  (as ``predict --risk`` calibrates on a project's dev split), the pool rows it abstains on, most
  doubtful first, then the next most doubtful (``suggest --strategy abstain``);
- ``random``.

After each batch every strategy refits the same head (``MultiLabelLinear``, the supervised head
``tagwise train`` fits; default parameters) and is scored on the official test split: macro-F1 at
the head's own cuts, and the promise at ``--risk`` calibrated on dev: the test abstention rate, the
kept rows' realised risk and the mean set size. Reported: mean ± sample sd over seeds of the final
round, per-seed wins/losses of ``abstain`` against ``suggest``, and the curves.

    OMP_NUM_THREADS=1 TAGWISE_CACHE_DIR=/work/.cache/embeddings python bench/bench_active_abstain.py
writes bench/results/active_abstain.json (with the command) and bench/results/active_abstain.png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _fewshot_data import load_dataset, macro_f1  # noqa: E402
from _stats import compare, fmt_compare, fmt_mean_sd, mean_sd  # noqa: E402
from common import RESULTS, save_figure, save_results  # noqa: E402
from tagwise.learn.conformal import LOSSES, ConformalRiskController  # noqa: E402
from tagwise.learn.linear import MultiLabelLinear  # noqa: E402
from tagwise.select.active import select_batch  # noqa: E402

BASE = ("suggest", "random")


def parse(risk: str) -> tuple[str, float]:
    name, level = risk.split("=")
    return name, float(level)


def promise_figures(head, X_dev, Y_dev, X_test, Y_test, risk: str, level: float) -> dict:
    """The ``risk`` promise calibrated on dev, measured on test: abstention, kept risk, set size."""
    c = ConformalRiskController(risk, level).fit(head.predict_proba(X_dev), Y_dev)
    out = c.predict(head.predict_proba(X_test))
    loss = LOSSES[c.promise_["controlled"]](Y_test, out["labels"])
    kept = ~out["abstain"]
    flip = (lambda x: 1 - x) if risk == "precision" else (lambda x: x)  # noqa: E731
    return {"abstention_rate": float(out["abstain"].mean()),
            "kept_risk": flip(float(loss[kept].mean())) if kept.any() else None,
            "risk": flip(float(loss.mean())), "mean_set_size": float(out["labels"].sum(1).mean())}


def simulate(strategy: str, data, seed: int, start: int, batch: int, rounds: int, risks: list[str]) -> dict:
    """strategy: suggest / random / abstain[RISK]; every round measures the promise of each of ``risks``."""
    (X, Y), (X_dev, Y_dev), (X_test, Y_test) = data
    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(X), dtype=bool)
    labeled[rng.choice(len(X), start, replace=False)] = True  # the same start for every strategy
    curve = []
    select_s = 0.0
    for r in range(rounds + 1):
        head = MultiLabelLinear(random_state=seed).fit(X[labeled], Y[labeled])
        curve.append({"labels": int(labeled.sum()), "macro_f1": macro_f1(Y_test, head.predict(X_test)),
                      **{r: promise_figures(head, X_dev, Y_dev, X_test, Y_test, *parse(r)) for r in risks}})
        if r == rounds:
            break
        pool = np.flatnonzero(~labeled)
        t0 = time.perf_counter()
        if strategy == "random":
            pick = rng.choice(pool, batch, replace=False)
        elif strategy == "suggest":
            P = head.predict_proba(X[pool])
            pick = pool[select_batch(X[pool], batch, P, head.threshold_, Y[labeled].sum(0), seed=seed).index]
        else:
            c = ConformalRiskController(*parse(strategy[len("abstain["):-1])).fit(head.predict_proba(X_dev), Y_dev)
            out = c.predict(head.predict_proba(X[pool]))
            pick = pool[np.lexsort((-out["doubt"], ~out["abstain"]))[:batch]]
        select_s += time.perf_counter() - t0
        labeled[pick] = True
    return {"curve": curve, "select_seconds": round(select_s, 2)}


def plot(results: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, risks = list(results["datasets"]), results["risks"]
    fig, axes = plt.subplots(len(names), 1 + len(risks), figsize=(4.2 * (1 + len(risks)), 3.6 * len(names)),
                             squeeze=False)
    for row, name in zip(axes, names):
        runs = results["datasets"][name]["runs"]
        for strategy, strategy_runs in runs.items():
            curves = [r["curve"] for r in strategy_runs]
            x = [p["labels"] for p in curves[0]]
            panels = [("macro_f1", None)] + [("abstention_rate", r) for r in risks]
            for ax, (key, risk) in zip(row, panels):
                v = np.array([[p[key] if risk is None else p[risk][key] for p in c] for c in curves])
                ax.errorbar(x, v.mean(0), yerr=v.std(0, ddof=1) if len(v) > 1 else None, marker="o", ms=3,
                            capsize=2, label=strategy)
                ax.set_xlabel("labeled rows")
                ax.set_ylabel("test macro-F1" if risk is None else f"test abstention rate at {risk}")
                ax.set_title(name, fontsize=9)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["semeval2018"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--start", type=int, default=200)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--risks", nargs="+", default=["fnr=0.1", "precision=0.9"])
    ap.add_argument("--out", default="active_abstain")
    args = ap.parse_args()
    strategies = list(BASE) + [f"abstain[{r}]" for r in args.risks]
    results = {"risks": args.risks, "seeds": args.seeds, "start": args.start, "batch": args.batch,
               "rounds": args.rounds, "strategies": strategies,
               "head": "MultiLabelLinear() defaults; the promises calibrated on the dev split", "datasets": {}}
    keys = ("abstention_rate", "kept_risk", "risk", "mean_set_size")
    for name in args.datasets:
        t0 = time.perf_counter()
        labels, splits, _ = load_dataset(name)
        keep = splits["train"].Y.sum(0) >= 5  # labels the pool can teach at all
        data = tuple((splits[s].X, splits[s].Y[:, keep].astype(np.float64)) for s in ("train", "dev", "test"))
        runs = {s: [simulate(s, data, seed, args.start, args.batch, args.rounds, args.risks) for seed in args.seeds]
                for s in strategies}
        final = {s: {"macro_f1": [r["curve"][-1]["macro_f1"] for r in runs[s]],
                     **{f"{risk} {k}": [r["curve"][-1][risk][k] for r in runs[s]] for risk in args.risks for k in keys}}
                 for s in strategies}
        summary = {s: {k: mean_sd([x for x in v if x is not None]) for k, v in final[s].items()} for s in strategies}
        versus = {}
        for risk in args.risks:
            ours = f"abstain[{risk}]"
            versus[ours] = {other: {"macro_f1": compare(final[ours]["macro_f1"], final[other]["macro_f1"]),
                                    f"{risk} abstention_rate": compare(final[ours][f"{risk} abstention_rate"],
                                                                       final[other][f"{risk} abstention_rate"],
                                                                       higher_is_better=False)}
                            for other in BASE}
        results["datasets"][name] = {"n_pool": int(len(data[0][0])), "n_dev": int(len(data[1][0])),
                                     "n_test": int(len(data[2][0])), "n_labels": int(keep.sum()),
                                     "final_labels": runs["suggest"][0]["curve"][-1]["labels"],
                                     "final": summary, "versus": versus, "runs": runs,
                                     "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{name}: {results['datasets'][name]['final_labels']} labels, seeds {args.seeds}")
        for s in strategies:
            print(f"  {s:22} macro-F1 {fmt_mean_sd(final[s]['macro_f1'])}  " + "  ".join(
                f"{risk}: abstention {fmt_mean_sd(final[s][f'{risk} abstention_rate'])}, kept "
                f"{fmt_mean_sd([x for x in final[s][f'{risk} kept_risk'] if x is not None])}" for risk in args.risks))
        for risk in args.risks:
            ours = f"abstain[{risk}]"
            for other in BASE:
                print(f"  {ours} vs {other}: macro-F1 {fmt_compare(final[ours]['macro_f1'], final[other]['macro_f1'])}; "
                      f"abstention at {risk} {fmt_compare(final[ours][f'{risk} abstention_rate'], final[other][f'{risk} abstention_rate'], False)}")
        save_results(args.out, results)
    save_results(args.out, results)
    plot(results, RESULTS / f"{args.out}.png")


if __name__ == "__main__":
    main()
