"""SetFit-style contrastive fine-tuning of the bundled MiniLM (torch extra) on a real SemEval slice."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tagwise.learn.finetune import contrastive_pairs, finetune_encoder
from tagwise.sources import ingest, parse_spec
from tagwise.types import LabelSpace, TagwiseError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semeval2018_ec_en"
NAMES = ["anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism", "sadness",
         "surprise", "trust"]
SPEC = {"name": "semeval", "format": "tsv", "quoting": "none", "limit": 64, "path": str(DATA / "E-c-En-train.txt"),
        "split": "train", "columns": {"text": "Tweet", "id": "ID"},
        "labels": {"format": "onehot", "onehot_columns": NAMES}}


def test_contrastive_pairs_are_positive_iff_labels_overlap():
    rng = np.random.default_rng(0)
    Y = (rng.random((50, 6)) < 0.25).astype(np.uint8)
    a, b, t = contrastive_pairs(Y, 400, seed=1)
    assert len(a) == 400 and (a != b).all()
    overlap = (Y[a] & Y[b]).any(1)
    assert np.array_equal(overlap, t == 1.0)
    assert 0.4 < t.mean() < 0.6


def test_finetuning_pulls_same_label_texts_together(tmp_path):
    pytest.importorskip("sentence_transformers")
    from tagwise.encoders import get_encoder

    rows = ingest(parse_spec(SPEC, DATA / "spec.yaml"))
    Y = LabelSpace(tuple(NAMES)).to_matrix(rows.labels)
    base = get_encoder("st:all-minilm-l6-v2")
    out = finetune_encoder(rows.texts, Y, tmp_path / "tuned", max_steps=12, batch_size=16,
                           learning_rate=5e-5, progress=False)
    files = {p.name for p in (tmp_path / "tuned").rglob("*")}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pkl", ".pt")) for f in files)
    assert not (tmp_path / "tuned.partial").exists()
    tuned = get_encoder(out["encoder"])
    assert tuned.id != base.id  # the cache key follows the weights

    def margin(X):  # mean cosine of label-sharing pairs minus that of disjoint pairs
        S = X @ X.T
        share = (Y @ Y.T) > 0
        off = ~np.eye(len(Y), dtype=bool)
        return S[share & off].mean() - S[~share & off].mean()

    before, after = margin(base.encode(rows.texts)), margin(tuned.encode(rows.texts))
    assert after > before + 0.02, (before, after)


def test_cli_train_fine_tune_then_predict(tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    from tagwise.cli import main
    from tagwise.workflows.models import load_project_model
    from tagwise.project import Project

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SPEC))
    root = str(tmp_path / "p")
    assert main(["init", root]) == 0
    assert main(["add-source", root, str(tmp_path / "s.yaml")]) == 0
    assert main(["train", root, "--few-shot", "--fine-tune", "--fine-tune-steps", "4"]) == 0
    assert "fine-tuned all-minilm-l6-v2 for 4 steps" in capsys.readouterr().out
    project = Project.open(root)
    model = load_project_model(project)
    assert model.encoder.startswith("st:") and "encoders" in model.encoder
    X = project.features(project.examples(split="train"), model.encoder)
    assert X.shape[1] == 384 and model.head.predict(X).shape == (64, len(NAMES))


def test_too_few_pairs_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    Y = np.eye(3, dtype=np.uint8)  # three texts, no two share a label
    with pytest.raises(TagwiseError, match="too few positive and negative pairs"):
        finetune_encoder(["a", "b", "c"], Y, tmp_path / "m", progress=False)
