"""The declarative source spec (YAML) and its validation.

A spec maps one dataset's files, columns and label format onto the project's taxonomy.
Every error names the spec file, the field and the fix. docs/reference.md lists every field; the
label layouts, with an example each:

One row per example, its labels in one column (``labels/format`` delimited, list or single)::

    path: train.tsv
    columns: {text: 0, labels: 1, id: 2}
    labels: {format: delimited, delimiter: ",", names_file: labels.txt}   # ids 0.. -> names

One 0/1 column per label; ``threshold`` reads fractional or probability cells (>= threshold is
positive; without it a fraction is an error)::

    labels: {format: onehot, onehot_columns: [hate, offensive], threshold: 0.5}

Vote counts (``format: votes``): per label a column holding how many annotators chose it, and
``count`` the column holding how many annotated the row. The votes become judgements of one pooled
anonymous annotator and training uses their consensus; with ``threshold`` the row is instead labeled
with every label whose share of votes (votes / count) is >= threshold, and no judgements are kept::

    labels: {format: votes, columns: {hate: hate_votes, offensive: offensive_votes}, count: n_annotators}

Several annotators, wide: one label column per annotator (``annotator_columns`` with format
delimited, list or single); or one row per judgement (``columns: {annotator: rater}``).

Several annotators, long (``format: long``): one row per (item, label), one rating column per
annotator (blank = not rated); a rating >= ``threshold`` means the annotator chose the label (0/1
ratings need no threshold; others do). Rows with the same ``item_column`` value (default
``columns/id``, else the same text) are one item::

    columns: {text: text}
    labels: {format: long, item_column: item_id, label_column: label, annotator_columns: [r1, r2, r3],
             threshold: 2}

Every layout also takes ``labels/constant`` (``{abuse: 1}``: every row of the source has label
abuse; ``{spam: 0}``: no row has spam; either way the source annotates it), and a source read from
one file without splits takes ``holdout: {test: 0.2, dev: 0.1, seed: 0}`` to cut label-stratified,
reproducible test/dev splits from it (``sources/holdout.py``).
"""
from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from .._io import check_yaml_size, read_yaml
from ..types import SPLITS, TagwiseError

FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf", "lines")
LABEL_FORMATS = ("delimited", "list", "onehot", "single", "votes", "long")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
               ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_SPLIT_ALIASES = {"validation": "dev", "val": "dev", "valid": "dev", "development": "dev"}

_TOP_KEYS = {"name", "path", "splits", "format", "header", "separator", "quoting", "columns", "labels",
             "split", "language", "annotator", "skip_empty_text", "limit", "description", "text_join",
             "holdout"}
_COLUMN_KEYS = {"text", "labels", "id", "language", "annotator"}
_LABEL_KEYS = {"format", "delimiter", "names_file", "names", "onehot_columns", "map", "id_base",
               "annotator_columns", "columns", "count", "threshold", "constant", "item_column", "label_column"}
_HOLDOUT_KEYS = {"test", "dev", "seed"}


def _check_keys(given: dict, allowed: set, where: str, spec_path: Path) -> None:
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Allowed: {sorted(allowed)}."
            raise TagwiseError(f"{spec_path}: unknown field {where}{key!r}.{hint}")


