"""Calibrated per-label probabilities and label sets with a promised error rate (conformal risk control).

Two independent pieces, both pure functions over numpy arrays plus one small estimator each:

- **Calibration** (``PerLabelCalibrator``): per label, identity, temperature (``expit(logit(p) / T)``)
  or isotonic regression, the method chosen per label by cross-validated log loss on the
  calibration rows. ``masked_ece`` measures the result.
- **Risk control** (``ConformalRiskController``): a label set ``{k : score_k >= t}`` whose cut ``t`` is
  chosen on calibration rows so that a *risk* stays below a target on new rows exchangeable with them:

  * ``fnr``: the share of a row's true labels the set misses. In expectation by conformal risk
    control (CRC, Angelopoulos et al. 2022): the largest ``t`` with
    ``n/(n+1) * mean_risk(t) + B/(n+1) <= alpha`` (B = 1, the largest loss).
  * ``fdr`` (``precision = 1 - fdr``): the share of a row's predicted labels that are wrong. Not
    monotone in ``t``, so always Learn-then-Test (Angelopoulos et al. 2021): a Hoeffding-Bentkus
    p-value per cut of a fixed, data-independent grid, tested in a fixed sequence from the smallest
    sets down; the promise holds with probability ``confidence`` (default 0.9).
  * with ``confidence`` (``fnr`` too): the same fixed-sequence test, i.e. an RCPS-style
    high-probability promise ``P(risk <= alpha) >= confidence`` over the draw of calibration rows.

  Cells whose label is unknown (``mask`` False: the row's source does not annotate it) take no part:
  they neither count as misses nor as false positives, and cannot change the chosen cut. With
  ``sources`` the cut is chosen per source (Mondrian), a source with too few rows falls back to the
  pooled cut (said in ``promise_``). Soft targets in [0, 1] count as that share of a positive.

  Each row also gets ``uncertain`` labels: scores between the FNR cut and the FDR cut at the same
  target, i.e. labels the promise cannot settle either way (in the set but not surely right, or
  out of it but possibly true).

- **Abstention** (selective, per row): the promise above is on average over rows; a person wants to
  know *which* rows break it. A row abstains when its expected loss under the model's own scores
  (``row_expected_loss``: for fnr the score mass left out of its set, for fdr the mean doubt of its
  labels) exceeds a cut chosen on the calibration rows so that, of the rows kept, at most a share
  ``row_violation`` (default 0.1) break the promise on their own (row loss > target):
  ``selective_cut``, the largest cut with ``(violations + 1) / (kept + 1) <= row_violation``. The
  set of a row (``labels``) does not depend on it, so the average promise holds on every row, and
  the kept rows get the per-row one. (An earlier rule, "abstain when any label is uncertain",
  abstained on 88-100% of rows with a weak head and said nothing about the kept ones.)
"""
from __future__ import annotations

import numpy as np
from scipy.special import bdtr, expit, logit

from ..types import TagwiseError

RISKS = ("fnr", "fdr", "precision")
_EPS = 1e-6
# the fixed cut grid of the Learn-then-Test procedures: data-independent (required for the
# fixed-sequence test's validity), uniform in logit space so low and high scores are both resolved
LTT_GRID = expit(np.linspace(-9.0, 9.0, 721))


