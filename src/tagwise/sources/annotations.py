"""Per-annotator labels: read a source whose examples were labeled by several people.

Four spec layouts (see ``spec.py``):

- one row per judgement: one row per (example, annotator), ``columns: {text, labels, id, annotator}``.
  Rows with the same ``id`` (and split) are one example; without ``id`` rows with the same text are.
- wide: one row per example, one label column per annotator,
  ``labels: {format: delimited, annotator_columns: [a1, a2, a3]}``; a blank cell means that
  annotator did not label the example (an annotator who chose no label writes a token mapped to
  nothing, e.g. ``map: {none: null}``, or ``[]`` with ``format: list``).
- votes: one row per example, ``labels: {format: votes, columns: {hate: hate_speech}, count: n}``:
  each label column holds how many annotators chose the label, ``count`` how many annotated. The
  voters are anonymous: they become one pooled annotator ``<source>:anonymous`` that judged the
  example ``count`` times. With ``labels/threshold`` the votes are not kept as judgements: the
  example is labeled with every label whose share of votes is ``>= threshold`` (a plain source).
- long (``labels: {format: long, label_column: label, annotator_columns: [r1, r2], threshold: 1}``):
  one row per (item, label), one rating column per annotator; a rating ``>= threshold`` means the
  annotator chose the label, a blank cell that the annotator did not rate it. Rows with the same
  ``item_column`` value (default ``columns/id``, else the same text) are one item. An annotator's
  judgement of an item is the set of labels they rated ``>= threshold``; a label of the source they
  did not rate on that item counts as not chosen (the count of such gaps is a warning).

``read_annotated`` returns one ``SourceRows`` row per example (its labels: the strict majority
of its judgements, what tagwise used before consensus existed) plus every judgement with its
annotator. Errors name the file, the row and the fix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..text import check_unicode
from ..types import TagwiseError
from .ingest import (SourceRows, _is_missing, _LabelMapper, _number, _tokens, apply_constant, finish_rows,
                     read_rows, with_constant_labels)
from .readers import read_columns
from .spec import SourceSpec

ANONYMOUS = "anonymous"


@dataclass
class AnnotatedRows:
    """``rows``: one row per example. Judgement j: example index ``example[j]`` into ``rows``,
    annotator id ``annotator[j]``, taxonomy label names ``labels[j]``, file row ``row[j]``."""

    rows: SourceRows
    example: list[int] = field(default_factory=list)
    annotator: list[str] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)
    row: list[int] = field(default_factory=list)
    anonymous: bool = False  # votes format: one pooled annotator may judge an example many times


def is_annotated(spec: SourceSpec) -> bool:
    """Whether ``spec`` carries per-annotator labels (long, wide or votes layout)."""
    if spec.labels.format == "votes":
        return spec.labels.threshold is None  # with a threshold the votes only decide each example's labels
    return "annotator" in spec.columns or spec.labels.annotator_columns is not None


def _majority(judgements: list[list[str]]) -> list[str]:
    counts: dict[str, int] = {}
    for labels in judgements:
        for name in labels:
            counts[name] = counts.get(name, 0) + 1
    return [name for name, c in counts.items() if 2 * c > len(judgements)]


def _add_example(out: AnnotatedRows, text, split, row, example_id, language, judgements, where: Path,
                 spec: SourceSpec, row_labels: list[str] | None = None):
    """Append one example with its judgements ``[(annotator, labels, file row)]``; its row's labels are
    ``row_labels`` or else the strict majority of the judgements."""
    judgements = [(a, apply_constant(lab, spec, where, jrow), jrow) for a, lab, jrow in judgements]
    for what, value in (("text", text), ("id", example_id), ("language", language)):
        check_unicode(value, f"{where}: row {row}: {what}")
    idx = len(out.rows.texts)
    seen: dict[str, tuple[list[str], int]] = {}
    kept = []
    for annotator, labels, jrow in judgements:
        if annotator in seen and not out.anonymous:
            prev, prev_row = seen[annotator]
            if sorted(prev) != sorted(labels):
                raise TagwiseError(f"{where}: rows {prev_row} and {jrow}: annotator {annotator!r} labeled example "
                                   f"{example_id!r} twice with different labels ({sorted(prev)} vs {sorted(labels)}). "
                                   f"Fix: keep one of the two rows.")
            continue  # an exact repeat says nothing new
        seen[annotator] = (labels, jrow)
        kept.append((annotator, labels, jrow))
    for annotator, labels, jrow in kept:
        out.example.append(idx)
        out.annotator.append(annotator)
        out.labels.append(labels)
        out.row.append(jrow)
    r = out.rows
    r.texts.append(text)
    r.labels.append(_majority([lab for _, lab, _ in kept]) if row_labels is None
                    else apply_constant(row_labels, spec, where, row))
    r.splits.append(split)
    r.rows.append(row)
    r.example_ids.append(example_id)
    r.languages.append(language)
    r.annotators.append(None)


def _read_per_judgement(spec: SourceSpec) -> AnnotatedRows:
    flat = read_rows(spec)
    out = AnnotatedRows(SourceRows(name=spec.name, annotated_labels=flat.annotated_labels,
                                   skipped_empty=flat.skipped_empty))
    groups: dict[tuple, list[int]] = {}
    for i in range(len(flat)):
        path = spec.files[flat.splits[i]]
        a = flat.annotators[i]
        if a is None or str(a).strip() in ("", "nan", "None"):
            raise TagwiseError(f"{path}: row {flat.rows[i]}: empty annotator in column "
                               f"{spec.columns['annotator']!r}. Fix: fill in who labeled the row, or drop it.")
        if flat.labels[i] is None:
            continue  # unlabeled split: no judgement
        key = (flat.splits[i], flat.example_ids[i] if "id" in spec.columns else flat.texts[i])
        groups.setdefault(key, []).append(i)
    for (split, _), members in groups.items():
        first = members[0]
        _add_example(out, flat.texts[first], split, flat.rows[first],
                     flat.example_ids[first] if "id" in spec.columns else f"{split}:{flat.rows[first]}",
                     flat.languages[first], [(str(flat.annotators[i]).strip(), flat.labels[i], flat.rows[i])
                                             for i in members], spec.files[split], spec)
    if not out.rows.texts:
        raise TagwiseError(f"{spec.spec_path}: source {spec.name!r} has no labeled rows.")
    finish_rows(out.rows, spec)
    return out


def _row_text(spec: SourceSpec, data: dict, i: int, row: int, path: Path, out: AnnotatedRows) -> str | None:
    """Row ``i``'s text (its text columns joined); None for an empty one the spec skips (counted)."""
    parts = ["" if _is_missing(data[c][i]) else str(data[c][i]).strip() for c in spec.text_columns]
    text = spec.text_join.join(p for p in parts if p)
    if not text:
        if spec.skip_empty_text:
            out.rows.skipped_empty += 1
            return None
        raise TagwiseError(f"{path}: row {row}: empty text in column(s) {spec.text_columns}. Fix: fill or "
                           f"remove the row, or set 'skip_empty_text: true' in the spec.")
    return text


