"""Label audit on real data slices (hashing encoder, so no model weights and no cache are needed)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tagwise.audit import (audit_arrays, conflicting_duplicates, find_label_issues, label_dependency_proba,
                           label_quality_scores, nearest_neighbors, stratified_folds)
from tagwise.audit.label_quality import cell_error_posteriors, estimate_label_errors, noise_rates
from tagwise.workflows.corrections import apply_corrections, correction_batches, undo_corrections
from tagwise.audit.noise import inject_noise, label_similarity
from tagwise.workflows.audit import audit_project, issue_rows, read_issues, write_issues
from tagwise.workflows.report import section_audit
from tagwise.cli import main as cli_main
from tagwise.encoders import get_encoder
from tagwise.evaluate.metrics import average_precision
from tagwise.project import Project
from tagwise.sources import ingest, parse_spec
from tagwise.types import LabelSpace, TagwiseError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AG_SPEC = {"name": "ag", "path": str(DATA / "ag_news" / "test.csv"), "split": "train", "limit": 2000,
           "columns": {"text": ["title", "description"], "labels": "label"}, "text_join": ". ",
           "labels": {"format": "single", "names": ["World", "Sports", "Business", "Sci/Tech"], "id_base": 1}}
REUTERS_SPEC = {"name": "reuters", "path": str(DATA / "reuters21578" / "modapte_train.jsonl"), "split": "train",
                "limit": 1500, "columns": {"text": ["title", "text"], "labels": "topics", "id": "id"},
                "text_join": ". ", "labels": {"format": "list"}, "skip_empty_text": True}


def _load(spec):
    rows = ingest(parse_spec(spec, DATA / "spec.yaml"))
    space = LabelSpace(tuple(rows.annotated_labels) or tuple(sorted({n for ls in rows.labels for n in ls})))
    X = get_encoder("hashing").encode(rows.texts)
    return rows, space, X, space.to_matrix(rows.labels)


@pytest.fixture(scope="module")
def ag():
    return _load(AG_SPEC)


@pytest.fixture(scope="module")
def reuters():
    return _load(REUTERS_SPEC)


def test_planted_class_swaps_are_found_single_label(ag):
    rows, space, X, Y = ag
    rng = np.random.default_rng(0)
    planted = rng.choice(len(Y), 24, replace=False)
    noisy = Y.copy()
    for i in planted:
        g = Y[i].argmax()
        noisy[i, g] = 0
        noisy[i, (g + 1 + rng.integers(3)) % 4] = 1
    res = audit_arrays(X, noisy, texts=rows.texts, progress=False)
    truth = np.zeros(len(Y), bool)
    truth[planted] = True
    assert res.multi_label is False and res.dependency_probs is None  # no other labels to depend on
    assert average_precision(truth, -res.label_quality) > 5 * truth.mean()
    assert truth[res.ranking()[:100]].sum() >= 8          # random order would put ~1 there
    # the flagged set is the estimated number of errors (a weak hashing encoder over-estimates
    # ~1% of plants several times), and holds most plants
    assert res.issues.is_issue.sum() == res.flag_budget < 0.1 * len(Y)
    assert (truth & res.issues.is_issue).sum() >= 0.5 * len(planted)
    # single-label suggestions keep exactly one label, and most flagged plants get their true class back
    assert (res.issues.suggested.sum(1) == 1).all()
    found = planted[res.issues.is_issue[planted]]
    assert (res.issues.suggested[found] == Y[found]).all(1).mean() >= 0.5


def test_planted_wrong_and_missing_labels_multi_label(reuters):
    rows, space, X, Y = reuters
    keep = Y.sum(0) >= 3
    Y = Y[:, keep]
    sim = label_similarity(X, Y)
    noisy, changed = inject_noise(Y, "uniform", 0.05, sim, seed=1)
    res = audit_arrays(X, noisy, texts=rows.texts, progress=False)
    truth = changed.any(1)
    assert res.multi_label is True
    assert average_precision(truth, -res.label_quality) > 4 * truth.mean()
    # typed findings: every flagged cell is 'wrong' where given, 'missing' where absent
    flagged = res.issues.flagged
    assert ((res.issues.kind == -1) == (flagged & noisy.astype(bool))).all()
    assert ((res.issues.kind == 1) == (flagged & ~noisy.astype(bool))).all()
    # planted wrong cells are flagged more often than clean given cells
    planted_given = changed & noisy.astype(bool)
    clean_given = ~changed & noisy.astype(bool)
    assert flagged[planted_given].mean() > 3 * flagged[clean_given].mean()
    # the label-dependency view, which sees the other given labels, doubts added labels more
    assert res.dependency_probs.shape == noisy.shape
    assert res.dependency_probs[planted_given].mean() < res.pred_probs[planted_given].mean()


def test_missed_labels_raise_the_missed_rate_and_rank_first(reuters):
    """Dropping secondary labels shows up in the confident-learning missed rates, the blended
    ranking finds those rows better than the worst-pair score alone, and the label-dependency
    view (``views="worst"``) adds to the per-label view's ranking of them."""
    rows, space, X, Y = reuters
    Y = Y[:, Y.sum(0) >= 3]
    noisy, changed = inject_noise(Y, "missing", 0.1, seed=2)
    truth = changed.any(1)
    res = audit_arrays(X, noisy, texts=rows.texts, progress=False)
    missed, added = noise_rates(noisy, res.evidence)
    hit = changed.any(0)  # labels that lost some positives
    assert missed[hit].mean() > 2 * added[hit].mean()
    W = cell_error_posteriors(noisy, res.evidence)
    assert W[changed].mean() > 5 * W[~changed & ~noisy.astype(bool)].mean()
    blend = average_precision(truth, -label_quality_scores(noisy, res.evidence, method="blend"))
    worst_pair = average_precision(truth, -label_quality_scores(noisy, res.evidence, method="worst_pair"))
    assert blend > worst_pair and blend > 4 * truth.mean()
    # the label-dependency view adds to the ranking of missed labels (a dropped label's partners are
    # given); the default ranks by the per-label view alone (core.DEFAULT_VIEWS), so both are asked for
    plain = audit_arrays(X, noisy, texts=rows.texts, progress=False, views="plain")
    worst = audit_arrays(X, noisy, texts=rows.texts, progress=False, views="worst")
    assert average_precision(truth, -worst.label_quality) > average_precision(truth, -plain.label_quality)
    with pytest.raises(TagwiseError, match="unknown label quality method"):
        label_quality_scores(noisy, res.evidence, method="mean")


