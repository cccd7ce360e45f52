"""Property-based fuzz of the spec parser, the readers and the corrections reader (issue 21).

For every generated input, ``add-source`` / ``corrections apply`` ends in success or a one-line
``TagwiseError`` (never another exception), and a failure leaves the store exactly as it was.
The same properties run for minutes, outside the suite, in ``tools/fuzz.py``.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagwise.project import Project
from tagwise.sources.spec import FORMATS, LABEL_FORMATS
from tagwise.types import TagwiseError
from tagwise.workflows.corrections import apply_corrections, undo_corrections

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "goemotions-sample"
NAMES = (SAMPLE / "labels.txt").read_text().split()
ROWS = [line.split("\t") for line in (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()[:30]]
KNOWN = sorted({NAMES[int(k)] for r in ROWS for k in r[1].split(",")})  # the fuzz project's taxonomy
COUNTS: Counter = Counter()  # inputs tried per target, and per target how they ended (tools/fuzz.py reports them)

# -- generated values ---------------------------------------------------------
TRICKY = ["text", "labels", "id", "joy", "anger", "0", "1", ",", "\t", "|", "", " ", "a,b", "café", "cafe\u0301",
          "$x$", "=1+1", "'", '"', "\\", "\x00", "1" * 23, "1.5", "-5", "nan", "true", "null", "data.csv", "..",
          "/", "~"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=6), st.sampled_from(TRICKY))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=4) | st.sampled_from(TRICKY), inner, max_size=3),
                      max_leaves=8)


def maybe(strategy):
    """A plausible value most of the time, any value sometimes."""
    return st.one_of(strategy, strategy, values)


LABEL_NAMES = st.sampled_from(["joy", "anger", "café", "cafe\u0301", "", " ", "$x$", "a,b", "0", "1"])
label_specs = st.fixed_dictionaries({}, optional={
    "format": maybe(st.sampled_from(LABEL_FORMATS)),
    "delimiter": maybe(st.sampled_from([",", "|", ";", ""])),
    "names": maybe(st.lists(LABEL_NAMES, max_size=4)),
    "onehot_columns": maybe(st.lists(st.sampled_from(["joy", "anger", "x", 0, 1, 3]), max_size=3)),
    "map": maybe(st.dictionaries(LABEL_NAMES, st.none() | LABEL_NAMES | st.lists(LABEL_NAMES, max_size=2), max_size=2)),
    "id_base": maybe(st.integers(-2, 3)),
})
column_specs = st.fixed_dictionaries({}, optional={
    "text": maybe(st.sampled_from(["text", "body", 0, 1, ["text", "id"]])),
    "labels": maybe(st.sampled_from(["labels", "joy", 1, 2])),
    "id": maybe(st.sampled_from(["id", "text", 2, 7])),
    "language": maybe(st.sampled_from(["lang", "id"])),
})
SPEC_FIELDS = {
    "path": maybe(st.sampled_from(["data.csv", "data.tsv", "data.jsonl", "lines.txt", "nope.csv", ".", "data.csv/x"])),
    "name": maybe(st.text(min_size=1, max_size=8)),
    "format": maybe(st.sampled_from(FORMATS)),
    "header": maybe(st.booleans()),
    "separator": maybe(st.sampled_from([",", "\t", "|", "", ",,"])),
    "quoting": maybe(st.sampled_from(["minimal", "none"])),
    "columns": maybe(column_specs),
    "labels": maybe(label_specs),
    "split": maybe(st.sampled_from(["train", "test", "dev", "unlabeled", "validation", "x"])),
    "language": maybe(st.sampled_from(["en", "de"])),
    "annotator": maybe(st.sampled_from(["crowd", "expert"])),
    "limit": maybe(st.integers(-1, 5)),
    "skip_empty_text": maybe(st.booleans()),
    "text_join": maybe(st.sampled_from([" ", "\n"])),
    "description": maybe(st.text(max_size=10)),
    "bogus": values,
}
# valid specs over the fuzz data files; each input is one of them with 0-3 fields replaced or dropped
VALID_SPECS = [
    {"path": "data.csv", "columns": {"text": "text", "labels": "labels", "id": "id"}, "labels": {"format": "delimited"}},
    {"path": "data.csv", "labels": {"format": "onehot", "onehot_columns": ["joy", "anger"]}},
    {"path": "data.tsv", "header": False, "columns": {"text": 0, "labels": 1, "id": 2}},
    {"path": "data.jsonl", "labels": {"format": "list"}, "columns": {"text": "text", "labels": "labels"}},
    {"splits": {"train": {"text": "lines.txt"}}, "format": "lines", "split": "unlabeled"},
]
_edit = st.one_of(*[st.fixed_dictionaries({k: v}) for k, v in SPEC_FIELDS.items()],
                  st.sampled_from(sorted(SPEC_FIELDS)).map(lambda k: {k: "<drop>"}))


def _apply_edits(base: dict, edits: list[dict]) -> dict:
    spec = json.loads(json.dumps(base))
    for edit in edits:
        for k, v in edit.items():
            if v == "<drop>":
                spec.pop(k, None)
            else:
                spec[k] = v
    return spec


specs = st.builds(_apply_edits, st.sampled_from(VALID_SPECS), st.lists(_edit, max_size=3))

CELL = st.sampled_from(["hello", "joy", "anger", "joy,anger", '"', '"joy', 'a"b', "", " ", "1", "0", "café",
                        "cafe\u0301", "\t", "\n", "\r\n", "x" * 50, "[\"joy\"]", "{}", "null", ",", "|"])
file_texts = st.one_of(
    st.lists(st.lists(CELL, min_size=0, max_size=5), max_size=6).map(
        lambda rows: "text,labels,id,joy,anger\n" + "\n".join(",".join(r) for r in rows) + "\n"),
    st.text(alphabet=st.sampled_from(list('ab,"\t\n\r|\\é{}[]:01 x')), max_size=120),
    st.lists(values, max_size=4).map(lambda rows: "\n".join(json.dumps(r) for r in rows)),
)
file_bytes = st.one_of(file_texts.map(lambda t: t.encode("utf-8")), st.binary(max_size=80))


# -- the store ------------------------------------------------------------------
def store_state(project: Project) -> list:
    conn = sqlite3.connect(project.path / "tagwise.db")
    state = [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608 (fixed table names)
             for t in ("meta", "sources", "examples", "corrections")]
    conn.close()
    return state


def fresh_project(folder: Path) -> Project:
    """A project with one 30-row source of the sample (ids s:1..), its labels by name."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "s.tsv").open("w", encoding="utf-8") as f:
        f.write("text\tlabels\tid\n")
        for text, ids, ex_id in ROWS:
            f.write(f"{text}\t{','.join(NAMES[int(i)] for i in ids.split(','))}\t{ex_id}\n")
    (folder / "s.yaml").write_text("name: s\npath: s.tsv\nformat: tsv\nquoting: none\n"
                                   "columns: {text: text, labels: labels, id: id}\n")
    project = Project.init(folder / "p")
    project.add_source(folder / "s.yaml")
    return project


