"""A multi-label label model: labeling-function votes -> a probability per (example, label).

Array-level, scikit-learn style. The input is one vote per (example, labeling function):

- ``votes``: (n, m) int array or scipy.sparse matrix; ``+1`` = the LF says its label applies,
  ``-1`` = it says the label does not apply, ``0`` = abstain. Sparse input stores only the non-abstain
  cells, so a million examples with a hundred mostly silent LFs stay small.
- ``lf_labels``: (m,) int, the label (column of the output) each LF votes on.

The model is Dawid-Skene's class-conditional one, applied per label: each LF j has a 2 x 3 table
``P(outcome | label k_j absent / present)`` over the outcomes abstain / positive / negative, and
the LFs are independent given the labels. Fitting is EM, started from a majority vote, with a
Dirichlet prior that says a firing vote is right more often than not (so EM cannot swap classes
or collapse onto "coverage clusters"), and two knobs that make it robust where LFs break the
independence assumption:

- ``abstain_weight`` scales the evidence an LF gives by *not* firing. A spam rule that fires on a
  third of the spam says something when it stays silent, but many correlated silent rules would
  otherwise add up to overconfident "ham". 0 treats abstains as missing, 1 is Dawid-Skene.
- ``correlation_weighting`` down-weights LFs that fire together more often than their labels
  explain: each LF's evidence is divided by its soft clique size ``1 + sum_j' max(0, rho_jj')``,
  where ``rho`` is the correlation of the two LFs' firing *given the class they vote for* (under
  the current posteriors). Near-duplicate rules then count about once.

Labels are independent Bernoulli variables (``exclusive=False``, several labels per example), or
one categorical class (``exclusive=True``; single-label data: the per-label evidences are combined
by a softmax, so a vote for one class is evidence against the others). ``votes_from_multiclass``
maps multi-class votes (WRENCH's ``weak_labels``: class id or -1) onto this form, one positive-
voting LF per (LF, class) pair it uses.

Label correlations (independent labels only): LFs are written per label, but labels come in
families (anger with disgust, joy with optimism). ``label_coupling`` (K, K), pairwise log odds
ratios of labels co-occurring (``label_coupling_from_gold`` on a labeled dev split), turns the
per-label posteriors into a pairwise model solved by mean field at prediction time:
``logit q_k = evidence_k + logit b_k + coupling_strength * sum_k' J_kk' (q_k' - b_k')``, so an
anger vote lends disgust some belief and a firm "no joy" takes some from optimism. EM fits the
LF tables without it. Without a matrix (or with ``coupling_strength=0``) labels stay independent.

Class balance: pass ``class_balance`` (e.g. measured on a dev split), else EM estimates it.
Gold labels can be passed to ``fit`` (``gold``: (n, K) with -1 = unknown); their rows are clamped
to the gold values during EM, so a few labeled examples anchor every LF's accuracy, and (without
``class_balance``) they give the class balance.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logit
from sklearn.base import BaseEstimator

from ..types import TagwiseError

_ABSTAIN, _POS, _NEG = 0, 1, 2
_EPS = 1e-6
_MIN_COUPLING_ROWS = 50  # fully labeled rows needed to estimate label co-occurrence from gold
_MEAN_FIELD_ITERS = 50
_MEAN_FIELD_CHUNK = 65536


def votes_from_multiclass(L, n_classes: int | None = None, abstain: int = -1):
    """Multi-class votes -> (votes, lf_labels, lf_sources) for ``WeakLabelModel(exclusive=True)``.

    L: (n, m) int, each cell a class id in [0, n_classes) or ``abstain``. Every (LF, class) pair that
    occurs becomes one LF voting +1 for that class where the original LF voted it.
    Returns votes (n, m') scipy.sparse CSR int8, lf_labels (m',) int, lf_sources (m',) int: the
    original LF of each new column.
    """
    L = np.asarray(L)
    if L.ndim != 2:
        raise TagwiseError(f"multi-class votes must be a 2-d (examples x LFs) array, got shape {L.shape}")
    if n_classes is None:
        n_classes = int(L.max()) + 1 if L.size else 0
    bad = (L != abstain) & ((L < 0) | (L >= n_classes))
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise TagwiseError(f"vote {L[i, j]} at example {i}, LF {j} is neither a class id in "
                           f"[0, {n_classes}) nor the abstain value {abstain}")
    rows, cols = np.nonzero(L != abstain)
    classes = L[rows, cols].astype(np.int64)
    pair = cols.astype(np.int64) * n_classes + classes
    used, new_cols = np.unique(pair, return_inverse=True)
    votes = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, new_cols)),
                          shape=(L.shape[0], len(used)))
    return votes, (used % n_classes).astype(np.int64), (used // n_classes).astype(np.int64)


def label_coupling_from_gold(Y, smoothing: float = 1.0) -> np.ndarray:
    """(K, K) pairwise log odds ratios of labels co-occurring, from fully labeled rows.

    Y: (n, K) 0/1 gold indicators (rows with any unknown, -1, cell are skipped). Each 2 x 2 table
    of (label k, label k') counts gets ``smoothing`` added to every cell, so rare pairs shrink to
    0 (independence). The diagonal is 0.
    """
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise TagwiseError(f"gold labels must be a 2-d (examples x labels) array, got shape {Y.shape}")
    Y = Y[(Y >= 0).all(axis=1)].astype(float)
    n = float(len(Y))
    both = Y.T @ Y
    ones = Y.sum(axis=0)
    a = float(smoothing)
    n11 = both + a
    n10 = ones[:, None] - both + a
    n01 = ones[None, :] - both + a
    n00 = n - ones[:, None] - ones[None, :] + both + a
    J = np.log(n11 * n00 / (n10 * n01))
    np.fill_diagonal(J, 0.0)
    return J


def apply_label_coupling(P, class_balance, label_coupling, strength: float = 0.5) -> np.ndarray:
    """Independent per-label probabilities -> the pairwise model's mean-field probabilities.

    P: (n, K) P(label k | its own evidence); class_balance: (K,) P(label k); label_coupling:
    (K, K) log odds ratios (``label_coupling_from_gold``). Solves
    ``logit q_k = logit P_k + strength * sum_k' J_kk' (q_k' - b_k')`` by fixed-point iteration.
    Returns q, (n, K) float. Any per-label model's output can go through it.
    """
    P = np.asarray(P, dtype=float)
    J = float(strength) * np.asarray(label_coupling, dtype=float)
    if not P.size or not np.any(J):
        return P
    b = np.asarray(class_balance, dtype=float)[None, :]
    # expit's slope is at most 1/4, so the plain fixed-point map contracts when a quarter of J's
    # largest absolute row sum is below 1; otherwise (SemEval's 11 emotions, whose families
    # couple strongly) it is damped by half
    damping = 0.0 if 0.25 * np.abs(J).sum(axis=1).max() < 1.0 else 0.5
    out = np.empty_like(P)
    for start in range(0, len(P), _MEAN_FIELD_CHUNK):  # bounded temporaries for millions of rows
        chunk = P[start:start + _MEAN_FIELD_CHUNK]
        base = logit(np.clip(chunk, _EPS, 1 - _EPS))
        q = chunk.copy()
        active = np.arange(len(q))  # rows that have settled leave the loop
        for _ in range(_MEAN_FIELD_ITERS):
            qa = q[active]
            q_new = damping * qa + (1 - damping) * expit(base[active] + (qa - b) @ J.T)
            q[active] = q_new
            active = active[np.abs(q_new - qa).max(axis=1) >= 1e-4]
            if not len(active):
                break
        out[start:start + len(q)] = q
    return out


def _unique_rows(A: np.ndarray):
    """Distinct rows of a 2-d int8 array and how often each occurs."""
    if A.shape[1] == 0:
        return A[:1], np.array([len(A)])
    A = np.ascontiguousarray(A)
    keys = A.view(np.dtype((np.void, A.dtype.itemsize * A.shape[1]))).ravel()
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return A[first], counts


def _as_csr(votes) -> sp.csr_matrix:
    if sp.issparse(votes):
        V = sp.csr_matrix(votes)
        V.sum_duplicates()
    else:
        arr = np.asarray(votes)
        if arr.ndim != 2:
            raise TagwiseError(f"votes must be a 2-d (examples x LFs) array, got shape {arr.shape}")
        V = sp.csr_matrix(arr)
    V.eliminate_zeros()
    if V.nnz and not np.all(np.isin(V.data, (-1, 1))):
        bad = sorted(set(np.unique(V.data).tolist()) - {-1, 1})[:5]
        raise TagwiseError(f"votes must be +1 (positive), -1 (negative) or 0 (abstain); found {bad}. "
                           f"Fix: map multi-class votes with votes_from_multiclass().")
    V.data = V.data.astype(np.int8)
    return V


class WeakLabelModel(BaseEstimator):
    """Label model for labeling-function votes, multi-label or single-label.

    Parameters
    ----------
    n_labels : int or None
        Number of labels K (output columns); default ``max(lf_labels) + 1``.
    exclusive : bool
        True: exactly one label per example (multi-class); False: independent labels.
    abstain_weight : float in [0, 1] or None
        How much an LF's silence counts as evidence (see module doc). None: 0 for exclusive
        models, 1 (plain Dawid-Skene) for independent labels.
    correlation_weighting : bool
        Divide each LF's evidence by its soft clique size (see module doc).
    correlation_threshold : float in [0, 1)
        Conditional correlations up to this count as chance: only ``(rho - t) / (1 - t)`` above it
        adds to the clique size, so LFs that merely tend to co-fire keep most of their weight.
    prior_accuracy, prior_strength : float
        Dirichlet prior on each LF: its firing votes are right with probability ``prior_accuracy``,
        worth ``prior_strength`` firing votes.
    n_iter, tol : EM iterations cap and convergence tolerance (max change of any posterior).
    coupling_strength : float >= 0
        Scale of the label coupling (see module doc) when ``fit`` gets a ``label_coupling``
        matrix (or gold rows to estimate it from). Chosen on SemEval-2018 E-c dev: two halves,
        each half's co-occurrences and cuts scored on the other half, by label-model and
        end-model macro-F1 (bench/bench_weak_multilabel.py ``--tune``). It damps the pairwise
        odds ratios, which count a shared cause twice when three labels move together.

    How the defaults were chosen: on the WRENCH *valid* splits (youtube, sms, trec; exclusive
    models), in two stages (bench/bench_weak.py ``--tune`` prints both grids): the abstain weight
    and correlation settings by the mean of the label-model main metrics; then the prior
    (accuracy, strength) by the mean of label-model and end-model valid metrics (a head trained
    on the soft labels, which is what the label model is for; ties go to the better heads). An
    accuracy of 0.85 tied 0.7 there and trained the better heads: sharper soft labels where rules
    are precise. On SemEval-2018 E-c dev it was no worse for independent labels, whose abstain
    weight was chosen on that *dev* split (macro-F1 of ``predict``,
    bench/bench_weak_multilabel.py ``--tune``): with one-sided LFs, silence carries the evidence that keeps rare labels' probabilities calibrated.
    Test splits took no part.
    """

    def __init__(self, n_labels=None, exclusive=False, abstain_weight=None, correlation_weighting=True,
                 correlation_threshold=0.3, prior_accuracy=0.85, prior_strength=25.0, n_iter=100, tol=1e-4,
                 coupling_strength=0.5):
        self.n_labels = n_labels
        self.exclusive = exclusive
        self.abstain_weight = abstain_weight
        self.correlation_weighting = correlation_weighting
        self.correlation_threshold = correlation_threshold
        self.prior_accuracy = prior_accuracy
        self.prior_strength = prior_strength
        self.n_iter = n_iter
        self.tol = tol
        self.coupling_strength = coupling_strength

    # -- helpers -----------------------------------------------------------
    def _abstain_weight(self) -> float:
        if self.abstain_weight is None:
            return 0.0 if self.exclusive else 1.0
        return float(self.abstain_weight)

    def _prepare(self, votes, lf_labels=None):
        V = _as_csr(votes)
        m = V.shape[1]
        if lf_labels is None:
            lf_labels = getattr(self, "lf_labels_", None)
        if lf_labels is None:
            raise TagwiseError("lf_labels is required: the label (output column) each LF votes on")
        lf_labels = np.asarray(lf_labels, dtype=np.int64)
        if lf_labels.shape != (m,):
            raise TagwiseError(f"lf_labels has shape {lf_labels.shape}, votes have {m} LF columns; "
                               f"give one label index per LF")
        rows = np.repeat(np.arange(V.shape[0], dtype=np.int64), np.diff(V.indptr))
        return V, lf_labels, rows

    def _evidence(self, V, rows, lf_labels, K, log_ratio, weights):
        """(n, K) summed log-likelihood ratio of 'label present' vs 'absent' from the LFs."""
        d = log_ratio * weights[:, None]
        d[:, _ABSTAIN] *= self._abstain_weight()
        cols = V.indices
        fired = np.where(V.data > 0, d[cols, _POS], d[cols, _NEG]) - d[cols, _ABSTAIN]
        n = V.shape[0]
        S = np.bincount(rows * K + lf_labels[cols], weights=fired, minlength=n * K).reshape(n, K)
        S += np.bincount(lf_labels, weights=d[:, _ABSTAIN], minlength=K)[None, :]
        return S

    def _posterior(self, S, balance):
        if self.exclusive:
            Z = S + np.log(np.clip(balance, _EPS, None))[None, :]
            Z -= Z.max(axis=1, keepdims=True)
            P = np.exp(Z)
            return P / P.sum(axis=1, keepdims=True)
        return expit(S + logit(np.clip(balance, _EPS, 1 - _EPS))[None, :])

    def _tables(self, V, rows, lf_labels, Q, w):
        """M-step: (m, 2, 3) P(outcome | label absent/present) with the Dirichlet prior.
        Row i stands for w[i] identical examples."""
        m = V.shape[1]
        cols = V.indices
        rw = w[rows]
        q1 = Q[rows, lf_labels[cols]] * rw
        q0 = rw - q1
        pos = V.data > 0
        counts = np.zeros((m, 2, 3))
        counts[:, 1, _POS] = np.bincount(cols[pos], weights=q1[pos], minlength=m)
        counts[:, 0, _POS] = np.bincount(cols[pos], weights=q0[pos], minlength=m)
        counts[:, 1, _NEG] = np.bincount(cols[~pos], weights=q1[~pos], minlength=m)
        counts[:, 0, _NEG] = np.bincount(cols[~pos], weights=q0[~pos], minlength=m)
        present = (Q * w[:, None]).sum(axis=0)[lf_labels]
        counts[:, 1, _ABSTAIN] = np.maximum(present - counts[:, 1, 1:].sum(axis=1), 0)
        counts[:, 0, _ABSTAIN] = np.maximum(w.sum() - present - counts[:, 0, 1:].sum(axis=1), 0)
        return self._normalise(counts + self._prior_counts)

    @staticmethod
    def _normalise(counts):
        table = counts / counts.sum(axis=2, keepdims=True)
        return np.clip(table, _EPS, 1.0)

    def _prior(self, V, rows, lf_labels, balance, w):
        """(m, 2, 3) pseudo-counts: firing votes right with prob prior_accuracy, abstains class-free."""
        m, n = V.shape[1], float(w.sum())
        pos = V.data > 0
        rw = w[rows]
        n_pos = np.bincount(V.indices[pos], weights=rw[pos], minlength=m)
        n_neg = np.bincount(V.indices[~pos], weights=rw[~pos], minlength=m)
        fired = np.maximum(n_pos + n_neg, 1.0)
        s, a = float(self.prior_strength), float(self.prior_accuracy)
        prior = np.zeros((m, 2, 3))
        prior[:, 1, _POS] = s * a * n_pos / fired
        prior[:, 0, _POS] = s * (1 - a) * n_pos / fired
        prior[:, 0, _NEG] = s * a * n_neg / fired
        prior[:, 1, _NEG] = s * (1 - a) * n_neg / fired
        # abstains: same rate under both classes, as much prior mass per abstain as per firing vote
        silent = s * np.maximum(n - fired, 0) / fired
        b = np.clip(balance[lf_labels], 0.01, 0.99)
        prior[:, 1, _ABSTAIN] = silent * b
        prior[:, 0, _ABSTAIN] = silent * (1 - b)
        return prior + 1e-3

    def _initial_posteriors(self, V, rows, lf_labels, K, balance):
        """Majority vote (+1 per positive, -1 per negative vote) softened towards the balance."""
        n = V.shape[0]
        score = np.bincount(rows * K + lf_labels[V.indices], weights=V.data.astype(float),
                            minlength=n * K).reshape(n, K)
        return self._posterior(score * logit(self.prior_accuracy), balance)

    def _correlation_weights(self, V, lf_labels, Q, row_weights):
        """(m,) 1 / soft clique size, from firing correlations given the class each LF votes for."""
        m = V.shape[1]
        weights = np.ones(m)
        F = V.copy()
        F.data = np.ones_like(F.data, dtype=np.float64)
        polarity = np.sign(np.asarray(V.T @ row_weights).ravel())
        for k in np.unique(lf_labels):
            for sign in (1, -1):
                js = np.flatnonzero((lf_labels == k) & (polarity == sign))
                if len(js) < 2:
                    continue
                w = (Q[:, k] if sign > 0 else 1 - Q[:, k]) * row_weights
                total = w.sum()
                if total <= _EPS:
                    continue
                Fk = F[:, js].tocsc()
                mean = np.asarray(Fk.T @ w).ravel() / total
                joint = np.asarray((Fk.T @ Fk.multiply(w[:, None]).tocsc()).todense()) / total
                cov = joint - np.outer(mean, mean)
                var = np.clip(np.diag(cov), _EPS, None)
                rho = cov / np.sqrt(np.outer(var, var))
                np.fill_diagonal(rho, 0.0)
                t = float(self.correlation_threshold)
                excess = np.clip((rho - t) / (1.0 - t), 0, None)
                weights[js] = 1.0 / (1.0 + excess.sum(axis=1))
        return weights

    # -- API ---------------------------------------------------------------
    def fit(self, votes, lf_labels, class_balance=None, gold=None, label_coupling=None):
        """Fit by EM.

        votes: (n, m) ints in {-1, 0, +1} or scipy.sparse; lf_labels: (m,) label index per LF.
        class_balance: (K,) prior P(label present) (exclusive: class proportions), or None to
        estimate it. gold: optional (n, K) with 1 / 0 known, -1 unknown (exclusive: rows with a
        known 1 are clamped one-hot). label_coupling: optional (K, K) log odds ratios of labels
        co-occurring (``label_coupling_from_gold``); independent labels only. Without it, and
        with at least 50 fully known gold rows, it is estimated from those.
        """
        V, lf_labels, rows = self._prepare(votes, lf_labels)
        n, m = V.shape
        K = int(self.n_labels) if self.n_labels is not None else int(lf_labels.max()) + 1 if m else 0
        if m and (lf_labels.min() < 0 or lf_labels.max() >= K):
            raise TagwiseError(f"lf_labels must lie in [0, {K}); found {lf_labels.min()}..{lf_labels.max()}")
        if not 0.0 <= self._abstain_weight() <= 1.0:
            raise TagwiseError(f"abstain_weight must be in [0, 1] or None, got {self.abstain_weight}")
        fixed_balance = class_balance is not None
        if fixed_balance:
            balance = np.asarray(class_balance, dtype=float)
            if balance.shape != (K,):
                raise TagwiseError(f"class_balance has shape {balance.shape}; expected ({K},)")
        else:
            balance = np.full(K, 1.0 / K if self.exclusive else 0.5)
        if gold is not None:
            gold = np.asarray(gold)
            if gold.shape != (n, K):
                raise TagwiseError(f"gold has shape {gold.shape}; expected ({n}, {K}) with -1 = unknown")
            gold = np.clip(gold, -1, 1).astype(np.int8)
        coupling = np.zeros((K, K))
        if not self.exclusive:
            if label_coupling is not None:
                coupling = np.asarray(label_coupling, dtype=float)
                if coupling.shape != (K, K):
                    raise TagwiseError(f"label_coupling has shape {coupling.shape}; expected ({K}, {K})")
            elif gold is not None and K > 1 and (gold >= 0).all(axis=1).sum() >= _MIN_COUPLING_ROWS:
                coupling = label_coupling_from_gold(gold)
        if float(self.coupling_strength) < 0:
            raise TagwiseError(f"coupling_strength must be >= 0, got {self.coupling_strength}")
        # Exclusive: one model over all LFs. Otherwise labels are independent, so each label is its
        # own small model over its LFs; either way EM runs on the distinct vote patterns (with their
        # counts), which are few even for millions of examples.
        blocks = [np.arange(m)] if self.exclusive else [np.flatnonzero(lf_labels == k) for k in range(K)]
        Vc = V.tocsc()
        tables = np.zeros((m, 2, 3))
        weights = np.ones(m)
        balance = balance.copy()
        self.n_iter_ = 0
        for b, cols in enumerate(blocks):
            if not len(cols):
                continue
            label_cols = np.arange(K) if self.exclusive else np.array([b])
            local_labels = lf_labels[cols] if self.exclusive else np.zeros(len(cols), dtype=np.int64)
            dense = Vc[:, cols].toarray().astype(np.int8)
            if gold is not None:
                dense = np.hstack([dense, gold[:, label_cols]])
            uniq, counts = _unique_rows(dense)
            Vu = sp.csr_matrix(uniq[:, :len(cols)])
            gold_u = uniq[:, len(cols):] if gold is not None else None
            t, wts, bal, iters = self._em(Vu, counts.astype(float), local_labels, len(label_cols),
                                          balance[label_cols], fixed_balance, gold_u)
            tables[cols], weights[cols], balance[label_cols] = t, wts, bal
            self.n_iter_ = max(self.n_iter_, iters)
        if self.exclusive:
            balance = balance / balance.sum()
        self.lf_labels_ = lf_labels
        self.n_labels_ = K
        self.class_balance_ = balance
        self.tables_ = tables
        self.lf_weights_ = weights
        self.label_coupling_ = coupling
        return self

    def _em(self, V, w, lf_labels, K, balance, fixed_balance, gold):
        """EM on distinct vote patterns V (u, m) with counts w (u,). -> tables, weights, balance, iters."""
        rows = np.repeat(np.arange(V.shape[0], dtype=np.int64), np.diff(V.indptr))
        m = V.shape[1]
        clamp = None
        if gold is not None:
            clamp = gold >= 0
            if self.exclusive:
                clamp = np.repeat((gold == 1).any(axis=1, keepdims=True), K, axis=1)
            gold_values = np.where(gold == 1, 1.0, 0.0)
            known = (gold >= 0) * w[:, None]
            if not fixed_balance and known.sum(axis=0).min(initial=np.inf) >= 5:
                # gold rows are an unbiased sample of the balance; EM's own estimate drifts towards
                # whichever class the stronger LFs vote
                hits = ((gold == 1) * w[:, None]).sum(axis=0)
                balance = np.clip(hits / known.sum(axis=0), 0.005, 0.995)
                if self.exclusive:
                    balance = np.clip(hits, 0.005, None) / np.clip(hits, 0.005, None).sum()
                fixed_balance = True
        self._prior_counts = self._prior(V, rows, lf_labels, balance, w)
        Q = self._initial_posteriors(V, rows, lf_labels, K, balance)
        weights = np.ones(m)
        reweighted = not self.correlation_weighting
        # correlations are measured once, when EM has converged without them (or halfway), then
        # EM goes on with the weights
        reweight_at = max(int(self.n_iter) // 2, 1)
        iters = 0
        tables = self._normalise(self._prior_counts)
        for it in range(int(self.n_iter)):
            if clamp is not None:
                Q = np.where(clamp, gold_values, Q)
            if not fixed_balance:
                balance = np.clip((Q * w[:, None]).sum(axis=0) / w.sum(), 0.005, 0.995)
                if self.exclusive:
                    balance = balance / balance.sum()
            tables = self._tables(V, rows, lf_labels, Q, w)
            log_ratio = np.log(tables[:, 1, :]) - np.log(tables[:, 0, :])
            Q_new = self._posterior(self._evidence(V, rows, lf_labels, K, log_ratio, weights), balance)
            delta = float(np.max(np.abs(Q_new - Q))) if Q.size else 0.0
            Q = Q_new
            iters = it + 1
            if delta < self.tol or (not reweighted and iters >= reweight_at):
                if reweighted:
                    break
                weights = self._correlation_weights(V, lf_labels, Q, w)
                reweighted = True
        return tables, weights, balance, iters

    def _check_fitted(self):
        if not hasattr(self, "tables_"):
            raise TagwiseError("this WeakLabelModel is not fitted yet; call fit(votes, lf_labels) first")

    def predict_proba(self, votes) -> np.ndarray:
        """(n, K) P(label k applies | votes); exclusive models give rows that sum to 1."""
        self._check_fitted()
        V, lf_labels, rows = self._prepare(votes)
        log_ratio = np.log(self.tables_[:, 1, :]) - np.log(self.tables_[:, 0, :])
        S = self._evidence(V, rows, lf_labels, self.n_labels_, log_ratio, self.lf_weights_)
        P = self._posterior(S, self.class_balance_)
        J = getattr(self, "label_coupling_", None)
        if self.exclusive or J is None:
            return P
        return apply_label_coupling(P, self.class_balance_, J, self.coupling_strength)

    def predict(self, votes) -> np.ndarray:
        """(n, K) uint8 indicators: exclusive -> the argmax class one-hot, else P >= 0.5."""
        P = self.predict_proba(votes)
        if self.exclusive:
            out = np.zeros(P.shape, dtype=np.uint8)
            out[np.arange(len(P)), P.argmax(axis=1)] = 1
            return out
        return (P >= 0.5).astype(np.uint8)

    @property
    def lf_accuracies_(self) -> np.ndarray:
        """(m,) estimated P(vote correct | LF fires), from the fitted tables and class balance."""
        self._check_fitted()
        b = self.class_balance_[self.lf_labels_]
        t = self.tables_
        right = b * t[:, 1, _POS] + (1 - b) * t[:, 0, _NEG]
        fired = b * (t[:, 1, _POS] + t[:, 1, _NEG]) + (1 - b) * (t[:, 0, _POS] + t[:, 0, _NEG])
        return right / np.clip(fired, _EPS, None)

    # -- persistence ---------------------------------------------------------
    def get_state(self):
        self._check_fitted()
        meta = {"params": self.get_params(), "n_labels_": int(self.n_labels_)}
        arrays = {"lf_labels": self.lf_labels_, "class_balance": self.class_balance_,
                  "tables": self.tables_, "lf_weights": self.lf_weights_,
                  "label_coupling": getattr(self, "label_coupling_", np.zeros((self.n_labels_,) * 2))}
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        model = cls(**meta["params"])
        model.n_labels_ = int(meta["n_labels_"])
        model.lf_labels_ = np.asarray(arrays["lf_labels"], dtype=np.int64)
        model.class_balance_ = np.asarray(arrays["class_balance"], dtype=float)
        model.tables_ = np.asarray(arrays["tables"], dtype=float)
        model.lf_weights_ = np.asarray(arrays["lf_weights"], dtype=float)
        # models saved before label coupling existed have none: independent labels
        model.label_coupling_ = np.asarray(arrays.get("label_coupling", np.zeros((model.n_labels_,) * 2)),
                                           dtype=float)
        return model
