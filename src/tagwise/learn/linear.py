"""One-vs-rest linear multi-label head, all labels fitted in one pass over the data.

Each label has its own L-BFGS run (own curvature pairs, step length and stopping test), and all
runs advance in lock-step: one (n, d) @ (d, k) product per step evaluates every label still
running, and a label that has converged leaves the product. It supports a per-(example,
label) mask (a source that never annotates a label says nothing about it), positive-class
weighting for rare labels, per-label regularisation chosen by cross-validation, and per-label
thresholds tuned on out-of-fold predictions.
"""
from __future__ import annotations

import functools

import numpy as np
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


def _preconditioner(X: np.ndarray, ridge: float, curvature: float = 0.1, mean: np.ndarray | None = None) -> np.ndarray:
    """(d, d) P ~ (curvature * cov(X) + ridge I)^(-1/2); X centred, or uncentred with its ``mean`` given.

    Embeddings are strongly anisotropic, so plain L-BFGS needs hundreds of iterations; solving in
    v with W = P v gives the same optimum with a near-isotropic Hessian (tens of iterations).
    """
    cov = (X.T @ X).astype(np.float64) / len(X)
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64)
        cov -= np.outer(mean, mean)
    eigval, eigvec = np.linalg.eigh(cov)
    scale = 1.0 / np.sqrt(curvature * np.maximum(eigval, 0) + ridge)
    return (eigvec * scale) @ eigvec.T


FOLD_TOL_FACTOR = 3.0  # fold fits stop at this multiple of ``tol``
CHUNK_ROWS = 8192  # rows per block of the gradient pass: temporaries stay (CHUNK_ROWS, K), whatever n is


class _LogisticBlocks:
    """Per-label weighted logistic losses and gradients over row blocks, for a subset of labels.

    X: (N, d) float32, uncentred (the centring by ``mean`` is folded into the intercept, so no
    centred copy of X is made); rows: (n,) int indices of the fitted rows or None (all rows);
    Y, M: (N, K); pos_weight, l2: (K,). Each (n, d) pass reads one block of rows, so X is read
    once per evaluation and the (n, K) temporaries never exist.
    """

    def __init__(self, X, Y, M, rows, mean, pos_weight, l2):
        self.X, self.rows, self.mean = X, rows, mean.astype(np.float32)
        n = len(X) if rows is None else len(rows)
        self.n = n
        # weight of each (example, label) cell: masked cells weigh 0, positives weigh pos_weight. A soft
        # target y (consensus, weak supervision) is the expected loss pw*y*loss(1) + (1-y)*loss(0):
        # weight pw*y + 1 - y on the target pw*y / (pw*y + 1 - y) (the same as before for 0/1 targets).
        pw = pos_weight.astype(np.float32)
        self.blocks = []
        for start in range(0, n, CHUNK_ROWS):
            sel = slice(start, min(start + CHUNK_ROWS, n)) if rows is None else rows[start:start + CHUNK_ROWS]
            Yb = np.asarray(Y[sel], dtype=np.float32)
            positive = pw[None, :] * Yb
            cell = positive + np.float32(1.0) - Yb  # >= 1: pos_weight is never below 1
            Cb = np.asarray(M[sel], dtype=np.float32) * cell / np.float32(n)
            self.blocks.append((sel, positive / cell, Cb))
        self.l2 = np.asarray(l2, dtype=np.float64) / n

    def __call__(self, W, b, labels):
        """W: (d, k) float64 (centred space), b: (k,), labels: (k,) label indices.

        Returns (f (k,), gW (d, k), gb (k,)) float64: each label's objective and gradient."""
        k = len(labels)
        all_labels = k == len(self.l2)
        W32 = W.astype(np.float32)
        offset = (b - self.mean.astype(np.float64) @ W).astype(np.float32)
        f = np.zeros(k)
        gX = np.zeros((W.shape[0], k), dtype=np.float32)
        gb = np.zeros(k)
        for sel, Yb, Cb in self.blocks:
            Xb = self.X[sel]
            if not all_labels:
                Yb, Cb = Yb[:, labels], Cb[:, labels]
            Z = Xb @ W32
            Z += offset
            E = np.exp(-np.abs(Z))
            # softplus(z) - y z and sigmoid(z), both from E = exp(-|z|) (stable, one exp)
            loss = np.maximum(Z, 0) + np.log1p(E) - Yb * Z
            f += (Cb * loss).sum(0, dtype=np.float64)
            sig = np.where(Z >= 0, 1.0, E) / (1.0 + E)
            R = Cb * (sig - Yb)
            gX += Xb.T @ R
            gb += R.sum(0, dtype=np.float64)
        l2 = self.l2[labels]
        gW = gX.astype(np.float64) - np.outer(self.mean, gb) + W * l2
        f += 0.5 * l2 * np.sum(W ** 2, axis=0)
        return f, gW, gb


