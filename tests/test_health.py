"""Training data health, evaluate's trivial baselines, --as-source, --transfer with a test-only source and
shared test texts (issue 27, sections 2 and 5), on real data from ../shared/data:

- an abuse taxonomy (parent ``abuse``; children hate, aggressive, offensive) over HS-Brexit as a votes
  source (6 annotators' counts per label), ConvAbuse's abusive user turns as a source in which every row
  has the parent label, and HS-Brexit's dev tweets as a test-only gold source for ``hate``;
- GoEmotions' first 300 training comments (28 labels, several with fewer than five positives);
- AG News (four balanced topics) as the healthy case;
- ConvAbuse's whole crowd file (every judgement) beside its test split as a gold source: the crowd file
  holds the test texts.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tagwise.cli import main
from tagwise.project import Project
from tagwise.types import TagwiseError

from hs_brexit import hs_brexit_votes

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="../shared/data not available")
ENCODER = "hashing:256"  # the checks are about the data and the figures' logic, not the encoder


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def kinds(warnings, kind, source=None, label=None):
    return [w for w in warnings if w["kind"] == kind and (source is None or w["source"] == source)
            and (label is None or w["label"] == label)]


def _convabuse_majority(row: dict, columns: list[str]) -> bool:
    """Strict majority of the annotators who judged a ConvAbuse split row: any of ``columns`` set."""
    votes = []
    for a in range(1, 9):
        if (row.get(f"Annotator{a}_is_abuse.1") or "") == "":
            continue  # this annotator did not judge the row
        votes.append(any(max(int(float(x)) for x in (row.get(f"Annotator{a}_{c}") or "0").split(","))
                         for c in columns))
    return 2 * sum(votes) > len(votes)


ABUSIVE = ["is_abuse.-1", "is_abuse.-2", "is_abuse.-3"]


@pytest.fixture(scope="module")
def abuse(tmp_path_factory):
    """The abuse project, trained with the default `tagwise train` (multisource: two labeled sources)."""
    root = tmp_path_factory.mktemp("abuse")
    for split, name in (("train", "HS-Brexit_train.json"), ("test", "HS-Brexit_test.json")):
        with open(root / f"hs_{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "text", "hate", "aggressive", "offensive", "n"])
            for key, item in json.loads((DATA / "hs_brexit" / name).read_text()).items():
                v = hs_brexit_votes(item)
                w.writerow([key, item["text"], sum(v["hate"]), sum(v["aggressive"]), sum(v["offensive"]), 6])
    (root / "hs.yaml").write_text(
        "name: hs_votes\nsplits: {train: hs_train.csv, test: hs_test.csv}\ncolumns: {text: text, id: id}\n"
        "labels: {format: votes, columns: {hate: hate, aggressive: aggressive, offensive: offensive}, count: n}\n")
    rows = list(csv.DictReader(open(DATA / "convabuse" / "2_splits" / "ConvAbuseEMNLPtrain.csv", newline="")))
    with open(root / "ca.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "labels"])
        w.writerows([r["example_id"], r["user"], "abuse"] for r in rows if _convabuse_majority(r, ABUSIVE))
    (root / "ca.yaml").write_text("name: convabuse_abusive\npath: ca.csv\ncolumns: {text: text, id: id, labels: labels}\n"
                                  "labels: {format: delimited, delimiter: ';'}\n")
    dev = json.loads((DATA / "hs_brexit" / "HS-Brexit_dev.json").read_text())
    with open(root / "gold.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "labels"])
        w.writerows([k, it["text"], "hate" if str(it["hard_label"]).strip() == "1" else ""] for k, it in dev.items())
    (root / "gold.yaml").write_text("name: hs_gold\npath: gold.csv\nsplit: test\ncolumns: {text: text, id: id, labels: labels}\n"
                                    "labels: {format: delimited, delimiter: ';', names: [hate]}\n")
    (root / "abuse.yaml").write_text("labels:\n  - {name: abuse}\n  - {name: hate, parent: abuse}\n"
                                     "  - {name: aggressive, parent: abuse}\n  - {name: offensive, parent: abuse}\n")
    project = Project.init(root / "p", taxonomy=root / "abuse.yaml")
    project.store.set_meta("encoder", ENCODER)
    for spec in ("hs.yaml", "ca.yaml", "gold.yaml"):
        project.add_source(root / spec)
    code, out, err = run_cli("train", project.path)
    assert code == 0, err
    yield project, out, err
    project.close()


def test_a_source_where_every_row_has_the_parent_has_no_negatives(abuse):
    from tagwise.workflows.health import data_health

    project, _, _ = abuse
    health = data_health(project)
    ca = health["sources"]["convabuse_abusive"]["labels"]["abuse"]
    assert ca["negatives"] == 0 and ca["positives"] == health["sources"]["convabuse_abusive"]["n_rows"] > 0
    (w,) = kinds(health["warnings"], "no_negatives", "convabuse_abusive", "abuse")
    assert "convabuse_abusive" in w["message"] and "abuse" in w["message"] and w["fix"]
    # the votes source has hundreds of each for the parent: no count warning for it
    hs = health["sources"]["hs_votes"]["labels"]["abuse"]
    assert hs["positives"] >= 5 and hs["negatives"] >= 5
    assert not [w for w in health["warnings"] if w["source"] == "hs_votes" and w["label"] == "abuse"
                and w["kind"] in ("no_negatives", "no_positives", "few_negatives", "few_positives")]


def test_counts_add_up_and_expected_positives_are_the_soft_targets(abuse):
    from tagwise.workflows.health import data_health
    from tagwise.workflows.train import training_data

    project, _, _ = abuse
    health = data_health(project, shared=False)
    data, lab, _ = training_data(project, progress=False)
    for source, entry in health["sources"].items():
        for label, c in entry["labels"].items():
            assert c["positives"] + c["negatives"] + c["unknown"] == entry["n_rows"]
            assert 0 <= c["expected_positives"] <= c["positives"] + c["negatives"]
    assert ((data.Y > 0) & (data.Y < 1)).any()  # the votes source trains on soft consensus targets


def test_a_consensus_that_moves_the_positive_rate_is_named(abuse):
    """HS-Brexit's stored labels are the strict majority of six votes; the consensus step's warning fires
    exactly where the consensus targets move a label's expected positives by more than half (and 3)."""
    from tagwise.learn.multisource import partial_targets
    from tagwise.workflows.health import MIN_CHANGE, RATE_CHANGE, STEP_CONSENSUS, data_health
    from tagwise.workflows.train import training_data

    project, _, _ = abuse
    # the stored label is the strict majority of the six votes; "majority" keeps a 3-3 tie at 0.5, so it
    # moves the expected positives by half the ties (enough for 'hate', whose ties outnumber half its
    # positives), and "model" moves them by its own reading of the crowd: the same rule for both
    for method in ("model", "majority"):
        data, lab, _ = training_data(project, progress=False, consensus=method)
        stored, _ = partial_targets(lab, project.taxonomy, project.labels)
        rows = lab.sources == "hs_votes"
        moved = kinds(data_health(project, consensus=method, shared=False)["warnings"], "rate_changed", "hs_votes")
        at_consensus = {w["label"] for w in moved if w["message"].startswith(STEP_CONSENSUS)}
        for label in ("hate", "aggressive", "offensive"):
            k = project.labels.index(label)
            a = float((stored[rows, k] * data.mask[rows, k]).sum())  # expected positives before and after
            b = float((data.Y[rows, k] * data.mask[rows, k]).sum())
            assert (label in at_consensus) == (max(a, b) >= 5 and abs(b - a) >= MIN_CHANGE
                                               and abs(b - a) > RATE_CHANGE * a), (method, label, a, b)
            if label in at_consensus:
                (w,) = [w for w in moved if w["label"] == label and w["message"].startswith(STEP_CONSENSUS)]
                assert f"from {a:.0f} to {b:.0f}" in w["message"] and "--consensus" in w["fix"]
    assert not kinds(data_health(project, consensus="none", shared=False)["warnings"], "rate_changed")


