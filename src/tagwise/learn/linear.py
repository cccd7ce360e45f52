"""One-vs-rest linear multi-label head, fitted jointly for all labels.

All K logistic regressions share one L-BFGS run over a (d, K) weight matrix, so each iteration
costs two dense matrix products instead of K separate solver runs. It supports a per-(example,
label) mask (a source that never annotates a label says nothing about it), positive-class
weighting for rare labels, per-label regularisation chosen by cross-validation, and per-label
thresholds tuned on out-of-fold predictions.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

from ..evaluate.metrics import masked_average_precision
from ..folds import random_folds
from .base import MultiLabelHead, check_fit_arrays
from .thresholds import best_f1_thresholds


SMALL_BLAS_WORK = 2e9  # n * d * K below which one BLAS thread is faster than several


def one_blas_thread_when_small(fit):
    """Decorator for ``fit(self, X, Y, ...)``: run with one BLAS thread when n * d * K is small.

    The solvers call (n, d) @ (d, K) products hundreds of times; for K of tens, threading them
    costs more than it saves (timed on the 2-core machine: several times slower with two threads).
    """
    @functools.wraps(fit)
    def wrapper(self, X, Y, *args, **kwargs):
        shape_x, shape_y = np.shape(X), np.shape(Y)
        work = float(np.prod(shape_x)) * (shape_y[1] if len(shape_y) == 2 else 1)
        if work >= SMALL_BLAS_WORK:
            return fit(self, X, Y, *args, **kwargs)
        with threadpool_limits(1, user_api="blas"):
            return fit(self, X, Y, *args, **kwargs)
    return wrapper


def _preconditioner(X: np.ndarray, ridge: float, curvature: float = 0.1) -> np.ndarray:
    """(d, d) P ~ (curvature * cov(X) + ridge I)^(-1/2), for centred X.

    Embeddings are strongly anisotropic, so plain L-BFGS needs hundreds of iterations; solving in
    v with W = P v gives the same optimum with a near-isotropic Hessian (tens of iterations).
    """
    cov = (X.T @ X).astype(np.float64) / len(X)
    eigval, eigvec = np.linalg.eigh(cov)
    scale = 1.0 / np.sqrt(curvature * np.maximum(eigval, 0) + ridge)
    return (eigvec * scale) @ eigvec.T


def _fit_logistic(X, Y, M, pos_weight, l2, W0=None, max_iter=100, tol=1e-4):
    """Minimise (1/n) [sum_ik M_ik w_ik logloss(x_i.W_k + b_k, Y_ik) + 0.5 sum_k l2_k |W_k|^2].

    X: (n, d) float32, centred; Y, M: (n, K) float32; pos_weight, l2: (K,).
    Returns theta = [W.ravel(), b]. The 1/n scaling keeps the tolerance meaningful whatever n is.
    Quality stops improving long before the loss converges on sentence embeddings, hence the
    modest default cap (chosen by cross-validation on training data: bench/choose_defaults.py).
    """
    n, d = X.shape
    K = Y.shape[1]
    # weight of each (example, label) cell: masked cells weigh 0, positives weigh pos_weight. A soft
    # target y (consensus, weak supervision) is the expected loss pw*y*loss(1) + (1-y)*loss(0):
    # weight pw*y + 1 - y on the target pw*y / (pw*y + 1 - y) (the same as before for 0/1 targets).
    pos = pos_weight[None, :] * Y
    cell = pos + 1.0 - Y  # >= 1: pos_weight is never below 1
    Y = (pos / cell).astype(np.float32)
    C = (M * cell).astype(np.float32) / n
    l2 = np.asarray(l2, dtype=np.float64) / n
    P = _preconditioner(X, float(np.mean(l2)))
    P32 = P.astype(np.float32)

    def f(theta):
        V = theta[: d * K].reshape(d, K)
        W = P @ V
        Z = X @ W.astype(np.float32) + theta[d * K:].astype(np.float32)
        loss = np.logaddexp(0, Z) - Y * Z
        R = C * (expit(Z) - Y)
        value = float(np.sum(C * loss, dtype=np.float64)) + 0.5 * float(np.sum(l2 * np.sum(W ** 2, axis=0)))
        gW = (X.T @ R).astype(np.float64) + W * l2[None, :]
        gb = R.sum(axis=0, dtype=np.float64)
        return value, np.concatenate([(P @ gW).ravel(), gb])

    if W0 is None:
        theta0 = np.zeros(d * K + K)
    else:  # warm start given in W-space
        theta0 = np.concatenate([np.linalg.solve(P, W0[: d * K].reshape(d, K)).ravel(), W0[d * K:]])
    res = minimize(f, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": tol * 0.1, "ftol": tol * 0.01})
    theta = res.x
    return np.concatenate([(P @ theta[: d * K].reshape(d, K)).ravel(), theta[d * K:]])


def positive_weights(Y: np.ndarray, M: np.ndarray, mode) -> np.ndarray:
    """(K,) weight of a positive example per label, from known cells only.

    Y, M: (n, K) labels and known-mask; mode: "auto" = sqrt(min(n_neg, 1000) / n_pos),
    "sqrt" = sqrt(n_neg / n_pos), "balanced" = n_neg / n_pos, a number, or None (1). Never below 1.
    """
    n_pos = (Y * M).sum(0)
    n_neg = ((1 - Y) * M).sum(0)
    ratio = np.where(n_pos > 0, n_neg / np.maximum(n_pos, 1), 1.0)
    if mode == "auto":
        return np.maximum(np.sqrt(np.minimum(n_neg, 1000.0) / np.maximum(n_pos, 1)), 1.0)
    if mode == "balanced":
        return np.maximum(ratio, 1.0)
    if mode == "sqrt":
        return np.maximum(np.sqrt(ratio), 1.0)
    if mode is None:
        return np.ones_like(ratio)
    return np.full_like(ratio, float(mode))


class MultiLabelLinear(MultiLabelHead):
    """Multi-label logistic regression on embeddings with tuned per-label thresholds.

    Parameters
    ----------
    C : float or "cv"
        Inverse L2 strength (as in scikit-learn). "cv" picks it per label from ``C_grid`` by
        out-of-fold average precision. The default is chosen by cross-validation on the training
        splits of the benchmark datasets (bench/choose_defaults.py; figures in bench/results).
    C_grid : tuple of float
        Candidates when ``C="cv"``.
    pos_weight : "auto" | "sqrt" | "balanced" | float | None
        Weight of positive examples per label: "auto" = sqrt(min(n_neg, 1000) / n_pos) (rare labels
        get up to sqrt-balancing, labels with >= 1000 positives none), sqrt(n_neg/n_pos),
        n_neg/n_pos, a constant, or 1. Probabilities are corrected back for the weighting, so they
        stay calibrated. "auto" keeps both frequent-label and many-rare-label data good; chosen by
        cross-validation on training data (bench/choose_defaults.py).
    thresholds : "cv" | float
        "cv" tunes per-label thresholds for F1 on out-of-fold predictions; a float fixes one.
    cv : int
        Folds for the out-of-fold predictions.
    threshold_shrink : float
        Pseudo-count pulling each label's F1-best cut towards its base-rate cut
        (``thresholds.best_f1_thresholds``); matters for labels with few positives.

    ``C``, ``pos_weight``, ``max_iter`` and ``threshold_shrink`` were chosen by 3-fold cross-validation
    on the training splits of GoEmotions, SemEval-2018 and MULAN rcv1subset1500 (thresholds tuned
    inside each training fold) and checked on held-out datasets and seeds: ``bench/choose_defaults.py``,
    ``bench/results/protocol.md``.
    """

    def __init__(self, C=1.0, C_grid=(0.25, 1.0, 4.0), pos_weight="auto", thresholds="cv", cv=5,
                 max_iter=100, threshold_shrink=50.0, random_state=0):
        self.C = C
        self.C_grid = C_grid
        self.pos_weight = pos_weight
        self.thresholds = thresholds
        self.cv = cv
        self.max_iter = max_iter
        self.threshold_shrink = threshold_shrink
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------
    def _fit_once(self, X, Y, M, C_per_label, W0=None, max_iter=None):
        pw = positive_weights(Y, M, self.pos_weight)
        l2 = 1.0 / np.asarray(C_per_label, dtype=np.float64)
        theta = _fit_logistic(X, Y, M, pw, l2, W0=W0, max_iter=max_iter or self.max_iter)
        return theta, pw

    def _decision(self, Xc, theta, pw):
        d, K = Xc.shape[1], len(pw)
        W = theta[: d * K].reshape(d, K).astype(np.float32)
        b = theta[d * K:].astype(np.float32)
        return Xc @ W + b - np.log(pw).astype(np.float32)[None, :]

    @one_blas_thread_when_small
    def fit(self, X, Y, mask=None):
        """X: (n, d) float; Y: (n, K) {0,1}; mask: optional (n, K) bool, False = label unknown."""
        X, Y, M = check_fit_arrays(X, Y, mask, where="MultiLabelLinear.fit")  # Y may be soft, in [0, 1]
        M = M.astype(np.float32)
        n, K = Y.shape
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        self.n_labels_ = K
        hard = (Y >= 0.5).astype(np.float32)  # soft targets (weak supervision) count as positive from 0.5
        self.support_ = (hard * M).sum(0).astype(np.int64)
        grid = tuple(self.C_grid) if self.C == "cv" else (float(self.C),)
        need_oof = self.thresholds == "cv" or len(grid) > 1
        if need_oof:
            folds = random_folds(n, self.cv, self.random_state)
            oof = np.zeros((len(grid), n, K), dtype=np.float32)
            for f in range(self.cv):
                tr, te = folds != f, folds == f
                theta = None
                for g, C in enumerate(grid):  # warm-start along the C path (same fold: no leak)
                    # out-of-fold scores only rank and threshold; they stop changing long before
                    # the loss converges, so fold fits get a third of the iterations
                    theta, pw = self._fit_once(Xc[tr], Y[tr], M[tr], np.full(K, C), W0=theta,
                                               max_iter=max(20, self.max_iter // (3 if g == 0 else 5)))
                    oof[g, te] = expit(self._decision(Xc[te], theta, pw))
            if len(grid) > 1:
                ap = np.stack([masked_average_precision(Y, oof[g], M) for g in range(len(grid))])  # (G, K)
                best = np.argmax(ap, axis=0)
            else:
                best = np.zeros(K, dtype=np.int64)
            self.C_ = np.asarray(grid, dtype=np.float64)[best]
            self.oof_proba_ = oof[best, np.arange(n)[:, None], np.arange(K)[None, :]]
        else:
            self.C_ = np.full(K, grid[0])
        self.theta_, self.pos_weight_ = self._fit_once(Xc, Y, M, self.C_)
        if self.thresholds == "cv":
            self.threshold_ = best_f1_thresholds(hard, self.oof_proba_, M > 0, shrink=self.threshold_shrink)
        else:
            self.threshold_ = np.full(K, float(self.thresholds))
        # a label with no known positive can never be predicted by this head
        self.threshold_[self.support_ == 0] = 1.0 + 1e-9
        return self

    # -- prediction ------------------------------------------------------
    @property
    def coef_(self) -> np.ndarray:
        d = len(self.mean_)
        return self.theta_[: d * self.n_labels_].reshape(d, self.n_labels_).T

    @property
    def intercept_(self) -> np.ndarray:
        return self.theta_[len(self.mean_) * self.n_labels_:]

    def decision_function(self, X) -> np.ndarray:
        """(n, d) -> (n, K) calibrated logits."""
        Xc = self._check_X(X) - self.mean_
        return self._decision(Xc, self.theta_, self.pos_weight_)

    def predict_proba(self, X, texts=None, source=None) -> np.ndarray:
        """(n, d) -> (n, K) per-label probabilities (``texts``/``source`` unused: see ``learn.base``)."""
        return expit(self.decision_function(X))

    # -- persistence (JSON + arrays; see learn.persist) -----------------
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return ({"params": self.get_params(), "n_labels": int(self.n_labels_)},
                {"theta": self.theta_, "pos_weight": self.pos_weight_, "mean": self.mean_,
                 "threshold": self.threshold_, "C": self.C_, "support": self.support_})

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "MultiLabelLinear":
        params = dict(meta["params"])
        if isinstance(params.get("C_grid"), list):
            params["C_grid"] = tuple(params["C_grid"])
        model = cls(**params)
        model.n_labels_ = int(meta["n_labels"])
        model.theta_, model.pos_weight_ = arrays["theta"], arrays["pos_weight"]
        model.mean_, model.threshold_ = arrays["mean"], arrays["threshold"]
        model.C_, model.support_ = arrays["C"], arrays["support"]
        for name in ("pos_weight", "threshold", "C", "support"):  # one value per label
            if arrays[name].shape != (model.n_labels_,):
                raise ValueError(f"{name} has shape {arrays[name].shape}, expected ({model.n_labels_},)")
        return model