def _read_wide_or_votes(spec: SourceSpec) -> AnnotatedRows:
    mapper = _LabelMapper(spec)
    votes = spec.labels.format == "votes"
    out = AnnotatedRows(SourceRows(name=spec.name), anonymous=votes)
    observed: list[str] = []
    cols = spec.columns
    for split, path in spec.files.items():
        if split == "unlabeled":
            raise TagwiseError(f"{spec.spec_path}: split 'unlabeled' has no annotations; put unlabeled texts "
                               f"in a separate source without annotator columns.")
        label_cols = (list(spec.labels.vote_columns.values()) + [spec.labels.count_column] if votes
                      else list(spec.labels.annotator_columns))
        wanted = list(dict.fromkeys(spec.text_columns + label_cols
                                    + [cols[k] for k in ("id", "language") if k in cols]))
        try:
            data, rows = read_columns(path, spec.format, wanted, header=spec.header, separator=spec.separator,
                                      quoting=spec.quoting, limit=spec.limit)
        except TagwiseError as exc:
            kind = "labels/columns or labels/count" if votes else "labels/annotator_columns"
            raise TagwiseError(f"{exc} (a column named in {kind} of {spec.spec_path})") from None
        for i, row in enumerate(rows):
            text = _row_text(spec, data, i, row, path, out)
            if text is None:
                continue
            judgements, labels_by_share = [], None
            if votes:
                count = _count(data[spec.labels.count_column][i], path, row, spec.labels.count_column)
                per_label = {}
                for name, col in spec.labels.vote_columns.items():
                    c = _count(data[col][i], path, row, col)
                    if c > count:
                        raise TagwiseError(f"{path}: row {row}: column {col!r} has {c} votes but column "
                                           f"{spec.labels.count_column!r} says only {count} annotated. Fix: "
                                           f"correct the counts (a label's votes cannot exceed the annotators).")
                    per_label[name] = c
                for j in range(count):
                    labels = []
                    for name, c in per_label.items():
                        if j < c:
                            labels += mapper.to_taxonomy(name)
                    judgements.append((f"{spec.name}:{ANONYMOUS}", labels, row))
                if spec.labels.threshold is not None and count:
                    labels_by_share = []
                    for name, c in per_label.items():
                        if c / count >= spec.labels.threshold:
                            labels_by_share += [t for t in mapper.to_taxonomy(name) if t not in labels_by_share]
            else:
                for col in spec.labels.annotator_columns:
                    value = data[col][i]
                    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
                        continue
                    labels = []
                    for tok in _tokens(value, spec, path, row):
                        labels += mapper.to_taxonomy(mapper.token_to_source_name(tok, path, row))
                    judgements.append((str(col), list(dict.fromkeys(labels)), row))
            if not judgements:
                what = (f"column {spec.labels.count_column!r} is 0" if votes
                        else f"columns {spec.labels.annotator_columns} are all empty")
                raise TagwiseError(f"{path}: row {row}: no annotation for this example ({what}). Fix: remove the "
                                   f"row, or move it to a source of unlabeled texts.")
            for _, labels, _ in judgements:
                observed.extend(n for n in labels if n not in observed)
            example_id = str(data[cols["id"]][i]) if "id" in cols else f"{split}:{row}"
            language = str(data[cols["language"]][i]) if "language" in cols else spec.language
            _add_example(out, text, split, row, example_id, language, judgements, path, spec, labels_by_share)
    if votes:
        declared = []
        for name in spec.labels.vote_columns:
            declared.extend(t for t in mapper.to_taxonomy(name) if t not in declared)
    else:
        declared = mapper.declared_labels()
    out.rows.annotated_labels = with_constant_labels(declared if declared is not None else observed, spec)
    if not out.rows.texts:
        raise TagwiseError(f"{spec.spec_path}: source {spec.name!r} has no rows.")
    finish_rows(out.rows, spec)
    return out


