"""Predict with a project's model: texts (or a file of them) in, labels and scores out.

Every prediction goes through the fitted head's own ``predict`` / ``predict_proba`` (its per-label,
per-source thresholds and its hierarchy rule), with each row in its source's mode when the head has
one for that source, and in the source-agnostic mode otherwise.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from ..project import Project
from ..sources.readers import read_columns
from ..sources.spec import _EXTENSIONS
from ..types import TagwiseError
from .models import LoadedModel, load_project_model


def predict_with(project: Project, loaded: LoadedModel, texts: list[str], sources=None,
                 progress: bool = False, embed=None) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> ``(Z (n, K) uint8 decisions, P (n, K) float32 probabilities)`` with ``loaded``'s head.

    sources: None (source-agnostic), one source name, or (n,) names (None entries = agnostic); a name the
    head has no mode for is scored agnostically. embed: optional ``texts -> (n, d)`` vectors of the
    model's encoder (a server passes the encoder itself, so arbitrary request texts do not grow the
    project's embedding cache); default: the project's cache.
    """
    n = len(texts)
    if sources is None or isinstance(sources, str):
        sources = [sources] * n
    if len(sources) != n:
        raise TagwiseError(f"{len(sources)} sources for {n} texts; give one per text (or one for all).")
    modes = loaded.source_modes(sources) if loaded.sources else None
    X = embed(texts) if embed is not None else project.embed_texts(texts, loaded.encoder, progress=progress)[0]
    P = loaded.head.predict_proba(X, texts=texts, source=modes)
    Z = loaded.head.decide(P, source=modes)
    return Z, P.astype(np.float32)


def predict_texts(project: Project, texts: list[str], model: str | None = None, source=None,
                  progress: bool = False) -> dict:
    """``{"model": name, "labels": label names, "predictions": [{"labels": [...], "scores": {label: p}}]}``."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise TagwiseError(f"text {bad[0]} is {'empty' if isinstance(texts[bad[0]], str) else 'not a string'} "
                           f"({len(bad)} such). Fix: send non-empty strings.")
    loaded = load_project_model(project, model)
    Z, P = predict_with(project, loaded, list(texts), source, progress=progress)
    names = loaded.labels
    return {"model": loaded.name, "labels": names,
            "predictions": [{"labels": [names[k] for k in np.flatnonzero(z)],
                             "scores": {nm: round(float(p), 6) for nm, p in zip(names, row)}}
                            for z, row in zip(Z, P)]}


def predict_file(project: Project, input_path: str | Path, out_path: str | Path, text_column: str | int = "text",
                 id_column: str | int | None = None, fmt: str | None = None, model: str | None = None,
                 header: bool = True, source: str | None = None, source_column: str | int | None = None) -> int:
    """Predict every row of a csv/tsv/jsonl/parquet file; write JSONL ``{"id", "labels", "scores"}``.

    ``id`` is the ``id_column`` value when given (or an ``id`` column exists), else the row number.
    ``source`` scores every row in that training source's mode; ``source_column`` names a column with
    each row's source. For csv/tsv without a header pass ``header=False`` and 0-based positions.
    Returns the number of rows written.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise TagwiseError(f"{input_path}: input file not found.")
    fmt = fmt or _EXTENSIONS.get(input_path.suffix.lower())
    if fmt is None:
        raise TagwiseError(f"{input_path}: cannot infer the format; pass --format csv|tsv|jsonl|parquet.")
    if source is not None and source_column is not None:
        raise TagwiseError("pass --source or --source-column, not both.")
    wanted = [text_column] + ([source_column] if source_column is not None else [])
    if id_column is None:
        try:  # use an 'id' column when the file has one
            cols, rows = read_columns(input_path, fmt, wanted + ["id"], header=header)
            ids = cols["id"]
        except TagwiseError:
            cols, rows = read_columns(input_path, fmt, wanted, header=header)
            ids = rows
    else:
        cols, rows = read_columns(input_path, fmt, wanted + [id_column], header=header)
        ids = cols[id_column]
    raw = cols[text_column]
    for i, t in enumerate(raw):
        if t is not None and not isinstance(t, str):
            raise TagwiseError(f"{input_path}: row {rows[i]}: column {text_column!r} holds a "
                               f"{type(t).__name__}, not text. Fix: quote it as a string.")
    texts = ["" if t is None else t for t in raw]
    empty = [rows[i] for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise TagwiseError(f"{input_path}: row {empty[0]}: empty text in column {text_column!r} "
                           f"({len(empty)} empty rows). Fix: remove or fill them.")
    sources = source if source_column is None else [None if s in (None, "") else str(s) for s in cols[source_column]]
    loaded = load_project_model(project, model)
    Z, P = predict_with(project, loaded, texts, sources, progress=len(texts) > 1000)
    names = loaded.labels
    lines = []
    for i in range(len(texts)):
        scores = {n: round(float(p), 6) for n, p in zip(names, P[i])}
        lines.append(json.dumps({"id": ids[i], "labels": [names[k] for k in np.flatnonzero(Z[i])],
                                 "scores": scores}, ensure_ascii=False))
    atomic_write_text(out_path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)
