"""The project's target taxonomy: label names, optional parents, descriptions and sub-labels."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ._io import read_yaml
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
    # label -> finer names that only describe it for zero-shot scoring (not labels of their own)
    sub_labels: dict[str, list[str]] = field(default_factory=dict)
    declared: bool = False

    @property
    def space(self) -> LabelSpace:
        return LabelSpace(tuple(self.labels))

    def to_dict(self) -> dict:
        return {"labels": self.labels, "parents": self.parents, "descriptions": self.descriptions,
                "examples": self.examples, "sub_labels": self.sub_labels, "declared": self.declared}

    @classmethod
    def from_dict(cls, d: dict) -> "Taxonomy":
        return cls(labels=list(d.get("labels", [])), parents=dict(d.get("parents", {})),
                   descriptions=dict(d.get("descriptions", {})), examples=dict(d.get("examples", {})),
                   sub_labels=dict(d.get("sub_labels", {})), declared=bool(d.get("declared", False)))

    def extend(self, names: list[str], where: str) -> list[str]:
        """Add unseen names (error if the taxonomy is declared). Returns the names added."""
        new = [n for n in dict.fromkeys(names) if n not in self.labels]
        if new and self.declared:
            raise TagwiseError(f"{where}: labels {new} are not in the project's declared taxonomy. "
                               f"Fix: map them in the spec's labels/map (to a taxonomy label or null), "
                               f"or add them to the taxonomy.")
        self.labels.extend(new)
        return new

    # -- hierarchy ---------------------------------------------------------
    def children(self, label: str) -> list[str]:
        """Direct children of ``label`` in taxonomy order."""
        return [c for c in self.labels if self.parents.get(c) == label]

    def ancestors(self, label: str) -> list[str]:
        """Parent, grandparent, ... of ``label`` (nearest first)."""
        out, node = [], label
        while node in self.parents and self.parents[node] not in out:
            node = self.parents[node]
            out.append(node)
        return out

    def descendants(self, label: str) -> list[str]:
        """Every label below ``label`` (taxonomy order)."""
        return [c for c in self.labels if label in self.ancestors(c)]

    def zero_shot_sub_labels(self) -> dict[str, list[str]]:
        """Finer names per label for zero-shot scoring: its declared ``sub_labels``, then the names of
        its descendants in the hierarchy (a parent is described by its children). Labels without
        any are left out."""
        out = {}
        for name in self.labels:
            subs = [s for s in dict.fromkeys(self.sub_labels.get(name, []) + self.descendants(name)) if s != name]
            if subs:
                out[name] = subs
        return out

    def roots(self) -> list[str]:
        return [n for n in self.labels if n not in self.parents]

    def depth(self, label: str) -> int:
        return len(self.ancestors(label))

    def covered(self, annotated) -> set[str]:
        """``annotated`` plus every parent all of whose children are covered (recursively).

        A source that annotates every child of a parent implicitly annotates the parent: an
        example with no positive child is a parent negative too.
        """
        out = set(annotated)
        changed = True
        while changed:
            changed = False
            for name in self.labels:
                kids = self.children(name)
                if name not in out and kids and all(k in out for k in kids):
                    out.add(name)
                    changed = True
        return out

    def ancestor_matrix(self, space: LabelSpace | None = None) -> np.ndarray:
        """(K, K) bool ``A[c, p]`` = label p is a (strict) ancestor of label c, in ``space`` order."""
        space = space or self.space
        A = np.zeros((len(space), len(space)), dtype=bool)
        for c, name in enumerate(space.names):
            for anc in self.ancestors(name):
                if anc in space._lookup:
                    A[c, space.index(anc)] = True
        return A

    def check_label_map(self, mapping: dict, where: str, source_labels: list[str] | None = None) -> None:
        """Validate a source spec's ``labels/map`` against this taxonomy; raise a clear TagwiseError.

        Catches: a target that is not a taxonomy label (declared taxonomy), a key that is not one of
        the source's labels (when they are known), and a source label mapped to both a label and one
        of its ancestors (the ancestor is implied by the child, so the map is contradictory or redundant).
        """
        import difflib

        known = set(self.labels)
        for key, target in mapping.items():
            if source_labels is not None and key not in source_labels:
                close = difflib.get_close_matches(str(key), source_labels, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else f" The source's labels: {source_labels}."
                raise TagwiseError(f"{where}: labels/map key {key!r} is not a label of this source.{hint}")
            if target is None:
                continue
            targets = [str(t) for t in target] if isinstance(target, list) else [str(target)]
            if self.declared:
                for t in targets:
                    if t not in known:
                        close = difflib.get_close_matches(t, self.labels, n=1)
                        hint = f" Did you mean {close[0]!r}?" if close else ""
                        raise TagwiseError(f"{where}: labels/map sends {key!r} to {t!r}, which is not in the "
                                           f"declared taxonomy.{hint} Fix: map it to a taxonomy label or null.")
            for t in targets:
                clash = [a for a in self.ancestors(t) if a in targets]
                if clash:
                    raise TagwiseError(f"{where}: labels/map sends {key!r} to both {t!r} and its ancestor "
                                       f"{clash[0]!r}; a child implies its parents. Fix: map it to {t!r} only "
                                       f"(or only to {clash[0]!r} if the source is coarser).")

    def to_yaml(self) -> str:
        """The taxonomy as YAML that ``load_taxonomy`` reads back."""
        items = []
        for name in self.labels:
            item: dict = {"name": name}
            if name in self.parents:
                item["parent"] = self.parents[name]
            if name in self.descriptions:
                item["description"] = self.descriptions[name]
            if name in self.examples:
                item["examples"] = list(self.examples[name])
            if name in self.sub_labels:
                item["sub_labels"] = list(self.sub_labels[name])
            items.append(item)
        return yaml.safe_dump({"labels": items}, sort_keys=False, allow_unicode=True)

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
            sub_labels: [annoyance, rage]      # finer names for zero-shot scoring (CHiLS)
    """
    path = Path(path)
    raw = read_yaml(path, "taxonomy")
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
        subs = item.get("sub_labels")
        if subs is not None:
            if not isinstance(subs, list) or not all(isinstance(x, str) and x.strip() for x in subs):
                raise TagwiseError(f"{path}: labels[{i}] ({name!r}): sub_labels must be a list of non-empty "
                                   f"names, e.g. sub_labels: [annoyance, rage].")
            tax.sub_labels[name] = [x.strip() for x in subs]
    tax.validate(str(path))
    return tax


