"""Annotations (issue 17): every label a person gives is kept with its provenance, one rule decides the
training label, and `tagwise labels import` round-trips a Label Studio export of a suggest batch."""
import json
import threading

import numpy as np
import pytest

from serve_data import make_project
from tagwise.cli import main
from tagwise.learn.multisource import partial_targets
from tagwise.project import Project
from tagwise.types import TagwiseError
from tagwise.workflows.labels import annotate, export_labels, import_labels, undo_annotation
from tagwise.workflows.suggest import suggest, write_suggestions
from tagwise.workflows.train import training_data


@pytest.fixture()
def project(tmp_path):
    return make_project(tmp_path, n_train=120, n_pool=80, n_dev=40, n_test=40)


def _labels_of(project, store_id):
    ex = project.examples()
    return ex.labels[int(np.flatnonzero(ex.ids == store_id)[0])]


def _pool_ids(project, n):
    return project.examples(split="unlabeled").ids[:n].tolist()


def test_latest_annotation_decides_and_undo_brings_back_the_previous(project):
    sid = int(project.examples(split="train").ids[0])
    stored = _labels_of(project, sid)
    first = annotate(project, sid, ["joy"], "ann")
    second = annotate(project, sid, ["anger", "fear"], "bob")
    assert _labels_of(project, sid) == ["anger", "fear"]
    undo_annotation(project, second)
    assert _labels_of(project, sid) == ["joy"]
    undo_annotation(project, annotator="ann")
    assert _labels_of(project, sid) == stored
    rows = project.store.annotations(include_undone=True)
    assert [r["id"] for r in rows] == [first, second] and all(r["undone_at"] for r in rows)
    with pytest.raises(TagwiseError, match="already undone"):
        undo_annotation(project, first)


