"""Per-label decision thresholds chosen from out-of-fold probabilities."""
from __future__ import annotations

import numpy as np


def best_f1_thresholds(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None = None, *,
                       min_positives: int = 3, shrink: float = 5.0,
                       default: float | None = None) -> np.ndarray:
    """Per-label threshold maximising F1 of ``P >= t`` against ``Y``.

    Y: (n, K) {0,1}; P: (n, K) probabilities; mask: (n, K) bool, False = label unknown (ignored).
    Labels with fewer than ``min_positives`` known positives get ``default`` (by default the
    threshold that maximises micro-F1 over all labels). With few positives the F1-optimal cut is
    noisy, so each label's threshold is shrunk towards ``default`` with weight ``shrink / (shrink + n_pos)``.
    Returns (K,) float thresholds.
    """
    Y = np.asarray(Y, dtype=bool)
    P = np.asarray(P, dtype=np.float64)
    mask = np.ones_like(Y, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if default is None:
        default = _best_threshold(Y[mask], P[mask]) if Y[mask].any() else 0.5
    K = Y.shape[1]
    out = np.full(K, default, dtype=np.float64)
    for k in range(K):
        m = mask[:, k]
        y, p = Y[m, k], P[m, k]
        n_pos = int(y.sum())
        if n_pos < min_positives:
            continue
        t = _best_threshold(y, p)
        w = shrink / (shrink + n_pos)
        out[k] = w * default + (1 - w) * t
    return out


def _best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Threshold maximising F1 for one binary problem, midway between adjacent scores."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    n_pos = tp[-1]
    # only cut between distinct scores
    last_of_run = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    f1 = np.where(last_of_run, 2 * tp / (tp + fp + n_pos), -1.0)
    i = int(np.argmax(f1))
    nxt = p_sorted[i + 1] if i + 1 < len(p_sorted) else 0.0
    return float((p_sorted[i] + nxt) / 2)
