"""Which examples most need one more annotation (the ActiveLab idea, for multi-label consensus).

For each (example, label) cell with consensus probability ``q``, picture one more vote from a
typical annotator of that label (sensitivity ``s_k``, specificity ``t_k``: the crowd's pooled
rates, or any annotator's). Bayes' rule gives the posterior after a 1-vote and after a 0-vote;
the score is the expected drop in the probability that the consensus decision is wrong:

    err(q) = min(q, 1 - q)
    gain   = err(q) - [P(vote 1) err(q | 1) + P(vote 0) err(q | 0)]

Because the expected posterior equals ``q``, the gain is zero unless one of the two possible
votes flips the decision: it is exactly "low confidence where another vote would change the
decision". An example scores the sum of its cells' gains. Unannotated examples use the
classifier's probability as ``q``, so new and already-labeled examples rank on one scale and can
be mixed in one batch.
"""
from __future__ import annotations

import numpy as np

from ..types import TagwiseError


def expected_error_reduction(proba: np.ndarray, sensitivity: np.ndarray, specificity: np.ndarray,
                             threshold: float | np.ndarray = 0.5) -> np.ndarray:
    """(n, K) expected drop in decision error from one more vote per cell.

    proba: (n, K) consensus probabilities. sensitivity, specificity: (K,) rates of the next
    annotator on each label. threshold: decision threshold, scalar or (K,). The error of a
    cell is the probability mass on the losing side of the threshold."""
    q = np.asarray(proba, dtype=np.float64)
    if q.ndim != 2:
        raise TagwiseError(f"relabel: proba must be (n, K); got {q.shape}")
    s = np.clip(np.broadcast_to(np.asarray(sensitivity, float), (q.shape[1],)), 1e-6, 1 - 1e-6)
    t = np.clip(np.broadcast_to(np.asarray(specificity, float), (q.shape[1],)), 1e-6, 1 - 1e-6)
    thr = np.broadcast_to(np.asarray(threshold, float), (q.shape[1],))

    def err(p):
        return np.where(p >= thr, 1 - p, p)

    p1 = q * s + (1 - q) * (1 - t)                 # P(next vote is 1)
    q1 = q * s / np.maximum(p1, 1e-12)
    q0 = q * (1 - s) / np.maximum(1 - p1, 1e-12)
    return np.maximum(err(q) - (p1 * err(q1) + (1 - p1) * err(q0)), 0.0)


def relabel_scores(proba: np.ndarray, sensitivity: np.ndarray, specificity: np.ndarray,
                   threshold: float | np.ndarray = 0.5) -> np.ndarray:
    """(n,) how much one more annotation of each example is expected to fix (higher first)."""
    return expected_error_reduction(proba, sensitivity, specificity, threshold).sum(1)


def pooled_rates(sensitivity: np.ndarray, specificity: np.ndarray, weights: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(K,), (K,): the crowd's typical next annotator, the (weighted) mean over annotators of
    (A, K) rates; ``weights`` (A,) e.g. how many examples each annotator judges."""
    w = np.ones(len(sensitivity)) if weights is None else np.asarray(weights, float)
    w = w / max(w.sum(), 1e-12)
    return w @ np.asarray(sensitivity), w @ np.asarray(specificity)


def suggest_relabel(proba: np.ndarray, sensitivity: np.ndarray, specificity: np.ndarray, budget: int,
                    exclude: np.ndarray | None = None, threshold: float | np.ndarray = 0.5) -> np.ndarray:
    """Indices of the ``budget`` examples to send for one more annotation, best first.

    ``exclude``: (n,) bool, examples that cannot get another vote (e.g. every annotator already
    judged them)."""
    score = relabel_scores(proba, sensitivity, specificity, threshold)
    if exclude is not None:
        score = np.where(np.asarray(exclude, bool), -np.inf, score)
    order = np.argsort(-score, kind="stable")
    order = order[np.isfinite(score[order])]
    return order[:budget]
