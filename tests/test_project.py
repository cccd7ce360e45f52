import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from tagwise.project import Project
from tagwise.types import TagwiseError


def csv_source(tmp_path, name, rows, labels_format="single"):
    (tmp_path / f"{name}.csv").write_text("text,labels\n" + "".join(f"{t},{l}\n" for t, l in rows))
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"name": name, "path": f"{name}.csv", "labels": {"format": labels_format}}))
    return spec


def test_sources_taxonomy_and_provenance(tmp_path):
    project = Project.init(tmp_path / "p")
    project.add_source(csv_source(tmp_path, "a", [("good", "pos"), ("bad", "neg")]))
    project.add_source(csv_source(tmp_path, "b", [("fine", "pos"), ("meh", "neutral")]))
    assert project.labels.names == ("pos", "neg", "neutral")
    ex = project.examples()
    assert list(ex.sources) == ["a", "a", "b", "b"] and list(ex.example_ids) == ["train:2", "train:3"] * 2
    # source a never annotates 'neutral': unknown there, not negative
    mask = ex.known_mask(project.labels)
    assert mask[:2, 2].tolist() == [False, False] and mask[2:, 2].tolist() == [True, True]
    with pytest.raises(TagwiseError, match="already exists.*--replace"):
        project.add_source(csv_source(tmp_path, "a", [("x", "pos")]))
    project.add_source(csv_source(tmp_path, "a", [("x", "pos")]), replace=True)
    assert len(project.examples(source="a")) == 1


def test_a_bad_source_changes_nothing(tmp_path):
    project = Project.init(tmp_path / "p")
    project.add_source(csv_source(tmp_path, "a", [("good", "pos")]))
    before = project.examples()
    bad = csv_source(tmp_path, "b", [("ok", "pos"), ("", "neg")])
    with pytest.raises(TagwiseError, match=r"b.csv: row 3: empty text"):
        project.add_source(bad)
    after = project.examples()
    assert after.texts == before.texts and project.labels.names == ("pos",)
    assert project.store.source_names() == ["a"]


def test_declared_taxonomy_rejects_unmapped_labels(tmp_path):
    tax = tmp_path / "tax.yaml"
    tax.write_text(yaml.safe_dump({"labels": ["pos", {"name": "neg", "description": "negative"}]}))
    project = Project.init(tmp_path / "p", taxonomy=tax)
    with pytest.raises(TagwiseError, match=r"\['neutral'\] are not in the project's declared taxonomy"):
        project.add_source(csv_source(tmp_path, "a", [("x", "pos"), ("y", "neutral")]))
    assert len(project.examples()) == 0


def test_killed_ingest_leaves_previous_state(tmp_path):
    """SIGKILL in the middle of a large ingest: the store holds exactly the earlier sources."""
    project = Project.init(tmp_path / "p")
    project.add_source(csv_source(tmp_path, "small", [("hello", "a")]))
    big = csv_source(tmp_path, "big", [(f"text {i}", "a") for i in range(300_000)])
    proc = subprocess.Popen([sys.executable, "-m", "tagwise", "add-source", str(tmp_path / "p"), str(big)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wal = tmp_path / "p" / "tagwise.db-wal"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 1_000_000:  # the insert transaction is under way
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reopened = Project.open(tmp_path / "p")
    n = len(reopened.examples())
    if killed:
        assert n == 1 and reopened.store.source_names() == ["small"]
    else:  # finished before we could kill it: then all of it is there
        assert n == 300_001
    assert sqlite3.connect(tmp_path / "p" / "tagwise.db").execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_embed_twice_encodes_nothing_the_second_time(tmp_path, monkeypatch):
    monkeypatch.delenv("TAGWISE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # a fresh user cache
    project = Project.init(tmp_path / "p")
    project.add_source(csv_source(tmp_path, "a", [(f"sentence {i}", "x") for i in range(40)]))
    first = project.embed("hashing:128", progress=False)
    second = project.embed("hashing:128", progress=False)
    assert (first.n_encoded, second.n_encoded) == (40, 0)
    assert project.default_encoder == "hashing:128"
    X = project.features(project.examples())
    assert X.shape == (40, 128) and np.isfinite(X).all()


def test_embedding_cache_is_shared_by_the_users_projects(tmp_path, monkeypatch, data_dir):
    """By default the cache is the user's ($XDG_CACHE_HOME/tagwise/embeddings): a second project on the same
    texts encodes nothing. TAGWISE_CACHE_DIR overrides it."""
    monkeypatch.delenv("TAGWISE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    spec = tmp_path / "ge.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "ge", "path": str(data_dir / "goemotions/original_dev.tsv"), "header": False, "quoting": "none",
        "columns": {"text": 0, "labels": 1}, "limit": 200,
        "labels": {"names_file": str(data_dir / "goemotions/original_labels.txt")}}))
    first = Project.init(tmp_path / "first")
    first.add_source(spec)
    assert first.cache_dir == tmp_path / "xdg" / "tagwise" / "embeddings"
    assert first.embed("hashing", progress=False).n_encoded > 150
    second = Project.init(tmp_path / "second")
    second.add_source(spec)
    stats = second.embed("hashing", progress=False)
    assert stats.n_encoded == 0 and stats.n_unique > 150
    assert not (tmp_path / "second" / "cache").exists()  # nothing was written into the project for it
    monkeypatch.setenv("TAGWISE_CACHE_DIR", str(tmp_path / "own"))
    assert Project.open(tmp_path / "second").embed("hashing", progress=False).n_encoded == stats.n_unique
