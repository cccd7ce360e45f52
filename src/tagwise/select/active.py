"""Active learning: which unlabeled examples to label next (pure functions over arrays).

Three regimes, picked by what is known:

- **cold start** (no labeled example / no model): cover the pool. k-means with ``budget`` centres over
  the embeddings, then the real example nearest each centre: dense regions get one representative
  each, outliers are not over-sampled (unlike farthest-point sampling).
- **warm**: a mix of (a) *rare-label* slots: likely positives of the labels that have the fewest
  labeled positives (finding them is what moves macro-F1), (b) *uncertain* rows: closeness of the
  probability to each label's threshold, labels weighted by rarity, the best candidates clustered so
  one batch is not 50 near-duplicates of one confusing case (uncertainty x diversity), and (c)
  *diverse* rows: k-means representatives of the rest of the pool, which also keep the labeled set
  representative enough to tune thresholds on. The default mix (30% / 10% / 60%) leans on
  diversity because the head's thresholds are tuned on the labeled rows: a batch made only of
  likely positives of rare labels improves the ranking (average precision) but biases those
  thresholds, which costs more macro-F1 than it gains (bench/bench_active.py).
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
    # weighted k-means (Zhdanov 2019): centres are pulled towards the high-scoring rows
    km.train(X, weights=None if weights is None else np.maximum(np.asarray(weights, np.float32), 1e-6))
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


def _rare_label_picks(proba: np.ndarray, thresholds: np.ndarray, n_positive: np.ndarray, n_slots: int,
                      taken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy slots for likely positives of the labels with the fewest labeled positives.

    Slot after slot goes to the label with the largest ``1 / (1 + n_pos + slots already given)``, and
    takes that label's most likely unpicked positive (probability over threshold). Returns
    (indices, label of each slot).
    """
    n, K = proba.shape
    ratio = proba / np.clip(thresholds, 1e-3, None)[None, :]
    order = np.argsort(-ratio, axis=0, kind="stable")  # (n, K) best candidates per label
    cursor = np.zeros(K, dtype=np.int64)
    given = np.zeros(K)
    taken = taken.copy()
    picks, owners = [], []
    n_pos = np.asarray(n_positive, dtype=np.float64)
    for _ in range(min(n_slots, n - taken.sum())):
        k = int(np.argmax(1.0 / (1.0 + n_pos + given)))
        while cursor[k] < n and taken[order[cursor[k], k]]:
            cursor[k] += 1
        if cursor[k] >= n:
            given[k] = np.inf
            continue
        i = order[cursor[k], k]
        taken[i] = True
        picks.append(i)
        owners.append(k)
        given[k] += 1
    return np.asarray(picks, dtype=np.int64), np.asarray(owners, dtype=np.int64)


def select_batch(X_pool: np.ndarray, budget: int, proba: np.ndarray | None = None,
                 thresholds: np.ndarray | None = None, n_positive: np.ndarray | None = None, *,
                 mix: tuple[float, float, float] = (0.3, 0.1, 0.6), candidate_factor: int = 4,
                 rare_below: int = 20, seed: int = 0) -> Selection:
    """Choose ``budget`` rows of the pool to label next.

    X_pool: (n, d) embeddings of unlabeled, de-duplicated candidates; proba/thresholds/n_positive:
    the current model's (n, K) probabilities, (K,) thresholds and (K,) labeled positives per label.
    Without ``proba`` this is a cold start. Otherwise the batch mixes, in proportions ``mix``:
    *rare-label* slots (likely positives of the labels with the fewest labeled positives: macro-F1
    is dominated by them), *uncertain* rows (rarity-weighted closeness to the thresholds, clustered
    for diversity) and *diverse* rows (k-means representatives of the pool, which also keep the
    labeled set representative for threshold tuning). Returns a ``Selection`` of unique pool indices.
    """
    n = len(X_pool)
    if budget < 1:
        raise TagwiseError(f"budget must be >= 1 (got {budget}).")
    budget = min(int(budget), n)
    if proba is None:
        return cold_start(X_pool, budget, seed)
    if thresholds is None or n_positive is None:
        raise TagwiseError("select_batch: proba needs thresholds and n_positive as well.")
    proba = np.asarray(proba, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    w = np.asarray(mix, dtype=np.float64) / np.sum(mix)
    n_rare = int(round(w[0] * budget))
    n_unc = int(round(w[1] * budget))
    uncertain, rare = uncertainty_scores(proba, thresholds, n_positive, rare_below)
    taken = np.zeros(n, dtype=bool)
    idx, score, reason = [], [], []
    picks, _ = _rare_label_picks(proba, thresholds, n_positive, n_rare, taken)
    taken[picks] = True
    idx += picks.tolist()
    score += (uncertain[picks] + rare[picks]).tolist()
    reason += ["rare-label"] * len(picks)
    if n_unc > 0:
        free = np.flatnonzero(~taken)
        cand = free[np.argsort(-uncertain[free], kind="stable")[: candidate_factor * n_unc]]
        pick = cand[_kmeans_representatives(X_pool[cand], min(n_unc, len(cand)), seed, weights=uncertain[cand])]
        taken[pick] = True
        idx += pick.tolist()
        score += uncertain[pick].tolist()
        reason += ["uncertain"] * len(pick)
    n_div = budget - len(idx)
    if n_div > 0:
        free = np.flatnonzero(~taken)
        pick = free[_kmeans_representatives(X_pool[free], min(n_div, len(free)), seed + 1)]
        idx += pick.tolist()
        score += uncertain[pick].tolist()
        reason += ["diverse"] * len(pick)
    idx, score = np.asarray(idx, dtype=np.int64), np.asarray(score)
    order = np.argsort(-score, kind="stable")
    return Selection(idx[order], score[order], np.asarray(reason, dtype=object)[order])


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
