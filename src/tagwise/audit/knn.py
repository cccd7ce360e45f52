"""k nearest neighbours of every example through a faiss index (never an N x N matrix).

Exact inner-product search up to ``exact_max`` rows; above that an IVF index (nlist ~ sqrt(N)
coarse cells, k-means trained on a sample of at most 40 points per cell), whose memory is the
vectors plus a few MB and whose search cost per query is about ``nprobe / nlist`` of a flat scan.
The audit only needs the neighbourhood *label vote*, duplicates and a distance percentile, all
robust to the occasional missed neighbour, so the approximate index loses nothing measurable.
"""
from __future__ import annotations

import faiss
import numpy as np
from tqdm.auto import tqdm

from ..encoders import l2_normalize


def nearest_neighbors(X: np.ndarray, k: int = 10, exact_max: int = 5_000, nprobe: int = 4,
                      batch_size: int = 16_384, random_state: int = 0,
                      progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k-nearest neighbours of each row of X among the other rows.

    X: (n, d) float. Returns ``(neighbors (n, k) int64, similarity (n, k) float32)`` sorted by
    decreasing similarity; the row itself is excluded; -1 / -inf pad when n - 1 < k.
    """
    Xn = np.ascontiguousarray(l2_normalize(np.asarray(X, dtype=np.float32)))
    n, d = Xn.shape
    k_eff = min(k, max(n - 1, 0))
    if n <= exact_max:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(min(65_536, max(16, np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        rng = np.random.default_rng(random_state)
        sample = Xn[np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))]
        index.train(sample)
        index.nprobe = nprobe
    index.add(Xn)
    neighbors = np.full((n, k), -1, dtype=np.int64)
    similarity = np.full((n, k), -np.inf, dtype=np.float32)
    if k_eff == 0:
        return neighbors, similarity
    for start in tqdm(range(0, n, batch_size), desc="audit: neighbours", unit="batch", disable=not progress):
        stop = min(start + batch_size, n)
        sims, idx = index.search(Xn[start:stop], k_eff + 1)
        rows = np.arange(start, stop)[:, None]
        # drop the query itself (or one extra hit when an exact duplicate outranks it)
        is_self = idx == rows
        drop = np.where(is_self.any(1), is_self.argmax(1), k_eff)
        keep = np.ones_like(is_self)
        keep[np.arange(stop - start), drop] = False
        neighbors[start:stop, :k_eff] = idx[keep].reshape(-1, k_eff)
        similarity[start:stop, :k_eff] = sims[keep].reshape(-1, k_eff)
    return neighbors, similarity


def neighbor_label_votes(neighbors: np.ndarray, similarity: np.ndarray, labels: np.ndarray,
                         mask: np.ndarray | None = None, batch_size: int = 16_384) -> np.ndarray:
    """Similarity-weighted share of neighbours carrying each label.

    neighbors, similarity: (n, k) from ``nearest_neighbors``; labels: (n, K) {0,1}; mask: optional
    (n, K) bool (a neighbour whose source does not annotate label j casts no vote on j).
    Returns (n, K) float32 in [0, 1]; a cell with no voter gets the label's base rate.
    """
    Y = np.asarray(labels, dtype=np.float32)
    M = np.ones_like(Y, dtype=np.float32) if mask is None else np.asarray(mask, dtype=np.float32)
    n, K = Y.shape
    base = (Y * M).sum(0) / np.maximum(M.sum(0), 1)
    out = np.empty((n, K), dtype=np.float32)
    valid = neighbors >= 0
    w = np.where(valid, np.maximum(similarity, 0.0), 0.0).astype(np.float32)
    idx = np.where(valid, neighbors, 0)
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        wi = w[sl][:, :, None]
        num = (wi * (Y[idx[sl]] * M[idx[sl]])).sum(1)
        den = (wi * M[idx[sl]]).sum(1)
        out[sl] = np.where(den > 0, num / np.maximum(den, 1e-12), base[None, :])
    return out
