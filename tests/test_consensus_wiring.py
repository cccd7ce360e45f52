"""Consensus wired into the project: train's targets, labels export, suggest --relabel and the report,
on a real HS-Brexit slice (6 annotators on every tweet) plus one always-positive annotator."""
from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tagwise.types import TagwiseError

from hs_brexit import LABELS, hs_brexit_votes

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HS = DATA / "hs_brexit"
pytestmark = pytest.mark.skipif(not HS.exists(), reason="../shared/data not available")
N_ITEMS = 240


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_embedding_cache):
    """HS-Brexit train tweets in the wide layout (Ann1-6 and a spammer who marks every label on every
    tweet) and 60 dev tweets as an unlabeled pool."""
    from tagwise.project import Project
    from tagwise.workflows.annotators import add_annotated_source

    root = tmp_path_factory.mktemp("crowd")
    items = list(json.loads((HS / "HS-Brexit_train.json").read_text()).items())[:N_ITEMS]
    with open(root / "wide.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"] + [f"Ann{a + 1}" for a in range(6)] + ["Spam"])
        for key, item in items:
            v = hs_brexit_votes(item)
            w.writerow([key, item["text"]] + [";".join(k for k in LABELS if v[k][a]) or "none" for a in range(6)]
                       + [";".join(LABELS)])
    (root / "wide.yaml").write_text(
        "name: hs\npath: wide.csv\ncolumns: {text: text, id: id}\nlabels: {format: delimited, delimiter: ';', "
        "annotator_columns: [Ann1, Ann2, Ann3, Ann4, Ann5, Ann6, Spam], map: {none: null}}\n")
    dev = list(json.loads((HS / "HS-Brexit_dev.json").read_text()).values())[:60]
    with open(root / "pool.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([[item["text"]] for item in dev])
    (root / "pool.yaml").write_text("name: pool\npath: pool.csv\nsplit: unlabeled\ncolumns: {text: text}\n")
    p = Project.init(root / "p", taxonomy=None)
    add_annotated_source(p, root / "wide.yaml")
    p.add_source(root / "pool.yaml")
    gold = np.array([[int(2 * sum(hs_brexit_votes(it)[k]) > 6) for k in LABELS] for _, it in items])  # 6 real voters
    yield p, root, items, gold
    p.close()


def test_training_targets_follow_the_chosen_consensus(project):
    from tagwise.workflows.annotators import consensus_targets
    from tagwise.workflows.train import training_data

    p, _, items, gold = project
    names = list(p.labels.names)
    cols = [names.index(k) for k in LABELS]
    stored, _, _ = training_data(p, consensus="none", progress=False)
    soft, lab, _ = training_data(p, progress=False)             # default: the annotator model
    major, _, _ = training_data(p, consensus="majority", progress=False)
    assert list(lab.example_ids) == [k for k, _ in items]
    t = consensus_targets(p, "model")
    assert np.array_equal(t["ids"], lab.ids)
    np.testing.assert_allclose(soft.Y[:, cols], t["probabilities"][:, cols], atol=1e-6)
    assert ((soft.Y > 0) & (soft.Y < 1)).any()                  # soft targets, not decisions
    # 'none' keeps the stored strict majority of the 7 judgements, 'majority' recomputes it
    assert np.array_equal(stored.Y[:, cols], major.Y[:, cols])
    # the always-positive annotator tips every 3-3 split of the real six to positive; the model
    # learns that its votes carry no information: its consensus moves far less than the majority's
    from tagwise.learn.consensus import ConsensusModel, majority_vote
    from tagwise.workflows.annotators import load_annotations
    data = load_annotations(p)
    ann = data["annotations"]
    real = ann.subset(ann.annotator != data["annotators"].index("Spam"))
    kc = [data["labels"].index(k) for k in LABELS]
    without = ConsensusModel().fit(real).proba_[:, kc] >= 0.5
    moved_model = ((soft.Y[:, cols] >= 0.5) != without).mean()
    moved_majority = (stored.Y[:, cols] != (majority_vote(real, tie=0.0)[:, kc] > 0.5)).mean()
    assert moved_majority > 0.02 and moved_model < moved_majority / 3
    with pytest.raises(TagwiseError, match="--consensus is 'vote'"):
        training_data(p, consensus="vote", progress=False)


def test_soft_targets_weigh_like_their_expected_loss():
    """A soft target q trains like the example twice: label 1 with weight q and 0 with 1 - q (here,
    q in {0, 0.5, 1}: an exact copy of each row per half vote), positive weighting included."""
    from tagwise.learn.linear import _fit_logistic, _preconditioner

    rng = np.random.default_rng(0)
    items = list(json.loads((HS / "HS-Brexit_train.json").read_text()).values())[:150]
    share = np.array([[sum(hs_brexit_votes(it)[k]) / 6 for k in LABELS] for it in items])
    Q = np.round(share * 2) / 2                                  # 0, 0.5 or 1
    X = rng.standard_normal((len(Q), 16)).astype(np.float32)
    X += (Q @ rng.standard_normal((3, 16))).astype(np.float32)   # features that track the votes
    X -= X.mean(0)
    pw, l2 = np.array([3.0, 1.5, 1.0]), np.full(3, 1.0)
    M = np.ones(Q.shape, np.float32)
    # the preconditioner changes the path, not the optimum: one for both fits
    solver = dict(mean=np.zeros(X.shape[1], np.float32), P=_preconditioner(X, 1.0 / len(X)), max_iter=500, tol=1e-9)
    soft = _fit_logistic(X, Q.astype(np.float32), M, pw, l2, **solver)
    # two copies per row: (1, 1) for q = 1, (0, 0) for q = 0, (1, 0) for q = 0.5
    X2 = np.vstack([X, X])
    Y2 = np.vstack([np.ceil(Q), np.floor(Q)]).astype(np.float32)
    hard = _fit_logistic(X2, Y2, np.ones_like(Y2), pw, 2 * l2, **solver)
    np.testing.assert_allclose(soft, hard, atol=2e-3)


def test_train_uses_the_consensus_by_default_and_cli_chooses(project):
    from tagwise.cli import main
    from tagwise.learn.persist import load_model
    from tagwise.workflows.annotators import consensus_targets
    from tagwise.workflows.train import train

    p, _, _, gold = project
    out = train(p, progress=False)  # auto: the mode choice cross-validates on the soft targets too
    head, info = load_model(p.models_dir / out["model"])
    assert out["n_examples"] == N_ITEMS and info["trained_on"]["consensus"] == "model"
    assert out["choice"]["cv"] and out["mode"] in ("supervised", "few-shot")
    if out["mode"] != "supervised":
        head, info = load_model(p.models_dir / train(p, mode="supervised", progress=False)["model"])
    names = list(p.labels.names)
    cols = [names.index(k) for k in LABELS]
    t = consensus_targets(p, "model")
    # a label's support is its expected positives: the soft consensus targets summed, never rounded
    assert head.support_[cols] == pytest.approx(t["probabilities"][:, cols].sum(0), rel=1e-4)
    assert (head.support_[cols] != np.round(head.support_[cols])).any()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(p.path), "--model", "supervised", "--consensus", "majority"]) == 0
    head2, info2 = load_model(p.models_dir / (p.models_dir / "CURRENT").read_text().strip())
    assert info2["trained_on"]["consensus"] == "majority"
    # the strict majority of 7 with the spammer: every 3-3 split of the real six turns positive
    assert (head2.support_[cols] >= gold.sum(0)).all() and (head2.support_[cols] > gold.sum(0)).any()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
        main(["train", str(p.path), "--model", "supervised", "--consensus", "bogus"])
    assert "invalid choice" in err.getvalue()


