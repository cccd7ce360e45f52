"""Regression tests of the issue-21 cases that used to end in a traceback (or pass silently):
encoder names, corrections files, model folders, options, the busy store, the audit CSV's formulas."""
from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tagwise.cli.core import _column, parse_params
from tagwise.encoders import get_encoder
from tagwise.learn.persist import load_model
from tagwise.project import Project
from tagwise.types import TagwiseError
from tagwise.workflows.audit import read_issues, write_issues
from tagwise.workflows.corrections import apply_corrections

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "goemotions-sample"
NAMES = (SAMPLE / "labels.txt").read_text().split()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project of 120 sample rows (labels by name) with a small trained linear model."""
    tmp = tmp_path_factory.mktemp("hardening")
    lines = (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()[:120]
    with (tmp / "s.tsv").open("w", encoding="utf-8") as f:
        f.write("text\tlabels\tid\n")
        for line in lines:
            text, ids, ex_id = line.split("\t")
            f.write(f"{text}\t{','.join(NAMES[int(i)] for i in ids.split(','))}\t{ex_id}\n")
    (tmp / "s.yaml").write_text("name: s\npath: s.tsv\nformat: tsv\nquoting: none\n"
                                "columns: {text: text, labels: labels, id: id}\n")
    project = Project.init(tmp / "p")
    project.add_source(tmp / "s.yaml")
    project.embed("hashing:64", progress=False)
    from tagwise.workflows.train import train

    train(project, mode="supervised", params={"cv": 2, "C_grid": [1.0]}, progress=False)
    yield project
    project.close()


@pytest.mark.parametrize("name", ["hashing:0", "hashing:abc", "hashing:-5", "use+", "hashing+hashing", "+hashing"])
def test_bad_encoder_names(name):
    with pytest.raises(TagwiseError, match="encoder"):
        get_encoder(name)


def _state(project: Project):
    conn = sqlite3.connect(project.path / "tagwise.db")
    out = [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("examples", "corrections")]  # noqa: S608
    conn.close()
    return out


@pytest.mark.parametrize("content, suffix, message", [
    ('store_id,source,example_id,suggested_labels\nabc,s,x,"[""joy""]"\n', ".csv", "store_id 'abc'"),
    ('store_id,source,example_id,suggested_labels\n1.5,s,x,"[""joy""]"\n', ".csv", "store_id '1.5'"),
    (f'store_id,source,example_id,suggested_labels\n{"1" * 23},s,x,"[""joy""]"\n', ".csv", "is not a store id"),
    ('store_id,suggested_labels\n1,joy\n', ".csv", "must be a JSON list"),
    ('{"store_id": 1, "suggested_labels": [["joy"]]}\n', ".jsonl", "must be a list of label names"),
    ('{"store_id": 1, "suggested_labels": "joy"}\n', ".jsonl", "must be a list of label names"),
    ('[1, 2]\n', ".jsonl", "expected an object"),
    ('store_id,suggested_labels\n', ".csv", "no rows to apply"),
    ('{"store_id": 1, "suggested_labels": ["joy"]}\n{"store_id": 1, "suggested_labels": ["anger"]}\n', ".jsonl",
     "rows 1 and 2 both correct"),
    (b'store_id,suggested_labels\n1,"[""caf\xe9""]"\n', ".csv", "not UTF-8"),
])
def test_bad_corrections_files_change_nothing(trained, tmp_path, content, suffix, message):
    path = tmp_path / f"fix{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    before = _state(trained)
    with pytest.raises(TagwiseError, match=message.replace("[", r"\[")):
        apply_corrections(trained, path)
    assert _state(trained) == before
    assert not list((trained.path / "runs").glob("*-corrections-*"))


def _model_copy(project: Project, name: str) -> Path:
    current = (project.models_dir / "CURRENT").read_text().strip()
    folder = project.models_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(project.models_dir / current, folder)
    return folder


def _edit(folder: Path, fn) -> None:
    doc = json.loads((folder / "model.json").read_text())
    fn(doc)
    (folder / "model.json").write_text(json.dumps(doc))


def _array(folder: Path) -> Path:
    return folder / f"{json.loads((folder / 'model.json').read_text())['arrays'][0]}.npy"


BROKEN = {
    "class-list": lambda f: _edit(f, lambda d: d.update({"class": [d["class"]]})),
    "no-arrays": lambda f: _edit(f, lambda d: d.pop("arrays")),
    "no-npy": lambda f: _array(f).unlink(),
    "no-labels": lambda f: _edit(f, lambda d: d["info"].pop("labels")),
    "extra-param": lambda f: _edit(f, lambda d: d["meta"]["params"].update({"bogus": 1})),
    "wrong-shape": lambda f: np.save(_array(f), np.zeros(tuple(s + 1 for s in np.load(_array(f)).shape), np.float32)),
    "truncated": lambda f: _array(f).write_bytes(_array(f).read_bytes()[:40]),
    "pickle": lambda f: np.save(_array(f), np.array([{"a": 1}], dtype=object), allow_pickle=True),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_model_folders(trained, kind):
    folder = _model_copy(trained, f"broken-{kind}")
    BROKEN[kind](folder)
    with pytest.raises(TagwiseError, match=str(folder.name)):
        from tagwise.workflows.models import load_project_model

        load_project_model(trained, folder.name)
    if kind != "no-labels":  # label names are a project model's need (workflows.models), not persist's
        with pytest.raises(TagwiseError):
            load_model(folder)


def test_options_that_used_to_trace_back(trained, tmp_path):
    with pytest.raises(TagwiseError, match="not valid JSON"):
        parse_params("{bad")
    with pytest.raises(TagwiseError, match="JSON object"):
        parse_params("[1]")
    with pytest.raises(TagwiseError, match="0-based positions"):
        _column("abc", header=False)
    from tagwise.workflows.audit import audit
    from tagwise.workflows.predict import predict_file
    from tagwise.workflows.train import train

    for folds, k, message in ((0, None, "--folds"), (5, 0, "--k"), (5, -1, "--k")):
        with pytest.raises(TagwiseError, match=message):
            audit(trained, tmp_path / "issues.csv", folds=folds, k=k, progress=False)
    with pytest.raises(TagwiseError, match=r"--params.*'C' head refused|refused a value"):
        train(trained, mode="supervised", params={"C": "abc", "cv": 2}, progress=False)
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": {"a": 1}}\n')
    with pytest.raises(TagwiseError, match="row 2.*not text"):
        predict_file(trained, bad, tmp_path / "out.jsonl")
    with pytest.raises(TagwiseError, match="cannot write here"):
        predict_file(trained, SAMPLE / "test.tsv", bad / "sub" / "out.jsonl", fmt="tsv", header=False, text_column=0)


def test_a_busy_store_waits_then_says_who_holds_it(trained):
    holder = sqlite3.connect(trained.path / "tagwise.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(1.0, lambda: holder.execute("COMMIT")).start()
    t0 = time.perf_counter()
    sid, labels = 1, trained.examples().labels[0]
    assert trained.store.set_labels({sid: labels}, "wait-test") == 1  # waited for the other writer
    assert time.perf_counter() - t0 >= 0.9
    trained.store.undo_batches(lambda names: ["wait-test"], "test")
    holder.execute("BEGIN IMMEDIATE")
    trained.store.conn.execute("PRAGMA busy_timeout=200")
    try:
        with pytest.raises(TagwiseError, match="another tagwise command"):
            trained.store.set_labels({sid: labels}, "blocked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        trained.store.conn.execute(f"PRAGMA busy_timeout={int(60_000)}")


def test_formula_cells_are_neutralised_and_read_back_exactly(tmp_path):
    evil = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "'quoted", "plain"]
    rows = [{"rank": i + 1, "store_id": i + 1, "example_id": t, "source": "s", "split": "train", "text": t,
             "given_labels": ["joy"], "suggested_labels": ["anger"], "label_quality": 0.5, "findings": []}
            for i, t in enumerate(evil)]
    path = write_issues(rows, tmp_path / "issues.csv")
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        cells = [r["text"] for r in csv.DictReader(fh)]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    back = read_issues(path)
    assert [r["text"] for r in back] == evil and [r["example_id"] for r in back] == evil
