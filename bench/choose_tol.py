"""Issue 20: choose MultiLabelLinear's stopping tolerance ``tol`` (per-label L-BFGS) on training data.

Choice (training splits only, as bench/choose_defaults.py): GoEmotions and Reuters official
train split (a seeded 9,000-row subsample of each, as choose_defaults --choice-max-rows, to fit
the shared machine's budget), 3 seeded outer folds (seed 0); each candidate head is fitted on 2 folds exactly as
tagwise fits it (its own internal CV and thresholds) and scored by macro-F1 on the third.
Criterion: mean over datasets of the mean over folds. Rule, fixed before the run: the LARGEST
tolerance (fastest fit) whose criterion is within ``F1_SLACK`` of the best candidate's wins.
Report (after the choice, nothing feeds back): the candidates' test macro-F1 and fit seconds on
datasets that took no part in the choice: SemEval-2018 E-c (official split) and XED-en (seeded
80/20 split, seeds 1-2).

    TAGWISE_CACHE_DIR=... OMP_NUM_THREADS=1 PYTHONPATH=src python bench/choose_tol.py
Writes bench/results/train_speed_tol.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from choose_defaults import _split, choice_data, macro_f1, micro_f1, report_data  # noqa: E402
from common import save_results  # noqa: E402
import choose_defaults  # noqa: E402

from tagwise.learn.linear import MultiLabelLinear  # noqa: E402

TOL_GRID = (1e-3, 3e-3, 1e-2)
F1_SLACK = 0.002  # a tolerance may cost at most this much cross-validated macro-F1 to win on speed
CHOICE = ("goemotions", "reuters")
CHOICE_MAX_ROWS = 9000
HELD_OUT = (("semeval2018", 0), ("xed_en", 1), ("xed_en", 2))


def fit(tol, X, Y, seed=0):
    t0 = time.perf_counter()
    model = MultiLabelLinear(tol=tol, random_state=seed).fit(X, Y)
    return model, time.perf_counter() - t0


def main() -> None:
    choose_defaults._CHOICE_MAX_ROWS = CHOICE_MAX_ROWS
    out = {"tol_grid": TOL_GRID, "f1_slack": F1_SLACK, "choice": {}, "held_out": {}}
    for ds in CHOICE:
        X, Y = choice_data(ds)
        folds = np.random.default_rng(0).permutation(np.arange(len(X)) % 3)
        for tol in TOL_GRID:
            f1s, secs = [], []
            for f in range(3):
                tr, va = folds != f, folds == f
                keep = Y[tr].sum(0) > 0
                model, s = fit(tol, X[tr], Y[tr][:, keep])
                f1s.append(macro_f1(Y[va][:, keep], model.predict(X[va])))
                secs.append(s)
            out["choice"].setdefault(str(tol), {})[ds] = {"macro_f1": [round(v, 4) for v in f1s],
                                                         "fit_s": [round(v, 2) for v in secs]}
            print(ds, tol, np.mean(f1s).round(4), np.round(secs, 1), flush=True)
    crit = {tol: float(np.mean([np.mean(out["choice"][str(tol)][ds]["macro_f1"]) for ds in CHOICE]))
            for tol in TOL_GRID}
    best = max(crit.values())
    chosen = max(t for t in TOL_GRID if crit[t] >= best - F1_SLACK)
    out["criterion"] = {str(t): round(v, 4) for t, v in crit.items()}
    out["chosen_tol"] = chosen
    print("criterion", out["criterion"], "chosen", chosen, flush=True)
    save_results("train_speed_tol", out)
    for name, seed in HELD_OUT:
        X, Y, _ = report_data(name)
        tr, te = _split(name, seed)
        keep = Y[tr].sum(0) > 0
        for tol in TOL_GRID:
            model, s = fit(tol, X[tr], Y[tr][:, keep], seed)
            Z = model.predict(X[te])
            out["held_out"].setdefault(f"{name}_seed{seed}", {})[str(tol)] = {
                "macro_f1": round(macro_f1(Y[te][:, keep], Z), 4), "micro_f1": round(micro_f1(Y[te][:, keep], Z), 4),
                "fit_s": round(s, 2)}
        print(name, seed, out["held_out"][f"{name}_seed{seed}"], flush=True)
        save_results("train_speed_tol", out)


if __name__ == "__main__":
    main()
