"""Transfer evaluation, holdout splits and mapping suggestions on real slices (issue 4)."""
import json
from pathlib import Path

import numpy as np
import pytest

from tagwise.cli import main
from tagwise.evaluate.transfer import drop_test_overlap, holdout_splits
from tagwise.project import Project
from tagwise.sources.harmonize import cooccurrence_scores
from tagwise.text import normalize_text as _normalize
from tagwise.types import TagwiseError
from tagwise.workflows.report import section_transfer as transfer_report_section
from tagwise.workflows.taxonomy import suggest_mappings
from tagwise.workflows.transfer import transfer_evaluation


def normalize_text(text):
    return _normalize(text, social=True)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]


def _add(project, root, name, limit, extra=""):
    spec = (REPO / "bench" / "specs" / f"{name}.yaml").read_text() + f"limit: {limit}\n" + extra
    path = root / f"{name}.yaml"
    path.write_text(spec.replace("../../../shared/data", str(DATA)))
    project.add_source(path)


@pytest.fixture(scope="module")
def tweets(tmp_path_factory):
    """TweetEval + SemEval E-c (same tweets, two schemas) + ISEAR (no test split), hashing encoder."""
    root = tmp_path_factory.mktemp("tr")
    project = Project.init(root / "p", taxonomy=REPO / "bench" / "taxonomies" / "emotion.yaml")
    project.store.set_meta("encoder", "hashing:256")
    _add(project, root, "emotion_tweeteval", 150)
    _add(project, root, "emotion_semeval2018", 150)
    _add(project, root, "emotion_isear", 400)
    return project


def test_holdout_and_overlap(tweets):
    ex = tweets.examples(labeled=True)
    s1 = holdout_splits(ex, 0.2, seed=0)
    assert np.array_equal(s1, holdout_splits(ex, 0.2, seed=0))          # seeded
    isear = ex.sources == "isear"
    assert abs((s1[isear] == "test").mean() - 0.2) < 0.01                # ISEAR had no test split
    assert set(s1[ex.sources == "semeval2018"]) == {"train", "test"}     # dev folds into train
    # TweetEval and SemEval share tweets: a tweet in one's test split must never train the other.
    # Pretend SemEval's test tweets were training rows: those TweetEval tests on are dropped.
    s2 = s1.copy()
    s2[(ex.sources == "semeval2018") & (s1 == "test")] = "train"
    train = drop_test_overlap(ex.texts, s2)
    test_keys = {normalize_text(ex.texts[i]) for i in np.flatnonzero(s2 == "test")}
    moved = np.flatnonzero((ex.sources == "semeval2018") & (s1 == "test"))
    assert any(normalize_text(ex.texts[i]) in test_keys for i in moved)          # overlap exists
    assert not any(normalize_text(ex.texts[i]) in test_keys for i in np.flatnonzero(train))
    assert train.sum() > 0.5 * (s2 == "train").sum()
    with pytest.raises(TagwiseError, match="test_frac"):
        holdout_splits(ex, 1.5)


def test_transfer_evaluation_cli_and_report(tweets, capsys):
    assert main(["evaluate", str(tweets.path), "--transfer", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[:4] == ["metric", "matrix", "leave_one_out", "languages"]
    # each figure says which prediction mode produced it
    assert out["modes"]["used"]["isear"]["semeval2018"] == "isear"  # a one-source model: its only mode
    assert out["modes"]["used"]["semeval2018+tweeteval_emotion"]["isear"] == "agnostic"  # left out: unseen
    result = json.loads((tweets.runs("transfer")[-1] / "transfer.json").read_text())
    names = ["isear", "semeval2018", "tweeteval_emotion"]
    assert out["metric"] == "macro_f1" and sorted(out["matrix"]) == names and result["matrix"] == out["matrix"]
    for a in names:
        assert sorted(out["matrix"][a]) == names
        for v in out["matrix"][a].values():
            assert v is None or 0.0 <= v <= 1.0
    # same tweets, overlapping schema: SemEval -> TweetEval transfers well above chance (4 classes)
    assert out["matrix"]["semeval2018"]["tweeteval_emotion"] > 0.3
    assert set(out["leave_one_out"]) == set(names) and list(out["languages"]) == ["en"]
    assert result["labels"]["tweeteval_emotion"] == ["anger", "happiness", "optimism", "sadness"]
    html = transfer_report_section(tweets)               # reads the run the CLI saved
    assert html and "data:image/png;base64," in html and "Leave one source out" in html


def test_transfer_needs_two_sources(tmp_path):
    project = Project.init(tmp_path / "p", taxonomy=REPO / "bench" / "taxonomies" / "emotion.yaml")
    _add(project, tmp_path, "emotion_isear", 50)
    with pytest.raises(TagwiseError, match="at least two labeled sources"):
        transfer_evaluation(project, progress=False)


def test_cooccurrence_on_shared_tweets(tweets):
    # TweetEval's own labels vs SemEval's taxonomy labels on the same tweets
    ex = tweets.examples(labeled=True)
    te, se = ex.sources == "tweeteval_emotion", ex.sources == "semeval2018"
    raw = {"happiness": "joy"}
    te_labels = [[raw.get(n, n) for n in ex.labels[i]] for i in np.flatnonzero(te)]
    targets = ["anger", "happiness", "sadness", "neutral"]
    C = cooccurrence_scores(["anger", "joy", "sadness"], [ex.texts[i] for i in np.flatnonzero(te)], te_labels,
                            [normalize_text(ex.texts[i]) for i in np.flatnonzero(se)], [ex.labels[i] for i in np.flatnonzero(se)],
                            [set(ex.annotated["semeval2018"])] * int(se.sum()), targets)
    assert np.argmax(C[0, :3]) == 0 and np.argmax(C[1, :3]) == 1 and np.argmax(C[2, :3]) == 2
    assert np.isnan(C[:, 3]).all()  # SemEval never annotates neutral: no evidence, not zero


def test_suggest_cli(tweets, capsys):
    result = suggest_mappings(tweets, sources=["tweeteval_emotion"], top=2)
    joy = result["tweeteval_emotion"]["joy"]
    assert joy["current"] == ["happiness"]
    assert joy["suggestions"][0]["target"] in ("happiness", "joy")
    assert joy["suggestions"][0]["cooccurrence"] is not None     # shared tweets with SemEval
    assert main(["taxonomy", "suggest", str(tweets.path), "--source", "isear", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["isear"]["shame"]["current"] == ["embarrassment"] and len(out["isear"]["shame"]["suggestions"]) == 3
