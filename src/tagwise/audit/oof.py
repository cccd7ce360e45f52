"""Out-of-fold predicted probabilities by K-fold cross-fitting.

Every example is scored by a model that never saw its own labels, which is what makes a low
probability for a given label (or a high one for an absent label) evidence of a labeling error.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import expit, logit
from tqdm.auto import tqdm

from ..folds import stratified_folds
from ..learn.linear import MultiLabelLinear
from ..types import TagwiseError


def platt_calibrate(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                    iters: int = 25, chunk: int = 262_144) -> np.ndarray:
    """Per-label Platt scaling: fit p = sigmoid(a_k z + b_k) to the labels, vectorised Newton.

    scores, labels: (n, K); mask: (n, K) bool cells to fit on. Two parameters per label fitted
    on n out-of-fold scores cannot overfit noticeably. Returns (n, K) float32 probabilities.
    """
    Z = np.asarray(scores, dtype=np.float32)
    Y = np.asarray(labels, dtype=np.float32)
    n, K = Z.shape
    a, b = np.ones(K), np.zeros(K)
    for _ in range(iters):
        g = np.zeros((2, K))
        h = np.zeros((3, K))
        for s in range(0, n, chunk):
            z, y = Z[s:s + chunk].astype(np.float64), Y[s:s + chunk]
            w_known = 1.0 if mask is None else mask[s:s + chunk]
            p = expit(a * z + b)
            r = (p - y) * w_known
            w = p * (1 - p) * w_known + 1e-9
            g += ((r * z).sum(0), r.sum(0))
            h += ((w * z * z).sum(0), (w * z).sum(0), w.sum(0))
        haa, hab, hbb = h[0] + 1e-3, h[1], h[2] + 1e-6
        ga, gb = g[0] + 1e-3 * (a - 1), g[1]
        det = haa * hbb - hab * hab
        step_a, step_b = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        a, b = a - step_a, b - step_b
        if max(np.abs(step_a).max(), np.abs(step_b).max()) < 1e-6:
            break
    return expit(a.astype(np.float32) * Z + b.astype(np.float32)).astype(np.float32)


def _gram(X: np.ndarray, rows: np.ndarray | None = None, chunk: int = 65_536) -> np.ndarray:
    """(d+1, d+1) Gram matrix of [X, 1] over ``rows`` (bool or None = all), chunked.

    Each chunk's product runs in float32 (twice the speed of float64 BLAS; with the ridge term
    the solve is far from ill-conditioned) and is accumulated in float64."""
    n, d = X.shape
    G = np.zeros((d + 1, d + 1))
    for s in range(0, n, chunk):
        x = X[s:s + chunk] if rows is None else X[s:s + chunk][rows[s:s + chunk]]
        G[:d, :d] += x.T @ x
        G[:d, d] += x.sum(0, dtype=np.float64)
        G[d, d] += len(x)
    G[d, :d] = G[:d, d]
    return G


def _mask_groups(M: np.ndarray | None, K: int) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """Labels grouped by their mask column: [(known rows (n,) bool or None = all, label ids)], so
    one Gram matrix serves every label of a group."""
    if M is None or M.all():
        return [(None, np.arange(K))]
    _, inv = np.unique(np.packbits(M, axis=0), axis=1, return_inverse=True)
    inv = inv.ravel()
    return [(M[:, np.flatnonzero(inv == g)[0]], np.flatnonzero(inv == g)) for g in range(inv.max() + 1)]


def _fold_products(part: tuple[np.ndarray, np.ndarray]):
    """One fold's known rows (Xf (m, d), Yf (m, K)) -> its (d+1)^2 Gram matrix of [Xf, 1] and (d+1, K)
    cross products with Yf."""
    Xf, Yf = part
    Bf = np.zeros((Xf.shape[1] + 1, Yf.shape[1]))
    Bf[:-1] = Xf.T @ Yf
    Bf[-1] = Yf.sum(0)
    return _gram(Xf), Bf


def _fold_scores(part: tuple[int, np.ndarray], G: np.ndarray, B: np.ndarray, fold_G: list, fold_B: list,
                 ridge: np.ndarray) -> np.ndarray:
    """(f, X_f (n_f, d)) -> fold f's ridge scores (n_f, K) float32 from a model solved on the other folds."""
    f, Xf = part
    d = Xf.shape[1]
    W = np.linalg.solve(G - fold_G[f] + ridge, B - fold_B[f]).astype(np.float32)
    return Xf @ W[:d] + W[d]


def _serial_map(fn, items, shared=None):
    return [fn(item, **(shared or {})) for item in items]


