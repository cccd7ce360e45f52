"""Loaders for the two multi-annotator datasets of bench_consensus.py (../shared/data, read-only).

Each returns a dict: texts (n,), split (n,) str, label_names (K,), ann (Annotations over all n
items), gold (n, K) {0,1} (the published aggregate where one exists, else the full-crowd strict
majority), annotator_names (A,).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tagwise.learn.consensus import Annotations, majority_vote

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def hs_brexit_votes(item: dict) -> np.ndarray:
    """One HS-Brexit item -> (3, 6) uint8 votes: rows hate_speech / aggressive / offensive, one column
    per annotator; the published "No" offensiveness strings count as 0."""
    other = item["other_info"]["other annotations"]
    cols = (item["annotations"], other["aggressive language detection"], other["offensive language detection"])
    return np.array([[1 if v.strip() == "1" else 0 for v in c.split(",")] for c in cols], dtype=np.uint8)


def load_hs_brexit() -> dict:
    """HS-Brexit: 6 annotators on every tweet, labels hate_speech / aggressive / offensive.

    Gold: the published ``hard_label`` (majority with random tie-breaks) for hate_speech; the
    strict 6-vote majority (ties negative) for the two labels without a published aggregate.
    The three ``No`` offensiveness strings (see the README) are read as 0."""
    texts, split, ex, an, Y, hard = [], [], [], [], [], []
    for part in ("train", "dev", "test"):
        data = json.loads((DATA / "hs_brexit" / f"HS-Brexit_{part}.json").read_text())
        for item in data.values():
            i = len(texts)
            texts.append(item["text"])
            split.append(part)
            votes = hs_brexit_votes(item)
            for a in range(6):
                ex.append(i)
                an.append(a)
                Y.append(list(votes[:, a]))
            hard.append(int(item["hard_label"]))
    ann = Annotations.from_arrays(np.array(ex), np.array(an), np.array(Y), n_annotators=6)
    gold = (majority_vote(ann, tie=0.0) > 0.5).astype(np.uint8)
    gold[:, 0] = hard
    return {"name": "hs_brexit", "texts": texts, "split": np.array(split), "ann": ann, "gold": gold,
            "label_names": ["hate_speech", "aggressive", "offensive"],
            "annotator_names": [f"Ann{a + 1}" for a in range(6)],
            # the dataset's "annotators group" field: Ann1-3 target group, Ann4-6 control group
            "annotator_groups": ["target", "target", "target", "control", "control", "control"]}


# ConvAbuse labels kept: abuse (severity -1/-2/-3) and the flags with at least 80 judgements in
# the corpus (racist 27, ableism 14, transphobic 4 judgements are too rare to score F1 on).
CONVABUSE_FLAGS = ["sex_harassment", "intellectual", "sexist", "homophobic", "target.system",
                   "target.individual", "explicit", "implicit"]


def _cell(value: str) -> list[int]:
    value = value.strip()
    if not value:
        return []
    return [int(float(v)) for v in value.split(",")]


def load_convabuse() -> dict:
    """ConvAbuse from the paper's wide split files (train / valid / test), labels ``abuse`` plus
    ``CONVABUSE_FLAGS``. Repeat judgements of one annotator on one item (list cells) are merged
    per label by their majority (``Annotations.merge_repeats``). Gold: the full-crowd strict
    majority (the release has no separate aggregate; the paper's labels are majority votes)."""
    texts, split, ex, an, Y = [], [], [], [], []
    for part, fname in (("train", "train"), ("dev", "valid"), ("test", "test")):
        with open(DATA / "convabuse" / "2_splits" / f"ConvAbuseEMNLP{fname}.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                i = len(texts)
                texts.append(row["user"])
                split.append(part)
                for a in range(8):
                    p = f"Annotator{a + 1}_"
                    sev = {lvl: _cell(row[p + f"is_abuse.{lvl}"]) for lvl in ("1", "0", "-1", "-2", "-3")}
                    r = len(sev["1"])
                    if r == 0:
                        continue
                    flags = [_cell(row[p + f]) for f in CONVABUSE_FLAGS]
                    for j in range(r):
                        abuse = int(any(sev[lvl][j] for lvl in ("-1", "-2", "-3")))
                        ex.append(i)
                        an.append(a)
                        Y.append([abuse] + [f[j] if j < len(f) else 0 for f in flags])
    ann = Annotations.merge_repeats(np.array(ex), np.array(an), np.array(Y), n_examples=len(texts),
                                    n_annotators=8)
    gold = (majority_vote(ann, tie=0.0) > 0.5).astype(np.uint8)
    return {"name": "convabuse", "texts": texts, "split": np.array(split), "ann": ann, "gold": gold,
            "label_names": ["abuse"] + CONVABUSE_FLAGS, "annotator_names": [f"Annotator{a + 1}" for a in range(8)]}


LOADERS = {"hs_brexit": load_hs_brexit, "convabuse": load_convabuse}
