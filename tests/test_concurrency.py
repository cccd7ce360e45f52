"""Two commands at once must lose nothing (issue 21, cases 1-4).

Each test forks real ``tagwise`` command lines (``tagwise.cli.main``) that start together behind a
barrier, on small slices of the bundled GoEmotions sample, and repeats the race a few times: before
the fix every one of them lost data in most rounds (taxonomy labels, a model, the undo chain).
"""
from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import sqlite3
import time
import traceback
from pathlib import Path

import pytest

from tagwise.project import Project

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "goemotions-sample"
NAMES = (SAMPLE / "labels.txt").read_text().split()
CTX = multiprocessing.get_context("fork")


def _sample_rows(n: int, offset: int = 0) -> list[tuple[str, list[str], str]]:
    """(text, label names, id) of ``n`` rows of the sample's train file."""
    rows = []
    for line in (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()[offset:offset + n]:
        text, ids, ex_id = line.split("\t")
        rows.append((text, [NAMES[int(i)] for i in ids.split(",")], ex_id))
    return rows


def _write_source(folder: Path, name: str, rows, prefix: str = "") -> Path:
    """A TSV file + spec of ``rows``; label names get ``prefix`` (two sources with disjoint label sets)."""
    with (folder / f"{name}.tsv").open("w", encoding="utf-8") as f:
        f.write("text\tlabels\tid\n")
        for text, labels, ex_id in rows:
            f.write(f"{text}\t{','.join(prefix + n for n in labels)}\t{ex_id}\n")
    spec = folder / f"{name}.yaml"
    spec.write_text(f"name: {name}\npath: {name}.tsv\nformat: tsv\nquoting: none\n"
                    f"columns: {{text: text, labels: labels, id: id}}\nlabels: {{format: delimited}}\n")
    return spec


def _child(argv, result_path, barrier) -> None:
    from tagwise.cli import main

    out, err = io.StringIO(), io.StringIO()
    barrier.wait()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
        except BaseException:  # noqa: BLE001  (reported to the parent, which fails the test)
            traceback.print_exc()
            rc = 99
    Path(result_path).write_text(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}))
    os._exit(0)


def race(tmp: Path, *argvs) -> list[dict]:
    """Run the command lines at once (forked, released by one barrier); their exit codes and output."""
    barrier = CTX.Barrier(len(argvs))
    procs, paths = [], []
    for i, argv in enumerate(argvs):
        paths.append(tmp / f"result-{i}-{time.monotonic_ns()}.json")
        procs.append(CTX.Process(target=_child, args=(argv, paths[-1], barrier)))
        procs[-1].start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"child died with {p.exitcode}"
    results = [json.loads(p.read_text()) for p in paths]
    for r in results:
        assert r["rc"] != 99 and "Traceback" not in r["err"], r["err"]
    return results


def _init(path: Path, sources=()) -> Path:
    Project.init(path).close()
    project = Project.open(path)
    for spec in sources:
        project.add_source(spec)
    project.close()
    return path


def _db(project: Path) -> sqlite3.Connection:
    return sqlite3.connect(project / "tagwise.db")


def test_two_add_source_at_once_keep_every_label(tmp_path):
    a = _write_source(tmp_path, "a", _sample_rows(600), prefix="a_")
    b = _write_source(tmp_path, "b", _sample_rows(600, offset=600), prefix="b_")
    want = {"a_" + n for _, ls, _ in _sample_rows(600) for n in ls} | \
           {"b_" + n for _, ls, _ in _sample_rows(600, offset=600) for n in ls}
    for round_ in range(4):
        project = _init(tmp_path / f"p{round_}")
        results = race(tmp_path, ["add-source", project, a], ["add-source", project, b])
        assert [r["rc"] for r in results] == [0, 0], results
        p = Project.open(project)
        try:
            assert set(p.labels.names) == want, f"round {round_}: lost {sorted(want - set(p.labels.names))}"
            assert sorted(p.store.source_names()) == ["a", "b"]
        finally:
            p.close()


def test_two_add_source_of_one_name_at_once(tmp_path):
    """The loser gets the one-line 'already exists' error, not sqlite3.IntegrityError."""
    a = _write_source(tmp_path, "a", _sample_rows(300))
    for round_ in range(3):
        project = _init(tmp_path / f"p{round_}")
        results = race(tmp_path, ["add-source", project, a], ["add-source", project, a])
        assert sorted(r["rc"] for r in results) == [0, 2], results
        assert "already exists" in "".join(r["err"] for r in results)
        with _db(project) as conn:
            assert conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 300


@pytest.fixture(scope="module")
def trained_base(tmp_path_factory):
    """A project with one small source, embedded with the hashing encoder."""
    tmp = tmp_path_factory.mktemp("train")
    project = _init(tmp / "base", [_write_source(tmp, "s", _sample_rows(150))])
    p = Project.open(project)
    p.embed("hashing:256", progress=False)
    p.close()
    return project


