"""Does `tagwise train` without a mode pick well? (issue 16)

For seeded draws of k positives per label from a dataset's train split (the rest of train as the
unlabeled pool, as in bench_fewshot.py), run ``learn.registry.choose_mode`` — which sees only the
labeled rows and the pool — and report the test macro-F1 of every candidate mode, of the mode it
chose, and of plain supervised training (what `tagwise train` did before). The test split plays
no part in the choice.

    python bench/bench_auto_mode.py [--datasets semeval2018] [--k 8 32] [--seeds 1 2 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fewshot_data import load_dataset, macro_f1, sample_k_per_label  # noqa: E402
from _stats import compare, mean_sd  # noqa: E402
from common import save_results  # noqa: E402

from tagwise.learn.registry import MODES, TrainingData, choose_mode  # noqa: E402


def run(dataset: str, k: int, seed: int) -> dict:
    names, splits, enc = load_dataset(dataset)
    tr, te = splits["train"], splits["test"]
    pick = sample_k_per_label(tr.Y, k, seed)
    rest = np.setdiff1d(np.arange(len(tr.Y)), pick)
    data = TrainingData(X=tr.X[pick], Y=tr.Y[pick].astype(np.float32), mask=np.ones(tr.Y[pick].shape, bool),
                        label_names=names, X_unlabeled=tr.X[rest], texts=[tr.texts[i] for i in pick],
                        texts_unlabeled=[tr.texts[i] for i in rest], embed=lambda t: enc.encode(list(t)))
    t0 = time.perf_counter()
    choice = choose_mode(data, seed=seed)
    choose_s = time.perf_counter() - t0
    test = {}
    for mode in choice.cv:
        model = MODES[mode].fit(data, {}, seed)
        test[mode] = round(macro_f1(te.Y, model.predict(te.X, texts=te.texts)), 4)
    out = {"dataset": dataset, "k": k, "seed": seed, "n_labeled": int(len(pick)), "pool": int(len(rest)),
           "cv": choice.cv, "chosen": choice.mode, "test": test, "test_chosen": test[choice.mode],
           "test_supervised": test["supervised"], "test_best": max(test.values()), "choose_seconds": round(choose_s, 1)}
    print(out, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["semeval2018"])
    ap.add_argument("--k", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = ap.parse_args()
    rows = [run(d, k, s) for d in args.datasets for k in args.k for s in args.seeds]
    summary = {}
    for d in args.datasets:
        for k in args.k:
            sel = [r for r in rows if r["dataset"] == d and r["k"] == k]
            # mean ± sample sd over seeds (bench/_stats.py) and seed-by-seed wins of the chosen mode
            summary[f"{d} k={k}"] = {m: mean_sd([r[m] for r in sel]) for m in ("test_chosen", "test_supervised", "test_best")}
            summary[f"{d} k={k}"]["chosen_vs_supervised"] = compare([r["test_chosen"] for r in sel],
                                                                    [r["test_supervised"] for r in sel])
            summary[f"{d} k={k}"]["chosen"] = [r["chosen"] for r in sel]
    for key, v in summary.items():
        print(key, v)
    save_results("auto_mode", {"protocol": __doc__.strip().splitlines()[2:5], "runs": rows, "summary": summary})


if __name__ == "__main__":
    main()