def test_soft_targets_rounded_away_by_a_step_are_caught(abuse):
    """The 0.007 bug class: a step that casts soft targets to an integer type zeroes a source's positives."""
    from tagwise.workflows.health import claimed_columns, target_health
    from tagwise.workflows.train import training_data

    project, _, _ = abuse
    data, lab, _ = training_data(project, progress=False)
    space = project.labels
    claimed = claimed_columns(lab, project.taxonomy, space)
    rounded = data.Y.astype(np.uint8)  # what taxonomy.propagate_with_ancestors once did
    stages = [("stored labels", lab.label_matrix(space)), ("the consensus", data.Y), ("a cast step", rounded)]
    health = target_health(stages, rounded, data.mask, lab.sources, space.names, claimed)
    cast = [w for w in health["warnings"] if w["kind"] == "rate_changed" and w["message"].startswith("a cast step")]
    assert {w["label"] for w in cast} >= {"hate", "offensive"}
    assert all(w["source"] == "hs_votes" for w in cast)
    # without the cast the same steps raise nothing at that step
    fine = target_health(stages[:2], data.Y, data.mask, lab.sources, space.names, claimed)
    assert not [w for w in fine["warnings"] if w["message"].startswith("a cast step")]


def test_train_prints_health_before_and_after_and_keeps_it(abuse):
    project, out, err = abuse
    before = out.index("training data health, before training")
    assert before < out.index("trained ") < out.index("training data health, after training")
    assert "convabuse_abusive" in out and "expected" in out and "oof F1" in out
    assert "no negative" in err or "is a negative" in err
    info = json.loads((project.models_dir / (project.models_dir / "CURRENT").read_text().strip()
                       / "model.json").read_text())["info"]
    assert info["warnings"] and info["health"]["after"]["checked"]
    assert kinds(info["warnings"], "no_negatives", "convabuse_abusive", "abuse")
    for w in info["warnings"]:
        assert set(w) == {"kind", "source", "label", "message", "fix"} and w["source"] and w["fix"]
    after = info["health"]["after"]["sources"]
    assert set(after) == {"hs_votes", "convabuse_abusive"}  # the test-only gold source trains nothing
    assert after["hs_votes"]["alone_macro_f1"] is not None  # two labeled sources: compared with alone


