"""Save and load models as JSON + .npy arrays: loading a stranger's model runs no code.

A model class opts in with ``get_state() -> (meta: dict, arrays: dict[str, ndarray])`` and
``from_state(meta, arrays)``, and by being listed in ``learn.registry.MODEL_CLASSES``; the JSON names
the class, and only listed classes can be loaded. A class with ``weights_format = "safetensors"``
(the fine-tuned transformer: hundreds of tensors) has its arrays written to one ``model.safetensors``
instead of one ``.npy`` each; reading safetensors runs no code either.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .._io import atomic_replace_dir, atomic_save_npy, atomic_write_json, load_npy
from ..types import TagwiseError
from .registry import MODEL_CLASSES

FORMAT_VERSION = 1
SAFETENSORS = "model.safetensors"


def save_model(model, directory: str | Path, info: dict | None = None) -> Path:
    """Write ``directory/model.json`` + ``directory/<array>.npy`` atomically (whole folder swap).

    ``info`` is free metadata kept beside the model (label names, encoder id, metrics...).
    """
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"{name} is not a registered model class; call register_model({name}) first")
    meta, arrays = model.get_state()
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # the pid in the name lets the next command tell a killed build (removed) from a running one
    build = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.build-{os.getpid()}-"))
    for key in arrays:
        if not re.fullmatch(r"[A-Za-z0-9_]+", key):
            raise ValueError(f"array name {key!r} must be alphanumeric")
    doc = {"format_version": FORMAT_VERSION, "class": name, "meta": meta, "arrays": sorted(arrays), "info": info or {}}
    if getattr(model, "weights_format", "npy") == "safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(build / SAFETENSORS))
        doc["weights"] = SAFETENSORS
    else:
        for key, arr in arrays.items():
            atomic_save_npy(build / f"{key}.npy", arr)
    atomic_write_json(build / "model.json", doc)
    atomic_replace_dir(build, directory)
    return directory


def load_model(directory: str | Path):
    """Load a model saved by ``save_model``. Returns ``(model, info)``. Never unpickles.

    Anything malformed (an unknown or non-string class, a missing or truncated ``.npy``, an array that
    would need pickle, parameters the class does not take, arrays of the wrong shape) is a
    ``TagwiseError`` naming the folder: the folder is then not a model this version can use.
    """
    directory = Path(directory)
    fix = "Fix: retrain with `tagwise train`, or remove the folder."
    try:
        doc = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TagwiseError(f"{directory}: cannot read model.json: {exc}. {fix}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("class"), str):
        raise TagwiseError(f"{directory}/model.json: no model class named (a string under 'class'). {fix}")
    cls = MODEL_CLASSES.get(doc["class"])
    if cls is None:
        raise TagwiseError(f"{directory}: unknown model class {doc['class']!r}; known: {sorted(MODEL_CLASSES)}. {fix}")
    names = doc.get("arrays")
    if not isinstance(names, list) or not isinstance(doc.get("meta"), dict):
        raise TagwiseError(f"{directory}/model.json: 'arrays' must list the array names and 'meta' be an object. {fix}")
    info = doc.get("info", {})
    if not isinstance(info, dict) or not isinstance(info.get("labels", []), list):
        raise TagwiseError(f"{directory}/model.json: 'info' must be an object with a 'labels' list. {fix}")
    arrays = {}
    if doc.get("weights") is not None:
        arrays = _load_safetensors(directory, doc["weights"], names, fix)
    for key in ([] if doc.get("weights") is not None else names):
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_]+", key):
            raise TagwiseError(f"{directory}: bad array name {key!r} in model.json. {fix}")
        try:
            arrays[key] = load_npy(directory / f"{key}.npy")  # allow_pickle=False
        except FileNotFoundError:
            raise TagwiseError(f"{directory}: {key}.npy is missing. {fix}") from None
        except (ValueError, OSError, EOFError) as exc:  # truncated, not .npy, or an object array (pickle)
            raise TagwiseError(f"{directory}: {key}.npy cannot be read safely ({exc}). {fix}") from None
    try:
        model = cls.from_state(doc["meta"], arrays)
        if "head_columns" in info:
            model = RemappedHead(model, info["head_columns"])
        _smoke_test(model, info)
    except TagwiseError:
        raise
    except Exception as exc:  # noqa: BLE001  (any inconsistency of a stranger's folder is a bad model)
        raise TagwiseError(f"{directory}: the saved {doc['class']} is inconsistent ({type(exc).__name__}: "
                           f"{exc}). {fix}") from None
    return model, info


def _load_safetensors(directory: Path, weights, names: list, fix: str) -> dict:
    """The arrays of ``directory/model.safetensors`` (the only weights file name accepted), exactly ``names``."""
    if weights != SAFETENSORS:
        raise TagwiseError(f"{directory}/model.json: 'weights' must be {SAFETENSORS!r}, not {weights!r}. {fix}")
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise TagwiseError(f"{directory}: this model's weights are safetensors; install the torch extra "
                           f"(`make torch` or pip install 'tagwise[torch]').") from None
    try:
        arrays = load_file(str(directory / SAFETENSORS))
    except FileNotFoundError:
        raise TagwiseError(f"{directory}: {SAFETENSORS} is missing. {fix}") from None
    except Exception as exc:  # noqa: BLE001  (a truncated or foreign file)
        raise TagwiseError(f"{directory}: {SAFETENSORS} cannot be read ({exc}). {fix}") from None
    if sorted(arrays) != sorted(names):
        raise TagwiseError(f"{directory}: {SAFETENSORS} holds {sorted(arrays)[:5]}..., model.json lists "
                           f"{sorted(names)[:5]}.... {fix}")
    return arrays


def _smoke_test(model, info: dict) -> None:
    """Predict one all-zero row: shapes that do not fit each other fail here, not at the user's first call."""
    width = model._n_features() if hasattr(model, "_n_features") else None
    if width is None:
        return
    P = model.predict_proba(np.zeros((1, width), np.float32), texts=[""] if getattr(model, "needs_texts", False)
                            else None)
    labels = info.get("labels")
    if labels is not None and P.shape[1] != len(labels):
        raise TagwiseError(f"the model predicts {P.shape[1]} labels but info.labels names {len(labels)}")
    if model.thresholds_for(1).shape != P.shape:
        raise TagwiseError(f"thresholds have shape {model.thresholds_for(1).shape}, predictions {P.shape}")