def test_stratified_folds_spread_every_label(reuters):
    _, _, _, Y = reuters
    folds = stratified_folds(Y, 5, random_state=0)
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 1
    per_fold = np.stack([Y[folds == f].sum(0) for f in range(5)])  # (5, K)
    rare = (Y.sum(0) >= 1) & (Y.sum(0) <= 10)
    # the rarest labels are dealt round-robin, so no fold holds more than its share + 1
    assert (per_fold[:, rare].max(0) - np.ceil(Y.sum(0)[rare] / 5) <= 1).all()


def test_conflicting_duplicates_and_ivf_neighbours(ag):
    rows, space, X, Y = ag
    texts = list(rows.texts[:300]) + [rows.texts[0].upper() + "  !!"]
    Xd = np.vstack([X[:300], X[:1]])
    Yd = np.vstack([Y[:300], np.roll(Y[:1], 1, axis=1)])  # same text, another class
    nbrs, sims = nearest_neighbors(Xd, k=5, progress=False)
    dups = conflicting_duplicates(texts, Yd, None, nbrs, sims)
    pairs = set(zip(dups["i"].tolist(), dups["j"].tolist()))
    assert (0, 300) in pairs
    assert dups["exact"][list(zip(dups["i"], dups["j"])).index((0, 300))]
    # the IVF index used above exact_max finds nearly the same neighbours as the exact search
    exact_n, _ = nearest_neighbors(X, k=10, exact_max=10_000, progress=False)
    ivf_n, ivf_s = nearest_neighbors(X, k=10, exact_max=100, nprobe=16, progress=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_n, ivf_n)])
    assert recall > 0.7
    # each row's neighbours are distinct, exclude the row itself and come best first
    assert (ivf_n != np.arange(len(X))[:, None]).all() and (ivf_n >= 0).all()
    assert all(len(set(r)) == 10 for r in ivf_n.tolist())
    assert (np.diff(ivf_s, axis=1) <= 1e-6).all()
    # probing every cell is an exact search, whether a cell's top k comes from argpartition (k
    # large for the ~45-row cells) or faiss's heap select (k = 1)
    all_n, _ = nearest_neighbors(X, k=10, exact_max=100, nprobe=10_000, progress=False)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_n, all_n)]) > 0.99
    one_n, _ = nearest_neighbors(X, k=1, exact_max=100, nprobe=10_000, progress=False)
    assert (one_n[:, 0] == exact_n[:, 0]).mean() > 0.99


