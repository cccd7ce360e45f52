"""Consensus labels and annotator quality from several annotators per example (multi-label).

Data shape (``Annotations``), one row per (example, annotator) judgement, ``m`` rows in all:

- ``example``: (m,) int, the example's index in ``[0, n_examples)``.
- ``annotator``: (m,) int, the annotator's index in ``[0, n_annotators)``.
- ``labels``: (m, K) {0,1}, the annotator's verdict on each of the K labels.
- ``known``: (m, K) bool or None, False where the annotator said nothing about a label (a task
  that asked only some labels); such cells are not votes. None means every cell is a vote.

An (example, annotator) pair occurs at most once: an exact repeat is dropped, a repeat with
different labels is an error unless merged first (``Annotations.merge_repeats``). Examples with no judgement are allowed (their consensus is the
prior, or the classifier's probability when one is given).

The annotator model (``ConsensusModel``) is Dawid-Skene run per label with shared structure:

- each label k has a class prior; each annotator a has a sensitivity ``s[a, k]`` (P(vote 1 |
  label applies)) and specificity ``t[a, k]`` (P(vote 0 | it does not)); votes are independent
  given the true labels;
- ``s[a, k]`` and ``t[a, k]`` get a Beta prior centred on the annotator's own rates over all
  labels (themselves shrunk to the whole crowd's), so an annotator seen on few positives of a
  rare label borrows from its behaviour elsewhere instead of landing on 0 or 1 (``pool``);
- optionally the classifier's out-of-fold probabilities ``pred_probs`` (n, K) replace the flat
  class prior by a per-example prior ``sigmoid(b_k + w_k * logit(pred_probs[:, k]))`` whose two
  coefficients per label are fitted in the M-step (the CROWDLAB idea, as a likelihood model):
  with ``w_k = 0`` it is plain Dawid-Skene; a classifier that tracks the crowd gets a large ``w_k``
  and decides examples with one or two votes or split votes; a useless one gets ``w_k`` near 0.

EM starts from the vote shares (majority vote) and alternates the E-step (posterior of every
(example, label) cell) and the M-step (prior and annotator rates) until the posteriors move less
than ``tol``. Votes are kept as two sparse (n, A) count matrices per label, so an iteration is
four sparse matrix-vector products per label: O(number of votes) time, no dense (m, K) array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ..types import Annotations, TagwiseError  # noqa: F401  (Annotations re-exported)

_EPS = 1e-6




def _incidence(index: np.ndarray, size: int) -> sp.csr_matrix:
    """(size, m) sparse 0/1 matrix with a 1 at (index[j], j): summing rows by group is one product."""
    m = len(index)
    return sp.csr_matrix((np.ones(m, np.float64), (index, np.arange(m))), shape=(size, m))


def _vote_matrices(ann: Annotations, n_annotators: int | None = None
                   ) -> tuple[list[sp.csr_matrix], list[sp.csr_matrix]]:
    """Per label k: (n, A) sparse counts of 1-votes and of 0-votes. EM then needs only sparse
    matrix-vector products per label, never an (m, K) temporary."""
    A = ann.n_annotators if n_annotators is None else n_annotators
    V = ann.votes()
    N1, N0 = [], []
    for k in range(ann.n_labels):
        rows = V[:, k]
        e, a, y = ann.example[rows], ann.annotator[rows], ann.labels[rows, k].astype(bool)
        N1.append(sp.csr_matrix((np.ones(int(y.sum())), (e[y], a[y])), shape=(ann.n_examples, A)))
        N0.append(sp.csr_matrix((np.ones(int((~y).sum())), (e[~y], a[~y])), shape=(ann.n_examples, A)))
    return N1, N0


def vote_counts(ann: Annotations) -> tuple[np.ndarray, np.ndarray]:
    """-> (positive votes, votes), each (n_examples, K) float."""
    E = _incidence(ann.example, ann.n_examples)
    V = ann.votes().astype(np.float64)
    return np.asarray(E @ (ann.labels * V)), np.asarray(E @ V)


def majority_vote(ann: Annotations, tie: float = 0.5, empty: float = 0.0) -> np.ndarray:
    """Vote share per (example, label) cell, (n, K) float: the fraction of votes for the label.

    A cell without votes gets ``empty``. ``share > 0.5`` is the majority decision; ``tie`` is the
    value of a cell split exactly in half (0.5 keeps the tie visible; the caller breaks it)."""
    pos, cnt = vote_counts(ann)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(cnt > 0, pos / np.maximum(cnt, 1), empty)
    share[(cnt > 0) & (pos * 2 == cnt)] = tie
    return share


@dataclass
class ConsensusResult:
    """What ``ConsensusModel.fit`` leaves behind, as plain arrays.

    proba: (n, K) posterior probability that each label applies.
    confidence: (n, K) probability that the consensus decision (proba >= 0.5) is right.
    sensitivity, specificity: (A, K) per annotator and label.
    n_examples: (A,) distinct examples each annotator judged.
    evidence_pos, evidence_neg: (A, K) expected positives / negatives each rate rests on.
    prior: (K,) class prior; weight: (K,) classifier weight (0 without pred_probs).
    """

    proba: np.ndarray
    confidence: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    n_examples: np.ndarray
    evidence_pos: np.ndarray
    evidence_neg: np.ndarray
    prior: np.ndarray
    weight: np.ndarray
    n_iter: int


class ConsensusModel:
    """Multi-label Dawid-Skene with pooled Beta priors and an optional classifier prior.

    Parameters
    ----------
    prior_strength: pseudo-count of the Beta prior on each annotator's sensitivity and
        specificity for a label.
    pool: where that prior is centred: ``"annotator"`` (the annotator's own rates over all
        labels, themselves shrunk to the whole crowd's with the same strength) or ``"label"``
        (the label's rates pooled over all annotators).
    rates: ``"two-coin"`` (a sensitivity and a specificity per annotator and label) or
        ``"one-coin"`` (one accuracy per annotator and label, both rates equal).
    use_classifier: when ``pred_probs`` is passed to ``fit``, learn the per-example prior from it.
    classifier_l2: ridge penalty on the classifier coefficients (keeps ``w_k`` finite on labels
        whose votes the classifier separates perfectly).

    How the defaults were chosen: on the *train* items only of HS-Brexit and ConvAbuse, with
    simulated crowds of seed 100 (never the report seeds or the test items; bench_consensus.py
    ``--part choose``) and with the real crowd against the train items' aggregate labels.
    ``two-coin`` over ``one-coin``: one-coin cannot represent an always-positive spammer and broke
    down on every simulated crowd (it tracks the real majority better). ``pool`` x
    ``prior_strength`` in {label, annotator} x {1, 4, 16}: annotator pooling with 16 had the best
    mean consensus macro-F1 over the 8 simulated train settings and on the real ConvAbuse train
    items (label pooling let a crowd full of spammers drag good annotators' rates down).
    ``use_classifier`` off: the classifier prior lowered train macro-F1 in most settings (it
    helped some crowds with one real vote per example); turn it on for very sparse crowds.
    Not chosen per dataset: ``bench_consensus.py --part criteria`` scored each candidate (two-coin,
    one-coin, vote shares, two-coin with the classifier prior) by the likelihood of held-out votes
    (votes only, no gold). It prefers two-coin over one-coin and vote shares on every real and
    simulated crowd, but it would switch the classifier prior on where it lowers the train-item
    F1, and on HS-Brexit it keeps the two-coin consensus that departs from the published majority
    (the two annotator groups' votes are not independent given the label, which no such criterion
    sees), so the defaults stay fixed.
    max_iter, tol: EM stops after ``max_iter`` rounds or when no posterior moves more than ``tol``.
    """

    def __init__(self, prior_strength: float = 16.0, rates: str = "two-coin", use_classifier: bool = False,
                 classifier_l2: float = 1.0, max_iter: int = 100, tol: float = 1e-4, pool: str = "annotator"):
        if rates not in ("two-coin", "one-coin"):
            raise TagwiseError(f"consensus: rates must be 'two-coin' or 'one-coin'; got {rates!r}")
        if pool not in ("label", "annotator"):
            raise TagwiseError(f"consensus: pool must be 'label' or 'annotator'; got {pool!r}")
        self.prior_strength = prior_strength
        self.pool = pool
        self.rates = rates
        self.use_classifier = use_classifier
        self.classifier_l2 = classifier_l2
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, annotations: Annotations, pred_probs: np.ndarray | None = None) -> "ConsensusModel":
        """Fit on ``annotations``; ``pred_probs`` (n_examples, K) out-of-fold classifier
        probabilities (never from a model that trained on the same example's labels)."""
        ann = annotations
        n, K, A = ann.n_examples, ann.n_labels, ann.n_annotators
        if pred_probs is not None:
            P = np.asarray(pred_probs, dtype=np.float64)
            if P.shape != (n, K):
                raise TagwiseError(f"consensus: pred_probs must be (n_examples, K) = {(n, K)}; got {P.shape}")
            if not np.isfinite(P).all() or P.min() < 0 or P.max() > 1:
                raise TagwiseError("consensus: pred_probs must be probabilities in [0, 1]")
            clf_logit = np.log(np.clip(P, 1e-4, 1 - 1e-4)) - np.log1p(-np.clip(P, 1e-4, 1 - 1e-4))
        else:
            clf_logit = None
        use_clf = clf_logit is not None and self.use_classifier

        N1, N0 = _vote_matrices(ann)                     # per label: (n, A) counts of 1- / 0-votes
        N1T = [m.T.tocsr() for m in N1]
        N0T = [m.T.tocsr() for m in N0]
        pos = np.stack([np.asarray(m.sum(1)).ravel() for m in N1], 1) if K else np.zeros((n, 0))
        neg = np.stack([np.asarray(m.sum(1)).ravel() for m in N0], 1) if K else np.zeros((n, 0))
        cnt = pos + neg
        ones_a = np.stack([np.asarray(m.sum(0)).ravel() for m in N1], 1) if K else np.zeros((A, 0))
        zeros_a = np.stack([np.asarray(m.sum(0)).ravel() for m in N0], 1) if K else np.zeros((A, 0))

        # Start from the vote shares; cells without votes from the label's overall share.
        base = (pos.sum(0) + 1) / (cnt.sum(0) + 2)
        q = np.where(cnt > 0, pos / np.maximum(cnt, 1), base)
        if use_clf:
            q = np.where(cnt > 0, q, expit(clf_logit))
        b = np.log(base) - np.log1p(-base)
        w = np.zeros(K)
        c = float(self.prior_strength)
        tp, fn = np.zeros((A, K)), np.zeros((A, K))
        s = t = np.full((A, K), 0.5)
        logit = np.zeros((n, K), order="F")  # column-major: each label's column is contiguous
        q = np.asfortranarray(q)
        it = 0
        for it in range(1, self.max_iter + 1):
            # M-step: annotator rates with Beta priors centred on the pooled rates.
            for k in range(K):
                tp[:, k] = N1T[k] @ q[:, k]                   # expected true positives voted 1
                fn[:, k] = N0T[k] @ q[:, k]                   # expected true positives voted 0
            fp = ones_a - tp
            tn = zeros_a - fn
            pooled_s = (tp.sum(0) + 1) / (tp.sum(0) + fn.sum(0) + 2)
            pooled_t = (tn.sum(0) + 1) / (tn.sum(0) + fp.sum(0) + 2)
            if self.pool == "annotator":
                # Centre each annotator's prior on its own rates over all labels (themselves
                # shrunk to the crowd's): a spammer is a spammer on every label, and a good
                # annotator seen on few positives of a rare label is still good there.
                crowd_s = (tp.sum() + 1) / (tp.sum() + fn.sum() + 2)
                crowd_t = (tn.sum() + 1) / (tn.sum() + fp.sum() + 2)
                pooled_s = ((tp.sum(1) + c * crowd_s) / (tp.sum(1) + fn.sum(1) + c))[:, None]
                pooled_t = ((tn.sum(1) + c * crowd_t) / (tn.sum(1) + fp.sum(1) + c))[:, None]
            if self.rates == "one-coin":
                # One accuracy per annotator and label: a vote is right with the same probability
                # whatever the truth, so a rater who is merely stricter or laxer than the crowd is
                # not read as seeing positives the others miss.
                acc = (tp + tn + c * (pooled_s + pooled_t) / 2) / (tp + fn + tn + fp + c)
                s = t = acc
            else:
                s = (tp + c * pooled_s) / (tp + fn + c)
                t = (tn + c * pooled_t) / (tn + fp + c)
            s = np.clip(s, _EPS, 1 - _EPS)
            t = np.clip(t, _EPS, 1 - _EPS)
            if use_clf:
                b, w = _fit_prior_logistic(clf_logit, q, b, w, self.classifier_l2)
                prior_logit = b + w * clf_logit
            else:
                pi = np.clip((q.sum(0) + 1) / (n + 2), _EPS, 1 - _EPS)
                b = np.log(pi) - np.log1p(-pi)
                prior_logit = np.broadcast_to(b, (n, K))
            # E-step: log-likelihood ratio of each vote, summed per example.
            llr1 = np.log(s) - np.log1p(-t)                   # vote 1: log s/(1-t)
            llr0 = np.log1p(-s) - np.log(t)                   # vote 0: log (1-s)/t
            for k in range(K):
                logit[:, k] = N1[k] @ llr1[:, k] + N0[k] @ llr0[:, k]
            new_q = np.asfortranarray(expit(prior_logit + logit))
            delta = float(np.abs(new_q - q).max()) if q.size else 0.0
            q = new_q
            if delta < self.tol:
                break
        self.n_iter_ = it
        self.proba_ = np.ascontiguousarray(q)
        self.sensitivity_, self.specificity_ = s, t
        self.prior_logit_, self.weight_ = b, w
        self.evidence_pos_ = np.stack([N1T[k] @ q[:, k] + N0T[k] @ q[:, k] for k in range(K)], 1) \
            if K else np.zeros((A, 0))
        self.evidence_neg_ = ones_a + zeros_a - self.evidence_pos_
        # distinct examples per annotator (a pooled anonymous voter may judge one several times)
        pairs = np.unique(ann.example * max(A, 1) + ann.annotator)
        self.n_examples_ = np.bincount(pairs % max(A, 1), minlength=A)
        return self

    def predict_proba(self, annotations: Annotations, pred_probs: np.ndarray | None = None) -> np.ndarray:
        """(n, K) posteriors of new or changed judgements under the *fitted* annotator rates and
        prior (one E-step, no refit): each example's posterior depends only on its own votes (and
        its classifier probability when the model was fitted with one)."""
        ann = annotations
        A, K = self.sensitivity_.shape
        if ann.n_labels != K or ann.n_annotators > A:
            raise TagwiseError(f"consensus: the model was fitted on {K} labels and {A} annotators; got "
                               f"{ann.n_labels} labels and {ann.n_annotators} annotators")
        s, t = self.sensitivity_, self.specificity_
        llr1 = np.log(s) - np.log1p(-t)
        llr0 = np.log1p(-s) - np.log(t)
        N1, N0 = _vote_matrices(ann, A)
        votes = np.zeros((ann.n_examples, K))
        for k in range(K):
            votes[:, k] = N1[k] @ llr1[:, k] + N0[k] @ llr0[:, k]
        prior = np.broadcast_to(self.prior_logit_, (ann.n_examples, K))
        if pred_probs is not None and self.use_classifier and np.any(self.weight_):
            P = np.clip(np.asarray(pred_probs, dtype=np.float64), 1e-4, 1 - 1e-4)
            prior = self.prior_logit_ + self.weight_ * (np.log(P) - np.log1p(-P))
        return expit(prior + votes)

    def result(self) -> ConsensusResult:
        q = self.proba_
        return ConsensusResult(proba=q, confidence=np.maximum(q, 1 - q), sensitivity=self.sensitivity_,
                               specificity=self.specificity_, n_examples=self.n_examples_,
                               evidence_pos=self.evidence_pos_, evidence_neg=self.evidence_neg_,
                               prior=expit(self.prior_logit_), weight=self.weight_, n_iter=self.n_iter_)


def _fit_prior_logistic(z: np.ndarray, q: np.ndarray, b: np.ndarray, w: np.ndarray, l2: float,
                        steps: int = 3, max_weight: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """A few Newton steps per label of the 2-parameter logistic prior ``sigmoid(b + w z)`` fitted to
    the soft targets ``q`` (all (n, K)); ridge ``l2`` on ``w`` only. Vectorised over labels."""
    for _ in range(steps):
        p = expit(b + w * z)
        r = p - q
        h = p * (1 - p) + 1e-9
        gb = r.sum(0)
        gw = (r * z).sum(0) + l2 * w
        hbb = h.sum(0) + 1e-6
        hbw = (h * z).sum(0)
        hww = (h * z * z).sum(0) + l2
        det = hbb * hww - hbw ** 2
        # Damped: no coefficient moves more than 1 per step (rare labels are nearly separable).
        b = b - np.clip((hww * gb - hbw * gw) / det, -1, 1)
        w = w - np.clip((hbb * gw - hbw * gb) / det, -1, 1)
        # The classifier was trained on these labels: a negative weight only arises on the way to
        # the label-switched optimum of EM (every cell flipped), so it is cut at zero, and b refit.
        neg = (w < 0) | (w > max_weight)
        if neg.any():
            w = np.clip(w, 0.0, max_weight)
            p = expit(b + w * z)
            b = np.where(neg, b - (p - q).sum(0) / ((p * (1 - p)).sum(0) + 1e-6), b)
    return b, w


def annotator_quality(result: ConsensusResult) -> np.ndarray:
    """(A,) quality in [0, 1]: each annotator's balanced accuracy ``(s + t) / 2`` averaged over
    labels, each label weighted by how much evidence the annotator's rates rest on there
    (the smaller of its expected positives and negatives, plus one). 0.5 is a spammer (votes
    independent of the truth), below 0.5 adversarial."""
    bal = (result.sensitivity + result.specificity) / 2
    wt = np.minimum(result.evidence_pos, result.evidence_neg) + 1.0
    return (bal * wt).sum(1) / wt.sum(1)


def consensus(annotations: Annotations, pred_probs: np.ndarray | None = None, **params) -> ConsensusResult:
    """Fit ``ConsensusModel(**params)`` and return its ``ConsensusResult``."""
    return ConsensusModel(**params).fit(annotations, pred_probs).result()
