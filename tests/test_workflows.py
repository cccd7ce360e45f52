"""The application layer and the model contract (issue 16): every head predicts with its own
thresholds, a multi-source model scores each row in its source's mode, the default `train` chooses
its mode from the data, and models load only from inside models/."""
import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from tagwise.evaluate.metrics import multilabel_report
from tagwise.learn.cotrain import CoTrainingClassifier
from tagwise.learn.fewshot import FewShotClassifier
from tagwise.learn.linear import MultiLabelLinear
from tagwise.learn.multisource import MultiSourceLinear, partial_targets
from tagwise.learn.registry import MODEL_CLASSES, MODES
from tagwise.learn.semisupervised import SemiSupervisedClassifier
from tagwise.learn.zeroshot import ZeroShotClassifier
from tagwise.project import Project
from tagwise.types import TagwiseError
from tagwise.workflows.evaluate import evaluate
from tagwise.workflows.models import load_project_model
from tagwise.workflows.predict import predict_texts, predict_with
from tagwise.workflows.train import train

from conftest import emotion_project, semeval_labeled_and_pool_specs



@pytest.fixture(scope="module")
def emotion(tmp_path_factory):
    """GoEmotions + XED en (first 300 rows of each file) on the emotion taxonomy (with a hierarchy)."""
    project = emotion_project(tmp_path_factory.mktemp("wf"), limit=300)
    project.store.set_meta("encoder", "hashing:256")
    return project


@pytest.mark.parametrize("make", [MultiLabelLinear, FewShotClassifier, ZeroShotClassifier, MultiSourceLinear,
                                  SemiSupervisedClassifier, CoTrainingClassifier])
def test_predict_before_fit_is_a_clear_error(make):
    with pytest.raises(NotFittedError, match="not fitted"):
        make().predict_proba(np.zeros((2, 8), np.float32))
    assert issubclass(NotFittedError, ValueError)


def test_fit_validates_shapes_and_keeps_its_parameters():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(60, 8)).astype(np.float32), (rng.random((60, 3)) < 0.3).astype(np.uint8)
    with pytest.raises(TagwiseError, match="X has 60 rows but Y has 59"):
        MultiLabelLinear().fit(X, Y[:-1])
    with pytest.raises(TagwiseError, match="mask has shape"):
        MultiLabelLinear().fit(X, Y, np.ones((60, 2), bool))
    model = MultiLabelLinear(cv=3, max_iter=20)
    before = model.get_params()
    model.fit(X, Y)
    assert model.get_params() == before and clone(model).get_params() == before
    with pytest.raises(TagwiseError, match=r"expected \(n, 8\)"):
        model.predict(X[:, :5])


def test_every_mode_builds_a_registered_class():
    assert set(MODES) == {"supervised", "zero-shot", "few-shot", "semi-supervised", "multisource", "weak"}
    assert {"MultiLabelLinear", "FewShotClassifier", "ZeroShotClassifier", "SemiSupervisedClassifier",
            "CoTrainingClassifier", "MultiSourceLinear", "WeakLabelModel"} <= set(MODEL_CLASSES)


def test_multisource_rows_are_scored_in_their_source_mode(emotion):
    result = train(emotion, mode="multisource", params={"max_iter": 30}, progress=False)
    loaded = load_project_model(emotion)
    assert isinstance(loaded.head, MultiSourceLinear) and result["mode"] == "multisource"
    own = evaluate(emotion, split="train", source="xed_en", save=False)
    agnostic = evaluate(emotion, split="train", source="xed_en", save=False, agnostic=True)
    assert set(own["modes"].values()) == {"xed_en"} and set(agnostic["modes"].values()) == {"agnostic"}
    # the figures are exactly the head's own predictions in each mode
    ex = emotion.examples(split="train", source="xed_en", labeled=True)
    Y, known = partial_targets(ex, emotion.taxonomy, emotion.labels)
    X = emotion.features(ex, loaded.encoder)
    for report, mode in ((own, "xed_en"), (agnostic, "agnostic")):
        Z = loaded.head.predict(X, source=mode)
        expected = multilabel_report(Y, Z, loaded.head.predict_proba(X, source=mode), emotion.labels.names, known)
        assert report["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert own["macro_f1"] != agnostic["macro_f1"]
    # an unseen source falls back to the agnostic mode; a predicted child implies its parent
    Z, _ = predict_with(emotion, loaded, list(ex.texts), sources=["elsewhere"] * len(ex))
    A = emotion.taxonomy.ancestor_matrix(emotion.labels)
    child, parent = np.nonzero(A)
    assert len(child) and (Z[:, parent] >= Z[:, child]).all()
    assert np.array_equal(Z, loaded.head.predict(X, source="agnostic"))


def test_default_train_picks_multisource_for_several_sources(emotion):
    result = train(emotion, progress=False)
    assert result["mode"] == "multisource" and "2 labeled sources" in result["choice"]["reason"]


def test_default_train_cross_validates_the_few_label_modes(tmp_path, shared_embedding_cache):
    labeled, pool = semeval_labeled_and_pool_specs(tmp_path, n_labeled=90, n_pool=300)
    project = Project.init(tmp_path / "p")
    project.add_source(labeled)
    project.add_source(pool)
    result = train(project, progress=False)
    cv = result["choice"]["cv"]
    assert set(cv) == {"supervised", "few-shot", "semi-supervised"}
    assert result["mode"] == max(cv, key=lambda m: (cv[m], -list(cv).index(m)))
    assert all(0 <= v <= 1 for v in cv.values())
    info = json.loads((project.models_dir / result["model"] / "model.json").read_text())["info"]
    assert info["choice"]["mode"] == result["mode"]
    out = predict_texts(project, ["I am furious about this", "what a lovely surprise"])
    assert out["model"] == result["model"] and len(out["predictions"]) == 2


def test_models_load_only_from_inside_models(emotion, tmp_path):
    for name in ("../p", "/etc", "..", "CURRENT", "a/b"):
        with pytest.raises(TagwiseError, match="not a model folder name"):
            load_project_model(emotion, name)
    current = emotion.models_dir / "CURRENT"
    saved = current.read_text()
    try:
        current.write_text("../../elsewhere\n")
        with pytest.raises(TagwiseError, match="not a model folder name"):
            load_project_model(emotion)
    finally:
        current.write_text(saved)


def test_two_trainings_get_distinct_model_names(emotion):
    a = train(emotion, mode="supervised", params={"cv": 3, "max_iter": 10}, progress=False)["model"]
    b = train(emotion, mode="supervised", params={"cv": 3, "max_iter": 10}, progress=False)["model"]
    assert a != b and (emotion.models_dir / "CURRENT").read_text().strip() == b
