"""Zero-shot sub-labels (CHiLS) on the bundled GoEmotions sample, read as Ekman's six emotions."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from sklearn.metrics import average_precision_score

from conftest import SAMPLE
from tagwise.encoders import embed_texts, get_encoder
from tagwise.learn.lowlabel import fit_zero_shot
from tagwise.learn.persist import load_model, save_model
from tagwise.learn.zeroshot import ZeroShotClassifier
from tagwise.sources import ingest, load_spec
from tagwise.taxonomy import load_taxonomy
from tagwise.types import LabelSpace, TagwiseError


@pytest.fixture(scope="module")
def ekman(data_dir, use_cache):
    """The sample's 3000 train + 1000 test comments with Ekman labels (any of a coarse label's fine
    GoEmotions labels, per the dataset's ekman_mapping.json); the fine names are the sub-labels."""
    mapping = json.loads((data_dir / "goemotions" / "ekman_mapping.json").read_text())
    rows = ingest(load_spec(SAMPLE / "spec.yaml"))
    fine = list(rows.annotated_labels)
    enc = get_encoder("use")
    X, _ = embed_texts(rows.texts, enc, use_cache, progress=False)
    Yf = LabelSpace(tuple(fine)).to_matrix(rows.labels)
    names = list(mapping)
    Y = np.stack([Yf[:, [fine.index(f) for f in mapping[c]]].max(1) for c in names], 1)
    split = np.asarray(rows.splits)
    return {"names": names, "subs": {c: [f for f in mapping[c] if f != c] for c in names},
            "X": X[split == "train"], "Y": Y[split == "train"], "Xt": X[split == "test"], "Yt": Y[split == "test"],
            "embed": lambda t: embed_texts(list(t), enc, use_cache, progress=False)[0]}


def _ap(model, X, Y, k):
    return average_precision_score(Y[:, k], model.decision_function(X)[:, k])


def test_fine_names_lift_a_coarse_label_and_auto_drops_junk_sub_labels(ekman):
    d = ekman
    names, joy, sadness = d["names"], d["names"].index("joy"), d["names"].index("sadness")
    plain = fit_zero_shot(names, d["X"], d["embed"], expand=False)
    expanded = fit_zero_shot(names, d["X"], d["embed"], sub_labels=d["subs"], expand=True)
    assert not plain.expanded_.any() and expanded.expanded_.all() == all(d["subs"].values())
    # joy described by its 11 finer names (amusement, gratitude, love, ...) ranks joy better
    assert _ap(expanded, d["Xt"], d["Yt"], joy) > _ap(plain, d["Xt"], d["Yt"], joy) + 0.01
    # nonsense sub-labels for sadness: 400 labeled comments switch sadness back to its plain score
    junk = dict(d["subs"], sadness=["spreadsheet", "bicycle", "volcano"])
    auto = fit_zero_shot(names, d["X"], d["embed"], sub_labels=junk, expand="auto")
    assert auto.expanded_[sadness]  # no labels yet: sub-labels are used as declared
    auto.calibrate(d["X"][:400], d["Y"][:400])
    assert not auto.expanded_[sadness] and auto.expansion_auc_gain_[sadness] < 0
    assert auto.expanded_[joy] and auto.expansion_auc_gain_[joy] >= 0
    always = fit_zero_shot(names, d["X"], d["embed"], sub_labels=junk, expand=True)
    Z, Zp, Ze = (m.decision_function(d["Xt"]) for m in (auto, plain, always))
    np.testing.assert_allclose(Z[:, sadness], Zp[:, sadness], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Z[:, joy], Ze[:, joy], rtol=1e-5, atol=1e-5)


