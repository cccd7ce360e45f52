"""Turn one validated source spec (one row per example, or per judgement) into rows with taxonomy label
names and provenance; ``sources/read.py``'s ``ingest`` reads every layout."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..text import check_unicode
from ..types import TagwiseError
from .holdout import apply_holdout
from .readers import read_columns
from .spec import SourceSpec, label_name

_TRUE = {"1", "true", "yes", "y", "t", "1.0"}
_FALSE = {"0", "false", "no", "n", "f", "0.0"}
DUPLICATE_ID_POLICIES = ("warn", "error", "keep-first", "keep-last")


@dataclass
class SourceRows:
    """Everything one source contributes, column-oriented. ``labels[i] is None`` = unlabeled."""

    name: str
    texts: list[str] = field(default_factory=list)
    labels: list[list[str] | None] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    example_ids: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    annotators: list[str | None] = field(default_factory=list)
    annotated_labels: list[str] = field(default_factory=list)  # taxonomy labels this source annotates
    skipped_empty: int = 0
    duplicate_ids: int = 0      # example ids that more than one row of the source carries
    dropped_duplicates: int = 0  # rows left out by --on-duplicate-id keep-first/keep-last
    warnings: list[str] = field(default_factory=list)  # what the user should hear about (add-source prints them)

    def __len__(self) -> int:
        return len(self.texts)


class _LabelMapper:
    """Source label tokens -> taxonomy names (ids via names list, then the spec's map)."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.names = spec.labels.names
        self.name_set = set(self.names or [])
        self.map = spec.labels.map

    def token_to_source_name(self, token: Any, path: Path, row: int) -> str:
        tok = label_name(token, path, f"row {row}: label")
        if self.names is not None:
            if tok in self.name_set:
                return tok
            try:
                idx = int(float(tok)) - self.spec.labels.id_base
            except ValueError:
                idx = None
            if idx is not None and 0 <= idx < len(self.names):
                return self.names[idx]
            raise TagwiseError(
                f"{path}: row {row}: unknown label {tok!r}; the spec's label names have ids "
                f"{self.spec.labels.id_base}..{len(self.names) - 1 + self.spec.labels.id_base} "
                f"({', '.join(self.names[:5])}{', …' if len(self.names) > 5 else ''}). Fix: correct the row, "
                f"add the name to labels/names_file, or set labels/id_base.")
        return tok

    def to_taxonomy(self, source_name: str) -> list[str]:
        if source_name in self.map:
            target = self.map[source_name]
            if target is None:
                return []
            return [str(t) for t in target] if isinstance(target, list) else [str(target)]
        return [source_name]

    def declared_labels(self) -> list[str] | None:
        declared = self.names if self.names is not None else (
            [label_name(c, self.spec.spec_path, "labels/onehot_columns") for c in self.spec.labels.onehot_columns]
            if self.spec.labels.onehot_columns else None)
        if declared is None:
            return None
        out: list[str] = []
        for name in declared:
            for t in self.to_taxonomy(name):
                if t not in out:
                    out.append(t)
        return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _tokens(value: Any, spec: SourceSpec, path: Path, row: int) -> list[Any]:
    fmt = spec.labels.format
    if _is_missing(value):
        return []
    if fmt == "single":
        text = str(value).strip()
        return [text] if text else []
    if fmt == "list":
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except json.JSONDecodeError:
                raise TagwiseError(f"{path}: row {row}: labels {value!r} is not a JSON list; use "
                                   f"labels/format delimited for 'a,b' strings.") from None
        if not isinstance(value, (list, tuple)):
            raise TagwiseError(f"{path}: row {row}: labels must be a list, got {type(value).__name__}.")
        return list(value)
    # delimited
    return [t for t in str(value).split(spec.labels.delimiter) if t.strip()]


def _number(value: Any) -> float | None:
    """A cell as a finite number, or None when it is not one."""
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def _onehot_value(value: Any, path: Path, row: int, col: Any, threshold: float | None = None) -> bool | None:
    """A one-hot cell -> True / False, or None when blank (the label's value is unknown).

    With ``threshold`` a fractional or probability cell (a number in [0, 1]) is positive when it is
    ``>= threshold``; without one only 0/1 (and true/false, yes/no) are accepted."""
    if isinstance(value, bool):
        return value
    if _is_missing(value) or not str(value).strip():
        return None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    number = _number(text)
    if number is not None and 0 <= number <= 1:
        if threshold is not None:
            return number >= threshold
        raise TagwiseError(f"{path}: row {row}: one-hot column {col!r} has {value!r}, a fraction; expected 0/1. "
                           f"Fix: set labels/threshold (a cell >= threshold is positive), e.g. threshold: 0.5.")
    raise TagwiseError(f"{path}: row {row}: one-hot column {col!r} has {value!r}; expected 0/1"
                       + (" or a fraction from 0 to 1." if threshold is not None else "."))


def _onehot_labels(values: list, label_cols: list, path: Path, row: int,
                   threshold: float | None = None) -> list[str] | None:
    """The row's positive one-hot columns; None (unlabeled) when every cell is blank. Blank means
    unknown, never negative, so a test file whose label columns are empty is stored unlabeled instead of
    "all negative"; a row with some blank and some filled cells is an error (the store keeps whole rows)."""
    flags = [_onehot_value(v, path, row, c, threshold) for v, c in zip(values, label_cols)]
    if all(f is None for f in flags):
        return None
    if any(f is None for f in flags):
        blank = [c for f, c in zip(flags, label_cols) if f is None]
        raise TagwiseError(f"{path}: row {row}: one-hot column(s) {blank[:5]} are blank while others are filled; "
                           f"blank means unknown. Fix: fill every label column with 0/1, or leave the whole row "
                           f"blank for an unlabeled example.")
    return [str(c) for f, c in zip(flags, label_cols) if f]


def apply_constant(labels: list[str] | None, spec: SourceSpec, path: Path, row: int) -> list[str] | None:
    """``labels/constant``: add every label the spec gives 1; a row carrying a label it gives 0 is an error."""
    if labels is None or not spec.labels.constant:
        return labels
    out = list(labels)
    for name, flag in spec.labels.constant.items():
        if flag and name not in out:
            out.append(name)
        elif not flag and name in out:
            raise TagwiseError(f"{path}: row {row}: the row has label {name!r}, but labels/constant says no row of "
                               f"source {spec.name!r} has it ({name}: 0). Fix: correct the row or labels/constant.")
    return out


def with_constant_labels(annotated: list[str], spec: SourceSpec) -> list[str]:
    """The labels a source annotates, plus those ``labels/constant`` names (the source knows them too)."""
    return list(annotated) + [n for n in spec.labels.constant if n not in annotated]


def _looks_numeric(name: str) -> bool:
    return _number(name) is not None


def finish_rows(rows: SourceRows, spec: SourceSpec) -> SourceRows:
    """What every layout does last: the holdout cut and the warnings about label names."""
    if spec.holdout is not None:
        apply_holdout(rows, spec.holdout, default_ids="id" not in spec.columns and spec.labels.item_column is None)
    numeric = [n for n in rows.annotated_labels if _looks_numeric(n)]
    if numeric:
        shown = ", ".join(repr(n) for n in numeric[:6]) + (", …" if len(numeric) > 6 else "")
        rows.warnings.append(
            f"source {spec.name!r}: label name(s) {shown} look like numbers: a rating, a count or a label id was "
            f"read as a label name. Fix: give labels/names (ids -> names), use labels/format long for a file with "
            f"one row per (item, label) and one rating column per annotator, or labels/format votes for vote counts "
            f"(docs/reference.md).")
    return rows


def ingest_rows(spec: SourceSpec, on_duplicate_id: str = "warn") -> SourceRows:
    """Read every file of a one-row-per-example ``spec`` (or one row per judgement, with
    columns/annotator); validate every row; return rows with taxonomy label names.

    Raises TagwiseError naming file, row and fix on the first bad row; nothing is written here.
    Label names are NFC-normalised. Example ids that repeat within the source are counted in
    ``duplicate_ids``; ``on_duplicate_id`` is "warn" (keep every row, the caller warns), "error",
    "keep-first" or "keep-last". ``sources.ingest`` (``sources/read.py``) reads every layout.
    """
    if on_duplicate_id not in DUPLICATE_ID_POLICIES:
        raise TagwiseError(f"--on-duplicate-id {on_duplicate_id!r}: use one of {list(DUPLICATE_ID_POLICIES)}.")
    rows = read_rows(spec)
    return finish_rows(_handle_duplicate_ids(rows, spec, on_duplicate_id), spec)


def read_rows(spec: SourceSpec) -> SourceRows:
    """Every row of a one-row-per-example (or per-judgement, with columns/annotator) layout, as written:
    no holdout, duplicate ids kept."""
    mapper = _LabelMapper(spec)
    out = SourceRows(name=spec.name)
    observed: list[str] = []
    cols = spec.columns
    text_cols = spec.text_columns
    for split, path in spec.files.items():
        wanted: list[Any] = list(dict.fromkeys(text_cols))
        label_cols: list[Any] = []
        if split != "unlabeled":
            if spec.labels.format == "onehot":
                label_cols = list(spec.labels.onehot_columns)
            else:
                label_cols = [cols.get("labels", "labels")]
        optional = [cols[k] for k in ("id", "language", "annotator") if k in cols]
        wanted += [c for c in label_cols + optional if c not in wanted]
        data, rows = read_columns(path, spec.format, wanted, header=spec.header, separator=spec.separator,
                                  quoting=spec.quoting, limit=spec.limit)
        for i, row in enumerate(rows):
            parts = [data[c][i] for c in text_cols]
            for c, p in zip(text_cols, parts):
                if not (_is_missing(p) or isinstance(p, (str, int, float))):
                    raise TagwiseError(f"{path}: row {row}: text column {c!r} holds a {type(p).__name__}, not "
                                       f"text. Fix: store the text as a string.")
            parts = ["" if _is_missing(p) else str(p).strip() for p in parts]
            text = spec.text_join.join(p for p in parts if p)
            if not text:
                if spec.skip_empty_text:
                    out.skipped_empty += 1
                    continue
                raise TagwiseError(f"{path}: row {row}: empty text in column(s) {text_cols}. Fix: fill or "
                                   f"remove the row, or set 'skip_empty_text: true' in the spec.")
            if split == "unlabeled":
                labels = None
            elif spec.labels.format == "onehot":
                names = _onehot_labels([data[c][i] for c in label_cols], label_cols, path, row,
                                       spec.labels.threshold)
                labels = None if names is None else []
                for n in (mapper.token_to_source_name(n, path, row) if mapper.names else
                          label_name(n, path, f"row {row}: label") for n in names or ()):
                    labels += mapper.to_taxonomy(n)
            else:
                labels = []
                for tok in _tokens(data[label_cols[0]][i], spec, path, row):
                    labels += mapper.to_taxonomy(mapper.token_to_source_name(tok, path, row))
            if labels is not None:
                labels = apply_constant(list(dict.fromkeys(labels)), spec, path, row)
                for n in labels:
                    if n not in observed:
                        observed.append(n)
            example_id = str(data[cols["id"]][i]) if "id" in cols else f"{split}:{row}"
            language = str(data[cols["language"]][i]) if "language" in cols else spec.language
            annotator = str(data[cols["annotator"]][i]) if "annotator" in cols else spec.annotator
            fields = (("text", text), ("id", example_id), ("language", language), ("annotator", annotator),
                      *(("label", n) for n in labels or ()))
            if not all(not isinstance(v, str) or v.isascii() for _, v in fields):  # the common case: one pass
                for what, value in fields:
                    check_unicode(value, f"{path}: row {row}: {what}")
            out.texts.append(text)
            out.labels.append(labels)
            out.splits.append(split)
            out.rows.append(row)
            out.example_ids.append(example_id)
            out.languages.append(language)
            out.annotators.append(annotator)
    declared = mapper.declared_labels()
    out.annotated_labels = with_constant_labels(declared if declared is not None else observed, spec)
    if not out.texts:
        raise TagwiseError(f"{spec.spec_path}: source {spec.name!r} has no rows.")
    return out


def _handle_duplicate_ids(out: SourceRows, spec: SourceSpec, policy: str) -> SourceRows:
    """Count example ids carried by several rows; apply the policy (see ``ingest``)."""
    rows_of: dict[str, list[int]] = {}
    for i, e in enumerate(out.example_ids):
        rows_of.setdefault(e, []).append(i)
    repeated = {e: idx for e, idx in rows_of.items() if len(idx) > 1}
    out.duplicate_ids = len(repeated)
    if not repeated or policy == "warn":
        return out
    if policy == "error":
        e, idx = next(iter(repeated.items()))
        raise TagwiseError(f"{spec.spec_path}: {len(repeated)} example id(s) repeat within source {spec.name!r}, "
                           f"e.g. {e!r} on rows {[out.rows[i] for i in idx[:3]]} of split(s) "
                           f"{sorted({out.splits[i] for i in idx})}. Fix: make the ids unique, or pass "
                           f"--on-duplicate-id keep-first / keep-last.")
    keep = sorted(idx[0] if policy == "keep-first" else idx[-1] for idx in rows_of.values())
    out.dropped_duplicates = len(out.texts) - len(keep)
    for name in ("texts", "labels", "splits", "example_ids", "rows", "languages", "annotators"):
        values = getattr(out, name)
        setattr(out, name, [values[i] for i in keep])
    return out