def _count(value: Any, path: Path, row: int, col: Any) -> int:
    try:
        f = float(str(value).strip())
    except ValueError:
        f = float("nan")
    if not f == f or f < 0 or f != int(f):
        raise TagwiseError(f"{path}: row {row}: column {col!r} has {value!r}; expected a whole number of "
                           f"annotators (0, 1, 2, ...).")
    return int(f)


def read_annotated(spec: SourceSpec) -> AnnotatedRows:
    """Read a source with per-annotator labels (per-judgement rows, wide, votes or long layout; module doc)."""
    if not (is_annotated(spec) or spec.labels.format in ("votes", "long")):
        raise TagwiseError(f"{spec.spec_path}: source {spec.name!r} has no per-annotator labels. Fix: add "
                           f"columns/annotator (one row per judgement), labels/annotator_columns (wide), labels/format "
                           f"votes or labels/format long.")
    if spec.labels.format == "long":
        return _read_item_label_rows(spec)
    if spec.labels.annotator_columns is not None or spec.labels.format == "votes":
        return _read_wide_or_votes(spec)
    return _read_per_judgement(spec)


def _rating(value: Any, path: Path, row: int, col: Any) -> float | None:
    """One annotator's rating cell: a number (true/yes = 1, false/no = 0), None when blank (not rated)."""
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "t"):
        return 1.0
    if text in ("false", "no", "n", "f"):
        return 0.0
    number = _number(text)
    if number is None:
        raise TagwiseError(f"{path}: row {row}: annotator column {col!r} has {value!r}; with labels/format long each "
                           f"annotator column holds a rating (a number, or yes/no), blank when not rated. Fix: "
                           f"correct the cell, or name the right columns in labels/annotator_columns.")
    return number


