"""The peers' base models, given the same care as tagwise's (issue 29).

cleanlab needs out-of-fold predicted probabilities from a classifier the user picks. The bench
scripts give it the same shuffled, stratified fold ids tagwise's audit cross-fits on
(``tagwise.folds.stratified_folds``) and a tuned base model: logistic regression with its C and class
weighting chosen from ``CLEANLAB_BASE_GRID`` by out-of-fold log loss on the (noisy) labels it is given
- what a careful user can do; the planted truth is never looked at. tagwise's audit has no grid at
run time (closed-form ridge cross-fitting with a fixed alpha, then Platt scaling), so this is the
larger budget.
"""
from __future__ import annotations

import warnings

import numpy as np

CLEANLAB_BASE_GRID = {"C": (0.25, 1.0, 4.0), "class_weight": (None, "balanced")}


def cleanlab_pred_probs(X, Y, multi_label: bool, fold_ids) -> tuple[np.ndarray, dict]:
    """X: (n, d); Y: (n, K) {0,1} given labels; fold_ids: (n,) ints (tagwise's folds).

    Returns (P, info): P (n, K) out-of-fold probabilities of the grid point with the lowest
    out-of-fold log loss; info = {"chosen": {...}, "log_loss": {point: value}, "grid_points": int}.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier

    cv = PredefinedSplit(np.asarray(fold_ids))
    Y = np.asarray(Y)
    y = Y if multi_label else Y.argmax(1)

    def log_loss(P):
        P = np.clip(P, 1e-7, 1 - 1e-7)
        if multi_label:
            return float(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))
        return float(-np.mean(np.log(P[np.arange(len(y)), y])))

    tried, losses = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for C in CLEANLAB_BASE_GRID["C"]:
            for w in CLEANLAB_BASE_GRID["class_weight"]:
                lr = LogisticRegression(C=C, class_weight=w, max_iter=1000)
                model = OneVsRestClassifier(lr) if multi_label else lr
                tried[(C, w)] = cross_val_predict(model, X, y, cv=cv, method="predict_proba")
                losses[f"C={C},class_weight={w}"] = round(log_loss(tried[(C, w)]), 5)
    C, w = min(tried, key=lambda k: log_loss(tried[k]))
    return tried[(C, w)], {"chosen": {"C": C, "class_weight": w}, "log_loss": losses, "grid_points": len(tried)}
