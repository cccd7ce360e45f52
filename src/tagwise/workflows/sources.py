"""Project-level source work: what each source holds."""
from __future__ import annotations

from ..project import Project


def source_summary(project: Project) -> dict:
    """``{"sources": [{"name", "n_examples", "annotated_labels", "splits": {split: {"n", "labeled"}}}],
    "labels": [taxonomy label names]}``."""
    counts = project.store.count()
    out = [{"name": s["name"], "n_examples": s["n_examples"], "annotated_labels": len(s["annotated"]),
            "splits": {k.split("/", 1)[1]: v for k, v in counts.items() if k.split("/", 1)[0] == s["name"]}}
           for s in project.store.sources()]
    return {"sources": out, "labels": list(project.labels.names)}