def label_name(value: Any, spec_path: Path | str, field_name: str) -> str:
    """A label name as written in a spec or file -> its NFC form (composed and combining accents are one
    label); an empty or non-text name is an error naming ``field_name``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TagwiseError(f"{spec_path}: {field_name} is {value!r}; a label name must be text. Fix: write the "
                           f"name as a string.")
    name = unicodedata.normalize("NFC", str(value)).strip()
    if not name:
        raise TagwiseError(f"{spec_path}: {field_name} is an empty label name. Fix: name the label, or drop it "
                           f"(labels/map: {{source name: null}}).")
    return name


def _text(raw: dict, key: str, default, spec_path: Path, example: str, allow_none: bool = False):
    """A top-level field that must be a string (or absent)."""
    value = raw.get(key, default)
    if value is None and (allow_none or default is None):
        return None
    if not isinstance(value, str):
        raise TagwiseError(f"{spec_path}: field {key!r} is {value!r}; it must be one string, e.g. {key}: {example}.")
    return value


def _flag(raw: dict, key: str, default: bool, spec_path: Path) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise TagwiseError(f"{spec_path}: field {key!r} is {value!r}; it must be true or false.")
    return value


def _column_ref(value: Any, spec_path: Path, key: str, allow_list: bool) -> Any:
    """A columns/<key> value: a column name or 0-based position (a list of them for text)."""
    if allow_list and isinstance(value, list) and value:
        return [_column_ref(v, spec_path, key, False) for v in value]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (isinstance(value, int) and value < 0):
        shape = "a column name or 0-based position" + (" (or a list of them)" if allow_list else "")
        raise TagwiseError(f"{spec_path}: columns/{key} is {value!r}; it must be {shape}, e.g. {key}: {key}.")
    return value


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
    threshold: float | None = None          # onehot cells / votes shares / long ratings: >= threshold is positive
    constant: dict[str, int] = field(default_factory=dict)  # label -> 1 (every row has it) | 0 (no row has it)
    item_column: Any = None                 # format long: the column naming the item (default: columns/id, else the text)
    label_column: Any = None                # format long: the column naming the label a row rates


@dataclass(frozen=True)
class Holdout:
    """``holdout: {test, dev, seed}``: cut test/dev splits from a source's labeled train rows."""

    test: float = 0.0
    dev: float = 0.0
    seed: int = 0


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
    holdout: Holdout | None = None
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
    return parse_spec(read_yaml(spec_path, "spec"), spec_path)


