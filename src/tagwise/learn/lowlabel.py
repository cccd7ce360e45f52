"""Training with few or no labels: zero-shot, few-shot and semi-supervised, on arrays.

``fit_low_label`` is the entry point of ``learn.registry``'s zero-shot / few-shot / semi-supervised
modes (``tagwise train --zero-shot`` / ``--few-shot`` / ``--semi-supervised``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..types import TagwiseError
from .cotrain import CoTrainingClassifier
from .fewshot import FewShotClassifier
from .semisupervised import SemiSupervisedClassifier
from .zeroshot import ZeroShotClassifier, label_embeddings, sub_label_embeddings

LOW_LABEL_MODES = ("zero-shot", "few-shot", "semi-supervised")  # registered in learn.registry.MODES
SEMI_METHODS = ("cotrain", "graph")  # params["method"] of semi-supervised mode; cotrain is the default
MAX_CORPUS = 100_000  # rows used to standardise zero-shot scores (a random sample beyond this)


def fit_zero_shot(label_names: Sequence[str], X_corpus: np.ndarray, embed, *,
                  descriptions: Mapping[str, str] | None = None,
                  examples: Mapping[str, Sequence[str]] | None = None,
                  sub_labels: Mapping[str, Sequence[str]] | None = None, seed: int = 0,
                  **params) -> ZeroShotClassifier:
    """Zero-shot model for ``label_names``; ``embed``: texts -> (n, d) with the corpus's encoder.

    X_corpus: (n, d) embeddings of the domain's texts (labeled or not) for per-label standardisation;
    sub_labels: label -> finer names that also describe it (``Taxonomy.zero_shot_sub_labels``).
    """
    X_corpus = np.asarray(X_corpus, dtype=np.float32)
    if len(X_corpus) > MAX_CORPUS:
        X_corpus = X_corpus[np.random.default_rng(seed).choice(len(X_corpus), MAX_CORPUS, replace=False)]
    L = label_embeddings(label_names, None, descriptions=descriptions, examples=examples, embed=embed)
    sub, owner = sub_label_embeddings(label_names, sub_labels or {}, embed)
    return ZeroShotClassifier(**params).fit(X_corpus, L, label_names, sub_vectors=sub, sub_owner=owner)


def fit_low_label(mode: str, X, Y, mask, X_unlabeled, label_names: Sequence[str], embed, *,
                  descriptions: Mapping[str, str] | None = None,
                  examples: Mapping[str, Sequence[str]] | None = None,
                  sub_labels: Mapping[str, Sequence[str]] | None = None, params: dict | None = None,
                  texts: Sequence[str] | None = None, texts_unlabeled: Sequence[str] | None = None,
                  seed: int = 0, progress: bool = False):
    """Fit a model for ``mode`` in ``LOW_LABEL_MODES``.

    X: (n, d) labeled embeddings (n may be 0 for zero-shot); Y: (n, K) {0,1}; mask: (n, K) bool or
    None; X_unlabeled: (m, d) or None; label_names: K names; embed: texts -> (t, d) with the same
    encoder (for the label prompts); texts / texts_unlabeled: the raw texts of X / X_unlabeled
    (semi-supervised co-training reads them); sub_labels: label -> finer names for the zero-shot
    score (CHiLS; ``params["expand"]``: "auto" (default), true or false). Returns a fitted
    estimator with ``predict_proba``, ``predict``, ``threshold_``, ``get_state``/``from_state`` (a
    model with ``needs_texts = True`` also wants ``texts=`` when predicting).

    - zero-shot: label names (+ descriptions/examples) only; labeled examples, if any, only
      recalibrate the per-label cuts.
    - few-shot: ``FewShotClassifier`` (linear head shrunk to the zero-shot prior).
    - semi-supervised: ``params["method"]``: "cotrain" (default, ``CoTrainingClassifier``: the
      few-shot head + a character n-gram student distilled on the unlabeled texts) or "graph"
      (``SemiSupervisedClassifier``: the head self-trained on kNN-graph propagated pseudo-labels).
    """
    if mode not in LOW_LABEL_MODES:
        raise TagwiseError(f"unknown training mode {mode!r}; use one of {list(LOW_LABEL_MODES)}.")
    K = len(label_names)
    parts = [a for a in (X, X_unlabeled) if a is not None and len(a)]
    if not parts:
        raise TagwiseError("no texts to learn from: add a source (labeled or unlabeled) first.")
    d = parts[0].shape[1]
    X = np.zeros((0, d), np.float32) if X is None else np.asarray(X, dtype=np.float32)
    Y = np.zeros((0, K), np.uint8) if Y is None else np.asarray(Y)
    if Y.shape != (len(X), K):
        raise TagwiseError(f"labels have shape {Y.shape}; expected {(len(X), K)} for {len(X)} examples x {K} labels.")
    corpus = np.concatenate(parts)
    params = dict(params or {})
    zs = fit_zero_shot(label_names, corpus, embed, descriptions=descriptions, examples=examples,
                       sub_labels=sub_labels, seed=seed, expand=params.pop("expand", "auto"))
    if mode == "zero-shot":
        if len(X) and Y.any():
            zs.calibrate(X, Y, mask)  # also chooses, label by label, plain or sub-label scores
        return zs
    if len(X) < 2:
        raise TagwiseError(f"{mode} training needs labeled examples (found {len(X)}). Fix: add a labeled "
                           f"source, or use --zero-shot (label names only).")
    # the labeled examples decide, label by label, whether the prior uses its sub-labels
    zs.choose_expansion(X, Y, mask)
    if mode == "few-shot":
        return FewShotClassifier(random_state=seed, **params).fit(X, Y, mask, zeroshot=zs, X_corpus=corpus,
                                                                  X_unlabeled=X_unlabeled)
    if X_unlabeled is None or len(X_unlabeled) == 0:
        raise TagwiseError("--semi-supervised needs unlabeled examples. Fix: add a source with "
                           "split: unlabeled (or rows without labels).")
    method = params.pop("method", "cotrain")
    if method not in SEMI_METHODS:
        raise TagwiseError(f"unknown semi-supervised method {method!r}; use one of {list(SEMI_METHODS)} "
                           f"(--params '{{\"method\": \"graph\"}}').")
    if method == "graph":
        return SemiSupervisedClassifier(random_state=seed, **params).fit(X, Y, mask, X_unlabeled=X_unlabeled,
                                                                         zeroshot=zs, progress=progress)
    if texts is None or texts_unlabeled is None:
        raise TagwiseError("semi-supervised co-training reads the texts: pass texts= and texts_unlabeled= "
                           "(or params {\"method\": \"graph\"} for embeddings only).")
    return CoTrainingClassifier(random_state=seed, **params).fit(
        X, Y, mask, texts=texts, X_unlabeled=X_unlabeled, texts_unlabeled=texts_unlabeled, zeroshot=zs,
        progress=progress)


def zero_shot_prior(model) -> ZeroShotClassifier | None:
    """The label-name prior inside a low-label model (itself for zero-shot, else its head's)."""
    if isinstance(model, ZeroShotClassifier):
        return model
    return getattr(getattr(model, "head_", model), "zeroshot_", None)
