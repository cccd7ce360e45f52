"""Label-quality scores and typed label issues from out-of-fold probabilities.

Pure functions over arrays, in the style of cleanlab, with multi-label as the general case:

- ``labels``: (n, K) {0,1} given labels (single-label data: one 1 per row).
- ``pred_probs``: (n, K) out-of-fold probability that each label applies (optionally blended with
  kNN label votes, see ``blend_evidence``).
- ``mask``: optional (n, K) bool, False where a label is unknown for an example (its source does
  not annotate it): such cells are never scored.

Each known cell gets the probability that its given value is wrong (``p`` for an absent label,
``1 - p`` for a given one). An example's label quality is

    quality = min_{given k} p_k  *  (1 - max_{absent k} p_k)

the probability that its least supported given label applies times the probability that its
most likely absent label does not. Its negative log is the sum of the two worst surprisals, one
per error type: a lone wrong label (uniform noise) or a lone missing label drives it down as a
plain worst-cell score would, but a swap (one label wrong *and* another missing, the
confusion model and every single-label error) scores on both terms, which is how it separates
confusions from mere ambiguity. On seeded noise this beat the worst-cell score, the mean over
cells and per-label rescaling (see bench/bench_audit.py). For single-label rows it is
``p_given * (1 - p_best_other)``.

On multi-label data that worst-pair score is blended with a second one built on noise rates.
Confident learning (below) counts, per label, the given negatives that look like typical
positives and the given positives that look like typical negatives; those counts estimate how
often the label is *missed* (given 0, truly 1) and *added* (given 1, truly 0). Bayes' rule then
turns each cell's probability into the posterior that its given value was flipped
(``cell_error_posteriors``), and ``1 - max posterior`` scores the row. The posterior knows that a
label annotators often miss makes a fairly likely absent label suspicious, while the worst-pair
score knows that a near-impossible given label is. The two err on different rows, so the
default ranks rows by the mean of their two percentile ranks: on seeded noise (bench_audit.py,
Reuters and GoEmotions, 18 settings) that ranks at least as well as cleanlab in 17 settings
against 16 for either score alone, and lifts Reuters *missing* AUPRC from 0.185/0.360/0.550 to
0.269/0.480/0.656 at 5/10/20% noise.

On real annotator disagreements (bench/bench_audit_real.py: ConvAbuse and HS-Brexit, one
annotator against the others' majority) the blend ranked errors worse than the worst-pair score
alone, so the audit (``core.audit_arrays``) ranks by the worst-pair score; the blend stays
available as ``method="blend"``.

The audit can score multi-label rows from two views of the evidence and keep the worse
(``worst_of_views``, ``audit_arrays(views="worst")``; the default is the per-label view alone, chosen
on development data by bench/choose_audit.py, see ``core.DEFAULT_VIEWS``): the per-label probabilities above, and the same averaged
with a label-dependency model that also sees the example's other given labels
(``oof.label_dependency_proba``). Dependencies expose lone errors (an added label that
contradicts the others, a missed label whose usual partner is given) but hide swaps, where the
wrong given label explains the true one away; the per-label view keeps those. On the 18 seeded
settings this ranks above cleanlab in all 18 (it was 17) and lifts GoEmotions uniform-noise
AUPRC from 0.34/0.51/0.67 to 0.43/0.58/0.71, at a cost on swaps (GoEmotions confusion
0.20/0.28/0.39 -> 0.17/0.24/0.35, still above cleanlab's 0.12/0.20/0.30).

Flagging uses per-label anchors from confident learning, the mean probability of each label's
given positives ``t_pos`` and negatives ``t_neg``: an absent label is *missing* when
``p >= max(t_pos, min_missing_prob)`` (it looks like a typical positive of that label, and is more
likely than not), a given label is *wrong* when ``p <= t_neg + slack * (t_pos - t_neg)`` (it looks
like a typical negative).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import TagwiseError


def _check(labels, pred_probs, mask):
    Y = np.asarray(labels)
    P = np.asarray(pred_probs, dtype=np.float32)
    if Y.ndim != 2 or P.shape != Y.shape:
        raise TagwiseError(f"labels and pred_probs must both be (n, K); got {Y.shape} and {P.shape}")
    if Y.size and (Y.min() < 0 or Y.max() > 1 or (Y.dtype.kind == "f" and not np.isin(Y, (0, 1)).all())):
        raise TagwiseError("labels must be a {0,1} indicator matrix")
    M = np.ones(Y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if M.shape != Y.shape:
        raise TagwiseError(f"mask must have the shape of labels {Y.shape}; got {M.shape}")
    return Y.astype(bool), P, M


def blend_evidence(pred_probs: np.ndarray, neighbor_votes: np.ndarray | None, weight: float = 0.5) -> np.ndarray:
    """Mix model probabilities with kNN label votes: ``(1 - weight) * P + weight * V``.

    Both (n, K) in [0, 1]. The two signals err differently (a linear model under-fits local
    structure; neighbours carry their own label noise), so their average ranks errors better than
    either alone. Returns (n, K) float32.
    """
    P = np.asarray(pred_probs, dtype=np.float32)
    if neighbor_votes is None or weight <= 0:
        return P
    V = np.asarray(neighbor_votes, dtype=np.float32)
    if V.shape != P.shape:
        raise TagwiseError(f"neighbor_votes {V.shape} must match pred_probs {P.shape}")
    return ((1.0 - weight) * P + weight * V).astype(np.float32)


def per_label_thresholds(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-label anchors: (t_pos (K,), t_neg (K,)), the mean probability over known given
    positives and given negatives of each label. A label with no given positive gets t_pos = 1
    (nothing can be 'as likely as a positive'); one with no negative gets t_neg = 0."""
    Y, P, M = _check(labels, pred_probs, mask)
    pos, neg = Y & M, ~Y & M
    n_pos, n_neg = pos.sum(0), neg.sum(0)
    t_pos = np.where(n_pos > 0, (P * pos).sum(0) / np.maximum(n_pos, 1), 1.0)
    t_neg = np.where(n_neg > 0, (P * neg).sum(0) / np.maximum(n_neg, 1), 0.0)
    return t_pos.astype(np.float32), t_neg.astype(np.float32)