def test_evaluate_per_source_baselines_and_no_support(abuse):
    project, _, _ = abuse
    code, out, err = run_cli("evaluate", project.path)
    assert code == 0, err
    lines = out.splitlines()
    per_source = next(i for i, ln in enumerate(lines) if ln.strip().startswith("per source"))
    pooled = next(i for i, ln in enumerate(lines) if "pooled" in ln)
    assert per_source < pooled
    assert any(ln.split()[:1] == ["hs_gold"] for ln in lines[per_source:pooled])
    assert any(ln.split()[:1] == ["hs_votes"] for ln in lines[per_source:pooled])
    assert "trivial macro-F1: predict everything" in out and "prior" in out
    code, out, _ = run_cli("evaluate", project.path, "--source", "hs_gold")
    # the gold source annotates only hate: aggressive and offensive have no support there
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.startswith("  ") and len(ln.split()) == 7}
    for label in ("aggressive", "offensive"):
        assert rows[label][1:4] == ["—", "—", "—"] and rows[label][4] == "0"
    assert "0.000" not in " ".join(rows["aggressive"])


def test_baselines_are_the_analytic_trivial_predictors(abuse):
    """Predict-everything F1 is 2p/(1+p); the prior's is 2pq/(p+q) (q: the training rate), checked here
    against predictors actually drawn at random."""
    from tagwise.evaluate.metrics import multilabel_report
    from tagwise.learn.multisource import partial_targets
    from tagwise.workflows.evaluate import evaluate

    project, _, _ = abuse
    rep = evaluate(project, source="hs_votes", save=False)
    ex = project.examples(split="test", source="hs_votes", labeled=True)
    Y, M = partial_targets(ex, project.taxonomy, project.labels)
    rng = np.random.default_rng(0)
    for k, name in enumerate(project.labels.names):
        base = rep["baselines"]["per_label"][name]
        y = Y[M[:, k], k] > 0
        if not y.any():
            assert base["all_positive"] is None
            continue
        p = y.mean()
        assert base["all_positive"] == pytest.approx(2 * p / (1 + p), abs=1e-3)
        q = rep["baselines"]["per_label"][name]["prior"]
        rate = training_rate(project, "hs_votes", name)
        assert q == pytest.approx(2 * p * rate / (p + rate), abs=1e-3)
        draws = [multilabel_report(y[:, None], (rng.random(len(y)) < rate)[:, None], None, ["x"])["per_label"]["x"]["f1"]
                 for _ in range(400)]
        assert np.mean(draws) == pytest.approx(q, abs=0.03)