def _data_files(folder: Path) -> None:
    (folder / "data.csv").write_text("text,labels,id,joy,anger\nhello there,joy,a1,1,0\nsecond,\"joy,anger\",a2,1,1\n"
                                     "third,,a3,,\n", encoding="utf-8")
    (folder / "data.tsv").write_text("hello\tjoy\tb1\nagain\tanger\tb2\n", encoding="utf-8")
    (folder / "data.jsonl").write_text('{"text": "hi", "labels": ["joy"], "id": 1}\n'
                                       '{"text": "yo", "labels": "anger", "id": 2, "joy": 1, "anger": 0}\n',
                                       encoding="utf-8")
    (folder / "lines.txt").write_text("one\ntwo\n", encoding="utf-8")


def expect_clean(project: Project, action, target: str) -> object:
    """Run ``action``: success, or a TagwiseError with the store unchanged. Anything else fails."""
    before = store_state(project)
    try:
        result = action()
        COUNTS[f"{target}:ok"] += 1
        return result
    except TagwiseError as exc:
        COUNTS[f"{target}:error"] += 1
        assert "\n" not in str(exc).strip() or "Traceback" not in str(exc)
        assert store_state(project) == before, f"the store changed although the command failed: {exc}"
        return exc


# -- the properties --------------------------------------------------------------
def check_spec(project: Project, spec: dict) -> None:
    COUNTS["spec"] += 1
    folder = Path(tempfile.mkdtemp(prefix="spec-", dir=project.path.parent))
    if isinstance(spec, dict) and "name" not in spec:
        spec = {**spec, "name": f"fuzz{COUNTS['spec']}"}  # not "spec" (the file's stem) every time
    try:
        _data_files(folder)
        try:
            text = yaml.safe_dump(spec, allow_unicode=True)
        except yaml.YAMLError:
            return
        (folder / "spec.yaml").write_text(text, encoding="utf-8")
        expect_clean(project, lambda: project.add_source(folder / "spec.yaml"), "spec")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_spec_text(project: Project, text: str) -> None:
    COUNTS["spec_text"] += 1
    folder = Path(tempfile.mkdtemp(prefix="spectext-", dir=project.path.parent))
    try:
        _data_files(folder)
        (folder / "spec.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        expect_clean(project, lambda: project.add_source(folder / "spec.yaml"), "spec_text")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_reader(project: Project, fmt: str, header: bool, quoting: str, data: bytes, label_format: str) -> None:
    COUNTS["reader"] += 1
    folder = Path(tempfile.mkdtemp(prefix="reader-", dir=project.path.parent))
    try:
        ext = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl"}[fmt]
        (folder / f"data.{ext}").write_bytes(data)
        cols = "{text: text, labels: labels, id: id}" if header or fmt == "jsonl" else "{text: 0, labels: 1}"
        labels = ("{format: onehot, onehot_columns: [joy, anger]}" if label_format == "onehot" and header
                  else f"{{format: {label_format}}}")
        (folder / "spec.yaml").write_text(
            f"name: r{COUNTS['reader']}\npath: data.{ext}\nformat: {fmt}\nheader: {str(header).lower()}\n"
            f"quoting: {quoting}\ncolumns: {cols}\nlabels: {labels}\n", encoding="utf-8")
        expect_clean(project, lambda: project.add_source(folder / "spec.yaml"), "reader")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


IDS = st.one_of(st.integers(-1, 40), st.sampled_from(["abc", "1.5", "1" * 23, "", " 3", "03", "+1"]), values)
ROW_FIELDS = {
    "store_id": IDS,
    "source": maybe(st.sampled_from(["s", "x", ""])),
    "example_id": maybe(st.sampled_from([r[2] for r in ROWS[:5]] + ["nope", ""])),
    "suggested_labels": st.one_of(st.lists(st.sampled_from(NAMES[:4] + ["nope", "", "cafe\u0301"]), max_size=3),
                                  st.sampled_from(["joy", '[["joy"]]', "[]", "", "=cmd|x"]), values),
    "given_labels": maybe(st.lists(st.sampled_from(NAMES[:4]), max_size=2)),
}


def _valid_row(i: int, suggested: list[str]) -> dict:
    """The row an audit would write for the fuzz project's example ``i`` (store id i + 1)."""
    return {"store_id": i + 1, "source": "s", "example_id": ROWS[i][2], "suggested_labels": suggested,
            "given_labels": [NAMES[int(k)] for k in ROWS[i][1].split(",")]}


# a valid row, or one with a field replaced or dropped
issue_rows = st.builds(_apply_edits, st.builds(_valid_row, st.integers(0, len(ROWS) - 1),
                                               st.lists(st.sampled_from(KNOWN), max_size=3, unique=True)),
                       st.lists(st.one_of(*[st.fixed_dictionaries({k: v}) for k, v in ROW_FIELDS.items()],
                                          st.sampled_from(sorted(ROW_FIELDS)).map(lambda k: {k: "<drop>"})),
                                max_size=1))


def _row_key(row) -> str:
    return repr(row.get("store_id")) if isinstance(row, dict) else repr(row)


# mostly one row per example (two rows for one example are tried, but not in most files)
issue_files = st.one_of(st.lists(st.one_of(issue_rows, issue_rows, issue_rows, values), max_size=3, unique_by=_row_key),
                        st.lists(st.one_of(issue_rows, values), max_size=3))


def _as_csv(rows: list) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["store_id", "source", "example_id", "given_labels", "suggested_labels"],
                       extrasaction="ignore")
    w.writeheader()
    for r in rows:
        if isinstance(r, dict):
            w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    return buf.getvalue()


