"""Which examples most need one more annotation (the ActiveLab idea, for multi-label consensus).

For each (example, label) cell with consensus probability ``q``, picture one more vote from a
typical annotator of that label (sensitivity ``s_k``, specificity ``t_k``: the crowd's pooled
rates, or any annotator's). Bayes' rule gives the posterior after a 1-vote and after a 0-vote;
the score is the expected drop in the probability that the consensus decision is wrong:

    err(q) = min(q, 1 - q)
    gain   = err(q) - [P(vote 1) err(q | 1) + P(vote 0) err(q | 0)]

Because the expected posterior equals ``q``, the gain is zero unless one of the two possible
votes flips the decision: it is exactly "low confidence where another vote would change the
decision". That one-vote rule is myopic: a cell whose decision no single vote can flip but two
can (one vote under a strong prior) scores zero, so the score looks ``horizon`` votes ahead
(``DEFAULT_HORIZON``) and keeps the best expected error drop *per vote* over 1..horizon votes
(never more votes than ``votes_left`` where the caller knows who is left). An example scores the
sum of its cells' gains, each label weighted by the inverse of its positive rate
(``macro_label_weights``: an error on a rare label costs more macro-F1, where every label counts
the same). Unannotated examples use the classifier's probability as ``q``, so new and
already-labeled examples rank on one scale and can be mixed in one batch.
"""
from __future__ import annotations

from math import comb

import numpy as np
import scipy.sparse as sp

from ..types import TagwiseError

# The relabel rule's defaults: look-ahead ``DEFAULT_HORIZON`` votes, the crowd's pooled rates for
# the next vote, labels weighted by ``macro_label_weights``. Chosen together by bench_consensus.py
# --part relabel_choose: relabel rounds from one real vote per example on HS-Brexit and ConvAbuse,
# seeds 100-102, scored by the consensus macro-F1 on the *train* items (never the report seeds or
# the test items), mean over rounds and both datasets, over horizons 1-3 x {pooled rates, rates of
# the annotators who have not judged the example (``next_annotator_rates``), pooled rates with the
# macro weights}: horizon 2 with the macro weights was best (horizon 3 next); the next
# annotator's rates never helped.
DEFAULT_HORIZON = 2


def expected_error_reduction(proba: np.ndarray, sensitivity: np.ndarray, specificity: np.ndarray,
                             threshold: float | np.ndarray = 0.5, horizon: int = DEFAULT_HORIZON,
                             votes_left: np.ndarray | None = None) -> np.ndarray:
    """(n, K) expected drop in decision error per extra vote, from the best look-ahead of
    1..``horizon`` more votes per cell.

    proba: (n, K) consensus probabilities. sensitivity, specificity: (K,) rates of the next
    annotators on each label, or (n, K) per example (``next_annotator_rates``). threshold:
    decision threshold, scalar or (K,). The error of a cell is the probability mass on the losing
    side of the threshold.
    horizon: with ``h`` more votes of those rates the posterior depends on how many of them say 1
    (binomial); the gain per vote is ``(err(q) - E[err after h votes]) / h`` and a cell scores the
    best such rate for ``h = 1..horizon``. ``horizon=1`` is the one-vote rule; a longer look-ahead
    also ranks cells that no single vote can flip but two or three can (a cell with one vote
    under a strong prior), which the one-vote rule ties at zero.
    votes_left: (n,) int or None, how many more annotators can still judge each example (e.g.
    the annotators who have not judged it yet); the look-ahead never goes beyond it."""
    q = np.asarray(proba, dtype=np.float64)
    if q.ndim != 2:
        raise TagwiseError(f"relabel: proba must be (n, K); got {q.shape}")
    if int(horizon) < 1:
        raise TagwiseError(f"relabel: horizon must be a positive number of votes; got {horizon}")
    try:
        s = np.clip(np.broadcast_to(np.asarray(sensitivity, float), q.shape), 1e-6, 1 - 1e-6)
        t = np.clip(np.broadcast_to(np.asarray(specificity, float), q.shape), 1e-6, 1 - 1e-6)
    except ValueError:
        raise TagwiseError(f"relabel: sensitivity / specificity must be (K,) or (n, K) = {q.shape}; got "
                           f"{np.shape(sensitivity)} and {np.shape(specificity)}") from None
    thr = np.broadcast_to(np.asarray(threshold, float), (q.shape[1],))

    def err(p):
        return np.where(p >= thr, 1 - p, p)

    now = err(q)
    best = np.zeros_like(q)
    left = None if votes_left is None else np.asarray(votes_left, float).reshape(-1, 1)
    for h in range(1, int(horizon) + 1):
        after = np.zeros_like(q)
        for j in range(h + 1):                         # j of the h new votes say 1
            like1 = comb(h, j) * s ** j * (1 - s) ** (h - j)          # P(j | label applies)
            like0 = comb(h, j) * (1 - t) ** j * t ** (h - j)          # P(j | it does not)
            pj = q * like1 + (1 - q) * like0
            after += pj * err(q * like1 / np.maximum(pj, 1e-300))
        rate = np.maximum(now - after, 0.0) / h
        if left is not None:
            rate = np.where(left >= h, rate, 0.0)
        best = np.maximum(best, rate)
    return best


def macro_label_weights(positive_rate: np.ndarray, n_examples: int) -> np.ndarray:
    """(K,) weight of each label's errors: the inverse of its positive rate (floored at one example
    in ``n_examples``), scaled to mean 1. A wrong cell on a label with few positives moves that
    label's F1 more, and macro-F1 averages labels with equal weight.

    positive_rate: (K,) e.g. the mean consensus probability of each label."""
    rate = np.clip(np.asarray(positive_rate, float), 1.0 / max(int(n_examples), 1), 1.0)
    w = 1.0 / rate
    return w / w.mean() if w.size else w


