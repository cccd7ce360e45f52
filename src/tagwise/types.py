"""Shared types: the few data shapes every stage passes around.

Kept deliberately small. Everything else lives in the stage that owns it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

SPLITS = ("train", "dev", "test", "unlabeled")


class TagwiseError(ValueError):
    """A user-facing error: the message names the file, row/field and the fix.

    A ``ValueError``, so callers that already catch bad values catch it too.
    """


@dataclass(frozen=True)
class LabelSpace:
    """An ordered set of label names; column k of every label matrix is ``names[k]``."""

    names: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.names)) != len(self.names):
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            raise TagwiseError(f"duplicate label names in label space: {dupes}")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self._lookup[name]
        except KeyError:
            raise TagwiseError(f"unknown label {name!r}; known labels: {list(self.names)}") from None

    @property
    def _lookup(self) -> dict[str, int]:
        lookup = self.__dict__.get("_lookup_cache")
        if lookup is None:
            lookup = {n: i for i, n in enumerate(self.names)}
            object.__setattr__(self, "_lookup_cache", lookup)
        return lookup

    def to_matrix(self, label_lists: Sequence[Sequence[str] | None]) -> np.ndarray:
        """Label-name lists -> (n, K) uint8 indicator matrix (None rows stay all-zero)."""
        Y = np.zeros((len(label_lists), len(self.names)), dtype=np.uint8)
        lookup = self._lookup
        for i, labels in enumerate(label_lists):
            if labels:
                Y[i, [lookup[n] for n in labels]] = 1
        return Y

    def to_names(self, Y: np.ndarray) -> list[list[str]]:
        """(n, K) indicator matrix -> label-name lists."""
        return [[self.names[k] for k in np.flatnonzero(row)] for row in np.asarray(Y)]


@dataclass
class Examples:
    """A column-oriented batch of examples with their provenance.

    ``labels[i]`` is a list of taxonomy label names, or ``None`` when example i is unlabeled.
    ``annotated[i]`` is the set of taxonomy labels example i's source annotates (a label outside
    it is *unknown* for that example, not negative).
    """

    ids: np.ndarray            # (n,) int64 store ids
    texts: list[str]
    labels: list[list[str] | None]
    sources: np.ndarray        # (n,) object: source name
    splits: np.ndarray         # (n,) object: train | dev | test | unlabeled
    languages: np.ndarray      # (n,) object
    example_ids: np.ndarray    # (n,) object: the source's own id, else its row number
    annotators: np.ndarray = field(default=None)  # (n,) object or None
    annotated: dict[str, frozenset[str]] = field(default_factory=dict)  # source -> labels
    # (n,) bool or None: True where a person annotated the row against the whole taxonomy, so every
    # label is known for it whatever its source annotates
    fully_known: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def label_matrix(self, space: LabelSpace) -> np.ndarray:
        """(n, K) uint8: 1 where the label is given."""
        return space.to_matrix(self.labels)

    def known_mask(self, space: LabelSpace) -> np.ndarray:
        """(n, K) bool: True where the example's source annotates the label (so 0 means negative)."""
        mask = np.zeros((len(self), len(space)), dtype=bool)
        for source, labels in self.annotated.items():
            cols = [space.index(n) for n in labels if n in space._lookup]
            rows = self.sources == source
            mask[np.ix_(rows, cols)] = True
        if self.fully_known is not None:
            mask[self.fully_known] = True
        unlabeled = np.array([lab is None for lab in self.labels], dtype=bool)
        mask[unlabeled] = False
        return mask

    def subset(self, index) -> "Examples":
        """Rows selected by a boolean mask or an integer index array."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, dtype=np.int64)
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return Examples(
            ids=self.ids[idx], texts=[self.texts[i] for i in idx], labels=[self.labels[i] for i in idx],
            sources=self.sources[idx], splits=self.splits[idx], languages=self.languages[idx],
            example_ids=self.example_ids[idx], annotators=pick(self.annotators), annotated=self.annotated,
            fully_known=pick(self.fully_known),
        )