def test_bad_inputs_give_clear_errors(ag):
    rows, space, X, Y = ag
    with pytest.raises(TagwiseError, match="fewer than the 5 folds"):
        audit_arrays(X[:3], Y[:3], progress=False)
    one_class = np.zeros((50, 4), np.uint8)
    one_class[:, 2] = 1
    with pytest.raises(TagwiseError, match="only one class"):
        audit_arrays(X[:50], one_class, progress=False)
    with pytest.raises(TagwiseError, match=r"\{0,1\}"):
        find_label_issues(Y[:10] * 2, np.full((10, 4), 0.5))
    with pytest.raises(TagwiseError, match=r"must both be \(n, K\)"):
        label_quality_scores(Y[:10], np.full((10, 3), 0.5))


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGWISE_CACHE_DIR", str(tmp_path / "emb"))
    proj = Project.init(tmp_path / "proj")
    proj.store.set_meta("encoder", "hashing")
    isear = {"name": "isear", "path": str(DATA / "isear" / "isear.csv"), "split": "train", "format": "csv",
             "separator": "|", "quoting": "none", "limit": 400, "columns": {"text": "SIT", "labels": "Field1", "id": "MYKEY"},
             "labels": {"format": "single"}, "skip_empty_text": True}
    proj.add_source(isear)
    yield proj
    proj.close()


def _labels(proj):
    ex = proj.examples()
    return dict(zip(ex.ids.tolist(), ex.labels))


def test_audit_cli_apply_and_undo_restore_exact_labels(project, tmp_path):
    before = _labels(project)
    out = tmp_path / "issues.csv"
    assert cli_main(["audit", str(project.path), "--out", str(out), "--quiet"]) == 0
    rows = read_issues(out)
    assert rows and {"rank", "example_id", "source", "text", "given_labels", "suggested_labels", "label_quality",
                     "findings"} <= set(rows[0])
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    q = [float(r["label_quality"]) for r in rows]
    assert q == sorted(q) and all(0.0 <= v <= 1.0 for v in q)
    findings = json.loads(rows[0]["findings"])
    assert all({"label", "type", "score"} <= set(f) for f in findings)
    # the user keeps only the label fixes of the first 10 rows
    kept = [r for r in rows if any(f["type"] in ("missing", "wrong") for f in json.loads(r["findings"]))][:10]
    assert kept
    keep_file = tmp_path / "kept.jsonl"
    keep_file.write_text("".join(json.dumps({**r, "findings": json.loads(r["findings"])}) + "\n" for r in kept))
    applied = apply_corrections(project, keep_file)
    after1 = _labels(project)
    assert applied["changed"] == len(kept)
    for r in kept:
        assert after1[int(r["store_id"])] == r["suggested_labels"]
    # a second batch through the CLI, then undo it, then undo back to the start
    second = tmp_path / "second.jsonl"
    r = rows[-1]
    second.write_text(json.dumps({"store_id": r["store_id"], "given_labels": r["given_labels"],
                                  "suggested_labels": ["joy"]}) + "\n")
    assert cli_main(["corrections", str(project.path), "apply", str(second)]) == 0
    assert _labels(project)[int(r["store_id"])] == ["joy"]
    assert cli_main(["corrections", str(project.path), "undo"]) == 0
    assert _labels(project) == after1
    assert cli_main(["corrections", str(project.path), "undo", "--to", "start"]) == 0
    assert _labels(project) == before
    # history is kept: both batches are still listed, marked undone
    batches = correction_batches(project)
    assert len(batches) == 2 and all(b["undone_at"] for b in batches)
    with pytest.raises(TagwiseError, match="no applied corrections"):
        undo_corrections(project)


def test_audit_cli_max_flags_and_all(project, tmp_path, capsys):
    out = tmp_path / "capped.jsonl"
    assert cli_main(["audit", str(project.path), "--out", str(out), "--quiet", "--max-flags", "5"]) == 0
    printed = capsys.readouterr().out
    assert "estimated" in printed and "flag budget 5 rows" in printed
    # the estimate per label is printed (largest first) and kept with the run
    run = [r for r in project.runs("audit")][-1]
    summary = json.loads((run / "summary.json").read_text())
    by_label = summary["estimated_errors_by_label"]
    counts = list(by_label.values())
    assert set(by_label) <= set(project.labels.names) and counts == sorted(counts, reverse=True)
    assert 0 < summary["estimated_errors"] <= len(project.examples()) and min(counts) >= 0.5
    top_name, top_count = next(iter(by_label.items()))
    assert f"most estimated errors: {top_name} {top_count:.0f}" in printed
    page = section_audit(project)
    assert "errors estimated" in page and f"<tr><td>{top_name}</td><td>{top_count:.0f}</td>" in page
    written = read_issues(out)
    label_rows = [r for r in written if any(f["type"] in ("missing", "wrong") for f in r["findings"])]
    assert len(label_rows) == 5
    # the budget is a row count: duplicates and outliers do not add rows beyond it (the file, the run's
    # flagged rows and its summary agree)
    assert len(written) == 5 and summary["n_flagged"] == 5
    assert int(np.load(run / "flagged.npy").sum()) == 5
    every = tmp_path / "every.jsonl"
    assert cli_main(["audit", str(project.path), "--out", str(every), "--quiet", "--all"]) == 0
    assert len(read_issues(every)) == len(project.examples())


