"""Active learning: which unlabeled examples to label next (pure functions over arrays).

Three regimes, picked by what is known:

- **cold start** (no labeled example / no model): cover the pool. k-means with ``budget`` centres over
  the embeddings, then the real example nearest each centre: dense regions get one representative
  each, outliers are not over-sampled (unlike farthest-point sampling).
- **warm**: score each pool example by how uncertain the current model is about it, per label
  (closeness of the probability to that label's threshold), weighting labels by rarity among the
  labeled examples (a label with 2 positives matters more than one with 200), plus a *rare-label*
  bonus for likely positives of labels that still have few positives (finding them is what moves
  macro-F1). The best ``candidate_factor * budget`` candidates are clustered into ``budget`` groups
  and the top-scoring example of each group is taken (uncertainty x diversity: no batch of 50
  near-duplicates of one confusing case).
- **relabel**: labeled examples whose given labels the model strongly disagrees with
  (low self-confidence of the given label set), for a second look.

Shapes: X_pool (n, d) float32 L2-normalised; proba (n, K); thresholds (K,); Y_labeled (m, K).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import TagwiseError

REASONS = ("cold-start", "uncertain", "diverse", "rare-label", "relabel")


@dataclass
class Selection:
    """Chosen rows of the pool, best first. index: (b,) int; score: (b,) float; reason: (b,) str."""

    index: np.ndarray
    score: np.ndarray
    reason: np.ndarray


def _kmeans_representatives(X: np.ndarray, n_centers: int, seed: int, weights: np.ndarray | None = None,
                            n_iter: int = 15) -> np.ndarray:
    """Index of one representative row per k-means cluster (the best-weighted row in each cluster,
    or the row nearest its centre when ``weights`` is None). Returns (<= n_centers,) unique ints."""
    import faiss

    n = len(X)
    if n_centers >= n:
        return np.arange(n)
    X = np.ascontiguousarray(X, dtype=np.float32)
    km = faiss.Kmeans(X.shape[1], int(n_centers), niter=n_iter, seed=int(seed) + 1, spherical=True,
                      verbose=False, min_points_per_centroid=1, max_points_per_centroid=100_000)
    km.train(X)
    sims, assign = km.index.search(X, 1)
    assign, sims = assign.ravel(), sims.ravel()
    key = sims if weights is None else weights
    chosen = []
    for c in np.unique(assign):
        members = np.flatnonzero(assign == c)
        chosen.append(members[np.argmax(key[members])])
    chosen = np.asarray(chosen, dtype=np.int64)
    if len(chosen) < n_centers:  # empty clusters: fill with the best remaining rows
        rest = np.setdiff1d(np.arange(n), chosen)
        order = rest[np.argsort(-key[rest])] if weights is not None else np.random.default_rng(seed).permutation(rest)
        chosen = np.concatenate([chosen, order[: n_centers - len(chosen)]])
    return chosen


def cold_start(X_pool: np.ndarray, budget: int, seed: int = 0) -> Selection:
    """Coverage sample of ``budget`` rows: one representative per k-means cluster."""
    idx = _kmeans_representatives(X_pool, budget, seed)
    return Selection(idx, np.ones(len(idx)), np.full(len(idx), "cold-start", dtype=object))


def uncertainty_scores(proba: np.ndarray, thresholds: np.ndarray, n_positive: np.ndarray,
                       rare_below: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Per-example acquisition scores.

    proba: (n, K); thresholds: (K,); n_positive: (K,) labeled positives per label.
    Returns (uncertain (n,), rare (n,)): rarity-weighted closeness to the thresholds, and the
    likely-positive mass on labels with fewer than ``rare_below`` labeled positives.
    """
    P = np.asarray(proba, dtype=np.float64)
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-3, 1 - 1e-3)
    # 1 at the threshold, 0 at probability 0 or 1 (scaled per side of the threshold)
    closeness = np.where(P >= t, 1 - (P - t) / (1 - t), 1 - (t - P) / t)
    w = 1.0 / np.sqrt(1.0 + np.asarray(n_positive, dtype=np.float64))
    w = w / w.sum()
    uncertain = closeness @ w
    rare_labels = np.asarray(n_positive) < rare_below
    if rare_labels.any():
        # how far above its threshold the example sits for a rare label (0 when below)
        lift = np.clip((P - t) / (1 - t), 0, 1)[:, rare_labels]
        shortfall = (rare_below - np.asarray(n_positive)[rare_labels]) / rare_below
        rare = (lift * shortfall).max(1)
    else:
        rare = np.zeros(len(P))
    return uncertain, rare


def select_batch(X_pool: np.ndarray, budget: int, proba: np.ndarray | None = None,
                 thresholds: np.ndarray | None = None, n_positive: np.ndarray | None = None, *,
                 candidate_factor: int = 10, rare_weight: float = 1.0, rare_below: int = 20,
                 seed: int = 0) -> Selection:
    """Choose ``budget`` rows of the pool to label next.

    X_pool: (n, d) embeddings of unlabeled, de-duplicated candidates; proba/thresholds/n_positive:
    the current model's (n, K) probabilities, (K,) thresholds and (K,) labeled positives per label.
    Without ``proba`` this is a cold start. Returns a ``Selection`` (indices into the pool, unique).
    """
    n = len(X_pool)
    if budget < 1:
        raise TagwiseError(f"budget must be >= 1 (got {budget}).")
    budget = min(int(budget), n)
    if budget == 0:
        return Selection(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype=object))
    if proba is None:
        return cold_start(X_pool, budget, seed)
    if thresholds is None or n_positive is None:
        raise TagwiseError("select_batch: proba needs thresholds and n_positive as well.")
    uncertain, rare = uncertainty_scores(proba, thresholds, n_positive, rare_below)
    score = uncertain + rare_weight * rare
    n_cand = min(n, candidate_factor * budget)
    cand = np.argsort(-score, kind="stable")[:n_cand]
    pick = cand[_kmeans_representatives(X_pool[cand], budget, seed, weights=score[cand])]
    pick = pick[np.argsort(-score[pick], kind="stable")]
    reason = np.where(rare_weight * rare[pick] > uncertain[pick], "rare-label", "uncertain").astype(object)
    return Selection(pick, score[pick], reason)


def relabel_candidates(Y_labeled: np.ndarray, proba_oof: np.ndarray, known: np.ndarray | None = None,
                       n: int = 10) -> Selection:
    """Labeled rows whose labels look doubtful: lowest self-confidence of the given labels.

    Y_labeled: (m, K) {0,1}; proba_oof: (m, K) out-of-fold probabilities (not fitted on the row
    itself); known: (m, K) bool. Score = 1 - min over known cells of P(given value).
    """
    Y = np.asarray(Y_labeled, dtype=bool)
    P = np.asarray(proba_oof, dtype=np.float64)
    M = np.ones_like(Y) if known is None else np.asarray(known, dtype=bool)
    conf = np.where(Y, P, 1 - P)
    conf = np.where(M, conf, 1.0)
    doubt = 1 - conf.min(1)
    idx = np.argsort(-doubt, kind="stable")[: min(n, len(Y))]
    return Selection(idx, doubt[idx], np.full(len(idx), "relabel", dtype=object))
