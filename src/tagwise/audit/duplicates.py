"""Conflicting duplicates (exact after normalisation, or near by embedding) and outliers.

Both reuse the kNN graph of ``neighbors.nearest_neighbors``, so nothing here is quadratic in n.
"""
from __future__ import annotations

import numpy as np

from ..text import normalize_text


def conflicting_pairs(labels, mask, i: np.ndarray, j: np.ndarray, similarity: np.ndarray,
                      exact: np.ndarray) -> dict[str, np.ndarray]:
    """One record per unordered pair (the exact one first), kept where the two rows' labels differ
    on a label both rows' sources annotate. labels / mask: (n, K) arrays or memmaps (only the
    pairs' rows are read)."""
    if len(i):
        order = np.lexsort((~exact, j, i))
        i, j, similarity, exact = i[order], j[order], similarity[order], exact[order]
        first = np.ones(len(i), bool)
        first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
        i, j, similarity, exact = i[first], j[first], similarity[first], exact[first]
        Yi, Yj = np.asarray(labels[i], dtype=bool), np.asarray(labels[j], dtype=bool)
        both = np.ones_like(Yi) if mask is None else np.asarray(mask[i], dtype=bool) & np.asarray(mask[j], dtype=bool)
        keep = ((Yi != Yj) & both).any(1)
        i, j, similarity, exact = i[keep], j[keep], similarity[keep], exact[keep]
    return {"i": i.astype(np.int64), "j": j.astype(np.int64), "similarity": similarity.astype(np.float32),
            "exact": exact.astype(bool)}


def conflicting_duplicates(texts, labels: np.ndarray, mask: np.ndarray | None, neighbors: np.ndarray,
                           similarity: np.ndarray, min_similarity: float = 0.95) -> dict[str, np.ndarray]:
    """Pairs of (near-)duplicate examples whose labels disagree.

    texts: n strings; labels: (n, K) {0,1}; mask: (n, K) bool or None; neighbors, similarity:
    (n, k) kNN graph. Exact duplicates are grouped by ``normalize_text`` (every member is paired
    with the group's first member); near duplicates are kNN pairs with cosine >= min_similarity.
    Returns ``{"i", "j": (m,) int64 with i < j, "similarity": (m,) float32, "exact": (m,) bool}``.
    """
    n = len(labels)
    first_of: dict[str, int] = {}
    ei, ej = [], []
    for idx, t in enumerate(texts):
        key = normalize_text(t)
        if not key:
            continue
        first = first_of.setdefault(key, idx)
        if first != idx:
            ei.append(first)
            ej.append(idx)
    ei, ej = np.asarray(ei, dtype=np.int64), np.asarray(ej, dtype=np.int64)
    rows = np.repeat(np.arange(n), neighbors.shape[1])
    cols = neighbors.ravel()
    sims = similarity.ravel()
    near = (cols >= 0) & (sims >= min_similarity)
    ni, nj = np.minimum(rows[near], cols[near]), np.maximum(rows[near], cols[near])
    ns = sims[near]
    i = np.concatenate([ei, ni])
    j = np.concatenate([ej, nj])
    s = np.concatenate([np.ones(len(ei), np.float32), ns.astype(np.float32)])
    exact = np.concatenate([np.ones(len(ei), bool), np.zeros(len(ni), bool)])
    return conflicting_pairs(labels, mask, i, j, s, exact)


def outlier_scores(similarity: np.ndarray, z_threshold: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Outlierness from the kNN graph: mean cosine distance to the k nearest neighbours.

    similarity: (n, k). Returns ``(score (n,) float32 in [0, 1] = percentile of the mean distance,
    is_outlier (n,) bool)``; an outlier's distance lies more than ``z_threshold`` robust standard
    deviations (1.4826 MAD) above the median, so a tight dataset may have none.
    """
    return outliers_from_distance(mean_neighbor_distance(similarity), z_threshold)


def mean_neighbor_distance(similarity: np.ndarray) -> np.ndarray:
    """(n,) mean cosine distance of each row to its found neighbours (similarity (n, k); 0 for none)."""
    sims = np.where(np.isfinite(similarity), similarity, np.nan)
    dist = 1.0 - np.nanmean(sims, axis=1) if sims.shape[1] else np.zeros(len(sims))
    return np.nan_to_num(dist, nan=0.0)


def outliers_from_distance(dist: np.ndarray, z_threshold: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """``outlier_scores`` from the (n,) mean neighbour distances (``mean_neighbor_distance``)."""
    n = len(dist)
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(dist, kind="stable")] = np.arange(n)
    score = (ranks / max(n - 1, 1)).astype(np.float32)
    med = np.median(dist) if n else 0.0
    mad = 1.4826 * np.median(np.abs(dist - med)) if n else 0.0
    is_outlier = (dist - med) > z_threshold * max(mad, 1e-6)
    return score, is_outlier
