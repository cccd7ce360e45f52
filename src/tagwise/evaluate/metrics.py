"""Multi-label metrics: per-label P/R/F1, micro/macro F1, average precision, calibration."""
from __future__ import annotations

import numpy as np


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision of one ranking (the step-wise area under the PR curve); nan without positives."""
    y = np.asarray(y, dtype=bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(p), kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / n_pos)


def masked_average_precision(Y: np.ndarray, P: np.ndarray, M: np.ndarray | None = None) -> np.ndarray:
    """(K,) average precision per label over known cells; 0 where a label has no known positive.

    Y: (n, K) {0,1}; P: (n, K) scores; M: (n, K) bool/0-1 known cells or None (all known).
    """
    Y = np.asarray(Y)
    out = np.zeros(Y.shape[1])
    for k in range(Y.shape[1]):
        m = slice(None) if M is None else np.asarray(M[:, k]) > 0
        ap = average_precision(Y[m, k] > 0, np.asarray(P)[m, k])
        out[k] = 0.0 if np.isnan(ap) else ap
    return out


def expected_calibration_error(Y: np.ndarray, P: np.ndarray, n_bins: int = 15) -> float:
    """ECE over all (example, label) cells with equal-width probability bins."""
    y = np.asarray(Y, dtype=np.float64).ravel()
    p = np.asarray(P, dtype=np.float64).ravel()
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            total += sel.sum() * abs(p[sel].mean() - y[sel].mean())
    return float(total / max(len(p), 1))


def multilabel_report(Y: np.ndarray, P_pred: np.ndarray, P_proba: np.ndarray | None,
                      label_names, mask: np.ndarray | None = None) -> dict:
    """Metrics of predictions against gold labels.

    Y, P_pred: (n, K) {0,1}; P_proba: (n, K) probabilities or None; mask: (n, K) bool cells to
    count (False = label unknown for that example). Macro averages run over labels with support > 0.

    Returns ``{"n_examples", "micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_ap",
    "ece", "subset_accuracy", "per_label": {name: {precision, recall, f1, support, ap}}}``.
    """
    Y = np.asarray(Y, dtype=bool)
    Z = np.asarray(P_pred, dtype=bool)
    M = np.ones_like(Y) if mask is None else np.asarray(mask, dtype=bool)
    tp = (Y & Z & M).sum(0).astype(np.float64)
    fp = (~Y & Z & M).sum(0).astype(np.float64)
    fn = (Y & ~Z & M).sum(0).astype(np.float64)
    support = (Y & M).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    has = support > 0
    ap = np.full(Y.shape[1], np.nan)
    if P_proba is not None:
        for k in np.flatnonzero(has):
            ap[k] = average_precision(Y[M[:, k], k], np.asarray(P_proba)[M[:, k], k])
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
    per_label = {
        str(name): {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                    "support": int(support[k]), "ap": None if np.isnan(ap[k]) else float(ap[k])}
        for k, name in enumerate(label_names)}
    full_rows = M.all(axis=1)
    return {
        "n_examples": int(len(Y)),
        "micro_f1": float(2 * TP / (2 * TP + FP + FN)) if TP + FP + FN else 0.0,
        "macro_f1": float(f1[has].mean()) if has.any() else 0.0,
        "micro_precision": float(TP / (TP + FP)) if TP + FP else 0.0,
        "micro_recall": float(TP / (TP + FN)) if TP + FN else 0.0,
        "macro_ap": float(np.nanmean(ap[has])) if P_proba is not None and has.any() else None,
        "ece": expected_calibration_error(Y[:, has], np.asarray(P_proba)[:, has]) if P_proba is not None else None,
        "subset_accuracy": float((Y[full_rows] == Z[full_rows]).all(1).mean()) if full_rows.any() else None,
        "per_label": per_label,
    }
