import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "examples" / "goemotions-sample"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def use_cache(tmp_path_factory) -> Path:
    """One embedding cache for the whole session, so each text is encoded once across tests.

    Under ``pytest -n 2`` (make test) the workers share it: their base temp folders are siblings, and the
    cache is made for concurrent writers (content-addressed, atomic writes), so a text one worker
    embedded is not embedded again by the other."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / "emb-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def shared_embedding_cache(use_cache):
    """Point TAGWISE_CACHE_DIR at the session cache for a whole module (projects made inside it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAGWISE_CACHE_DIR", str(use_cache))
        yield use_cache


def emotion_project(root: Path, limit: int):
    """A project on the benchmark's emotion taxonomy (with a hierarchy) holding GoEmotions and XED en,
    the first ``limit`` rows of each file."""
    from tagwise.project import Project

    project = Project.init(root / "p", taxonomy=ROOT / "bench" / "taxonomies" / "emotion.yaml")
    for name in ("emotion_goemotions", "emotion_xed_en"):
        spec = (ROOT / "bench" / "specs" / f"{name}.yaml").read_text() + f"limit: {limit}\n"
        path = root / f"{name}.yaml"
        path.write_text(spec.replace("../../../shared/data", str(DATA)))
        project.add_source(path)
    return project


SEMEVAL_NAMES = ["anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism", "sadness",
                 "surprise", "trust"]


def semeval_labeled_and_pool_specs(folder: Path, n_labeled: int, n_pool: int) -> tuple[Path, Path]:
    """Two spec files: the first ``n_labeled`` SemEval-2018 E-c train tweets (labeled) and ``n_pool`` dev
    tweets without their labels (split unlabeled)."""
    import json

    import yaml

    semeval = DATA / "semeval2018_ec_en"
    labeled = {"name": "semeval", "format": "tsv", "quoting": "none", "limit": n_labeled,
               "path": str(semeval / "E-c-En-train.txt"), "split": "train", "columns": {"text": "Tweet", "id": "ID"},
               "labels": {"format": "onehot", "onehot_columns": SEMEVAL_NAMES}}
    (folder / "labeled.yaml").write_text(yaml.safe_dump(labeled))
    lines = (semeval / "E-c-En-dev.txt").read_text(encoding="utf-8").splitlines()[1:n_pool + 1]
    (folder / "pool.jsonl").write_text("".join(json.dumps({"text": ln.split("\t")[1]}) + "\n" for ln in lines))
    (folder / "pool.yaml").write_text(yaml.safe_dump({"name": "pool", "path": str(folder / "pool.jsonl"),
                                                      "split": "unlabeled", "columns": {"text": "text"}}))
    return folder / "labeled.yaml", folder / "pool.yaml"
