"""Few-shot multi-label head: a linear head shrunk towards a zero-shot label-name prior.

With ~8 positives per label a plain logistic regression has too little signal, and its default
0.5 threshold predicts almost nothing. This head writes each label's logit as

    logit_k(x) = a_k * prior_k(x) + (x - mean) . v_k + b_k

where ``prior_k`` is the zero-shot score (cosine to the label's name/description prompts,
standardised per label over the corpus, see ``zeroshot.py``) and ``v_k`` is a strongly L2-regularised
correction learned from the few labels. ``a_k`` is pulled towards its zero-shot value, so with no
labeled positive for a label the model falls back to zero-shot instead of failing. Examples are
class-balanced per label, each label is solved to its optimum by its own preconditioned L-BFGS (all
labels in lock-step, one pass over the data per step; ``_fit_prior_head``), and a (n, K) mask
marks unknown cells. Thresholds come only from the labeled examples: out-of-fold probabilities
(k-fold CV) give each label an F1-best cut, shrunk towards 0.5 when it has few positives.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ..types import TagwiseError
from ..folds import random_folds
from .base import MultiLabelHead, check_fit_arrays
from .linear import lbfgs_by_column, one_blas_thread_when_small
from .thresholds import best_f1_thresholds, expected_f1_thresholds
from .zeroshot import ZeroShotClassifier


# The preconditioner's guess of the per-cell logistic curvature w * s(1 - s) at the optimum (at most
# w / 4), and the L-BFGS memory. Only the speed depends on them (never the optimum): set by hand on
# the iteration counts of the demo's 3,000 GoEmotions rows (0.02-0.05 fewest; 0.1 +25%, 0.25 +60%;
# memory 20 about 15% fewer evaluations than 10, 40 no better).
CURVATURE = 0.02
MEMORY = 20
# The float32 first phase (``_fit_prior_head``) stops at a gradient COARSE_TOL of its start: below
# ~1e-5 float32 rounding stalls its line search (1e-5 took twice as long on the demo, 1e-7 never
# got there); 1e-3 and 1e-4 cost the same. It only saves time, so its guard is a plain cap.
COARSE_TOL = 1e-4
COARSE_MAX_ITER = 200


def _feature_basis(Xc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition of the feature covariance of the rows ``Xc`` (n, d), centred.

    Returns (eigenvalues per row (r,), eigenvectors Q (d, r), the rows in that basis Xc Q (n, r)),
    float64. Directions with no variance in the rows (d - n of them when n < d) are dropped: they
    carry no data term, so their optimum is exactly 0 and leaving them out is exact (and costs r / d
    of a full pass). ``_fit_prior_head`` scales the eigenvalues by the number of rows it fits, so
    one basis serves the final fit and every cross-validation fold (the folds' rows are a random
    part of the same rows, inside their span).
    """
    X64 = np.asarray(Xc, dtype=np.float64)
    eigval, eigvec = np.linalg.eigh(X64.T @ X64)
    kept = eigval > 1e-10 * max(float(eigval.max()), 1e-30)
    eigvec = eigvec[:, kept]
    return eigval[kept] / max(len(X64), 1), eigvec, X64 @ eigvec


