"""End-to-end fine-tuning (learn/endtoend.py, `train --fine-tune`) on small real GoEmotions slices.

Every fit trains one top layer of the bundled MiniLM on short (32-token) texts for a few epochs, so
each test takes seconds; what they check is the loss and the plumbing, not the accuracy.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tagwise.learn.endtoend import FineTunedTransformer, masked_soft_bce, pool_soft_targets  # noqa: E402
from tagwise.learn.persist import load_model, save_model  # noqa: E402
from tagwise.types import TagwiseError  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"
LABELS = Path(__file__).resolve().parents[1] / "examples" / "goemotions-sample" / "labels.txt"
FAST = dict(top_layers=1, max_seq_len=32, batch_size=16, budget_minutes=10.0, patience=50)


def goemotions(n: int, skip: int = 0) -> tuple[list[str], np.ndarray]:
    """The first ``n`` rows (after ``skip``) of GoEmotions' train split: texts and (n, 28) float32 targets."""
    rows = []
    with open(DATA / "original_train.tsv", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= skip + n:
                break
            if i >= skip:
                rows.append(line.rstrip("\n").split("\t"))
    Y = np.zeros((len(rows), 28), np.float32)
    for i, r in enumerate(rows):
        Y[i, [int(k) for k in r[1].split(",")]] = 1.0
    return [r[0] for r in rows], Y


def weights(model: FineTunedTransformer) -> dict:
    return model.get_state()[1]


def test_unknown_cells_carry_no_loss_and_no_gradient():
    texts, Y = goemotions(60)
    rng = np.random.default_rng(0)
    M = rng.random(Y.shape) > 0.3  # 30% of the cells unknown
    Y_other = Y.copy()
    Y_other[~M] = rng.random(int((~M).sum())).astype(np.float32)  # anything at all in the unknown cells
    a = FineTunedTransformer(max_epochs=2, **FAST).fit(texts, Y, M)
    b = FineTunedTransformer(max_epochs=2, **FAST).fit(texts, Y_other, M)
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    for key in wa:
        assert np.array_equal(wa[key], wb[key]), key  # bit for bit: unknown cells changed nothing
    assert a.history_ == [{**h, "seconds": ha["seconds"]} for h, ha in zip(b.history_, a.history_)]

    # the loss itself: the gradient of an unknown cell is exactly zero, that of a known cell is not
    logits = torch.zeros((2, 3), requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    masked_soft_bce(logits, torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]), mask, torch.ones(3)).backward()
    assert (logits.grad[~mask] == 0).all() and (logits.grad[mask] != 0).all()


def test_soft_targets_are_expected_losses_not_rounded():
    logits = torch.tensor([[0.4]])
    mask = torch.tensor([[True]])
    pw = torch.ones(1)
    loss = {y: float(masked_soft_bce(logits, torch.tensor([[y]]), mask, pw)) for y in (0.0, 0.3, 1.0)}
    assert loss[0.3] == pytest.approx(0.3 * loss[1.0] + 0.7 * loss[0.0], rel=1e-6)
    assert loss[0.0] != loss[0.3] != loss[1.0]

    # a whole label at 0.3 trains towards a probability between the all-0 and the all-1 label's
    texts, Y = goemotions(80)
    Y[:, 0], Y[:, 1], Y[:, 2] = 0.3, 0.0, 1.0
    model = FineTunedTransformer(max_epochs=2, **FAST).fit(texts, Y)
    P = model.predict_proba(None, texts=texts[:40]).mean(0)
    assert P[1] < P[0] < P[2], P[:3]
    assert 0.1 < P[0] < 0.7, P[0]