def parse_spec(raw: Any, spec_path: str | Path) -> SourceSpec:
    """Validate a spec given as a dict; relative paths resolve against ``spec_path``'s folder."""
    spec_path = Path(spec_path)
    if not isinstance(raw, dict):
        raise TagwiseError(f"{spec_path}: a source spec must be a YAML mapping with at least 'path'.")
    check_yaml_size(raw, spec_path)
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
    for split, path in files.items():
        for p in (path.values() if isinstance(path, dict) else [path]):
            if p.is_dir() and (fmt != "hf" or isinstance(path, dict)):
                raise TagwiseError(f"{spec_path}: the file for split {split!r} is a folder: {p}. Fix: name the data "
                                   f"file itself (a folder is read only with format: hf).")
    if (fmt == "lines") != isinstance(first, dict):
        raise TagwiseError(f"{spec_path}: format 'lines' takes one mapping per split, e.g. "
                           f"splits: {{train: {{text: train_text.txt, labels: train_labels.txt}}}}.")
    if fmt not in FORMATS:
        raise TagwiseError(f"{spec_path}: 'format' is {fmt!r}; use one of {list(FORMATS)}.")

    columns = raw.get("columns") or {}
    if not isinstance(columns, dict):
        raise TagwiseError(f"{spec_path}: 'columns' must be a mapping like {{text: 0, labels: 1}}.")
    _check_keys(columns, _COLUMN_KEYS, "columns/", spec_path)
    columns = {k: _column_ref(v, spec_path, k, k == "text") for k, v in columns.items()}
    header = _flag(raw, "header", True, spec_path)
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
    delimiter = labels_raw.get("delimiter", ",")
    if not isinstance(delimiter, str) or not delimiter:
        raise TagwiseError(f"{spec_path}: labels/delimiter is {delimiter!r}; it must be a non-empty string such "
                           f"as ',' or '|'.")
    id_base = labels_raw.get("id_base", 0)
    if isinstance(id_base, bool) or not isinstance(id_base, int):
        raise TagwiseError(f"{spec_path}: labels/id_base is {id_base!r}; it must be a whole number (0 when label "
                           f"ids count from 0, 1 when they count from 1).")
    label_spec = LabelSpec(format=labels_raw.get("format", "delimited"), delimiter=delimiter, id_base=id_base)
    if not isinstance(label_spec.format, str) or label_spec.format not in LABEL_FORMATS:
        raise TagwiseError(f"{spec_path}: labels/format is {label_spec.format!r}; use one of "
                           f"{list(LABEL_FORMATS)}.")
    if "names_file" in labels_raw and "names" in labels_raw:
        raise TagwiseError(f"{spec_path}: give labels/names_file or labels/names, not both.")
    if "names_file" in labels_raw:
        names_path = (base / str(labels_raw["names_file"])).resolve()
        if not names_path.is_file():
            raise TagwiseError(f"{spec_path}: labels/names_file not found (or not a file): {names_path}.")
        try:
            lines = names_path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise TagwiseError(f"{names_path}: not UTF-8 (byte {exc.start}). Fix: save labels/names_file as "
                               f"UTF-8.") from None
        label_spec.names = [label_name(ln, names_path, f"line {i}") for i, ln in enumerate(lines, 1) if ln.strip()]
    elif "names" in labels_raw:
        if not isinstance(labels_raw["names"], list):
            raise TagwiseError(f"{spec_path}: labels/names is {labels_raw['names']!r}; it must be a list of label "
                               f"names in id order, e.g. names: [anger, joy].")
        label_spec.names = [label_name(n, spec_path, f"labels/names[{i}]") for i, n in enumerate(labels_raw["names"])]
    if label_spec.format == "onehot":
        cols = labels_raw.get("onehot_columns")
        if not cols or not isinstance(cols, list):
            raise TagwiseError(f"{spec_path}: labels/format onehot needs labels/onehot_columns: a list of the "
                               f"0/1 columns, one per label.")
        label_spec.onehot_columns = [_column_ref(c, spec_path, "onehot_columns", False) for c in cols]
        for i, c in enumerate(cols):
            label_name(c, spec_path, f"labels/onehot_columns[{i}]")
    if "annotator_columns" in labels_raw:
        cols = labels_raw["annotator_columns"]
        if not isinstance(cols, list) or not cols:
            raise TagwiseError(f"{spec_path}: labels/annotator_columns must list the label columns, one per "
                               f"annotator, e.g. [rater1, rater2, rater3].")
        if label_spec.format in ("onehot", "votes"):
            raise TagwiseError(f"{spec_path}: labels/annotator_columns holds each annotator's labels as text "
                               f"(or, with labels/format long, each annotator's rating of one label); use "
                               f"labels/format delimited, list, single or long with it.")
        label_spec.annotator_columns = [_column_ref(c, spec_path, "annotator_columns", False) for c in cols]
    if label_spec.format == "votes":
        vcols, count = labels_raw.get("columns"), labels_raw.get("count")
        if not isinstance(vcols, dict) or not vcols or count is None:
            raise TagwiseError(f"{spec_path}: labels/format votes needs labels/columns (label name -> column "
                               f"holding how many annotators chose it) and labels/count (the column holding "
                               f"how many annotated), e.g. columns: {{hate: hate_speech}}, count: count.")
        label_spec.vote_columns = {label_name(k, spec_path, "labels/columns"): _column_ref(v, spec_path, "labels/columns", False)
                                   for k, v in vcols.items()}
        label_spec.count_column = _column_ref(count, spec_path, "labels/count", False)
    elif "columns" in labels_raw or "count" in labels_raw:
        raise TagwiseError(f"{spec_path}: labels/columns and labels/count belong to labels/format votes.")
    _parse_long(labels_raw, label_spec, columns, spec_path)
    _parse_threshold(labels_raw, label_spec, spec_path)
    label_spec.constant = _parse_constant(labels_raw.get("constant"), spec_path)
    mapping = labels_raw.get("map") or {}
    if not isinstance(mapping, dict):
        raise TagwiseError(f"{spec_path}: labels/map must map source label names to taxonomy names "
                           f"(or null to drop).")
    label_spec.map = {}
    for k, v in mapping.items():
        key = label_name(k, spec_path, f"labels/map key {k!r}")
        where = f"labels/map/{key}"
        if v is None:
            label_spec.map[key] = None
        elif isinstance(v, list):
            label_spec.map[key] = [label_name(t, spec_path, f"{where}[{i}]") for i, t in enumerate(v)]
        elif isinstance(v, (str, int, float)) and not isinstance(v, bool):
            label_spec.map[key] = label_name(v, spec_path, where)
        else:
            raise TagwiseError(f"{spec_path}: {where} is {v!r}; map each source label to a taxonomy name, a list "
                               f"of names, or null to drop it.")

    limit = raw.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise TagwiseError(f"{spec_path}: 'limit' is {limit!r}; it must be a positive integer (rows per file).")
    quoting = raw.get("quoting", "minimal")
    if quoting not in ("minimal", "none"):
        raise TagwiseError(f"{spec_path}: 'quoting' must be 'minimal' or 'none'.")
    separator = _text(raw, "separator", None, spec_path, "'|'")
    if separator is not None and len(separator) != 1:
        raise TagwiseError(f"{spec_path}: 'separator' is {separator!r}; it must be one character, e.g. ',' or "
                           f"'\\t'.")
    language = _text(raw, "language", "und", spec_path, "en")
    if not language.strip():
        raise TagwiseError(f"{spec_path}: 'language' is empty. Fix: a language code such as en, or und.")
    holdout = _parse_holdout(raw, files, spec_path)
    return SourceSpec(
        holdout=holdout, name=name.strip(), files=files, format=fmt, spec_path=spec_path, header=header,
        separator=separator, quoting=quoting, columns=columns, labels=label_spec,
        language=language.strip(), annotator=_text(raw, "annotator", None, spec_path, "crowd"),
        skip_empty_text=_flag(raw, "skip_empty_text", False, spec_path), limit=limit,
        description=_text(raw, "description", "", spec_path, "'what the source is'", allow_none=True) or "",
        text_join=_text(raw, "text_join", " ", spec_path, "' '"), raw=raw,
    )