def test_labels_export_writes_the_consensus(project):
    from tagwise.cli import main
    from tagwise.workflows.annotators import consensus_targets

    p, root, items, _ = project
    out = root / "labels.jsonl"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["labels", str(p.path), "export", "--out", str(out)]) == 0
    assert f"{N_ITEMS} from the consensus" in buf.getvalue()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == N_ITEMS
    t = consensus_targets(p, "model")
    names = t["labels"]
    by_id = {int(i): r for r, i in enumerate(t["ids"])}
    for row in rows:
        assert {"id", "source", "labels", "probabilities"} <= set(row) and row["source"] == "hs"
        q = t["probabilities"][by_id[row["id"]]]
        assert set(row["probabilities"]) == set(LABELS)
        for name, prob in row["probabilities"].items():
            assert abs(prob - q[names.index(name)]) < 1e-4
        assert sorted(row["labels"]) == sorted(n for n, prob in row["probabilities"].items() if prob >= 0.5)
        assert row["n_judgements"] == 7
    # --consensus none: the stored strict majority of the 7 votes, probabilities 0 / 1
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["labels", str(p.path), "export", "--out", str(root / "plain.jsonl"), "--consensus", "none"]) == 0
    plain = [json.loads(line) for line in (root / "plain.jsonl").read_text().splitlines()]
    assert all(set(r["probabilities"].values()) <= {0.0, 1.0} for r in plain)
    assert all(sorted(r["labels"]) == sorted(n for n, v in r["probabilities"].items() if v == 1.0) for r in plain)


def test_suggest_relabel_picks_doubtful_consensus_and_mixes_new_examples(project):
    from tagwise.workflows.annotators import consensus_targets
    from tagwise.workflows.suggest import suggest

    p, _, _, _ = project
    rows = suggest(p, budget=6, relabel=8)
    new = [r for r in rows if r["reason"] != "relabel"]
    again = [r for r in rows if r["reason"] == "relabel"]
    assert len(new) == 6 and len(again) == 8
    assert all(r["source"] == "pool" for r in new) and all(r["source"] == "hs" for r in again)
    # one scale for both kinds: the expected number of wrong cell decisions one more vote removes
    assert all(r["error_reduction"] >= 0 for r in rows) and all(r["error_reduction"] > 0 for r in again)
    assert [r["error_reduction"] for r in again] == sorted((r["error_reduction"] for r in again), reverse=True)
    # picked examples have low consensus confidence on a label one vote could flip
    t = consensus_targets(p, "model")
    conf = t["confidence"].min(1)
    by_id = {int(i): r for r, i in enumerate(t["ids"])}
    picked = np.array([conf[by_id[r["store_id"]]] for r in again])
    assert picked.mean() < np.median(conf) and all(r["doubtful_labels"] for r in again)


def test_report_has_the_annotator_section(project):
    from tagwise.workflows.report import write_report

    p, root, _, _ = project
    doc = write_report(p, path=root / "report.html").read_text()
    section = doc[doc.index("<h2>Annotators</h2>"):]
    assert section.count("<img") == 2 and "Spam" in section and "Ann1" in section
    # the spammer is the lowest-quality annotator in the table
    table = section[section.index("<table>"):section.index("</table>")]
    assert table.index("Spam") < min(table.index(f"Ann{a}") for a in range(1, 7))
