"""Few labels with a fine-tuned body: SetFit-style contrastive fine-tuning of the bundled MiniLM
(``tagwise train --fine-tune``) + tagwise's few-shot head, against the same head on the plain MiniLM
and on USE, and SetFit 1.2 itself (run here, on the same draws, by bench_fewshot_setfit.run_setfit
with the budget of --setfit-budget; --setfit-budget off skips it).

Run by hand (torch extra; a few minutes per seed on 2 CPU cores):
    .venv/bin/python bench/bench_fewshot_finetune.py --datasets semeval2018 --shots 8 --seeds 0 1 2
Writes bench/results/fewshot_finetune.json.

Same protocol as bench_fewshot.py: seeded ``sample_k_per_label`` draws from the official train
split, macro-F1 on the official test split, thresholds from CV on the drawn rows only. The body is
fine-tuned on the drawn rows with SetFit's schedule (steps = min(100, ceil(2 * 5 * n / 16)),
batch 16, lr 2e-5, cosine-similarity loss). The head here is ``FewShotClassifier(use_prior=False)``
(the label-name prior would need the whole train split embedded by every fine-tuned body).
Training time = fine-tuning + embedding the drawn rows + the head fit.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _fewshot_data import load_dataset, macro_f1, sample_k_per_label  # noqa: E402
from common import save_results  # noqa: E402
from tagwise.encoders import get_encoder  # noqa: E402
from tagwise.learn.fewshot import FewShotClassifier  # noqa: E402
from tagwise.learn.finetune import finetune_encoder  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def head_f1(X, Y, X_test, Y_test, seed) -> tuple[float, float]:
    t0 = time.perf_counter()
    model = FewShotClassifier(use_prior=False, random_state=seed).fit(X, Y)
    return macro_f1(Y_test, model.predict(X_test)), time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["semeval2018"])
    ap.add_argument("--shots", nargs="+", type=int, default=[8])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default=str(RESULTS / "fewshot_finetune.json"))
    ap.add_argument("--setfit-budget", choices=["default", "capped", "off"], default="default",
                    help="SetFit in the same run: its documented defaults, the budget the fine-tuning here "
                         "mirrors (num_iterations=5, max_steps=100), or off; default: SetFit's documented "
                         "defaults (issue 29)")
    args = ap.parse_args()
    out_path = Path(args.out)
    results = {"runs": {}, "setfit_budget": args.setfit_budget}
    setfit_kw = None if args.setfit_budget == "off" else (
        {"num_iterations": None, "max_steps": None} if args.setfit_budget == "default"
        else {"num_iterations": 5, "max_steps": 100})
    plain = get_encoder("st:all-minilm-l6-v2")
    for name in args.datasets:
        names, data, _ = load_dataset(name)
        tr, te = data["train"], data["test"]
        E_test_plain = plain.encode(te.texts)
        for k in args.shots:
            for seed in args.seeds:
                key = f"{name}/{k}/{seed}"
                idx = sample_k_per_label(tr.Y, k, seed)
                texts, Y = [tr.texts[i] for i in idx], tr.Y[idx]
                row = {"n_train": int(len(idx))}
                row["use_head"] = dict(zip(("macro_f1", "train_seconds"), head_f1(tr.X[idx], Y, te.X, te.Y, seed)))
                t0 = time.perf_counter()
                E = plain.encode(texts)
                f1, sec = head_f1(E, Y, E_test_plain, te.Y, seed)
                row["minilm_head"] = {"macro_f1": f1, "train_seconds": time.perf_counter() - t0}
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    tuned = finetune_encoder(texts, Y, Path(tmp) / "tuned", seed=seed, progress=False)
                    enc = get_encoder(tuned["encoder"])
                    E = enc.encode(texts)
                    model = FewShotClassifier(use_prior=False, random_state=seed).fit(E, Y)
                    seconds = time.perf_counter() - t0
                    f1 = macro_f1(te.Y, model.predict(enc.encode(te.texts)))
                row["finetuned_minilm_head"] = {"macro_f1": f1, "train_seconds": seconds, "steps": tuned["steps"],
                                                "fine_tune_seconds": tuned["seconds"]}
                if setfit_kw is not None:
                    from bench_fewshot_setfit import run_setfit

                    sf = run_setfit(texts, Y, te.texts, te.Y, seed, **setfit_kw)
                    row["setfit"] = {v: sf[v] for v in ("setfit_default", "setfit_balanced", "setfit_cv_thresholds")}
                results["runs"][key] = row
                save_results(out_path, results)
                print(key, {m: (round(v["macro_f1"], 4), round(v["train_seconds"], 1))
                            for m, v in row.items() if isinstance(v, dict) and "macro_f1" in v},
                      {m: (round(v["macro_f1"], 4), round(v["train_seconds"], 1)) for m, v in row.get("setfit", {}).items()},
                      flush=True)
    # summary over seeds
    summary = {}
    for key, row in results["runs"].items():
        group = key.rsplit("/", 1)[0]
        for m in ("use_head", "minilm_head", "finetuned_minilm_head"):
            summary.setdefault(group, {}).setdefault(m, []).append(row[m]["macro_f1"])
        for m, v in row.get("setfit", {}).items():
            summary[group].setdefault(m, []).append(v["macro_f1"])
    results["summary"] = {g: {m: {"mean": round(float(np.mean(v)), 4), "sd": round(float(np.std(v, ddof=1)), 4) if len(v) > 1 else 0.0,
                                  "n": len(v)} for m, v in ms.items()} for g, ms in summary.items()}
    save_results(out_path, results)
    print(json.dumps(results["summary"], indent=1))


if __name__ == "__main__":
    main()
