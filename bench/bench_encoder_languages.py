"""Encoders on languages the default one (USE, 16 languages) does not cover: is ``e5`` (multilingual-e5-small,
~100 languages) the one to recommend? Per language, the first N rows of XED's annotated file, 5-fold
cross-validated macro-F1 of a class-balanced one-vs-rest logistic regression on each encoder's vectors, cut at
0.5. Nothing here was tuned: C=1 and threshold 0.5 for every encoder.

    python bench/bench_encoder_languages.py [--rows 1500] [--encoders hashing,use,e5]

Writes bench/results/encoder_languages.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier

from common import BENCH, CACHE, RESULTS, save_results
from tagwise.encoders import embed_texts, get_encoder
from tagwise.sources import ingest, parse_spec

DATA = BENCH.parent.parent / "shared" / "data"
PLUTCHIK = ["anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--encoders", default="hashing,use,e5")
    args = ap.parse_args()
    spec = {"name": "xed_fi", "path": str(DATA / "xed" / "fi-annotated.tsv"), "format": "tsv", "header": False,
            "quoting": "none", "limit": args.rows, "columns": {"text": 0, "labels": 1}, "language": "fi",
            "labels": {"names": PLUTCHIK, "id_base": 1}}
    rows = ingest(parse_spec(spec, Path("xed_fi.yaml")))
    names = sorted({n for labels in rows.labels for n in labels})
    Y = np.array([[n in labels for n in names] for labels in rows.labels], dtype=np.uint8)
    out = {"data": f"XED fi-annotated.tsv, first {len(rows)} rows", "labels": names, "folds": 5, "results": {}}
    for name in args.encoders.split(","):
        t0 = time.perf_counter()
        X, _ = embed_texts(rows.texts, get_encoder(name), CACHE, progress=True)
        P = np.zeros(Y.shape)
        for tr, te in KFold(5, shuffle=True, random_state=0).split(X):
            clf = OneVsRestClassifier(LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced"))
            P[te] = clf.fit(X[tr], Y[tr]).predict_proba(X[te])
        macro = float(f1_score(Y, P >= 0.5, average="macro", zero_division=0))
        out["results"][name] = {"macro_f1": round(macro, 4), "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{name}: macro-F1 {macro:.3f}")
    RESULTS.mkdir(exist_ok=True)
    save_results("encoder_languages", out)  # whole, with the command that wrote it


if __name__ == "__main__":
    main()
