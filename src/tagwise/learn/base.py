"""The contract every multi-label head follows (scikit-learn conventions).

- Parameters are set in ``__init__`` and never changed by ``fit``; fitted state ends with ``_``.
- ``fit`` validates shapes and raises a ``TagwiseError`` that says what to fix.
- ``predict_proba(X, texts=None, source=None)`` -> (n, K) probabilities and
  ``predict(X, texts=None, source=None)`` -> (n, K) uint8 decisions with the model's *own*
  thresholds (per source for a source-aware model). ``texts`` is read only by heads with
  ``needs_texts = True``; ``source`` (one name, or (n,) names, or None) only by source-aware heads.
- Calling ``predict*`` before ``fit`` raises scikit-learn's ``NotFittedError`` (a ``ValueError``).
- ``get_state() -> (meta, arrays)`` and ``from_state(meta, arrays)`` save without pickle
  (``learn.persist``).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..types import TagwiseError


def check_fit_arrays(X, Y, mask=None, *, where: str = "fit") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate training arrays. Returns ``(X (n, d) float32, Y (n, K) float32, mask (n, K) bool)``.

    X: (n, d) numbers; Y: (n, K) {0,1} (soft targets in [0, 1] are allowed); mask: (n, K) bool or None
    (None = every cell known). Raises ``TagwiseError`` naming the mismatch.
    """
    X = np.asarray(X, dtype=np.float32)
    Y = np.asarray(Y, dtype=np.float32)
    if X.ndim != 2:
        raise TagwiseError(f"{where}: X must be a 2-d (n_examples, n_features) array; got shape {X.shape}.")
    if Y.ndim != 2:
        raise TagwiseError(f"{where}: Y must be a 2-d (n_examples, n_labels) indicator matrix; got shape "
                           f"{Y.shape}. Fix: LabelSpace.to_matrix turns label-name lists into one.")
    if len(X) != len(Y):
        raise TagwiseError(f"{where}: X has {len(X)} rows but Y has {len(Y)}; give one label row per example.")
    if len(X) == 0:
        raise TagwiseError(f"{where}: no training examples.")
    if not np.isfinite(X).all():
        raise TagwiseError(f"{where}: X contains NaN or infinite values.")
    if Y.size and (Y.min() < 0 or Y.max() > 1):
        raise TagwiseError(f"{where}: Y must hold values in [0, 1] (0/1 labels or soft targets).")
    M = np.ones(Y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if M.shape != Y.shape:
        raise TagwiseError(f"{where}: mask has shape {M.shape}; expected {Y.shape} like Y.")
    return X, Y, M


class MultiLabelHead(BaseEstimator, ClassifierMixin):
    """Base class of tagwise's heads: shared input checks and ``predict`` from ``predict_proba``."""

    needs_texts = False  # True: predict_proba reads the raw texts too (texts=...)

    def _check_X(self, X) -> np.ndarray:
        """Fitted? and X (n, d) with the training width -> float32 array."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float32)
        width = self._n_features()
        if X.ndim != 2 or (width is not None and X.shape[1] != width):
            raise TagwiseError(f"{type(self).__name__}: X has shape {X.shape}; expected (n, {width}) "
                               f"embeddings from the encoder the model was trained with.")
        return X

    def _n_features(self) -> int | None:
        mean = getattr(self, "mean_", None)
        return None if mean is None else int(np.shape(mean)[-1])

    def thresholds_for(self, n: int, source=None) -> np.ndarray:
        """(n, K) decision thresholds (the same row for every example unless source-aware)."""
        check_is_fitted(self)
        return np.broadcast_to(np.asarray(self.threshold_, dtype=np.float64), (n, len(self.threshold_)))

    def decide(self, P, source=None) -> np.ndarray:
        """(n, K) probabilities of ``predict_proba`` -> (n, K) uint8 decisions with the model's own rule
        (for callers that need both without computing the probabilities twice)."""
        return (P >= self.thresholds_for(len(P), source)).astype(np.uint8)

    def predict(self, X, texts=None, source=None) -> np.ndarray:
        """(n, d) -> (n, K) uint8: probability >= the model's own per-label (per-source) threshold."""
        return self.decide(self.predict_proba(X, texts=texts, source=source), source)
