"""Label audit against real human disagreement and planted noise rates (slices of ../shared/data, USE)."""
from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest

from tagwise.audit import audit_arrays
from tagwise.audit.noise import inject_noise
from tagwise.encoders import embed_texts, get_encoder

from hs_brexit import LABELS, hs_brexit_votes

CONVABUSE_COLUMNS = {"abusive": ("is_abuse.-1", "is_abuse.-2", "is_abuse.-3"), "explicit": ("direction.explicit",),
                     "implicit": ("direction.implicit",), "sex_harassment": ("type.sex_harassment",),
                     "intellectual": ("type.intellectual",), "sexist": ("type.sexist",)}


def _auroc(truth: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata
    r = rankdata(score)
    pos = truth.astype(bool)
    return float((r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


@pytest.fixture(scope="module")
def ag_news(data_dir, use_cache):
    """1,500 AG News headlines + descriptions, 4 single-label topics, USE embeddings."""
    with open(data_dir / "ag_news" / "test.csv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and r[0].isdigit()]
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(rows), 1500, replace=False))
    texts = [f"{rows[i][1]}. {rows[i][2]}" for i in idx]
    Y = np.zeros((len(idx), 4), dtype=np.uint8)
    Y[np.arange(len(idx)), [int(rows[i][0]) - 1 for i in idx]] = 1
    X, _ = embed_texts(texts, get_encoder("use"), use_cache, progress=False)
    return X, Y


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_error_estimate_tracks_planted_rate(ag_news, rate):
    X, Y = ag_news
    noisy, changed = inject_noise(Y, "uniform", rate, seed=1)
    res = audit_arrays(X, noisy, progress=False)
    true_errors = int(changed.any(1).sum())
    assert abs(res.estimated_errors - true_errors) <= 0.3 * true_errors, (res.estimated_errors, true_errors)
    # the flagged set is the estimate's worth of the lowest-quality rows, and --max-flags caps it
    assert res.flagged_rows.sum() == res.flag_budget == round(res.estimated_errors)
    assert res.flagged_rows.sum() <= 1.5 * true_errors
    capped = audit_arrays(X, noisy, progress=False, max_flags=10)
    assert capped.flagged_rows.sum() == 10 and capped.issues.is_issue.sum() == 10
    assert set(np.flatnonzero(capped.flagged_rows)) <= set(np.flatnonzero(res.flagged_rows))


@pytest.fixture(scope="module")
def convabuse_annotator(data_dir, use_cache):
    """Annotator3's ConvAbuse judgements on items that at least two others judged: given labels
    (theirs, first judgement) and truth (the others' majority; a tie keeps the given value)."""
    judgements = defaultdict(lambda: defaultdict(list))  # item -> annotator -> label vectors
    text_of = {}
    with open(data_dir / "convabuse" / "1_full" / "ConvAbuseEMNLPfull.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["conv_id"], row["prev_agent"], row["prev_user"], row["agent"], row["user"])
            vec = [max(float(row[c]) for c in cols) for cols in CONVABUSE_COLUMNS.values()]
            judgements[key][row["annotator_id"]].append(vec)
            text_of[key] = row["user"]
    me = "Annotator3"
    keys = [k for k, by in judgements.items() if me in by and len(by) >= 3]
    Y = np.array([judgements[k][me][0] for k in keys], dtype=np.uint8)
    others = np.array([np.mean([np.mean(v, axis=0) for a, v in judgements[k].items() if a != me], axis=0)
                       for k in keys])
    truth = np.where(others > 0.5, 1, np.where(others < 0.5, 0, Y))
    texts = [text_of[k] for k in keys]
    X, _ = embed_texts(texts, get_encoder("use"), use_cache, progress=False)
    return texts, X, Y, truth != Y


def test_real_disagreements_rank_above_agreements(convabuse_annotator):
    texts, X, Y, errors = convabuse_annotator
    assert len(Y) > 1000 and 40 < errors.any(1).sum() < 300
    res = audit_arrays(X, Y, texts=texts, progress=False)
    assert _auroc(errors.any(1), -res.label_quality) > 0.6
    # the flagged set is reviewable: no more than 1.5x the real disagreements
    assert res.flagged_rows.sum() <= 1.5 * errors.any(1).sum()
    # "abusive" is implied by every abuse type and one slip moves several cells: the audit sees
    # both in the data and ranks with the per-label view only
    assert res.choices["dependency_echo"] >= 0.5 and res.choices["surprise_coupling"] >= 0.5
    assert res.choices["views"] == "plain"


@pytest.fixture(scope="module")
def hs_brexit_annotator(data_dir, use_cache):
    """HS-Brexit's 1,120 tweets: annotator 4's hate speech / aggressive / offensive labels (given)
    and the majority of the other five (truth, never tied)."""
    import json
    items = []
    for split in ("train", "dev", "test"):
        items += json.loads((data_dir / "hs_brexit" / f"HS-Brexit_{split}.json").read_text()).values()
    votes = [hs_brexit_votes(it) for it in items]
    A = np.array([[v[k] for k in LABELS] for v in votes], dtype=np.uint8)  # (n, 3 labels, 6 annotators)
    me = 3
    Y = A[:, :, me]
    truth = (np.delete(A, me, axis=2).mean(2) > 0.5).astype(np.uint8)
    texts = [it["text"] for it in items]
    X, _ = embed_texts(texts, get_encoder("use"), use_cache, progress=False)
    return texts, X, Y, truth != Y


def test_multi_label_estimate_tracks_real_disagreements(hs_brexit_annotator):
    texts, X, Y, errors = hs_brexit_annotator
    true_errors = int(errors.any(1).sum())
    assert 250 < true_errors < 450
    res = audit_arrays(X, Y, texts=texts, progress=False)
    assert abs(res.estimated_errors - true_errors) <= 0.3 * true_errors, (res.estimated_errors, true_errors)
    assert res.flagged_rows.sum() <= 1.5 * true_errors
    assert _auroc(errors.any(1), -res.label_quality) > 0.7
    # the three labels do not echo each other: the label-dependency view joins the ranking
    assert res.choices["views"] == "worst"
