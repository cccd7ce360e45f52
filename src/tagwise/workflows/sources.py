"""Project-level source work: what each source holds."""
from __future__ import annotations

from ..project import Project


def source_summary(project: Project, health: bool = False) -> dict:
    """``{"sources": [{"name", "n_examples", "annotated_labels", "splits": {split: {"n", "labeled"}}}],
    "labels": [taxonomy label names]}``; with ``health``, also ``"health"``: the training data health of
    the train split (``workflows.health.data_health``; None without labeled training rows)."""
    counts = project.store.count()
    out = [{"name": s["name"], "n_examples": s["n_examples"], "annotated_labels": len(s["annotated"]),
            "splits": {k.split("/", 1)[1]: v for k, v in counts.items() if k.split("/", 1)[0] == s["name"]}}
           for s in project.store.sources()]
    result = {"sources": out, "labels": list(project.labels.names)}
    if health:
        from .health import data_health

        has_train = any(v["labeled"] for k, v in counts.items() if k.split("/", 1)[1] == "train")
        result["health"] = data_health(project) if has_train and len(project.labels) else None
    return result


def example_count(project: Project) -> int:
    """How many examples the project holds (all sources and splits)."""
    return int(sum(v["n"] for v in project.store.count().values()))


def filter_options(project: Project) -> dict:
    """The values each list filter can take: ``{"source", "split", "language", "label"}`` -> sorted lists."""
    ex = project.store.examples()
    return {"source": sorted(set(map(str, ex.sources))), "split": sorted(set(map(str, ex.splits))),
            "language": sorted(set(map(str, ex.languages))), "label": list(project.labels.names)}


def source_names(project: Project) -> list[str]:
    """The project's source names, in the order they were added."""
    return project.store.source_names()
