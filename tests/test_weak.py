"""Weak supervision: label model on WRENCH votes, the LF engine, stored votes and the `lf` CLI."""
import json
import re

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from tagwise.learn.labelmodel import WeakLabelModel, votes_from_multiclass
from tagwise.learn.persist import load_model, save_model
from tagwise.project import Project
from tagwise.learn.lfs import LFContext, apply_lfs, load_lfs, read_wrench, wrench_to_votes
from tagwise.types import TagwiseError


def wrench(data_dir, name, split):
    return read_wrench(data_dir / "wrench" / name / f"{split}.json")


def voted_rows(votes, j=None):
    """Rows with a (non-abstain) vote, in column j or in any column."""
    M = votes if j is None else votes[:, [j]]
    return sorted(set(M.tocoo().row.tolist()))


def accuracy(P, y):
    return float((P.argmax(axis=1) == y).mean())


def majority_vote(L, n_classes):
    counts = np.stack([(L == c).sum(axis=1) for c in range(n_classes)], axis=1).astype(float)
    return counts + 1e-9 * (np.arange(n_classes) == 0)  # uncovered / ties -> class 0, like argmax


# -- label model -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["youtube", "trec"])
def test_label_model_beats_majority_vote_on_wrench_valid(data_dir, name):
    train, valid = wrench(data_dir, name, "train"), wrench(data_dir, name, "valid")
    K = len(train["class_names"])
    both = np.vstack([train["weak_labels"], valid["weak_labels"]])
    V, lf_labels, sources = votes_from_multiclass(both, K)
    n = len(train["texts"])
    balance = np.bincount(valid["gold"], minlength=K) / len(valid["gold"])
    model = WeakLabelModel(n_labels=K, exclusive=True).fit(V[:n], lf_labels, class_balance=balance)
    P = model.predict_proba(V[n:])
    assert P.shape == (len(valid["texts"]), K)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    assert accuracy(P, valid["gold"]) >= accuracy(majority_vote(valid["weak_labels"], K), valid["gold"])
    # every original LF keeps one column per class it votes
    assert set(sources.tolist()) == set(np.flatnonzero((both != -1).any(axis=0)).tolist())


def test_multiclass_votes_reject_out_of_range_class():
    with pytest.raises(TagwiseError, match="neither a class id"):
        votes_from_multiclass(np.array([[0, 3], [-1, 1]]), n_classes=2)


def test_gold_rows_are_clamped_and_anchor_the_lfs(data_dir):
    train = wrench(data_dir, "youtube", "train")
    V, lf_labels, _ = votes_from_multiclass(train["weak_labels"], 2)
    gold = np.full((len(train["gold"]), 2), -1)
    labeled = np.arange(0, len(gold), 10)
    gold[labeled] = np.eye(2, dtype=int)[train["gold"][labeled]]
    plain = WeakLabelModel(n_labels=2, exclusive=True).fit(V, lf_labels)
    anchored = WeakLabelModel(n_labels=2, exclusive=True).fit(V, lf_labels, gold=gold)
    assert anchored.predict_proba(V[labeled]).shape == (len(labeled), 2)
    # gold gives the class balance (EM alone drifts towards the class the strongest LFs vote)
    true_balance = np.bincount(train["gold"], minlength=2) / len(train["gold"])
    assert np.abs(anchored.class_balance_ - true_balance).max() < np.abs(plain.class_balance_ - true_balance).max()
    _, _, sources = votes_from_multiclass(train["weak_labels"], 2)
    L = train["weak_labels"]
    emp = np.array([(L[L[:, s] != -1, s] == train["gold"][L[:, s] != -1]).mean() for s in sources])
    est = anchored.lf_accuracies_
    # anchored estimates of each LF's accuracy are closer to the real ones, and rank them alike
    assert np.abs(est - emp).mean() < np.abs(plain.lf_accuracies_ - emp).mean()
    assert np.corrcoef(est, emp)[0, 1] > 0.5