def _parse_long(labels_raw: dict, label_spec: LabelSpec, columns: dict, spec_path: Path) -> None:
    """``labels/format long``: one row per (item, label), one rating column per annotator."""
    if label_spec.format != "long":
        for key in ("item_column", "label_column"):
            if key in labels_raw:
                raise TagwiseError(f"{spec_path}: labels/{key} belongs to labels/format long (one row per item and "
                                   f"label, one rating column per annotator).")
        return
    example = ("e.g. labels: {format: long, item_column: item, label_column: label, annotator_columns: [r1, r2, r3], "
               "threshold: 1}")
    if "label_column" not in labels_raw or not label_spec.annotator_columns:
        raise TagwiseError(f"{spec_path}: labels/format long needs labels/label_column (the column naming the label "
                           f"each row rates) and labels/annotator_columns (one rating column per annotator), "
                           f"{example}.")
    label_spec.label_column = _column_ref(labels_raw["label_column"], spec_path, "label_column", False)
    if "item_column" in labels_raw:
        label_spec.item_column = _column_ref(labels_raw["item_column"], spec_path, "item_column", False)
        if "id" in columns and columns["id"] != label_spec.item_column:
            raise TagwiseError(f"{spec_path}: labels/item_column is {label_spec.item_column!r} but columns/id is "
                               f"{columns['id']!r}; with labels/format long the item column is the example id. "
                               f"Fix: give one of them.")
    elif "id" in columns:
        label_spec.item_column = columns["id"]
    if "labels" in columns:
        raise TagwiseError(f"{spec_path}: columns/labels is not read with labels/format long; the label of each row "
                           f"is labels/label_column. Fix: drop columns/labels.")


