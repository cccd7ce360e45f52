"""Wrong values that used to pass silently or end in a traceback get one clear error (issue 21, 5-6)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagwise.encoders import get_encoder
from tagwise.learn.registry import check_params
from tagwise.project import Project
from tagwise.sources import load_spec
from tagwise.types import TagwiseError

CSV = "text,labels,id\nfirst text,joy,1\nsecond text,anger,2\nthird text,joy,3\nfourth text,anger,4\n"


def source(tmp_path: Path, spec: str, files: dict[str, str] | None = None) -> Path:
    for name, content in (files or {"data.csv": CSV}).items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    return tmp_path / "spec.yaml"


BASE = "path: data.csv\ncolumns: {text: text, labels: labels, id: id}\n"


@pytest.mark.parametrize("extra, message", [
    ("language: [en, de]\n", "field 'language'"),
    ("limit: true\n", "'limit' is True"),
    ("labels: {format: delimited, map: {joy: {x: 1}}}\n", "labels/map/joy"),
    ("labels: {format: delimited, map: {joy: '  '}}\n", "empty label name"),
    ("annotator: [a, b]\n", "field 'annotator'"),
    ("separator: [',']\n", "field 'separator'"),
    ("separator: ',,'\n", "one character"),
    ("labels: {format: delimited, id_base: abc}\n", "labels/id_base"),
    ("labels: {format: delimited, names: 5}\n", "labels/names"),
    ("labels: {format: delimited, delimiter: ''}\n", "labels/delimiter"),
    ("header: 'no'\n", "field 'header'"),
    ("labels: {format: onehot, onehot_columns: joy}\n", "onehot_columns"),
])
def test_wrong_spec_field_types(tmp_path, extra, message):
    with pytest.raises(TagwiseError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_spec(source(tmp_path, BASE + extra))


def test_columns_value_that_is_a_mapping(tmp_path):
    with pytest.raises(TagwiseError, match="columns/text"):
        load_spec(source(tmp_path, "path: data.csv\ncolumns: {text: {a: 1}}\n"))


def test_folder_as_spec_and_alias_bomb(tmp_path):
    with pytest.raises(TagwiseError, match="is a folder"):
        load_spec(tmp_path)
    bomb = "path: data.csv\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    with pytest.raises(TagwiseError, match="expands to more than"):
        load_spec(source(tmp_path, bomb))


def test_unbalanced_quote_names_the_line_where_it_opens(tmp_path):
    project = Project.init(tmp_path / "p")
    spec = source(tmp_path, BASE, {"data.csv": 'text,labels,id\nfirst,joy,1\nsecond,anger,"2\nthird,joy,3\n'
                                               'fourth,anger,4\n'})
    with pytest.raises(TagwiseError, match="line 3: malformed row"):
        project.add_source(spec)
    assert len(project.examples()) == 0


def test_empty_label_and_unicode_forms(tmp_path):
    project = Project.init(tmp_path / "p")
    with pytest.raises(TagwiseError, match="empty label name"):
        project.add_source(source(tmp_path, "path: data.jsonl\nlabels: {format: list}\n",
                                  {"data.jsonl": '{"text": "a", "labels": [" ", "joy"]}\n'}))
    project.add_source(source(tmp_path, "path: data.csv\nlabels: {format: delimited, delimiter: '|'}\n",
                              {"data.csv": "text,labels\na,caf\u00e9\nb,cafe\u0301|joy\n"}))
    assert list(project.labels.names) == ["caf\u00e9", "joy"]
    assert [sorted(x) for x in project.examples().labels] == [["caf\u00e9"], ["caf\u00e9", "joy"]]


def test_duplicate_ids_warn_or_follow_the_policy(tmp_path):
    rows = "text,labels,id\na,joy,1\nb,anger,1\nc,joy,2\n"
    spec = source(tmp_path, BASE, {"data.csv": rows})
    project = Project.init(tmp_path / "p")
    with pytest.raises(TagwiseError, match="1 example id"):
        project.add_source(spec, on_duplicate_id="error")
    summary = project.add_source(spec)
    assert (summary["duplicate_ids"], summary["n_examples"]) == (1, 3)
    summary = project.add_source(spec, replace=True, on_duplicate_id="keep-last")
    assert (summary["n_examples"], summary["dropped_duplicates"]) == (2, 1)
    assert sorted(project.examples().texts) == ["b", "c"]
    summary = project.add_source(spec, replace=True, on_duplicate_id="keep-first")
    assert sorted(project.examples().texts) == ["a", "c"]


def test_blank_onehot_cells_are_unknown_not_negative(tmp_path):
    files = {"train.csv": "text,joy,anger\n" + "".join(f"happy {i},1,0\nangry {i},0,1\n" for i in range(10)),
             "test.csv": "text,joy,anger\n" + "".join(f"test {i},,\n" for i in range(4)),
             "mixed.csv": "text,joy,anger\nhalf known,1,\n"}
    spec = source(tmp_path, "splits: {train: train.csv, test: test.csv}\n"
                            "labels: {format: onehot, onehot_columns: [joy, anger]}\n", files)
    project = Project.init(tmp_path / "p")
    project.add_source(spec)
    assert len(project.examples(split="test", labeled=False)) == 4
    assert len(project.examples(split="test", labeled=True)) == 0
    project.embed("hashing:64", progress=False)
    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.train import train

    train(project, mode="supervised", params={"cv": 2, "C_grid": [1.0]}, progress=False)
    with pytest.raises(TagwiseError, match="no labeled examples in split 'test'"):
        evaluate(project, split="test")
    (tmp_path / "spec.yaml").write_text("name: m\npath: mixed.csv\nlabels: {format: onehot, "
                                        "onehot_columns: [joy, anger]}\n")
    with pytest.raises(TagwiseError, match="row 2: one-hot column"):
        project.add_source(tmp_path / "spec.yaml")


def test_header_less_file_with_a_named_column(tmp_path):
    project = Project.init(tmp_path / "p")
    spec = source(tmp_path, "path: data.tsv\nheader: false\ncolumns: {text: 0}\n", {"data.tsv": "hello\tjoy\n"})
    with pytest.raises(TagwiseError, match="no header row"):
        project.add_source(spec)


@pytest.mark.parametrize("name", ["st:/nonexistent", "st:./no-such-folder"])
def test_missing_sentence_transformer_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TagwiseError, match="no such model folder"):
        get_encoder(name)
    assert list(tmp_path.iterdir()) == []


def test_unknown_params_name_the_valid_ones():
    with pytest.raises(TagwiseError, match=r"'CC' is not a parameter of the supervised.*Did you mean 'C'.*C_grid"):
        check_params("linear", {"CC": 1})
    with pytest.raises(TagwiseError, match="prior_strength"):
        check_params("few-shot", {"alpha": 1})
    check_params("semi-supervised", {"method": "graph", "alpha": 0.9})


def test_out_path_that_cannot_be_created(tmp_path):
    from tagwise._io import atomic_write_text

    (tmp_path / "file").write_text("x")
    with pytest.raises(TagwiseError, match="cannot write here"):
        atomic_write_text(tmp_path / "file" / "sub" / "out.jsonl", "x")


def test_nothing_to_change_makes_no_batch(tmp_path):
    from tagwise.workflows.corrections import apply_corrections

    project = Project.init(tmp_path / "p")
    project.add_source(source(tmp_path, BASE))
    fix = tmp_path / "fix.jsonl"
    fix.write_text(json.dumps({"store_id": 1, "source": "spec", "example_id": "1", "suggested_labels": ["joy"]}) + "\n")
    result = apply_corrections(project, fix)
    assert (result["changed"], result["batch"]) == (0, None)
    assert project.store.correction_batches() == [] and not list((project.path / "runs").iterdir())
