"""Label audit against real human disagreement and planted noise rates (slices of ../shared/data, USE).

Properties, not tuned outcomes (issue 29): the error estimate rises with the planted noise; real
disagreements rank above agreements by more than chance allows, for every annotator with enough of
them, not one hand-picked; the flagged set stays reviewable. Which internal view the audit picks on
a dataset is not asserted: that rule was designed on these very datasets.
"""
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


def _chance_margin(truth: np.ndarray, sds: float = 4.0) -> float:
    """AUROC a random ranking exceeds with probability ~3e-5: 0.5 + sds x its null sd."""
    n_pos, n_neg = int(truth.sum()), int((~truth.astype(bool)).sum())
    return 0.5 + sds * np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))


def test_error_estimate_rises_with_the_planted_noise(ag_news):
    X, Y = ag_news
    estimates, truths = [], []
    for rate in (0.02, 0.05, 0.1, 0.2):
        noisy, changed = inject_noise(Y, "uniform", rate, seed=1)
        res = audit_arrays(X, noisy, progress=False)
        estimates.append(res.estimated_errors)
        truths.append(int(changed.any(1).sum()))
        # the flagged set is the estimate's worth of the lowest-quality rows
        assert res.flagged_rows.sum() == res.flag_budget == round(res.estimated_errors)
        # and it holds far more planted errors than a random set of its size would
        hit = changed.any(1)[res.flagged_rows].mean()
        assert hit > 2 * changed.any(1).mean(), (rate, hit)
    assert np.all(np.diff(truths) > 0)
    assert np.all(np.diff(estimates) > 0), estimates
    # ... and not by a constant: four times the planted errors is at least twice the estimate
    assert estimates[-1] > 2 * estimates[1], estimates


def test_max_flags_caps_the_flagged_set_to_the_worst_rows(ag_news):
    X, Y = ag_news
    noisy, _ = inject_noise(Y, "uniform", 0.1, seed=2)
    res = audit_arrays(X, noisy, progress=False)
    capped = audit_arrays(X, noisy, progress=False, max_flags=10)
    assert capped.flagged_rows.sum() == 10 and capped.issues.is_issue.sum() == 10
    assert set(np.flatnonzero(capped.flagged_rows)) <= set(np.flatnonzero(res.flagged_rows))


@pytest.fixture(scope="module")
def convabuse_annotators(data_dir, use_cache):
    """For each ConvAbuse annotator: their judgements on items that at least two others judged,
    given labels (theirs, first judgement) and truth (the others' majority; a tie keeps the given
    value). -> {annotator: (texts, X, Y, errors)}"""
    judgements = defaultdict(lambda: defaultdict(list))  # item -> annotator -> label vectors
    text_of = {}
    with open(data_dir / "convabuse" / "1_full" / "ConvAbuseEMNLPfull.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = (row["conv_id"], row["prev_agent"], row["prev_user"], row["agent"], row["user"])
            vec = [max(float(row[c]) for c in cols) for cols in CONVABUSE_COLUMNS.values()]
            judgements[key][row["annotator_id"]].append(vec)
            text_of[key] = row["user"]
    out = {}
    for me in sorted({a for by in judgements.values() for a in by}):
        keys = [k for k, by in judgements.items() if me in by and len(by) >= 3]
        if len(keys) < 500:
            continue
        Y = np.array([judgements[k][me][0] for k in keys], dtype=np.uint8)
        others = np.array([np.mean([np.mean(v, axis=0) for a, v in judgements[k].items() if a != me], axis=0)
                           for k in keys])
        truth = np.where(others > 0.5, 1, np.where(others < 0.5, 0, Y))
        if (truth != Y).any(1).sum() < 30:
            continue  # too few disagreements to rank
        texts = [text_of[k] for k in keys]
        X, _ = embed_texts(texts, get_encoder("use"), use_cache, progress=False)
        out[me] = (texts, X, Y, truth != Y)
    return out


def test_real_disagreements_rank_above_agreements_for_every_annotator(convabuse_annotators):
    assert len(convabuse_annotators) >= 3
    for me, (texts, X, Y, errors) in convabuse_annotators.items():
        wrong = errors.any(1)
        res = audit_arrays(X, Y, texts=texts, progress=False)
        auroc = _auroc(wrong, -res.label_quality)
        assert auroc > _chance_margin(wrong), (me, auroc, int(wrong.sum()), len(wrong))
        # the flagged set is reviewable: never a large share of rows nobody disputes
        assert res.flagged_rows.sum() <= max(2 * wrong.sum(), 0.1 * len(wrong)), (me, int(res.flagged_rows.sum()))


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


def test_multi_label_audit_ranks_real_disagreements_and_its_estimate_rises_with_added_noise(hs_brexit_annotator):
    texts, X, Y, errors = hs_brexit_annotator
    wrong = errors.any(1)
    res = audit_arrays(X, Y, texts=texts, progress=False)
    assert _auroc(wrong, -res.label_quality) > _chance_margin(wrong)
    # planted noise on top of the annotator's own slips: more noise, a larger estimate
    estimates = [res.estimated_errors]
    rng = np.random.default_rng(3)
    order = rng.permutation(len(Y))
    for rate in (0.05, 0.15):  # nested: the 15% rows include the 5% ones; one random cell flipped per row
        noisy = Y.copy()
        for i in order[: int(rate * len(Y))]:
            k = (i * 7 + 3) % Y.shape[1]
            noisy[i, k] = 1 - noisy[i, k]
        estimates.append(audit_arrays(X, noisy, texts=texts, progress=False).estimated_errors)
    assert np.all(np.diff(estimates) > 0), estimates
