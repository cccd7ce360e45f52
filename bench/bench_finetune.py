"""End-to-end fine-tuning (``tagwise train --fine-tune``) against frozen encoders and the HF Trainer, same run.

On a GoEmotions slice (/work/shared/data/goemotions: a random ``--n-train`` draw of the train split per
seed, the first ``--n-dev`` dev rows, the first ``--n-test`` test rows; 28 labels), per seed:

- ``frozen_minilm_head`` / ``frozen_use_head``: today's default head (``MultiLabelLinear``, thresholds by
  cross-validation on the train rows) on frozen MiniLM / USE vectors; fit time = the head's fit (the
  vectors come from the embedding cache; encoding is timed in the predict throughput).
- ``finetune``: ``learn.endtoend.FineTunedTransformer`` on the bundled MiniLM within ``--budget-minutes``
  (top layers and epochs decided by the budget; early stopping and per-label thresholds on the dev rows).
- ``hf_trainer``: the peer, ``AutoModelForSequenceClassification(problem_type="multi_label_classification")``
  on the same MiniLM folder, fine-tuned (every layer) by ``transformers.Trainer`` with its usual settings
  (AdamW 5e-5, batch 32, linear decay, ``group_by_length``) on the same rows and the same ``max_seq_len``
  within the same wall-clock budget (loading included): a probe times a training step and sets
  ``max_steps`` to what the budget affords, and a callback stops at the budget; per-label thresholds are
  chosen on the dev rows with the same ``best_f1_thresholds``.

Each method runs in a fresh (spawned) process, so its peak RSS is its own. Reported per method: test
macro-F1 (labels with a test positive) and micro-F1 as mean ± sample sd over seeds, per-seed wins of
``finetune`` against each other method, fit seconds, predict throughput (texts/s over the test rows,
encoding included, one process on this shared 2-core machine), peak RSS.

    OMP_NUM_THREADS=2 PYTHONPATH=src python bench/bench_finetune.py --seeds 0 1 --n-train 1500 --n-dev 300 --n-test 600 --budget-minutes 4
    OMP_NUM_THREADS=2 PYTHONPATH=src python bench/bench_finetune.py --seeds 0 1 --n-train 1500 --n-dev 300 --n-test 600 --budget-minutes 6 --out finetune_6min
Write bench/results/finetune.json and finetune_6min.json (about 20 and 28 minutes on the shared 2-core machine).
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
from common import CACHE, child_main, hf_trainer_budgeted, run_methods_by_seed, save_results  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"
METHODS = ("frozen_minilm_head", "frozen_use_head", "frozen_use_minilm_head", "frozen_use_minilm_e5_head",
           "finetune", "hf_trainer")
FROZEN = {"frozen_minilm_head": "st:all-minilm-l6-v2", "frozen_use_head": "use",
          "frozen_use_minilm_head": "use+minilm", "frozen_use_minilm_e5_head": "use+minilm+e5"}


def read_split(name: str) -> tuple[list[str], np.ndarray]:
    texts, rows = [], []
    with open(DATA / f"original_{name}.tsv", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            texts.append(parts[0])
            rows.append([int(k) for k in parts[1].split(",")])
    Y = np.zeros((len(texts), 28), np.float32)
    for i, r in enumerate(rows):
        Y[i, r] = 1.0
    return texts, Y


def draw(seed: int, n_train: int, n_dev: int, n_test: int) -> dict:
    tr_t, tr_Y = read_split("train")
    dv_t, dv_Y = read_split("dev")
    te_t, te_Y = read_split("test")
    rows = np.sort(np.random.default_rng(seed).choice(len(tr_t), size=n_train, replace=False))
    return {"train": ([tr_t[i] for i in rows], tr_Y[rows]), "dev": (dv_t[:n_dev], dv_Y[:n_dev]),
            "test": (te_t[:n_test], te_Y[:n_test])}


def scores(Y: np.ndarray, Z: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    has = Y.sum(0) > 0
    return {"macro_f1": float(f1_score(Y[:, has], Z[:, has], average="macro", zero_division=0)),
            "micro_f1": float(f1_score(Y, Z, average="micro", zero_division=0))}


def run_frozen(encoder_name: str, data: dict, seed: int) -> dict:
    from tagwise.encoders import embed_texts, get_encoder
    from tagwise.learn.linear import MultiLabelLinear

    enc = get_encoder(encoder_name)
    (tr_t, tr_Y), (te_t, te_Y) = data["train"], data["test"]
    X, _ = embed_texts(tr_t, enc, CACHE, progress=False)
    t0 = time.perf_counter()
    head = MultiLabelLinear(random_state=seed).fit(X, tr_Y)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    Xt = enc.encode(te_t)  # fresh encoding: the throughput a new text sees
    Z = head.predict(Xt)
    predict = time.perf_counter() - t0
    return {**scores(te_Y, Z), "fit_seconds": fit, "predict_texts_per_s": len(te_t) / predict}


def run_finetune(data: dict, seed: int, budget: float, max_seq_len: int) -> dict:
    from tagwise.learn.endtoend import FineTunedTransformer

    (tr_t, tr_Y), (dv_t, dv_Y), (te_t, te_Y) = data["train"], data["dev"], data["test"]
    model = FineTunedTransformer(budget_minutes=budget, max_seq_len=max_seq_len, random_state=seed)
    model.fit(tr_t, tr_Y, dev=(dv_t, dv_Y, None, None))
    t0 = time.perf_counter()
    Z = model.predict(None, texts=te_t)
    predict = time.perf_counter() - t0
    return {**scores(te_Y, Z), "fit_seconds": model.fit_seconds_, "predict_texts_per_s": len(te_t) / predict,
            "top_layers": model.top_layers_, "epochs": model.epochs_, "best_epoch": model.best_epoch_,
            "stop_reason": model.stop_reason_, "history": model.history_}


def run_hf_trainer(data: dict, seed: int, budget: float, max_seq_len: int) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding
    from transformers.utils import logging as hf_logging

    from tagwise.encoders.sentence_transformers import resolve_model_path

    hf_logging.set_verbosity_error()
    t_start = time.perf_counter()
    (tr_t, tr_Y), (dv_t, dv_Y), (te_t, te_Y) = data["train"], data["dev"], data["test"]
    path = resolve_model_path("all-minilm-l6-v2")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=tr_Y.shape[1], problem_type="multi_label_classification", local_files_only=True)

    def dataset(texts, Y):
        enc = tok(list(texts), truncation=True, max_length=max_seq_len)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": [float(v) for v in Y[i]]} for i in range(len(texts))]

    train_ds, dev_ds, test_ds = dataset(tr_t, tr_Y), dataset(dv_t, dv_Y), dataset(te_t, te_Y)
    got = hf_trainer_budgeted(model, DataCollatorWithPadding(tok), train_ds, dev_ds, dv_Y, {"test": test_ds}, seed,
                              t_start, budget)
    Z = (got["P"]["test"] >= got["thresholds"]).astype(np.uint8)
    return {**scores(te_Y, Z), "fit_seconds": got["fit_seconds"],
            "predict_texts_per_s": len(te_t) / got["predict_seconds"]["test"], "steps": got["steps"],
            "planned_steps": got["planned_steps"], "replanned_steps": got["replanned_steps"], "epochs": got["epochs"]}


def child(method: str, seed: int, cfg: dict, queue) -> None:
    def work() -> dict:
        data = draw(seed, cfg["n_train"], cfg["n_dev"], cfg["n_test"])
        if method in FROZEN:
            return run_frozen(FROZEN[method], data, seed)
        if method == "finetune":
            return run_finetune(data, seed, cfg["budget_minutes"], cfg["max_seq_len"])
        return run_hf_trainer(data, seed, cfg["budget_minutes"], cfg["max_seq_len"])

    child_main(queue, work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-dev", type=int, default=500)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--budget-minutes", type=float, default=3.0)
    ap.add_argument("--max-seq-len", type=int, default=64)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", default="finetune")
    ap.add_argument("--jobs", type=int, default=1,
                    help="methods of a seed run at once, in --methods order (e.g. 2 with OMP_NUM_THREADS=1: "
                         "finetune and hf_trainer side by side, each on one core, meeting the same load)")
    args = ap.parse_args()
    cfg = {"jobs": args.jobs, "n_train": args.n_train, "n_dev": args.n_dev, "n_test": args.n_test,
           "budget_minutes": args.budget_minutes, "max_seq_len": args.max_seq_len}
    ctx = mp.get_context("spawn")
    runs: dict[str, dict[str, dict]] = {m: {} for m in args.methods}
    results = {"dataset": "goemotions (28 labels)", "config": cfg, "seeds": args.seeds,
               "machine": f"{os.cpu_count()} CPUs, shared; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
               "runs": runs}
    t_all = time.perf_counter()
    run_methods_by_seed(ctx, child, args.seeds, args.methods, cfg, runs, results, args.out, jobs=args.jobs)
    summary = {}
    for method in args.methods:
        ok = [runs[method][str(s)] for s in args.seeds if "error" not in runs[method][str(s)]]
        summary[method] = {key: mean_sd([r[key] for r in ok]) for key in
                           ("macro_f1", "micro_f1", "fit_seconds", "predict_texts_per_s", "peak_rss_mb")}
    if "finetune" in args.methods:
        ft = [runs["finetune"][str(s)].get("macro_f1", np.nan) for s in args.seeds]
        summary["finetune_vs"] = {m: compare(ft, [runs[m][str(s)].get("macro_f1", np.nan) for s in args.seeds])
                                  for m in args.methods if m != "finetune"}
    results["summary"] = summary
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    path = save_results(args.out, results)
    print(f"\nGoEmotions, {args.n_train} train / {args.n_dev} dev / {args.n_test} test, budget "
          f"{args.budget_minutes} min, seeds {args.seeds}")
    print(f"{'method':<20} {'macro-F1':>24} {'micro-F1':>24} {'fit s':>10} {'predict/s':>10} {'peak MB':>9}")
    for method in args.methods:
        ok = [runs[method][str(s)] for s in args.seeds if "error" not in runs[method][str(s)]]
        print(f"{method:<20} {fmt_mean_sd([r['macro_f1'] for r in ok]):>24} "
              f"{fmt_mean_sd([r['micro_f1'] for r in ok]):>24} {np.mean([r['fit_seconds'] for r in ok]):>10.1f} "
              f"{np.mean([r['predict_texts_per_s'] for r in ok]):>10.0f} {np.mean([r['peak_rss_mb'] for r in ok]):>9.0f}")
    if "finetune" in args.methods:
        for m in args.methods:
            if m != "finetune":
                a = [runs["finetune"][str(s)].get("macro_f1", np.nan) for s in args.seeds]
                b = [runs[m][str(s)].get("macro_f1", np.nan) for s in args.seeds]
                print(f"finetune vs {m}: {fmt_compare(a, b)}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
