"""The project's target taxonomy: label names, optional parents and descriptions."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .types import LabelSpace, TagwiseError


@dataclass
class Taxonomy:
    """Ordered labels plus optional metadata.

    ``declared`` means the user fixed the label set (a source with a label outside it is an
    error); otherwise the taxonomy grows with each added source.
    """

    labels: list[str] = field(default_factory=list)
    parents: dict[str, str] = field(default_factory=dict)       # child -> parent
    descriptions: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)  # label -> example texts
    declared: bool = False

    @property
    def space(self) -> LabelSpace:
        return LabelSpace(tuple(self.labels))

    def to_dict(self) -> dict:
        return {"labels": self.labels, "parents": self.parents, "descriptions": self.descriptions,
                "examples": self.examples, "declared": self.declared}

    @classmethod
    def from_dict(cls, d: dict) -> "Taxonomy":
        return cls(labels=list(d.get("labels", [])), parents=dict(d.get("parents", {})),
                   descriptions=dict(d.get("descriptions", {})), examples=dict(d.get("examples", {})),
                   declared=bool(d.get("declared", False)))

    def extend(self, names: list[str], where: str) -> list[str]:
        """Add unseen names (error if the taxonomy is declared). Returns the names added."""
        new = [n for n in dict.fromkeys(names) if n not in self.labels]
        if new and self.declared:
            raise TagwiseError(f"{where}: labels {new} are not in the project's declared taxonomy. "
                               f"Fix: map them in the spec's labels/map (to a taxonomy label or null), "
                               f"or add them to the taxonomy.")
        self.labels.extend(new)
        return new

    def validate(self, where: str = "taxonomy") -> None:
        known = set(self.labels)
        for child, parent in self.parents.items():
            for name in (child, parent):
                if name not in known:
                    raise TagwiseError(f"{where}: parent link {child!r} -> {parent!r} names unknown label "
                                       f"{name!r}. Fix: declare it under 'labels'.")
        for start in self.parents:  # walk up from each label; a revisit means a cycle
            seen, node = [start], start
            while node in self.parents:
                node = self.parents[node]
                if node in seen:
                    cycle = " -> ".join(seen[seen.index(node):] + [node])
                    raise TagwiseError(f"{where}: the hierarchy has a cycle: {cycle}. Fix: remove one "
                                       f"of these parent links.")
                seen.append(node)


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read a taxonomy YAML::

        labels:
          - joy                                  # a bare name
          - name: anger
            description: strong displeasure
            parent: negative
            examples: ["I am furious"]
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TagwiseError(f"{path}: cannot read taxonomy: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("labels"), list):
        raise TagwiseError(f"{path}: a taxonomy must be a mapping with a 'labels' list.")
    tax = Taxonomy(declared=True)
    for i, item in enumerate(raw["labels"]):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not item.get("name"):
            raise TagwiseError(f"{path}: labels[{i}] needs a 'name'.")
        name = str(item["name"])
        if name in tax.labels:
            raise TagwiseError(f"{path}: labels[{i}]: label {name!r} is declared twice.")
        tax.labels.append(name)
        if item.get("parent"):
            tax.parents[name] = str(item["parent"])
        if item.get("description"):
            tax.descriptions[name] = str(item["description"])
        if item.get("examples"):
            tax.examples[name] = [str(e) for e in item["examples"]]
    tax.validate(str(path))
    return tax