def training_rate(project, source, label) -> float:
    """The label's positive rate in the source's training targets, as the model's health table keeps it."""
    from tagwise.workflows.models import load_project_model

    return load_project_model(project).info["health"]["before"]["sources"][source]["labels"][label]["positive_rate"]


def test_evaluate_as_source_scores_a_gold_source_in_a_training_mode(abuse):
    from tagwise.workflows.evaluate import evaluate

    project, _, _ = abuse
    own = evaluate(project, source="hs_gold", save=False)
    assert set(own["modes"].values()) == {"agnostic"}  # a test-only source has no mode of its own
    as_votes = evaluate(project, source="hs_gold", as_source="hs_votes", save=False)
    assert set(as_votes["modes"].values()) == {"hs_votes"} and as_votes["as_source"] == "hs_votes"
    assert as_votes["per_label"]["hate"]["support"] == own["per_label"]["hate"]["support"] > 0
    with pytest.raises(TagwiseError, match="hs_votes"):
        evaluate(project, source="hs_gold", as_source="hs_gold", save=False)
    code, out, _ = run_cli("evaluate", project.path, "--source", "hs_gold", "--as-source", "hs_votes")
    assert code == 0 and "hs_gold: hs_votes" in out


def test_evaluate_warns_when_a_label_is_predicted_everywhere(abuse):
    """In the mode of the source where every row is abusive, `abuse` is predicted on (nearly) every row."""
    from tagwise.workflows.evaluate import evaluate

    project, _, _ = abuse
    rep = evaluate(project, source="hs_votes", as_source="convabuse_abusive", save=False)
    rate = rep["baselines"]["per_label"]["abuse"]["predicted_rate"]
    found = kinds(rep["warnings"], "predicted_everywhere", "hs_votes", "abuse")
    assert bool(found) == (rate >= 0.95)
    assert rate >= 0.95
    own = evaluate(project, source="hs_votes", save=False)
    assert not kinds(own["warnings"], "predicted_everywhere", label="abuse")


def test_transfer_takes_a_test_only_source_as_a_column(abuse):
    from tagwise.workflows.transfer import transfer_evaluation

    project, _, _ = abuse
    result = transfer_evaluation(project, encoder=ENCODER, progress=False)
    assert result["test_only"] == ["hs_gold"]
    assert "hs_gold" not in result["matrix"] and set(result["matrix"]) == {"convabuse_abusive", "hs_votes"}
    assert result["matrix"]["hs_votes"]["hs_gold"] is not None  # both annotate hate
    assert result["leave_one_out"]["hs_gold"] is not None
    with pytest.raises(TagwiseError, match="hs_gold"):
        _all_test_only(project)
    code, out, err = run_cli("evaluate", project.path, "--transfer")
    assert code == 0, err
    assert "test-only sources" in out and "hs_gold" in out


def _all_test_only(project):
    """Transfer over sources none of which has a training row names them in its error."""
    from tagwise.workflows.transfer import transfer_evaluation

    with pytest.MonkeyPatch.context() as mp:
        import tagwise.workflows.transfer as t

        mp.setattr(t, "holdout_splits", lambda ex, *a, **k: np.full(len(ex), "test", dtype=object))
        transfer_evaluation(project, sources=["hs_gold", "hs_votes"], encoder=ENCODER, progress=False)


@pytest.fixture(scope="module")
def goemotions(tmp_path_factory):
    root = tmp_path_factory.mktemp("goemo")
    (root / "goemotions.yaml").write_text(
        f"name: goemotions\npath: {DATA}/goemotions/original_train.tsv\nsplit: train\nformat: tsv\nheader: false\n"
        f"quoting: none\ncolumns: {{text: 0, labels: 1, id: 2}}\nlimit: 300\n"
        f"labels: {{format: delimited, delimiter: ',', names_file: {DATA}/goemotions/original_labels.txt}}\n")
    project = Project.init(root / "p")
    project.store.set_meta("encoder", ENCODER)
    project.add_source(root / "goemotions.yaml")
    yield project
    project.close()


