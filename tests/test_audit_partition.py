"""Partitioned audit (``audit_arrays(..., partition_rows=N)``) on real slices: GoEmotions (multi-label)
and AG News (single-label), hashing encoder (no model weights, no cache)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

from tagwise.audit import audit_arrays
from tagwise.audit.noise import inject_noise
from tagwise.audit.partition import partition_runs, run_rows
from tagwise.encoders import get_encoder, l2_normalize
from tagwise.sources import ingest, parse_spec
from tagwise.types import LabelSpace, TagwiseError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AG_SPEC = {"name": "ag", "path": str(DATA / "ag_news" / "test.csv"), "split": "train", "limit": 2000,
           "columns": {"text": ["title", "description"], "labels": "label"}, "text_join": ". ",
           "labels": {"format": "single", "names": ["World", "Sports", "Business", "Sci/Tech"], "id_base": 1}}
PART = 1_000


def _auroc(quality: np.ndarray, truth: np.ndarray) -> float:
    r = rankdata(-quality)
    pos = truth.sum()
    return float((r[truth].sum() - pos * (pos + 1) / 2) / (pos * (len(truth) - pos)))


@pytest.fixture(scope="module")
def goemotions():
    """3,000 GoEmotions training rows (28 labels) with 10% of rows given a uniform label error (seed 0)."""
    lines = (DATA / "goemotions" / "original_train.tsv").read_text(encoding="utf-8").splitlines()[:3000]
    rows = [line.split("\t") for line in lines]
    texts = [r[0] for r in rows]
    Y = np.zeros((len(rows), 28), np.uint8)
    for i, r in enumerate(rows):
        Y[i, [int(c) for c in r[1].split(",")]] = 1
    noisy, changed = inject_noise(Y, "uniform", 0.1, seed=0)
    return texts, get_encoder("hashing").encode(texts), noisy, changed.any(1)


@pytest.fixture(scope="module")
def both(goemotions):
    texts, X, Y, truth = goemotions
    whole = audit_arrays(X, Y, texts=texts, progress=False)
    parted = audit_arrays(X, Y, texts=texts, progress=False, partition_rows=PART)
    return whole, parted


def test_partitioned_ranking_finds_planted_errors_nearly_as_well(goemotions, both):
    _, _, _, truth = goemotions
    whole, parted = both
    assert parted.choices["partitions"] == 3 and "partitions" not in whole.choices
    a, b = _auroc(whole.label_quality, truth), _auroc(parted.label_quality, truth)
    # Each partition cross-fits and searches neighbours among a third of the rows, so some loss is
    # expected: over noise seeds 1-3 (not this test's seed) the partitioned AUROC was 0.015-0.02 below
    # the whole audit's. The margin is twice that; a partition combined in the wrong row order or on
    # another score scale ranks near chance (0.5) and fails by far.
    assert b > 0.8
    assert b >= a - 0.04


def test_partitioned_outputs_follow_input_order(goemotions, both):
    _, X, Y, _ = goemotions
    _, parted = both
    n = len(Y)
    for arr in (parted.pred_probs, parted.evidence, parted.neighbor_votes, parted.issues.cell_scores,
                parted.issues.flagged, parted.neighbors, parted.similarity):
        assert arr.shape[0] == n
    # a row's stored neighbour similarity is its cosine to the stored neighbour (global indices)
    Xn = l2_normalize(np.asarray(X, np.float32))
    nb, sim = np.asarray(parted.neighbors), np.asarray(parted.similarity)
    assert (nb[:, 0] >= 0).all()
    np.testing.assert_allclose(sim[:, 0], (Xn * Xn[nb[:, 0]]).sum(1), atol=1e-4)
    # neighbours come from the row's own partition
    part_of = np.empty(n, int)
    for p, runs in enumerate(partition_runs(n, PART, 0)):
        part_of[run_rows(runs)] = p
    assert (part_of[nb] == part_of[:, None])[nb >= 0].all()
    # out-of-fold evidence is row-aligned: given cells get higher probabilities than absent ones
    P = np.asarray(parted.pred_probs)
    assert P[Y == 1].mean() > 3 * P[Y == 0].mean()


def test_estimate_is_summed_and_budget_is_global(goemotions, both):
    texts, X, Y, _ = goemotions
    _, parted = both
    total, quality = 0.0, np.empty(len(Y), np.float32)
    views = "auto"
    for runs in partition_runs(len(Y), PART, 0):
        rows = run_rows(runs)
        r = audit_arrays(X[rows], Y[rows], progress=False, views=views, multi_label=True, partition_rows=None)
        views = r.choices["views"]
        total += r.estimated_errors
        quality[rows] = r.label_quality
    assert parted.estimated_errors == pytest.approx(total, rel=1e-6)
    np.testing.assert_allclose(parted.label_quality, quality, atol=1e-6)
    budget = parted.flag_budget
    assert budget == int(round(total))
    lowest = np.argsort(parted.label_quality, kind="stable")[:budget]
    assert parted.flagged_rows.sum() == budget and parted.flagged_rows[lowest].all()
    # typed findings only on the budget's rows, and every budget row has one
    assert np.array_equal(parted.issues.is_issue, parted.flagged_rows)
    capped = audit_arrays(X, Y, progress=False, partition_rows=PART, max_flags=40)
    assert capped.flag_budget == 40 and capped.issues.is_issue.sum() == 40


def test_up_to_partition_rows_results_are_unchanged(goemotions):
    texts, X, Y, _ = goemotions
    X, Y, texts = X[:1500], Y[:1500], texts[:1500]
    before = audit_arrays(X, Y, texts=texts, progress=False, partition_rows=None)
    for part in (len(Y), None):
        same = audit_arrays(X, Y, texts=texts, progress=False, partition_rows=part)
        for name in ("label_quality", "pred_probs", "evidence", "flagged_rows", "outlier_score", "neighbors"):
            assert np.array_equal(getattr(before, name), getattr(same, name)), name
        assert np.array_equal(before.issues.flagged, same.issues.flagged)
        assert same.estimated_errors == before.estimated_errors and same.choices == before.choices


def test_memory_mapped_inputs_and_cross_partition_duplicates(goemotions, tmp_path):
    texts, X, Y, _ = goemotions
    texts = list(texts)
    # an exact duplicate (after normalisation) of row 0 with other labels, in another partition
    part_of = np.empty(len(Y), int)
    for p, runs in enumerate(partition_runs(len(Y), PART, 0)):
        part_of[run_rows(runs)] = p
    j = int(np.flatnonzero(part_of != part_of[0])[-1])
    texts[j] = "  " + texts[0].upper() + " "
    Y = Y.copy()
    Y[j] = 0
    Y[j, (Y[0].argmax() + 1) % Y.shape[1]] = 1
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    mapped = audit_arrays(np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "Y.npy", mmap_mode="r"),
                          texts=texts, progress=False, partition_rows=PART, scratch_dir=tmp_path)
    in_memory = audit_arrays(X, Y, texts=texts, progress=False, partition_rows=PART)
    assert np.array_equal(mapped.label_quality, in_memory.label_quality)
    assert np.array_equal(np.asarray(mapped.issues.flagged), np.asarray(in_memory.issues.flagged))
    d = mapped.duplicates
    pair = (d["i"] == 0) & (d["j"] == j)
    assert pair.sum() == 1 and d["exact"][pair].all()
    assert list((tmp_path).glob("tagwise-audit-*")) == []  # the scratch folder is gone


def test_single_label_partitioned_audit():
    rows = ingest(parse_spec(AG_SPEC, DATA / "spec.yaml"))
    space = LabelSpace(tuple(rows.annotated_labels))
    X, Y = get_encoder("hashing").encode(rows.texts), space.to_matrix(rows.labels)
    rng = np.random.default_rng(1)
    planted = rng.choice(len(Y), 100, replace=False)
    noisy = Y.copy()
    for i in planted:
        g = Y[i].argmax()
        noisy[i, g] = 0
        noisy[i, (g + 1 + rng.integers(3)) % 4] = 1
    truth = np.zeros(len(Y), bool)
    truth[planted] = True
    whole = audit_arrays(X, noisy, texts=rows.texts, progress=False)
    parted = audit_arrays(X, noisy, texts=rows.texts, progress=False, partition_rows=700)
    assert not parted.multi_label and parted.choices["partitions"] == 3
    assert _auroc(parted.label_quality, truth) >= _auroc(whole.label_quality, truth) - 0.04
    flagged = np.asarray(parted.issues.flagged)
    assert (flagged.sum(1)[parted.issues.is_issue] == 2).all()  # given class and suggested class


def test_bad_partition_rows_is_a_clear_error(goemotions):
    _, X, Y, _ = goemotions
    with pytest.raises(TagwiseError, match="partition-rows"):
        audit_arrays(X[:100], Y[:100], progress=False, partition_rows=0)


def _isear_project(path):
    """A project of 400 ISEAR situations (single-label emotions) on the hashing encoder."""
    from tagwise.project import Project

    proj = Project.init(path)
    proj.store.set_meta("encoder", "hashing")
    proj.add_source({"name": "isear", "path": str(DATA / "isear" / "isear.csv"), "split": "train", "format": "csv",
                     "separator": "|", "quoting": "none", "limit": 400,
                     "columns": {"text": "SIT", "labels": "Field1", "id": "MYKEY"},
                     "labels": {"format": "single"}, "skip_empty_text": True})
    return proj


def test_cli_partition_rows(tmp_path, monkeypatch, capsys):
    from tagwise.cli import main as cli_main
    from tagwise.workflows.audit import read_issues

    monkeypatch.setenv("TAGWISE_CACHE_DIR", str(tmp_path / "emb"))
    proj = _isear_project(tmp_path / "proj")
    n = len(proj.examples())
    proj.close()
    out = tmp_path / "issues.jsonl"
    assert cli_main(["audit", str(tmp_path / "proj"), "--out", str(out), "--quiet", "--partition-rows", "150",
                     "--max-flags", "12"]) == 0
    printed = capsys.readouterr().out
    assert f"audited in {-(-n // 150)} random partitions" in printed and "flag budget 12 rows" in printed
    rows = read_issues(out)
    assert sum(any(f["type"] in ("missing", "wrong") for f in r["findings"]) for r in rows) == 12
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))


def test_workflow_audits_memory_mapped_features_above_partition_rows(tmp_path, monkeypatch):
    """Above partition_rows the workflow hands the audit a memory map of X (in a temporary file it
    removes afterwards) and finds the same issues as the array API on X in memory."""
    import tempfile

    from tagwise.workflows.audit import audit_project

    monkeypatch.setenv("TAGWISE_CACHE_DIR", str(tmp_path / "emb"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    proj = _isear_project(tmp_path / "proj")
    import tagwise.workflows.audit as workflow

    seen = []

    def recording_audit(X, *args, **kwargs):  # the real audit, noting what X it was handed
        seen.append((type(X), X.filename if isinstance(X, np.memmap) else None))
        return audit_arrays(X, *args, **kwargs)

    monkeypatch.setattr(workflow, "audit_arrays", recording_audit)
    result, ex, space = audit_project(proj, split="train", progress=False, partition_rows=150)
    assert seen[0][0] is np.memmap and "tagwise-audit-x-" in str(seen[0][1])
    assert not any((tmp_path / "scratch").glob("tagwise-audit-x-*"))
    X = proj.features(ex)
    assert not isinstance(X, np.memmap)
    ref = audit_arrays(X, ex.label_matrix(space), ex.known_mask(space), texts=ex.texts, progress=False,
                       partition_rows=150)
    np.testing.assert_array_equal(result.issues.flagged, ref.issues.flagged)
    np.testing.assert_allclose(result.issues.cell_scores, ref.issues.cell_scores, atol=1e-6)
    proj.close()
