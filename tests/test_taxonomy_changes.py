"""Label-set changes on a live project (issue 32): a GoEmotions + XED slice on the emotion taxonomy
(Ekman families as parents), the fast hashing encoder so no weights are needed."""
import json
import contextlib
import io
import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import emotion_project
from tagwise.learn.multisource import partial_targets
from tagwise.project import Project
from tagwise.types import TagwiseError
from tagwise.workflows import taxonomy_changes as tc

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 300


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """A project with a trained current model, copied fresh for each test that changes it."""
    from tagwise.workflows.train import train

    root = tmp_path_factory.mktemp("taxchg")
    project = emotion_project(root, LIMIT)
    project.store.set_meta("encoder", "hashing:256")
    train(project, mode="supervised", progress=False)
    project.close()
    return root / "p"


@pytest.fixture
def project(trained, tmp_path):
    import shutil

    shutil.copytree(trained, tmp_path / "p")
    p = Project.open(tmp_path / "p")
    yield p
    p.close()


def _known(project, label):
    ex = project.examples(labeled=True)
    tax = project.taxonomy
    Y, known = partial_targets(ex, tax)
    k = tax.labels.index(label)
    return ex, Y[:, k], known[:, k]


def test_rename_keeps_judgements_and_model(project):
    from tagwise.workflows.evaluate import evaluate

    before = evaluate(project, split="train", save=False)
    ex0, y0, k0 = _known(project, "amusement")
    assert y0.sum() > 0
    change = tc.rename_label(project, "amusement", "fun")
    assert change["train_suggested"]
    tax = project.taxonomy
    assert "fun" in tax.labels and "amusement" not in tax.labels and tax.parents["fun"] == "joy"
    ex1, y1, k1 = _known(project, "fun")
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(k0, k1)
    # the source's spec now maps its own label onto the new name, so a re-ingest lands on it
    spec = next(s for s in project.store.sources() if s["name"] == "goemotions")["spec"]
    assert spec["raw"]["labels"]["map"]["amusement"] == "fun"
    after = evaluate(project, split="train", save=False)
    assert after["per_label"]["fun"] == before["per_label"]["amusement"]
    for key in ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_ap", "ece", "subset_accuracy"):
        assert after[key] == before[key]


def test_merge_is_the_union_and_undo_restores_the_dump(project):
    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.models import load_project_model

    dump = project.store.dump_label_tables()
    model_json = (project.models_dir / project.models_dir.joinpath("CURRENT").read_text().strip() / "model.json").read_text()
    ex, ya, ka = _known(project, "annoyance")
    _, yb, kb = _known(project, "disapproval")
    assert ya.sum() > 0 and yb.sum() > 0
    loaded = load_project_model(project)
    X = project.features(ex, loaded.encoder)
    P0 = loaded.head.predict_proba(X)
    pa, pb = P0[:, loaded.labels.index("annoyance")], P0[:, loaded.labels.index("disapproval")]

    from tagwise.workflows.weak import apply_lfs, load_votes

    lfs = project.path.parent / "lfs.yaml"
    lfs.write_text("lfs:\n  - {name: kw_annoy, label: annoyance, kind: keywords, any: [annoying, ugh]}\n"
                   "  - {name: kw_disapprove, label: disapproval, kind: keywords, any: [wrong, bad]}\n")
    assert apply_lfs(project, lfs, progress=False)["n_votes"] > 0
    dump = project.store.dump_label_tables()
    votes_before = load_votes(project)["votes"].nnz

    change = tc.merge_labels(project, ["annoyance", "disapproval"], into="irritation")
    assert change["train_suggested"]
    votes = load_votes(project)
    assert votes["votes"].nnz == votes_before
    assert {votes["label_names"][k] for k in votes["lf_labels"]} == {"irritation"}
    assert {lf["definition"]["labels"][0] for lf in project.store.lfs()} == {"irritation"}
    ex2, yc, kc = _known(project, "irritation")
    assert ex2.ids.tolist() == ex.ids.tolist()
    np.testing.assert_array_equal(yc, np.maximum(ya, yb))
    np.testing.assert_array_equal(kc, ka | kb)
    assert project.taxonomy.parents["irritation"] == "anger"
    # the current model serves the merged label as the max of the two heads
    loaded = load_project_model(project)
    assert "irritation" in loaded.labels and "annoyance" not in loaded.labels
    P1 = loaded.head.predict_proba(X)
    np.testing.assert_allclose(P1[:, loaded.labels.index("irritation")], np.maximum(pa, pb))
    assert "irritation" in evaluate(project, split="train", save=False)["per_label"]

    undone = tc.undo(project)
    assert [u["id"] for u in undone] == [change["id"]]
    assert project.store.dump_label_tables() == dump
    name = project.models_dir.joinpath("CURRENT").read_text().strip()
    assert (project.models_dir / name / "model.json").read_text() == model_json
    assert tc.history(project)[-1]["undone_at"] is not None
    with pytest.raises(TagwiseError, match="no taxonomy change to undo"):
        tc.undo(project)