def test_few_and_no_positives_match_the_raw_file(goemotions):
    from tagwise.workflows.health import FEW, data_health

    names = (DATA / "goemotions" / "original_labels.txt").read_text().split()
    counts = np.zeros(len(names), dtype=int)
    for line in (DATA / "goemotions" / "original_train.tsv").read_text(encoding="utf-8").splitlines()[:300]:
        for i in line.split("\t")[1].split(","):
            counts[int(i)] += 1
    warnings = data_health(goemotions)["warnings"]
    for name, c in zip(names, counts):
        assert bool(kinds(warnings, "no_positives", "goemotions", name)) == (c == 0), name
        assert bool(kinds(warnings, "few_positives", "goemotions", name)) == (0 < c < FEW), name
    assert (counts == 0).any() and ((counts > 0) & (counts < FEW)).any()  # the slice has both cases


def test_a_label_the_model_cannot_learn_is_flagged_after_training(goemotions):
    from tagwise.workflows.train import train

    result = train(goemotions, mode="supervised", progress=False)
    after = result["health"]["after"]["sources"]["goemotions"]["labels"]
    flagged = {w["label"] for w in kinds(result["warnings"], "no_better_than_trivial", "goemotions")}
    assert flagged
    for label in flagged:
        m = after[label]
        assert m["f1"] <= max(m["all_positive"], m["prior"]) + 0.01 + 1e-9
    # a label with a single positive cannot be learnt out of fold: its only positive is always held out
    single = [n for n, m in after.items() if m["support"] == 1]
    assert single and set(single) <= flagged


@pytest.fixture(scope="module")
def agnews(tmp_path_factory):
    root = tmp_path_factory.mktemp("ag")
    (root / "ag.yaml").write_text(
        f"name: ag_news\npath: {DATA}/ag_news/test.csv\nsplit: train\nlimit: 600\n"
        f"columns: {{text: [title, description], labels: label}}\ntext_join: '. '\n"
        f"labels: {{format: single, names: [World, Sports, Business, Sci/Tech], id_base: 1}}\n")
    project = Project.init(root / "p")
    project.store.set_meta("encoder", ENCODER)
    project.add_source(root / "ag.yaml")
    yield project
    project.close()


def test_a_healthy_source_raises_no_warning(agnews):
    from tagwise.workflows.train import train

    result = train(agnews, progress=False)
    assert result["warnings"] == []
    scored = result["health"]["after"]["sources"]["ag_news"]
    assert scored["macro_f1"] > scored["trivial_macro_f1"]["all_positive"] + 0.1
    code, out, _ = run_cli("sources", agnews.path)
    assert code == 0 and "training data health" in out and "ag_news" in out and "warning" not in out


