"""Retrain with the labels people gave, and show what changed: before/after figures on dev and test."""
from __future__ import annotations

import time

from ..project import Project
from ..types import TagwiseError
from .evaluate import evaluate
from .train import train

FIGURES = ("micro_f1", "macro_f1")


def _figures(project: Project, model: str | None) -> dict:
    """{split: {"micro_f1", "macro_f1", "n_examples"}} of ``model`` on the labeled dev/test splits."""
    out = {}
    for split in ("dev", "test"):
        try:
            r = evaluate(project, split=split, model=model, save=split == "test")
        except TagwiseError:  # no labeled rows in that split, or no model yet
            continue
        out[split] = {k: round(float(r[k]), 4) for k in FIGURES} | {"n_examples": int(r["n_examples"])}
    return out


def retrain(project: Project, mode: str = "auto", progress=None) -> dict:
    """Evaluate the current model, train a new one on the project's resolved labels (annotations
    included), evaluate it on the same splits.

    progress: optional ``(fraction 0..1, stage text) -> None``. Returns ``{"model", "previous_model",
    "mode", "previous_mode", "mode_changed", "choice": {"mode", "reason", "cv"}, "mode_note" (which mode and
    why, in words), "n_examples", "seconds", "before": {split: figures}, "after": {split: figures}, "warnings"}``
    (``warnings``: the new model's training data health warnings, ``workflows.health``).
    """
    report = progress or (lambda f, s: None)
    t0 = time.perf_counter()
    current = project.models_dir / "CURRENT"
    previous = current.read_text(encoding="utf-8").strip() if current.exists() else None
    report(0.05, "scoring the current model")
    before = _figures(project, previous) if previous else {}
    report(0.3, "training")
    # a stack `train --budget-minutes` chose stays: a retrain on a few more labels does not re-run that choice
    kept_encoder = _chosen_encoder(project, previous)
    result = train(project, mode=mode or "auto", progress=False, encoder=kept_encoder)
    report(0.8, "scoring the new model")
    after = _figures(project, result["model"])
    report(1.0, "done")
    previous_mode = _mode_of(project, previous)
    choice = result.get("choice") or {"mode": result["mode"], "reason": ""}
    changed = previous_mode is not None and previous_mode != result["mode"]
    why = f": {choice['reason']}" if choice.get("reason") else ""
    note = (f"The mode changed from {previous_mode} to {result['mode']}{why}." if changed
            else f"Mode {result['mode']}{' (as before)' if previous_mode else ''}{why}.")
    if kept_encoder:
        note += f" Encoder {kept_encoder}, as the current model's (chosen by train --budget-minutes)."
    return {"model": result["model"], "previous_model": previous, "mode": result["mode"],
            "previous_mode": previous_mode, "mode_changed": changed, "choice": choice, "mode_note": note,
            "n_examples": result["n_examples"], "seconds": round(time.perf_counter() - t0, 2),
            "before": before, "after": after, "warnings": result["warnings"]}


def _chosen_encoder(project: Project, model: str | None) -> str | None:
    """The encoder of ``model`` when ``train --budget-minutes`` chose it (its info has ``encoder_choice``)."""
    if not model:
        return None
    from .models import load_project_model

    try:
        info = load_project_model(project, model).info
    except TagwiseError:
        return None
    return str(info["encoder"]) if info.get("encoder_choice") and info.get("encoder") else None


def _mode_of(project: Project, model: str | None) -> str | None:
    """The mode ``model`` was trained in (None without a model or when its files say nothing)."""
    if not model:
        return None
    from .models import load_project_model

    try:
        return load_project_model(project, model).info.get("mode")
    except TagwiseError:
        return None
