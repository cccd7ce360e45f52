"""Train a project's model: gather labeled examples, embed them, fit a head, save it."""
from __future__ import annotations

import time

import numpy as np

from ..types import TagwiseError
from .linear import MultiLabelLinear
from .persist import load_model, save_model

HEADS = {"linear": MultiLabelLinear}
LOW_LABEL_MODES = ("zero-shot", "few-shot", "semi-supervised")  # learn/lowlabel.py


def training_data(project, split: str | list[str] = "train", encoder: str | None = None):
    """Labeled examples of ``split`` as ``(examples, X (n,d), Y (n,K) uint8, mask (n,K) bool)``."""
    ex = project.examples(split=split, labeled=True)
    if len(ex) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r}. Fix: add a source "
                           f"with that split (`tagwise add-source`), or pass another --split.")
    space = project.labels
    X = project.features(ex, encoder, progress=True)
    return ex, X, ex.label_matrix(space), ex.known_mask(space)


def train_project(project, model: str = "linear", split: str | list[str] = "train",
                  encoder: str | None = None, name: str | None = None, params: dict | None = None) -> dict:
    """Fit a head on the project's labeled ``split`` and make it the current model.

    Returns ``{"model": name, "n_examples", "n_labels", "seconds", "thresholds": {label: t}}``.
    """
    if model in LOW_LABEL_MODES:  # tagwise train --zero-shot / --few-shot / --semi-supervised
        from .lowlabel import train_low_label_project

        return train_low_label_project(project, model, encoder=encoder, name=name, split=split, params=params)
    if model == "multisource":  # learn/multisource.py: partial labels, hierarchy, per-source heads
        from .multisource import train_multisource_project

        return train_multisource_project(project, split=split, encoder=encoder, name=name, params=params)
    if model not in HEADS:
        raise TagwiseError(f"unknown model {model!r}; available: "
                           f"{sorted(HEADS) + ['multisource'] + list(LOW_LABEL_MODES)}.")
    encoder = encoder or project.default_encoder
    ex, X, Y, mask = training_data(project, split, encoder)
    space = project.labels
    t0 = time.perf_counter()
    head = HEADS[model](**(params or {})).fit(X, Y, mask)
    seconds = time.perf_counter() - t0
    name = name or time.strftime(f"{model}-%Y%m%d-%H%M%S")
    info = {"labels": list(space.names), "encoder": encoder, "trained_on": {"split": split, "n_examples": len(ex),
            "sources": sorted(set(ex.sources))}, "fit_seconds": round(seconds, 3)}
    save_model(head, project.models_dir / name, info)
    project.set_current_model(name)
    return {"model": name, "n_examples": len(ex), "n_labels": len(space), "seconds": seconds,
            "thresholds": dict(zip(space.names, map(float, head.threshold_)))}


class LoadedModel:
    """A saved head plus what it needs to predict: its label names and encoder."""

    def __init__(self, directory):
        self.head, self.info = load_model(directory)
        self.labels: list[str] = self.info["labels"]
        self.encoder: str = self.info["encoder"]

    @property
    def needs_texts(self) -> bool:
        """True when the head also reads the raw texts (co-training's character n-gram view)."""
        return bool(getattr(self.head, "needs_texts", False))

    def predict_proba(self, X: np.ndarray, texts: list[str] | None = None) -> np.ndarray:
        """X: (n, d) embeddings with ``self.encoder``; texts: their n texts (used if ``needs_texts``)."""
        return self.head.predict_proba(X, texts=texts) if self.needs_texts else self.head.predict_proba(X)

    def predict(self, X: np.ndarray, texts: list[str] | None = None) -> np.ndarray:
        return self.head.predict(X, texts=texts) if self.needs_texts else self.head.predict(X)

    @property
    def thresholds(self) -> np.ndarray:
        return self.head.threshold_


def load_project_model(project, name: str | None = None) -> LoadedModel:
    return LoadedModel(project.model_dir(name))