def test_split_children_unknown_on_parent_positives_and_queued(project):
    from tagwise.workflows.queue import _queued

    ex, ya, ka = _known(project, "amusement")
    change = tc.split_label(project, "amusement", ["wit", "silliness"], keep_parent=True)
    tax = project.taxonomy
    assert tax.parents["wit"] == "amusement" and tax.parents["silliness"] == "amusement"
    for child in ("wit", "silliness"):
        ex2, yc, kc = _known(project, child)
        assert not kc[ya > 0].any()          # unknown on the parent's positives
        neg = ka & (ya == 0)
        assert neg.any() and kc[neg].all() and (yc[neg] == 0).all()   # the parent's negatives stay negatives
    queued = tc.split_examples(project)
    positives = set(ex.ids[ya > 0].tolist())
    assert set(queued) == positives and positives
    rows, runs = _queued(project)
    assert positives <= set(rows) and {rows[e]["reason"] for e in positives} == {"split:amusement"}
    assert change["queued_batch"] in set(runs.values())
    from tagwise.workflows.queue import label_queue

    served = label_queue(project, user="ann1", limit=10, predict=lambda texts, sources: [
        {"labels": [], "scores": {}} for _ in texts])
    assert served["items"] and {it["reason"] for it in served["items"]} == {"split:amusement"}


def test_split_then_label_the_queue_then_retrain_trains_the_children(project):
    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.labels import annotate
    from tagwise.workflows.models import load_project_model
    from tagwise.workflows.train import train

    tc.split_label(project, "amusement", ["laughter", "wit"], keep_parent=True)
    queued = tc.split_examples(project)
    ex = project.store.examples()
    texts = dict(zip(ex.ids.tolist(), ex.texts))
    # a person labels the queued examples: laughing out loud vs. the rest
    for e in queued[:50]:
        t = texts[e].lower()
        child = "laughter" if any(w in t for w in ("lol", "haha", "lmao", "laugh", "funny")) else "wit"
        annotate(project, e, ["amusement", child], "ann1")
    assert tc.split_examples(project) == queued[50:]
    # the old model still evaluates (on the labels it knows) until retrained
    assert "amusement" in evaluate(project, split="train", save=False)["per_label"]
    with pytest.raises(TagwiseError, match="labeled after the change"):
        tc.undo(project)
    train(project, mode="supervised", progress=False)
    loaded = load_project_model(project)
    assert {"laughter", "wit"} <= set(loaded.labels)
    report = evaluate(project, split="train", save=False)
    assert report["per_label"]["laughter"]["support"] > 0 and report["per_label"]["wit"]["support"] > 0


def test_split_without_parent_and_add_retire_move(project):
    ex, yj, kj = _known(project, "joy")
    tc.split_label(project, "gratitude", ["thanks", "appreciation"])
    tax = project.taxonomy
    assert "gratitude" not in tax.labels and tax.parents["thanks"] == "joy"
    _, yj2, kj2 = _known(project, "joy")
    np.testing.assert_array_equal(yj, yj2)     # gratitude's positives stay joy positives
    np.testing.assert_array_equal(kj, kj2)
    tc.add_label(project, "awe", parent="surprise", description="Wonder mixed with reverence.")
    _, ya, ka = _known(project, "awe")
    assert project.taxonomy.parents["awe"] == "surprise" and ya.sum() == 0
    tc.move_label(project, "awe", None)
    assert "awe" not in project.taxonomy.parents
    with pytest.raises(TagwiseError, match="cycle"):
        tc.move_label(project, "joy", "amusement")
    tc.retire_label(project, "excitement")
    assert "excitement" not in project.taxonomy.labels
    assert "excitement" in project.store.get_meta("retired_labels")
    assert all("excitement" not in (lab or []) for lab in project.examples().labels)
    from tagwise.workflows.models import load_project_model
    assert "excitement" not in load_project_model(project).labels
    dump_all = [c["kind"] for c in tc.history(project)]
    assert dump_all == ["split", "add", "move", "retire"]


