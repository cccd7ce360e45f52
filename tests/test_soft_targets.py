"""Soft targets (consensus probabilities, vote shares) survive every step of training (issue 27 §1).

The bug class: a uint8 cast in the hierarchy step turned every consensus probability below 1 into 0
(macro-F1 0.007 with no warning), and cuts chosen from targets turned to bool counted any nonzero
probability as a whole positive (every cut at 0, every label predicted). The end-to-end test uses a
real vote-count source (HS-Brexit: 6 annotators' votes per tweet) under a taxonomy with a parent, its
children and a sibling, beside a gold source, with the default ``train``.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hs_brexit import hs_brexit_votes
from tagwise.learn.multisource import MultiSourceLinear
from tagwise.learn.thresholds import best_f1_thresholds, expected_f1_thresholds, rate_thresholds
from tagwise.taxonomy import propagate_with_ancestors

PARENT_CHILD_SIBLING = np.array([[False, False, False],   # abuse (parent)
                                 [True, False, False],    # hate: child of abuse
                                 [False, False, False]])  # aggressive: a sibling root


def test_hierarchy_step_keeps_soft_targets():
    Y = np.array([[0.2, 0.97, 0.6],     # a likely child raises its parent
                  [0.0, 0.3, 0.0],      # an unlikely child leaves an unknown parent unknown
                  [0.1, 0.0, 1.0]])     # a parent below 0.5 caps an unknown child
    known = np.array([[True, True, True], [False, True, True], [True, False, True]])
    Y2, known2 = propagate_with_ancestors(Y, known, PARENT_CHILD_SIBLING)
    assert Y2.dtype.kind == "f"
    assert Y2[0].tolist() == pytest.approx([0.97, 0.97, 0.6])
    assert not known2[1, 0] and Y2[1, 1] == pytest.approx(0.3)
    assert known2[2, 1] and Y2[2, 1] == pytest.approx(0.1)
    # hard labels keep the old rules exactly
    H, Hk = propagate_with_ancestors(np.array([[0, 1, 0], [0, 0, 1]], np.uint8),
                                     np.array([[False, True, True], [True, False, True]]), PARENT_CHILD_SIBLING)
    assert H.tolist() == [[1, 1, 0], [0, 0, 1]] and Hk.tolist() == [[True, True, True], [True, True, True]]


def test_cuts_from_soft_targets_are_not_cuts_from_their_support():
    """A label whose targets are small consensus probabilities everywhere (0.05) except on a few rows:
    counting every nonzero target as a positive puts the cut under every score."""
    rng = np.random.default_rng(0)
    n = 400
    truth = rng.random(n) < 0.2
    Y = np.where(truth, 0.9, 0.05)[:, None]
    P = np.clip(np.where(truth, 0.7, 0.3) + rng.normal(0, 0.1, n), 0, 1)[:, None]
    for t in (best_f1_thresholds(Y, P)[0], rate_thresholds(Y, P)[0]):
        predicted = (P[:, 0] >= t).mean()
        assert 0.1 < predicted < 0.4, t
    logits = np.log(P / (1 - P + 1e-9) + 1e-9)
    t = expected_f1_thresholds(Y, logits, logits)[0]
    assert 0.1 < (P[:, 0] >= t).mean() < 0.5
    # hard targets: exactly what they were
    hard = truth.astype(np.float64)[:, None]
    assert best_f1_thresholds(hard, P)[0] == best_f1_thresholds(hard.astype(bool), P)[0]


def _hs_items(data_dir, split):
    return list(json.loads((data_dir / "hs_brexit" / f"HS-Brexit_{split}.json").read_text()).values())


def test_multisource_head_learns_from_vote_shares(data_dir):
    """MultiSourceLinear on real vote shares under a parent/child taxonomy: the soft source's labels are
    learned (the uint8 cast left almost no positive), and cuts are not put under every score."""
    from tagwise.encoders.registry import get_encoder

    items = _hs_items(data_dir, "train") + _hs_items(data_dir, "dev")
    votes = np.array([[np.mean(hs_brexit_votes(it)[k]) for k in ("hate", "aggressive")] for it in items])
    n = len(items)
    Y = np.c_[votes.max(axis=1, keepdims=True) * 0, votes]  # abuse: unknown, implied by its child
    known = np.c_[np.zeros(n, bool), np.ones((n, 2), bool)]
    sources = np.array(["crowd"] * (n // 2) + ["other"] * (n - n // 2), dtype=object)
    X = get_encoder("use").encode([it["text"] for it in items])
    rng = np.random.default_rng(0)
    test = rng.random(n) < 0.3
    model = MultiSourceLinear(cv=3).fit(X[~test], Y[~test], sources[~test], known[~test], PARENT_CHILD_SIBLING)
    assert model.support_[1] == pytest.approx(votes[~test, 0].sum(), rel=1e-5)  # vote shares, not floored
    gold = votes[test] > 0.5  # the strict majority of the six votes
    Z = model.predict(X[test], source="crowd")
    for k, col in ((0, 1), (1, 2)):
        assert Z[:, col].mean() < 0.95, "a label predicted on every row: cuts chosen from targets turned to bool"
        tp = (Z[:, col] & gold[:, k]).sum()
        f1 = 2 * tp / (Z[:, col].sum() + gold[:, k].sum())
        everything = 2 * gold[:, k].mean() / (1 + gold[:, k].mean())
        assert f1 > everything + 0.05, (k, f1, everything)


def test_default_train_on_a_vote_source_under_a_parent(tmp_path, data_dir, shared_embedding_cache):
    """The reported job, end to end with the default ``train``: a vote-count source and a gold source
    under one taxonomy with a parent; the vote source's own test rows scored in its mode beat predicting
    every label (the uint8 cast gave macro-F1 0.007 there with no message)."""
    from tagwise import Project, evaluate, train

    (tmp_path / "taxonomy.yaml").write_text(
        "labels:\n  - {name: abuse, description: abusive language}\n"
        "  - {name: hate, parent: abuse, description: hate speech}\n"
        "  - {name: offensive, parent: abuse, description: offensive language}\n"
        "  - {name: aggressive, description: aggressive language}\n")
    for split in ("train", "test"):
        with open(tmp_path / f"votes_{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "text", "hate_votes", "offensive_votes", "aggressive_votes", "n"])
            for i, it in enumerate(_hs_items(data_dir, split)):
                v = hs_brexit_votes(it)
                w.writerow([f"{split}{i}", it["text"], sum(v["hate"]), sum(v["offensive"]), sum(v["aggressive"]), 6])
    with open(tmp_path / "gold.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "abuse"])
        for i, it in enumerate(_hs_items(data_dir, "dev")):
            v = hs_brexit_votes(it)
            w.writerow([f"dev{i}", it["text"], int(2 * max(sum(v["hate"]), sum(v["offensive"])) > 6)])
    (tmp_path / "votes.yaml").write_text(
        "name: crowd\nsplits: {train: votes_train.csv, test: votes_test.csv}\ncolumns: {text: text, id: id}\n"
        "labels: {format: votes, columns: {hate: hate_votes, offensive: offensive_votes, "
        "aggressive: aggressive_votes}, count: n}\n")
    (tmp_path / "gold.yaml").write_text(
        "name: gold\npath: gold.csv\nsplit: train\ncolumns: {text: text, id: id}\n"
        "labels: {format: onehot, onehot_columns: [abuse]}\n")
    project = Project.init(tmp_path / "p", taxonomy=tmp_path / "taxonomy.yaml")
    project.add_source(tmp_path / "votes.yaml")
    project.add_source(tmp_path / "gold.yaml")
    out = train(project, progress=False)
    report = evaluate(project, split="test", source="crowd")
    per = report["per_label"]
    scored = [name for name in ("hate", "offensive", "aggressive", "abuse") if per[name]["support"]]
    assert len(scored) >= 3
    for name in scored:
        k = project.labels.index(name)
        assert out["thresholds"][name] > 0.01, (name, out["thresholds"][name])
        rate = per[name]["support"] / report["n_examples"]
        everything = 2 * rate / (1 + rate)
        assert per[name]["f1"] > everything, (name, per[name], everything, k)
    assert report["macro_f1"] > 0.3


def test_a_vote_source_with_ids_repeated_across_split_files_keeps_each_items_votes(tmp_path, data_dir):
    """Two split files whose ids both count from 1: each item keeps its own six votes (keyed by id alone,
    the train item's votes landed on the test item with the same id, and a tweet nobody called hateful
    trained as hateful with probability 1.0)."""
    from tagwise import Project
    from tagwise.workflows.annotators import consensus_targets

    for split in ("train", "test"):
        with open(tmp_path / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "text", "hate_votes", "n"])
            for i, it in enumerate(_hs_items(data_dir, split)[:60]):
                w.writerow([i + 1, it["text"], sum(hs_brexit_votes(it)["hate"]), 6])
    (tmp_path / "votes.yaml").write_text(
        "name: crowd\nsplits: {train: train.csv, test: test.csv}\ncolumns: {text: text, id: id}\n"
        "labels: {format: votes, columns: {hate: hate_votes}, count: n}\n")
    project = Project.init(tmp_path / "p")
    project.add_source(tmp_path / "votes.yaml")
    t = consensus_targets(project, "majority")
    assert (t["n_judgements"] == 6).all() and len(t["ids"]) == 120
    ex = project.examples()
    votes = {(s, i): sum(hs_brexit_votes(it)["hate"]) for s in ("train", "test")
             for i, it in enumerate(_hs_items(data_dir, s)[:60], start=1)}
    row = {int(store_id): r for r, store_id in enumerate(ex.ids)}
    k = list(project.labels.names).index("hate")
    for store_id, share in zip(t["ids"], t["probabilities"][:, k]):
        r = row[int(store_id)]
        assert share == pytest.approx(votes[(ex.splits[r], int(ex.example_ids[r]))] / 6)