def _fit_prior_head(X, prior, Y, M, l2_v: float, l2_a: float, a0: np.ndarray, *, basis=None,
                    tol: float = 1e-7, max_iter: int = 1000, sample_weight=None, start=None):
    """Minimise, for each label k, sum_i w_ik logloss(x_i.v_k + a_k prior_ik + b_k, Y_ik)
    + l2_v/2 |v_k|^2 + l2_a/2 (a_k - a0_k)^2.

    X: (n, d) centred rows, or with ``basis`` = (eigenvalues, Q) of ``_feature_basis``, the rows
    already in that basis (n, r) (X Q); prior: (n, K) float32 or None (then a = 0); Y, M: (n, K).
    Cell weights w_ik balance positives and negatives per label over the known cells, then are
    multiplied by the optional (n,) ``sample_weight``. start: optional warm start (V, a, b).

    The labels' problems are independent and strictly convex, so each label has one optimum and it
    moves continuously with the data; the fit is solved to that optimum, not stopped by an
    iteration budget (a stopped run lands wherever its path happens to be, and the path depends on
    rounding: a 1e-6 change of the inputs, another machine's BLAS). To get there in tens of
    iterations instead of hundreds, the problem is preconditioned as ``MultiLabelLinear`` does:
    embeddings are strongly anisotropic, so in the eigenbasis of X'X each coordinate is scaled by
    (CURVATURE * eigenvalue + l2_v)^(-1/2), the intercept and the prior weight by the same estimate
    of their curvature, which makes the Hessian near-isotropic; then each label runs its own
    L-BFGS (``linear.lbfgs_by_column``: own curvature pairs and stopping test, labels that are done
    leave the pass), finishing in float64 (in float32 the objective's rounding ends the line search
    short of the optimum; see the two phases below). A label stops once its preconditioned gradient norm is below ``tol`` times its
    norm at the zero-shot start (V = 0, a = a0, b = 0), so a warm start stops at the same accuracy.
    ``max_iter`` is a guard, not a budget.
    Returns (V (d, K), a (K,), b (K,)) float32.
    """
    n, K = Y.shape
    if sample_weight is not None:
        M = M * np.asarray(sample_weight, dtype=np.float32)[:, None]
    n_pos = (Y * M).sum(0)
    n_neg = ((1 - Y) * M).sum(0)
    # balanced: each label's positives and negatives carry equal total weight
    w_pos = np.where(n_pos > 0, (n_pos + n_neg) / (2 * np.maximum(n_pos, 1)), 0.0)
    w_neg = np.where(n_neg > 0, (n_pos + n_neg) / (2 * np.maximum(n_neg, 1)), 0.0)
    W = M * np.where(Y > 0, w_pos[None, :], w_neg[None, :]).astype(np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    use_prior = prior is not None
    P = np.zeros((n, K)) if prior is None else np.asarray(prior, dtype=np.float64)
    a0 = np.asarray(a0, dtype=np.float64) if use_prior else np.zeros(K)
    if basis is None:
        eigval, Q, XQ = _feature_basis(X)
    else:
        (eigval, Q), XQ = basis, np.asarray(X, dtype=np.float64)
    r = len(eigval)
    # preconditioned variables: V = Q diag(s) U, a = a0 + s_a alpha, b = s_b beta
    s = 1.0 / np.sqrt(CURVATURE * n * eigval + l2_v)
    Xs = XQ * s  # (n, r) features in which the Hessian is ~isotropic
    Xs_t = np.ascontiguousarray(Xs.T)  # the gradient's product reads rows of this ~1.5x faster than Xs.T
    # float32 copies for the first phase (see below): their products cost a third of float64's
    low = {np.float64: (Xs, Xs_t), np.float32: (Xs.astype(np.float32), Xs_t.astype(np.float32))}
    s2 = s[:, None] ** 2
    s_b = 1.0 / np.sqrt(CURVATURE * np.maximum(W.sum(0), 1.0))
    s_a = 1.0 / np.sqrt(CURVATURE * (W * P * P).sum(0) + l2_a)
    everyone = np.arange(K)

    def evaluate(T, labels, dtype=np.float64):
        """T (r + 2, k) = [U; alpha; beta] of labels (k,) -> (objective (k,), gradient (r + 2, k)).

        ``dtype``: of the two (n, r) x (r, k) products; everything else is float64."""
        A, A_t = low[dtype]
        U, alpha, beta = T[:r], T[r], T[r + 1]
        if len(labels) == K:
            Wl, Yl, Pl, sa, sb, a0l = W, Y, P, s_a, s_b, a0
        else:
            Wl, Yl, Pl, sa, sb, a0l = W[:, labels], Y[:, labels], P[:, labels], s_a[labels], s_b[labels], a0[labels]
        Z = (A @ U.astype(dtype)).astype(np.float64) + Pl * (a0l + sa * alpha) + sb * beta
        E = np.exp(-np.abs(Z))  # softplus(z) and sigmoid(z) from one exp, stable for any z
        R = Wl * (np.where(Z >= 0, 1.0, E) / (1.0 + E) - Yl)
        f = ((Wl * (np.maximum(Z, 0) + np.log1p(E) - Yl * Z)).sum(0) + 0.5 * l2_v * (s2 * U ** 2).sum(0)
             + 0.5 * l2_a * (sa * alpha) ** 2)
        g_alpha = sa * ((R * Pl).sum(0) + l2_a * sa * alpha) if use_prior else np.zeros(len(labels))
        return f, np.vstack([(A_t @ R.astype(dtype)).astype(np.float64) + l2_v * s2 * U, g_alpha, sb * R.sum(0)])

    theta = np.zeros((r + 2, K))
    g_norm0 = np.maximum(np.linalg.norm(evaluate(theta, everyone)[1], axis=0), 1e-12)
    if start is not None:
        V0, a_start, b_start = (np.asarray(v, dtype=np.float64) for v in start)
        theta[:r] = (Q.T @ V0) / s[:, None]
        theta[r] = (a_start - a0) / s_a if use_prior else 0.0
        theta[r + 1] = b_start / s_b
    # Two phases, both towards the same optimum: float32 products down to a gradient COARSE_TOL of
    # its start (float32 rounding would stall the line search not far below), then float64 down
    # to ``tol``. Where the first phase stops depends on rounding; the second phase removes that.
    theta = lbfgs_by_column(lambda T, labels: evaluate(T, labels, np.float32), theta, g_norm0,
                            max_iter=min(max_iter, COARSE_MAX_ITER), tol=max(tol, COARSE_TOL), memory=MEMORY)
    theta = lbfgs_by_column(evaluate, theta, g_norm0, max_iter=max_iter, tol=tol, memory=MEMORY)
    V = Q @ (s[:, None] * theta[:r])
    a = a0 + s_a * theta[r] if use_prior else np.zeros(K)
    return V.astype(np.float32), a.astype(np.float32), (s_b * theta[r + 1]).astype(np.float32)


class FewShotClassifier(MultiLabelHead):
    """Linear head over embeddings with a zero-shot prior, for a few labeled examples per label.

    Parameters
    ----------
    C : float
        Inverse L2 strength of the linear correction ``v_k`` (small = stay near the prior).
    prior_strength : float
        L2 pull of each ``a_k`` towards its zero-shot value (large = trust label names more).
    use_prior : bool
        Use the zero-shot prior (needs ``zeroshot`` in ``fit``); False gives a balanced linear head.
    cv : int
        Folds for out-of-fold threshold tuning on the labeled examples (no dev split needed).
    threshold_shrink : float
        Pseudo-count pulling each label's tuned threshold towards 0.5.
    tol : float
        Every fit (the final one and each cross-validation fold's) is solved until each label's
        preconditioned gradient norm is below ``tol`` times its value at the zero-shot start
        (``_fit_prior_head``), so the model is the optimum of its objective, not wherever a stopped
        run happened to be (issue 29). Fits capped at 100 final / 40 fold iterations in float32 moved
        probabilities by ~1e-4 under a 1e-6 change of the embeddings and changed up to 8% of the
        predicted label sets (the F1-best cut on the out-of-fold scores jumped between near-tied
        candidates); solved to the optimum they move by ~1e-5 and no label set changes
        (``tests/test_training_stability.py``). Unpreconditioned, reaching it took ~350 L-BFGS
        iterations per fit on 3,000 rows (14x the capped time); preconditioned, tens
        (``bench/results/fewshot_solver.json``). At 1e-7 the logits are within ~1e-5 of the optimum
        (1e-6: ~1e-4).
    max_iter, cv_max_iter : int
        Guards against a run that never reaches ``tol`` (final fit / each fold fit; L-BFGS iterations
        per label); not a budget: a budget would bring back the instability above.
    ``C``, ``prior_strength`` and ``threshold_shrink`` were chosen by ``bench/choose_fewshot.py`` on
    the training splits of XED-en and ISEAR only (8 and 32 positives per label, 3 seeds; 27-point
    grid): (1, 4, 20) beat the earlier hand-set (1, 1, 5) in 10 of 12 draws, +0.005 ± 0.005 macro-F1,
    and on held-out SemEval-2018 test +0.003 (k=8, 2 of 3 seeds) and +0.005 (k=32, 3 of 3)
    (``bench/results/choose_fewshot.json``).
    threshold_method : {"cv", "pool"}
        "cv": each label's F1-best cut on the out-of-fold probabilities of the labeled rows (right
        when they are a random or stratified draw). "pool": calibrate those out-of-fold scores and
        cut where the expected F1 on the unlabeled rows is best (``expected_f1_thresholds``), for
        labeled rows chosen by active learning, which are not representative.
    """

    def __init__(self, C: float = 1.0, prior_strength: float = 4.0, use_prior: bool = True, cv: int = 5,
                 threshold_shrink: float = 20.0, tol: float = 1e-7, max_iter: int = 1000, cv_max_iter: int = 1000,
                 threshold_method: str = "cv", random_state: int = 0):
        self.C = C
        self.prior_strength = prior_strength
        self.use_prior = use_prior
        self.cv = cv
        self.threshold_shrink = threshold_shrink
        self.tol = tol
        self.max_iter = max_iter
        self.cv_max_iter = cv_max_iter
        self.threshold_method = threshold_method
        self.random_state = random_state

    def _prior(self, X):
        if self.zeroshot_ is None:
            return None
        return self.zeroshot_.decision_function(X).astype(np.float32)

    @one_blas_thread_when_small
    def fit(self, X, Y, mask=None, zeroshot: ZeroShotClassifier | None = None, X_corpus=None,
            sample_weight=None, tune_thresholds: bool = True, X_unlabeled=None):
        """Fit on a few labeled examples.

        X: (n, d) float embeddings; Y: (n, K) {0,1}; mask: optional (n, K) bool (False = unknown);
        zeroshot: a fitted ``ZeroShotClassifier`` over the same K labels (its scores are the prior);
        X_corpus: optional (m, d) unlabeled embeddings, used only to centre the features;
        sample_weight: optional (n,) weights (e.g. lower for pseudo-labels);
        tune_thresholds: False skips the CV threshold search (thresholds stay 0.5; the caller sets them);
        X_unlabeled: optional (m, d) rows without labels for ``threshold_method="pool"`` (default:
        X_corpus).
        """
        X = np.asarray(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float32)
        if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
            raise TagwiseError(f"few-shot: X {X.shape} and Y {Y.shape} must be 2-D with the same rows.")
        M = np.ones_like(Y) if mask is None else np.asarray(mask, dtype=np.float32)
        n, K = Y.shape
        if self.threshold_method not in ("cv", "pool"):
            raise TagwiseError(f"few-shot: threshold_method must be 'cv' or 'pool', not {self.threshold_method!r}.")
        pool = X_unlabeled if X_unlabeled is not None else X_corpus
        if tune_thresholds and self.threshold_method == "pool" and (pool is None or len(pool) == 0):
            raise TagwiseError("few-shot: threshold_method='pool' needs unlabeled rows (X_unlabeled= or "
                               "X_corpus=); Fix: pass them, or use threshold_method='cv'.")
        if self.use_prior and zeroshot is None:
            raise TagwiseError("few-shot: use_prior=True needs a fitted ZeroShotClassifier (label names); "
                               "Fix: pass zeroshot=..., or set use_prior=False.")
        if zeroshot is not None and len(zeroshot.label_vectors_) != K:
            raise TagwiseError(f"few-shot: the zero-shot prior has {len(zeroshot.label_vectors_)} labels, Y has {K}.")
        self.zeroshot_ = zeroshot if self.use_prior else None
        self.mean_ = (np.asarray(X_corpus, dtype=np.float32) if X_corpus is not None else X).mean(0)
        self.n_labels_ = K
        self.support_ = (Y * M).sum(0, dtype=np.float64)  # expected positives: soft targets are not floored
        Xc = X - self.mean_
        prior = self._prior(X)
        a0 = np.ones(K, dtype=np.float32)
        l2_v, l2_a = 1.0 / float(self.C), float(self.prior_strength)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        # one preconditioner for every fit below: it depends on the features only (no label), and
        # only changes how fast each fit gets to its optimum, not where that optimum is
        eigval, Q, XQ = _feature_basis(Xc)
        basis = (eigval, Q)
        start = None
        if tune_thresholds:
            # out-of-fold probabilities on the labeled examples only -> per-label thresholds. Each
            # fold starts from the zero-shot point (not from another fold's solution, which saw its
            # held-out rows); the final fit sees every row, so it starts from the folds' mean
            # solution, which leaks nothing and lands it near its optimum (about half the iterations).
            folds = random_folds(n, max(2, min(self.cv, n)), self.random_state)
            oof = np.zeros((n, K), dtype=np.float32)
            solutions = []
            for f in np.unique(folds):
                tr, te = folds != f, folds == f
                V, a, b = _fit_prior_head(XQ[tr], None if prior is None else prior[tr], Y[tr], M[tr], l2_v,
                                          l2_a, a0, basis=basis, tol=self.tol, max_iter=self.cv_max_iter,
                                          sample_weight=None if sw is None else sw[tr])
                oof[te] = expit(Xc[te] @ V + (0 if prior is None else prior[te] * a) + b)
                solutions.append((V, a, b))
            start = [np.mean([sol[i] for sol in solutions], axis=0, dtype=np.float64) for i in range(3)]
        self.coef_, self.prior_coef_, self.intercept_ = _fit_prior_head(
            XQ, prior, Y, M, l2_v, l2_a, a0, basis=basis, tol=self.tol, max_iter=self.max_iter, sample_weight=sw,
            start=start)
        if self.zeroshot_ is not None:
            # a label with no labeled positive (or no negative) has nothing to correct the prior with:
            # it stays exactly zero-shot instead of being pushed to "never" by its intercept
            empty = (self.support_ <= 0) | (((1 - Y) * M).sum(0) <= 0)
            self.coef_[:, empty] = 0.0
            self.intercept_[empty] = 0.0
            self.prior_coef_[empty] = 1.0
        self.threshold_ = np.full(K, 0.5)
        if tune_thresholds:
            self.oof_proba_ = oof
            if self.threshold_method == "pool":
                oof_logits = logit(np.clip(oof.astype(np.float64), 1e-7, 1 - 1e-7))
                self.threshold_ = expected_f1_thresholds(Y, oof_logits, self.decision_function(pool), M > 0,
                                                         min_positives=2, default=0.5)
            else:
                self.threshold_ = best_f1_thresholds(Y, oof, M > 0, min_positives=2,
                                                     shrink=self.threshold_shrink, default=0.5)
        if self.zeroshot_ is None:
            # without a prior a label with no known positive cannot be predicted
            self.threshold_[self.support_ <= 0] = 1.0 + 1e-9
        return self

    def decision_function(self, X) -> np.ndarray:
        """(n, d) -> (n, K) logits."""
        X = self._check_X(X)
        Z = (X - self.mean_) @ self.coef_ + self.intercept_
        prior = self._prior(X)
        return Z if prior is None else Z + prior * self.prior_coef_

    def predict_proba(self, X, texts=None, source=None) -> np.ndarray:
        """(n, d) -> (n, K) probabilities (class-balanced, so 0.5 is the neutral cut)."""
        return expit(self.decision_function(X))

    # -- persistence -----------------------------------------------------
    def get_state(self):
        arrays = {"coef": self.coef_, "prior_coef": self.prior_coef_, "intercept": self.intercept_,
                  "mean": self.mean_, "threshold": self.threshold_, "support": self.support_}
        meta = {"params": self.get_params(), "n_labels": int(self.n_labels_), "zeroshot": None}
        if self.zeroshot_ is not None:
            zmeta, zarr = self.zeroshot_.get_state()
            meta["zeroshot"] = zmeta
            arrays.update({f"zs_{k}": v for k, v in zarr.items()})
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        model = cls(**meta["params"])
        model.n_labels_ = int(meta["n_labels"])
        model.coef_, model.prior_coef_ = arrays["coef"], arrays["prior_coef"]
        model.intercept_, model.mean_ = arrays["intercept"], arrays["mean"]
        model.threshold_, model.support_ = arrays["threshold"], arrays["support"]
        model.zeroshot_ = None
        if meta.get("zeroshot") is not None:
            zarr = {k[3:]: v for k, v in arrays.items() if k.startswith("zs_")}
            model.zeroshot_ = ZeroShotClassifier.from_state(meta["zeroshot"], zarr)
        return model
