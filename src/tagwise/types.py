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
    # (n,) object or None: per row, the label names its judgement cannot speak for (frozenset, maybe
    # empty): labels added, or split off a label it had, after it was made (``annotations.
    # labels_unknown_after_changes``); they are unknown for the row whatever its source annotates
    unknown_labels: np.ndarray | None = None

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
        self.clear_unknown(mask, space)
        unlabeled = np.array([lab is None for lab in self.labels], dtype=bool)
        mask[unlabeled] = False
        return mask

    def clear_unknown(self, mask: np.ndarray, space: LabelSpace) -> np.ndarray:
        """Set ``mask`` (n, K) bool False on each row's ``unknown_labels`` cells, in place; returns it."""
        if self.unknown_labels is None:
            return mask
        for i, names in enumerate(self.unknown_labels):
            if names:
                cols = [space.index(n) for n in names if n in space._lookup]
                mask[i, cols] = False
        return mask

    def subset(self, index) -> "Examples":
        """Rows selected by a boolean mask or an integer index array."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, dtype=np.int64)
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return Examples(
            ids=self.ids[idx], texts=[self.texts[i] for i in idx], labels=[self.labels[i] for i in idx],
            sources=self.sources[idx], splits=self.splits[idx], languages=self.languages[idx],
            example_ids=self.example_ids[idx], annotators=pick(self.annotators), annotated=self.annotated,
            fully_known=pick(self.fully_known), unknown_labels=pick(self.unknown_labels),
        )


@dataclass(frozen=True)
class Annotations:
    """Per-annotator judgements as flat arrays (see the module docstring for the shapes)."""

    example: np.ndarray
    annotator: np.ndarray
    labels: np.ndarray
    known: np.ndarray | None = None
    n_examples: int | None = None
    n_annotators: int | None = None

    @classmethod
    def from_arrays(cls, example, annotator, labels, known=None, n_examples: int | None = None,
                    n_annotators: int | None = None, check_unique: bool = True) -> "Annotations":
        """Validate and build. Raises ``TagwiseError`` on shape, range or duplicate problems."""
        e = np.asarray(example)
        a = np.asarray(annotator)
        Y = np.asarray(labels)
        if Y.ndim == 1:
            Y = Y[:, None]
        if e.ndim != 1 or a.shape != e.shape or Y.ndim != 2 or len(Y) != len(e):
            raise TagwiseError(f"annotations: example and annotator must be (m,) and labels (m, K) with the "
                               f"same m; got {e.shape}, {a.shape}, {Y.shape}")
        if e.size and (e.dtype.kind not in "iu" or a.dtype.kind not in "iu"):
            raise TagwiseError("annotations: example and annotator must be integer indices; map ids to "
                               "0..n-1 first (e.g. np.unique(ids, return_inverse=True))")
        e = e.astype(np.int64)
        a = a.astype(np.int64)
        if Y.size and not np.isin(Y, (0, 1)).all():
            bad = int(np.argwhere(~np.isin(Y, (0, 1)))[0, 0])
            raise TagwiseError(f"annotations: labels must be 0/1; row {bad} holds {Y[bad].tolist()}")
        Y = Y.astype(np.uint8)
        M = None
        if known is not None:
            M = np.asarray(known, dtype=bool)
            if M.ndim == 1:
                M = M[:, None]
            if M.shape != Y.shape:
                raise TagwiseError(f"annotations: known must have the shape of labels {Y.shape}; got {M.shape}")
        n = int(e.max()) + 1 if n_examples is None and e.size else int(n_examples or 0)
        A = int(a.max()) + 1 if n_annotators is None and a.size else int(n_annotators or 0)
        if e.size and (e.min() < 0 or e.max() >= n):
            raise TagwiseError(f"annotations: example index out of range [0, {n}): {int(e.min())}..{int(e.max())}")
        if a.size and (a.min() < 0 or a.max() >= A):
            raise TagwiseError(f"annotations: annotator index out of range [0, {A}): {int(a.min())}..{int(a.max())}")
        if check_unique and e.size:
            key = e * max(A, 1) + a
            order = np.argsort(key, kind="stable")
            dup = np.nonzero(np.diff(key[order]) == 0)[0]
            Mk = np.ones(Y.shape, bool) if M is None else M
            differ = [d for d in dup if not (np.array_equal(Y[order[d]], Y[order[d + 1]])
                                             and np.array_equal(Mk[order[d]], Mk[order[d + 1]]))]
            if differ:
                r1, r2 = int(order[differ[0]]), int(order[differ[0] + 1])
                raise TagwiseError(f"annotations: annotator {int(a[r1])} judged example {int(e[r1])} twice with "
                                   f"different labels (rows {r1} and {r2}); keep one judgement or merge them "
                                   f"with Annotations.merge_repeats")
            if dup.size:  # exact repeats say nothing new: keep the first
                keep = np.ones(len(e), bool)
                keep[order[dup + 1]] = False
                e, a, Y = e[keep], a[keep], Y[keep]
                M = None if M is None else M[keep]
        return cls(e, a, Y, M, n, A)

    @classmethod
    def merge_repeats(cls, example, annotator, labels, known=None, n_examples=None, n_annotators=None,
                      ) -> "Annotations":
        """Build from judgements where an annotator may have judged an example more than once:
        repeats become one judgement per label by their majority (a tie counts as 1: the
        annotator did see the label apply at least once)."""
        e = np.asarray(example, dtype=np.int64)
        a = np.asarray(annotator, dtype=np.int64)
        Y = np.asarray(labels, dtype=np.float64)
        Y = Y[:, None] if Y.ndim == 1 else Y
        M = np.ones(Y.shape, bool) if known is None else np.asarray(known, bool).reshape(Y.shape)
        A = int(a.max()) + 1 if n_annotators is None and a.size else int(n_annotators or 0)
        pair, inv = np.unique(e * max(A, 1) + a, return_inverse=True)
        pos = np.zeros((len(pair), Y.shape[1]))
        cnt = np.zeros((len(pair), Y.shape[1]))
        np.add.at(pos, inv, Y * M)
        np.add.at(cnt, inv, M)
        merged = (pos * 2 >= cnt) & (cnt > 0)
        return cls.from_arrays(pair // max(A, 1), pair % max(A, 1), merged.astype(np.uint8),
                               None if known is None else cnt > 0, n_examples, A)

    @property
    def n_labels(self) -> int:
        return self.labels.shape[1]

    def votes(self) -> np.ndarray:
        """(m, K) bool, True where the cell is a vote (its label is known)."""
        return np.ones(self.labels.shape, bool) if self.known is None else self.known

    def drop_annotator(self, annotator: int) -> "Annotations":
        """The same judgements without one annotator's (for leave-one-annotator-out checks)."""
        keep = self.annotator != annotator
        return Annotations(self.example[keep], self.annotator[keep], self.labels[keep],
                           None if self.known is None else self.known[keep], self.n_examples, self.n_annotators)

    def subset(self, rows: np.ndarray) -> "Annotations":
        """Keep the judgement rows ``rows`` (bool mask or indices); sizes stay the same."""
        return Annotations(self.example[rows], self.annotator[rows], self.labels[rows],
                           None if self.known is None else self.known[rows], self.n_examples, self.n_annotators)