def test_two_annotators_at_the_same_moment_both_keep_their_annotation(project):
    sid = int(_pool_ids(project, 1)[0])
    barrier = threading.Barrier(2)
    errors = []

    def label(name, labels):
        p = Project.open(project.path)  # each writer its own connection, as two server threads or processes
        try:
            barrier.wait()
            for _ in range(20):
                annotate(p, sid, labels, name)
        except Exception as exc:  # collected: the assertion below reports it
            errors.append(exc)
        finally:
            p.close()

    threads = [threading.Thread(target=label, args=("ann", ["joy"])),
               threading.Thread(target=label, args=("bob", ["sadness"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = project.store.annotations(examples=[sid])
    assert sorted({r["annotator"] for r in rows}) == ["ann", "bob"] and len(rows) == 40
    assert _labels_of(project, sid) == rows[-1]["labels"]


def test_an_annotated_pool_example_trains_with_every_label_known(project, tmp_path):
    # a second source that annotates only joy and anger: its own rows know only those two labels
    (tmp_path / "mini.tsv").write_text("so happy today\tjoy\nfurious about it\tanger\nwhat a day\tjoy,anger\n"
                                       "thank you so much\t\n", encoding="utf-8")
    (tmp_path / "mini.yaml").write_text("name: mini\npath: mini.tsv\nsplit: train\nformat: tsv\nheader: false\n"
                                        "quoting: none\ncolumns: {text: 0, labels: 1}\n"
                                        "labels: {format: delimited, delimiter: ','}\nlanguage: en\n")
    project.add_source(tmp_path / "mini.yaml")
    mini = project.examples(source="mini")
    thanks = int(mini.ids[3])
    space = project.labels
    g, j = space.index("gratitude"), space.index("joy")
    _, known = partial_targets(mini, project.taxonomy, space)
    assert not known[3, g] and known[3, j]
    annotate(project, thanks, ["gratitude"], "ann")
    mini = project.examples(source="mini")
    Y, known = partial_targets(mini, project.taxonomy, space)
    assert Y[3, g] == 1 and known[3].all()  # a person answered for the whole taxonomy
    assert not known[0, g]                     # the source's own rows still know only joy/anger
    # a labeled pool row becomes training data; before it was not
    n_before = len(training_data(project, progress=False)[1])
    pool = _pool_ids(project, 2)
    annotate(project, pool[0], ["curiosity"], "ann")
    data, lab, _ = training_data(project, progress=False)
    assert len(lab) == n_before + 1 and pool[0] in lab.ids.tolist()
    row = lab.ids.tolist().index(pool[0])
    assert data.mask[row].all() and data.Y[row, space.index("curiosity")] == 1
    assert pool[1] not in lab.ids.tolist()


def test_label_studio_round_trip_keeps_provenance(project, tmp_path):
    rows = suggest(project, budget=6)
    tasks_path = write_suggestions(rows, tmp_path / "batch.json", "label-studio", project.labels.names)
    tasks = json.loads(tasks_path.read_text())
    # what Label Studio exports after two people labeled 5 of the 6 tasks (one cancelled its first try)
    chosen = [["joy"], ["anger", "annoyance"], [], ["gratitude"], ["curiosity"]]
    for n, (task, labels) in enumerate(zip(tasks, chosen)):
        task["id"] = 100 + n
        task["annotations"] = ([{"was_cancelled": True, "result": [], "completed_by": 9}] if n == 1 else []) + [
            {"id": n, "completed_by": {"id": 1 + n % 2, "email": f"user{n % 2}@example.org"}, "was_cancelled": False,
             "result": [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": labels}}]}]
    export = tmp_path / "label-studio-export.json"
    export.write_text(json.dumps(tasks))
    r = import_labels(project, export)
    assert r["imported"] == 5 and r["skipped_unannotated"] == 1 and r["format"] == "label-studio"
    for task, labels in zip(tasks, chosen):
        assert _labels_of(project, task["data"]["store_id"]) == labels
    out = export_labels(project, tmp_path / "labels.jsonl")
    by_id = {json.loads(ln)["id"]: json.loads(ln) for ln in (tmp_path / "labels.jsonl").read_text().splitlines()}
    got = by_id[tasks[1]["data"]["store_id"]]
    assert got["labels"] == ["anger", "annoyance"] and got["origin"] == "import:label-studio-export.json"
    assert got["annotator"] == "label-studio:user1@example.org"
    assert out["rows"] == len(project.examples(labeled=True))
    # the exported Label Studio file imports back into the same labels
    export_labels(project, tmp_path / "again.json", fmt="label-studio")
    again = import_labels(project, tmp_path / "again.json")
    assert again["imported"] == out["rows"]
    assert _labels_of(project, tasks[1]["data"]["store_id"]) == ["anger", "annoyance"]


@pytest.mark.parametrize("content, message", [
    ('{"id": 99999999, "labels": ["joy"]}\n', "no example with store id 99999999"),
    ('{"id": 1, "labels": ["joy"]}\n{"id": 2, "labels": ["not-a-label"]}\n', "not in the taxonomy"),
    ('{"id": 1, "labels": ["joy"]}\n{"id": 2, "labels": ["joy"\n', "not valid JSON"),
    ('{"example_id": "no-such-id", "labels": ["joy"]}\n', "matches 0 examples"),
    ('{"id": 1, "labels": "joy"}\n', "must be a list"),
])
def test_a_bad_jsonl_file_is_one_clear_error_and_imports_nothing(project, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TagwiseError, match=message):
        import_labels(project, path)
    assert project.store.annotations(include_undone=True) == []


def test_a_malformed_label_studio_export_imports_nothing(project, tmp_path):
    rows = suggest(project, budget=3)
    tasks = json.loads(write_suggestions(rows, tmp_path / "b.json", "label-studio").read_text())
    for t in tasks:
        t["annotations"] = [{"result": [{"type": "choices", "value": {"choices": ["joy"]}}]}]
    tasks[2]["annotations"][0]["result"][0]["value"]["choices"] = ["joy", "no-such-label"]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    with pytest.raises(TagwiseError, match="task 3.*no-such-label"):
        import_labels(project, tmp_path / "export.json")
    (tmp_path / "cut.json").write_text(json.dumps(tasks)[:-20])
    with pytest.raises(TagwiseError, match="malformed JSON"):
        import_labels(project, tmp_path / "cut.json")
    assert project.store.annotations(include_undone=True) == []


def test_cli_imports_csv_and_exports(project, tmp_path, capsys):
    ex = project.examples(split="unlabeled")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("example_id,source,labels\n"
                        f"{ex.example_ids[0]},{ex.sources[0]},\"joy,love\"\n"
                        f"{ex.example_ids[1]},{ex.sources[1]},\"[\"\"fear\"\"]\"\n")
    assert main(["labels", str(project.path), "import", str(csv_path), "--annotator", "carol"]) == 0
    assert "imported 2 annotations" in capsys.readouterr().out
    assert _labels_of(project, int(ex.ids[0])) == ["joy", "love"]
    assert _labels_of(project, int(ex.ids[1])) == ["fear"]
    out = tmp_path / "out.csv"
    assert main(["labels", str(project.path), "export", "--out", str(out), "--format", "csv"]) == 0
    assert "carol" in out.read_text() and "import:labels.csv" in out.read_text()
    assert main(["labels", str(project.path), "import", str(tmp_path / "missing.jsonl")]) == 2


def test_the_demo_sample_opens_the_label_queue_with_work(tmp_path, monkeypatch):
    """`make demo` adds the sample's unlabeled pool, so the label queue `serve` opens on has examples to label."""
    from conftest import SAMPLE
    from tagwise.workflows.queue import label_queue

    monkeypatch.setenv("TAGWISE_CACHE_DIR", str(tmp_path / "cache"))
    project = Project.init(tmp_path / "demo")
    project.store.set_meta("encoder", "hashing")  # the queue's logic, not the encoder, is under test
    project.add_source(SAMPLE / "spec.yaml")
    pool = project.add_source(SAMPLE / "unlabeled.yaml")
    assert pool["splits"] == {"unlabeled": 500}
    queue = label_queue(project, limit=20)
    assert len(queue["items"]) == 20 and queue["total"] > 0 and queue["done"] == 0
    assert {it["source"] for it in queue["items"]} == {"goemotions-pool"}
