"""Taxonomy hierarchy, partial-label propagation and mapping conflicts (issue 4)."""
from pathlib import Path

import numpy as np
import pytest

from tagwise.project import Project
from tagwise.taxonomy import Taxonomy, load_taxonomy, propagate_partial_labels
from tagwise.types import TagwiseError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]


def small_tax() -> Taxonomy:
    return Taxonomy(labels=["anger", "annoyance", "rage", "joy", "love", "neutral"],
                    parents={"annoyance": "anger", "rage": "anger", "love": "joy"}, declared=True)


def test_cycle_in_hierarchy_is_a_clear_error(tmp_path):
    path = tmp_path / "tax.yaml"
    path.write_text("labels:\n  - {name: a, parent: c}\n  - {name: b, parent: a}\n  - {name: c, parent: b}\n")
    with pytest.raises(TagwiseError, match=r"cycle: .*a.*->.*a|cycle: .*b.*->.*b|cycle: .*c.*->.*c") as err:
        load_taxonomy(path)
    assert str(path) in str(err.value) and "Fix" in str(err.value)


def test_parent_must_be_declared(tmp_path):
    path = tmp_path / "tax.yaml"
    path.write_text("labels:\n  - {name: a, parent: missing}\n")
    with pytest.raises(TagwiseError, match="unknown label 'missing'"):
        load_taxonomy(path)


def test_hierarchy_queries_and_yaml_roundtrip(tmp_path):
    tax = small_tax()
    assert tax.children("anger") == ["annoyance", "rage"]
    assert tax.ancestors("love") == ["joy"] and tax.descendants("anger") == ["annoyance", "rage"]
    assert tax.roots() == ["anger", "joy", "neutral"]
    # a source annotating every child of a parent annotates the parent too
    assert tax.covered({"annoyance", "rage"}) == {"annoyance", "rage", "anger"}
    assert "joy" not in tax.covered({"annoyance"})
    A = tax.ancestor_matrix()
    assert A[tax.labels.index("rage"), tax.labels.index("anger")] and not A[0].any()
    (tmp_path / "t.yaml").write_text(tax.to_yaml())
    back = load_taxonomy(tmp_path / "t.yaml")
    assert back.labels == tax.labels and back.parents == tax.parents


def test_parent_level_source_supervises_children_consistently():
    tax = small_tax()
    K = len(tax.labels)
    idx = {n: i for i, n in enumerate(tax.labels)}
    coarse = np.zeros((3, K), dtype=bool)
    coarse[:, [idx["anger"], idx["joy"]]] = True          # a source annotating parents only
    Y = np.zeros((3, K), dtype=np.uint8)
    Y[0, idx["anger"]] = 1                                 # row 0: anger; row 1: nothing; row 2: joy
    Y[2, idx["joy"]] = 1
    Y2, known2 = propagate_partial_labels(Y, coarse, tax)
    # parent positive: which child holds is unknown -> children stay masked
    assert not known2[0, idx["annoyance"]] and not known2[0, idx["rage"]]
    # parent negative: every child is a known negative
    assert known2[1, idx["annoyance"]] and known2[1, idx["rage"]] and known2[1, idx["love"]]
    assert Y2[1].sum() == 0
    assert not known2[2, idx["love"]] and known2[2, idx["rage"]]
    # a positive child makes its parent a known positive even if the source does not annotate it
    fine = np.zeros((1, K), dtype=bool)
    fine[0, idx["love"]] = True
    Yc = np.zeros((1, K), dtype=np.uint8)
    Yc[0, idx["love"]] = 1
    Y3, known3 = propagate_partial_labels(Yc, fine, tax)
    assert Y3[0, idx["joy"]] == 1 and known3[0, idx["joy"]]
    assert not known3[0, idx["anger"]]  # says nothing about anger


def _spec(tmp_path, body: str) -> Path:
    path = tmp_path / "tweeteval.yaml"
    te = DATA / "tweeteval" / "emotion"
    path.write_text(f"name: tweeteval_emotion\nlimit: 50\nsplits:\n  train: {{text: {te / 'train_text.txt'}, "
                    f"labels: {te / 'train_labels.txt'}}}\n{body}")
    return path


def _project(tmp_path) -> Project:
    tax = tmp_path / "tax.yaml"
    tax.write_text("labels:\n  - anger\n  - {name: rage, parent: anger}\n  - joy\n  - {name: happiness, parent: joy}\n"
                   "  - optimism\n  - sadness\n")
    return Project.init(tmp_path / "proj", taxonomy=tax)


def test_conflicting_mappings_are_clear_errors(tmp_path):
    project = _project(tmp_path)
    head = "labels:\n  format: single\n  names: [anger, joy, optimism, sadness]\n"
    # one source label mapped twice (YAML would silently keep the last one)
    spec = _spec(tmp_path, head + "  map:\n    joy: happiness\n    joy: optimism\n")
    with pytest.raises(TagwiseError, match=r"line \d+: labels/map gives source label 'joy' twice"):
        project.add_source(spec)
    # one label mapped to a child and its own parent
    spec = _spec(tmp_path, head + "  map: {anger: [rage, anger]}\n")
    with pytest.raises(TagwiseError, match="both 'rage' and its ancestor 'anger'"):
        project.add_source(spec)
    # a key that is not one of the source's labels
    spec = _spec(tmp_path, head + "  map: {jyo: happiness}\n")
    with pytest.raises(TagwiseError, match="'jyo' is not a label of this source. Did you mean 'joy'"):
        project.add_source(spec)
    # a target outside the declared taxonomy
    spec = _spec(tmp_path, head + "  map: {joy: happyness}\n")
    with pytest.raises(TagwiseError, match="not in the declared taxonomy. Did you mean 'happiness'"):
        project.add_source(spec)
    assert project.store.source_names() == []  # nothing was ingested
    spec = _spec(tmp_path, head + "  map: {joy: happiness}\n")
    assert project.add_source(spec)["n_examples"] == 50
    assert sorted(project.store.sources()[0]["annotated"]) == ["anger", "happiness", "optimism", "sadness"]


def test_emotion_benchmark_taxonomy_and_specs_load():
    tax = load_taxonomy(REPO / "bench" / "taxonomies" / "emotion.yaml")
    assert {"anger", "joy", "sadness", "fear", "surprise", "disgust"} <= set(tax.roots())
    assert all(tax.descriptions.get(n) for n in tax.labels)
    assert tax.parents["happiness"] == "joy"


def test_taxonomy_cli_show(tmp_path, capsys):
    from tagwise.cli import main

    project = _project(tmp_path)
    project.add_source(_spec(tmp_path, "labels:\n  format: single\n  names: [anger, joy, optimism, sadness]\n"
                                       "  map: {joy: happiness}\n"))
    assert main(["taxonomy", "show", str(project.path), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    by = {d["name"]: d for d in out["labels"]}
    assert by["happiness"]["parent"] == "joy" and by["happiness"]["sources"] == ["tweeteval_emotion"]
    assert by["rage"]["sources"] == []
