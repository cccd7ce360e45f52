"""Zero-shot with sub-labels (CHiLS): does describing a label by finer names help, and does "auto" know when?

Run by hand:
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_chils.py   (--seeds 0 1 2 3 4 5 6 7 --shots 8)
Writes bench/results/chils.json.

Two real cases, USE embeddings, test split, corpus = the unlabeled train texts:
- GoEmotions as Ekman's six emotions (the coarse labels the dataset ships in ekman_mapping.json; a
  text is positive for a coarse label when it has any of its fine labels). Sub-labels: the fine
  GoEmotions names under each (anger: annoyance, disapproval; joy: amusement, approval, ... 11
  more) -- the hierarchy case CHiLS was made for.
- SemEval-2018 E-c, 11 emotions. Sub-labels: the milder and stronger names of Plutchik's wheel for
  its eight basic emotions (anger: annoyance, rage; trust: acceptance, admiration; ...), none for
  love / optimism / pessimism -- finer names written without looking at the data, which may or
  may not be the words tweets use.
Rows: plain label prompts (expand=False); sub-labels always (expand=True); and, with ``--shots``
labeled examples per label (``sample_k_per_label``, seeded), the per-label cuts recalibrated on them
for plain and for expand="auto" (the same examples choose, label by label, plain or expanded by
ROC AUC), and the few-shot head on them with either zero-shot prior. Metrics: macro-F1
and macro average precision (ranking alone, no cut).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

from _fewshot_data import CACHE, load_dataset, macro_f1, sample_k_per_label  # noqa: E402
from common import BENCH, peak_rss_mb, save_results  # noqa: E402
from tagwise.encoders import embed_texts  # noqa: E402
from tagwise.learn.fewshot import FewShotClassifier  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402

GOEMOTIONS = BENCH.parent.parent / "shared" / "data" / "goemotions"
# Plutchik (1980): each basic emotion between its milder and its stronger form
PLUTCHIK = {"anger": ["annoyance", "rage"], "anticipation": ["interest", "vigilance"],
            "disgust": ["boredom", "loathing"], "fear": ["apprehension", "terror"],
            "joy": ["serenity", "ecstasy"], "sadness": ["pensiveness", "grief"],
            "surprise": ["distraction", "amazement"], "trust": ["acceptance", "admiration"]}


def task(name):
    """-> (label names, sub_labels, train X, train Y, test X, test Y, embed)."""
    if name == "goemotions-ekman":
        fine, data, enc = load_dataset("goemotions")
        mapping = json.loads((GOEMOTIONS / "ekman_mapping.json").read_text())
        names = list(mapping)
        col = {n: i for i, n in enumerate(fine)}

        def coarse(Y):
            return np.stack([Y[:, [col[f] for f in mapping[c]]].max(1) for c in names], 1).astype(np.uint8)

        subs = {c: [f for f in mapping[c] if f != c] for c in names}
        tr, te = data["train"], data["test"]
        Ytr, Yte = coarse(tr.Y), coarse(te.Y)
    else:
        names, data, enc = load_dataset(name)
        subs = {k: v for k, v in PLUTCHIK.items() if k in names}
        tr, te = data["train"], data["test"]
        Ytr, Yte = tr.Y, te.Y
    subs = {k: v for k, v in subs.items() if v}

    def embed(texts):
        return embed_texts(list(texts), enc, CACHE, progress=False)[0]

    return names, subs, tr.X, Ytr, te.X, Yte, embed


def scores(Y, model, X):
    S = model.decision_function(X)
    ap = float(np.mean([average_precision_score(Y[:, k], S[:, k]) for k in range(Y.shape[1])]))
    return {"macro_f1": macro_f1(Y, model.predict(X)), "macro_ap": ap}


def run(name, seeds, shots):
    names, subs, X, Y, Xt, Yt, embed = task(name)
    out = {"labels": names, "sub_labels": subs}
    t0 = time.perf_counter()
    plain = fit_zero_shot(names, X, embed, expand=False)
    out["seconds_plain"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    expanded = fit_zero_shot(names, X, embed, sub_labels=subs, expand=True)
    out["seconds_expanded"] = time.perf_counter() - t0
    out["zero_shot_plain"] = scores(Yt, plain, Xt)
    out["zero_shot_sub_labels"] = scores(Yt, expanded, Xt)
    rows = {"calibrated_plain": [], "calibrated_auto": [], "head_plain_prior": [], "head_auto_prior": [],
            "labels_expanded_by_auto": []}
    for seed in seeds:
        idx = sample_k_per_label(Y, shots, seed)
        # copies of the fitted models: calibrate() changes cuts (and, with "auto", which labels expand)
        zp = copy.deepcopy(plain).calibrate(X[idx], Y[idx])
        za = copy.deepcopy(expanded).set_params(expand="auto").calibrate(X[idx], Y[idx])
        rows["calibrated_plain"].append(scores(Yt, zp, Xt))
        rows["calibrated_auto"].append(scores(Yt, za, Xt))
        rows["labels_expanded_by_auto"].append([n for n, e in zip(names, za.expanded_) if e])
        for key, zs in (("head_plain_prior", zp), ("head_auto_prior", za)):
            head = FewShotClassifier(random_state=seed).fit(X[idx], Y[idx], zeroshot=zs, X_corpus=X)
            rows[key].append(scores(Yt, head, Xt))
    for key, vals in rows.items():
        if key == "labels_expanded_by_auto":
            out[key] = vals
            continue
        f1s = [v["macro_f1"] for v in vals]
        out[f"{key}_{shots}"] = {"macro_f1": float(np.mean(f1s)), "macro_ap": float(np.mean([v["macro_ap"] for v in vals])),
                                 "sd_macro_f1": float(np.std(f1s, ddof=1)) if len(f1s) > 1 else 0.0}
    print(f"{name}: zero-shot macro-F1 plain {out['zero_shot_plain']['macro_f1']:.3f} (mAP "
          f"{out['zero_shot_plain']['macro_ap']:.3f}) | sub-labels {out['zero_shot_sub_labels']['macro_f1']:.3f} (mAP "
          f"{out['zero_shot_sub_labels']['macro_ap']:.3f}) | {shots}/label, cuts recalibrated: plain "
          f"{out[f'calibrated_plain_{shots}']['macro_f1']:.3f}, auto {out[f'calibrated_auto_{shots}']['macro_f1']:.3f} "
          f"| few-shot head: plain prior {out[f'head_plain_prior_{shots}']['macro_f1']:.3f}, auto prior "
          f"{out[f'head_auto_prior_{shots}']['macro_f1']:.3f} | auto expanded {out['labels_expanded_by_auto']}",
          flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["goemotions-ekman", "semeval2018"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(8)))
    ap.add_argument("--shots", type=int, default=8)
    args = ap.parse_args()
    results = {"protocol": __doc__.split("Two real cases", 1)[1].strip()}
    for name in args.datasets:
        results[name] = run(name, args.seeds, args.shots)
    results["peak_rss_mb"] = peak_rss_mb()
    save_results("chils", results)


if __name__ == "__main__":
    main()
