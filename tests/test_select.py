"""Active learning `suggest` on a real project slice: never labeled examples, never duplicates."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tagwise.cli import main
from tagwise.project import Project
from tagwise.select.active import relabel_candidates, select_batch, uncertainty_scores
from tagwise.select.suggest import normalize_text, suggest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semeval2018_ec_en"
NAMES = ["anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism", "sadness",
         "surprise", "trust"]


def _labeled_spec(tmp: Path, limit: int) -> Path:
    spec = {"name": "semeval_labeled", "format": "tsv", "quoting": "none", "limit": limit,
            "path": str(DATA / "E-c-En-train.txt"), "split": "train",
            "columns": {"text": "Tweet", "id": "ID"}, "labels": {"format": "onehot", "onehot_columns": NAMES}}
    path = tmp / "labeled.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _unlabeled_spec(tmp: Path, labeled_texts: list[str]) -> Path:
    """Dev tweets as unlabeled texts, plus copies of labeled tweets and in-pool duplicates."""
    lines = (DATA / "E-c-En-dev.txt").read_text(encoding="utf-8").splitlines()[1:301]
    texts = [ln.split("\t")[1] for ln in lines]
    texts += labeled_texts[:20]                      # already labeled elsewhere in the project
    texts += [t.upper() + "  " for t in texts[:15]]  # duplicates up to case/whitespace
    rows = [{"id": f"u{i}", "text": t} for i, t in enumerate(texts)]
    data = tmp / "unlabeled.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {"name": "pool", "path": str(data), "split": "unlabeled", "columns": {"text": "text", "id": "id"}}
    path = tmp / "unlabeled.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


pytestmark = pytest.mark.usefixtures("shared_embedding_cache")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proj")
    root = tmp / "p"
    proj = Project.init(root)
    proj.add_source(_labeled_spec(tmp, 120))
    labeled_texts = proj.examples(labeled=True).texts
    proj.add_source(_unlabeled_spec(tmp, labeled_texts))
    return proj


def _check_rows(project, rows, budget):
    labeled = project.examples(labeled=True)
    labeled_ids = set(labeled.ids.tolist())
    labeled_keys = {normalize_text(t) for t in labeled.texts}
    pool_rows = [r for r in rows if r["reason"] != "relabel"]
    assert len(pool_rows) == budget
    assert not {r["store_id"] for r in pool_rows} & labeled_ids
    keys = [normalize_text(r["text"]) for r in pool_rows]
    assert len(set(keys)) == len(keys), "duplicate texts suggested"
    assert not set(keys) & labeled_keys, "a text that is already labeled was suggested"
    for r in rows:
        assert {"example_id", "source", "text", "score", "reason", "predicted"} <= set(r)
        assert set(r["predicted"]) <= set(NAMES)


def test_suggest_warm_never_returns_labeled_or_duplicates(project):
    rows = suggest(project, budget=60, relabel=5)
    _check_rows(project, rows, 60)
    reasons = {r["reason"] for r in rows}
    assert reasons == {"uncertain", "rare-label", "diverse", "relabel"}
    assert sum(r["reason"] == "relabel" for r in rows) == 5
    scores = [r["score"] for r in rows if r["reason"] != "relabel"]
    assert scores == sorted(scores, reverse=True)


def test_suggest_asking_for_more_than_the_pool_gives_the_whole_pool_once(project):
    rows = suggest(project, budget=10_000)
    n_pool = len({normalize_text(t) for t in project.examples(labeled=False).texts}
                 - {normalize_text(t) for t in project.examples(labeled=True).texts})
    _check_rows(project, rows, n_pool)


def test_cold_start_cli_jsonl_and_label_studio(tmp_path):
    root = tmp_path / "cold"
    assert main(["init", str(root)]) == 0
    # the only labeled rows are in the test split (never learned from), so this is a cold start
    spec = yaml.safe_load(_labeled_spec(tmp_path, 40).read_text())
    spec["split"] = "test"
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(spec))
    assert main(["add-source", str(root), str(tmp_path / "test.yaml")]) == 0
    assert main(["add-source", str(root), str(_unlabeled_spec(tmp_path, []))]) == 0
    out = tmp_path / "batch.jsonl"
    assert main(["suggest", str(root), "--budget", "25", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    _check_rows(Project.open(root), rows, 25)
    assert {r["reason"] for r in rows} == {"cold-start"}
    ls = tmp_path / "batch.json"
    assert main(["suggest", str(root), "--budget", "10", "--out", str(ls), "--format", "label-studio"]) == 0
    tasks = json.loads(ls.read_text())
    assert len(tasks) == 10 and all("text" in t["data"] and t["predictions"][0]["result"] for t in tasks)


def test_select_batch_prefers_uncertain_and_rare():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    P = np.full((500, 2), 0.02)
    P[:40, 0] = 0.5          # uncertain about label 0 (threshold 0.5)
    P[40:60, 1] = 0.95       # likely positives of label 1, which has 1 labeled positive
    u, r = uncertainty_scores(P, np.array([0.5, 0.5]), np.array([50, 1]))
    assert u[:40].min() > u[60:].max() and r[40:60].min() > r[60:].max()
    sel = select_batch(X, 30, P, np.array([0.5, 0.5]), np.array([50, 1]), mix=(0.5, 0.5, 0.0), seed=0)
    assert len(set(sel.index.tolist())) == 30
    rare_rows = sel.index[sel.reason == "rare-label"]
    assert len(rare_rows) == 15 and np.isin(rare_rows, np.arange(40, 60)).all()  # likely positives of the rare label
    assert np.isin(sel.index[sel.reason == "uncertain"], np.arange(40)).mean() >= 0.8
    mixed = select_batch(X, 30, P, np.array([0.5, 0.5]), np.array([50, 1]), seed=0)
    assert set(mixed.reason) == {"rare-label", "uncertain", "diverse"} and len(set(mixed.index.tolist())) == 30


def test_relabel_candidates_find_flipped_labels():
    Y = np.zeros((100, 3), dtype=np.uint8)
    Y[:50, 0] = 1
    P = np.where(Y > 0, 0.9, 0.1)
    Y_noisy = Y.copy()
    Y_noisy[[3, 70], 0] ^= 1  # two flipped labels
    sel = relabel_candidates(Y_noisy, P, n=2)
    assert set(sel.index.tolist()) == {3, 70}


def test_report_section_flags_labels_with_few_positives(project):
    from tagwise.select.report import low_label_report_section

    fragment = low_label_report_section(project)
    assert "labeled positives" in fragment
    Y = project.examples(labeled=True).label_matrix(project.labels)
    rare = {n for n, c in zip(NAMES, Y.sum(0)) if c < 8}
    flagged_text = fragment.split("<table>")[0]
    assert rare and {n for n in NAMES if n in flagged_text} == rare
