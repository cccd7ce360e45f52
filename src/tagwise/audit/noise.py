"""Seeded synthetic label noise for benchmarking and testing the audit.

Three documented models, each corrupting ``rate`` of the examples (one change per example):

- ``uniform``: drop one given label (only when the example keeps at least one) or add a label
  drawn uniformly from those it lacks, 50/50; single-label data replaces the class with a
  uniformly drawn other class.
- ``confusion``: replace one given label by its most similar label that the example lacks
  (``label_similarity``: cosine of label centroids in embedding space, so annoyance -> anger).
- ``missing``: drop one label of an example that has at least two (an annotator missed a
  secondary label). Only multi-label examples are eligible; if fewer than ``rate * n`` exist,
  all of them are used and the achieved rate is lower (reported by the caller).

The noisy matrix is what an audit sees as the given labels; the ground-truth errors are exactly
the cells changed here.
"""
from __future__ import annotations

import numpy as np

NOISE_MODELS = ("uniform", "confusion", "missing")


def label_similarity(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarity of label centroids (mean L2-normalised embedding per label);
    the diagonal is -inf so argmax gives the most similar *other* label."""
    Y = np.asarray(labels, dtype=np.float32)
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    C = Y.T @ Xn
    C /= np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    S = C @ C.T
    np.fill_diagonal(S, -np.inf)
    return S


def inject_noise(labels: np.ndarray, model: str, rate: float, similarity: np.ndarray | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt ``rate`` of the examples of a clean (n, K) {0,1} matrix.

    Returns ``(noisy (n, K) uint8, changed (n, K) bool)``; ``changed.any(1)`` marks corrupted rows.
    """
    if model not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {model!r}; choose from {NOISE_MODELS}")
    Y = np.asarray(labels, dtype=np.uint8).copy()
    n, K = Y.shape
    rng = np.random.default_rng(seed)
    single = bool((Y.sum(1) == 1).all())
    n_labels = Y.sum(1)
    eligible = np.flatnonzero(n_labels >= 2) if model == "missing" else np.flatnonzero(n_labels >= 1)
    take = min(len(eligible), int(round(rate * n)))
    rows = rng.choice(eligible, size=take, replace=False)
    if model == "confusion" and similarity is None:
        raise ValueError("the confusion model needs a (K, K) label similarity")
    for i in rows:
        given = np.flatnonzero(Y[i])
        absent = np.flatnonzero(Y[i] == 0)
        if model == "missing":
            Y[i, rng.choice(given)] = 0
        elif model == "uniform":
            if single:
                Y[i, given[0]] = 0
                Y[i, rng.choice(absent)] = 1
            elif len(given) >= 2 and rng.random() < 0.5:
                Y[i, rng.choice(given)] = 0
            else:
                Y[i, rng.choice(absent)] = 1
        else:  # confusion
            src = rng.choice(given)
            order = np.argsort(-similarity[src])
            dst = next(k for k in order if Y[i, k] == 0 and k != src)
            Y[i, src] = 0
            Y[i, dst] = 1
    changed = Y != np.asarray(labels, dtype=np.uint8)
    return Y, changed


def inject_instance_noise(X: np.ndarray, labels: np.ndarray, rate: float, train_share: float = 0.05,
                          alpha: float = 10.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    # X is the weak model's view of the texts. A weak model on the auditor's own features copies
    # mistakes that the auditor's model shares (its errors follow the same geometry), which makes
    # them undetectable by construction; a different view (character n-grams) mimics an annotator
    # misled by surface cues.
    """Instance-dependent noise: copy the mistakes of a weak model, as a hurried annotator would.

    A one-vs-rest ridge model on [X, 1] is fitted to ``train_share`` of the rows (seeded), with
    per-label Platt scaling on those rows. A row is eligible when that weak model gets it wrong
    (single-label: its top class is not the given one; multi-label: some cell's probability is
    on the wrong side of 0.5). ``rate * n`` eligible rows are drawn with probability proportional
    to how confident the weak model is in its mistake, so errors land on ambiguous, confusable
    texts rather than uniformly. Each drawn row takes the weak model's worst cell: single-label
    rows take its top class; multi-label rows gain its most confident absent label, or lose its
    least supported given label when the row keeps another (else that label is swapped for the
    weak model's top absent one). If fewer rows are eligible, all are used (the caller reports the
    achieved rate).

    X: (n, d) float; labels: (n, K) {0,1} clean. Returns ``(noisy (n, K) uint8, changed (n, K) bool)``.
    """
    from .oof import platt_calibrate

    Y = np.asarray(labels, dtype=np.uint8)
    X = np.asarray(X, dtype=np.float32)
    n, K = Y.shape
    rng = np.random.default_rng(seed)
    fit = np.zeros(n, dtype=bool)
    fit[rng.choice(n, size=max(int(round(train_share * n)), 2), replace=False)] = True
    A = np.concatenate([X, np.ones((n, 1), np.float32)], axis=1)
    ridge = alpha * np.eye(A.shape[1])
    ridge[-1, -1] = 1e-8
    W = np.linalg.solve(A[fit].T @ A[fit] + ridge, A[fit].T @ Y[fit].astype(np.float32))
    P = platt_calibrate(A @ W, Y, np.repeat(fit[:, None], K, axis=1))
    noisy = Y.copy()
    single = bool((Y.sum(1) == 1).all())
    if single:
        Q = np.where(Y == 1, -np.inf, P)
        top = Q.argmax(1)
        wrong_conf = Q.max(1) - P[Y == 1]  # > 0: the weak model prefers another class
    else:
        wrong_conf = np.abs(P - Y).max(1) - 0.5
    eligible = np.flatnonzero(wrong_conf > 0)
    take = min(len(eligible), int(round(rate * n)))
    weights = wrong_conf[eligible] / wrong_conf[eligible].sum() if take else None
    rows = rng.choice(eligible, size=take, replace=False, p=weights) if take else np.array([], int)
    for i in rows:
        if single:
            noisy[i] = 0
            noisy[i, top[i]] = 1
            continue
        cell = int(np.abs(P[i] - Y[i]).argmax())
        if Y[i, cell] == 0:
            noisy[i, cell] = 1
        else:
            noisy[i, cell] = 0
            if Y[i].sum() == 1:
                noisy[i, int(np.where(Y[i] == 1, -np.inf, P[i]).argmax())] = 1
    return noisy, noisy != Y
