import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score

from tagwise.encoders import embed_texts, get_encoder
from tagwise.evaluate.metrics import multilabel_report
from tagwise.learn.linear import MultiLabelLinear
from tagwise.learn.persist import load_model, save_model
from tagwise.sources import ingest, load_spec
from tagwise.types import LabelSpace, TagwiseError

from conftest import SAMPLE


@pytest.fixture(scope="module")
def goemotions_sample(use_cache):
    rows = ingest(load_spec(SAMPLE / "spec.yaml"))
    X, _ = embed_texts(rows.texts, get_encoder("use"), use_cache, progress=False)
    space = LabelSpace(tuple(rows.annotated_labels))
    splits = np.array(rows.splits)
    Y = space.to_matrix(rows.labels)
    return X[splits == "train"], Y[splits == "train"], X[splits == "test"], Y[splits == "test"], space


@pytest.fixture(scope="module")
def fitted(goemotions_sample):
    Xtr, Ytr, _, _, _ = goemotions_sample
    return MultiLabelLinear(C=1.0, cv=3).fit(Xtr, Ytr)


def test_cv_thresholds_beat_trivial_predictors_and_probabilities_stay_calibrated(goemotions_sample, fitted):
    """Properties of the tuned head, not a margin over a straw man: its cuts, chosen on out-of-fold
    scores of train only, beat every label-independent rule on test (all on; each label on with
    its train rate at random), and its probabilities are corrected for the positive weighting."""
    Xtr, Ytr, Xte, Yte, space = goemotions_sample
    ours = f1_score(Yte, fitted.predict(Xte), average="macro", zero_division=0)
    all_on = f1_score(Yte, np.ones_like(Yte), average="macro", zero_division=0)
    rng = np.random.default_rng(0)
    at_rate = f1_score(Yte, (rng.random(Yte.shape) < Ytr.mean(0)).astype(np.uint8), average="macro", zero_division=0)
    assert ours > max(all_on, at_rate) * 1.5, (ours, all_on, at_rate)
    # per label too: where a label has test positives, tuned cuts beat always-on on most labels
    seen = Yte.sum(0) >= 5
    per_ours = f1_score(Yte[:, seen], fitted.predict(Xte)[:, seen], average=None, zero_division=0)
    per_all = f1_score(Yte[:, seen], np.ones_like(Yte[:, seen]), average=None, zero_division=0)
    assert (per_ours > per_all).mean() >= 0.8, (per_ours, per_all)
    # probabilities are corrected for the positive weighting: the mean predicted rate tracks the real one
    assert abs(fitted.predict_proba(Xte).mean() - Yte.mean()) < 0.01


def test_permuting_labels_permutes_the_model(goemotions_sample, fitted):
    """Labels are fitted independently: reordering the columns reorders thresholds and predictions."""
    Xtr, Ytr, Xte, _, _ = goemotions_sample
    perm = np.random.default_rng(1).permutation(Ytr.shape[1])
    again = MultiLabelLinear(C=1.0, cv=3).fit(Xtr, Ytr[:, perm])
    np.testing.assert_allclose(again.threshold_, fitted.threshold_[perm], atol=1e-4)
    same = (again.predict(Xte) == fitted.predict(Xte)[:, perm]).all(1).mean()
    assert same >= 0.995, same


def test_more_labeled_rows_never_hurt_beyond_noise(goemotions_sample):
    """Half the training rows vs all of them (the half inside the whole): ranking quality on test
    does not drop by more than seed noise."""
    Xtr, Ytr, Xte, Yte, _ = goemotions_sample
    half = np.random.default_rng(2).permutation(len(Xtr))[: len(Xtr) // 2]
    seen = Yte.sum(0) >= 5
    ap = {}
    for name, rows in (("half", half), ("all", np.arange(len(Xtr)))):
        P = MultiLabelLinear(C=1.0, cv=3).fit(Xtr[rows], Ytr[rows]).predict_proba(Xte)
        ap[name] = np.mean([average_precision_score(Yte[:, k], P[:, k]) for k in np.flatnonzero(seen)])
    assert ap["all"] > ap["half"] - 0.01, ap


def test_thresholds_come_from_out_of_fold_scores(fitted, goemotions_sample):
    Xtr, Ytr, *_ = goemotions_sample
    assert fitted.oof_proba_.shape == Ytr.shape
    # out-of-fold probabilities rank worse than in-sample ones: no example scored by a model that saw it
    in_sample = fitted.predict_proba(Xtr)
    k = int(np.argmax(Ytr.sum(0)))
    assert average_precision_score(Ytr[:, k], fitted.oof_proba_[:, k]) < average_precision_score(Ytr[:, k], in_sample[:, k])
    assert np.all((fitted.threshold_ > 0) & (fitted.threshold_ < 1))


def test_label_without_positives_is_never_predicted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 16)).astype(np.float32)
    Y = np.zeros((200, 3), np.uint8)
    Y[:, 0] = X[:, 0] > 0
    Y[:, 1] = X[:, 1] > 1
    model = MultiLabelLinear(C=1.0, cv=3).fit(X, Y)
    assert model.support_[2] == 0 and model.predict(X)[:, 2].sum() == 0
    assert f1_score(Y[:, 0], model.predict(X)[:, 0]) > 0.9


