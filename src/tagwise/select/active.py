"""Active learning: which unlabeled examples to label next (pure functions over arrays).

Three regimes, picked by what is known:

- **cold start** (no labeled example / no model): cover the pool. k-means with ``budget`` centres over
  the embeddings, then the real example nearest each centre: dense regions get one representative
  each, outliers are not over-sampled (unlike farthest-point sampling).
- **warm**: half *boundary* rows, half *diverse* rows. Boundary rows come label by label (round
  robin, labels weighted by 1 / (1 + labeled positives)): each slot takes the unpicked row nearest
  that label's cut, so rare labels get most of the slots (reason *rare-label* under 20 labeled
  positives, else *uncertain*) and every label's boundary is probed, not only the one an averaged
  uncertainty happens to favour. "Nearest" is the default rule ``"sparse"``: closeness to the cut,
  exp(-|logit p - logit cut|), divided by the row's pool-density rank (``pool_density_rank``; the
  inverse of information density), so among rows equally near a cut the ones in thin regions of the
  pool come first; ``rule="closeness"`` is the closeness alone (the default before issue 29).
  Diverse rows are k-means representatives of the rest of the pool; they keep the labeled set broad
  enough to calibrate the cuts on. The rule was chosen on training halves of XED-en and ISEAR by the
  area under the simulated learning curve (bench/choose_suggest.py, with the head's
  ``threshold_method``); bench/bench_active.py measures it against random sampling.
- **relabel**: labeled examples whose given labels the model strongly disagrees with
  (low self-confidence of the given label set), for a second look.

Shapes: X_pool (n, d) float32 L2-normalised; proba (n, K); thresholds (K,); Y_labeled (m, K).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logit

from ..types import TagwiseError

REASONS = ("cold-start", "uncertain", "diverse", "rare-label", "relabel")


@dataclass
class Selection:
    """Chosen rows of the pool, best first. index: (b,) int; score: (b,) float; reason: (b,) str."""

    index: np.ndarray
    score: np.ndarray
    reason: np.ndarray


def _kmeans_representatives(X: np.ndarray, n_centers: int, seed: int, n_iter: int = 15) -> np.ndarray:
    """Index of the row nearest each k-means centre. Returns (<= n_centers,) unique ints."""
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
    chosen = []
    for c in np.unique(assign):
        members = np.flatnonzero(assign == c)
        chosen.append(members[np.argmax(sims[members])])
    chosen = np.asarray(chosen, dtype=np.int64)
    if len(chosen) < n_centers:  # empty clusters: fill with random remaining rows
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen = np.concatenate([chosen, np.random.default_rng(seed).permutation(rest)[: n_centers - len(chosen)]])
    return chosen


def cold_start(X_pool: np.ndarray, budget: int, seed: int = 0) -> Selection:
    """Coverage sample of ``budget`` rows: one representative per k-means cluster."""
    idx = _kmeans_representatives(X_pool, budget, seed)
    return Selection(idx, np.ones(len(idx)), np.full(len(idx), "cold-start", dtype=object))


BOUNDARY_RULES = ("sparse", "closeness")


def pool_density_rank(X_pool: np.ndarray, k: int = 20, reference: int = 5000, seed: int = 0) -> np.ndarray:
    """(n,) rank in (0, 1] of each row's mean cosine to its ``k`` nearest pool rows (1 = densest).

    X_pool: (n, d) embeddings. Neighbours are searched among at most ``reference`` seeded pool rows
    (exact inner product, faiss), so a 40k-row pool costs 40k x 5k dot products, not 40k x 40k; a row
    of the reference set does not count itself."""
    import faiss

    n = len(X_pool)
    if n == 0:
        return np.zeros(0)
    Xn = np.asarray(X_pool, dtype=np.float32)
    Xn = np.ascontiguousarray(Xn / np.maximum(np.linalg.norm(Xn, axis=1, keepdims=True), 1e-12))
    ref = np.arange(n) if n <= reference else np.sort(np.random.default_rng(seed).choice(n, reference, replace=False))
    kk = min(k + 1, len(ref))
    index = faiss.IndexFlatIP(Xn.shape[1])
    index.add(Xn[ref])
    sims, _ = index.search(Xn, kk)
    in_ref = np.zeros(n, dtype=bool)
    in_ref[ref] = True
    if kk < 2:
        mean_sim = np.zeros(n)
    else:  # a reference row's best hit is itself: skip it; other rows use their first kk - 1 hits
        mean_sim = np.where(in_ref, sims[:, 1:kk].mean(1), sims[:, : kk - 1].mean(1))
    return (np.argsort(np.argsort(mean_sim, kind="stable"), kind="stable") + 1) / n


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


def _label_boundary_picks(proba: np.ndarray, thresholds: np.ndarray, n_positive: np.ndarray, n_slots: int,
                          taken: np.ndarray, min_positives: int = 2,
                          closeness: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label-wise round robin of rows at each label's cut.

    Each label's candidates are its unpicked rows, nearest its cut first (logit distance). Slot
    after slot goes to the label whose next candidate has the largest
    ``closeness / ((1 + n_pos) (1 + slots already given))``, closeness = exp(-logit distance): labels
    with few labeled positives get most slots, but not for rows far from their cut once the near
    ones are used up. A label with fewer than ``min_positives`` labeled positives has no tuned cut
    yet: its candidates are its most likely positives, with the probability as closeness.
    ``closeness``: optional (n, K) replacement of exp(-logit distance) in (0, 1] (another boundary
    criterion; ``bench/bench_active_variants.py`` compares several).
    Returns (indices, label of each slot, closeness of each pick in (0, 1]).
    """
    n, K = proba.shape
    n_pos = np.asarray(n_positive, dtype=np.float64)
    hunt = n_pos < min_positives
    if closeness is None:
        Z = logit(np.clip(proba, 1e-7, 1 - 1e-7))
        closeness = np.exp(-np.abs(Z - logit(np.clip(thresholds, 1e-7, 1 - 1e-7))[None, :]))
    elif np.shape(closeness) != (n, K):
        raise TagwiseError(f"closeness {np.shape(closeness)} must match proba {proba.shape}.")
    closeness = np.where(hunt[None, :], proba, closeness)
    order = np.argsort(-closeness, axis=0, kind="stable")  # (n, K) best candidates per label
    cursor = np.zeros(K, dtype=np.int64)
    weight = 1.0 / (1.0 + n_pos)
    given = np.zeros(K)
    taken = taken.copy()
    labels = np.arange(K)
    picks, owners = [], []
    for _ in range(min(n_slots, n - int(taken.sum()))):
        for k in labels:  # skip rows another label already took
            while cursor[k] < n and taken[order[cursor[k], k]]:
                cursor[k] += 1
        live = cursor < n
        nxt = order[np.minimum(cursor, n - 1), labels]
        value = np.where(live, weight / (1.0 + given) * closeness[nxt, labels], -1.0)
        k = int(np.argmax(value))
        i = nxt[k]
        taken[i] = True
        picks.append(i)
        owners.append(k)
        given[k] += 1
    picks, owners = np.asarray(picks, dtype=np.int64), np.asarray(owners, dtype=np.int64)
    return picks, owners, closeness[picks, owners]