def relabel_scores(proba: np.ndarray, sensitivity: np.ndarray, specificity: np.ndarray,
                   threshold: float | np.ndarray = 0.5, horizon: int = DEFAULT_HORIZON,
                   votes_left: np.ndarray | None = None, label_weights: np.ndarray | None = None
                   ) -> np.ndarray:
    """(n,) how much one more annotation of each example is expected to fix (higher first): the
    sum over labels of ``expected_error_reduction`` times ``label_weights`` (K,) (None: every
    label 1, the expected number of wrong cells; ``macro_label_weights`` is what
    ``suggest_relabel`` and ``tagwise suggest --relabel`` use)."""
    gain = expected_error_reduction(proba, sensitivity, specificity, threshold, horizon, votes_left)
    if label_weights is None:
        return gain.sum(1)
    w = np.asarray(label_weights, float)
    if w.shape != (gain.shape[1],):
        raise TagwiseError(f"relabel: label_weights must be (K,) = ({gain.shape[1]},); got {w.shape}")
    return gain @ w


def pooled_rates(sensitivity: np.ndarray, specificity: np.ndarray, weights: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(K,), (K,): the crowd's typical next annotator, the (weighted) mean over annotators of
    (A, K) rates; ``weights`` (A,) e.g. how many examples each annotator judges."""
    w = np.ones(len(sensitivity)) if weights is None else np.asarray(weights, float)
    w = w / max(w.sum(), 1e-12)
    return w @ np.asarray(sensitivity), w @ np.asarray(specificity)


def next_annotator_rates(example: np.ndarray, annotator: np.ndarray, n_examples: int,
                         sensitivity: np.ndarray, specificity: np.ndarray,
                         weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Who would give the next vote on each example: one of the annotators who have not judged it
    yet, drawn in proportion to ``weights`` (A,) (e.g. how many examples each judges).

    example, annotator: (m,) int, the judgements so far. sensitivity, specificity: (A, K).
    -> (s, t, votes_left): (n, K) rates of that mixture per example (one vote of a random such
    annotator says 1 with probability ``q s + (1 - q)(1 - t)``) and (n,) how many annotators have
    not judged each example. An example every annotator judged gets the crowd's pooled rates and
    ``votes_left`` 0. Where the crowd splits into groups with different habits (stricter and
    laxer raters), this is what one more vote on that example can actually say."""
    sens, spec = np.asarray(sensitivity, float), np.asarray(specificity, float)
    A = sens.shape[0]
    w = np.ones(A) if weights is None else np.asarray(weights, float)
    pairs = np.unique(np.asarray(example, np.int64) * A + np.asarray(annotator, np.int64))
    # sparse (n, A) 0/1: who judged what; the free annotators' sums are the crowd's minus these
    judged = sp.csr_matrix((np.ones(len(pairs)), (pairs // A, pairs % A)), shape=(n_examples, A))
    total = w.sum() - judged @ w                                # (n,) weight of the possible next annotators
    free_s = (w @ sens)[None, :] - judged @ (w[:, None] * sens)
    free_t = (w @ spec)[None, :] - judged @ (w[:, None] * spec)
    s_pool, t_pool = pooled_rates(sens, spec, w)
    some = (total > 1e-12)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(some, free_s / total[:, None], s_pool)
        t = np.where(some, free_t / total[:, None], t_pool)
    return s, t, A - np.bincount(pairs // A, minlength=n_examples)


def suggest_relabel(proba: np.ndarray, sensitivity: np.ndarray, specificity: np.ndarray, budget: int,
                    exclude: np.ndarray | None = None, threshold: float | np.ndarray = 0.5,
                    horizon: int = DEFAULT_HORIZON, votes_left: np.ndarray | None = None,
                    label_weights: np.ndarray | str | None = "macro", seed: int = 0) -> np.ndarray:
    """Indices of the ``budget`` examples to send for one more annotation, best first.

    ``exclude``: (n,) bool, examples that cannot get another vote (e.g. every annotator already
    judged them). ``label_weights``: (K,), None (equal) or ``"macro"`` (``macro_label_weights``
    of the mean of ``proba``). ``seed``: the order of tied scores (``rank_by_score``)."""
    if isinstance(label_weights, str):
        if label_weights != "macro":
            raise TagwiseError(f"relabel: label_weights must be 'macro', None or (K,) weights; got {label_weights!r}")
        q = np.asarray(proba, float)
        label_weights = macro_label_weights(q.mean(0), q.shape[0])
    score = relabel_scores(proba, sensitivity, specificity, threshold, horizon, votes_left, label_weights)
    if exclude is not None:
        score = np.where(np.asarray(exclude, bool), -np.inf, score)
    order = rank_by_score(score, seed)
    order = order[np.isfinite(score[order])]
    return order[:budget]


def rank_by_score(score: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n,) indices by descending ``score``, exact ties in a seeded random order. Examples with
    the same votes from the same annotators get the same consensus and so the same score (with one
    vote each there are only a few dozen distinct scores); ranking ties by position would send the
    whole budget to the first rows of the store (one source, one split)."""
    score = np.asarray(score, float)
    jitter = np.random.default_rng(seed).random(len(score))
    # scores equal up to float noise count as ties
    key = np.where(np.isfinite(score), np.round(score, 12), score)
    return np.lexsort((jitter, -key))