def test_masked_cells_do_not_teach_absence():
    """A label unknown for half the examples: masking them recovers the real decision rule."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 8)).astype(np.float32)
    Y = (X[:, :1] > 0).astype(np.uint8)
    mask = np.ones_like(Y, dtype=bool)
    unknown = rng.random(600) < 0.5
    Y_seen = Y.copy()
    Y_seen[unknown] = 0  # a source that never annotates the label reads as all-negative
    mask[unknown] = False
    naive = MultiLabelLinear(C=1.0, thresholds=0.5, pos_weight=None).fit(X, Y_seen)
    masked = MultiLabelLinear(C=1.0, thresholds=0.5, pos_weight=None).fit(X, Y_seen, mask)
    assert f1_score(Y[:, 0], masked.predict(X)[:, 0]) > f1_score(Y[:, 0], naive.predict(X)[:, 0]) + 0.1


def test_save_load_roundtrip_without_pickle(tmp_path, fitted, goemotions_sample):
    _, _, Xte, _, space = goemotions_sample
    path = save_model(fitted, tmp_path / "m", {"labels": list(space.names)})
    doc = json.loads((path / "model.json").read_text())
    assert doc["class"] == "MultiLabelLinear" and doc["info"]["labels"][0] == "admiration"
    for f in path.glob("*.npy"):
        assert np.load(f, allow_pickle=False) is not None  # would raise on a pickled object array
    loaded, info = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(Xte), fitted.predict_proba(Xte))
    doc["class"] = "os.system"
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(TagwiseError, match="unknown model class 'os.system'"):
        load_model(path)


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    Y = (rng.random((300, 6)) < 0.2).astype(np.uint8)
    P = np.clip(Y * 0.4 + rng.random((300, 6)) * 0.7, 0, 1)
    Z = (P > 0.5).astype(np.uint8)
    r = multilabel_report(Y, Z, P, list("abcdef"))
    assert r["micro_f1"] == pytest.approx(f1_score(Y, Z, average="micro"))
    assert r["macro_f1"] == pytest.approx(f1_score(Y, Z, average="macro"))
    assert r["macro_ap"] == pytest.approx(average_precision_score(Y, P, average="macro"))


def test_per_label_solver_reaches_scikit_learns_optimum(goemotions_sample):
    """Run to a tight tolerance, each label's L-BFGS lands on the same regularised optimum as
    scikit-learn's LogisticRegression (same loss, same L2 on the weights, free intercept)."""
    Xtr, Ytr, *_ = goemotions_sample
    Y = Ytr[:, Ytr.sum(0) >= 20][:, :6]
    ours = MultiLabelLinear(C=1.0, pos_weight=None, thresholds=0.5, max_iter=500, tol=1e-7).fit(Xtr, Y)
    for k in range(Y.shape[1]):
        peer = LogisticRegression(C=1.0, tol=1e-8, max_iter=5000).fit(Xtr, Y[:, k])
        np.testing.assert_allclose(ours.coef_[k], peer.coef_[0], atol=2e-3 * np.abs(peer.coef_).max())
        z_ours = ours.decision_function(Xtr[:200])[:, k]
        np.testing.assert_allclose(z_ours, peer.decision_function(Xtr[:200]), atol=1e-2)


def test_rows_subset_equals_fitting_the_copied_rows(goemotions_sample):
    """A fold fit reads its rows by index (no copy of X): same solution as on the copied rows."""
    from tagwise.learn.linear import _fit_logistic, _preconditioner, positive_weights

    Xtr, Ytr, *_ = goemotions_sample
    rows = np.flatnonzero(np.arange(len(Xtr)) % 3 != 0)
    M = np.ones(Ytr.shape, dtype=bool)
    mean = Xtr.mean(0)
    P = _preconditioner(Xtr, 1.0 / len(Xtr), mean=mean)
    pw = positive_weights(Ytr[rows].astype(np.float32), M[rows], "auto")
    l2 = np.ones(Ytr.shape[1])
    by_index = _fit_logistic(Xtr, Ytr, M, pw, l2, mean=mean, P=P, rows=rows, max_iter=30)
    copied = _fit_logistic(Xtr[rows], Ytr[rows], M[rows], pw, l2, mean=mean, P=P, max_iter=30)
    np.testing.assert_allclose(by_index, copied, rtol=1e-4, atol=1e-6)
