"""Active learning `suggest` on a real project slice: never labeled examples, never duplicates."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tagwise.cli import main
from tagwise.project import Project
from tagwise.select.active import pool_density_rank, relabel_candidates, select_batch, uncertainty_scores
from tagwise.text import normalize_text
from tagwise.workflows.suggest import suggest
from tagwise.types import TagwiseError

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


def test_cold_start_cli_jsonl_and_label_studio(tmp_path, capsys):
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
    # the printed hint is the command that brings the labels back (docs/your-data.md §9), and it works
    printed = capsys.readouterr().out
    assert f"tagwise labels import {root} answers.jsonl" in printed and "add-source" not in printed
    name = Project.open(root).labels.names[0]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({**r, "labels": [name]}) + "\n" for r in rows[:3]))
    assert main(["labels", "import", str(root), str(answers)]) == 0
    assert "3" in capsys.readouterr().out
    ls = tmp_path / "batch.json"
    assert main(["suggest", str(root), "--budget", "10", "--out", str(ls), "--format", "label-studio"]) == 0
    assert "tagwise labels import" in capsys.readouterr().out
    tasks = json.loads(ls.read_text())
    assert len(tasks) == 10 and all("text" in t["data"] and t["predictions"][0]["result"] for t in tasks)


def _unit_rows(n=500, d=16, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_select_batch_takes_rows_at_each_labels_cut_rare_labels_first():
    X = _unit_rows()
    thresholds = np.array([0.3, 0.6])
    P = np.full((500, 2), 0.02)
    P[:40, 0] = np.linspace(0.28, 0.32, 40)   # at the cut of label 0 (50 labeled positives)
    P[40:60, 1] = np.linspace(0.58, 0.62, 20)  # at the cut of label 1 (5 labeled positives)
    P[60:80, 1] = 0.99                         # sure positives of label 1: nothing to learn
    n_pos = np.array([50, 5])
    sel = select_batch(X, 30, P, thresholds, n_pos, boundary_share=1.0, seed=0, rule="closeness")
    assert len(set(sel.index.tolist())) == 30
    rare, uncertain = sel.index[sel.reason == "rare-label"], sel.index[sel.reason == "uncertain"]
    # label 1 has 10x fewer positives, so it gets most slots; each takes the rows nearest its cut
    assert len(rare) > len(uncertain) > 0
    assert set(range(40, 60)) <= set(rare.tolist()) and not np.isin(rare, np.arange(60, 80)).any()
    assert np.isin(uncertain, np.arange(40)).all()
    # nearest the cut first: label 0's picks are its rows closest to 0.3
    closest = np.argsort(np.abs(P[:40, 0] - 0.3))[: len(uncertain)]
    assert set(uncertain.tolist()) == set(closest.tolist())
    assert (sel.score[:-1] >= sel.score[1:]).all()


def test_select_batch_hunts_positives_of_a_label_without_a_cut_and_mixes_in_diverse_rows():
    X = _unit_rows()
    P = np.full((500, 2), 0.02)
    P[:, 0] = np.linspace(0.01, 0.99, 500)
    P[100:110, 1] = np.linspace(0.7, 0.9, 10)  # likely positives of label 1, which has 1 labeled positive
    n_pos = np.array([80, 1])
    sel = select_batch(X, 40, P, np.array([0.5, 0.5]), n_pos, seed=0)
    assert len(set(sel.index.tolist())) == 40
    assert set(range(100, 110)) <= set(sel.index[sel.reason == "rare-label"].tolist())
    assert (sel.reason == "diverse").sum() == 20  # default: half boundary rows, half k-means representatives
    with pytest.raises(TagwiseError, match="boundary_share"):
        select_batch(X, 10, P, np.array([0.5, 0.5]), n_pos, boundary_share=1.5)
    with pytest.raises(TagwiseError, match="must be"):
        select_batch(X, 10, P[:, :1], np.array([0.5, 0.5]), n_pos)
    u, rare = uncertainty_scores(P, np.array([0.5, 0.5]), n_pos)  # the score shown for diverse rows
    plain = np.flatnonzero(P[:, 1] < 0.5)
    assert plain[u[plain].argmax()] in np.flatnonzero(np.abs(P[:, 0] - 0.5) < 0.01)
    assert set(np.flatnonzero(rare > 0).tolist()) == set(range(100, 110))


def test_select_batch_closeness_override_replaces_the_distance_to_the_cut():
    X = _unit_rows()
    P = np.full((500, 2), 0.5)                 # every row sits at both cuts: the default ties them all
    n_pos = np.array([30, 30])
    own = np.full((500, 2), 0.01)
    own[200:215, 0] = 0.9                      # another criterion prefers these rows for label 0 ...
    own[300:305, 1] = 0.8                      # ... and these for label 1
    sel = select_batch(X, 20, P, np.array([0.5, 0.5]), n_pos, boundary_share=1.0, seed=0, closeness=own)
    assert set(sel.index.tolist()) == set(range(200, 215)) | set(range(300, 305))
    default = select_batch(X, 20, P, np.array([0.5, 0.5]), n_pos, boundary_share=1.0, seed=0)
    assert not set(default.index.tolist()) >= set(range(300, 305))
    with pytest.raises(TagwiseError, match="closeness"):
        select_batch(X, 20, P, np.array([0.5, 0.5]), n_pos, closeness=own[:, :1])


def test_default_sparse_rule_prefers_rows_in_thin_regions_among_rows_equally_near_a_cut():
    rng = np.random.default_rng(0)
    centre = rng.normal(size=16)
    X = np.concatenate([centre + 0.05 * rng.normal(size=(450, 16)), rng.normal(size=(50, 16))]).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)   # 450 near-duplicates of one text, 50 scattered ones
    density = pool_density_rank(X)
    assert density.shape == (500,) and density.max() == 1.0 and density[:450].min() > density[450:].max()
    P = np.full((500, 2), 0.5)                       # every row at both cuts: closeness alone ties them
    n_pos = np.array([30, 30])
    sparse = select_batch(X, 20, P, np.array([0.5, 0.5]), n_pos, boundary_share=1.0, seed=0)
    assert np.isin(sparse.index, np.arange(450, 500)).all()
    plain = select_batch(X, 20, P, np.array([0.5, 0.5]), n_pos, boundary_share=1.0, seed=0, rule="closeness")
    assert np.isin(plain.index, np.arange(450)).sum() > 10  # ties broken by row order, not by density
    with pytest.raises(TagwiseError, match="rule"):
        select_batch(X, 20, P, np.array([0.5, 0.5]), n_pos, rule="bald")


def test_relabel_candidates_find_flipped_labels():
    Y = np.zeros((100, 3), dtype=np.uint8)
    Y[:50, 0] = 1
    P = np.where(Y > 0, 0.9, 0.1)
    Y_noisy = Y.copy()
    Y_noisy[[3, 70], 0] ^= 1  # two flipped labels
    sel = relabel_candidates(Y_noisy, P, n=2)
    assert set(sel.index.tolist()) == {3, 70}


def test_report_section_flags_labels_with_few_positives(project):
    from tagwise.workflows.report import section_low_label as low_label_report_section

    fragment = low_label_report_section(project)
    assert "labeled positives" in fragment
    Y = project.examples(labeled=True).label_matrix(project.labels)
    rare = {n for n, c in zip(NAMES, Y.sum(0)) if c < 8}
    flagged_text = fragment.split("<table>")[0]
    assert rare and {n for n in NAMES if n in flagged_text} == rare


def test_suggest_predicted_comes_from_the_current_model_as_predict_would(project):
    """Last in this module: it trains the project's model. Before, ``predicted`` came from the selection's
    own head; with a trained model it is the model's answer (thresholds, modes, hierarchy), as /api/predict's."""
    from tagwise.workflows.predict import predict_texts
    from tagwise.workflows.train import train

    before = suggest(project, budget=20)
    assert all(r["predicted_by"].endswith("(no trained model yet)") for r in before)
    train(project, progress=False)
    rows = suggest(project, budget=20, relabel=3)
    for r in rows:
        want = predict_texts(project, [r["text"]], source=r["source"])
        assert r["predicted_by"] == f"model {want['model']}"
        assert r["predicted"] == want["predictions"][0]["labels"]
        top = max(want["predictions"][0]["scores"].items(), key=lambda kv: kv[1])
        assert r["scores"][top[0]] == pytest.approx(top[1], abs=1e-4)
