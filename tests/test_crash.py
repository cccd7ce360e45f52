"""kill -9 at chosen points of each write path leaves the project intact, and the next command
removes what the killed one left behind (issue 21).

A forked child runs a real ``tagwise`` command line with one kill point wired in: the process
SIGKILLs itself there (inside the write transaction before COMMIT, between a model's arrays and its
model.json, before ``models/CURRENT`` moves, after a corrections batch commits). The parent then checks
the store against its state before the command and runs the next command.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import pytest

from test_concurrency import _init, _issue_file, _sample_rows, _write_source
from tagwise.cli import main
from tagwise.project import Project

CTX = multiprocessing.get_context("fork")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _child(point: str, argv) -> None:
    import tagwise.learn.persist as persist
    from tagwise.store import Store

    if point == "before-commit":  # every statement of the write transaction ran; COMMIT did not
        opened = Store.transaction

        @contextmanager
        def dying(self):
            with opened(self) as conn:
                yield conn
                _die()
        Store.transaction = dying
    elif point == "model-arrays-written":  # the build folder holds the .npy files but no model.json
        persist.atomic_write_json = lambda *a, **k: _die()
    elif point == "before-current":  # the new model folder is in place; CURRENT still names the old one
        Project.set_current_model = lambda *a, **k: _die()
    elif point == "after-commit-before-run-folder":
        Project.new_run = lambda *a, **k: _die()
    os.environ["TQDM_DISABLE"] = "1"
    rc = main([str(a) for a in argv])
    os._exit(100 + rc)  # not killed: the kill point was never reached


def run_killed(point: str, *argv) -> None:
    proc = CTX.Process(target=_child, args=(point, argv))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL, f"{point}: the command ended with {proc.exitcode}, not at the kill"


def dump(project: Path) -> dict:
    conn = sqlite3.connect(project / "tagwise.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    out = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608 (fixed table names)
           for t in ("meta", "sources", "examples", "corrections")}
    conn.close()
    return out


@pytest.fixture
def project(tmp_path):
    rows = _sample_rows(120)
    return _init(tmp_path / "p", [_write_source(tmp_path, "s", rows)]), rows


def test_add_source_killed_before_commit(project, tmp_path):
    path, _ = project
    before = dump(path)
    b = _write_source(tmp_path, "b", _sample_rows(120, offset=120), prefix="b_")
    run_killed("before-commit", "add-source", path, b)
    assert dump(path) == before
    run_killed("before-commit", "add-source", path, _write_source(tmp_path, "s", _sample_rows(60)), "--replace")
    assert dump(path) == before
    assert main(["add-source", str(path), str(b)]) == 0  # the next writer is not blocked by the dead one
    assert len(dump(path)["examples"]) == 240


def test_train_killed_at_each_point_then_next_train_cleans_up(project):
    path, _ = project
    argv = ["train", path, "--model", "linear", "--encoder", "hashing:128", "--params",
            '{"cv": 2, "C_grid": [1.0], "max_iter": 30}']
    assert main([str(a) for a in argv]) == 0
    models = path / "models"
    first = (models / "CURRENT").read_text().strip()
    run_killed("model-arrays-written", *argv)
    builds = [p for p in models.iterdir() if ".build-" in p.name]
    assert builds and all(not (b / "model.json").exists() for b in builds)
    run_killed("before-current", *argv)
    assert (models / "CURRENT").read_text().strip() == first  # still the complete older model
    assert main(["evaluate", str(path), "--split", "train", "--json"]) == 0
    assert main([str(a) for a in argv]) == 0
    assert not [p.name for p in models.iterdir() if p.name.startswith(".")], "orphans were not removed"
    current = (models / "CURRENT").read_text().strip()
    assert current != first and (models / current / "model.json").exists()


def test_corrections_killed_then_next_apply_and_undo(project, tmp_path):
    path, rows = project
    with sqlite3.connect(path / "tagwise.db") as conn:
        store_id = conn.execute("SELECT id FROM examples WHERE example_id=?", (rows[0][2],)).fetchone()[0]
    fix = _issue_file(tmp_path / "fix.jsonl", store_id, rows[0][2], "s", rows[0][1], ["grief"])
    before = dump(path)
    # a folder left by a killed apply of an older version (it made the folder before committing)
    stale = path / "runs" / "20260101-000000-corrections-deadbeef"
    stale.mkdir(parents=True)
    run_killed("before-commit", "corrections", path, "apply", fix)
    assert dump(path) == before
    run_killed("after-commit-before-run-folder", "corrections", path, "apply", fix)
    after = dump(path)
    assert json.loads(after["examples"][store_id - 1][-1]) == ["grief"] and len(after["corrections"]) == 1
    assert main(["corrections", str(path), "undo"]) == 0  # the committed batch undoes without its folder
    assert dump(path)["examples"] == before["examples"]
    assert not stale.exists(), "the orphan corrections folder was not removed"
    assert main(["corrections", str(path), "apply", str(fix)]) == 0
    batches = [p.name for p in (path / "runs").iterdir() if "-corrections-" in p.name]
    assert len(batches) == 1
    run_killed("before-commit", "corrections", path, "undo")
    assert json.loads(dump(path)["examples"][store_id - 1][-1]) == ["grief"]