def ridge_out_of_fold_proba(X: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                            fold_ids: np.ndarray | None = None, folds: int = 5, alpha: float = 10.0,
                            random_state: int = 0, progress: bool = True, map_fn=None) -> np.ndarray:
    """Fast cross-fitting: one-vs-rest ridge regression on [X, 1], then per-label Platt scaling.

    Each fold's (d+1)^2 Gram matrix and (d+1, K) cross products are built once; the full ones
    are their sum, and fold f is solved from (full - fold f) as one (d+1)^2 system for all K
    labels, so K-fold cross-fitting costs about two passes over X instead of K * folds
    iterative solver runs. Labels whose mask
    columns differ (multi-source data) are solved per distinct mask pattern.

    X: (n, d); labels: (n, K) {0,1}; mask: (n, K) bool or None. ``map_fn(fn, items, shared)``: how
    the per-fold work is run (``tagwise.engine``'s ``map``, e.g. on Ray; default: in this process).
    Returns (n, K) float32.
    """
    X = np.asarray(X, dtype=np.float32)
    Y = np.asarray(labels, dtype=np.float32)
    n, d = X.shape
    K = Y.shape[1]
    M = None if mask is None else np.asarray(mask, dtype=bool)
    ids = stratified_folds(Y if M is None else Y * M, folds, random_state) if fold_ids is None else fold_ids
    groups = _mask_groups(M, K)
    Z = np.zeros((n, K), dtype=np.float32)
    ridge = alpha * np.eye(d + 1)
    ridge[d, d] = 1e-8  # the bias is not shrunk
    bar = tqdm(total=folds * len(groups), desc="audit: cross-fitting", unit="fold", disable=not progress)
    map_fn = map_fn or _serial_map
    for rows, cols in groups:
        Yg = Y[:, cols] if rows is None else Y[:, cols] * rows[:, None]
        # per-fold Gram and cross products; the full ones are their sums (one pass over X)
        # each task gets only its fold's rows (a generator: the engine ships one fold after the other)
        known = ((ids == f if rows is None else (ids == f) & rows) for f in range(folds))
        products = map_fn(_fold_products, ((X[k], Yg[k]) for k in known))
        fold_G, fold_B = [g for g, _ in products], [b for _, b in products]
        G, B = sum(fold_G), sum(fold_B)
        scores = map_fn(_fold_scores, ((f, X[ids == f]) for f in range(folds)),
                        shared={"G": G, "B": B, "fold_G": fold_G, "fold_B": fold_B, "ridge": ridge})
        for f in range(folds):
            Z[np.ix_(ids == f, cols)] = scores[f]
            bar.update(1)
    bar.close()
    return platt_calibrate(Z, Y, M)


def label_dependency_proba(pred_probs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                           fold_ids: np.ndarray | None = None, folds: int = 5, alpha: float = 1.0,
                           random_state: int = 0, label_chunk: int = 64) -> np.ndarray:
    """Out-of-fold probability of each label given the example *and its other given labels*.

    A second, cross-fitted stage: per label j, ridge regression of y_j on ``[logit p_j, y_{-j}, 1]``
    (p = first-stage out-of-fold probabilities, y_{-j} = the example's other given labels), then
    per-label Platt scaling. It learns label dependencies that a per-label model cannot see:
    labels that come together (a missed secondary label is likely when its usual partner is
    given) and labels that exclude each other (a label added next to a contradicting one is
    unlikely). cleanlab scores each label alone; on seeded noise this view on its own (averaged
    with p) lifts GoEmotions uniform-noise AUPRC from 0.34 to 0.53 (bench/bench_audit.py). It trusts the other given
    labels, so it is blind to swaps (one label replaced by another), which is why the audit
    ranks rows by the worse of this view and the plain one (``core.audit_arrays``).

    pred_probs, labels: (n, K); mask: optional (n, K) bool (unknown cells are 0 as features and
    not fitted as targets); fold_ids: (n,) ints, the first stage's folds. Returns (n, K) float32.
    """
    Y = np.asarray(labels, dtype=np.float32)
    n, K = Y.shape
    M = None if mask is None else np.asarray(mask, dtype=bool)
    Zp = logit(np.clip(np.asarray(pred_probs, dtype=np.float32), 1e-4, 1 - 1e-4))
    ids = stratified_folds(Y if M is None else Y * M, folds, random_state) if fold_ids is None else fold_ids
    # float32 products (exact for the 0/1 Gram), small systems solved in float64
    A = np.concatenate([Y if M is None else Y * M, np.ones((n, 1), np.float32)], axis=1)  # (n, K+1): y, bias
    out = np.zeros((n, K), dtype=np.float32)
    for rows, cols in _mask_groups(M, K):
        for f in np.unique(ids):
            tr = ids != f if rows is None else (ids != f) & rows
            te = ids == f
            At, Zt, Yt = A[tr], Zp[tr][:, cols], Y[tr][:, cols]
            G, AZ, AY = (At.T @ At).astype(np.float64), (At.T @ Zt).astype(np.float64), (At.T @ Yt).astype(np.float64)
            ZZ, ZY = (Zt * Zt).sum(0, dtype=np.float64), (Zt * Yt).sum(0, dtype=np.float64)
            for s in range(0, len(cols), label_chunk):  # batched (K+2)^2 solves, one per label
                js = np.arange(s, min(s + label_chunk, len(cols)))
                H = np.zeros((len(js), K + 2, K + 2))
                H[:, 0, 0], H[:, 0, 1:], H[:, 1:, 0], H[:, 1:, 1:] = ZZ[js], AZ[:, js].T, AZ[:, js].T, G
                rhs = np.concatenate([ZY[js][:, None], AY[:, js].T], axis=1)
                own = 1 + cols[js]  # the label's own column is not a feature of itself
                H[np.arange(len(js)), own, :] = 0.0
                H[np.arange(len(js)), :, own] = 0.0
                rhs[np.arange(len(js)), own] = 0.0
                H[:, np.arange(K + 1), np.arange(K + 1)] += alpha  # ridge on all but the bias
                H[:, K + 1, K + 1] += 1e-8
                w = np.linalg.solve(H, rhs[..., None])[..., 0]  # (labels, K+2)
                w = w.astype(np.float32)
                out[np.ix_(te, cols[js])] = Zp[np.ix_(te, cols[js])] * w[:, 0] + A[te] @ w[:, 1:].T
    return platt_calibrate(out, Y, M)


