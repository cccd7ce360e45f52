"""The declarative source spec (YAML) and its validation.

A spec maps one dataset's files, columns and label format onto the project's taxonomy.
Every error names the spec file, the field and the fix.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..types import SPLITS, TagwiseError

FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf", "lines")
LABEL_FORMATS = ("delimited", "list", "onehot", "single", "votes")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
               ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_SPLIT_ALIASES = {"validation": "dev", "val": "dev", "valid": "dev", "development": "dev"}

_TOP_KEYS = {"name", "path", "splits", "format", "header", "separator", "quoting", "columns", "labels",
             "split", "language", "annotator", "skip_empty_text", "limit", "description", "text_join"}
_COLUMN_KEYS = {"text", "labels", "id", "language", "annotator"}
_LABEL_KEYS = {"format", "delimiter", "names_file", "names", "onehot_columns", "map", "id_base",
               "annotator_columns", "columns", "count"}


def _check_keys(given: dict, allowed: set, where: str, spec_path: Path) -> None:
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Allowed: {sorted(allowed)}."
            raise TagwiseError(f"{spec_path}: unknown field {where}{key!r}.{hint}")


def normalize_split(value: str, spec_path: Path | str = "<spec>", field_name: str = "split") -> str:
    split = _SPLIT_ALIASES.get(str(value).lower(), str(value).lower())
    if split not in SPLITS:
        raise TagwiseError(f"{spec_path}: field {field_name!r} is {value!r}; use one of {list(SPLITS)}.")
    return split


@dataclass
class LabelSpec:
    format: str = "delimited"
    delimiter: str = ","
    names: list[str] | None = None          # id -> name, from names_file or inline
    onehot_columns: list[Any] | None = None
    map: dict[str, Any] = field(default_factory=dict)  # name -> new name | [names] | None (drop)
    id_base: int = 0                        # 1 when label ids count from 1
    annotator_columns: list[Any] | None = None  # wide format: one label column per annotator
    vote_columns: dict[str, Any] | None = None  # format votes: label name -> column of vote counts
    count_column: Any = None                # format votes: column with how many annotated the row


@dataclass
class SourceSpec:
    """A validated source spec. ``files`` maps split -> absolute path."""

    name: str
    files: dict[str, Path | dict[str, Path]]
    format: str
    spec_path: Path
    header: bool = True
    separator: str | None = None
    quoting: str = "minimal"
    columns: dict[str, Any] = field(default_factory=dict)
    labels: LabelSpec = field(default_factory=LabelSpec)
    language: str = "und"
    annotator: str | None = None
    skip_empty_text: bool = False
    limit: int | None = None
    description: str = ""
    text_join: str = " "
    raw: dict = field(default_factory=dict)  # the spec as written, kept for provenance

    @property
    def text_columns(self) -> list[Any]:
        text = self.columns.get("text", "text")
        return list(text) if isinstance(text, list) else [text]


def _infer_format(path: Path, spec_path: Path) -> str:
    if path.is_dir():
        return "hf"
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise TagwiseError(f"{spec_path}: cannot infer the format of {path.name}; add 'format:' "
                           f"with one of {list(FORMATS)}.")
    return fmt


def load_spec(spec_path: str | Path) -> SourceSpec:
    """Read and validate a source spec YAML file."""
    spec_path = Path(spec_path).resolve()
    if not spec_path.exists():
        raise TagwiseError(f"{spec_path}: spec file not found.")
    try:
        raw = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TagwiseError(f"{spec_path}: not valid YAML: {exc}") from None
    return parse_spec(raw, spec_path)


def parse_spec(raw: Any, spec_path: str | Path) -> SourceSpec:
    """Validate a spec given as a dict; relative paths resolve against ``spec_path``'s folder."""
    spec_path = Path(spec_path)
    if not isinstance(raw, dict):
        raise TagwiseError(f"{spec_path}: a source spec must be a YAML mapping with at least 'path'.")
    _check_keys(raw, _TOP_KEYS, "", spec_path)
    base = spec_path.parent
    name = raw.get("name") or spec_path.stem
    if not isinstance(name, str) or not name.strip():
        raise TagwiseError(f"{spec_path}: field 'name' must be a non-empty string.")

    if ("path" in raw) == ("splits" in raw):
        raise TagwiseError(f"{spec_path}: give exactly one of 'path' (with 'split') or 'splits' "
                           f"(a mapping split -> file).")
    if "path" in raw:
        path = (base / str(raw["path"])).resolve()
        if path.is_dir() and raw.get("format", "hf") == "hf" and (path / "dataset_dict.json").exists():
            files = {}  # a Hugging Face DatasetDict folder: one sub-folder per split
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                files[normalize_split(sub.name, spec_path, f"splits/{sub.name}")] = sub
        else:
            files = {normalize_split(raw.get("split", "train"), spec_path): path}
    else:
        if not isinstance(raw["splits"], dict) or not raw["splits"]:
            raise TagwiseError(f"{spec_path}: 'splits' must map split names to files, "
                               f"e.g. {{train: train.tsv, test: test.tsv}}.")
        files = {}
        for k, v in raw["splits"].items():
            split = normalize_split(k, spec_path, f"splits/{k}")
            # format 'lines': parallel one-item-per-line files, e.g. {text: a.txt, labels: a_labels.txt}
            files[split] = ({role: (base / str(f)).resolve() for role, f in v.items()} if isinstance(v, dict)
                            else (base / str(v)).resolve())
    for split, path in files.items():
        for p in (path.values() if isinstance(path, dict) else [path]):
            if not p.exists():
                raise TagwiseError(f"{spec_path}: file for split {split!r} not found: {p}. "
                                   f"Paths are relative to the spec file's folder.")

    first = next(iter(files.values()))
    fmt = raw.get("format") or ("lines" if isinstance(first, dict) else _infer_format(first, spec_path))
    if (fmt == "lines") != isinstance(first, dict):
        raise TagwiseError(f"{spec_path}: format 'lines' takes one mapping per split, e.g. "
                           f"splits: {{train: {{text: train_text.txt, labels: train_labels.txt}}}}.")
    if fmt not in FORMATS:
        raise TagwiseError(f"{spec_path}: 'format' is {fmt!r}; use one of {list(FORMATS)}.")

    columns = raw.get("columns") or {}
    if not isinstance(columns, dict):
        raise TagwiseError(f"{spec_path}: 'columns' must be a mapping like {{text: 0, labels: 1}}.")
    _check_keys(columns, _COLUMN_KEYS, "columns/", spec_path)
    header = bool(raw.get("header", True))
    if fmt in ("csv", "tsv") and not header:
        for key, col in columns.items():
            for c in (col if isinstance(col, list) else [col]):
                if not isinstance(c, int):
                    raise TagwiseError(f"{spec_path}: columns/{key} is {c!r}, but 'header: false' means "
                                       f"columns are 0-based positions; use an integer.")

    labels_raw = raw.get("labels") or {}
    if not isinstance(labels_raw, dict):
        raise TagwiseError(f"{spec_path}: 'labels' must be a mapping with at least 'format'.")
    _check_keys(labels_raw, _LABEL_KEYS, "labels/", spec_path)
    label_spec = LabelSpec(format=labels_raw.get("format", "delimited"),
                           delimiter=str(labels_raw.get("delimiter", ",")),
                           id_base=int(labels_raw.get("id_base", 0)))
    if label_spec.format not in LABEL_FORMATS:
        raise TagwiseError(f"{spec_path}: labels/format is {label_spec.format!r}; use one of "
                           f"{list(LABEL_FORMATS)}.")
    if "names_file" in labels_raw and "names" in labels_raw:
        raise TagwiseError(f"{spec_path}: give labels/names_file or labels/names, not both.")
    if "names_file" in labels_raw:
        names_path = (base / str(labels_raw["names_file"])).resolve()
        if not names_path.exists():
            raise TagwiseError(f"{spec_path}: labels/names_file not found: {names_path}.")
        label_spec.names = [ln.strip() for ln in names_path.read_text(encoding="utf-8").splitlines()
                            if ln.strip()]
    elif "names" in labels_raw:
        label_spec.names = [str(n) for n in labels_raw["names"]]
    if label_spec.format == "onehot":
        cols = labels_raw.get("onehot_columns")
        if not cols:
            raise TagwiseError(f"{spec_path}: labels/format onehot needs labels/onehot_columns "
                               f"(the 0/1 columns, one per label).")
        label_spec.onehot_columns = list(cols)
    if "annotator_columns" in labels_raw:
        cols = labels_raw["annotator_columns"]
        if not isinstance(cols, list) or not cols:
            raise TagwiseError(f"{spec_path}: labels/annotator_columns must list the label columns, one per "
                               f"annotator, e.g. [rater1, rater2, rater3].")
        if label_spec.format in ("onehot", "votes"):
            raise TagwiseError(f"{spec_path}: labels/annotator_columns holds each annotator's labels as text; "
                               f"use labels/format delimited, list or single with it.")
        label_spec.annotator_columns = list(cols)
    if label_spec.format == "votes":
        vcols, count = labels_raw.get("columns"), labels_raw.get("count")
        if not isinstance(vcols, dict) or not vcols or count is None:
            raise TagwiseError(f"{spec_path}: labels/format votes needs labels/columns (label name -> column "
                               f"holding how many annotators chose it) and labels/count (the column holding "
                               f"how many annotated), e.g. columns: {{hate: hate_speech}}, count: count.")
        label_spec.vote_columns = {str(k): v for k, v in vcols.items()}
        label_spec.count_column = count
    elif "columns" in labels_raw or "count" in labels_raw:
        raise TagwiseError(f"{spec_path}: labels/columns and labels/count belong to labels/format votes.")
    mapping = labels_raw.get("map") or {}
    if not isinstance(mapping, dict):
        raise TagwiseError(f"{spec_path}: labels/map must map source label names to taxonomy names "
                           f"(or null to drop).")
    label_spec.map = {str(k): v for k, v in mapping.items()}

    limit = raw.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise TagwiseError(f"{spec_path}: 'limit' must be a positive integer (rows per file).")
    quoting = str(raw.get("quoting", "minimal"))
    if quoting not in ("minimal", "none"):
        raise TagwiseError(f"{spec_path}: 'quoting' must be 'minimal' or 'none'.")
    return SourceSpec(
        name=name.strip(), files=files, format=fmt, spec_path=spec_path, header=header,
        separator=raw.get("separator"), quoting=quoting, columns=columns, labels=label_spec,
        language=str(raw.get("language", "und")), annotator=raw.get("annotator"),
        skip_empty_text=bool(raw.get("skip_empty_text", False)), limit=limit,
        description=str(raw.get("description", "")), text_join=str(raw.get("text_join", " ")), raw=raw,
    )