def test_a_source_the_others_pull_down_is_compared_with_itself_alone(tmp_path):
    """Two halves of AG News, the second with its label names in another order (a spec mistake): without
    source experts the joint model's figures in each source's mode fall below each source alone; with
    the names in the same order they do not."""
    from tagwise.workflows.train import train

    rows = list(csv.reader(open(DATA / "ag_news" / "test.csv", newline="")))
    for name, part in (("a", rows[1:401]), ("b", rows[401:801])):
        with open(tmp_path / f"{name}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([rows[0]] + part)
    results = {}
    for order in ("[World, Sports, Business, Sci/Tech]", "[Sports, World, Sci/Tech, Business]"):
        project = Project.init(tmp_path / f"p{len(results)}")
        project.store.set_meta("encoder", ENCODER)
        for name, names in (("a", "[World, Sports, Business, Sci/Tech]"), ("b", order)):
            (tmp_path / f"{name}.yaml").write_text(
                f"name: news_{name}\npath: {name}.csv\nsplit: train\ncolumns: {{text: [title, description], labels: label}}\n"
                f"labels: {{format: single, names: {names}, id_base: 1}}\n")
            project.add_source(tmp_path / f"{name}.yaml")
        results[order] = train(project, mode="multisource", params={"experts": False}, progress=False)
        project.close()
    same, swapped = results.values()
    assert not kinds(same["warnings"], "below_alone")
    fired = kinds(swapped["warnings"], "below_alone")
    assert {w["source"] for w in fired} >= {"news_b"}
    for w in fired:
        m = swapped["health"]["after"]["sources"][w["source"]]
        assert m["macro_f1"] < m["alone_macro_f1"] and f"{m['alone_macro_f1']:.3f}" in w["message"]


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    """ConvAbuse's crowd file (one row per judgement, every item) and its test split as a gold source."""
    root = tmp_path_factory.mktemp("crowd")
    (root / "crowd.yaml").write_text(
        f"name: convabuse_crowd\npath: {DATA}/convabuse/1_full/ConvAbuseEMNLPfull.csv\nsplit: train\nlimit: 3000\n"
        "columns: {text: user, id: example_no}\nlabels:\n  format: onehot\n"
        "  onehot_columns: [is_abuse.-1, is_abuse.-2, is_abuse.-3]\n"
        "  map: {is_abuse.-1: abuse, is_abuse.-2: abuse, is_abuse.-3: abuse}\n")
    rows = list(csv.DictReader(open(DATA / "convabuse" / "2_splits" / "ConvAbuseEMNLPtest.csv", newline="")))
    with open(root / "gold.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "labels"])
        w.writerows([r["example_id"], r["user"], "abuse" if _convabuse_majority(r, ABUSIVE) else ""] for r in rows)
    (root / "gold.yaml").write_text("name: convabuse_gold\npath: gold.csv\nsplit: test\n"
                                    "columns: {text: text, id: id, labels: labels}\n"
                                    "labels: {format: delimited, delimiter: ';', names: [abuse]}\n")
    project = Project.init(root / "p")
    project.store.set_meta("encoder", ENCODER)
    assert run_cli("add-source", project.path, root / "crowd.yaml")[0] == 0
    yield project, root
    project.close()


def test_shared_test_texts_are_counted_in_add_source_train_and_evaluate(crowd):
    from tagwise.text import normalize_text
    from tagwise.workflows.health import shared_texts

    project, root = crowd
    code, out, err = run_cli("add-source", project.path, root / "gold.yaml")
    assert code == 0
    (pair,) = shared_texts(project)
    assert (pair["train_source"], pair["test_source"]) == ("convabuse_crowd", "convabuse_gold")
    crowd_keys = {normalize_text(t, social=True) for t in project.examples(source="convabuse_crowd").texts}
    gold_keys = {normalize_text(t, social=True) for t in project.examples(source="convabuse_gold").texts}
    assert pair["n_texts"] == len(crowd_keys & gold_keys) > 100 and pair["n_test"] == len(gold_keys)
    assert f"{pair['n_texts']} of the {pair['n_test']} test texts of source 'convabuse_gold'" in err
    assert "convabuse_crowd" in err and "--drop-shared-test-texts" in err
    code, out, err = run_cli("train", project.path)
    assert code == 0 and f"{pair['n_texts']} of the {pair['n_test']} test texts" in err
    code, out, err = run_cli("evaluate", project.path)
    assert code == 0 and "convabuse_crowd" in err and f"{pair['n_texts']} of the" in err
    # the fix it names works: training without them trains on fewer rows and shares no text
    from tagwise.workflows.train import train

    result = train(project, drop_shared_test_texts=True, progress=False)
    assert not kinds(result["warnings"], "shared_texts")
    code, out, err = run_cli("evaluate", project.path)
    assert code == 0 and "test texts of source" not in err  # the model did not train on them
    kept = [t for t in project.examples(source="convabuse_crowd").texts if normalize_text(t, social=True) not in gold_keys]
    assert result["n_examples"] == len(kept) < 3000


def test_a_head_without_out_of_fold_predictions_is_checked_on_dev_rows(tmp_path):
    """Zero-shot keeps no out-of-fold predictions: its health after training comes from the dev split."""
    from tagwise.workflows.train import train

    (tmp_path / "g.yaml").write_text(
        f"name: goemotions\nsplits: {{train: {DATA}/goemotions/original_train.tsv, dev: {DATA}/goemotions/original_dev.tsv}}\n"
        f"format: tsv\nheader: false\nquoting: none\ncolumns: {{text: 0, labels: 1, id: 2}}\nlimit: 150\n"
        f"labels: {{format: delimited, delimiter: ',', names_file: {DATA}/goemotions/original_labels.txt}}\n")
    project = Project.init(tmp_path / "p")
    project.store.set_meta("encoder", ENCODER)
    project.add_source(tmp_path / "g.yaml")
    after = train(project, mode="zero-shot", progress=False)["health"]["after"]
    assert after["checked"] and after["rows"] == "dev"
    scored = after["sources"]["goemotions"]
    assert scored["macro_f1"] is not None and scored["trivial_macro_f1"]["all_positive"] is not None
    # evaluate judges the same model on dev against the trivial predictors: the warning fires exactly when
    # its macro-F1 over the labels with both sides is no better than theirs
    from tagwise.workflows.evaluate import evaluate

    rep = evaluate(project, split="dev", save=False)
    mixed = [n for n, m in rep["per_label"].items() if m["support"]]
    model_f1 = np.mean([rep["per_label"][n]["f1"] for n in mixed])
    best = max(np.mean([rep["baselines"]["per_label"][n][k] for n in mixed]) for k in ("all_positive", "prior"))
    assert bool(kinds(rep["warnings"], "below_trivial", "goemotions")) == (model_f1 <= best)
    project.close()


def test_report_and_model_page_data_show_the_health(abuse):
    from tagwise.workflows.health import project_health
    from tagwise.workflows.report import write_report

    project, _, _ = abuse
    health = project_health(project)
    assert health["model"] and kinds(health["warnings"], "no_negatives", "convabuse_abusive", "abuse")
    assert health["after"]["sources"]["hs_votes"]["macro_f1"] is not None
    assert run_cli("evaluate", project.path, "--source", "hs_gold")[0] == 0
    html = write_report(project).read_text(encoding="utf-8")
    assert "Training data health" in html and "no_negatives" in html and "convabuse_abusive" in html
    assert "—" in html  # the gold source's labels without support


EMOTIONS = """labels:
  - {name: negative}
  - {name: anger, parent: negative}
  - {name: disgust, parent: negative}
  - {name: fear, parent: negative}
  - {name: sadness, parent: negative}
  - {name: joy}
"""


def test_a_source_mapping_labels_to_the_parent_of_its_own_children_gets_a_note_not_a_warning(tmp_path):
    """docs/your-data.md's pattern on ISEAR: shame and guilt map to ``negative``, whose children (anger,
    disgust, fear, sadness) ISEAR annotates too; the hierarchy raising ``negative`` is by design."""
    from tagwise.workflows.health import data_health, format_health

    (tmp_path / "emotions.yaml").write_text(EMOTIONS)
    (tmp_path / "isear.yaml").write_text(
        f"name: isear\npath: {DATA / 'isear' / 'isear.csv'}\nformat: csv\nseparator: '|'\nquoting: none\n"
        "columns: {text: SIT, labels: Field1, id: MYKEY}\nlabels: {format: single, map: {shame: negative, guilt: negative}}\n"
        "holdout: {test: 0.2, dev: 0.1, seed: 0}\nskip_empty_text: true\nlimit: 800\n")
    project = Project.init(tmp_path / "p", taxonomy=tmp_path / "emotions.yaml")
    project.add_source(tmp_path / "isear.yaml")
    health = data_health(project, shared=False)
    c = health["sources"]["isear"]["labels"]["negative"]
    assert c["steps"]["the hierarchy (children imply parents)"] > 2 * c["steps"]["stored labels"]  # the rise is real
    assert not kinds(health["warnings"], "rate_changed", "isear", "negative")
    (note,) = kinds(health["notes"], "hierarchy_family", "isear", "negative")
    assert "sadness" in note["message"] and "by design" in note["message"] and "leaf" in note["fix"]
    assert "note: " in format_health(health)
    project.close()


def test_a_hierarchy_step_on_a_parent_without_the_sources_children_still_warns():
    from tagwise.workflows.health import STEP_CLOSURE, target_health

    n = 40
    stored = np.zeros((n, 2))
    stored[:4, 0] = 1                      # the source says 'parent' on 4 rows ...
    moved = stored.copy()
    moved[:20, 0] = 1                      # ... a hierarchy step makes it 20
    mask = np.ones((n, 2), dtype=bool)
    A = np.array([[False, False], [True, False]])  # 'child' (1) has ancestor 'parent' (0)
    sources = np.array(["s"] * n, dtype=object)
    stages = [("stored labels", stored), (STEP_CLOSURE, moved)]
    only_parent = {"s": np.array([0])}
    health = target_health(stages, moved, mask, sources, ["parent", "child"], only_parent, only_parent,
                           {"parent"}, A)
    assert kinds(health["warnings"], "rate_changed", "s", "parent") and not health["notes"]
    both = {"s": np.array([0, 1])}
    health = target_health(stages, moved, mask, sources, ["parent", "child"], both, both, {"parent"}, A)
    assert not kinds(health["warnings"], "rate_changed") and kinds(health["notes"], "hierarchy_family", "s", "parent")