def test_multilabel_with_positive_and_negative_votes_and_persistence(data_dir, tmp_path):
    """SemEval E-c tweets, keyword LFs written from label names: several labels per example."""
    import csv

    with open(data_dir / "semeval2018_ec_en" / "E-c-En-train.txt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:1500]
    names = ["anger", "joy", "sadness", "fear"]
    texts = [r["Tweet"] for r in rows]
    Y = np.array([[int(r[n]) for n in names] for r in rows])
    doc = {"lfs": [
        {"name": "kw_anger", "label": "anger", "kind": "keywords", "any": ["angry", "hate", "furious", "rage"]},
        {"name": "kw_anger2", "label": "anger", "kind": "regex", "pattern": r"\b(mad|pissed|annoy\w*)\b"},
        {"name": "kw_joy", "label": "joy", "kind": "keywords", "any": ["happy", "love", "great", "excited"]},
        {"name": "kw_joy2", "label": "joy", "kind": "regex", "pattern": r"[😂😊❤😍]"},
        {"name": "kw_sad", "label": "sadness", "kind": "keywords", "any": ["sad", "depressed", "cry", "miss"]},
        {"name": "kw_fear", "label": "fear", "kind": "keywords", "any": ["scared", "afraid", "nervous", "anxiety"]},
        {"name": "not_joy", "label": "joy", "kind": "keywords", "any": ["sad", "angry", "hate"], "vote": "negative"},
    ]}
    path = tmp_path / "lfs.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    lfs = load_lfs(path, names)
    out = apply_lfs(lfs, texts, progress=False)
    V, lf_labels = out.votes, out.lf_labels(names)
    assert sp.issparse(V) and V.shape == (len(texts), 7) and set(np.unique(V.data)) <= {-1, 1}
    model = WeakLabelModel(n_labels=4).fit(V, lf_labels)
    P = model.predict_proba(V)
    assert P.shape == (len(texts), 4) and (P >= 0).all() and (P <= 1).all()
    for k in range(4):  # an example an LF votes positive for is more likely to have the label
        fired = np.asarray((V[:, lf_labels == k] > 0).sum(axis=1)).ravel() > 0
        assert Y[fired, k].mean() > Y[~fired, k].mean()
        assert P[fired, k].mean() > P[~fired, k].mean()
    neg = np.asarray((V[:, 6] < 0).todense()).ravel()
    joy_pos = np.asarray((V[:, lf_labels == 1] > 0).sum(axis=1)).ravel() > 0
    both = neg & joy_pos
    if both.any():  # a negative vote pulls joy down against the same positive evidence
        only = joy_pos & ~neg
        assert P[both, 1].mean() < P[only, 1].mean()
    save_model(model, tmp_path / "lm")
    loaded, _ = load_model(tmp_path / "lm")
    np.testing.assert_allclose(loaded.predict_proba(V), P)


def test_duplicated_lf_is_counted_about_once(data_dir):
    train = wrench(data_dir, "youtube", "train")
    L = train["weak_labels"]
    L_dup = np.hstack([L] + [L[:, [1]]] * 4)  # keyword_subscribe five times
    V, lf_labels, sources = votes_from_multiclass(L_dup, 2)
    model = WeakLabelModel(n_labels=2, exclusive=True).fit(V, lf_labels)
    copies = np.isin(sources, [1, 10, 11, 12, 13])
    assert model.lf_weights_[copies].max() < 0.4
    assert model.lf_weights_[~copies].min() > 0.5


# -- LF engine -----------------------------------------------------------------------
def write_lfs(tmp_path, lfs, name="lfs.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"lfs": lfs}))
    return path


@pytest.mark.parametrize("entry, message", [
    ({"name": "bad_re", "label": "SPAM", "kind": "regex", "pattern": "(unclosed"}, "bad_re.*does not compile"),
    ({"name": "kw", "label": "SPAMM", "kind": "keywords", "any": ["x"]}, "unknown label 'SPAMM'.*Did you mean 'SPAM'"),
    ({"name": "old", "kind": "model", "model": "no/such/model"}, "old.*no saved tagwise model"),
    ({"name": "kw", "label": "SPAM", "kind": "keyword", "any": ["x"]}, "kind is 'keyword'"),
    ({"name": "kw", "label": "SPAM", "kind": "keywords", "anyy": ["x"]}, "unknown field 'anyy'.*'any'"),
])
def test_bad_lf_gives_one_clear_error(tmp_path, entry, message):
    path = write_lfs(tmp_path, [entry])
    with pytest.raises(TagwiseError, match=message) as err:
        load_lfs(path, ["HAM", "SPAM"])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


PY_LFS = '''
from tagwise.learn.lfs import labeling_function

@labeling_function(label="SPAM")
def shouty(text):
    if "psy" in text.lower():
        raise ValueError("cannot handle psy")
    return sum(c.isupper() for c in text) > 0.5 * max(len(text), 1)
'''


def test_failing_lf_is_reported_and_others_apply_only_with_skip_failing(data_dir, tmp_path):
    test = wrench(data_dir, "youtube", "test")
    texts = test["texts"]
    assert any("psy" in t.lower() for t in texts)
    (tmp_path / "my_lfs.py").write_text(PY_LFS)
    path = write_lfs(tmp_path, [
        {"name": "kw_subscribe", "label": "SPAM", "kind": "keywords", "any": ["subscribe"]},
        {"name": "py_shouty", "kind": "python", "module": "my_lfs.py", "function": "shouty"},
    ])
    lfs = load_lfs(path, ["HAM", "SPAM"])
    first_psy = next(i for i, t in enumerate(texts) if "psy" in t.lower())
    with pytest.raises(TagwiseError, match=rf"py_shouty.*example {test['ids'][first_psy]}.*--skip-failing"):
        apply_lfs(lfs, texts, ids=test["ids"], progress=False)
    out = apply_lfs(lfs, texts, ids=test["ids"], skip_failing=True, progress=False)
    assert [c for c, _ in out.columns] == ["kw_subscribe"]
    assert out.failed[0]["lf"] == "py_shouty" and out.failed[0]["example"] == test["ids"][first_psy]
    # keywords match whole words: "subscribers" is not "subscribe"
    expected = [i for i, t in enumerate(texts) if re.search(r"\bsubscribe\b", t, re.IGNORECASE)]
    assert voted_rows(out.votes) == expected


def test_seeds_and_zero_shot_lfs_vote_near_their_prompts(tmp_path, use_cache):
    from tagwise.encoders import embed_texts, get_encoder

    enc = get_encoder("use")
    texts = ["check out my channel and subscribe", "subscribe to my channel please",
             "this song is beautiful", "i love this song so much", "visit my page for free gifts",
             "great video, shakira is amazing"]
    path = write_lfs(tmp_path, [
        {"name": "near_spam", "label": "SPAM", "kind": "seeds", "examples": ["please subscribe to my channel"],
         "min_similarity": 0.6},
        {"name": "zs_spam", "label": "SPAM", "kind": "zero-shot", "min_score": 0.5}])
    ctx = LFContext(embed=lambda t: embed_texts(list(t), enc, use_cache, progress=False)[0], label_names=["HAM", "SPAM"],
                    descriptions={"SPAM": "self-promotion, asking people to subscribe or visit a channel",
                                  "HAM": "a comment about the song or the video"})
    out = apply_lfs(load_lfs(path, ["HAM", "SPAM"]), texts, context=ctx, progress=False)
    seeds = set(voted_rows(out.votes, 0))
    assert {0, 1} <= seeds and not seeds & {2, 3, 5}
    zs = set(voted_rows(out.votes, 1))
    assert zs and not zs & {2, 3}
    # a saved model votes every label it predicts (one column per label)
    from tagwise.learn.linear import MultiLabelLinear

    X = ctx.embed(texts)
    Y = np.array([[0, 1], [0, 1], [1, 0], [1, 0], [0, 1], [1, 0]])
    head = MultiLabelLinear(C=10.0, thresholds=0.5).fit(X, Y)
    save_model(head, tmp_path / "models" / "old", {"labels": ["HAM", "SPAM"]})
    path = write_lfs(tmp_path, [{"name": "old", "kind": "model", "model": "models/old"}], "model_lfs.yaml")
    out = apply_lfs(load_lfs(path, ["HAM", "SPAM"]), texts, context=ctx, progress=False)
    assert [c for c, _ in out.columns] == ["old:HAM", "old:SPAM"]
    pred = head.predict(X)
    for j in range(2):
        assert voted_rows(out.votes, j) == sorted(np.flatnonzero(pred[:, j]).tolist())


def test_wrench_import_maps_classes_to_labels(data_dir):
    valid = wrench(data_dir, "youtube", "valid")
    out = wrench_to_votes(valid["weak_labels"], valid["class_names"])
    assert out.votes.shape[0] == len(valid["texts"])
    assert out.votes.nnz == int((valid["weak_labels"] != -1).sum())
    for j, (col, label) in enumerate(out.columns):
        src = int(col.split("_")[1].split(":")[0])
        rows = voted_rows(out.votes, j)
        assert (valid["weak_labels"][rows, src] == valid["class_names"].index(label)).all()


# -- project level --------------------------------------------------------------------
@pytest.fixture
def youtube_project(data_dir, tmp_path, shared_embedding_cache):
    test = wrench(data_dir, "youtube", "test")
    for split, part in (("train", range(0, 150)), ("dev", range(150, len(test["texts"])))):
        with open(tmp_path / f"yt_{split}.jsonl", "w", encoding="utf-8") as f:
            for i in part:
                f.write(json.dumps({"text": test["texts"][i], "labels": [test["class_names"][test["gold"][i]]]}) + "\n")
    spec = tmp_path / "yt.yaml"
    spec.write_text(yaml.safe_dump({"name": "yt", "splits": {"train": "yt_train.jsonl", "dev": "yt_dev.jsonl"},
                                    "format": "jsonl", "columns": {"text": "text", "labels": "labels"},
                                    "labels": {"format": "list"}}))
    project = Project.init(tmp_path / "p")
    project.add_source(spec)
    return project, test


def stored_lfs(project):
    return sorted({lf for lf, *_ in project.store.lf_vote_cells()})


def test_apply_analyze_and_no_stale_votes_after_removing_an_lf(youtube_project, tmp_path):
    from tagwise.workflows.weak import analyze_lfs, apply_lfs as apply_project, weak_training_targets

    project, test = youtube_project
    lfs = [{"name": "kw_subscribe", "label": "SPAM", "kind": "keywords", "any": ["subscribe"]},
           {"name": "re_link", "label": "SPAM", "kind": "regex", "pattern": r"https?://|\.com"},
           {"name": "kw_song", "label": "HAM", "kind": "keywords", "any": ["song", "shakira"]},
           {"name": "not_spam_song", "label": "SPAM", "kind": "keywords", "any": ["song"], "vote": "negative"}]
    summary = apply_project(project, write_lfs(tmp_path, lfs), progress=False)
    assert summary["n_lfs"] == 4 and stored_lfs(project) == sorted(lf["name"] for lf in lfs)
    report = analyze_lfs(project)
    by_col = {r["column"]: r for r in report["lfs"]}
    n_sub = sum(bool(re.search(r"\bsubscribe\b", t, re.IGNORECASE)) for t in test["texts"])
    assert by_col["kw_subscribe"]["coverage"] == pytest.approx(n_sub / len(test["texts"]), abs=1e-4)
    gold_spam = np.array(test["gold"]) == 1
    hits = np.array([bool(re.search(r"\bsubscribe\b", t, re.IGNORECASE)) for t in test["texts"]])
    assert by_col["kw_subscribe"]["empirical_accuracy"] == pytest.approx(gold_spam[hits].mean(), abs=1e-4)
    assert by_col["not_spam_song"]["polarity"] == "negative"
    # kw_song (HAM +) and not_spam_song (SPAM -) agree in a single-label project; kw_subscribe vs kw_song conflict
    both = hits & np.array([bool(re.search(r"\bsong\b", t, re.IGNORECASE)) for t in test["texts"]])
    assert by_col["kw_subscribe"]["conflicts"] >= both.mean() - 1e-4
    assert "| kw_subscribe |" in report["report_markdown"]
    targets = weak_training_targets(project)
    assert targets["exclusive"] and targets["targets"].shape[1] == 2
    ex = project.examples()
    train_ids = set(ex.ids[ex.splits == "train"].tolist())
    assert set(targets["ids"].tolist()) <= train_ids  # dev stays out
    row = {int(i): r for r, i in enumerate(targets["ids"])}
    for i, labels in zip(ex.ids, ex.labels):  # gold wins where present
        if int(i) in row:
            assert targets["targets"][row[int(i)], 1] == (1.0 if labels == ["SPAM"] else 0.0)
    # remove an LF and re-apply: its votes are gone
    apply_project(project, write_lfs(tmp_path, lfs[:2]), progress=False)
    assert stored_lfs(project) == ["kw_subscribe", "re_link"]
    assert {r["lf"] for r in analyze_lfs(project)["lfs"]} == {"kw_subscribe", "re_link"}


def test_cli_lf_import_apply_analyze(youtube_project, tmp_path, data_dir, capsys):
    from tagwise.cli import main

    project, test = youtube_project

    def run(*args):  # in-process: the CLI's parsing and error handling without a 10 s interpreter start
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = run("lf", "import", project.path, data_dir / "wrench" / "youtube" / "test.json")
    assert code == 0, err
    assert "for 250 of 250 items" in out
    path = write_lfs(tmp_path, [{"name": "bad", "label": "SPAM", "kind": "regex", "pattern": "(("}])
    code, _, err = run("lf", "apply", project.path, path)
    assert code == 2 and "'bad'" in err and "does not compile" in err and len(err.strip().splitlines()) == 1
    good = write_lfs(tmp_path, [{"name": "kw_check", "label": "SPAM", "kind": "keywords", "any": ["check out"]}])
    code, out, err = run("lf", "apply", project.path, good)
    assert code == 0 and "applied 1 LFs" in out, err
    code, out, err = run("lf", "analyze", project.path, "--json")
    assert code == 0, err
    rows = json.loads(out)["lfs"]
    lfs = {r["lf"] for r in rows}
    # imported LFs (named after the file's folder) stay beside the YAML ones
    assert "kw_check" in lfs and {f"youtube_{j}" for j in range(10)} <= lfs
    L = test["weak_labels"]
    for r in rows:
        if r["lf"].startswith("youtube_"):
            j = int(r["lf"].split("_")[1])
            assert r["coverage"] == pytest.approx((L[:, j] != -1).mean(), abs=1e-4)
    code, out, _ = run("lf", "analyze", project.path)
    assert code == 0 and "| kw_check | SPAM | positive |" in out
    # train --weak: the supervised head learns the label model's soft targets (gold wins on train)
    code, out, err = run("train", project.path, "--weak", "--params", '{"cv": 3}')
    assert code == 0 and "(weak)" in out, err
    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.models import load_project_model

    assert load_project_model(project).info["mode"] == "weak"
    assert evaluate(project, split="dev", save=False)["macro_f1"] > 0.6  # 100 held-out comments


def test_cli_skip_failing_and_versions(youtube_project, tmp_path, capsys):
    from tagwise.cli import main

    project, test = youtube_project
    (tmp_path / "my_lfs.py").write_text(PY_LFS)
    lfs = [{"name": "kw_subscribe", "label": "SPAM", "kind": "keywords", "any": ["subscribe"]},
           {"name": "py_shouty", "kind": "python", "module": "my_lfs.py", "function": "shouty"}]
    path = write_lfs(tmp_path, lfs)
    assert main(["lf", "apply", str(project.path), str(path)]) == 2
    err = capsys.readouterr().err
    assert "py_shouty" in err and "--skip-failing" in err
    assert stored_lfs(project) == []  # nothing half-applied
    assert main(["lf", "apply", str(project.path), str(path), "--skip-failing"]) == 0
    out = capsys.readouterr().out
    assert "skipped LF 'py_shouty'" in out and stored_lfs(project) == ["kw_subscribe"]
    version = {lf["name"]: lf["version"] for lf in project.store.lfs()}["kw_subscribe"]
    lfs[0]["any"] = ["subscribe", "channel"]
    main(["lf", "apply", str(project.path), str(write_lfs(tmp_path, lfs[:1]))])
    capsys.readouterr()
    assert {lf["name"]: lf["version"] for lf in project.store.lfs()}["kw_subscribe"] != version
    n_channel = sum(bool(re.search(r"\b(subscribe|channel)\b", t, re.IGNORECASE)) for t in test["texts"])
    assert len(project.store.lf_vote_cells()) == n_channel


def test_votes_of_reingested_examples_are_not_attached_to_other_texts(youtube_project, tmp_path):
    from tagwise.workflows.weak import apply_lfs as apply_project

    project, test = youtube_project
    lfs = [{"name": "kw_subscribe", "label": "SPAM", "kind": "keywords", "any": ["subscribe"]}]
    apply_project(project, write_lfs(tmp_path, lfs), progress=False)
    n_before = len(project.store.lf_vote_cells())
    assert n_before > 0
    # re-ingest with the rows in reverse order: ids now point at other texts
    for split in ("train", "dev"):
        path = tmp_path / f"yt_{split}.jsonl"
        path.write_text("".join(reversed(path.read_text(encoding="utf-8").splitlines(keepends=True))))
    project.add_source(tmp_path / "yt.yaml", replace=True)
    texts = dict(zip(project.examples().ids.tolist(), project.examples().texts))
    cells = project.store.lf_vote_cells()
    assert len(cells) < n_before
    assert all(re.search(r"\bsubscribe\b", texts[ex], re.IGNORECASE) for _, _, _, ex, _ in cells)
    apply_project(project, write_lfs(tmp_path, lfs), progress=False)  # re-applying restores them all
    assert len(project.store.lf_vote_cells()) == n_before


def test_label_coupling_lends_belief_to_co_occurring_labels(data_dir, tmp_path):
    """SemEval E-c: disgust has no LF of its own; the anger LFs reach it through the co-occurrences
    of a labeled half, and the other half shows that this belief is informative."""
    import csv

    from sklearn.metrics import roc_auc_score

    from tagwise.learn.labelmodel import label_coupling_from_gold

    with open(data_dir / "semeval2018_ec_en" / "E-c-En-train.txt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:3000]
    names = ["anger", "disgust", "joy", "sadness"]
    Y = np.array([[int(r[n]) for n in names] for r in rows])
    doc = {"lfs": [
        {"name": "kw_anger", "label": "anger", "kind": "keywords", "any": ["angry", "hate", "furious", "rage"]},
        {"name": "re_anger", "label": "anger", "kind": "regex", "pattern": r"\b(mad|pissed|annoy\w*)\b"},
        {"name": "kw_joy", "label": "joy", "kind": "keywords", "any": ["happy", "love", "great", "excited"]},
        {"name": "kw_sad", "label": "sadness", "kind": "keywords", "any": ["sad", "depressed", "cry", "miss"]},
    ]}
    path = tmp_path / "lfs.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = apply_lfs(load_lfs(path, names), [r["Tweet"] for r in rows], progress=False)
    V, lf_labels = out.votes, out.lf_labels(names)
    labeled, held_out = np.arange(1500), np.arange(1500, 3000)
    balance = Y[labeled].mean(axis=0)
    J = label_coupling_from_gold(Y[labeled])
    assert J.shape == (4, 4) and np.all(np.diag(J) == 0) and np.allclose(J, J.T)
    assert J[0, 1] > 0 and J[1, 2] < 0  # anger goes with disgust, disgust against joy
    plain = WeakLabelModel(n_labels=4).fit(V, lf_labels, class_balance=balance)
    coupled = WeakLabelModel(n_labels=4).fit(V, lf_labels, class_balance=balance, label_coupling=J)
    P0, P = plain.predict_proba(V[held_out]), coupled.predict_proba(V[held_out])
    assert np.ptp(P0[:, 1]) < 1e-9  # no LF, no coupling: disgust is its prior everywhere
    anger = np.asarray((V[held_out][:, lf_labels == 0] > 0).sum(axis=1)).ravel() > 0
    joy = np.asarray((V[held_out][:, lf_labels == 2] > 0).sum(axis=1)).ravel() > 0
    assert P[anger, 1].min() > P0[0, 1] > P[joy & ~anger, 1].max()
    # a constant belief scores 0.5: the coupled one ranks held-out disgust better than chance, by
    # more than a random ranking reaches one time in a hundred (0.5 + 2.33 null sd), not by a pinned figure
    y = Y[held_out, 1]
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    null_sd = np.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg))
    auroc = roc_auc_score(y, P[:, 1])
    assert auroc > 0.5 + 2.33 * null_sd, (auroc, null_sd)
    # and the belief follows the evidence: held-out tweets with anger votes are likelier disgusted
    assert y[anger].mean() > y[~anger].mean() and P[anger, 1].mean() > P[~anger, 1].mean()
    # strength 0 is the independent model; the gold rows alone give the same coupling
    off = WeakLabelModel(n_labels=4, coupling_strength=0.0).fit(V, lf_labels, class_balance=balance,
                                                               label_coupling=J)
    np.testing.assert_allclose(off.predict_proba(V[held_out]), P0)
    gold = np.full(Y.shape, -1)
    gold[labeled] = Y[labeled]
    from_gold = WeakLabelModel(n_labels=4).fit(V, lf_labels, class_balance=balance, gold=gold)
    np.testing.assert_allclose(from_gold.label_coupling_, J)
    save_model(coupled, tmp_path / "lm")
    loaded, _ = load_model(tmp_path / "lm")
    np.testing.assert_allclose(loaded.predict_proba(V[held_out]), P)
    with pytest.raises(TagwiseError, match=r"label_coupling has shape \(2, 2\); expected \(4, 4\)"):
        WeakLabelModel(n_labels=4).fit(V, lf_labels, label_coupling=np.zeros((2, 2)))