def select_batch(X_pool: np.ndarray, budget: int, proba: np.ndarray | None = None,
                 thresholds: np.ndarray | None = None, n_positive: np.ndarray | None = None, *,
                 boundary_share: float = 0.5, rare_below: int = 20, seed: int = 0,
                 closeness: np.ndarray | None = None, rule: str = "sparse") -> Selection:
    """Choose ``budget`` rows of the pool to label next.

    X_pool: (n, d) embeddings of unlabeled, de-duplicated candidates; proba/thresholds/n_positive:
    the current model's (n, K) probabilities, (K,) thresholds and (K,) labeled positives per label.
    Without ``proba`` this is a cold start. Otherwise ``boundary_share`` of the batch are label-wise
    boundary rows (``_label_boundary_picks``: round robin over labels weighted by 1 / (1 + labeled
    positives), each taking its row nearest its cut; reason *rare-label* for labels with fewer than
    ``rare_below`` labeled positives, else *uncertain*) and the rest *diverse* rows (k-means
    representatives of the remaining pool, which keep the labeled set broad enough to calibrate the
    cuts on). ``rule``: ``"sparse"`` (default) divides each row's closeness to the cuts by its pool-density
    rank (``pool_density_rank``), ``"closeness"`` uses the closeness alone. ``closeness``: optional
    (n, K) boundary criterion in (0, 1] replacing both (see ``_label_boundary_picks``). Returns a
    ``Selection`` of unique pool indices, highest score first.
    """
    n = len(X_pool)
    if budget < 1:
        raise TagwiseError(f"budget must be >= 1 (got {budget}).")
    if not 0.0 <= boundary_share <= 1.0:
        raise TagwiseError(f"boundary_share must be in [0, 1] (got {boundary_share}).")
    if rule not in BOUNDARY_RULES:
        raise TagwiseError(f"unknown selection rule {rule!r}; use one of {', '.join(BOUNDARY_RULES)}.")
    budget = min(int(budget), n)
    if proba is None:
        return cold_start(X_pool, budget, seed)
    if thresholds is None or n_positive is None:
        raise TagwiseError("select_batch: proba needs thresholds and n_positive as well.")
    proba = np.asarray(proba, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_positive = np.asarray(n_positive, dtype=np.float64)
    if proba.shape != (n, len(thresholds)) or n_positive.shape != thresholds.shape:
        raise TagwiseError(f"select_batch: proba {proba.shape}, thresholds {thresholds.shape} and n_positive "
                           f"{n_positive.shape} must be (n={n}, K), (K,) and (K,).")
    taken = np.zeros(n, dtype=bool)
    if closeness is None and rule == "sparse":
        # bench/choose_suggest.py chose this over the closeness alone on training data (issue 29)
        Z = logit(np.clip(proba, 1e-7, 1 - 1e-7))
        near = np.exp(-np.abs(Z - logit(np.clip(thresholds, 1e-7, 1 - 1e-7))[None, :]))
        density = pool_density_rank(X_pool, seed=seed)
        closeness = near * (density.min() / density)[:, None]
    picks, owners, closeness = _label_boundary_picks(proba, thresholds, n_positive,
                                                     int(round(boundary_share * budget)), taken,
                                                     closeness=closeness)
    taken[picks] = True
    idx, score = picks.tolist(), closeness.tolist()
    reason = np.where(n_positive[owners] < rare_below, "rare-label", "uncertain").tolist()
    n_div = budget - len(idx)
    if n_div > 0:
        free = np.flatnonzero(~taken)
        pick = free[_kmeans_representatives(X_pool[free], min(n_div, len(free)), seed + 1)]
        uncertain, _ = uncertainty_scores(proba[pick], thresholds, n_positive, rare_below)  # shown score only
        idx += pick.tolist()
        score += uncertain.tolist()
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
