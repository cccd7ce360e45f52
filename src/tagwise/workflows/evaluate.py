"""Evaluate a project's model on one split, each row in its own source's mode."""
from __future__ import annotations

import numpy as np

from .._io import atomic_save_npy, atomic_write_json
from ..evaluate.metrics import multilabel_report
from ..learn.multisource import partial_targets
from ..project import Project
from ..types import LabelSpace, TagwiseError
from .models import load_project_model


def evaluate(project: Project, split: str = "test", model: str | None = None, source: str | None = None,
             save: bool = True, agnostic: bool = False, risk: str | None = None,
             confidence: float | None = None) -> dict:
    """Metrics of the current (or named) model on the labeled examples of ``split``.

    Rows of a source the model has a mode for (a multi-source model's training sources) are scored in
    that mode with its thresholds; other rows, or all with ``agnostic=True``, in the source-agnostic
    mode. Cells a source does not annotate are left out of every metric. Returns the dict of
    ``evaluate.metrics.multilabel_report`` plus ``split``, ``model``, ``sources`` and ``modes``
    ({source: mode used}; empty for a source-agnostic model); with ``risk`` (e.g. ``"fnr=0.1"``) also
    ``risk_control``: the promised sets' realised risk with a 95% CI, mean set size and abstention
    rate (``workflows.conformal.risk_report``); with ``save`` it is also written to ``runs/<id>/metrics.json`` with the
    predictions (for the report).
    """
    loaded = load_project_model(project, model)
    ex = project.examples(split=split, source=source, labeled=True)
    if len(ex) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r}"
                           f"{f' of source {source!r}' if source else ''}. Fix: pass --split with one of "
                           f"{project.splits()}.")
    space = LabelSpace(tuple(loaded.labels))
    Y, mask = partial_targets(ex, project.taxonomy, space)
    if not mask.any():
        raise TagwiseError(f"{project.path}: split {split!r} has no known label for the model's labels "
                           f"{list(space.names)[:8]}. Fix: evaluate on a split whose sources annotate them.")
    modes = ["agnostic"] * len(ex) if agnostic else loaded.source_modes(ex.sources)
    X = project.features(ex, loaded.encoder, progress=True)
    texts = list(ex.texts)
    head_modes = modes if loaded.sources else None
    P = loaded.head.predict_proba(X, texts=texts, source=head_modes)
    Z = loaded.head.decide(P, source=head_modes)
    report = multilabel_report(Y, Z, P, space.names, mask)
    report.update(split=split, model=loaded.name, sources=sorted(set(map(str, ex.sources))),
                  modes={s: m for s, m in zip(map(str, ex.sources), modes)} if loaded.sources else {})
    if risk is not None:
        from .conformal import risk_report
        report["risk_control"] = risk_report(project, loaded, P, Y, mask, ex.sources, risk, confidence, split)
    if save:
        run = project.new_run("evaluate", {"split": split, "model": report["model"], "source": source})
        atomic_write_json(run / "metrics.json", report)
        atomic_save_npy(run / "y_true.npy", Y)
        atomic_save_npy(run / "proba.npy", P.astype(np.float32))
        atomic_save_npy(run / "pred.npy", Z.astype(np.uint8))
        atomic_save_npy(run / "mask.npy", mask)
        report["run"] = run.name
    return report