class RemappedHead:
    """A fitted head seen through a taxonomy change (issue 32) until it is retrained.

    ``head_columns[j]``: the head's output columns behind output label j (``info["labels"][j]``):
    one column for a kept or renamed label, several for a merged one (its probability is the max of
    those heads, its threshold their min, so an example any merged head called positive stays
    positive); a retired label's columns are simply not listed. Written by ``workflows.taxonomy_changes``
    into ``model.json``'s info; everything else is the wrapped head's.
    """

    def __init__(self, head, head_columns):
        if not isinstance(head_columns, list) or not all(
                isinstance(c, list) and c and all(isinstance(k, int) and k >= 0 for k in c) for c in head_columns):
            raise TagwiseError("info.head_columns must list, per label, the head's column numbers")
        self.head = head
        self.head_columns = [list(c) for c in head_columns]

    def __getattr__(self, name):
        return getattr(self.__dict__["head"], name)

    def _pool(self, M: np.ndarray, reduce) -> np.ndarray:
        M = np.asarray(M)
        if not self.head_columns:
            return np.zeros((len(M), 0), dtype=M.dtype)
        return np.stack([reduce(M[:, cols], axis=1) for cols in self.head_columns], axis=1)

    def predict_proba(self, X, texts=None, source=None) -> np.ndarray:
        return self._pool(self.head.predict_proba(X, texts=texts, source=source), np.max)

    def thresholds_for(self, n: int, source=None) -> np.ndarray:
        return self._pool(self.head.thresholds_for(n, source), np.min)

    def decide(self, P, source=None) -> np.ndarray:
        return (np.asarray(P) >= self.thresholds_for(len(P), source)).astype(np.uint8)

    def predict(self, X, texts=None, source=None) -> np.ndarray:
        return self.decide(self.predict_proba(X, texts=texts, source=source), source)