def check_corrections(project: Project, rows: list, fmt: str, raw: bytes | None) -> None:
    COUNTS["corrections"] += 1
    folder = Path(tempfile.mkdtemp(prefix="fix-", dir=project.path.parent))
    try:
        path = folder / f"fix.{fmt}"
        if raw is not None:
            path.write_bytes(raw)
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        else:
            path.write_text(_as_csv(rows), encoding="utf-8")
        result = expect_clean(project, lambda: apply_corrections(project, path), "corrections")
        if isinstance(result, dict) and result["changed"]:
            undo_corrections(project)  # back to the base labels for the next input
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- pytest entry points (bounded: the whole module stays well under a minute) ------------
FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = fresh_project(tmp_path_factory.mktemp("fuzz"))
    yield p
    p.close()


def test_spec_parser_fuzz(project):
    FAST(given(specs)(lambda spec: check_spec(project, spec)))()


def test_spec_yaml_text_fuzz(project):
    yaml_text = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(
        ["path: data.csv\n", "name: a\n", "x: &a [*a]\n", "a: &a [1,1]\nb: &b [*a,*a]\nc: [*b,*b]\n",
         "labels: {format: onehot}\n", "columns: {text: {a: 1}}\n", "splits: {train: data.csv}\n", "- 1\n",
         "!!python/object:os.system\n", "limit: true\n", "language: [en, de]\n"]), max_size=5).map("".join))
    FAST(given(yaml_text)(lambda text: check_spec_text(project, text)))()


def test_readers_fuzz(project):
    FAST(given(st.sampled_from(["csv", "tsv", "jsonl"]), st.booleans(), st.sampled_from(["minimal", "none"]),
               file_bytes, st.sampled_from(["delimited", "list", "single", "onehot"]))(
        lambda fmt, header, quoting, data, label_format: check_reader(project, fmt, header, quoting, data,
                                                                     label_format)))()


def test_corrections_reader_fuzz(project):
    FAST(given(issue_files,
               st.sampled_from(["jsonl", "csv"]), st.one_of(st.none(), st.none(), st.none(), file_bytes))(
        lambda rows, fmt, raw: check_corrections(project, rows, fmt, raw)))()
