"""Evaluate the project's current model on one split."""
from __future__ import annotations

import numpy as np

from .._io import atomic_save_npy, atomic_write_json
from ..learn.train import load_project_model
from ..types import LabelSpace, TagwiseError
from .metrics import multilabel_report


def evaluate_project(project, split: str = "test", model: str | None = None, source: str | None = None,
                     save: bool = True) -> dict:
    """Metrics of the current (or named) model on the labeled examples of ``split``.

    Cells a source does not annotate are left out of every metric. Returns the dict of
    ``metrics.multilabel_report`` plus ``split``, ``model`` and ``sources``; with ``save`` it is also
    written to ``runs/<id>/metrics.json`` together with the predictions (for the report).
    """
    loaded = load_project_model(project, model)
    ex = project.examples(split=split, source=source, labeled=True)
    if len(ex) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r}"
                           f"{f' of source {source!r}' if source else ''}. Fix: pass --split with one of "
                           f"{sorted({k.split('/')[1] for k in project.store.count()})}.")
    space = LabelSpace(tuple(loaded.labels))
    X = project.features(ex, loaded.encoder, progress=True)
    P = loaded.predict_proba(X, texts=list(ex.texts))
    Z = (P >= loaded.thresholds[None, :]).astype(np.uint8)
    Y = ex.label_matrix(space)
    mask = ex.known_mask(space)
    report = multilabel_report(Y, Z, P, space.names, mask)
    report.update(split=split, model=loaded.info.get("name") or project.model_dir(model).name,
                  sources=sorted(set(ex.sources)))
    if save:
        run = project.new_run("evaluate", {"split": split, "model": report["model"], "source": source})
        atomic_write_json(run / "metrics.json", report)
        atomic_save_npy(run / "y_true.npy", Y)
        atomic_save_npy(run / "proba.npy", P.astype(np.float32))
        atomic_save_npy(run / "mask.npy", mask)
        atomic_save_npy(run / "thresholds.npy", np.asarray(loaded.thresholds, dtype=np.float64))
        report["run"] = run.name
    return report