def _rename_in_process(args):
    path, renames = args
    p = Project.open(path)
    try:
        for old, new in renames:
            tc.rename_label(p, old, new)
    finally:
        p.close()
    return [new for _, new in renames]


def test_concurrent_changes_are_serialized(project):
    """A second process (a CLI beside the server, say) renames four labels while four threads of this one,
    each on its own connection, rename four others: every change is kept, each in the history once."""
    path = str(project.path)
    pairs = [("annoyance", "annoyance2"), ("nervousness", "nervousness2"), ("approval", "approval2"),
             ("pride", "pride2"), ("grief", "grief2"), ("relief", "relief2"), ("desire", "desire2"),
             ("caring", "caring2")]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        other = pool.map_async(_rename_in_process, [(path, pairs[k:k + 1]) for k in range(0, 4)])
        for _ in range(600):  # start while the other process is at work (it needs seconds to import)
            if tc.history(project) or other.ready():
                break
            time.sleep(0.05)
        with ThreadPoolExecutor(4) as threads:
            here = list(threads.map(_rename_in_process, [(path, pairs[k:k + 1]) for k in range(4, 8)]))
        done = [n for names in other.get(timeout=300) + here for n in names]
    assert sorted(done) == sorted(b for _, b in pairs)
    p = Project.open(path)
    labels = set(p.taxonomy.labels)
    assert all(b in labels and a not in labels for a, b in pairs)    # no change lost
    assert len(tc.history(p)) == 8
    for s in p.store.sources():
        assert not {a for a, _ in pairs} & set(s["annotated"])
    name = p.models_dir.joinpath("CURRENT").read_text().strip()
    model_labels = set(json.loads((p.models_dir / name / "model.json").read_text())["info"]["labels"])
    assert {b for _, b in pairs} <= model_labels                     # the model's map kept every rename too
    p.close()


