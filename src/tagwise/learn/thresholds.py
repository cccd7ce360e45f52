"""Per-label decision thresholds chosen from out-of-fold probabilities."""
from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression


def soft_targets(Y: np.ndarray) -> np.ndarray:
    """(n, K) targets as float64 in [0, 1], never rounded: hard {0,1} labels stay 0/1, and a soft
    (consensus, label-model) target keeps its value, so 0.6 counts as 0.6 of a positive.

    Casting such targets to bool or an integer type was the bug class behind silent failures: bool
    counts every nonzero consensus probability as a positive (cuts at 0, every label predicted), and
    uint8 turns 0.97 into 0 (no positive left)."""
    Y = np.asarray(Y, dtype=np.float64)
    if Y.size and (np.nanmin(Y) < 0 or np.nanmax(Y) > 1):
        raise ValueError("targets must lie in [0, 1] (0/1 labels or soft targets)")
    return Y


def rate_thresholds(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-label threshold that predicts each label as often as it occurs (its base rate).

    Y: (n, K) {0,1} or soft targets in [0, 1] (a soft target counts as that share of a positive);
    P: (n, K) scores; mask: (n, K) bool of known cells. Returns (K,) floats; a label with no known
    positive gets a threshold above every score.
    """
    Y = soft_targets(Y)
    P = np.asarray(P, dtype=np.float64)
    mask = np.ones(Y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out = np.full(Y.shape[1], 1.0 + 1e-9)
    for k in range(Y.shape[1]):
        m = mask[:, k]
        n_pos = min(int(round(float(Y[m, k].sum()))), int(m.sum()))
        if n_pos:
            p = np.sort(P[m, k])[::-1]
            out[k] = (p[n_pos - 1] + p[min(n_pos, len(p) - 1)]) / 2
    return out


def cuts_at_rate(S: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Per-label cut on pool scores that predicts each label at a given rate.

    S: (m, K) scores of an unlabeled pool; rate: (K,) wanted positive shares, clipped to [1/m, 1].
    Used to keep a base model's predicted label rate while a better ranking decides who is in.
    Returns (K,) float64: the (1 - rate_k) quantile of column k.
    """
    r = np.clip(np.asarray(rate, dtype=np.float64), 1.0 / len(S), 1.0)
    return np.array([np.quantile(S[:, k], 1.0 - r[k]) for k in range(S.shape[1])])


def best_f1_thresholds(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None = None, *,
                       shrink: float = 5.0, min_positives: int = 1,
                       default: float | None = None) -> np.ndarray:
    """Per-label threshold maximising F1 of ``P >= t`` against ``Y``, stabilised for rare labels.

    Y: (n, K) {0,1} or soft targets in [0, 1]; P: (n, K) out-of-fold probabilities; mask: (n, K)
    bool, False = label unknown (ignored). Soft targets enter F1 as expected counts (a row with
    target 0.6 above the cut adds 0.6 true and 0.4 false positives), so a consensus probability is
    neither rounded away nor counted as a whole positive. With few positives the F1-optimal cut is noisy, so it is shrunk towards the
    label's fallback with weight ``shrink / (shrink + n_pos)``. The fallback is the label's
    base-rate threshold (``rate_thresholds``), or the constant ``default`` when given; labels with
    fewer than ``min_positives`` known positives get the fallback alone. It matters for data with
    many rare labels (Reuters) and changes nothing for frequent ones. Returns (K,) floats.
    """
    Y = soft_targets(Y)
    P = np.asarray(P, dtype=np.float64)
    mask = np.ones(Y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out = rate_thresholds(Y, P, mask) if default is None else np.full(Y.shape[1], float(default))
    for k in range(Y.shape[1]):
        m = mask[:, k]
        y, p = Y[m, k], P[m, k]
        n_pos = float(y.sum())
        if n_pos < max(min_positives, 1) - 1e-9:
            continue
        w = shrink / (shrink + n_pos)
        out[k] = w * out[k] + (1 - w) * _best_threshold(y, p)
    return out


def _best_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Threshold maximising F1 for one binary problem, midway between adjacent scores.

    y: (n,) targets in [0, 1] (soft targets count as expected true/false positives); p: (n,) scores."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], np.asarray(y, dtype=np.float64)[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1.0 - y_sorted)
    n_pos = tp[-1]
    # only cut between distinct scores
    last_of_run = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    f1 = np.where(last_of_run, 2 * tp / (tp + fp + n_pos), -1.0)
    i = int(np.argmax(f1))
    nxt = p_sorted[i + 1] if i + 1 < len(p_sorted) else 0.0
    return float((p_sorted[i] + nxt) / 2)


def score_shift_weights(labeled_scores: np.ndarray, pool_scores: np.ndarray, n_bins: int = 10,
                        clip: float = 10.0) -> np.ndarray:
    """Importance weights that make the labeled rows' score distribution look like the pool's.

    labeled_scores: (n,) scores of the labeled rows; pool_scores: (m,) scores of the pool. Bins are
    the pool's score deciles (``n_bins`` quantile bins); a labeled row weighs (pool share of its
    bin) / (labeled share of its bin), clipped to [1/clip, clip], then scaled to mean 1. Returns (n,).
    """
    s = np.asarray(labeled_scores, dtype=np.float64)
    z = np.asarray(pool_scores, dtype=np.float64)
    edges = np.quantile(z, np.linspace(0, 1, n_bins + 1)[1:-1])
    bin_s, bin_z = np.searchsorted(edges, s), np.searchsorted(edges, z)
    share_s = np.bincount(bin_s, minlength=n_bins) / len(s)
    share_z = np.bincount(bin_z, minlength=n_bins) / len(z)
    w = np.clip(share_z[bin_s] / share_s[bin_s], 1.0 / clip, clip)
    return w / w.mean()


def expected_f1_thresholds(Y: np.ndarray, oof_logits: np.ndarray, pool_logits: np.ndarray,
                           mask: np.ndarray | None = None, *, min_positives: int = 2,
                           default: float = 0.5, shift_bins: int = 10) -> np.ndarray:
    """Per-label thresholds that maximise the expected F1 on an unlabeled pool (plug-in rule).

    For labels gathered by active learning: the labeled rows are chosen by the model (uncertain
    rows, likely positives of rare labels), so an F1-optimal cut on them does not carry over to
    the texts the model will see. What does carry over under such covariate shift is P(y | score):
    a one-feature logistic calibration of the out-of-fold logits is fitted on the labeled rows and
    applied to the pool; the cut then maximises the pool's expected F1, 2 sum_top p / (t + sum p)
    (Lipton et al. 2014). The calibration is fitted with importance weights that match the labeled
    rows' score distribution to the pool's (``score_shift_weights`` over ``shift_bins`` pool-score
    bins; 0 = unweighted): actively chosen rows crowd the high scores, and an unweighted fit there
    over-estimates P(y) in the low-score bulk of the pool, which for a rare label sums to far too
    many expected positives and a cut far too low. On actively chosen labels these cuts beat
    cross-validated F1-best cuts; on random or stratified draws cross-validated cuts are as good or
    better, so they remain the default of ``tagwise train`` (bench/bench_active.py).

    Y: (n, K) {0,1} or soft targets in [0, 1]; oof_logits: (n, K) out-of-fold logits of the
    labeled rows; pool_logits: (m, K) logits of unlabeled rows from the fitted model; mask: (n, K)
    bool of known cells. A soft target enters the calibration as a positive with weight y and a
    negative with weight 1 - y. Labels with fewer than ``min_positives`` known positives (or
    negatives, as expected counts), or whose calibration is not increasing, get ``default``.
    Returns (K,) thresholds in probability space.
    """
    Y = soft_targets(Y)
    S = np.asarray(oof_logits, dtype=np.float64)
    Z = np.asarray(pool_logits, dtype=np.float64)
    mask = np.ones(Y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    out = np.full(Y.shape[1], float(default))
    for k in range(Y.shape[1]):
        y, s = Y[mask[:, k], k], S[mask[:, k], k]
        if y.sum() < min_positives or (1.0 - y).sum() < min_positives or len(Z) == 0:
            continue
        z_k = Z[:, k]
        w = score_shift_weights(s, z_k, shift_bins) if shift_bins else np.ones(len(s))
        # each row twice: as a positive weighted y, as a negative weighted 1 - y (hard rows: once)
        both = np.r_[s, s][:, None], np.r_[np.ones(len(s)), np.zeros(len(s))], np.r_[w * y, w * (1.0 - y)]
        keep = both[2] > 0
        cal = LogisticRegression(C=1.0).fit(both[0][keep], both[1][keep], sample_weight=both[2][keep])
        if cal.coef_[0, 0] <= 0:
            continue
        z = np.sort(z_k)[::-1]
        p = expit(cal.coef_[0, 0] * z + cal.intercept_[0])
        f1 = 2 * np.cumsum(p) / (np.arange(1, len(p) + 1) + p.sum())
        i = int(np.argmax(f1))
        nxt = z[i + 1] if i + 1 < len(z) else z[i] - 1.0
        out[k] = float(expit((z[i] + nxt) / 2))
    return out
