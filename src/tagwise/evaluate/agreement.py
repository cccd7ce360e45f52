"""Inter-annotator agreement over ``types.Annotations`` (missing judgements allowed).

- ``krippendorff_alpha``: nominal Krippendorff's alpha of one (example, value) table; examples
  with fewer than two values are not pairable and drop out, as in Krippendorff (2011).
- ``alpha_per_label``: alpha of each label's binary judgements, (K,).
- ``pairwise_agreement``: for every annotator pair, the share of (example, label) cells both
  judged on which they agree, and how many cells that rests on.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..types import Annotations
from ..types import TagwiseError


def krippendorff_alpha(unit: np.ndarray, value: np.ndarray, n_units: int | None = None) -> float:
    """Nominal alpha from pairs ``(unit[j], value[j])``: unit (m,) int, value (m,) int category.

    Returns NaN when no unit has two values or when every pairable value is the same (alpha is
    undefined without expected disagreement)."""
    u = np.asarray(unit, dtype=np.int64)
    v = np.asarray(value)
    if u.shape != v.shape or u.ndim != 1:
        raise TagwiseError(f"krippendorff_alpha: unit and value must be (m,) arrays; got {u.shape}, {v.shape}")
    if u.size == 0:
        return float("nan")
    cats, vi = np.unique(v, return_inverse=True)
    n_u = int(u.max()) + 1 if n_units is None else n_units
    counts = np.asarray(sp.csr_matrix((np.ones(len(u)), (u, vi)), shape=(n_u, len(cats))).todense())
    m_u = counts.sum(1)
    pairable = m_u >= 2
    counts, m_u = counts[pairable], m_u[pairable]
    if len(counts) == 0:
        return float("nan")
    # Coincidence matrix o[c, k] = sum_u n_uc (n_uk - [c == k]) / (m_u - 1).
    scaled = counts / (m_u - 1)[:, None]
    o = scaled.T @ counts - np.diag(scaled.sum(0))
    n_c = o.sum(1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = (n_c.sum() ** 2 - (n_c ** 2).sum()) / (n - 1)
    if expected <= 0:
        return float("nan")
    return float(1 - observed / expected)


def alpha_per_label(ann: Annotations) -> np.ndarray:
    """(K,) Krippendorff's alpha of each label's 0/1 judgements across annotators."""
    V = ann.votes()
    return np.array([krippendorff_alpha(ann.example[V[:, k]], ann.labels[V[:, k], k], ann.n_examples)
                     for k in range(ann.n_labels)])


def pairwise_agreement(ann: Annotations) -> tuple[np.ndarray, np.ndarray]:
    """-> (agreement (A, A) float, NaN where a pair shares no cell; cells (A, A) int, how many
    (example, label) cells both annotators judged). The diagonal is NaN / 0."""
    A, n, K = ann.n_annotators, ann.n_examples, ann.n_labels
    V = ann.votes()
    agree = np.zeros((A, A))
    shared = np.zeros((A, A))
    for k in range(K):
        rows = V[:, k]
        e, a, y = ann.example[rows], ann.annotator[rows], ann.labels[rows, k]
        pos = sp.csr_matrix(((y == 1).astype(float), (e, a)), shape=(n, A))
        neg = sp.csr_matrix(((y == 0).astype(float), (e, a)), shape=(n, A))
        both = pos + neg
        agree += np.asarray((pos.T @ pos + neg.T @ neg).todense())
        shared += np.asarray((both.T @ both).todense())
    np.fill_diagonal(agree, 0)
    np.fill_diagonal(shared, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(shared > 0, agree / np.maximum(shared, 1), np.nan)
    return rate, shared.astype(np.int64)