def _cli(*args):
    """``tagwise ARGS`` in this process (the parser and commands as the console runs them)."""
    from types import SimpleNamespace

    from tagwise.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_cli_every_command(project):
    path = str(project.path)
    dump = project.store.dump_label_tables()
    project.close()
    r = subprocess.run([sys.executable, "-m", "tagwise", "taxonomy", "add", path, "awe", "--parent", "surprise",
                        "--description", "wonder"], capture_output=True, text=True, cwd=ROOT,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr
    r = _cli("taxonomy", "rename", path, "awe", "wonder")
    assert r.returncode == 0 and "train" in r.stdout, r.stderr
    r = _cli("taxonomy", "merge", path, "annoyance", "disapproval", "--into", "irritation")
    assert r.returncode == 0 and "train" in r.stdout, r.stderr
    r = _cli("taxonomy", "split", path, "amusement", "--into", "wit", "silliness", "--keep-parent")
    assert r.returncode == 0 and "queued" in r.stdout, r.stderr
    r = _cli("taxonomy", "move", path, "wonder", "--root")
    assert r.returncode == 0, r.stderr
    r = _cli("taxonomy", path, "retire", "pride")            # the older GROUP PROJECT ACTION order
    assert r.returncode == 0 and "train" in r.stdout, r.stderr
    r = _cli("taxonomy", "rename", path, "nope", "x")
    assert r.returncode == 2 and "no label 'nope'" in r.stderr
    r = _cli("taxonomy", "history", path, "--json")
    assert r.returncode == 0, r.stderr
    hist = json.loads(r.stdout)
    assert [h["kind"] for h in hist] == ["add", "rename", "merge", "split", "move", "retire"]
    r = _cli("taxonomy", "history", path)
    assert r.returncode == 0 and "merge" in r.stdout
    r = _cli("taxonomy", "undo", path)
    assert r.returncode == 0 and "retire" in r.stdout, r.stderr
    r = _cli("taxonomy", "undo", path, "--to", str(hist[0]["id"]))
    assert r.returncode == 0, r.stderr
    p = Project.open(path)
    assert p.store.dump_label_tables() == dump
    assert all(h["undone_at"] for h in tc.history(p))
    p.close()


def test_undo_refuses_when_a_rewritten_row_changed_since(project):
    ex, y, _ = _known(project, "gratitude")
    tc.rename_label(project, "gratitude", "thanks")
    target = int(ex.ids[np.flatnonzero(y)[0]])
    project.store.set_labels({target: ["joy"]}, batch="manual-fix")
    dump = project.store.dump_label_tables()
    with pytest.raises(TagwiseError, match="changed after taxonomy change"):
        tc.undo(project)
    assert project.store.dump_label_tables() == dump          # nothing was undone
    assert "thanks" in project.taxonomy.labels and tc.history(project)[-1]["undone_at"] is None


def test_a_judgement_speaks_only_for_the_labels_that_existed_when_it_was_made(project):
    """A person's full-taxonomy annotation is not a negative for a label added, or split off a label it
    had, after it was made; a judgement made after the change is known for every label."""
    from tagwise.workflows.labels import annotate

    ex, ya, _ = _known(project, "amusement")
    with_amusement = [int(e) for e in ex.ids[ya > 0][:2]]
    without = [int(e) for e in ex.ids[ya == 0][:2]]
    for e in with_amusement:
        annotate(project, e, ["amusement", "joy"], "ann1")
    for e in without:
        annotate(project, e, ["anger"], "ann1")
    earlier = with_amusement + without
    tc.add_label(project, "awe", description="Wonder mixed with reverence.")
    ex1, y1, k1 = _known(project, "awe")
    row = {int(e): i for i, e in enumerate(ex1.ids)}
    assert not k1[[row[e] for e in earlier]].any()          # labeled before awe existed: unknown
    later_pos, later_neg = without[0], with_amusement[0]
    annotate(project, later_pos, ["awe", "surprise"], "ann2")
    annotate(project, later_neg, ["amusement", "joy"], "ann2")
    ex2, y2, k2 = _known(project, "awe")
    row = {int(e): i for i, e in enumerate(ex2.ids)}
    assert k2[row[later_pos]] and y2[row[later_pos]] == 1
    assert k2[row[later_neg]] and y2[row[later_neg]] == 0     # judged after the add: a known negative
    assert not k2[row[without[1]]]

    tc.split_label(project, "amusement", ["wit", "silliness"], keep_parent=True)
    for child in ("wit", "silliness"):
        ex3, yc, kc = _known(project, child)
        row = {int(e): i for i, e in enumerate(ex3.ids)}
        assert not kc[[row[e] for e in with_amusement]].any()   # the judgement had amusement: which child?
        assert kc[[row[e] for e in without]].all() and (yc[[row[e] for e in without]] == 0).all()
    assert set(with_amusement) <= set(tc.split_examples(project))
    assert not set(without) & set(tc.split_examples(project))
    # renaming an added label carries its unknown cells; undoing the add removes them
    tc.rename_label(project, "awe", "wonder")
    ex4, _, k4 = _known(project, "wonder")
    row = {int(e): i for i, e in enumerate(ex4.ids)}
    assert not k4[row[without[1]]] and k4[row[later_pos]]


def test_split_without_parent_keeps_the_parents_negatives_for_the_children(project):
    ex, yg, kg = _known(project, "gratitude")
    assert (kg & (yg == 0)).any() and (yg > 0).any()
    tc.split_label(project, "gratitude", ["thanks", "appreciation"])
    for child in ("thanks", "appreciation"):
        ex2, yc, kc = _known(project, child)
        assert ex2.ids.tolist() == ex.ids.tolist()
        np.testing.assert_array_equal(kc, kg & (yg == 0))    # unknown on the positives, negatives stay
        assert (yc == 0).all()
    # the same cells count in evaluate's claimed mask
    from tagwise.workflows.evaluate import claimed_mask

    tax = project.taxonomy
    ex2 = project.examples(labeled=True)
    mask = claimed_mask(ex2, tax, tax.space)
    assert not mask[yg > 0][:, tax.labels.index("thanks")].any()
    tc.undo(project)
    _, yg2, kg2 = _known(project, "gratitude")
    np.testing.assert_array_equal(kg, kg2)
    assert project.examples(labeled=True).unknown_labels is None


def test_split_prefills_the_queue_with_the_childrens_zero_shot_scores(project):
    """The split's batch carries each child's zero-shot score from its name (and description), the
    guess being the children above their cut plus the kept parent; the label queue keeps them beside
    the current model's scores (which has no head for the children)."""
    from tagwise.workflows.queue import _queued, label_queue

    change = tc.split_label(project, "amusement", ["funny", "sarcasm"], keep_parent=True)
    rows, _ = _queued(project)
    batch = [rows[e] for e in change["result"]["queued"]]
    assert batch and all(set(x["scores"]) == {"funny", "sarcasm"} for x in batch)
    for x in batch:
        assert all(0 < v < 1 for v in x["scores"].values())
        assert x["predicted"] == ["amusement"] + [k for k in ("funny", "sarcasm") if x["scores"][k] >= 0.5]
    has_word = np.array(["funny" in x["text"].lower() for x in batch])
    funny = np.array([x["scores"]["funny"] for x in batch])
    assert has_word.any() and (~has_word).any()
    assert funny[has_word].mean() > funny[~has_word].mean()     # the name's word ranks its texts higher
    served = label_queue(project, user="ann1", limit=len(batch))
    by_id = {x["store_id"]: x for x in batch}
    for it in served["items"]:   # the model serves the children's zero-shot scores until retrained
        assert it["scores"]["funny"] == pytest.approx(by_id[it["example_id"]]["scores"]["funny"], abs=1e-4)
        assert "joy" in it["scores"]                                  # the model's own labels, too


def test_until_retrained_the_model_serves_zero_shot_scores_for_an_added_label(project):
    from tagwise.workflows.predict import predict_texts
    from tagwise.workflows.train import train

    texts = ["I am in awe of this view, simply wonderful", "the bus was late again"]
    before = predict_texts(project, texts)
    tc.add_label(project, "awe", parent="surprise", description="Wonder mixed with reverence.")
    out = predict_texts(project, texts)
    assert out["labels"] == before["labels"] + ["awe"] and out["model"] == before["model"]
    expected = tc.zero_shot_scores(project, ["awe"], texts)[:, 0]
    for pred, old, p in zip(out["predictions"], before["predictions"], expected):
        assert pred["scores"]["awe"] == pytest.approx(p, abs=1e-5)
        assert {k: v for k, v in pred["scores"].items() if k != "awe"} == old["scores"]
        assert ("awe" in pred["labels"]) == (p >= 0.5)
    assert out["predictions"][0]["scores"]["awe"] > out["predictions"][1]["scores"]["awe"]
    tc.undo(project)
    assert predict_texts(project, texts)["labels"] == before["labels"]
    tc.add_label(project, "awe", parent="surprise")
    train(project, mode="supervised", progress=False)            # retrained: the label is the head's own
    from tagwise.workflows.models import load_project_model

    loaded = load_project_model(project)
    assert "awe" in loaded.labels and tc.with_zero_shot_labels(project, loaded) is loaded


def test_each_judgement_speaks_for_the_labels_of_its_time_in_the_team_and_consensus_views(project):
    """The team's agreement and the annotator consensus read a judgement made before a split, or before
    an add, as no vote on the new labels (the split's children: only where it had the split label)."""
    from tagwise.workflows.annotators import load_annotations
    from tagwise.workflows.labels import annotate
    from tagwise.workflows.team import team_annotations

    ex, yg, _ = _known(project, "gratitude")
    had, had_not = [int(e) for e in ex.ids[yg > 0][:2]], [int(e) for e in ex.ids[yg == 0][:2]]
    for who in ("ann1", "ann2"):
        for e in had:
            annotate(project, e, ["gratitude", "joy"], who)
        for e in had_not:
            annotate(project, e, ["anger"], who)
    tc.split_label(project, "gratitude", ["thanks", "appreciation"])
    tc.add_label(project, "awe")
    annotate(project, had_not[0], ["awe"], "ann3")             # after both changes: known for every label

    team = team_annotations(project)
    data = load_annotations(project)
    for view in (team, data):
        ann, ids, names = view["annotations"], list(view["ids"]), view["labels"]
        M = ann.votes()
        rows_of = {e: np.flatnonzero(ann.example == ids.index(e)) for e in had + had_not}
        for child in ("thanks", "appreciation"):
            k = names.index(child)
            assert not M[np.concatenate([rows_of[e] for e in had]), k].any()      # it had gratitude: no vote
        awe = names.index("awe")
        before = [r for e in had + had_not for r in rows_of[e] if ann.annotator[r] != view["annotators"].index("ann3")]
        assert not M[before, awe].any()
    # the team view: a judgement made after the add votes on it (the consensus view knows only the
    # labels a source annotates)
    ann, ids = team["annotations"], list(team["ids"])
    after = np.flatnonzero((ann.example == ids.index(had_not[0])) & (ann.annotator == team["annotators"].index("ann3")))
    assert len(after) == 1 and ann.votes()[after, team["labels"].index("awe")].all()
    # people's judgements without gratitude are known negatives for its children (their source annotated it)
    M = team["annotations"].votes()
    rows = np.concatenate([np.flatnonzero(team["annotations"].example == list(team["ids"]).index(e)) for e in had_not])
    assert M[rows, team["labels"].index("thanks")].all()