def test_source_conditioning_gives_each_source_its_own_predictions():
    texts, Y = goemotions(60)
    # the same texts from two sources that disagree on one label (column 0): "a" says yes, "b" says no
    Ya, Yb = Y.copy(), Y.copy()
    Ya[:, 0], Yb[:, 0] = 1.0, 0.0
    model = FineTunedTransformer(max_epochs=5, **FAST).fit(texts + texts, np.vstack([Ya, Yb]),
                                                           sources=["a"] * 60 + ["b"] * 60)
    assert model.sources_ == ["a", "b"]
    held_out, _ = goemotions(20, skip=60)
    pa = model.predict_proba(None, texts=held_out, source="a")[:, 0]
    pb = model.predict_proba(None, texts=held_out, source="b")[:, 0]
    p0 = model.predict_proba(None, texts=held_out, source="agnostic")[:, 0]
    assert pa.mean() > pb.mean() + 0.1, (pa.mean(), pb.mean())
    assert pb.mean() < p0.mean() < pa.mean()
    # other labels barely depend on the source (both sources agree on them)
    rest_a = model.predict_proba(None, texts=held_out, source="a")[:, 1:]
    rest_b = model.predict_proba(None, texts=held_out, source="b")[:, 1:]
    assert np.abs(rest_a - rest_b).mean() < 0.1
    # best_epoch_ names the epoch whose weights were kept: the first to reach the best dev mean AP
    best = next(h for h in model.history_ if h["epoch"] == model.best_epoch_)
    assert best["dev_map"] == max(h["dev_map"] for h in model.history_)
    assert all(h["dev_map"] < best["dev_map"] for h in model.history_ if h["epoch"] < model.best_epoch_)


def test_a_dev_set_that_does_not_match_its_texts_is_refused():
    """One clear error before the body loads, not a numpy one (or, with a pool, targets silently shifted)."""
    texts, Y = goemotions(40)
    d_texts, d_Y = goemotions(10, skip=40)
    with pytest.raises(TagwiseError, match=r"dev targets \(10, 28\).* 8 dev texts"):
        FineTunedTransformer(**FAST).fit(texts, Y, dev=(d_texts[:8], d_Y, None, None))
    with pytest.raises(TagwiseError, match="28 labels"):
        FineTunedTransformer(**FAST).fit(texts, Y, dev=(d_texts, d_Y[:, :5], None, None))
    with pytest.raises(TagwiseError, match="3 dev sources for 10"):
        FineTunedTransformer(**FAST).fit(texts, Y, dev=(d_texts, d_Y, None, ["a", "b", "c"]))


def test_save_load_round_trip_is_exact_and_safe(tmp_path):
    texts, Y = goemotions(60)
    model = FineTunedTransformer(max_epochs=1, **FAST).fit(texts, Y, sources=["a"] * 30 + ["b"] * 30)
    names = [ln.strip() for ln in LABELS.read_text().splitlines() if ln.strip()]
    save_model(model, tmp_path / "m", {"labels": names})
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert files == {"model.json", "model.safetensors"}  # no pickle, no .bin
    loaded, info = load_model(tmp_path / "m")
    for source in (None, "a", "b", ["a", "b"] * 5):
        assert np.array_equal(loaded.predict_proba(None, texts=texts[:10], source=source),
                              model.predict_proba(None, texts=texts[:10], source=source))
    assert np.array_equal(loaded.predict(None, texts=texts[:10]), model.predict(None, texts=texts[:10]))
    assert info["labels"] == names

    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    doc["meta"]["base_fingerprint"] = "0" * 16  # trained on other base weights
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(TagwiseError, match="base weights"):
        load_model(tmp_path / "m")