# ---------------------------------------------------------------- helpers
def _as_arrays(Y, P, mask):
    P = np.asarray(P, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if P.ndim != 2 or Y.shape != P.shape:
        raise TagwiseError(f"scores {P.shape} and targets {Y.shape} must both be (n, K).")
    if Y.size and (np.nanmin(Y) < 0 or np.nanmax(Y) > 1):
        raise TagwiseError("targets must lie in [0, 1] (0/1 labels or soft targets).")
    M = np.ones(P.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if M.shape != P.shape:
        raise TagwiseError(f"mask {M.shape} must have the scores' shape {P.shape}.")
    Y = np.where(M, np.nan_to_num(Y), 0.0)  # an unknown cell's value is never read
    return Y, P, M


def parse_risk(text: str) -> tuple[str, float]:
    """``"fnr=0.1"`` / ``"fdr=0.1"`` / ``"precision=0.9"`` -> ``(risk, alpha)`` with risk in {fnr, fdr}.

    ``precision=p`` is ``fdr=1-p``. Raises ``TagwiseError`` with the accepted forms otherwise.
    """
    forms = "fnr=0.1 (missed true labels), precision=0.9 or fdr=0.1 (wrong predicted labels)"
    name, sep, value = str(text).partition("=")
    name = name.strip().lower()
    try:
        level = float(value)
    except ValueError:
        level = float("nan")
    if not sep or name not in RISKS or not 0 < level < 1:
        raise TagwiseError(f"--risk {text!r}: expected NAME=LEVEL with LEVEL in (0, 1), one of {forms}.")
    return ("fdr", 1.0 - level) if name == "precision" else (name, level)


# ---------------------------------------------------------------- losses
def fnr_loss(Y: np.ndarray, Z: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-row false-negative proportion: missed / true labels over known cells.

    Y: (n, K) targets in [0, 1]; Z: (n, K) bool sets; mask: (n, K) bool known cells.
    Returns (n,) float64 in [0, 1]; a row with no known true label has loss 0.
    """
    Y, _, M = _as_arrays(Y, np.asarray(Z, dtype=np.float64), mask)
    Z = np.asarray(Z, dtype=bool)
    pos = (Y * M).sum(1)
    missed = (Y * M * ~Z).sum(1)
    return np.divide(missed, pos, out=np.zeros_like(pos), where=pos > 0)


def fdr_loss(Y: np.ndarray, Z: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-row false-discovery proportion: wrong / predicted labels over known cells.

    Same shapes as ``fnr_loss``; a row with no predicted known label has loss 0.
    """
    Y, _, M = _as_arrays(Y, np.asarray(Z, dtype=np.float64), mask)
    Zk = np.asarray(Z, dtype=bool) & M
    size = Zk.sum(1).astype(np.float64)
    wrong = ((1.0 - Y) * Zk).sum(1)
    return np.divide(wrong, size, out=np.zeros_like(size), where=size > 0)


LOSSES = {"fnr": fnr_loss, "fdr": fdr_loss}


def risk_curve(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None, risk: str,
               cuts: np.ndarray) -> np.ndarray:
    """Mean per-row loss of the sets ``{k : P_k >= t}`` for each cut ``t`` in ``cuts``.

    Y, P, mask: (n, K); cuts: (G,) floats. Returns (G,) float64. ``fnr`` is exact in O(nK log nK)
    (a sorted pass over the known positive cells); ``fdr`` costs O(G n K).
    """
    Y, P, M = _as_arrays(Y, P, mask)
    cuts = np.asarray(cuts, dtype=np.float64)
    n = len(P)
    if n == 0:
        return np.zeros(len(cuts))
    if risk == "fnr":
        pos = (Y * M).sum(1, keepdims=True)
        w = np.divide(Y * M, pos, out=np.zeros_like(Y), where=pos > 0)  # each row's positives share 1
        sel = w > 0
        order = np.argsort(P[sel], kind="stable")
        p_sorted, cum = P[sel][order], np.concatenate([[0.0], np.cumsum(w[sel][order])])
        return cum[np.searchsorted(p_sorted, cuts, side="left")] / n  # mass of positives below t
    if risk == "fdr":
        # per row, histogram the known cells over the sorted cuts, then count from the top cut
        # down: O(nK + nG) instead of one (n, K) comparison per cut
        order = np.argsort(cuts, kind="stable")
        sc = cuts[order]
        G = len(sc)
        rows, cols = np.nonzero(M)
        slot = np.searchsorted(sc, P[rows, cols], side="right")  # cell is in the set of every cut < slot
        size = np.zeros((n, G + 1))
        wrong = np.zeros((n, G + 1))
        np.add.at(size, (rows, slot), 1.0)
        np.add.at(wrong, (rows, slot), 1.0 - Y[rows, cols])
        size = np.cumsum(size[:, ::-1], axis=1)[:, ::-1][:, 1:]  # cells with slot > g, i.e. P >= cut g
        wrong = np.cumsum(wrong[:, ::-1], axis=1)[:, ::-1][:, 1:]
        curve = np.divide(wrong, size, out=np.zeros_like(size), where=size > 0).mean(0)
        out = np.empty(G)
        out[order] = curve
        return out
    raise TagwiseError(f"unknown risk {risk!r}; use one of {RISKS}.")


# ---------------------------------------------------------------- cut selection
def hb_p_value(risk_hat: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Hoeffding-Bentkus p-value of H0: risk > alpha, given the mean of n losses in [0, 1].

    ``min(exp(-n h(min(r, a), a)), e * P(Binomial(n, a) <= ceil(n r)))`` (Bates et al. 2021, RCPS),
    h = the Bernoulli KL divergence. risk_hat: (G,) means. Returns (G,) p-values in [0, 1].
    """
    r = np.clip(np.asarray(risk_hat, dtype=np.float64), 0.0, 1.0)
    rr = np.minimum(r, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = (rr * np.log(np.where(rr > 0, rr / alpha, 1.0))
              + (1 - rr) * np.log(np.where(rr < 1, (1 - rr) / (1 - alpha), 1.0)))
    hoeffding = np.exp(-n * kl)
    bentkus = np.e * bdtr(np.ceil(n * r), n, alpha)
    return np.minimum(np.minimum(hoeffding, bentkus), 1.0)


def crc_cut(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None, alpha: float) -> float | None:
    """The CRC cut for ``fnr``: the largest t with ``n/(n+1) * fnr(t) + 1/(n+1) <= alpha``.

    Returns the cut (a score; sets are ``P >= cut``) or None when even the full label set cannot
    meet the bound (n < 1/alpha - 1 calibration rows). Expected test FNR is then <= alpha.
    """
    Y, P, M = _as_arrays(Y, P, mask)
    n = len(P)
    if n == 0 or 1.0 / (n + 1) > alpha:
        return None
    cands = np.unique(np.concatenate([P[(Y * M) > 0], [np.inf]]))  # fnr changes only at positive scores
    bound = (n * risk_curve(Y, P, M, "fnr", cands) + 1.0) / (n + 1)
    ok = np.flatnonzero(bound <= alpha)  # fnr is nondecreasing in t, so ok is a prefix
    return float(cands[ok[-1]]) if len(ok) else None


def ltt_cut(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None, risk: str, alpha: float,
            delta: float, grid: np.ndarray = LTT_GRID) -> float | None:
    """Learn-then-Test cut: with probability >= 1 - delta the chosen set's risk is <= alpha.

    The cuts of ``grid`` are tested in a fixed order from the safest (``fnr``: low cuts, large sets;
    ``fdr``: high cuts, small sets) on, each at level delta with ``hb_p_value``, stopping at the first
    that is not rejected (fixed-sequence testing controls the family-wise error, so it is valid for
    a non-monotone risk such as fdr). Returns the last rejected cut, or None when none is.
    """
    Y, P, M = _as_arrays(Y, P, mask)
    n = len(P)
    if n == 0:
        return None
    cuts = np.sort(np.asarray(grid, dtype=np.float64))
    cuts = cuts if risk == "fnr" else np.concatenate([[np.inf], cuts[::-1]])  # fdr: empty sets first
    if risk == "fnr":
        cuts = np.concatenate([[-np.inf], cuts])  # the full set (fnr 0) first
    p = hb_p_value(risk_curve(Y, P, M, risk, cuts), n, alpha)
    fail = np.flatnonzero(p > delta)
    stop = fail[0] if len(fail) else len(cuts)
    return float(cuts[stop - 1]) if stop > 0 else None


def choose_cut(Y, P, mask, risk: str, alpha: float, confidence: float | None = None) -> float | None:
    """``crc_cut`` for fnr in expectation, else ``ltt_cut`` (fdr always; its default confidence 0.9)."""
    if risk == "fnr" and confidence is None:
        return crc_cut(Y, P, mask, alpha)
    return ltt_cut(Y, P, mask, risk, alpha, 1.0 - (0.9 if confidence is None else confidence))


# ---------------------------------------------------------------- abstention
def row_expected_loss(P: np.ndarray, labels: np.ndarray, risk: str, mask: np.ndarray | None = None) -> np.ndarray:
    """A row's loss expected under its own scores, to rank rows by doubt (only the order matters).

    P: (n, K) scores in [0, 1]; labels: (n, K) bool sets. ``fnr``: the score mass the set leaves out,
    ``sum_{k not in set} p_k / sum_k p_k``; ``fdr``: ``mean_{k in set} (1 - p_k)`` (0 for an empty set).
    mask: (n, K) bool, the cells that count (calibration rows: the known ones; None: all).
    Returns (n,) float64 in [0, 1]. (Chosen over ``P(any miss)`` under independence on calibration
    halves of the benchmark pools: it keeps more rows at the same per-row violation share.)
    """
    P = np.asarray(P, dtype=np.float64)
    Z = np.asarray(labels, dtype=bool)
    if mask is not None:
        M = np.asarray(mask, dtype=bool)
        P, Z = np.where(M, P, 0.0), Z & M
    if risk == "fnr":
        out_mass, mass = np.where(Z, 0.0, P).sum(1), P.sum(1)
        return np.divide(out_mass, mass, out=np.zeros(len(P)), where=mass > 0)
    if risk == "fdr":
        doubt, size = np.where(Z, 1.0 - P, 0.0).sum(1), Z.sum(1).astype(np.float64)
        return np.divide(doubt, size, out=np.zeros(len(P)), where=size > 0)
    raise TagwiseError(f"unknown risk {risk!r}; use one of {RISKS}.")


def selective_cut(doubt: np.ndarray, violated: np.ndarray, share: float) -> float:
    """The abstention cut: rows with ``doubt > cut`` go to a person.

    doubt: (n,) row scores of the calibration rows; violated: (n,) bool, the row's own loss exceeds the
    target; share: the largest tolerated share of kept rows that violate. Returns the largest cut
    (a doubt value; +inf keeps every row) whose kept rows satisfy ``(violations + 1) / (kept + 1) <= share``
    (the +1 is the conformal correction for the new row) with at least ``1 / share`` kept rows, or -inf
    (every row abstains) when no cut does.
    """
    doubt = np.asarray(doubt, dtype=np.float64)
    violated = np.asarray(violated, dtype=bool)
    if not len(doubt):
        return -np.inf
    order = np.argsort(doubt, kind="stable")
    d, kept = doubt[order], np.arange(1, len(doubt) + 1)
    bound = (np.cumsum(violated[order]) + 1.0) / (kept + 1.0)
    last = np.r_[d[1:] > d[:-1], True]  # cut only between distinct doubts: ties are kept or dropped together
    ok = np.flatnonzero((bound <= share) & (kept >= 1.0 / share) & last)
    if not len(ok):
        return -np.inf
    return np.inf if ok[-1] == len(d) - 1 else float(d[ok[-1]])


# ---------------------------------------------------------------- the estimator
class ConformalRiskController:
    """Label sets with a promised risk, fitted on calibration rows (sklearn-style).

    Parameters
    ----------
    risk : "fnr" | "fdr" | "precision"
    alpha : float in (0, 1)
        Target risk (for ``precision``: the target precision, turned into fdr = 1 - precision).
    confidence : float in (0, 1) or None
        None: in-expectation promise (CRC) for fnr; 0.9 for fdr (Learn-then-Test needs one).
        Else a high-probability promise: P(risk <= alpha) >= confidence over the calibration draw.
    by_source : bool
        Choose one cut per source (Mondrian) when ``fit`` gets ``sources``.
    row_violation : float in (0, 1)
        Abstention: of the rows kept (``abstain`` False), at most this share may break the promise on
        their own (see ``selective_cut``).

    Fitted attributes: ``cut_`` (pooled (lo, hi) cuts: the fnr cut and the fdr cut at alpha),
    ``source_cuts_`` {source: (lo, hi)}, ``abstain_cut_`` (the doubt above which a row abstains) and
    ``source_abstain_cuts_`` {source: cut} (a source with its own cuts and at least 1 / row_violation rows),
    ``promise_`` (a JSON-able dict).
    """

    def __init__(self, risk: str = "fnr", alpha: float = 0.1, confidence: float | None = None,
                 by_source: bool = True, row_violation: float = 0.1):
        self.risk = risk
        self.alpha = alpha
        self.confidence = confidence
        self.by_source = by_source
        self.row_violation = row_violation

    def _target(self) -> tuple[str, float]:
        if self.risk not in RISKS:
            raise TagwiseError(f"unknown risk {self.risk!r}; use one of {RISKS}.")
        if not 0 < self.alpha < 1:
            raise TagwiseError(f"risk level must lie in (0, 1), got {self.alpha}.")
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise TagwiseError(f"--confidence must lie in (0, 1), got {self.confidence}.")
        return ("fdr", 1.0 - self.alpha) if self.risk == "precision" else (self.risk, float(self.alpha))

    def _cuts(self, Y, P, M) -> tuple[float, float] | None:
        """(lo, hi): the fnr cut and the fdr cut at the same target; None if the promised one fails."""
        risk, alpha = self._target()
        fnr = choose_cut(Y, P, M, "fnr", alpha, self.confidence)
        fdr = choose_cut(Y, P, M, "fdr", alpha, self.confidence)
        if (fnr if risk == "fnr" else fdr) is None:
            return None
        # an auxiliary cut that cannot be certified settles nothing: every label of the set (fnr)
        # or every label it leaves out (fdr) stays uncertain
        lo = -np.inf if fnr is None else fnr
        hi = np.inf if fdr is None else fdr
        return lo, hi

    def fit(self, P: np.ndarray, Y: np.ndarray, mask: np.ndarray | None = None, sources=None):
        """P: (n, K) scores; Y: (n, K) targets in [0, 1]; mask: (n, K) bool known cells;
        sources: (n,) source names or None. Raises ``TagwiseError`` when the rows cannot support the
        promise (too few, or the target is out of reach)."""
        risk, alpha = self._target()
        Y, P, M = _as_arrays(Y, P, mask)
        rows = M.any(1)  # a row with no known label carries no information
        Y, P, M = Y[rows], P[rows], M[rows]
        n = len(P)
        pooled = self._cuts(Y, P, M)
        if pooled is None:
            need = (f"at least {int(np.ceil(1 / alpha))} calibration rows" if risk == "fnr" and
                    self.confidence is None else "more calibration rows or a looser target")
            raise TagwiseError(f"cannot promise {self._name()} with {n} calibration rows (with known labels): "
                               f"the target is out of reach. Fix: {need}.")
        self.cut_ = pooled
        self.source_cuts_ = {}
        per_source = {}
        if sources is not None and self.by_source:
            src = np.asarray([None if s is None else str(s) for s in np.asarray(sources, dtype=object)[rows]],
                             dtype=object)
            for s in sorted({x for x in src if x is not None}):
                sel = src == s
                cuts = self._cuts(Y[sel], P[sel], M[sel])
                per_source[s] = {"n_calibration": int(sel.sum()), "pooled": cuts is None}
                if cuts is not None:
                    self.source_cuts_[s] = cuts
                per_source[s].update(self._cut_doc(cuts or pooled))
        if not 0 < self.row_violation < 1:
            raise TagwiseError(f"row_violation must lie in (0, 1), got {self.row_violation}.")
        cal_sources = None if sources is None else np.asarray(sources, dtype=object)[rows]
        # the labels each source annotates: a new row of that source is judged on those only, so its
        # doubt is too (a row of an unknown source, or without one, on every label)
        self.source_columns_ = {} if cal_sources is None else {
            str(s): M[cal_sources == s].any(0) for s in {x for x in cal_sources if x is not None}}
        labels = self._sets(P, cal_sources)[0]
        doubt = row_expected_loss(P, labels, risk, M)
        violated = LOSSES[risk](Y, labels, M) > alpha
        self.abstain_cut_ = selective_cut(doubt, violated, self.row_violation)
        # Mondrian here too: a source with its own cut gets its own abstention cut, so the kept rows'
        # per-row promise holds per source (one pooled cut would let an easy source pay for a hard one)
        self.source_abstain_cuts_ = {}
        for s in self.source_cuts_:
            sel = np.asarray([None if x is None else str(x) for x in cal_sources], dtype=object) == s
            if sel.sum() >= 1.0 / self.row_violation:
                self.source_abstain_cuts_[s] = selective_cut(doubt[sel], violated[sel], self.row_violation)
                per_source[s]["abstain_cut"] = (None if not np.isfinite(self.source_abstain_cuts_[s])
                                                else float(self.source_abstain_cuts_[s]))
        kept = doubt <= self._abstain_cuts(cal_sources, n)
        self.promise_ = {"risk": self.risk, "target": float(self.alpha), "controlled": risk,
                         "controlled_level": alpha, "confidence": self.confidence,
                         "guarantee": ("in expectation (conformal risk control)" if risk == "fnr" and
                                       self.confidence is None else
                                       f"with probability >= {self.confidence or 0.9} (Learn-then-Test, "
                                       f"Hoeffding-Bentkus, fixed-sequence)"),
                         "n_calibration": int(n), "pooled": self._cut_doc(pooled), "sources": per_source,
                         "abstain": {"rule": f"a row abstains when its expected {risk} under the model's scores "
                                             f"exceeds the cut; of the rows kept, at most {self.row_violation:g} "
                                             f"break the promise on their own (row {risk} > {alpha:g})",
                                     "row_violation": float(self.row_violation),
                                     "cut": None if not np.isfinite(self.abstain_cut_) else float(self.abstain_cut_),
                                     "keeps": "all rows" if self.abstain_cut_ == np.inf else
                                     "no row" if self.abstain_cut_ == -np.inf else "rows at or below the cut",
                                     "calibration_abstention_rate": float(1.0 - kept.mean()) if n else 1.0,
                                     "calibration_kept_violation_rate":
                                         float(violated[kept].mean()) if kept.any() else None}}
        return self

    def _name(self) -> str:
        return f"{self.risk}={self.alpha}" + (f" at confidence {self.confidence}" if self.confidence else "")

    def _cut_doc(self, cuts) -> dict:
        def num(x):
            return None if not np.isfinite(x) else float(x)
        lo, hi = cuts
        return {"lambda": num(lo if self._target()[0] == "fnr" else hi), "fnr_cut": num(lo), "fdr_cut": num(hi)}

    def predict(self, P: np.ndarray, sources=None) -> dict:
        """P: (n, K) scores; sources: (n,) names / one name / None (rows of a source without its own
        cut use the pooled one). Returns ``{"labels": (n, K) bool, "uncertain": (n, K) bool,
        "doubt": (n,) float (the row's expected loss), "abstain": (n,) bool (doubt above its cut)}``."""
        P = np.asarray(P, dtype=np.float64)
        labels, uncertain = self._sets(P, sources)
        doubt = self._doubt(P, labels, sources)
        return {"labels": labels, "uncertain": uncertain, "doubt": doubt,
                "abstain": doubt > self._abstain_cuts(sources, len(P))}

    def _doubt(self, P: np.ndarray, labels: np.ndarray, sources) -> np.ndarray:
        """(n,) each row's expected loss (``row_expected_loss``) over its source's own labels."""
        columns = getattr(self, "source_columns_", {})
        mask = None
        if columns and sources is not None:
            names = [sources] * len(P) if isinstance(sources, str) else sources
            mask = np.ones(P.shape, dtype=bool)
            for i, s in enumerate(names):
                if s is not None and str(s) in columns:
                    mask[i] = columns[str(s)]
        return row_expected_loss(P, labels, self._target()[0], mask)

    def _abstain_cuts(self, sources, n: int) -> np.ndarray:
        """(n,) each row's abstention cut: its source's own, else the pooled one."""
        cuts = np.full(n, self.abstain_cut_, dtype=np.float64)
        own = getattr(self, "source_abstain_cuts_", {})
        if own and sources is not None:
            names = [sources] * n if isinstance(sources, str) else sources
            for i, s in enumerate(names):
                if s is not None and str(s) in own:
                    cuts[i] = own[str(s)]
        return cuts

    def _sets(self, P: np.ndarray, sources) -> tuple[np.ndarray, np.ndarray]:
        """(labels, uncertain), both (n, K) bool, with each row's own source cuts (else the pooled ones)."""
        n = len(P)
        if sources is None or isinstance(sources, str):
            sources = [sources] * n
        lo = np.full(n, self.cut_[0])
        hi = np.full(n, self.cut_[1])
        for i, s in enumerate(sources):
            cuts = self.source_cuts_.get(None if s is None else str(s))
            if cuts is not None:
                lo[i], hi[i] = cuts
        lo, hi = lo[:, None], hi[:, None]
        risk = self._target()[0]
        labels = P >= (lo if risk == "fnr" else hi)
        return labels, (P >= lo) & (P < hi)


# ---------------------------------------------------------------- calibration
def masked_ece(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None = None, n_bins: int = 15) -> float:
    """Expected calibration error over the known (example, label) cells, equal-width bins.

    Y: (n, K) targets in [0, 1]; P: (n, K) probabilities; mask: (n, K) bool. Returns a float
    (0 when no cell is known).
    """
    Y, P, M = _as_arrays(Y, P, mask)
    y, p = Y[M], P[M]
    if not len(p):
        return 0.0
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, p, n_bins) - np.bincount(bins, y, n_bins))
    return float(gap.sum() / len(p)) if count.sum() else 0.0


def reliability_bins(Y: np.ndarray, P: np.ndarray, mask: np.ndarray | None = None, n_bins: int = 15) -> dict:
    """The calibration curve over the known cells, in ``masked_ece``'s equal-width bins.

    Returns ``{"mean_score": [...], "observed": [...], "count": [...]}`` (non-empty bins only, lists
    of floats / ints, JSON-able): the mean probability of a bin's cells and the share of them that are
    positive. ``sum(count * |mean_score - observed|) / sum(count)`` is ``masked_ece``.
    """
    Y, P, M = _as_arrays(Y, P, mask)
    y, p = Y[M], P[M]
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1) if len(p) else np.zeros(0, int)
    count = np.bincount(bins, minlength=n_bins)
    used = count > 0
    return {"mean_score": (np.bincount(bins, p, n_bins)[used] / count[used]).tolist(),
            "observed": (np.bincount(bins, y, n_bins)[used] / count[used]).tolist(),
            "count": count[used].astype(int).tolist()}


def _log_loss(y, p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()) if len(p) else 0.0


def fit_temperature(y: np.ndarray, p: np.ndarray) -> float:
    """The T > 0 minimising the log loss of ``expit(logit(p) / T)``; y, p: (m,). Golden-section on log T."""
    z = logit(np.clip(p, _EPS, 1 - _EPS))
    f = lambda lt: _log_loss(y, expit(z / np.exp(lt)))  # noqa: E731
    a, b = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(40):
        if f(c) < f(d):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    return float(np.exp((a + b) / 2))


def fit_isotonic(y: np.ndarray, p: np.ndarray, weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: a nondecreasing map of p to y. Returns (knots x, values v) for np.interp."""
    order = np.argsort(p, kind="stable")
    x, t = p[order], y[order].astype(np.float64)
    w = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=np.float64)[order]
    vals, wts, lefts = [], [], []
    for i in range(len(x)):
        vals.append(t[i])
        wts.append(w[i])
        lefts.append(i)
        while len(vals) > 1 and vals[-2] >= vals[-1]:
            v2, w2 = vals.pop(), wts.pop()
            lefts.pop()
            vals[-1] = (vals[-1] * wts[-1] + v2 * w2) / (wts[-1] + w2)
            wts[-1] += w2
    bounds = lefts + [len(x)]
    knots = np.array([(x[bounds[j]] + x[bounds[j + 1] - 1]) / 2 for j in range(len(vals))])
    return knots, np.clip(np.array(vals), _EPS, 1 - _EPS)


def _apply(method: str, params, p):
    if method == "temperature":
        return expit(logit(np.clip(p, _EPS, 1 - _EPS)) / params)
    if method == "isotonic":
        knots, vals = params
        return np.interp(p, knots, vals) if len(knots) else p
    return p


def _fit_one(method: str, y, p):
    if method == "temperature":
        return fit_temperature(y, p)
    if method == "isotonic":
        return fit_isotonic(y, p)
    return None


class PerLabelCalibrator:
    """Per-label probability calibration: identity, temperature or isotonic, chosen per label.

    Parameters
    ----------
    method : "auto" | "temperature" | "isotonic" | "none"
        "auto" picks, per label, the method with the lowest ``cv``-fold cross-validated log loss on
        the known cells (ties go to the simpler one: none < temperature < isotonic).
    cv : int
    min_cells : int
        A label with fewer known cells (or no known positive/negative) keeps its scores.

    Fitted: ``methods_`` (K,) names, ``params_`` list of per-label parameters.
    """

    METHODS = ("none", "temperature", "isotonic")

    def __init__(self, method: str = "auto", cv: int = 5, min_cells: int = 30, seed: int = 0):
        self.method = method
        self.cv = cv
        self.min_cells = min_cells
        self.seed = seed

    def fit(self, P: np.ndarray, Y: np.ndarray, mask: np.ndarray | None = None):
        """P: (n, K) probabilities; Y: (n, K) targets in [0, 1]; mask: (n, K) bool known cells."""
        if self.method != "auto" and self.method not in self.METHODS:
            raise TagwiseError(f"calibration method {self.method!r}: use auto or one of {self.METHODS}.")
        Y, P, M = _as_arrays(Y, P, mask)
        rng = np.random.default_rng(self.seed)
        self.methods_, self.params_ = [], []
        for k in range(P.shape[1]):
            m = M[:, k]
            y, p = Y[m, k], P[m, k]
            if len(p) < self.min_cells or y.sum() < 1 or (1 - y).sum() < 1:
                self.methods_.append("none")
                self.params_.append(None)
                continue
            method = self.method
            if method == "auto":
                fold = rng.permutation(len(p)) % self.cv
                losses = []
                for cand in self.METHODS:
                    pred = np.empty(len(p))
                    for f in range(self.cv):
                        te = fold == f
                        pred[te] = _apply(cand, _fit_one(cand, y[~te], p[~te]), p[te])
                    losses.append(_log_loss(y, pred))
                method = self.METHODS[int(np.argmin(np.round(losses, 6)))]
            self.methods_.append(method)
            self.params_.append(_fit_one(method, y, p))
        return self

    def transform(self, P: np.ndarray) -> np.ndarray:
        """(n, K) scores -> (n, K) calibrated probabilities (float64)."""
        P = np.asarray(P, dtype=np.float64)
        return np.stack([_apply(m, prm, P[:, k]) for k, (m, prm) in enumerate(zip(self.methods_, self.params_))],
                        axis=1) if P.shape[1] else P
