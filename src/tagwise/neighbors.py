"""k nearest neighbours of every example through a faiss index (never an N x N matrix).

Exact inner-product search up to ``exact_max`` rows; above that a PCA projection plus an IVF index (nlist ~ sqrt(N)
coarse cells, k-means trained on a sample of at most 40 points per cell), whose memory is the
vectors plus a few MB and whose search cost per query is about ``nprobe / nlist`` of a flat scan.
Shared by the audit (neighbourhood label votes, duplicates, outliers) and semi-supervised
learning (the propagation graph): both are robust to the occasional missed neighbour, so the
approximate index loses nothing measurable.
"""
from __future__ import annotations

import faiss
import numpy as np
from tqdm.auto import tqdm

from .encoders import l2_normalize


def _pca_basis(Xn: np.ndarray, dim: int, sample: int, rng) -> np.ndarray:
    """(d, dim) top principal directions of a row sample (uncentred: inner products are kept)."""
    rows = Xn if len(Xn) <= sample else Xn[np.sort(rng.choice(len(Xn), sample, replace=False))]
    cov = (rows.T @ rows).astype(np.float64)
    _, vecs = np.linalg.eigh(cov)
    return np.ascontiguousarray(vecs[:, ::-1][:, :dim].astype(np.float32))


def nearest_neighbors(X: np.ndarray, k: int = 10, exact_max: int = 5_000, nprobe: int = 4,
                      search_dim: int | None = 128, batch_size: int = 1_024, random_state: int = 0,
                      progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k-nearest neighbours of each row of X among the other rows.

    Above 20,000 rows, candidates (2k per row) are searched in the top ``search_dim`` principal
    directions (4x less work for 512-d embeddings), then re-ranked by the exact cosine in the full space, so the
    returned similarities are exact and only a neighbour missed by both the projection and the
    index can be lost. ``search_dim=None`` searches the full space.

    X: (n, d) float. Returns ``(neighbors (n, k) int64, similarity (n, k) float32)`` sorted by
    decreasing similarity; the row itself is excluded; -1 / -inf pad when n - 1 < k.
    """
    Xn = np.ascontiguousarray(l2_normalize(np.asarray(X, dtype=np.float32)))
    n, d = Xn.shape
    k_eff = min(k, max(n - 1, 0))
    neighbors = np.full((n, k), -1, dtype=np.int64)
    similarity = np.full((n, k), -np.inf, dtype=np.float32)
    if k_eff == 0:
        return neighbors, similarity
    rng = np.random.default_rng(random_state)
    # the projection's fixed cost (a d x d eigendecomposition) pays off only on larger sets:
    # AG News (7,600 rows) 0.24 s unprojected vs 0.33 s; GoEmotions (43k) 2.1 s vs 4.8 s
    project = search_dim is not None and search_dim < d and n > max(exact_max, 20_000)
    Xs = Xn @ _pca_basis(Xn, search_dim, 10_000, rng) if project else Xn
    ds = Xs.shape[1]
    n_cand = min(n, (2 * k_eff if project else k_eff) + 1)
    if n <= exact_max:
        index = faiss.IndexFlatIP(ds)
    else:
        nlist = int(min(65_536, max(16, np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(ds)
        index = faiss.IndexIVFFlat(quantizer, ds, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        sample = Xs[np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))]
        index.train(sample)
        index.nprobe = nprobe
    index.add(Xs)
    for start in tqdm(range(0, n, batch_size), desc="neighbours", unit="batch", disable=not progress):
        stop = min(start + batch_size, n)
        sims, idx = index.search(Xs[start:stop], n_cand)
        rows = np.arange(start, stop)[:, None]
        valid = (idx >= 0) & (idx != rows)
        if project:  # exact cosine of the candidates in the full space
            safe = np.where(valid, idx, 0)
            sims = np.einsum("bd,bcd->bc", Xn[start:stop], Xn[safe])
        sims = np.where(valid, sims, -np.inf).astype(np.float32)
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k_eff]
        neighbors[start:stop, :k_eff] = np.where(np.take_along_axis(valid, top, 1),
                                                 np.take_along_axis(idx, top, 1), -1)
        similarity[start:stop, :k_eff] = np.take_along_axis(sims, top, 1)
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
