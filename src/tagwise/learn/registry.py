"""The one registry of models: which classes may be loaded from disk, and which training modes exist.

``MODEL_CLASSES`` lists the classes ``learn.persist`` may rebuild from a model folder (a stranger's
``model.json`` can name nothing else). ``MODES`` maps each ``tagwise train`` mode to the function
that fits it on a ``TrainingData`` bundle; ``choose_mode`` is what ``tagwise train`` does by default.
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..evaluate.metrics import multilabel_report
from ..folds import stratified_folds
from ..types import TagwiseError
from .cotrain import CoTrainingClassifier
from .endtoend import FineTunedTransformer
from .fewshot import FewShotClassifier
from .labelmodel import WeakLabelModel
from .linear import MultiLabelLinear
from .lowlabel import LOW_LABEL_MODES, fit_low_label
from .multisource import MultiSourceLinear
from .semisupervised import SemiSupervisedClassifier
from .zeroshot import ZeroShotClassifier

MODEL_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    MultiLabelLinear, FewShotClassifier, ZeroShotClassifier, SemiSupervisedClassifier, CoTrainingClassifier,
    MultiSourceLinear, WeakLabelModel, FineTunedTransformer)}


def register_model(cls: type) -> type:
    """Class decorator / call: allow a user-defined head (with get_state/from_state) to be saved and loaded."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


@dataclass
class TrainingData:
    """Everything a training mode may read, as arrays.

    X: (n, d) float32 labeled embeddings; Y: (n, K) {0,1} (or soft in [0, 1]); mask: (n, K) bool,
    False = unknown cell; label_names: K names; sources: (n,) source name per row; ancestors: (K, K)
    bool hierarchy or None; X_unlabeled: (m, d) or None; texts / texts_unlabeled: raw texts of X /
    X_unlabeled (co-training reads them); embed: texts -> (t, d) with the same encoder (label prompts);
    descriptions / examples / sub_labels: the taxonomy's zero-shot prompts.
    """

    X: np.ndarray
    Y: np.ndarray
    mask: np.ndarray
    label_names: Sequence[str]
    sources: np.ndarray | None = None
    ancestors: np.ndarray | None = None
    X_unlabeled: np.ndarray | None = None
    texts: Sequence[str] | None = None
    texts_unlabeled: Sequence[str] | None = None
    embed: Callable | None = None
    descriptions: Mapping[str, str] = field(default_factory=dict)
    examples: Mapping[str, Sequence[str]] = field(default_factory=dict)
    sub_labels: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def subset(self, rows: np.ndarray) -> "TrainingData":
        """The same bundle restricted to labeled rows ``rows`` (the unlabeled pool is kept whole)."""
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return TrainingData(self.X[rows], self.Y[rows], self.mask[rows], self.label_names, pick(self.sources),
                            self.ancestors, self.X_unlabeled,
                            None if self.texts is None else [self.texts[i] for i in rows], self.texts_unlabeled,
                            self.embed, self.descriptions, self.examples, self.sub_labels)


def _fit_supervised(data: TrainingData, params: dict, seed: int = 0, progress: bool = False):
    return MultiLabelLinear(**{"random_state": seed, **params}).fit(data.X, data.Y, data.mask)


def _fit_multisource(data: TrainingData, params: dict, seed: int = 0, progress: bool = False):
    if data.sources is None:
        raise TagwiseError("multisource training needs the source of every row.")
    return MultiSourceLinear(**{"random_state": seed, **params}).fit(data.X, data.Y, data.sources, data.mask,
                                                                   data.ancestors)


def _low_label(mode: str):
    def fit(data: TrainingData, params: dict, seed: int = 0, progress: bool = False):
        if data.embed is None:
            raise TagwiseError(f"{mode} training embeds the label names: pass TrainingData.embed.")
        return fit_low_label(mode, data.X, data.Y, data.mask, data.X_unlabeled, list(data.label_names),
                             data.embed, descriptions=data.descriptions, examples=data.examples,
                             sub_labels=data.sub_labels, params=params, texts=data.texts,
                             texts_unlabeled=data.texts_unlabeled, seed=seed, progress=progress)
    return fit


@dataclass(frozen=True)
class Mode:
    """A training mode: its name, a one-line description, and ``fit(data, params, seed, progress)``."""

    name: str
    help: str
    fit: Callable


_LOW_LABEL_HELP = {"zero-shot": "label names (+ taxonomy descriptions/examples/sub_labels) only",
                   "few-shot": "linear head shrunk towards the zero-shot prior",
                   "semi-supervised": "few-shot head co-trained with an n-gram student on the unlabeled texts"}
MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("supervised", "one-vs-rest linear head, per-label thresholds by cross-validation", _fit_supervised),
    *(Mode(name, _LOW_LABEL_HELP[name], _low_label(name)) for name in LOW_LABEL_MODES),
    Mode("multisource", "masked partial labels, hierarchy, per-source modes and thresholds", _fit_multisource),
    # the supervised head on the label model's soft targets (gold wins); workflows.train builds the data
    Mode("weak", "labeling-function votes -> label model -> soft targets for the supervised head", _fit_supervised),
)}
ALIASES = {"linear": "supervised"}  # the name `tagwise train --model` used before modes were one registry


