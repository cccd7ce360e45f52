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

Sub-labels (CHiLS, Novack et al. 2023): a label can also be described by finer names (a parent by
its children in the hierarchy, or ``sub_labels`` in the taxonomy: "anger" by annoyance, rage, ...).
Its score then adds the best sub-label's cosine to its own (both centred per text), the text-side
analogue of CHiLS' "subclass probability x superclass probability" reweighting. With
``expand="auto"`` labeled examples decide per label whether that ranks better than the plain score
(``choose_expansion``): finer names help when they are the words texts actually use (GoEmotions'
fine labels for Ekman's six), and hurt when they are not (Plutchik's intensity words for
SemEval's emotions; figures in bench/results/chils.json).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy.special import expit

from ..types import TagwiseError
from .base import MultiLabelHead
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


def sub_label_embeddings(names: Sequence[str], sub_labels: Mapping[str, Sequence[str]], embed,
                         templates: Sequence[str] = DEFAULT_TEMPLATES) -> tuple[np.ndarray, np.ndarray]:
    """Prompt vectors of each label's sub-labels. Returns (vectors (S, d) float32, owner (S,) int64:
    the index in ``names`` of the label each sub-label describes); S = 0 without sub-labels.
    ``embed``: texts -> (n, d)."""
    flat, owner = [], []
    for k, name in enumerate(names):
        for sub in dict.fromkeys(sub_labels.get(name, ())):
            flat.append(str(sub))
            owner.append(k)
    if not flat:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return label_embeddings(flat, None, templates=templates, embed=embed), np.asarray(owner, dtype=np.int64)


class ZeroShotClassifier(MultiLabelHead):
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
    expand : {"auto", True, False}
        Score labels that have sub-labels (``fit(sub_vectors=...)``) with them. "auto": yes, until
        labeled examples (``calibrate`` / ``choose_expansion``) show the plain score ranks a label
        better.
    """

    def __init__(self, labels_per_text: float = 3.0, center_rows: bool = True, temperature: float = 0.5,
                 expand="auto"):
        self.labels_per_text = labels_per_text
        self.center_rows = center_rows
        self.temperature = temperature
        self.expand = expand

    # -- fitting ---------------------------------------------------------
    def fit(self, X_corpus, label_vectors, label_names: Sequence[str] | None = None, sub_vectors=None,
            sub_owner=None):
        """Standardise scores over ``X_corpus``.

        X_corpus: (n, d) embeddings of unlabeled texts from the target domain (n >= 2);
        label_vectors: (K, d) from ``label_embeddings``; sub_vectors (S, d) and sub_owner (S,) ints
        in [0, K): optional sub-label vectors and the label each describes (``sub_label_embeddings``).
        """
        X = np.asarray(X_corpus, dtype=np.float32)
        L = np.asarray(label_vectors, dtype=np.float32)
        if X.ndim != 2 or L.ndim != 2 or X.shape[1] != L.shape[1]:
            raise TagwiseError(f"zero-shot: corpus embeddings {X.shape} and label vectors {L.shape} "
                               f"must be 2-D with the same width (same encoder).")
        if len(X) < 2:
            raise TagwiseError("zero-shot: need at least 2 texts to standardise label scores; "
                               "Fix: add unlabeled texts to the project.")
        if self.expand not in ("auto", True, False):
            raise TagwiseError(f"zero-shot: expand must be 'auto', true or false, not {self.expand!r}.")
        K = len(L)
        sub = np.zeros((0, L.shape[1]), np.float32) if sub_vectors is None else np.asarray(sub_vectors, np.float32)
        owner = np.zeros(0, np.int64) if sub_owner is None else np.asarray(sub_owner, dtype=np.int64)
        if len(sub) and (sub.ndim != 2 or sub.shape[1] != L.shape[1] or owner.shape != (len(sub),)
                         or owner.min() < 0 or owner.max() >= K):
            raise TagwiseError(f"zero-shot: sub-label vectors {sub.shape} and owners {owner.shape} must be "
                               f"(S, {L.shape[1]}) and (S,) with owners in [0, {K}).")
        self.label_vectors_ = L
        self.label_names_ = list(label_names) if label_names is not None else [str(k) for k in range(K)]
        self.sub_vectors_, self.sub_owner_ = sub.reshape(-1, L.shape[1]), owner
        has_sub = np.bincount(owner, minlength=K) > 0
        rate = min(float(self.labels_per_text) / max(K, 1), 0.5)
        # standardisation and rank cut for both scores, so choose_expansion can switch per label later
        S = self._raw(X)
        E = S + self._sub_boost(X)
        self.mean_, self.scale_ = S.mean(0), np.maximum(S.std(0), 1e-6)
        self.sub_mean_, self.sub_scale_ = E.mean(0), np.maximum(E.std(0), 1e-6)
        self.z_cut_ = np.quantile((S - self.mean_) / self.scale_, 1.0 - rate, axis=0).astype(np.float32)
        self.sub_z_cut_ = np.quantile((E - self.sub_mean_) / self.sub_scale_, 1.0 - rate, axis=0).astype(np.float32)
        self.expanded_ = has_sub & (self.expand in ("auto", True))
        self.threshold_ = np.full(K, 0.5)  # on predict_proba; calibrate() moves it per label
        return self

    def _raw(self, X) -> np.ndarray:
        """(n, d) -> (n, K) cosines to the label vectors, centred per text."""
        S = np.asarray(X, dtype=np.float32) @ self.label_vectors_.T
        if self.center_rows and S.shape[1] > 1:
            S = S - S.mean(1, keepdims=True)
        return S

    def _sub_boost(self, X) -> np.ndarray:
        """(n, d) -> (n, K) what sub-labels add to the raw score: each label's best sub-label
        cosine (centred per text over all sub-labels); 0 for labels without sub-labels."""
        B = np.zeros((len(X), len(self.label_vectors_)), np.float32)
        if not len(self.sub_vectors_):
            return B
        T = np.asarray(X, dtype=np.float32) @ self.sub_vectors_.T
        if self.center_rows and T.shape[1] > 1:
            T = T - T.mean(1, keepdims=True)
        for k in np.unique(self.sub_owner_):
            B[:, k] = T[:, self.sub_owner_ == k].max(1)
        return B

    def _zscores_both(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(plain, expanded) standardised scores minus their rank cuts, each (n, K)."""
        S = self._raw(X)
        Zp = (S - self.mean_) / self.scale_ - self.z_cut_
        if not len(self.sub_vectors_):
            return Zp, Zp
        return Zp, (S + self._sub_boost(X) - self.sub_mean_) / self.sub_scale_ - self.sub_z_cut_

    def zscores(self, X) -> np.ndarray:
        """(n, d) -> (n, K) standardised label scores (sub-label expanded where ``expanded_``)."""
        if not self.expanded_.any():
            return (self._raw(X) - self.mean_) / self.scale_
        Zp, Ze = self._zscores_both(X)
        # both relative to their own rank cut, then shifted so each cut sits where the plain one does
        return np.where(self.expanded_[None, :], Ze, Zp) + self.z_cut_

    def choose_expansion(self, X, Y, mask=None, min_positives: int = 3) -> "ZeroShotClassifier":
        """With ``expand="auto"``: keep a label's sub-label score only where it ranks the labeled
        examples at least as well (ROC AUC) as the plain score. Labels with fewer than
        ``min_positives`` known positives or negatives keep their current choice. AUC rather than
        average precision, which is noisier with 8 positives per label.
        X: (n, d); Y: (n, K) {0,1}; mask: optional (n, K) bool of known cells. Returns self."""
        if self.expand != "auto" or not len(self.sub_vectors_):
            return self
        from sklearn.metrics import roc_auc_score

        Y = np.asarray(Y) > 0
        M = np.ones_like(Y, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        Zp, Ze = self._zscores_both(X)
        self.expansion_auc_gain_ = np.full(len(self.expanded_), np.nan)
        for k in np.unique(self.sub_owner_):
            y = Y[M[:, k], k]
            if y.sum() < min_positives or (~y).sum() < min_positives:
                continue
            gain = roc_auc_score(y, Ze[M[:, k], k]) - roc_auc_score(y, Zp[M[:, k], k])
            self.expansion_auc_gain_[k] = gain
            self.expanded_[k] = gain >= 0
        return self

    def decision_function(self, X) -> np.ndarray:
        """(n, d) -> (n, K) logits; 0 is each label's rank cut (before calibration)."""
        return (self.zscores(X) - self.z_cut_) / self.temperature

    def _n_features(self) -> int | None:
        return int(self.label_vectors_.shape[1])

    def predict_proba(self, X, texts=None, source=None) -> np.ndarray:
        """(n, d) -> (n, K) scores in (0, 1); 0.5 is the zero-shot cut."""
        return expit(self.decision_function(self._check_X(X)))

    def calibrate(self, X, Y, mask=None, shrink: float = 5.0):
        """Move each label's cut using a few labeled examples (X: (n, d), Y/mask: (n, K)).

        The F1-best cut on these examples is shrunk towards the zero-shot cut (0.5) with weight
        ``shrink / (shrink + n_pos)``, so 3 positives move it a little and 50 move it a lot. With
        sub-labels and ``expand="auto"`` the same examples first choose each label's score
        (``choose_expansion``).
        """
        self.choose_expansion(X, Y, mask)
        P = self.predict_proba(X)
        Y = np.asarray(Y)
        M = np.ones_like(Y, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.threshold_ = best_f1_thresholds(Y, P, M, min_positives=1, shrink=shrink, default=0.5)
        return self

    # -- persistence -----------------------------------------------------
    def get_state(self):
        return ({"params": self.get_params(), "label_names": self.label_names_},
                {"label_vectors": self.label_vectors_, "mean": self.mean_, "scale": self.scale_,
                 "z_cut": self.z_cut_, "threshold": self.threshold_, "sub_vectors": self.sub_vectors_,
                 "sub_owner": self.sub_owner_, "sub_mean": self.sub_mean_, "sub_scale": self.sub_scale_,
                 "sub_z_cut": self.sub_z_cut_, "expanded": self.expanded_.astype(np.uint8)})

    @classmethod
    def from_state(cls, meta, arrays):
        model = cls(**meta["params"])
        model.label_names_ = list(meta["label_names"])
        model.label_vectors_, model.mean_ = arrays["label_vectors"], arrays["mean"]
        model.scale_, model.threshold_ = arrays["scale"], arrays["threshold"]
        model.z_cut_ = arrays["z_cut"]
        K, d = model.label_vectors_.shape
        # models saved before sub-labels existed have none
        model.sub_vectors_ = arrays.get("sub_vectors", np.zeros((0, d), np.float32)).reshape(-1, d)
        model.sub_owner_ = arrays.get("sub_owner", np.zeros(0, np.int64)).astype(np.int64)
        model.sub_mean_ = arrays.get("sub_mean", model.mean_)
        model.sub_scale_ = arrays.get("sub_scale", model.scale_)
        model.sub_z_cut_ = arrays.get("sub_z_cut", model.z_cut_)
        model.expanded_ = arrays.get("expanded", np.zeros(K, np.uint8)).astype(bool)
        return model


class WithZeroShotLabels:
    """A fitted head plus zero-shot scores for labels it was not trained on (issue 32: labels added or
    split off after training), until it is retrained.

    ``zero_shot``: a fitted ``ZeroShotClassifier``; ``columns``: its columns appended, in order, after
    the head's own. Probabilities (n, K + len(columns)); each appended label's threshold is the zero-shot
    one (``threshold_``). Everything else is the wrapped head's.
    """

    def __init__(self, head, zero_shot: ZeroShotClassifier, columns: Sequence[int]):
        self.head, self.zero_shot, self.columns = head, zero_shot, [int(c) for c in columns]

    def __getattr__(self, name):
        return getattr(self.__dict__["head"], name)

    def predict_proba(self, X, texts=None, source=None) -> np.ndarray:
        P = np.asarray(self.head.predict_proba(X, texts=texts, source=source))
        Q = np.asarray(self.zero_shot.predict_proba(X))[:, self.columns]
        return np.hstack([P, Q.astype(P.dtype, copy=False)])

    def thresholds_for(self, n: int, source=None) -> np.ndarray:
        T = np.asarray(self.head.thresholds_for(n, source), dtype=np.float64)
        extra = np.broadcast_to(np.asarray(self.zero_shot.threshold_, dtype=np.float64)[self.columns], (n, len(self.columns)))
        return np.hstack([T, extra])

    def decide(self, P, source=None) -> np.ndarray:
        return (np.asarray(P) >= self.thresholds_for(len(P), source)).astype(np.uint8)

    def predict(self, X, texts=None, source=None) -> np.ndarray:
        return self.decide(self.predict_proba(X, texts=texts, source=source), source)
