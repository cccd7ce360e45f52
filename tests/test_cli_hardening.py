"""The CLI findings of issue 28 (each failed on the code before the fix) and the one CLI grammar of issue 27 §4:
formula-safe CSV export, idempotent `labels import` (also twice at once, and on a store made before the
import key), one clear error instead of a traceback for a folder to import, a bad --port, a lone surrogate
in a source or a predict file and a bad --taxonomy at init, and a per-text cap before every encoder."""
from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tagwise._io import restore_formula
from tagwise.cli import build_parser, main, normalize_argv
from tagwise.encoders import embed_texts, get_encoder
from tagwise.encoders.base import max_chars
from tagwise.project import Project
from tagwise.types import TagwiseError
from tagwise.workflows.labels import export_labels, import_labels
from test_concurrency import _init, _sample_rows, _write_source, race

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+1", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR",
            "'quoted"]


def _cli(capsys, *args) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr); a traceback fails the test."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture()
def small(tmp_path):
    """A project of 40 sample rows (labels by name), plus the rows written to ``rows.tsv``."""
    spec = _write_source(tmp_path, "s", _sample_rows(40))
    return Project.open(_init(tmp_path / "p", [spec]))


def _answers(project: Project, path: Path, n: int = 20, annotator: str = "ann") -> Path:
    """A JSONL labels file naming ``n`` examples by store id, two labels each."""
    names = list(project.labels.names)
    ids = project.examples().ids[:n].tolist()
    path.write_text("".join(json.dumps({"id": i, "labels": [names[k % len(names)], names[(k + 3) % len(names)]],
                                        "annotator": annotator}) + "\n" for k, i in enumerate(ids)))
    return path


def _n_active(project_path: Path) -> int:
    with sqlite3.connect(project_path / "tagwise.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM annotations WHERE undone_at IS NULL").fetchone()[0]


