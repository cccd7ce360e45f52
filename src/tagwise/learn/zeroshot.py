"""Zero-shot multi-label classification from label names, descriptions and example sentences.

Each label becomes one unit vector: the mean embedding of several prompts built from its name
("This text expresses joy.", ...), its description and its example sentences. A text's raw score for
a label is the cosine with that vector. Raw cosines are not comparable across labels (some label
names sit closer to every text than others), so scores are standardised per label over a reference
corpus (the project's texts, no labels needed) after removing each text's mean over labels. Each
label then gets its own cut at a corpus rank: the top ``labels_per_text / K`` of the corpus for that
label is predicted. This rank rule replaces the single global cosine cut that barely beats
predicting every label (measured in bench/bench_fewshot.py).

A handful of labeled examples can then recalibrate the per-label cut (``calibrate``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin

from ..types import TagwiseError
from .persist import register_model
from .thresholds import best_f1_thresholds

DEFAULT_TEMPLATES = (
    "{label}",
    "This text expresses {label}.",
    "This text is about {label}.",
    "The writer feels {label}.",
    "A message showing {label}.",
)


def label_prompts(name: str, description: str | None = None, examples: Sequence[str] = (),
                  templates: Sequence[str] = DEFAULT_TEMPLATES) -> list[str]:
    """The prompt texts that describe one label (templates over its name, description, examples)."""
    readable = name.replace("_", " ").replace("-", " ").strip()
    prompts = [t.format(label=readable) for t in templates]
    if description:
        prompts.append(f"{readable}: {description}")
    prompts.extend(str(e) for e in examples)
    return prompts


def label_embeddings(names: Sequence[str], encoder, *, descriptions: Mapping[str, str] | None = None,
                     examples: Mapping[str, Sequence[str]] | None = None,
                     templates: Sequence[str] = DEFAULT_TEMPLATES, embed=None) -> np.ndarray:
    """(K, d) float32 unit vectors, one per label: the normalised mean of its prompt embeddings.

    ``encoder`` has ``encode(texts) -> (n, d)``; ``embed`` (texts -> (n, d)) overrides it, e.g. to go
    through a project's embedding cache.
    """
    descriptions = descriptions or {}
    examples = examples or {}
    embed = embed or encoder.encode
    prompts, owner = [], []
    for k, name in enumerate(names):
        p = label_prompts(name, descriptions.get(name), examples.get(name, ()), templates)
        prompts.extend(p)
        owner.extend([k] * len(p))
    E = np.asarray(embed(prompts), dtype=np.float32)
    owner = np.asarray(owner)
    L = np.stack([E[owner == k].mean(0) for k in range(len(names))])
    return (L / np.maximum(np.linalg.norm(L, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@register_model
class ZeroShotClassifier(BaseEstimator, ClassifierMixin):
    """Cosine-to-label-prompt classifier with per-label standardisation and a rank/z threshold.

    Parameters
    ----------
    labels_per_text : float
        How many labels a text gets on average; each label is predicted for the top
        ``min(labels_per_text / K, 0.5)`` fraction of the corpus. Macro-F1 rewards predicting a weak
        label generously, so the default (3) is above the usual 1-2.5 gold labels per text;
        ``fit_rate`` sets it from labeled examples instead.
    center_rows : bool
        Subtract each text's mean cosine over labels before standardising.
    temperature : float
        Probability = sigmoid((z - cut) / temperature); only the ranking and the cut matter for
        ``predict``.
    """

    def __init__(self, labels_per_text: float = 3.0, center_rows: bool = True, temperature: float = 0.5):
        self.labels_per_text = labels_per_text
        self.center_rows = center_rows
        self.temperature = temperature

    # -- fitting ---------------------------------------------------------
    def fit(self, X_corpus, label_vectors, label_names: Sequence[str] | None = None):
        """Standardise scores over ``X_corpus``.

        X_corpus: (n, d) embeddings of unlabeled texts from the target domain (n >= 2);
        label_vectors: (K, d) from ``label_embeddings``.
        """
        X = np.asarray(X_corpus, dtype=np.float32)
        L = np.asarray(label_vectors, dtype=np.float32)
        if X.ndim != 2 or L.ndim != 2 or X.shape[1] != L.shape[1]:
            raise TagwiseError(f"zero-shot: corpus embeddings {X.shape} and label vectors {L.shape} "
                               f"must be 2-D with the same width (same encoder).")
        if len(X) < 2:
            raise TagwiseError("zero-shot: need at least 2 texts to standardise label scores; "
                               "Fix: add unlabeled texts to the project.")
        self.label_vectors_ = L
        self.label_names_ = list(label_names) if label_names is not None else [str(k) for k in range(len(L))]
        S = self._raw(X)
        self.mean_ = S.mean(0)
        self.scale_ = np.maximum(S.std(0), 1e-6)
        Z = (S - self.mean_) / self.scale_
        rate = min(float(self.labels_per_text) / max(len(L), 1), 0.5)
        self.z_cut_ = np.quantile(Z, 1.0 - rate, axis=0).astype(np.float32)
        self.threshold_ = np.full(len(L), 0.5)  # on predict_proba; calibrate() moves it per label
        return self

    def _raw(self, X) -> np.ndarray:
        S = np.asarray(X, dtype=np.float32) @ self.label_vectors_.T
        if self.center_rows and S.shape[1] > 1:
            S = S - S.mean(1, keepdims=True)
        return S

    def zscores(self, X) -> np.ndarray:
        """(n, d) -> (n, K) standardised label scores."""
        return (self._raw(X) - self.mean_) / self.scale_

    def decision_function(self, X) -> np.ndarray:
        """(n, d) -> (n, K) logits; 0 is each label's rank cut (before calibration)."""
        return (self.zscores(X) - self.z_cut_) / self.temperature

    def predict_proba(self, X) -> np.ndarray:
        """(n, d) -> (n, K) scores in (0, 1); 0.5 is the zero-shot cut."""
        return expit(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        """(n, d) -> (n, K) uint8."""
        return (self.predict_proba(X) >= self.threshold_[None, :]).astype(np.uint8)

    def calibrate(self, X, Y, mask=None, shrink: float = 5.0):
        """Move each label's cut using a few labeled examples (X: (n, d), Y/mask: (n, K)).

        The F1-best cut on these examples is shrunk towards the zero-shot cut (0.5) with weight
        ``shrink / (shrink + n_pos)``, so 3 positives move it a little and 50 move it a lot.
        """
        P = self.predict_proba(X)
        Y = np.asarray(Y)
        M = np.ones_like(Y, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.threshold_ = best_f1_thresholds(Y, P, M, min_positives=1, shrink=shrink, default=0.5)
        return self

    # -- persistence -----------------------------------------------------
    def get_state(self):
        return ({"params": self.get_params(), "label_names": self.label_names_},
                {"label_vectors": self.label_vectors_, "mean": self.mean_, "scale": self.scale_,
                 "z_cut": self.z_cut_, "threshold": self.threshold_})

    @classmethod
    def from_state(cls, meta, arrays):
        model = cls(**meta["params"])
        model.label_names_ = list(meta["label_names"])
        model.label_vectors_, model.mean_ = arrays["label_vectors"], arrays["mean"]
        model.scale_, model.threshold_ = arrays["scale"], arrays["threshold"]
        model.z_cut_ = arrays["z_cut"]
        return model