def lbfgs_by_column(evaluate, theta, g_norm0, *, max_iter=100, tol=1e-3, memory=10, start_eval=None):
    """Minimise K independent smooth convex objectives, one per column of ``theta``, by one L-BFGS each,
    all run in lock-step.

    evaluate(T, labels) -> (f (k,), G (p, k)): the objectives and gradients of columns ``labels``
    (k label indices) at the points T (p, k). theta: (p, K) float64 start; g_norm0: (K,) reference
    gradient norms; start_eval: ``evaluate(theta, all labels)`` when the caller has it already.
    Each column keeps its own curvature pairs, step length and stopping test; one
    call to ``evaluate`` serves every column still running (one pass over the data), and a column
    leaves the pass once its gradient norm fell below ``tol * g_norm0`` (or after ``max_iter``
    iterations, or when no step along its direction lowers its objective any more: rounding), so
    easy columns stop costing anything early. Returns theta (p, K) float64.
    """
    theta = np.array(theta, dtype=np.float64)
    p_dim, K = theta.shape
    everyone = np.arange(K)
    f, g = evaluate(theta, everyone) if start_eval is None else (np.array(start_eval[0]), np.array(start_eval[1]))
    running = np.linalg.norm(g, axis=0) > tol * g_norm0
    S = np.zeros((memory, p_dim, K))
    Yh = np.zeros((memory, p_dim, K))
    rho = np.zeros((memory, K))
    gamma = np.ones(K)
    n_pairs = 0
    for _ in range(max_iter):
        act = np.flatnonzero(running)
        if len(act) == 0:
            break
        # two-loop recursion, column by column (each label its own inverse-Hessian estimate); while
        # every label runs, the memory is read in place instead of copied column by column
        cols = slice(None) if len(act) == K else act
        q = g[:, act].copy()
        order = [(n_pairs - 1 - j) % memory for j in range(min(n_pairs, memory))]
        alpha = []
        for slot in order:
            a = rho[slot, act] * np.einsum("ij,ij->j", S[slot][:, cols], q)
            q -= a * Yh[slot][:, cols]
            alpha.append(a)
        q *= gamma[act]
        for slot, a in zip(reversed(order), reversed(alpha)):
            beta = rho[slot, act] * np.einsum("ij,ij->j", Yh[slot][:, cols], q)
            q += S[slot][:, cols] * (a - beta)
        p = -q
        slope = np.einsum("ij,ij->j", g[:, act], p)
        bad = slope >= 0  # not a descent direction: fall back to the gradient
        if bad.any():
            p[:, bad] = -g[:, act][:, bad]
            slope[bad] = -np.einsum("ij,ij->j", g[:, act][:, bad], g[:, act][:, bad])
        # backtracking line search (Armijo), each label its own step; only failing labels re-evaluate
        step = np.ones(len(act))
        f_new = np.empty(len(act))
        g_new = np.empty((p_dim, len(act)))
        pending = np.arange(len(act))
        for _ in range(20):
            cols = act[pending]
            trial = theta[:, cols] + step[pending] * p[:, pending]
            ft, gt = evaluate(trial, cols)
            ok = ft <= f[cols] + 1e-4 * step[pending] * slope[pending]
            f_new[pending[ok]], g_new[:, pending[ok]] = ft[ok], gt[:, ok]
            fail = pending[~ok]
            if len(fail) == 0:
                pending = fail
                break
            # quadratic interpolation of the step, kept within [0.1, 0.5] of the last one
            t, df = step[fail], ft[~ok] - f[act[fail]]
            t_q = -slope[fail] * t ** 2 / (2 * np.maximum(df - slope[fail] * t, 1e-300))
            step[fail] = np.clip(t_q, 0.1 * t, 0.5 * t)
            pending = fail
        moved = np.ones(len(act), dtype=bool)
        moved[pending] = False  # no acceptable step: this label is as good as it gets
        running[act[~moved]] = False
        act, p, step = act[moved], p[:, moved], step[moved]
        f_new, g_new = f_new[moved], g_new[:, moved]
        s = step * p
        y = g_new - g[:, act]
        sy = np.einsum("ij,ij->j", s, y)
        slot = n_pairs % memory
        S[slot][:, act], Yh[slot][:, act] = s, y
        curved = sy > 1e-12
        rho[slot] = 0.0
        rho[slot, act[curved]] = 1.0 / sy[curved]
        gamma[act[curved]] = sy[curved] / np.einsum("ij,ij->j", y[:, curved], y[:, curved])
        n_pairs += 1
        theta[:, act] += s
        f[act], g[:, act] = f_new, g_new
        running[act] &= np.linalg.norm(g_new, axis=0) > tol * g_norm0[act]
    return theta


