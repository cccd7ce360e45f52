"""Batch prediction: a file of texts in, one JSON object per row out."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from ..learn.train import load_project_model
from ..sources.readers import read_columns
from ..sources.spec import _EXTENSIONS
from ..types import TagwiseError


def predict_texts(project, texts: list[str], model: str | None = None, top_k: int | None = None):
    """Texts -> ``(labels: list[list[str]], proba (n, K) float32, label names)`` with the current model."""
    loaded = load_project_model(project, model)
    X, _ = project.embed_texts(texts, loaded.encoder, progress=len(texts) > 1000)
    P = loaded.predict_proba(X, texts=texts)
    Z = P >= loaded.thresholds[None, :]
    names = loaded.labels
    labels = [[names[k] for k in np.flatnonzero(row)] for row in Z]
    return labels, P, names


def predict_file(project, input_path: str | Path, out_path: str | Path, text_column: str | int = "text",
                 id_column: str | int | None = None, fmt: str | None = None, model: str | None = None,
                 header: bool = True) -> int:
    """Predict every row of a csv/tsv/jsonl/parquet file; write JSONL ``{"id", "labels", "scores"}``.

    ``id`` is the ``id_column`` value when given (or an ``id`` column exists), else the row number.
    For csv/tsv without a header row pass ``header=False`` and 0-based column positions.
    Returns the number of rows written.
    """
    input_path = Path(input_path)
    if not input_path.exists():
        raise TagwiseError(f"{input_path}: input file not found.")
    fmt = fmt or _EXTENSIONS.get(input_path.suffix.lower())
    if fmt is None:
        raise TagwiseError(f"{input_path}: cannot infer the format; pass --format csv|tsv|jsonl|parquet.")
    if id_column is None:
        try:  # use an 'id' column when the file has one
            cols, rows = read_columns(input_path, fmt, [text_column, "id"], header=header)
            ids = cols["id"]
        except TagwiseError:
            cols, rows = read_columns(input_path, fmt, [text_column], header=header)
            ids = rows
    else:
        cols, rows = read_columns(input_path, fmt, [text_column, id_column], header=header)
        ids = cols[id_column]
    texts = ["" if t is None else str(t) for t in cols[text_column]]
    empty = [rows[i] for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise TagwiseError(f"{input_path}: row {empty[0]}: empty text in column {text_column!r} "
                           f"({len(empty)} empty rows). Fix: remove or fill them.")
    labels, P, names = predict_texts(project, texts, model)
    lines = []
    for i in range(len(texts)):
        scores = {n: round(float(p), 6) for n, p in zip(names, P[i])}
        lines.append(json.dumps({"id": ids[i], "labels": labels[i], "scores": scores}, ensure_ascii=False))
    atomic_write_text(out_path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)