def _read_item_label_rows(spec: SourceSpec) -> AnnotatedRows:
    """``labels/format long``: one row per (item, label), one rating column per annotator (module doc)."""
    mapper = _LabelMapper(spec)
    ls = spec.labels
    out = AnnotatedRows(SourceRows(name=spec.name))
    cols = spec.columns
    # item key -> {"text", "split", "row", "language", "ratings": {annotator: {label: rating}}, "labels": [...]}
    items: dict[tuple, dict] = {}
    rated_values: set[float] = set()
    observed: list[str] = []
    for split, path in spec.files.items():
        if split == "unlabeled":
            raise TagwiseError(f"{spec.spec_path}: split 'unlabeled' has no ratings; put unlabeled texts in a "
                               f"separate source.")
        wanted = list(dict.fromkeys(spec.text_columns + [ls.label_column] + list(ls.annotator_columns)
                                    + ([ls.item_column] if ls.item_column is not None else [])
                                    + ([cols["language"]] if "language" in cols else [])))
        try:
            data, rows = read_columns(path, spec.format, wanted, header=spec.header, separator=spec.separator,
                                      quoting=spec.quoting, limit=spec.limit)
        except TagwiseError as exc:
            raise TagwiseError(f"{exc} (a column of labels/format long in {spec.spec_path})") from None
        for i, row in enumerate(rows):
            text = _row_text(spec, data, i, row, path, out)
            if text is None:
                continue
            raw_label = data[ls.label_column][i]
            if _is_missing(raw_label) or not str(raw_label).strip():
                raise TagwiseError(f"{path}: row {row}: empty label in column {ls.label_column!r} (labels/"
                                   f"label_column). Fix: name the label this row rates, or remove the row.")
            targets = mapper.to_taxonomy(mapper.token_to_source_name(raw_label, path, row))
            observed.extend(t for t in targets if t not in observed)
            item_id = None
            if ls.item_column is not None:
                raw_id = data[ls.item_column][i]
                item_id = "" if _is_missing(raw_id) else str(raw_id).strip()
                if not item_id:
                    raise TagwiseError(f"{path}: row {row}: empty item id in column {ls.item_column!r}. Fix: name "
                                       f"the item this row belongs to, or remove the row.")
            key = (split, item_id if item_id is not None else text)
            item = items.get(key)
            if item is None:
                item = items[key] = {"text": text, "split": split, "row": row, "path": path, "ratings": {},
                                     "id": item_id if item_id is not None else f"{split}:{row}",
                                     "language": str(data[cols["language"]][i]) if "language" in cols
                                     else spec.language, "labels": []}
            elif item["text"] != text:
                raise TagwiseError(f"{path}: rows {item['row']} and {row}: item {item_id!r} has two different texts. "
                                   f"Fix: give each item one text, or correct labels/item_column.")
            item["labels"].extend(t for t in targets if t not in item["labels"])
            for col in ls.annotator_columns:
                rating = _rating(data[col][i], path, row, col)
                if rating is None or not targets:  # not rated, or a label the spec drops (map: {x: null})
                    continue
                rated_values.add(rating)
                per_label = item["ratings"].setdefault(str(col), {})
                for t in targets:
                    per_label[t] = max(rating, per_label.get(t, rating))
    threshold = ls.threshold
    if threshold is None:
        if not rated_values <= {0.0, 1.0}:
            shown = sorted(rated_values)
            raise TagwiseError(f"{spec.spec_path}: the annotators' ratings run from {shown[0]:g} to {shown[-1]:g}, "
                               f"not only 0/1; which ratings mean the label applies? Fix: set labels/threshold "
                               f"(a rating >= threshold counts as choosing the label), e.g. threshold: "
                               f"{shown[len(shown) // 2]:g}.")
        threshold = 1.0
    declared = mapper.declared_labels()
    rated = declared if declared is not None else observed
    annotated = with_constant_labels(rated, spec)
    gaps = 0
    for item in items.values():
        judgements = []
        for annotator, per_label in item["ratings"].items():
            gaps += sum(1 for t in rated if t not in per_label)
            judgements.append((annotator, [t for t in rated if per_label.get(t, -math.inf) >= threshold],
                               item["row"]))
        if not judgements:
            raise TagwiseError(f"{item['path']}: row {item['row']}: no annotator rated item {item['id']!r} (columns "
                               f"{ls.annotator_columns} are blank on every row of the item). Fix: remove the "
                               f"item, or move it to a source of unlabeled texts.")
        _add_example(out, item["text"], item["split"], item["row"], item["id"], item["language"], judgements,
                     item["path"], spec)
    out.rows.annotated_labels = annotated
    if not out.rows.texts:
        raise TagwiseError(f"{spec.spec_path}: source {spec.name!r} has no rows.")
    if gaps:
        out.rows.warnings.append(
            f"source {spec.name!r}: {gaps} (item, annotator, label) rating(s) are missing: an annotator rated some "
            f"labels of an item but not the others (or the item has no row for them); each counts as the label "
            f"not chosen by that annotator.")
    finish_rows(out.rows, spec)
    return out