# -- labels export --format csv -----------------------------------------------------------------------
def test_labels_csv_export_neutralises_formula_cells_and_keeps_the_text(tmp_path):
    rows = [{"text": t, "labels": ["joy"]} for t in FORMULAS] + [{"text": "plain", "labels": ["anger"]}]
    (tmp_path / "f.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "f.yaml").write_text("name: f\npath: f.jsonl\ncolumns: {text: text, labels: labels}\n"
                                     "labels: {format: list}\n")
    project = Project.init(tmp_path / "p")
    project.add_source(tmp_path / "f.yaml")
    ids = project.examples().ids.tolist()
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": ids[-1], "labels": ["joy"], "annotator": "=cmd|' /C calc'!A0"})
                                      + "\n")
    import_labels(project, tmp_path / "a.jsonl")
    export_labels(project, tmp_path / "out.csv", fmt="csv")
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    cells = [v for r in got for v in r.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    stored = list(project.examples().texts)  # (ingest strips the tab and the carriage return)
    assert sorted(restore_formula(r["text"]) for r in got) == sorted(stored) and "'quoted" in stored
    assert {restore_formula(r["annotator"]) for r in got} >= {"=cmd|' /C calc'!A0"}
    # the exported CSV imports back with the exact annotator name, and a second time adds nothing
    first = import_labels(project, tmp_path / "out.csv")
    assert first["imported"] == len(got) - 1 and first["already_stored"] == 1
    assert import_labels(project, tmp_path / "out.csv")["imported"] == 0


# -- labels import is idempotent ----------------------------------------------------------------------
def test_importing_the_same_judgements_again_adds_nothing_and_says_so(small, tmp_path, capsys):
    path = _answers(small, tmp_path / "answers.jsonl")
    first = import_labels(small, path)
    assert first["imported"] == 20 and first["already_stored"] == 0
    assert main(["labels", "import", str(small.path), str(path)]) == 0
    assert "0 new, 20 already stored" in capsys.readouterr().out
    # the same judgements from another file, labels in another order: still the same judgements
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    (tmp_path / "copy.jsonl").write_text("".join(json.dumps({**r, "labels": r["labels"][::-1]}) + "\n" for r in rows))
    assert import_labels(small, tmp_path / "copy.jsonl")["imported"] == 0
    assert _n_active(small.path) == 20
    # another annotator's identical labels, or changed labels, are new judgements
    other = _answers(small, tmp_path / "other.jsonl", n=5, annotator="bob")
    assert import_labels(small, other)["imported"] == 5
    rows[0]["labels"] = rows[0]["labels"][:1]
    (tmp_path / "changed.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert import_labels(small, tmp_path / "changed.jsonl")["imported"] == 1
    assert _n_active(small.path) == 26


def test_two_imports_of_one_file_at_once_store_it_once(tmp_path):
    spec = _write_source(tmp_path, "s", _sample_rows(300))
    for round_ in range(3):
        project = _init(tmp_path / f"p{round_}", [spec])
        p = Project.open(project)
        path = _answers(p, tmp_path / f"answers{round_}.jsonl", n=300)
        p.close()
        results = race(tmp_path, ["labels", "import", project, path], ["labels", project, "import", path])
        assert [r["rc"] for r in results] == [0, 0], results
        assert _n_active(project) == 300, f"round {round_}: {_n_active(project)} annotations stored"
        outs = sorted(r["out"] for r in results)
        assert "0 new, 300 already stored" in outs[0] and "300 new, 0 already stored" in outs[1], outs


def test_a_store_from_before_the_import_key_is_migrated(small, tmp_path):
    path = _answers(small, tmp_path / "answers.jsonl", n=10)
    import_labels(small, path)
    small.close()
    # the store as an earlier version left it: no key column, and the file imported twice
    with sqlite3.connect(small.path / "tagwise.db") as conn:
        conn.execute("DROP INDEX annotations_import_key")
        conn.execute("ALTER TABLE annotations DROP COLUMN content")
        conn.execute("INSERT INTO annotations(example, labels, annotator, origin, created_at) "
                     "SELECT example, labels, annotator, origin, created_at FROM annotations")
    assert _n_active(small.path) == 20
    project = Project.open(small.path)
    assert _n_active(small.path) == 10  # the second copies are marked undone, nothing is deleted
    assert len(project.store.annotations(include_undone=True)) == 20
    assert project.store.get_meta("migrations")["annotations_import_key"]["double_imports_undone"] == 10
    assert import_labels(project, path)["imported"] == 0
    Project.open(small.path).close()  # opening a migrated store again changes nothing
    assert _n_active(small.path) == 10


# -- one clear error, not a traceback ------------------------------------------------------------------
def test_a_folder_to_import_and_a_bad_port_are_one_clear_error(small, tmp_path, capsys):
    rc, _, err = _cli(capsys, "labels", "import", small.path, tmp_path)
    assert rc == 2 and err.startswith("tagwise: error:") and "is a folder" in err, err
    for port in ("99999", "-1", "http"):
        rc, _, err = _cli(capsys, "serve", small.path, "--port", port)
        assert rc == 2 and "argument --port" in err and "0 to 65535" in err, err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        rc, _, err = _cli(capsys, "serve", small.path, "--port", taken.getsockname()[1])
    assert rc == 2 and err.startswith("tagwise: error: cannot listen on 127.0.0.1:") and "--port" in err, err


@pytest.mark.parametrize("where", ["text", "id", "label"])
def test_a_lone_surrogate_in_a_source_names_the_file_and_row(tmp_path, where, capsys):
    rows = [{"id": "a", "text": "fine", "labels": ["joy"]}, {"id": "b", "text": "also fine", "labels": ["anger"]}]
    rows[1][where if where != "label" else "labels"] = ["jo\ud800y"] if where == "label" else "bad \ud800 here"
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # json escapes it as \ud800
    (tmp_path / "s.yaml").write_text("name: s\npath: s.jsonl\ncolumns: {text: text, labels: labels, id: id}\n"
                                     "labels: {format: list}\n")
    project = Project.init(tmp_path / "p")
    with pytest.raises(TagwiseError, match=r"s\.jsonl: row 2: .*lone surrogate"):
        project.add_source(tmp_path / "s.yaml")
    assert project.store.source_names() == []
    rc, _, err = _cli(capsys, "add-source", project.path, tmp_path / "s.yaml")
    assert rc == 2 and err.startswith("tagwise: error:") and "row 2" in err


def test_a_lone_surrogate_in_a_per_annotator_source_names_the_file_and_row(tmp_path):
    rows = [{"id": "1", "text": "fine", "a1": "joy", "a2": "joy"}, {"id": "2", "text": "bad \ud800", "a1": "anger",
                                                                      "a2": ""}]
    (tmp_path / "w.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "w.yaml").write_text("name: w\npath: w.jsonl\ncolumns: {text: text, id: id}\n"
                                     "labels: {format: delimited, annotator_columns: [a1, a2]}\n")
    project = Project.init(tmp_path / "p")
    with pytest.raises(TagwiseError, match=r"w\.jsonl: row 2: text: .*lone surrogate"):
        project.add_source(tmp_path / "w.yaml")
    assert project.store.source_names() == [] and project.store.annotations(include_undone=True) == []


def test_a_lone_surrogate_in_a_predict_file_names_the_file_and_row(tmp_path, capsys):
    from tagwise.workflows.predict import predict_file, predict_texts
    from tagwise.workflows.train import train

    project = Project.open(_init(tmp_path / "p", [_write_source(tmp_path, "s", _sample_rows(80))]))
    project.embed("hashing:64", progress=False)
    train(project, mode="supervised", params={"cv": 2, "C_grid": [1.0]}, progress=False)
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": "x \udc00 y"}) + "\n")
    with pytest.raises(TagwiseError, match=r"in\.jsonl: row 2: .*lone surrogate"):
        predict_file(project, tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(TagwiseError, match="text 1: .*lone surrogate"):
        predict_texts(project, ["fine", "x \ud800"])
    rc, _, err = _cli(capsys, "predict", project.path, tmp_path / "in.jsonl", "--out", tmp_path / "out.jsonl")
    last = err.strip().splitlines()[-1]  # (after the progress bar)
    assert rc == 2 and last.startswith("tagwise: error:") and "row 2" in last


def test_init_with_a_bad_taxonomy_leaves_no_project_behind(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("labels: [\n")
    (tmp_path / "good.yaml").write_text("labels: [joy, anger]\n")
    for bad in ("bad.yaml", "missing.yaml"):
        rc, _, err = _cli(capsys, "init", tmp_path / "proj", "--taxonomy", tmp_path / bad)
        assert rc == 2 and err.startswith("tagwise: error:"), err
        assert not (tmp_path / "proj").exists()
    rc, _, err = _cli(capsys, "init", tmp_path / "proj", "--taxonomy", tmp_path / "good.yaml")
    assert rc == 0, err
    assert list(Project.open(tmp_path / "proj").labels.names) == ["joy", "anger"]


# -- a per-text cap before the encoder -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hashing:64", "use"])
def test_a_text_longer_than_the_encoder_reads_is_cut_once_and_keyed_by_what_is_left(tmp_path, name):
    encoder = get_encoder(name)
    limit = max_chars(encoder)
    assert limit is not None
    rng = np.random.default_rng(0)
    words = np.array("the cat sat on a mat while rain fell over quiet hills and rivers".split())
    long_text = " ".join(rng.choice(words, size=limit // 2))  # about 2.5 x the cap
    same_start = long_text[:limit] + " but a different ending"
    texts = [long_text, "short"]
    X, stats = embed_texts(texts, encoder, tmp_path, progress=False)
    assert (stats.n_truncated, stats.max_chars, stats.n_encoded) == (1, limit, 2)
    assert texts[0] == long_text  # the caller's texts stay whole
    np.testing.assert_allclose(X[0], encoder.encode([long_text[:limit]])[0], atol=1e-6)
    np.testing.assert_allclose(encoder.encode([long_text])[0], X[0], atol=1e-6)  # callers that skip the cache
    # the cache is keyed by the content the encoder saw: the same first `limit` characters are one entry
    X2, stats2 = embed_texts([same_start, long_text[:limit]], encoder, tmp_path, progress=False)
    assert stats2.n_encoded == 0 and stats2.n_truncated == 1
    np.testing.assert_allclose(X2, np.vstack([X[0], X[0]]), atol=1e-6)


def test_one_huge_text_embeds_in_bounded_memory(tmp_path):
    """A 5 MB text took 22 GB in `embed` (the default encoder holds every token's activations); under a
    4 GB address-space limit it now embeds, and the CLI says it cut it."""
    (tmp_path / "s.jsonl").write_text(json.dumps({"text": "a long log line " * 320_000, "labels": ["x"]}) + "\n"
                                      + json.dumps({"text": "short", "labels": ["y"]}) + "\n")
    (tmp_path / "s.yaml").write_text("name: s\npath: s.jsonl\ncolumns: {text: text, labels: labels}\n"
                                     "labels: {format: list}\n")
    Project.init(tmp_path / "p").add_source(tmp_path / "s.yaml")
    limited = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
               "from tagwise.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "TAGWISE_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", limited, "embed", str(tmp_path / "p")], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "embedded 2 texts" in proc.stdout and "1 text(s) longer than the encoder reads" in proc.stderr


# -- one grammar: tagwise GROUP ACTION PROJECT, the older GROUP PROJECT ACTION still parses -------------------
GROUP_LINES = [
    ("labels", "import", ["answers.jsonl", "--annotator", "carol"]),
    ("labels", "export", ["--out", "l.csv", "--format", "csv"]),
    ("labels", "list", ["--last", "5"]),
    ("labels", "undo", ["7"]),
    ("corrections", "apply", ["issues.csv"]),
    ("corrections", "undo", ["--to", "start"]),
    ("corrections", "list", []),
    ("lf", "apply", ["lfs.yaml", "--skip-failing"]),
    ("lf", "analyze", ["--json"]),
    ("lf", "import", ["wrench/train.json"]),
    ("taxonomy", "show", ["--json"]),
    ("taxonomy", "suggest", ["--top", "2"]),
]


def _parsed(argv):
    ns = vars(build_parser().parse_args(normalize_argv(argv)))
    return {k: v for k, v in ns.items() if k != "handler"}, ns["handler"]


@pytest.mark.parametrize("group, action, rest", GROUP_LINES, ids=[f"{g}-{a}" for g, a, _ in GROUP_LINES])
def test_every_group_takes_action_then_project_and_the_older_order(group, action, rest):
    documented, handler = _parsed([group, action, "myproj", *rest])
    older, older_handler = _parsed([group, "myproj", action, *rest])
    assert documented == older and handler is older_handler
    assert documented["project"] == "myproj"


def test_a_project_named_like_an_action_reads_as_the_documented_order():
    ns, _ = _parsed(["labels", "list", "import"])
    assert ns["project"] == "import" and ns["action"] == "list"


def test_the_normaliser_follows_whatever_order_a_group_declares():
    """A group added by any module (e.g. `users`) gets both orders, whichever its parser declares."""
    parser = argparse.ArgumentParser(prog="tagwise")
    sub = parser.add_subparsers(dest="command", required=True)
    action_first = sub.add_parser("users").add_subparsers(dest="action", required=True)
    add = action_first.add_parser("add")
    add.add_argument("project")
    add.add_argument("name")
    old_style = sub.add_parser("legacy")
    old_style.add_argument("project")
    old_style.add_subparsers(dest="action", required=True).add_parser("list")
    for argv in (["users", "add", "proj", "ann"], ["users", "proj", "add", "ann"]):
        ns = parser.parse_args(normalize_argv(argv, parser))
        assert (ns.action, ns.project, ns.name) == ("add", "proj", "ann")
    for argv in (["legacy", "list", "proj"], ["legacy", "proj", "list"]):
        ns = parser.parse_args(normalize_argv(argv, parser))
        assert (ns.action, ns.project) == ("list", "proj")


@pytest.mark.parametrize("group, action, rest", GROUP_LINES, ids=[f"{g}-{a}" for g, a, _ in GROUP_LINES])
def test_help_shows_the_documented_order(group, action, rest, capsys):
    with pytest.raises(SystemExit):
        main([group, action, "--help"])
    usage = " ".join(capsys.readouterr().out.split("\n\n")[0].split())
    assert usage.startswith(f"usage: tagwise {group} {action} ") and " project" in usage, usage
