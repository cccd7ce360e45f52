"""Save and load models as JSON + .npy arrays: loading a stranger's model runs no code.

A model class opts in with ``get_state() -> (meta: dict, arrays: dict[str, ndarray])`` and
``from_state(meta, arrays)``, and by being listed in ``MODEL_CLASSES``; the JSON names the class,
and only listed classes can be loaded.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from .._io import atomic_replace_dir, atomic_save_npy, atomic_write_json, load_npy
from ..types import TagwiseError

FORMAT_VERSION = 1
MODEL_CLASSES: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator / call: allow ``cls`` to be loaded from disk."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def _register_builtin() -> None:
    from .linear import MultiLabelLinear

    register_model(MultiLabelLinear)
    from . import cotrain, fewshot, labelmodel, multisource, semisupervised, zeroshot  # noqa: F401  (they register their model classes)


def save_model(model, directory: str | Path, info: dict | None = None) -> Path:
    """Write ``directory/model.json`` + ``directory/<array>.npy`` atomically (whole folder swap).

    ``info`` is free metadata kept beside the model (label names, encoder id, metrics...).
    """
    _register_builtin()
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"{name} is not a registered model class; call register_model({name}) first")
    meta, arrays = model.get_state()
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.build-"))
    for key, arr in arrays.items():
        if not re.fullmatch(r"[A-Za-z0-9_]+", key):
            raise ValueError(f"array name {key!r} must be alphanumeric")
        atomic_save_npy(build / f"{key}.npy", arr)
    atomic_write_json(build / "model.json", {"format_version": FORMAT_VERSION, "class": name,
                                              "meta": meta, "arrays": sorted(arrays), "info": info or {}})
    atomic_replace_dir(build, directory)
    return directory


def load_model(directory: str | Path):
    """Load a model saved by ``save_model``. Returns ``(model, info)``. Never unpickles."""
    _register_builtin()
    directory = Path(directory)
    try:
        doc = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TagwiseError(f"{directory}: cannot read model.json: {exc}") from None
    cls = MODEL_CLASSES.get(doc.get("class"))
    if cls is None:
        raise TagwiseError(f"{directory}: unknown model class {doc.get('class')!r}; known: {sorted(MODEL_CLASSES)}")
    arrays = {}
    for key in doc["arrays"]:
        if not re.fullmatch(r"[A-Za-z0-9_]+", key):
            raise TagwiseError(f"{directory}: bad array name {key!r} in model.json")
        arrays[key] = load_npy(directory / f"{key}.npy")  # allow_pickle=False
    return cls.from_state(doc["meta"], arrays), doc.get("info", {})
