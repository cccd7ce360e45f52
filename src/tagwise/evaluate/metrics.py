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
    "ece", "subset_accuracy", "per_label": {name: {precision, recall, f1, support, predicted, ap}}}``; a label
    with no support has no meaningful recall or F1 (shown as "—" by ``format_metric``).
    """
    Y = np.asarray(Y, dtype=bool)
    Z = np.asarray(P_pred, dtype=bool)
    M = np.ones_like(Y) if mask is None else np.asarray(mask, dtype=bool)
    tp = (Y & Z & M).sum(0).astype(np.float64)
    fp = (~Y & Z & M).sum(0).astype(np.float64)
    fn = (Y & ~Z & M).sum(0).astype(np.float64)
    support = (Y & M).sum(0)
    predicted = (Z & M).sum(0)
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
                    "support": int(support[k]), "predicted": int(predicted[k]),
                    "ap": None if np.isnan(ap[k]) else float(ap[k])}
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


# A label predicted on at least this share of the rows that know it is (nearly) "predict everything".
PREDICTED_EVERYWHERE = 0.95


def trivial_f1(Y: np.ndarray, mask: np.ndarray | None = None, rate: np.ndarray | None = None) -> dict:
    """Per-label F1 of the trivial predictors, computed analytically on known cells.

    Y: (n, K) {0,1} gold (soft targets count as positive from 0.5); mask: (n, K) bool known cells or
    None; rate: (n, K) or (K,) share of rows on which the *prior* predictor says yes (each label's
    training positive rate, per row's source), or None for the gold rate itself.

    - ``all_negative``: never predict the label: F1 0 (where the label has a positive);
    - ``all_positive``: predict it on every known row: F1 = 2p / (1 + p), p the positive share;
    - ``prior``: predict it on a random share q of the rows (q its training rate): expected counts
      TP = sum over positives of q_i, predicted = sum of q_i, so F1 = 2 TP / (positives + predicted)
      (= 2pq / (p + q) for one q; = p when q = p).

    Returns ``{"all_positive": (K,), "prior": (K,), "support": (K,) int, "known": (K,) int}``;
    F1 is nan where a label has no positive among known cells.
    """
    Y = np.asarray(Y, dtype=np.float64) >= 0.5
    M = np.ones(Y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    pos = (Y & M).sum(0).astype(np.float64)
    known = M.sum(0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = pos / known
        all_positive = np.where(pos > 0, 2 * p / (1 + p), np.nan)
        if rate is None:
            Q = np.broadcast_to(p[None, :], Y.shape)
        else:
            Q = np.broadcast_to(np.asarray(rate, dtype=np.float64), Y.shape)
        Q = np.nan_to_num(Q) * M
        tp = (Q * Y).sum(0)
        prior = np.where(pos > 0, 2 * tp / (pos + Q.sum(0)), np.nan)
    return {"all_positive": all_positive, "prior": prior, "support": pos.astype(np.int64),
            "known": known.astype(np.int64)}


def baselines_report(Y: np.ndarray, Z: np.ndarray, mask: np.ndarray | None, label_names,
                     rate: np.ndarray | None = None) -> dict:
    """The trivial predictors beside a model's decisions, and the labels it predicts (nearly) everywhere.

    Y, Z: (n, K) gold and decisions; mask: (n, K) known cells or None; rate: the prior predictor's
    rates (see ``trivial_f1``). Macro averages run over labels with support, like ``multilabel_report``.
    Returns ``{"macro_f1": {"all_negative", "all_positive", "prior"}, "per_label": {name: {"all_positive",
    "prior", "predicted_rate"}}, "predicted_everywhere": [names predicted on >= 95% of known rows]}``.
    """
    Y = np.asarray(Y, dtype=np.float64) >= 0.5
    Z = np.asarray(Z, dtype=bool)
    M = np.ones(Y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    t = trivial_f1(Y, M, rate)
    has = t["support"] > 0
    known = M.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted_rate = np.where(known > 0, (Z & M).sum(0) / np.maximum(known, 1), np.nan)
    macro = lambda a: float(np.mean(a[has])) if has.any() else None  # noqa: E731
    everywhere = [str(n) for k, n in enumerate(label_names)
                  if known[k] >= 20 and predicted_rate[k] >= PREDICTED_EVERYWHERE]
    num = lambda v: None if not np.isfinite(v) else round(float(v), 4)  # noqa: E731
    return {"macro_f1": {"all_negative": 0.0 if has.any() else None, "all_positive": macro(t["all_positive"]),
                         "prior": macro(t["prior"])},
            "per_label": {str(n): {"all_positive": num(t["all_positive"][k]), "prior": num(t["prior"][k]),
                                   "predicted_rate": num(predicted_rate[k])} for k, n in enumerate(label_names)},
            "predicted_everywhere": everywhere}


NO_SUPPORT = "—"


def format_metric(value, support: int | None = None, width: int = 0, digits: int = 3) -> str:
    """A metric for a table: ``NO_SUPPORT`` ("—") where it is undefined (no support, or None/nan),
    never a misleading 0.000."""
    if support == 0 or value is None or (isinstance(value, float) and not np.isfinite(value)):
        return NO_SUPPORT.rjust(width)
    return f"{value:{width}.{digits}f}"