def default_estimator_factory() -> MultiLabelLinear:
    """A slower, iterative alternative for cross-fitting: all labels in one L-BFGS run, fixed C
    and no inner CV (audit is about ranking; an inner CV multiplies the cost by grid x folds)."""
    return MultiLabelLinear(C=2.0, thresholds=0.5, pos_weight="sqrt", max_iter=300)


def out_of_fold_proba(X: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None, folds: int = 5,
                      estimator_factory: Callable[[], object] | None = None,
                      random_state: int = 0, fold_ids: np.ndarray | None = None,
                      progress: bool = True, map_fn=None) -> np.ndarray:
    """Out-of-fold probabilities for every (example, label) cell.

    X: (n, d) float features. labels: (n, K) {0,1} given labels. mask: optional (n, K) bool,
    False where a label is unknown for an example (its source does not annotate it); such cells
    are ignored in training but still get a probability. ``estimator_factory`` None uses the
    closed-form ridge cross-fitting (``ridge_out_of_fold_proba``); otherwise it returns an
    unfitted estimator with ``fit(X, Y, mask=)`` and ``predict_proba(X) -> (n, K)``, e.g.
    ``default_estimator_factory`` (``MultiLabelLinear``). ``map_fn(fn, items, shared)`` runs the folds
    (``tagwise.engine``'s ``map``, e.g. on Ray; default: one after the other in this process).

    Returns (n, K) float32 probabilities.
    """
    X = np.asarray(X, dtype=np.float32)
    Y = np.asarray(labels, dtype=np.float32)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise TagwiseError(f"out_of_fold_proba: X must be (n, d) and labels (n, K) with the same n; "
                           f"got {X.shape} and {Y.shape}")
    n, K = Y.shape
    if folds < 2:
        raise TagwiseError(f"out_of_fold_proba: folds must be at least 2, got {folds}")
    if n < folds:
        raise TagwiseError(f"out_of_fold_proba: {n} examples are fewer than {folds} folds. "
                           f"Fix: add labeled examples or lower --folds.")
    M = None if mask is None else np.asarray(mask, dtype=bool)
    ids = stratified_folds(Y * (1 if M is None else M), folds, random_state) if fold_ids is None else fold_ids
    if estimator_factory is None:
        return ridge_out_of_fold_proba(X, Y, M, fold_ids=ids, folds=folds, progress=progress, map_fn=map_fn)
    out = np.zeros((n, K), dtype=np.float32)
    if map_fn is not None:
        fold_probs = map_fn(_fit_fold, list(range(folds)), shared={"X": X, "Y": Y, "M": M, "ids": ids,
                                                                   "estimator_factory": estimator_factory})
        for f in range(folds):
            out[ids == f] = fold_probs[f]
        return out
    for f in tqdm(range(folds), desc="audit: cross-fitting", unit="fold", disable=not progress):
        out[ids == f] = _fit_fold(f, X, Y, M, ids, estimator_factory)
    return out


def _fit_fold(f: int, X: np.ndarray, Y: np.ndarray, M: np.ndarray | None, ids: np.ndarray,
              estimator_factory: Callable[[], object]) -> np.ndarray:
    """Fold f's (n_f, K) probabilities from a model fitted on the other folds."""
    tr, te = ids != f, ids == f
    model = estimator_factory()
    model.fit(X[tr], Y[tr], **({} if M is None else {"mask": M[tr]}))
    return model.predict_proba(X[te])
