"""Consensus, annotator quality, agreement and relabel scores on real multi-annotator slices."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tagwise.evaluate.agreement import alpha_per_label, krippendorff_alpha, pairwise_agreement
from tagwise.learn.consensus import (Annotations, ConsensusModel, annotator_quality, consensus,
                                     majority_vote)
from tagwise.select.relabel import (expected_error_reduction, macro_label_weights, next_annotator_rates,
                                   pooled_rates, relabel_scores, suggest_relabel)
from tagwise.types import TagwiseError

from hs_brexit import LABELS, hs_brexit_votes

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HS = DATA / "hs_brexit" / "HS-Brexit_train.json"
CONV = DATA / "convabuse" / "2_splits" / "ConvAbuseEMNLPtrain.csv"
pytestmark = pytest.mark.skipif(not (HS.exists() and CONV.exists()), reason="../shared/data not available")


def hs_brexit(n_items: int = 400) -> Annotations:
    """The first ``n_items`` HS-Brexit train tweets: 6 annotators x (hate, aggressive, offensive)."""
    ex, an, Y = [], [], []
    for i, item in enumerate(list(json.loads(HS.read_text()).values())[:n_items]):
        votes = hs_brexit_votes(item)
        for a in range(6):
            ex.append(i)
            an.append(a)
            Y.append([votes[k][a] for k in LABELS])
    return Annotations.from_arrays(np.array(ex), np.array(an), np.array(Y), n_annotators=6)


def convabuse(n_items: int = 800) -> Annotations:
    """ConvAbuse train items: 8 annotators (2-7 per item), labels abuse / sex_harassment /
    intellectual / target.system / explicit; repeat judgements merged."""
    flags = ["sex_harassment", "intellectual", "target.system", "explicit"]
    ex, an, Y = [], [], []
    with open(CONV, newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i == n_items:
                break
            for a in range(1, 9):
                first = row[f"Annotator{a}_is_abuse.1"].strip()
                if not first:
                    continue
                for j in range(len(first.split(","))):
                    def val(col):
                        cell = row[f"Annotator{a}_{col}"].strip().split(",")
                        return int(float(cell[j])) if j < len(cell) and cell[j].strip() else 0
                    abuse = int(any(val(f"is_abuse.{lvl}") for lvl in ("-1", "-2", "-3")))
                    ex.append(i)
                    an.append(a - 1)
                    Y.append([abuse] + [val(f) for f in flags])
    return Annotations.merge_repeats(np.array(ex), np.array(an), np.array(Y), n_examples=n_items, n_annotators=8)


def with_spammer(ann: Annotations) -> Annotations:
    """Add one annotator who says 'positive' to every label of every example."""
    n, K = ann.n_examples, ann.n_labels
    return Annotations.from_arrays(np.r_[ann.example, np.arange(n)], np.r_[ann.annotator, np.full(n, ann.n_annotators)],
                                   np.r_[ann.labels, np.ones((n, K), np.uint8)], n_examples=n,
                                   n_annotators=ann.n_annotators + 1)


@pytest.mark.parametrize("loader", [hs_brexit, convabuse])
def test_always_positive_annotator_gets_low_specificity(loader):
    ann = with_spammer(loader())
    res = consensus(ann)
    spam = ann.n_annotators - 1
    assert (res.specificity[spam] < 0.2).all()
    # the real annotators keep a high specificity: the spammer did not drag the consensus along
    assert (np.median(res.specificity[:spam], axis=0) > 0.8).all()
    quality = annotator_quality(res)
    assert quality[spam] == quality.min()
    assert quality[spam] < 0.6
    # and majority vote on the same votes is pulled towards positives, the model is not
    pos_mv = (majority_vote(ann) >= 0.5).sum()
    pos_model = (res.proba >= 0.5).sum()
    pos_clean = (consensus(loader()).proba >= 0.5).sum()
    assert abs(pos_model - pos_clean) < abs(pos_mv - pos_clean)


def test_removing_one_annotator_changes_only_the_examples_it_touched():
    ann = convabuse()
    model = ConsensusModel().fit(ann)
    before = model.predict_proba(ann)
    np.testing.assert_allclose(before, model.proba_, atol=1e-3)  # fitted posteriors = one more E-step
    for a in (0, 3):
        touched = np.zeros(ann.n_examples, bool)
        touched[ann.example[ann.annotator == a]] = True
        after = model.predict_proba(ann.drop_annotator(a))
        changed = np.abs(after - before).max(1) > 1e-12
        assert touched.any() and not changed[~touched].any()
        assert changed[touched].mean() > 0.99
    # Majority vote has the same locality.
    mv0, mv1 = majority_vote(ann), majority_vote(ann.drop_annotator(2))
    touched = np.zeros(ann.n_examples, bool)
    touched[ann.example[ann.annotator == 2]] = True
    assert not (mv0 != mv1)[~touched].any()


def test_bad_input_errors():
    ann = hs_brexit(20)
    e, a, Y = ann.example, ann.annotator, ann.labels.copy()
    # same annotator twice on one example with different labels
    Y2 = np.r_[Y, 1 - Y[:1]]
    with pytest.raises(TagwiseError, match=r"judged example 0 twice with different labels \(rows 0 and 120\)"):
        Annotations.from_arrays(np.r_[e, e[:1]], np.r_[a, a[:1]], Y2)
    # an exact repeat is harmless and dropped
    assert len(Annotations.from_arrays(np.r_[e, e[:1]], np.r_[a, a[:1]], np.r_[Y, Y[:1]]).example) == len(e)
    Y3 = Y.astype(int)
    Y3[5, 1] = 2
    with pytest.raises(TagwiseError, match="row 5"):
        Annotations.from_arrays(e, a, Y3)
    with pytest.raises(TagwiseError, match="out of range"):
        Annotations.from_arrays(e, a, Y, n_examples=5)
    with pytest.raises(TagwiseError, match="known must have the shape"):
        Annotations.from_arrays(e, a, Y, known=np.ones((len(e), 2), bool))
    with pytest.raises(TagwiseError, match="pred_probs must be"):
        ConsensusModel().fit(ann, np.full((3, 3), 0.5))
    with pytest.raises(TagwiseError, match="rates must be"):
        ConsensusModel(rates="three-coin")


def test_unannotated_examples_and_unknown_cells():
    ann = hs_brexit(50)
    # example 50 has no judgement; annotator 0 never judged 'offensive'
    known = np.ones(ann.labels.shape, bool)
    known[ann.annotator == 0, 2] = False
    ann2 = Annotations.from_arrays(ann.example, ann.annotator, ann.labels, known=known, n_examples=51)
    res = consensus(ann2)
    assert res.proba.shape == (51, 3)
    assert np.allclose(res.proba[50], res.prior, atol=1e-6)
    # the unknown cells are not votes: flipping them changes nothing
    flipped = ann.labels.copy()
    flipped[ann.annotator == 0, 2] ^= 1
    res_f = consensus(Annotations.from_arrays(ann.example, ann.annotator, flipped, known=known, n_examples=51))
    np.testing.assert_allclose(res.proba, res_f.proba)


def test_krippendorff_alpha_matches_reference_package():
    kd = pytest.importorskip("krippendorff")
    ann = convabuse(400)  # 2-7 annotators per item: plenty of missing judgements
    ours = alpha_per_label(ann)
    for k in range(ann.n_labels):
        R = np.full((ann.n_annotators, ann.n_examples), np.nan)
        R[ann.annotator, ann.example] = ann.labels[:, k]
        assert ours[k] == pytest.approx(kd.alpha(reliability_data=R, level_of_measurement="nominal"), abs=1e-9)
    # perfect agreement is 1; a constant table has no expected disagreement
    assert krippendorff_alpha(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0])) == pytest.approx(1.0)
    assert np.isnan(krippendorff_alpha(np.array([0, 0, 1, 1]), np.array([1, 1, 1, 1])))


def test_pairwise_agreement_counts_shared_cells():
    ann = hs_brexit(100)
    rate, shared = pairwise_agreement(ann)
    assert (shared[~np.eye(6, dtype=bool)] == 300).all()  # every pair judged all 100 x 3 cells
    same = (ann.labels[ann.annotator == 0] == ann.labels[ann.annotator == 1]).mean()
    assert rate[0, 1] == pytest.approx(same)
    assert np.isnan(np.diag(rate)).all()


def test_relabel_prefers_split_votes_where_one_vote_can_flip():
    ann = hs_brexit(300)
    res = consensus(ann)
    s, t = pooled_rates(res.sensitivity, res.specificity, res.n_examples)
    gain = expected_error_reduction(res.proba, s, t, horizon=1)
    # a cell one vote cannot flip gains nothing; every cell that gains is uncertain
    assert (gain[res.confidence > 0.999] < 1e-6).all()
    pick = suggest_relabel(res.proba, s, t, 20)
    assert len(pick) == 20
    assert res.confidence[pick].min(1).mean() < res.confidence.min(1).mean()
    # excluded examples are never picked
    exclude = np.zeros(ann.n_examples, bool)
    exclude[pick[:5]] = True
    assert not np.isin(pick[:5], suggest_relabel(res.proba, s, t, 20, exclude=exclude)).any()


def test_relabel_lookahead_ranks_cells_one_vote_cannot_flip():
    # one real vote per tweet (plus a second on a few), as at the start of a relabel round: under
    # the crowd's prior many cells cannot be flipped by one vote but can by two or three
    full = hs_brexit(300)
    keep = (full.annotator == full.example % 6) | ((full.annotator == (full.example + 3) % 6) & (full.example % 5 == 0))
    ann = full.subset(keep)
    res = consensus(ann)
    s, t = pooled_rates(res.sensitivity, res.specificity, res.n_examples)
    one = expected_error_reduction(res.proba, s, t, horizon=1)
    three = expected_error_reduction(res.proba, s, t, horizon=3)
    # horizon 1 is exactly the one-vote Bayes update
    p1 = res.proba * s + (1 - res.proba) * (1 - t)
    err = lambda p: np.minimum(p, 1 - p)  # noqa: E731
    manual = err(res.proba) - p1 * err(res.proba * s / p1) - (1 - p1) * err(res.proba * (1 - s) / (1 - p1))
    assert np.allclose(one, np.maximum(manual, 0), atol=1e-12)
    # the look-ahead keeps every one-vote gain (it is the best rate over 1..3 votes) and ranks more cells
    assert (three >= one - 1e-12).all()
    assert (three > 1e-9).sum() > (one > 1e-9).sum()
    # it never looks beyond the annotators left: none left -> no gain; one left -> the one-vote rule
    n = ann.n_examples
    assert not expected_error_reduction(res.proba, s, t, horizon=3, votes_left=np.zeros(n)).any()
    assert np.allclose(expected_error_reduction(res.proba, s, t, horizon=3, votes_left=np.ones(n)), one)
    with pytest.raises(TagwiseError, match="horizon"):
        expected_error_reduction(res.proba, s, t, horizon=0)


def test_relabel_weighs_rare_labels_up_like_macro_f1():
    full = hs_brexit(300)
    keep = (full.annotator == full.example % 6) | ((full.annotator == (full.example + 3) % 6) & (full.example % 4 == 0))
    res = consensus(full.subset(keep))
    s, t = pooled_rates(res.sensitivity, res.specificity, res.n_examples)
    rate = res.proba.mean(0)
    w = macro_label_weights(rate, full.n_examples)
    assert w.mean() == pytest.approx(1.0) and (np.argsort(w) == np.argsort(-rate)).all()
    assert macro_label_weights(np.array([0.0, 0.5]), 10)[0] == pytest.approx(5 * macro_label_weights(np.array([0.0, 0.5]), 10)[1])
    gain = expected_error_reduction(res.proba, s, t)
    assert np.allclose(relabel_scores(res.proba, s, t, label_weights=w), gain @ w)
    # the default ("macro") sends more of the rarest label's doubtful cells than equal weights do
    rare = int(np.argmin(rate))
    macro, equal = suggest_relabel(res.proba, s, t, 30), suggest_relabel(res.proba, s, t, 30, label_weights=None)
    assert gain[macro, rare].sum() > gain[equal, rare].sum()
    with pytest.raises(TagwiseError, match="label_weights"):
        relabel_scores(res.proba, s, t, label_weights=np.ones(2))


def test_relabel_breaks_ties_at_random_not_by_row():
    # one vote per tweet: examples with the same annotator and votes share one consensus, so most
    # scores tie; the budget must not go to the first rows of the store
    full = hs_brexit(300)
    ann = full.subset(full.annotator == full.example % 6)
    res = consensus(ann)
    s, t = pooled_rates(res.sensitivity, res.specificity, res.n_examples)
    score = relabel_scores(res.proba, s, t, label_weights=macro_label_weights(res.proba.mean(0), 300))
    assert len(np.unique(np.round(score, 12))) < 60  # the premise: few distinct scores
    # the largest group of tied, positive scores; a budget that reaches halfway into it
    values, counts = np.unique(np.round(score[score > 0], 12), return_counts=True)
    tie = values[np.argmax(counts)]
    group = np.flatnonzero(np.round(score, 12) == tie)
    budget = int((np.round(score, 12) > tie).sum() + len(group) // 2)
    pick = suggest_relabel(res.proba, s, t, budget)
    assert np.allclose(np.sort(score[pick])[::-1], np.sort(score)[::-1][:budget])  # still the best scores
    chosen = np.intersect1d(pick, group)
    assert len(chosen) == len(group) // 2 >= 5
    assert not np.array_equal(chosen, group[:len(chosen)])  # not the first rows of the tie
    other = suggest_relabel(res.proba, s, t, budget, seed=1)
    assert np.allclose(np.sort(score[other]), np.sort(score[pick])) and set(other) != set(pick)


def test_next_annotator_rates_are_those_of_who_has_not_judged_yet():
    # HS-Brexit's two annotator groups (Ann1-3 target group, Ann4-6 control) differ in how often
    # they vote "hate": on examples only the other group judged, the next vote comes from a group
    # with other rates than on examples the first group judged
    full = hs_brexit(300)
    first = full.example % 2 == 0
    keep = np.where(first, full.annotator < 3, full.annotator >= 3)
    ann = full.subset(keep)
    res = consensus(full)
    s, t, left = next_annotator_rates(ann.example, ann.annotator, ann.n_examples, res.sensitivity,
                                      res.specificity, res.n_examples)
    assert s.shape == t.shape == (ann.n_examples, 3) and (left == 3).all()
    even = np.arange(ann.n_examples) % 2 == 0
    # even examples: Ann1-3 judged, so the next voter is one of Ann4-6, and vice versa
    assert np.allclose(s[even], res.sensitivity[3:].mean(0))
    assert np.allclose(t[~even], res.specificity[:3].mean(0))
    assert s[even, 0].mean() > s[~even, 0].mean()  # the control group says "hate" more often
    # an example every annotator judged has no vote left and gets the pooled rates
    s2, _, left2 = next_annotator_rates(full.example, full.annotator, full.n_examples, res.sensitivity,
                                        res.specificity, res.n_examples)
    assert (left2 == 0).all()
    assert np.allclose(s2, pooled_rates(res.sensitivity, res.specificity, res.n_examples)[0])


# ----------------------------------------------------------------------------- project level
def _hs_items(n=120):
    return list(json.loads(HS.read_text()).items())[:n]


def _write_sources(tmp_path, n=120):
    items = _hs_items(n)
    with open(tmp_path / "wide.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"] + [f"Ann{a + 1}" for a in range(6)])
        for key, item in items:
            v = hs_brexit_votes(item)
            cells = [";".join(k for k in v if v[k][a]) or "none" for a in range(6)]
            w.writerow([key, item["text"]] + cells)
    with open(tmp_path / "long.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "annotator", "labels"])
        for key, item in items:
            for a in range(6):
                w.writerow([key, item["text"], f"Ann{a + 1}", "hate" if hs_brexit_votes(item)["hate"][a] else ""])
    with open(tmp_path / "votes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "hate_votes", "n"])
        for key, item in items:
            w.writerow([item["text"], sum(hs_brexit_votes(item)["hate"]), 6])
    (tmp_path / "wide.yaml").write_text(
        "name: hs_wide\npath: wide.csv\ncolumns: {text: text, id: id}\nlabels: {format: delimited, delimiter: ';', "
        "annotator_columns: [Ann1, Ann2, Ann3, Ann4, Ann5, Ann6], map: {none: null}}\n")
    (tmp_path / "long.yaml").write_text(
        "name: hs_long\npath: long.csv\ncolumns: {text: text, id: id, annotator: annotator, labels: labels}\n"
        "labels: {format: delimited, names: [hate]}\n")
    (tmp_path / "votes.yaml").write_text(
        "name: hs_votes\npath: votes.csv\ncolumns: {text: text}\nlabels: {format: votes, columns: {hate: hate_votes}, "
        "count: n}\n")
    return items


def test_project_ingest_report_and_targets(tmp_path):
    from tagwise.cli import main
    from tagwise.project import Project
    from tagwise.workflows.annotators import (add_annotated_source, annotator_report, consensus_targets,
                                              relabel_suggestions)
    items = _write_sources(tmp_path)
    project = Project.init(tmp_path / "p")
    try:
        wide = add_annotated_source(project, tmp_path / "wide.yaml")
        assert wide["n_examples"] == 120 and wide["n_annotations"] == 720
        # the example row keeps the strict majority of its judgements
        ex = project.examples(source="hs_wide")
        first = hs_brexit_votes(items[0][1])
        majority = sorted(k for k in first if 2 * sum(first[k]) > 6)
        assert sorted(ex.labels[0]) == majority
        add_annotated_source(project, tmp_path / "long.yaml")
        add_annotated_source(project, tmp_path / "votes.yaml")
        report = annotator_report(project)
        assert set(report["labels"]) == {"hate", "aggressive", "offensive"}
        assert all(0 <= r["quality"] <= 1 for r in report["annotators"].values())
        assert report["annotators"]["Ann1"]["n_examples"] == 240  # wide + long
        assert set(report["annotators"]["hs_votes:anonymous"]["per_label"]) == {"hate"}  # it judged only hate
        per = report["annotators"]["Ann4"]["per_label"]["hate"]
        assert 0 < per["sensitivity"] < 1 and 0 < per["specificity"] < 1
        targets = consensus_targets(project, "model")
        mv = consensus_targets(project, "majority")
        assert targets["probabilities"].shape == (360, 3)
        # long and votes sources only annotate hate: their other cells are unknown
        known = dict(zip(targets["labels"], targets["known"].sum(0).tolist()))
        assert known == {"hate": 360, "aggressive": 120, "offensive": 120}
        hate = targets["labels"].index("hate")
        assert np.corrcoef(targets["probabilities"][:, hate], mv["probabilities"][:, hate])[0, 1] > 0.7
        picks = relabel_suggestions(project, 10)
        assert 0 < len(picks) <= 10 and all(p["score"] > 0 for p in picks)
    finally:
        project.close()
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["annotators", str(tmp_path / "p"), "--json"]) == 0
    out = json.loads(buf.getvalue())
    assert "alpha" in out["labels"]["hate"] and "quality" in out["annotators"]["Ann2"]


def test_project_bad_annotation_input(tmp_path):
    from tagwise.project import Project
    from tagwise.workflows.annotators import add_annotated_source
    _write_sources(tmp_path, 30)
    project = Project.init(tmp_path / "p")
    try:
        # an annotator column that is not in the file
        (tmp_path / "bad1.yaml").write_text((tmp_path / "wide.yaml").read_text().replace("Ann6]", "Ann7]"))
        with pytest.raises(TagwiseError, match=r"wide.csv: column 'Ann7' not found.*annotator_columns"):
            add_annotated_source(project, tmp_path / "bad1.yaml")
        # an example nobody annotated (rows are file lines: the header is line 1)
        rows = list(csv.reader(open(tmp_path / "wide.csv")))
        rows[4][2:] = [""] * 6
        csv.writer(open(tmp_path / "wide0.csv", "w", newline="")).writerows(rows)
        (tmp_path / "bad2.yaml").write_text((tmp_path / "wide.yaml").read_text().replace("wide.csv", "wide0.csv"))
        with pytest.raises(TagwiseError, match=r"wide0.csv: row 5: no annotation for this example.*Fix"):
            add_annotated_source(project, tmp_path / "bad2.yaml")
        # the same annotator twice on one example with different labels
        rows = list(csv.reader(open(tmp_path / "long.csv")))
        dup = list(rows[1])
        dup[3] = "" if dup[3] == "hate" else "hate"
        rows.insert(3, dup)
        csv.writer(open(tmp_path / "long2.csv", "w", newline="")).writerows(rows)
        (tmp_path / "bad3.yaml").write_text((tmp_path / "long.yaml").read_text().replace("long.csv", "long2.csv"))
        with pytest.raises(TagwiseError, match=r"long2.csv: rows 2 and 4: annotator 'Ann1' labeled example .* twice"):
            add_annotated_source(project, tmp_path / "bad3.yaml")
        # vote counts above the count of annotators
        rows = list(csv.reader(open(tmp_path / "votes.csv")))
        rows[2][1] = "7"
        csv.writer(open(tmp_path / "votes2.csv", "w", newline="")).writerows(rows)
        (tmp_path / "bad4.yaml").write_text((tmp_path / "votes.yaml").read_text().replace("votes.csv", "votes2.csv"))
        with pytest.raises(TagwiseError, match=r"votes2.csv: row 3: column 'hate_votes' has 7 votes but column 'n'"):
            add_annotated_source(project, tmp_path / "bad4.yaml")
        # nothing half-written
        assert project.store.source_names() == []
    finally:
        project.close()