def test_cli_fine_tune_stops_at_the_budget_then_predicts(tmp_path, capsys):
    from tagwise.cli import main
    from tagwise.project import Project
    from tagwise.workflows.models import load_project_model

    spec = {"name": "ge", "path": str(DATA / "original_train.tsv"), "split": "train", "format": "tsv",
            "header": False, "quoting": "none", "limit": 400, "columns": {"text": 0, "labels": 1, "id": 2},
            "labels": {"format": "delimited", "delimiter": ",", "names_file": str(LABELS)}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    root = str(tmp_path / "p")
    assert main(["init", root]) == 0
    assert main(["add-source", root, str(tmp_path / "s.yaml")]) == 0
    budget = 0.4  # minutes: far less than 60 epochs of 400 texts take (and room for loading MiniLM on a busy machine)
    assert main(["train", root, "--fine-tune", "--budget-minutes", str(budget),
                 "--params", json.dumps({"max_epochs": 60, "patience": 60, "max_seq_len": 32})]) == 0
    assert "stopped: budget" in capsys.readouterr().out
    loaded = load_project_model(Project.open(root))
    fine = loaded.info["fine_tune"]
    assert fine["stop_reason"] == "budget"
    assert fine["fit_seconds"] <= 1.1 * budget * 60, fine  # the budget is kept within 10%
    assert isinstance(loaded.head, FineTunedTransformer) and loaded.info["mode"] == "fine-tune"
    (tmp_path / "in.csv").write_text("text\nthank you so much, this is great\nwhat the hell is this\n")
    assert main(["predict", root, str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and len(rows[0]["scores"]) == 28


def test_budget_is_kept_when_caching_the_frozen_layers_alone_would_exceed_it():
    """40,000 GoEmotions texts and a 12-second budget: caching five frozen MiniLM layers for all of them
    (~10 TFLOP) takes far longer than the budget on a CPU (the code before this check: 104 s on this
    machine), so the fit must cut every stage by the clock (dev rows first, then as many training rows as
    leave room for the linear probe and a dev evaluation) and still return a working model."""
    texts, Y = goemotions(40000)
    budget = 0.2  # minutes: loading MiniLM took up to 7 s of it on this busy 2-core machine
    model = FineTunedTransformer(top_layers=1, max_seq_len=16, budget_minutes=budget, max_epochs=50,
                                 patience=50).fit(texts, Y)
    assert model.fit_seconds_ <= 1.1 * budget * 60, model.timings_  # the budget is kept within 10%
    assert model.stop_reason_ == "budget"
    assert 0 < model.n_dev_used_ <= model.n_dev_ and model.n_train_used_ < model.n_train_rows_  # cut by the clock
    assert model.dev_proba_.shape == (model.n_dev_used_, 28) and np.array_equal(model.dev_used_, model.dev_rows_)
    P = model.predict_proba(None, texts=texts[:7])
    assert P.shape == (7, 28) and np.isfinite(P).all() and ((P >= 0) & (P <= 1)).all()
    assert model.predict(None, texts=texts[:7]).shape == (7, 28) and model.threshold_.shape == (28,)


def test_fine_tune_refuses_zero_shot(tmp_path):
    from tagwise.project import Project
    from tagwise.workflows.train import train_fine_tuned

    with pytest.raises(TagwiseError, match="trains on labels"):
        train_fine_tuned(Project.init(tmp_path / "p"), mode="zero-shot")


def test_minilm_alias_stacks_with_use_on_the_same_cache():
    from tagwise.encoders import get_encoder
    from tagwise.encoders.registry import encoder_languages

    minilm = get_encoder("minilm")
    assert minilm.id == get_encoder("st:all-minilm-l6-v2").id  # same vectors, same cache entry
    stack = get_encoder("hashing:64+minilm")
    assert stack.dim == 64 + 384 and stack.id == f"{get_encoder('hashing:64').id}+{minilm.id}"
    assert encoder_languages("use+minilm") == encoder_languages("use") | encoder_languages("st:all-minilm-l6-v2")
    X = stack.encode(["a happy text", "a sad text"])
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)  # each part unit, scaled: rows stay unit


def test_multisource_project_fine_tunes_on_partial_labels_with_a_mode_per_source(tmp_path, data_dir):
    """GoEmotions + XED en under the emotion taxonomy: each source annotates part of the labels (the rest
    are unknown cells), the model gets a mode per source, and predict/evaluate use it like any model."""
    from conftest import emotion_project
    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.predict import predict_texts
    from tagwise.workflows.train import train_fine_tuned

    project = emotion_project(tmp_path, 60)
    out = train_fine_tuned(project, mode="multisource", budget_minutes=10.0, progress=False,
                           params={"top_layers": 1, "max_epochs": 2, "max_seq_len": 32})
    assert out["mode"] == "fine-tune" and out["fine_tune"]["stop_reason"] in ("max_epochs", "early_stopping")
    sources = sorted(set(map(str, project.examples(split="train", labeled=True).sources)))
    assert len(sources) == 2 and sorted(out["fine_tune"]["source_conditioning"]) == sources
    assert out["health"]["after"]["checked"]
    text = ["I can't believe you did that, I'm furious"]
    a, b = (predict_texts(project, text, source=s)["predictions"][0]["scores"] for s in sources)
    assert a != b
    report = evaluate(project, split="test")
    assert report["n_examples"] > 0 and 0.0 <= report["macro_f1"] <= 1.0


# ---- semi-supervised fine-tuning: the unlabeled pool on a frozen head's soft targets ----------------

def frozen_head_on_pool(texts, Y, pool_texts):
    """A frozen head (the supervised head on hashed vectors) fitted on ``texts`` and its soft targets for
    ``pool_texts`` (``pool_soft_targets``: centred on its cuts, unconfident cells masked)."""
    from tagwise.encoders import get_encoder
    from tagwise.learn.linear import MultiLabelLinear

    enc = get_encoder("hashing:256")
    head = MultiLabelLinear(random_state=0).fit(enc.encode(texts), Y)
    P = head.predict_proba(enc.encode(pool_texts))
    return P, head.thresholds_for(len(pool_texts)), pool_soft_targets(P, head.thresholds_for(len(pool_texts)))


def test_pool_targets_are_soft_centred_on_the_frozen_heads_cuts_and_masked_where_unsure():
    pool, _ = goemotions(150, skip=300)
    P, cut, (T, M) = frozen_head_on_pool(*goemotions(300), pool)
    assert T.dtype == np.float32 and ((T > 0) & (T < 1)).all()  # never rounded to 0/1
    assert len(np.unique(T)) > 0.5 * T.size
    assert np.array_equal(T >= 0.5, P >= cut)  # 0.5 is the frozen head's own decision, label by label
    assert np.array_equal(M, np.maximum(T, 1 - T) >= 0.8)  # unsure cells (near the cut) carry no loss
    assert M.any() and (~M).any() and (M & (T > 0.01) & (T < 0.99)).sum() > 100  # kept cells stay soft


def test_pool_rows_train_on_their_soft_targets_and_their_masked_cells_teach_nothing():
    texts, Y = goemotions(40)
    pool, _ = goemotions(40, skip=300)
    _, _, (T, M) = frozen_head_on_pool(*goemotions(300), pool)  # a frozen head that knows more than 40 rows
    settings = dict(max_epochs=1, warm_start=None, **FAST)

    def fit(pool_targets=None):
        model = FineTunedTransformer(**settings)
        return model.fit(texts, Y, pool=None if pool_targets is None else (pool, pool_targets, M))

    with_pool = fit(T)
    assert with_pool.n_pool_ == with_pool.n_pool_used_ == 40
    T_other = np.where(M, T, np.random.default_rng(1).random(T.shape)).astype(np.float32)
    same = weights(fit(T_other))
    for key, value in weights(with_pool).items():  # the masked pool cells changed, nothing else: bit for bit
        assert np.array_equal(value, same[key]), key
    for other in (fit(None), fit((T >= 0.5).astype(np.float32))):  # no pool / the pool's targets rounded
        assert np.abs(weights(other)["head_weight"] - weights(with_pool)["head_weight"]).max() > 1e-4


def test_semi_supervised_fine_tune_trains_on_the_unlabeled_pool(tmp_path, shared_embedding_cache):
    from conftest import semeval_labeled_and_pool_specs
    from tagwise.project import Project
    from tagwise.workflows.models import load_project_model
    from tagwise.workflows.train import train_fine_tuned

    labeled, pool = semeval_labeled_and_pool_specs(tmp_path, n_labeled=60, n_pool=120)
    project = Project.init(tmp_path / "p")
    project.add_source(labeled)
    params = {"top_layers": 1, "max_epochs": 1, "max_seq_len": 32, "warm_start": None}
    with pytest.raises(TagwiseError, match="unlabeled"):  # no pool: said, not silently supervised
        train_fine_tuned(project, mode="semi-supervised", budget_minutes=2.0, progress=False, params=params)
    project.add_source(pool)
    out = train_fine_tuned(project, mode="semi-supervised", budget_minutes=2.0, progress=False, params=params)
    info = out["fine_tune"]["pool"]
    assert out["n_unlabeled"] == info["used"] == info["rows"] == 120
    assert 0.0 < info["cells_kept"] < 1.0 and info["teacher"].startswith("semi-supervised")
    assert load_project_model(project).info["trained_on"]["n_unlabeled"] == 120


# ---- distill: the fast head on a fine-tuned teacher's soft labels ------------------------------------

@pytest.fixture(scope="module")
def teacher_project(tmp_path_factory):
    """GoEmotions + XED en (60 rows each; partial labels: each source annotates part of the emotion
    taxonomy), GoEmotions' dev rows, 100 unlabeled GoEmotions texts, and a one-layer fine-tuned teacher."""
    if not DATA.exists():
        pytest.skip(f"shared data not found at {DATA}")
    from conftest import emotion_project
    from tagwise.workflows.train import train_fine_tuned

    root = tmp_path_factory.mktemp("distill")
    project = emotion_project(root, 60)
    pool, _ = goemotions(100, skip=60)
    (root / "pool.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in pool))
    (root / "pool.yaml").write_text(yaml.safe_dump({"name": "pool", "path": str(root / "pool.jsonl"),
                                                    "split": "unlabeled", "columns": {"text": "text"}}))
    project.add_source(root / "pool.yaml")
    out = train_fine_tuned(project, mode="multisource", budget_minutes=10.0, progress=False,
                           params={"top_layers": 1, "max_epochs": 2, "max_seq_len": 32})
    return project, out["model"]


def test_distill_trains_on_soft_teacher_targets_and_keeps_human_labels(teacher_project):
    from tagwise.learn.linear import MultiLabelLinear
    from tagwise.learn.multisource import partial_targets
    from tagwise.workflows.distill import distill
    from tagwise.workflows.models import load_project_model
    from tagwise.workflows.predict import predict_texts, predict_with

    project, teacher_name = teacher_project
    out = distill(project, teacher=teacher_name, student="hashing", progress=False)
    student = load_project_model(project)
    assert student.name == out["model"] and student.encoder == "hashing:256"
    assert student.info["distilled_from"]["teacher"] == teacher_name
    assert isinstance(student.head, MultiLabelLinear)
    assert {p.suffix for p in student.path.iterdir()} <= {".json", ".npy"}  # no pickle
    assert out["n_unlabeled"] >= 100 and out["thresholds_on"].startswith("dev split")
    dev = out["dev"]  # the project has GoEmotions' dev rows: teacher, student and frozen head on them
    assert all(0.0 <= dev[k] <= 1.0 for k in ("teacher", "student", "frozen_head"))

    # the same targets rebuilt from the outside: human labels on known cells, teacher probabilities elsewhere
    lab = project.examples(split="train", labeled=True)
    pool = project.examples(split=["train", "unlabeled"], labeled=False)
    Y, known = partial_targets(lab, project.taxonomy, project.taxonomy.space)
    assert (~known).any() and known.any()  # partial labels: both kinds of cells exist
    teacher = load_project_model(project, teacher_name)
    P_lab = predict_with(project, teacher, list(lab.texts), sources=[str(s) for s in lab.sources])[1]
    P_pool = predict_with(project, teacher, list(pool.texts), sources=[str(s) for s in pool.sources])[1]
    assert ((P_pool > 0.05) & (P_pool < 0.95)).mean() > 0.05  # the teacher's labels really are soft
    X = np.vstack([project.features(lab, "hashing:256"), project.features(pool, "hashing:256")])

    def fit(T):
        return MultiLabelLinear(random_state=0, thresholds=0.5).fit(X, T.astype(np.float32)).predict_proba(X)

    soft = np.vstack([np.where(known, Y, P_lab), P_pool])
    got = student.head.predict_proba(X)
    assert np.allclose(got, fit(soft), atol=1e-5)
    # ... and not what the teacher's rounded labels, or its probabilities on the human-labeled cells, give
    assert np.abs(got - fit((soft >= 0.5).astype(np.float32))).max() > 1e-2
    assert np.abs(got - fit(np.vstack([P_lab, P_pool]))).max() > 1e-2

    # round trip through predict: the saved student scores texts as the fitted head does
    texts = list(pool.texts[:5])
    scores = [row["scores"] for row in predict_texts(project, texts)["predictions"]]
    names = student.labels
    direct = student.head.predict_proba(project.embed_texts(texts, "hashing:256", progress=False)[0])
    assert np.allclose([[s[n] for n in names] for s in scores], direct, atol=1e-5)


def test_cli_distill_prints_teacher_student_and_kept_gain(teacher_project, capsys):
    from tagwise.cli import main
    from tagwise.workflows.models import load_project_model

    project, teacher_name = teacher_project
    assert main(["distill", str(project.path), "--student", "hashing", "--teacher", teacher_name]) == 0
    out = capsys.readouterr().out
    assert f"distilled {teacher_name} into" in out and "dev macro-F1: teacher" in out and "student" in out
    assert load_project_model(project).info["distilled_from"]["teacher"] == teacher_name
    assert main(["distill", str(project.path), "--teacher", "no-such-model"]) != 0