def propagate_partial_labels(Y: np.ndarray, known: np.ndarray, taxonomy: Taxonomy,
                             space: LabelSpace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Make partial labels consistent with the hierarchy.

    Y: (n, K) {0,1} labels or soft targets in [0, 1]; known: (n, K) bool, False where the example's
    source does not annotate the label. Returns ``(Y2, known2)`` (float32, never rounded; bool) where

    - a positive label makes every ancestor positive and known (a child implies its parent);
    - a known negative label makes every descendant a known negative (no parent, no child);
    - everything else the source did not annotate stays unknown: a parent-level positive does not
      say which child holds, so children of a positive coarse label stay masked.
    """
    space = space or taxonomy.space
    return propagate_with_ancestors(Y, known, taxonomy.ancestor_matrix(space))


def propagate_with_ancestors(Y: np.ndarray, known: np.ndarray,
                             ancestors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``propagate_partial_labels`` for a (K, K) bool ancestor matrix (``[c, p]``: p is above c).

    Y: (n, K) {0,1} labels or soft targets in [0, 1] (a consensus probability); known: (n, K) bool.
    Returns ``(Y2, known2)``: Y2 float32, never rounded (a uint8 cast here once turned every soft
    target below 1 into 0 under a taxonomy with parents). With soft targets the same rules hold as
    bounds, P(parent) >= P(child):

    - a known parent is raised to its largest descendant; an unknown parent becomes known
      when a descendant is at least 0.5 likely (the hard rule "a positive child makes its
      parent positive"), with that descendant's value;
    - a known ancestor below 0.5 makes every unknown descendant known, capped at the ancestor's
      value (the hard rule "a negative parent has no positive child": 0 stays 0).
    """
    A = np.asarray(ancestors, dtype=bool)
    Y2 = np.array(Y, dtype=np.float32, copy=True)
    known2 = np.asarray(known, dtype=bool).copy()
    if Y2.size and (Y2.min() < 0 or Y2.max() > 1):
        raise TagwiseError("targets must lie in [0, 1] (0/1 labels or soft targets).")
    if not A.any():
        return Y2, known2
    for p in np.flatnonzero(A.any(axis=0)):
        below = Y2[:, A[:, p]].max(axis=1)  # the largest descendant (unknown cells hold 0)
        raise_known = known2[:, p] & (below > Y2[:, p])
        Y2[raise_known, p] = below[raise_known]
        implied = ~known2[:, p] & (below >= 0.5)
        Y2[implied, p] = below[implied]
        known2[:, p] |= implied
    cap = np.where(known2 & (Y2 < 0.5), Y2, np.inf)  # known ancestors that say "probably not"
    for c in np.flatnonzero(A.any(axis=1)):
        upper = cap[:, A[c]].min(axis=1)
        implied = ~known2[:, c] & np.isfinite(upper)
        Y2[implied, c] = upper[implied]
        known2[:, c] |= implied
    return Y2, known2


def hierarchy_consistent(P: np.ndarray, taxonomy: Taxonomy, space: LabelSpace | None = None) -> np.ndarray:
    """(n, K) probabilities -> (n, K) with P(parent) >= P(child) for every link.

    A parent's probability is raised to the largest probability among its descendants (a child
    implies its parent), which keeps the parent's own evidence when it is the larger one.
    """
    space = space or taxonomy.space
    A = taxonomy.ancestor_matrix(space)
    P = np.array(P, dtype=np.float32, copy=True)
    for p in np.flatnonzero(A.any(axis=0)):
        desc = np.flatnonzero(A[:, p])
        P[:, p] = np.maximum(P[:, p], P[:, desc].max(axis=1))
    return P