def _parse_threshold(labels_raw: dict, label_spec: LabelSpec, spec_path: Path) -> None:
    if "threshold" not in labels_raw:
        return
    value = labels_raw["threshold"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TagwiseError(f"{spec_path}: labels/threshold is {value!r}; it must be a number, e.g. threshold: 0.5.")
    fmt = label_spec.format
    if fmt not in ("onehot", "votes", "long"):
        raise TagwiseError(f"{spec_path}: labels/threshold applies to labels/format onehot (fractional or "
                           f"probability cells), votes (the share of annotators) and long (each annotator's "
                           f"rating); this source's format is {fmt!r}. Fix: drop labels/threshold.")
    if fmt in ("onehot", "votes") and not 0 < value <= 1:
        what = "cell" if fmt == "onehot" else "share of votes"
        raise TagwiseError(f"{spec_path}: labels/threshold is {value!r}; a {what} >= threshold is positive, so it "
                           f"must lie in (0, 1], e.g. threshold: 0.5.")
    label_spec.threshold = float(value)


def _parse_constant(value: Any, spec_path: Path) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        raise TagwiseError(f"{spec_path}: labels/constant is {value!r}; it maps label names to 1 (every row of the "
                           f"source has the label) or 0 (no row has it), e.g. constant: {{abuse: 1}}.")
    out = {}
    for key, flag in value.items():
        name = label_name(key, spec_path, f"labels/constant key {key!r}")
        if isinstance(flag, bool):
            flag = int(flag)
        if flag not in (0, 1) or isinstance(flag, float) and not flag.is_integer():
            raise TagwiseError(f"{spec_path}: labels/constant/{name} is {flag!r}; use 1 (every row of the source "
                               f"has {name!r}) or 0 (no row has it).")
        out[name] = int(flag)
    return out


def _fraction(value: Any, spec_path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise TagwiseError(f"{spec_path}: holdout/{key} is {value!r}; it must be a fraction of the rows from 0 to "
                           f"below 1, e.g. holdout: {{test: 0.2, dev: 0.1, seed: 0}}.")
    return float(value)


def _parse_holdout(raw: dict, files: dict, spec_path: Path) -> Holdout | None:
    value = raw.get("holdout")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TagwiseError(f"{spec_path}: 'holdout' is {value!r}; it must be a mapping such as "
                           f"holdout: {{test: 0.2, dev: 0.1, seed: 0}}.")
    _check_keys(value, _HOLDOUT_KEYS, "holdout/", spec_path)
    test, dev = _fraction(value.get("test", 0), spec_path, "test"), _fraction(value.get("dev", 0), spec_path, "dev")
    seed = value.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TagwiseError(f"{spec_path}: holdout/seed is {seed!r}; it must be a whole number.")
    if test + dev <= 0 or test + dev >= 1:
        raise TagwiseError(f"{spec_path}: holdout cuts test {test} + dev {dev} of the rows; the sum must be above 0 "
                           f"and below 1 (the rest trains), e.g. holdout: {{test: 0.2, dev: 0.1}}.")
    if "split" in raw:
        raise TagwiseError(f"{spec_path}: 'holdout' cuts splits from a file that has none, but the spec also sets "
                           f"split: {raw['split']!r}. Fix: drop one of the two (holdout cuts test/dev rows from "
                           f"the train rows; split: puts every row in one split).")
    given = sorted(s for s in files if s not in ("train", "unlabeled"))
    if given:
        raise TagwiseError(f"{spec_path}: 'holdout' cuts test/dev splits, but the source already has split(s) "
                           f"{given}. Fix: drop 'holdout' to keep the file's own splits, or give only the train "
                           f"(and unlabeled) files.")
    return Holdout(test=test, dev=dev, seed=seed)