def _fit_logistic(X, Y, M, pos_weight, l2, *, mean, P, rows=None, W0=None, max_iter=100, tol=1e-3,
                  memory=10):
    """Minimise, for each label k separately, (1/n) [sum_i M_ik w_ik logloss((x_i - mean).W_k + b_k, Y_ik)
    + 0.5 l2_k |W_k|^2] by one L-BFGS per label, all run in lock-step (``lbfgs_by_column``).

    X: (N, d) float32; Y, M: (N, K); rows: fitted row indices (None = all); pos_weight, l2: (K,);
    P: (d, d) preconditioner (``_preconditioner``); W0: optional warm start [W.ravel(), b].
    A label stops once its gradient norm fell below ``tol`` times its norm at zero (or after
    ``max_iter`` iterations).
    Returns theta = [W.ravel(), b], float64, W (d, K) in the centred space.
    """
    d, K = X.shape[1], Y.shape[1]
    objective = _LogisticBlocks(X, Y, M, rows, mean, pos_weight, l2)

    def evaluate(T, labels):  # in the preconditioned variables v, W = P v; T = [v; b]
        f, gW, gb = objective(P @ T[:d], T[d], labels)
        return f, np.vstack([P @ gW, gb[None, :]])

    theta = np.zeros((d + 1, K))
    at_zero = evaluate(theta, np.arange(K))
    # the stopping test is relative to the gradient at zero, so a warm start stops at the same point
    g_norm0 = np.maximum(np.linalg.norm(at_zero[1], axis=0), 1e-12)
    if W0 is not None:  # warm start given in W-space
        theta[:d] = np.linalg.solve(P, W0[: d * K].reshape(d, K))
        theta[d] = W0[d * K:]
        at_zero = None
    theta = lbfgs_by_column(evaluate, theta, g_norm0, max_iter=max_iter, tol=tol, memory=memory,
                            start_eval=at_zero)
    return np.concatenate([(P @ theta[:d]).ravel(), theta[d]])


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

    max_iter : int
        Cap on each label's L-BFGS iterations (fold fits get a third of it).
    tol : float
        A label stops once its gradient norm is below ``tol`` times its norm at zero; fold fits
        stop at ``FOLD_TOL_FACTOR * tol``. Chosen by 3-fold cross-validation on the training
        splits of GoEmotions and Reuters (the loosest tolerance within a fixed macro-F1 slack of the
        best) and checked on SemEval-2018 and XED-en seeds: ``bench/choose_tol.py``,
        ``bench/results/train_speed_tol.json``. ``FOLD_TOL_FACTOR`` was set by hand, not chosen.

    ``C``, ``pos_weight``, ``max_iter`` and ``threshold_shrink`` were chosen by 3-fold cross-validation
    on the training splits of GoEmotions, SemEval-2018 and MULAN rcv1subset1500 (thresholds tuned
    inside each training fold) and checked on held-out datasets and seeds: ``bench/choose_defaults.py``,
    ``bench/results/protocol.md``.
    """

    def __init__(self, C=1.0, C_grid=(0.25, 1.0, 4.0), pos_weight="auto", thresholds="cv", cv=5,
                 max_iter=100, threshold_shrink=50.0, random_state=0, tol=1e-2):
        self.C = C
        self.C_grid = C_grid
        self.pos_weight = pos_weight
        self.thresholds = thresholds
        self.cv = cv
        self.max_iter = max_iter
        self.threshold_shrink = threshold_shrink
        self.random_state = random_state
        self.tol = tol

    # -- fitting ---------------------------------------------------------
    def _fit_once(self, X, Y, M, C_per_label, *, mean, P, rows=None, W0=None, max_iter=None, tol=None):
        pw = positive_weights(Y if rows is None else Y[rows], M if rows is None else M[rows], self.pos_weight)
        l2 = 1.0 / np.asarray(C_per_label, dtype=np.float64)
        theta = _fit_logistic(X, Y, M, pw, l2, mean=mean, P=P, rows=rows, W0=W0,
                              max_iter=max_iter or self.max_iter, tol=tol or self.tol)
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
        n, K = Y.shape
        d = X.shape[1]
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.n_labels_ = K
        self.support_ = (Y * M).sum(0, dtype=np.float64)  # expected positives: soft targets are not floored
        grid = tuple(self.C_grid) if self.C == "cv" else (float(self.C),)
        # One preconditioner for every fit: it depends on the features only (no label), like the
        # centring mean, and only changes how fast the solver gets to each fit's optimum.
        P = _preconditioner(X, float(np.mean(1.0 / np.asarray(grid))) / n, mean=self.mean_)
        need_oof = self.thresholds == "cv" or len(grid) > 1
        if need_oof:
            folds = random_folds(n, self.cv, self.random_state)
            oof = np.zeros((len(grid), n, K), dtype=np.float32)
            fold_thetas = np.zeros((len(grid), d * K + K))  # mean of the folds' solutions, per C
            for f in range(self.cv):
                tr, te = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
                theta = None
                for g, C in enumerate(grid):  # warm-start along the C path (same fold: no leak)
                    # out-of-fold scores only rank and threshold; they stop changing long before
                    # the loss converges, so fold fits stop earlier (FOLD_TOL_FACTOR)
                    theta, pw = self._fit_once(X, Y, M, np.full(K, C), mean=self.mean_, P=P, rows=tr, W0=theta,
                                               max_iter=max(20, self.max_iter // (3 if g == 0 else 5)),
                                               tol=self.tol * FOLD_TOL_FACTOR)
                    oof[g, te] = expit(self._decision(X[te] - self.mean_, theta, pw))
                    fold_thetas[g] += theta / self.cv
            if len(grid) > 1:
                ap = np.stack([masked_average_precision(Y, oof[g], M) for g in range(len(grid))])  # (G, K)
                best = np.argmax(ap, axis=0)
            else:
                best = np.zeros(K, dtype=np.int64)
            self.C_ = np.asarray(grid, dtype=np.float64)[best]
            self.oof_proba_ = oof[best, np.arange(n)[:, None], np.arange(K)[None, :]]
            # The final fit sees every row, so starting it from the folds' mean solution leaks
            # nothing; it lands near the optimum and needs few iterations.
            W_start = fold_thetas[:, :d * K].reshape(len(grid), d, K)[best, :, np.arange(K)]  # (K, d)
            start = np.concatenate([W_start.T.ravel(), fold_thetas[best, d * K + np.arange(K)]])
        else:
            self.C_ = np.full(K, grid[0])
            start = None
        self.theta_, self.pos_weight_ = self._fit_once(X, Y, M, self.C_, mean=self.mean_, P=P, W0=start)
        if self.thresholds == "cv":
            # soft targets enter the cut as expected counts (not rounded at 0.5, not counted whole)
            self.threshold_ = best_f1_thresholds(Y, self.oof_proba_, M, shrink=self.threshold_shrink)
        else:
            self.threshold_ = np.full(K, float(self.thresholds))
        # a label with no known positive can never be predicted by this head
        self.threshold_[self.support_ <= 0] = 1.0 + 1e-9
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
