"""`train --budget-minutes N` in mode auto also chooses the encoder stack (issue 30), by the same
cross-validation that picks the mode, trying only what fits in the budget; predict embeds with the winner.

Hashing encoders stand in for the bundled ones: the point is the choice mechanism, not the vectors."""
import json

import numpy as np
import pytest

from tagwise.cli import main
from tagwise.learn.registry import choose_mode
from tagwise.project import Project
from tagwise.workflows.encoder_choice import stack_candidates
from tagwise.workflows.models import load_project_model
from tagwise.workflows.predict import predict_texts
from tagwise.workflows.retrain import retrain
from tagwise.workflows.train import train, training_data

from conftest import semeval_labeled_and_pool_specs

BASE = "hashing:8"  # 8 hashed dimensions: a weak base, so a wider stack has something to add
STACK = "hashing:8+hashing:512"


@pytest.fixture(scope="module")
def semeval(tmp_path_factory, data_dir, shared_embedding_cache):
    """The first 240 SemEval-2018 E-c train tweets, labeled, embedded with ``BASE``."""
    folder = tmp_path_factory.mktemp("stack")
    labeled, _ = semeval_labeled_and_pool_specs(folder, n_labeled=240, n_pool=0)
    project = Project.init(folder / "p")
    project.add_source(labeled)
    project.embed(BASE, progress=False)
    return project


def test_candidates_stack_the_project_encoder_with_what_it_lacks():
    assert stack_candidates("use", ["minilm", "e5"]) == ["use+minilm", "use+e5", "use+minilm+e5"]
    # an encoder already in the project's stack is not added twice (alias or full name)
    assert stack_candidates("use+st:all-minilm-l6-v2", ["minilm", "e5"]) == ["use+st:all-minilm-l6-v2+e5"]
    assert stack_candidates("hashing", []) == []


def test_budget_chooses_the_best_cross_validated_stack_and_predict_embeds_with_it(semeval):
    plain = train(semeval, progress=False)
    result = train(semeval, progress=False, budget_minutes=30, encoder_candidates=[STACK])
    report = result["encoder_choice"]
    rows = {r["encoder"]: r for r in report["candidates"]}
    assert set(rows) == {BASE, STACK} and all(r["status"] == "tried" for r in rows.values())
    # the project encoder's row is the plain auto choice: the same folds, the same metric
    assert rows[BASE]["cv_by_mode"] == plain["choice"]["cv"] and rows[BASE]["mode"] == plain["mode"]
    # each candidate's score is choose_mode's own CV on that candidate's vectors
    data = training_data(semeval, "train", STACK, progress=False)[0]
    again = choose_mode(data, seed=0)
    assert rows[STACK]["cv_by_mode"] == again.cv and rows[STACK]["mode"] == again.mode
    assert rows[STACK]["to_embed"] == 240  # hashing:512's cache lacked every text; hashing:8's were cached
    best = max(rows.values(), key=lambda r: (r["cv"], r["encoder"] == BASE))  # a tie keeps the project's
    assert report["chosen"] == best["encoder"] == result["encoder"]
    assert result["mode"] == best["mode"] and result["choice"]["cv"] == best["cv_by_mode"]
    assert report["chosen"] == STACK  # 8 hashed numbers cannot separate 11 emotions as well as 520 can
    # the model records the stack, and predict embeds with it (8-d vectors would not fit a 520-d head)
    model = load_project_model(semeval)
    info = json.loads((semeval.models_dir / result["model"] / "model.json").read_text())["info"]
    assert model.encoder == info["encoder"] == STACK and info["encoder_choice"]["chosen"] == STACK
    texts = ["I am furious about this", "what a lovely surprise"]
    out = predict_texts(semeval, texts)
    expect = model.head.predict(semeval.embed_texts(texts, STACK, progress=False)[0])
    names = model.labels
    assert [sorted(p["labels"]) for p in out["predictions"]] == \
        [sorted(names[k] for k in np.flatnonzero(row)) for row in expect]
    # a retrain (the web app's, on a few more labels) keeps the stack the budget chose
    again = retrain(semeval)
    assert load_project_model(semeval).encoder == STACK and STACK in again["mode_note"]


def test_a_budget_too_small_rules_the_stack_out_and_says_so(semeval):
    result = train(semeval, progress=False, budget_minutes=1e-6, encoder_candidates=[STACK])
    report = result["encoder_choice"]
    ruled = [r for r in report["candidates"] if r["encoder"] == STACK][0]
    assert ruled["status"] == "ruled out" and "budget" in ruled["reason"]
    assert report["chosen"] == result["encoder"] == BASE
    assert load_project_model(semeval).encoder == BASE


def test_named_encoder_and_no_budget_keep_the_encoder(semeval):
    named = train(semeval, progress=False, encoder=BASE, budget_minutes=30, encoder_candidates=[STACK])
    assert named["encoder"] == BASE and named["encoder_choice"]["candidates"] == []
    assert "--encoder named" in named["encoder_choice"]["reason"]
    plain = train(semeval, progress=False)
    assert plain["encoder"] == BASE and "encoder_choice" not in plain


def test_cli_prints_what_was_tried_and_what_the_budget_ruled_out(semeval, capsys):
    assert main(["train", str(semeval.path), "--budget-minutes", "0.000001"]) == 0
    out = capsys.readouterr().out
    assert "encoder stack (3-fold CV macro-F1" in out and f"encoder: {BASE} (" in out
    # the installed bundled encoders are candidates; each is ruled out by the tiny budget before it loads
    for line in out.splitlines():
        if line.strip().startswith(f"{BASE}+"):
            assert "ruled out" in line and "budget" in line
    # a named mode keeps its encoder, and the budget says it did nothing instead of passing in silence
    assert main(["train", str(semeval.path), "--few-shot", "--budget-minutes", "5"]) == 0
    captured = capsys.readouterr()
    assert "encoder stack" not in captured.out and "with --model few-shot it does nothing" in captured.err
