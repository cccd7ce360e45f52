"""Suggest how each source's own labels map onto the project's taxonomy.

Three signals, each an (L, T) matrix for L source labels and T taxonomy labels:

- ``name``: cosine similarity of label-name embeddings (the taxonomy side also embeds
  "name: description" and averages the two, so descriptions help).
- ``cooccurrence``: on texts that appear in this source *and* another one (after normalising
  case, @users and URLs), P(taxonomy label t on the other side | source label l here).
- ``centroid``: cosine similarity between the mean embedding of this source's texts labeled l and
  the mean embedding of *other* sources' texts labeled t (centred by the mean of all texts).

Each available signal is min-max scaled across targets per source label and averaged; the
suggestion lists the top targets with the combined score and every raw signal, for the user to
accept into the spec's ``labels: {map: ...}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..text import normalize_text
from ..types import TagwiseError

SIGNALS = ("name", "cooccurrence", "centroid")


@dataclass
class SourceLabels:
    """One source's own label names (before the spec's map) with its labeled texts."""

    source: str
    names: list[str]
    texts: list[str]
    labels: list[list[str]]
    current_map: dict[str, list[str]] = field(default_factory=dict)  # source name -> taxonomy names


def _readable(name: str) -> str:
    return name.replace("_", " ").replace("/", " ").replace("-", " ").strip()


def name_similarity(source_names: list[str], target_names: list[str], descriptions: dict[str, str],
                    embed) -> np.ndarray:
    """(L, T) cosine similarity of label-name embeddings; ``embed(texts) -> (n, d)`` L2-normalised."""
    S = embed([_readable(n) for n in source_names])
    T = embed([_readable(n) for n in target_names])
    sim = S @ T.T
    with_desc = [i for i, n in enumerate(target_names) if descriptions.get(n)]
    if with_desc:
        D = embed([f"{_readable(target_names[i])}: {descriptions[target_names[i]]}" for i in with_desc])
        sim[:, with_desc] = 0.5 * (sim[:, with_desc] + S @ D.T)
    return sim


def cooccurrence_scores(source_names: list[str], source_texts: list[str], source_labels: list[list[str]],
                        other_keys: list[str], other_labels: list[list[str]], other_known: list[set[str]],
                        target_names: list[str], min_shared: int = 5) -> np.ndarray:
    """(L, T) P(target t on the other side | source label l) over shared texts; nan without evidence.

    ``other_keys``/``other_labels``/``other_known``: normalised texts of the other sources, their
    taxonomy labels and the taxonomy labels their source annotates (only those count: a label the
    other side never annotates is no evidence against it). A (l, t) cell needs ``min_shared``
    shared texts positive for l on which t is annotated.
    """
    other: dict[str, tuple[set[str], set[str]]] = {}
    for key, labels, known in zip(other_keys, other_labels, other_known):
        pos, kn = other.setdefault(key, (set(), set()))
        pos.update(labels or [])
        kn.update(known)
    t_index = {t: j for j, t in enumerate(target_names)}
    s_index = {s: i for i, s in enumerate(source_names)}
    counts = np.zeros((len(source_names), len(target_names)))
    totals = np.zeros((len(source_names), len(target_names)))
    for text, labels in zip(source_texts, source_labels):
        hit = other.get(normalize_text(text, social=True))
        if hit is None:
            continue
        pos = [t_index[t] for t in hit[0] if t in t_index]
        known = [t_index[t] for t in hit[1] if t in t_index]
        for name in labels:
            i = s_index.get(name)
            if i is not None:
                totals[i, known] += 1
                counts[i, pos] += 1
    out = np.full(counts.shape, np.nan)
    ok = totals >= min_shared
    out[ok] = counts[ok] / totals[ok]
    return out


def centroid_similarity(source_names: list[str], X_source: np.ndarray, source_labels: list[list[str]],
                        target_names: list[str], X_other: np.ndarray, other_labels: list[list[str]],
                        center: np.ndarray, min_examples: int = 5) -> np.ndarray:
    """(L, T) cosine of centred class-mean embeddings (this source's l vs other sources' t); nan if too few."""
    def means(names, X, labels):
        index = {n: i for i, n in enumerate(names)}
        sums = np.zeros((len(names), X.shape[1]))
        counts = np.zeros(len(names))
        for row, labs in enumerate(labels):
            for n in labs or []:
                if n in index:
                    sums[index[n]] += X[row]
                    counts[index[n]] += 1
        M = sums / np.maximum(counts, 1)[:, None] - center[None, :]
        M /= np.maximum(np.linalg.norm(M, axis=1, keepdims=True), 1e-9)
        return M, counts >= min_examples

    Ms, ok_s = means(source_names, X_source, source_labels)
    Mt, ok_t = means(target_names, X_other, other_labels)
    out = Ms @ Mt.T
    out[~ok_s] = np.nan
    out[:, ~ok_t] = np.nan
    return out


def combine(signals: dict[str, np.ndarray], use=SIGNALS) -> np.ndarray:
    """Average of the per-row min-max scaled signals that are available (nan = missing)."""
    total, weight = None, None
    for name in use:
        S = signals.get(name)
        if S is None:
            continue
        lo = np.nanmin(np.where(np.isnan(S), np.inf, S), axis=1, keepdims=True)
        hi = np.nanmax(np.where(np.isnan(S), -np.inf, S), axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = (S - lo) / np.where(hi > lo, hi - lo, 1.0)
        have = ~np.isnan(scaled)
        total = np.where(have, scaled, 0.0) if total is None else total + np.where(have, scaled, 0.0)
        weight = have.astype(float) if weight is None else weight + have
    if total is None:
        raise TagwiseError("no signal to combine")
    with np.errstate(invalid="ignore"):
        return np.where(weight > 0, total / np.maximum(weight, 1), np.nan)


def _find_duplicate_map_keys(spec_path: Path) -> list[tuple[str, int]]:
    """(key, line) of keys repeated inside a spec's ``labels: {map: ...}`` (YAML keeps only the last)."""
    import yaml

    try:
        root = yaml.compose(spec_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []  # load_spec reports unreadable files itself
    if not isinstance(root, yaml.MappingNode):
        return []
    dupes = []
    for key, value in root.value:
        if key.value != "labels" or not isinstance(value, yaml.MappingNode):
            continue
        for k2, v2 in value.value:
            if k2.value == "map" and isinstance(v2, yaml.MappingNode):
                seen: set[str] = set()
                for k3, _ in v2.value:
                    if k3.value in seen:
                        dupes.append((k3.value, k3.start_mark.line + 1))
                    seen.add(k3.value)
    return dupes


def check_spec_mapping(spec, taxonomy) -> None:
    """Raise a clear TagwiseError for a conflicting ``labels/map`` before anything is ingested.

    Conflicts: a source label mapped twice (duplicate YAML key: YAML would silently keep the last),
    a key that is not one of the source's labels (when the spec names them), a target outside a
    declared taxonomy, or one label mapped to both a taxonomy label and its ancestor.
    """
    where = str(spec.spec_path)
    if spec.spec_path and Path(spec.spec_path).is_file():
        dupes = _find_duplicate_map_keys(Path(spec.spec_path))
        if dupes:
            key, line = dupes[0]
            raise TagwiseError(f"{where}: line {line}: labels/map gives source label {key!r} twice; the "
                               f"mappings conflict. Fix: keep one entry (map to a list for one -> many).")
    names = spec.labels.names
    if names is None and spec.labels.onehot_columns:
        names = [str(c) for c in spec.labels.onehot_columns]
    taxonomy.check_label_map(spec.labels.map, where, source_labels=names)