def cell_issue_scores(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(n, K) float32 probability that each given cell is wrong; NaN on unknown cells."""
    Y, P, M = _check(labels, pred_probs, mask)
    S = np.where(Y, 1.0 - P, P).astype(np.float32)
    S[~M] = np.nan
    return S


def noise_rates(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-label flip rates estimated by confident learning.

    A given negative with ``p >= t_pos`` is confidently a missed positive, a given positive with
    ``p <= t_neg`` confidently an added one (anchors from ``per_label_thresholds``). Returns
    ``(missed (K,), added (K,))``: estimates of P(given 0 | truly 1) and P(given 1 | truly 0),
    add-one smoothed so that no rate is exactly 0 or 1.
    """
    Y, P, M = _check(labels, pred_probs, mask)
    t_pos, t_neg = per_label_thresholds(Y, P, M)
    pos, neg = Y & M, ~Y & M
    missed = (neg & (P >= t_pos[None, :])).sum(0)
    added = (pos & (P <= t_neg[None, :])).sum(0)
    true_pos = missed + (pos & (P > t_neg[None, :])).sum(0)
    true_neg = added + (neg & (P < t_pos[None, :])).sum(0)
    return ((missed + 1.0) / (true_pos + 2.0)).astype(np.float32), ((added + 1.0) / (true_neg + 2.0)).astype(np.float32)


def cell_error_posteriors(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None,
                          rates: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(n, K) float32 posterior probability that each known cell's given value was flipped; 0 on
    unknown cells.

    With p the probability that label k applies, m_k = P(given 0 | truly 1) and a_k = P(given 1 |
    truly 0) (``noise_rates``, or ``rates``): an absent cell was missed with probability
    ``p m / (p m + (1 - p)(1 - a))``, a given cell was added with ``(1 - p) a / ((1 - p) a + p (1 - m))``.
    """
    Y, P, M = _check(labels, pred_probs, mask)
    m, a = noise_rates(Y, P, M) if rates is None else (np.asarray(r, dtype=np.float32) for r in rates)
    P = np.clip(P, 1e-6, 1 - 1e-6)
    missed = P * m / (P * m + (1 - P) * (1 - a))
    added = (1 - P) * a / ((1 - P) * a + P * (1 - m))
    return np.where(M, np.where(Y, added, missed), 0.0).astype(np.float32)


def label_quality_scores(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None,
                         method: str = "auto") -> np.ndarray:
    """(n,) float32 label quality in [0, 1], lower = more likely mislabeled (see module doc).

    method: "worst_pair" = ``min_{given} p * (1 - max_{absent} p)`` over known cells (1 for a row
    with none); "posterior" = ``1 - max`` of ``cell_error_posteriors``; "blend" = the mean of the
    two scores' percentile ranks (in (0, 1]; ties share a rank); "auto" (default) = "blend" for
    multi-label data and "worst_pair" when every row has exactly one label (there the noise-rate
    posterior did not help on AG News or ISEAR).
    """
    Y, P, M = _check(labels, pred_probs, mask)
    if method == "auto":
        method = "worst_pair" if bool(((Y & M).sum(1) == 1).all()) else "blend"
    if method not in ("worst_pair", "posterior", "blend"):
        raise TagwiseError(f"unknown label quality method {method!r}; use auto, worst_pair, posterior or blend")
    weakest_given = np.where(Y & M, P, 1.0).min(axis=1, initial=1.0)
    strongest_absent = np.where(~Y & M, P, 0.0).max(axis=1, initial=0.0)
    worst_pair = (np.clip(weakest_given, 0, 1) * np.clip(1.0 - strongest_absent, 0, 1)).astype(np.float32)
    if method == "worst_pair":
        return worst_pair
    posterior = (1.0 - cell_error_posteriors(Y, P, M).max(axis=1, initial=0.0)).astype(np.float32)
    if method == "posterior":
        return posterior
    from scipy.stats import rankdata
    n = max(len(Y), 1)
    return ((rankdata(worst_pair) + rankdata(posterior)) / (2.0 * n)).astype(np.float32)


def worst_of_views(*qualities: np.ndarray) -> np.ndarray:
    """Combine label-quality scores computed from different evidence: (n,) float32 in (0, 1], the
    lowest of each row's percentile ranks, so a row is as suspicious as its most suspicious view.

    The audit's two multi-label views err on different noise: the plain per-label view catches
    swaps (a label replaced by a similar one), the label-dependency view (``oof.label_dependency_proba``)
    catches lone added and missed labels but trusts the other given labels, which hides a swap.
    """
    from scipy.stats import rankdata
    if not qualities:
        raise TagwiseError("worst_of_views needs at least one quality array")
    n = max(len(qualities[0]), 1)
    return np.min([rankdata(q) / n for q in qualities], axis=0).astype(np.float32)


def mixture_error_counts(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None,
                         quantiles: np.ndarray = np.linspace(0.1, 0.5, 9)) -> tuple[np.ndarray, np.ndarray]:
    """Per-label (missed (K,), added (K,)) error counts by mixture proportion estimation.

    The given positives of a label are a mixture of true positives and of negatives wrongly
    given the label; the wrong ones look like given negatives to the model. So in the low tail,
    where few true positives fall, the share of given positives below a probability tau is at
    most about rho times the share of given negatives below tau, and ``rho_added = min_tau
    F_pos(tau) / F_neg(tau)`` estimates the share of added labels (the tightest bound; Scott,
    Blanchard & Handy 2013). tau runs over the given negatives' quantiles 0.1 .. 0.5, so each
    ratio rests on at least a tenth of them. Missed labels mirror this in the upper tail:
    ``rho_missed = min_tau G_neg(tau) / G_pos(tau)`` with G the share above tau, over the given
    positives' upper quantiles. Returns counts: ``rho * number of given cells`` of each value.
    """
    Y, P, M = _check(labels, pred_probs, mask)
    K = Y.shape[1]
    missed, added = np.zeros(K), np.zeros(K)
    for k in range(K):
        p_pos = np.sort(P[Y[:, k] & M[:, k], k])
        p_neg = np.sort(P[~Y[:, k] & M[:, k], k])
        if len(p_pos) < 5 or len(p_neg) < 5:
            continue
        tau = np.quantile(p_neg, quantiles)  # low tail of the negatives
        f_pos = np.searchsorted(p_pos, tau, side="right") / len(p_pos)
        f_neg = np.searchsorted(p_neg, tau, side="right") / len(p_neg)
        added[k] = min(1.0, float(np.min(f_pos / np.maximum(f_neg, 1e-12)))) * len(p_pos)
        tau = np.quantile(p_pos, 1.0 - quantiles)  # high tail of the positives
        g_neg = 1.0 - np.searchsorted(p_neg, tau, side="left") / len(p_neg)
        g_pos = 1.0 - np.searchsorted(p_pos, tau, side="left") / len(p_pos)
        missed[k] = min(1.0, float(np.min(g_neg / np.maximum(g_pos, 1e-12)))) * len(p_neg)
    return missed, added


def estimate_label_errors(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None,
                          method: str = "auto", min_missing_prob: float = 0.5
                          ) -> tuple[np.ndarray, float]:
    """Estimated number of wrong cells per label and of rows with at least one wrong cell.

    method "auto" (default): "median" on single-label data, "posterior" on multi-label data.
    The multi-label choice is made by bench/choose_audit.py on development data only (Reuters-21578
    train with planted and n-gram instance noise at 10% and 25%, seed 100), by the mean |log(estimate /
    planted error rows)|: posterior 0.326, confident joint 0.337 (the earlier default, chosen on the
    eight ConvAbuse annotators it was then reported on, issue 29), median 0.337, mixture 0.496 (a
    margin of 0.011, just past the 0.01 within which the earlier default would have stayed). It is reported on the ConvAbuse and HS-Brexit annotators,
    which took no part (docs/benchmarks.md). On multi-label emotion data (GoEmotions, SemEval) every
    estimate here counts several times the planted errors: the
    published labels are themselves often wrong (an independent audit of GoEmotions, cited in
    bench/bench_audit_base.py, found strong errors in a large share of comments), and the out-of-fold
    probabilities are so uncertain there that ambiguity and error cannot be fully told apart.

    method "median": the median of the three estimates below, per label and for the
    rows. They fail differently: confident learning counts a weak model's ambiguity as noise (it
    over-counts on hard data), the mixture bound misses errors that look like their wrong label
    (confusions), the posterior sits between. On the tuning settings (bench/bench_audit.py's planted
    noise, seed 0, AG News and ISEAR) the median was never the worst of the three and its worst
    case was no worse than any single one's; it was chosen there, not on the settings it is reported on.

    method "confident_joint": confident learning per label, as a binary task, with the
    anchors of ``find_label_issues``: a given negative is confidently *missed* when ``p >=
    max(t_pos, min_missing_prob)``, a given positive confidently *added* when ``p <= min(t_neg,
    1 - min_missing_prob)``, and a cell between the two anchors is not confidently assigned. The
    rate of confident off-diagonal cells among the confidently assigned cells of each given value,
    times that value's number of cells, estimates its errors (cleanlab's calibration of the
    confident joint, which makes the count independent of how many cells fall between the
    anchors). Without the 0.5 floor a weak model's low ``t_pos`` calls every faintly likely absent
    label confidently missed, and the count grows with the model's uncertainty instead of the
    noise. The floor applies to the error side only: a cell counts as confidently *right* by
    cleanlab's plain anchors (``p >= t_pos`` for a given positive, ``p <= t_neg`` for a given
    negative). Flooring that side too (an earlier version) left hard labels, whose given positives
    seldom reach 0.5, with almost no confidently right positive, so nearly all of them were counted
    wrong. The change was chosen on the ConvAbuse annotators, where the choice of this method was
    made (closer to the real counts by mean absolute log ratio, as many within 30%); on HS-Brexit
    it under-counts the annotators who under-label (README, Label audit).
    "posterior": the expected number of flipped cells under ``cell_error_posteriors``.

    Rows: each label's estimated count is spread over its cells in proportion to their
    ``cell_issue_scores`` (capped at 1), and a row counts ``1 - prod_k (1 - e_ik)``, so a row with
    two wrong cells counts about once. Single-label data (one given label per row) counts the rows
    whose given class is wrong.

    labels, pred_probs: (n, K); mask: optional (n, K) bool. Returns ``(per_label (K,) float64, rows float)``.
    """
    Y, P, M = _check(labels, pred_probs, mask)
    single = bool(((Y & M).sum(1) == 1).all())
    pos, neg = Y & M, ~Y & M
    if method == "auto":
        method = "median" if single else "posterior"
    if method == "median":
        parts = [estimate_label_errors(Y, P, M, method=m, min_missing_prob=min_missing_prob)
                 for m in ("confident_joint", "posterior", "mixture")]
        return np.median([p[0] for p in parts], axis=0), float(np.median([p[1] for p in parts]))
    if method == "posterior":
        E = cell_error_posteriors(Y, P, M).astype(np.float64)
    elif method == "mixture":
        n_missed, n_added = mixture_error_counts(Y, P, M)
        S = np.where(Y, 1.0 - P, P).astype(np.float64)
        share_neg = np.where(neg, S, 0.0) / np.maximum(np.where(neg, S, 0.0).sum(0), 1e-12)
        share_pos = np.where(pos, S, 0.0) / np.maximum(np.where(pos, S, 0.0).sum(0), 1e-12)
        E = share_neg * n_missed + share_pos * n_added
        if single:
            return n_added.astype(np.float64), float(n_added.sum())
    elif method == "confident_joint":
        t_pos, t_neg = per_label_thresholds(Y, P, M)
        hi = np.maximum(t_pos, min_missing_prob)[None, :]
        lo = np.minimum(t_neg, 1.0 - min_missing_prob)[None, :]
        missed, added = neg & (P >= hi), pos & (P <= lo)
        # A cell is confidently *right* by cleanlab's own anchors, without the floor: the floor only
        # stops a weak model from calling faint cells errors. On the right side it would empty the
        # calibration's denominator wherever the model seldom reaches 0.5, and count nearly every
        # given positive of a hard label as wrong.
        right_pos = pos & (P >= t_pos[None, :]) & ~added
        right_neg = neg & (P <= t_neg[None, :]) & ~missed
        n_missed = missed.sum(0) / np.maximum(missed.sum(0) + right_neg.sum(0), 1) * neg.sum(0)
        n_added = added.sum(0) / np.maximum(added.sum(0) + right_pos.sum(0), 1) * pos.sum(0)
        S = np.where(Y, 1.0 - P, P).astype(np.float64)
        share_neg = np.where(neg, S, 0.0) / np.maximum(np.where(neg, S, 0.0).sum(0), 1e-12)
        share_pos = np.where(pos, S, 0.0) / np.maximum(np.where(pos, S, 0.0).sum(0), 1e-12)
        E = share_neg * n_missed + share_pos * n_added
        if single:  # a row's error is its given class; the absent cells only echo it
            return n_added.astype(np.float64), float(n_added.sum())
    else:
        raise TagwiseError(f"unknown error-count method {method!r}; use auto, median, confident_joint, "
                           f"posterior or mixture")
    E = np.clip(E, 0.0, 1.0)
    if single:
        return (E * pos).sum(0), float((E * pos).sum())
    return E.sum(0), float((1.0 - np.prod(1.0 - E, axis=1)).sum())


@dataclass
class LabelIssues:
    """Typed per-cell findings.

    flagged: (n, K) bool cells judged wrong; kind: (n, K) int8 (1 = missing, -1 = wrong, 0 =
    fine); cell_scores: (n, K); suggested: (n, K) uint8 suggested labels; is_issue: (n,) bool.
    """

    flagged: np.ndarray
    kind: np.ndarray
    cell_scores: np.ndarray
    suggested: np.ndarray
    is_issue: np.ndarray


def find_label_issues(labels: np.ndarray, pred_probs: np.ndarray, mask: np.ndarray | None = None,
                      multi_label: bool = True, slack: float = 0.0, min_missing_prob: float = 0.5,
                      cell_scores: np.ndarray | None = None) -> LabelIssues:
    """Flag cells by the per-label confident-learning anchors (see module doc).

    Single-label data (``multi_label=False``): pred_probs rows are renormalised to a distribution;
    an example is an issue when its most likely class differs from the given one and either the
    given class is flagged wrong or the other class flagged missing; the suggestion is that class.
    Returns a ``LabelIssues``.
    """
    Y, P, M = _check(labels, pred_probs, mask)
    if not multi_label:
        P = P / np.maximum(P.sum(1, keepdims=True), 1e-12)
    S = cell_issue_scores(Y, P, M) if cell_scores is None else cell_scores
    t_pos, t_neg = per_label_thresholds(Y, P, M)
    missing = ~Y & M & (P >= np.maximum(t_pos, min_missing_prob)[None, :])
    wrong = Y & M & (P <= (t_neg + slack * (t_pos - t_neg))[None, :])
    flagged = missing | wrong
    if not multi_label:
        top = P.argmax(1)
        given = Y.argmax(1)
        swap = (top != given) & flagged.any(1) & Y.any(1)
        flagged = np.zeros_like(flagged)
        rows = np.flatnonzero(swap)
        flagged[rows, given[rows]] = True
        flagged[rows, top[rows]] = True
    kind = np.where(flagged, np.where(Y, -1, 1), 0).astype(np.int8)
    suggested = np.where(flagged, ~Y, Y).astype(np.uint8)
    return LabelIssues(flagged=flagged, kind=kind, cell_scores=S, suggested=suggested,
                       is_issue=flagged.any(1))