def test_two_train_at_once_keep_both_models(trained_base, tmp_path):
    import shutil

    for round_ in range(3):
        project = tmp_path / f"p{round_}"
        shutil.copytree(trained_base, project)
        argv = ["train", project, "--model", "linear", "--encoder", "hashing:256", "--params",
                '{"cv": 2, "C_grid": [1.0], "max_iter": 30}']
        results = race(tmp_path, argv, argv)
        assert [r["rc"] for r in results] == [0, 0], results
        names = [r["out"].split("trained ", 1)[1].split()[0] for r in results]
        assert names[0] != names[1], f"round {round_}: both trains saved model {names[0]}"
        models = project / "models"
        assert all((models / n / "model.json").exists() for n in names)
        assert (models / "CURRENT").read_text().strip() in names
        assert not [p.name for p in models.iterdir() if p.name.startswith(".")], "a build folder was left"


def _issue_file(path: Path, store_id: int, example_id: str, source: str, given, suggested) -> Path:
    row = {"store_id": store_id, "example_id": example_id, "source": source, "suggested_labels": suggested}
    if given is not None:  # optional: a reviewer may drop the column
        row["given_labels"] = given
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


def _chain(project: Path, store_id: int) -> tuple[list, str | None]:
    """(active corrections of one example as (old, new) in order, its current labels JSON)."""
    with _db(project) as conn:
        rows = conn.execute("SELECT old_labels, new_labels FROM corrections WHERE example=? AND undone_at IS NULL "
                            "ORDER BY id", (store_id,)).fetchall()
        current = conn.execute("SELECT labels FROM examples WHERE id=?", (store_id,)).fetchone()[0]
    return rows, current


def test_two_corrections_apply_at_once_keep_the_undo_chain(tmp_path):
    rows = _sample_rows(200)
    spec = _write_source(tmp_path, "s", rows)
    text, given, ex_id = rows[0]
    for round_ in range(4):
        project = _init(tmp_path / f"p{round_}", [spec])
        with _db(project) as conn:
            store_id, original = conn.execute("SELECT id, labels FROM examples WHERE example_id=?", (ex_id,)).fetchone()
        f1 = _issue_file(tmp_path / f"one-{round_}.jsonl", store_id, ex_id, "s", given, ["anger"])
        f2 = _issue_file(tmp_path / f"two-{round_}.jsonl", store_id, ex_id, "s", given, ["joy"])
        results = race(tmp_path, ["corrections", project, "apply", f1], ["corrections", project, "apply", f2])
        assert 0 in [r["rc"] for r in results], results
        chain, current = _chain(project, store_id)
        # every active batch starts from the labels the previous one left: undo walks back exactly
        olds = [original] + [new for _, new in chain[:-1]]
        assert [old for old, _ in chain] == olds, f"round {round_}: broken undo chain {chain}"
        assert current == chain[-1][1]
        for r in results:
            if r["rc"] != 0:
                assert "changed" in r["err"] or "now has labels" in r["err"], r["err"]


def test_stale_issues_file_after_replace_is_refused(tmp_path):
    rows = _sample_rows(50)
    spec = _write_source(tmp_path, "s", rows)
    project = _init(tmp_path / "p", [spec])
    with _db(project) as conn:
        store_id = conn.execute("SELECT id FROM examples WHERE example_id=?", (rows[0][2],)).fetchone()[0]
    known = sorted({n for _, labels, _ in rows for n in labels} - set(rows[0][1]))
    issues = _issue_file(tmp_path / "issues.jsonl", store_id, rows[0][2], "s", None, known[:1])
    # the source is re-ingested in another order: store ids are reused for other examples
    _write_source(tmp_path, "s", rows[::-1])
    from tagwise.cli import main

    assert main(["add-source", str(project), str(spec), "--replace"]) == 0
    with _db(project) as conn:
        before = conn.execute("SELECT id, labels FROM examples ORDER BY id").fetchall()
        assert conn.execute("SELECT example_id FROM examples WHERE id=?", (store_id,)).fetchone()[0] != rows[0][2]
    assert main(["corrections", str(project), "apply", str(issues)]) == 2  # not a silent change of another example
    with _db(project) as conn:
        assert conn.execute("SELECT id, labels FROM examples ORDER BY id").fetchall() == before
    issues.write_text(issues.read_text().replace(f'"store_id": {store_id}, ', ""))  # by source + example_id: fine
    assert main(["corrections", str(project), "apply", str(issues)]) == 0
    with _db(project) as conn:
        assert json.loads(conn.execute("SELECT labels FROM examples WHERE example_id=?",
                                       (rows[0][2],)).fetchone()[0]) == known[:1]


def test_long_reader_beside_writers(tmp_path):
    """A reader holding a snapshot open neither blocks the writers nor sees half of their work."""
    rows = _sample_rows(200)
    project = _init(tmp_path / "p", [_write_source(tmp_path, "s", rows)])
    b = _write_source(tmp_path, "b", _sample_rows(200, offset=200), prefix="b_")
    issues = _issue_file(tmp_path / "fix.jsonl", 1, rows[0][2], "s", rows[0][1], ["joy"])
    reader = _db(project)
    reader.execute("BEGIN")
    n_before = reader.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
    t0 = time.perf_counter()
    results = race(tmp_path, ["add-source", project, b], ["corrections", project, "apply", issues])
    assert [r["rc"] for r in results] == [0, 0], results
    assert time.perf_counter() - t0 < 30
    assert reader.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == n_before  # its snapshot holds
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == n_before + 200
    reader.close()