def test_sub_label_model_round_trips_and_old_models_still_load(ekman, tmp_path):
    d = ekman
    model = fit_zero_shot(d["names"], d["X"], d["embed"], sub_labels=d["subs"])
    model.calibrate(d["X"][:300], d["Y"][:300])
    save_model(model, tmp_path / "zs")
    loaded, _ = load_model(tmp_path / "zs")
    np.testing.assert_allclose(loaded.predict_proba(d["Xt"]), model.predict_proba(d["Xt"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loaded.expanded_, model.expanded_)
    # a model saved before sub-labels existed has only the plain arrays: it loads and scores plainly
    plain = fit_zero_shot(d["names"], d["X"], d["embed"], expand=False)
    meta, arrays = plain.get_state()
    old = {k: arrays[k] for k in ("label_vectors", "mean", "scale", "z_cut", "threshold")}
    restored = ZeroShotClassifier.from_state(meta, old)
    np.testing.assert_allclose(restored.predict_proba(d["Xt"]), plain.predict_proba(d["Xt"]), rtol=1e-6)


def test_bad_sub_label_shapes_are_clear_errors(ekman):
    d = ekman
    L = np.eye(len(d["names"]), d["X"].shape[1], dtype=np.float32)
    with pytest.raises(TagwiseError, match="owners in"):
        ZeroShotClassifier().fit(d["X"][:50], L, sub_vectors=L[:2], sub_owner=np.array([0, 99]))
    with pytest.raises(TagwiseError, match="expand must be"):
        ZeroShotClassifier(expand="sometimes").fit(d["X"][:50], L)


def test_taxonomy_sub_labels_and_children_feed_zero_shot(tmp_path, ekman, capsys):
    from tagwise.cli import main
    from tagwise.workflows.models import load_project_model
    from tagwise.project import Project

    tax = {"labels": [{"name": "negative"},
                      {"name": "anger", "parent": "negative", "sub_labels": ["annoyance", "disapproval"]},
                      {"name": "sadness", "parent": "negative", "sub_labels": ["grief", "remorse"]},
                      {"name": "joy", "sub_labels": ["amusement", "gratitude", "love"]}]}
    (tmp_path / "tax.yaml").write_text(yaml.safe_dump(tax))
    t = load_taxonomy(tmp_path / "tax.yaml")
    # a parent is described by its children; declared sub-labels come first
    assert t.zero_shot_sub_labels() == {"negative": ["anger", "sadness"], "anger": ["annoyance", "disapproval"],
                                        "sadness": ["grief", "remorse"], "joy": ["amusement", "gratitude", "love"]}
    (tmp_path / "back.yaml").write_text(t.to_yaml())
    assert load_taxonomy(tmp_path / "back.yaml").sub_labels == t.sub_labels
    bad = {"labels": [{"name": "joy", "sub_labels": "amusement"}]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(TagwiseError, match=r"bad.yaml: labels\[0\] \('joy'\): sub_labels must be a list"):
        load_taxonomy(tmp_path / "bad.yaml")
    # end to end: the sample's fine labels mapped onto this taxonomy, trained zero-shot from the CLI
    spec = yaml.safe_load((SAMPLE / "spec.yaml").read_text())
    spec["splits"] = {k: str(SAMPLE / v) for k, v in spec["splits"].items()}
    spec["labels"]["names_file"] = str(SAMPLE / spec["labels"]["names_file"])
    keep = {"anger", "annoyance", "disapproval", "sadness", "grief", "remorse", "joy", "amusement", "gratitude", "love"}
    names = (SAMPLE / "labels.txt").read_text().split()
    spec["labels"]["map"] = {n: ({"annoyance": "anger", "disapproval": "anger", "grief": "sadness",
                                  "remorse": "sadness", "amusement": "joy", "gratitude": "joy", "love": "joy"}.get(n, n)
                                 if n in keep else None) for n in names}
    spec["limit"] = 300
    (tmp_path / "src.yaml").write_text(yaml.safe_dump(spec))
    root = str(tmp_path / "p")
    assert main(["init", root, "--taxonomy", str(tmp_path / "tax.yaml")]) == 0
    assert main(["add-source", root, str(tmp_path / "src.yaml")]) == 0
    assert main(["train", root, "--zero-shot"]) == 0
    assert "sub-labels: scored with them: " in capsys.readouterr().out
    head = load_project_model(Project.open(root)).head
    assert type(head).__name__ == "ZeroShotClassifier"
    owners = [head.label_names_[k] for k in head.sub_owner_]
    assert owners.count("negative") == 2 and owners.count("joy") == 3 and len(owners) == 9