def resolve_mode(name: str) -> Mode:
    """A mode by name (or alias); a ``TagwiseError`` listing the modes for anything else."""
    mode = MODES.get(ALIASES.get(name, name))
    if mode is None:
        raise TagwiseError(f"unknown training mode {name!r}; available: auto, {', '.join(MODES)}.")
    return mode


def _init_params(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "random_state")]


def valid_params(mode: str, params: Mapping | None = None) -> list[str]:
    """The ``--params`` names the head of ``mode`` takes (semi-supervised: those of its ``method``)."""
    name = resolve_mode(mode).name
    if name in ("supervised", "weak"):  # weak: the supervised head on the label model's soft targets
        return _init_params(MultiLabelLinear)
    if name == "multisource":
        return _init_params(MultiSourceLinear)
    if name == "zero-shot":
        return ["expand"]
    if name == "few-shot":
        return ["expand", *_init_params(FewShotClassifier)]
    head = SemiSupervisedClassifier if (params or {}).get("method") == "graph" else CoTrainingClassifier
    return ["method", "expand", *_init_params(head)]


def check_params(mode: str, params: Mapping | None) -> None:
    """A ``TagwiseError`` naming the valid parameters when ``params`` holds a name ``mode``'s head lacks."""
    if not params:
        return
    allowed = valid_params(mode, params)
    for key in params:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TagwiseError(f"--params: {key!r} is not a parameter of the {resolve_mode(mode).name} mode's head."
                               f"{hint} Valid: {', '.join(allowed)}.")


# Beyond this many labeled rows ``choose_mode`` skips the comparison and trains the supervised head:
# the few-label modes exist for small label sets, and cross-validating three modes on a large one
# would cost several full fits for a choice the label counts already make.
MAX_ROWS_TO_COMPARE = 5000
CV_FOLDS = 3


@dataclass
class ModeChoice:
    """What ``choose_mode`` picked and why: ``cv`` maps each compared mode to its CV macro-F1."""

    mode: str
    reason: str
    cv: dict[str, float] = field(default_factory=dict)


def cross_validated_f1(mode: str, data: TrainingData, params: dict | None = None, folds: int = CV_FOLDS,
                       seed: int = 0) -> float:
    """Macro-F1 of ``mode`` on held-out folds of the labeled rows (label-stratified), with each fold
    model's own thresholds; the unlabeled pool stays available to every fold."""
    fold_of = stratified_folds(data.Y * data.mask, folds, random_state=seed)
    Y_all, Z_all = np.zeros_like(data.Y), np.zeros(data.Y.shape, np.uint8)
    fit = resolve_mode(mode).fit
    for f in range(folds):
        train, test = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        model = fit(data.subset(train), dict(params or {}), seed)
        part = data.subset(test)
        Z_all[test] = model.predict(part.X, texts=part.texts, source=part.sources)
        Y_all[test] = data.Y[test]
    return float(multilabel_report(Y_all > 0.5, Z_all, None, list(data.label_names), data.mask)["macro_f1"])


def choose_mode(data: TrainingData, seed: int = 0, progress: bool = False) -> ModeChoice:
    """Pick the training mode from the data, confirmed by cross-validation where it is a close call.

    - no labeled row: zero-shot;
    - labeled rows from two or more sources: multisource (their label sets and modes differ);
    - more than ``MAX_ROWS_TO_COMPARE`` labeled rows: supervised;
    - otherwise supervised, few-shot and (with an unlabeled pool at least as large as the labeled
      rows, and their texts) semi-supervised are each cross-validated on the labeled rows, and the
      best macro-F1 wins (ties go to the simpler mode, listed first).
    """
    n = len(data.X)
    if n == 0 or not data.mask.any():
        return ModeChoice("zero-shot", "no labeled examples")
    sources = sorted(set(map(str, data.sources))) if data.sources is not None else []
    if len(sources) >= 2:
        return ModeChoice("multisource", f"{len(sources)} labeled sources ({', '.join(sources[:5])}"
                                         f"{', ...' if len(sources) > 5 else ''})")
    if n > MAX_ROWS_TO_COMPARE:
        return ModeChoice("supervised", f"{n} labeled examples (more than {MAX_ROWS_TO_COMPARE})")
    positives = (data.Y * data.mask).sum(0)
    if (positives >= CV_FOLDS).sum() == 0:
        return ModeChoice("zero-shot", f"no label has {CV_FOLDS} labeled positives")
    candidates = ["supervised", "few-shot"]
    pool = 0 if data.X_unlabeled is None else len(data.X_unlabeled)
    if pool >= n and data.texts is not None and data.texts_unlabeled is not None:
        candidates.append("semi-supervised")
    scores = {}
    for mode in candidates:
        scores[mode] = round(cross_validated_f1(mode, data, seed=seed), 4)
        if progress:
            print(f"  {mode}: {CV_FOLDS}-fold macro-F1 {scores[mode]:.4f}", flush=True)
    best = max(candidates, key=lambda m: (scores[m], -candidates.index(m)))
    return ModeChoice(best, f"best {CV_FOLDS}-fold cross-validated macro-F1 on the {n} labeled examples "
                            f"(median {int(np.median(positives))} positives per label, {pool} unlabeled)", scores)