def test_corrections_reject_labels_outside_taxonomy(project, tmp_path):
    ex = project.examples()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"store_id": int(ex.ids[0]), "suggested_labels": ["not-a-label"]}) + "\n")
    with pytest.raises(TagwiseError, match=r"row 1: suggested_labels \['not-a-label'\] are not in the taxonomy"):
        apply_corrections(project, bad)
    assert _labels(project)[int(ex.ids[0])] == ex.labels[0]


def test_audit_rejects_stored_labels_outside_taxonomy_and_tiny_splits(project, tmp_path):
    ex = project.examples()
    project.store.set_labels({int(ex.ids[5]): ["bogus"]}, "manual", "test")
    with pytest.raises(TagwiseError, match=r"labels \['bogus'\] outside the taxonomy"):
        audit_project(project, split="train", progress=False)
    with pytest.raises(TagwiseError, match="no labeled examples in split 'dev'"):
        audit_project(project, split="dev", progress=False)


def test_issue_files_round_trip_in_all_formats(project, tmp_path):
    res, ex, space = audit_project(project, split="train", progress=False)
    rows = issue_rows(res, ex, space, all_rows=True)
    assert len(rows) == len(ex)
    for ext in ("csv", "jsonl", "parquet"):
        path = write_issues(rows[:20], tmp_path / f"issues.{ext}")
        back = read_issues(path)
        assert [str(r["example_id"]) for r in back] == [r["example_id"] for r in rows[:20]]
        assert [list(r["suggested_labels"]) for r in back] == [r["suggested_labels"] for r in rows[:20]]
    with pytest.raises(TagwiseError, match="unknown issues file format"):
        write_issues(rows, tmp_path / "issues.xlsx")


def test_unknown_cells_are_never_scored_or_flagged(reuters):
    """Two 'sources': the second half does not annotate the three most frequent labels."""
    rows, space, X, Y = reuters
    Y = Y[:, Y.sum(0) >= 5]
    mask = np.ones(Y.shape, bool)
    top = np.argsort(-Y.sum(0))[:3]
    half = np.arange(len(Y)) >= len(Y) // 2
    mask[np.ix_(half, top)] = False
    given = Y * mask  # what the second source reports: nothing for labels it does not annotate
    res = audit_arrays(X, given, mask, texts=rows.texts, progress=False)
    assert not res.issues.flagged[~mask].any()
    assert np.isnan(res.issues.cell_scores[~mask]).all()
    assert np.isfinite(res.pred_probs).all() and (res.pred_probs[~mask] > 0).any()
    # the second half's silently-missing frequent labels are not 'missing' errors, so the
    # second half is not ranked worse than the first
    assert res.label_quality[half].mean() >= res.label_quality[~half].mean() - 0.05
    # unknown cells are neither features nor targets of the label-dependency stage: whatever
    # value they hold, its probabilities do not change
    scrambled = given.copy()
    scrambled[~mask] = np.random.default_rng(0).integers(0, 2, (~mask).sum())
    P_dep = label_dependency_proba(res.pred_probs, given, mask)
    assert np.allclose(P_dep, label_dependency_proba(res.pred_probs, scrambled, mask), atol=1e-5)
    assert np.isfinite(P_dep).all() and ((P_dep > 0) & (P_dep < 1)).all()


def test_confident_joint_counts_a_hard_label_by_its_own_anchors():
    # A hard label: its given positives never reach 0.5 but sit well above the negatives, and a
    # tenth of them look like negatives. The estimate must count about that tenth (here 20 of
    # 200, plus a few misses), not every positive because none is "confidently" above 0.5.
    rng = np.random.default_rng(0)
    n_pos, n_neg = 200, 1800
    Y = np.zeros((n_pos + n_neg, 1), dtype=np.uint8)
    Y[:n_pos] = 1
    P = np.empty((n_pos + n_neg, 1))
    P[:n_pos, 0] = np.r_[rng.uniform(0.0, 0.02, 20), rng.uniform(0.15, 0.45, n_pos - 20)]
    P[n_pos:, 0] = rng.uniform(0.0, 0.1, n_neg)
    per_label, rows = estimate_label_errors(Y, P, method="confident_joint")
    assert 15 <= per_label[0] <= 40 and 15 <= rows <= 40, (per_label, rows)
