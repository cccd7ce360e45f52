"""A project's saved models: load one (safely, from inside ``models/``) with what it needs to predict."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..learn.persist import load_model
from ..project import Project
from ..types import TagwiseError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class LoadedModel:
    """A fitted head with its label names, encoder, name and folder."""

    head: object
    info: dict
    name: str
    path: Path

    @property
    def labels(self) -> list[str]:
        return list(self.info["labels"])

    @property
    def encoder(self) -> str:
        return str(self.info["encoder"])

    @property
    def sources(self) -> list[str]:
        """Training sources the head has a mode of its own for (empty for source-agnostic heads)."""
        return list(getattr(self.head, "sources_", []))

    def source_modes(self, sources) -> list[str]:
        """Per row: the row's own source if the head has a mode for it, else "agnostic"."""
        known = set(self.sources)
        return [str(s) if s is not None and str(s) in known else "agnostic" for s in sources]


def model_name(project: Project, name: str | None = None) -> str:
    """``name``, or the one ``models/CURRENT`` names; refuses anything that is not a folder inside ``models/``."""
    if name is None:
        current = project.models_dir / "CURRENT"
        if not current.exists():
            raise TagwiseError(f"{project.path}: no trained model yet. Fix: run `tagwise train {project.path}`.")
        name = current.read_text(encoding="utf-8", errors="replace").strip()
        where = f"{current} names {name!r}"
    else:
        where = f"model {name!r}"
    if not _NAME.fullmatch(name or "") or name == "CURRENT":
        raise TagwiseError(f"{project.path}: {where}, which is not a model folder name inside models/. Fix: pass "
                           f"--model with one of {list_models(project)}.")
    return name


def list_models(project: Project) -> list[str]:
    return sorted(p.name for p in project.models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_project_model(project: Project, name: str | None = None) -> LoadedModel:
    """The named (default: current) model of ``project``."""
    name = model_name(project, name)
    path = project.models_dir / name
    if not path.is_dir():
        raise TagwiseError(f"{project.path}: no model named {name!r} (have: {list_models(project)}).")
    head, info = load_model(path)
    for key in ("labels", "encoder"):
        if key not in info:
            raise TagwiseError(f"{path}/model.json: info has no {key!r}. Fix: retrain with `tagwise train`.")
    return LoadedModel(head=head, info=info, name=name, path=path)
