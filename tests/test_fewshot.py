"""Zero-shot, few-shot and semi-supervised heads on real SemEval-2018 E-c slices (USE embeddings)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tagwise.encoders import embed_texts, get_encoder
from tagwise.evaluate.metrics import multilabel_report
from tagwise.learn.cotrain import CoTrainingClassifier
from tagwise.learn.fewshot import FewShotClassifier
from tagwise.learn.lowlabel import fit_low_label
from tagwise.learn.persist import load_model, save_model
from tagwise.learn.semisupervised import SemiSupervisedClassifier, knn_graph, propagate_labels
from tagwise.sources import ingest, parse_spec
from tagwise.types import LabelSpace, TagwiseError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semeval2018_ec_en"
NAMES = ["anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism", "sadness",
         "surprise", "trust"]


def _macro_f1(Y, P):
    return multilabel_report(Y, P, None, NAMES)["macro_f1"]


pytestmark = pytest.mark.usefixtures("shared_embedding_cache")


@pytest.fixture(scope="module")
def semeval(shared_embedding_cache):
    """400 train + 300 test tweets embedded with USE (session-wide cache)."""
    spec = {"name": "semeval", "format": "tsv", "quoting": "none", "limit": 400,
            "splits": {"train": str(DATA / "E-c-En-train.txt"), "test": str(DATA / "E-c-En-test-gold.txt")},
            "columns": {"text": "Tweet", "id": "ID"}, "labels": {"format": "onehot", "onehot_columns": NAMES}}
    rows = ingest(parse_spec(spec, DATA / "spec.yaml"))
    enc = get_encoder("use")
    cache = shared_embedding_cache
    X, _ = embed_texts(rows.texts, enc, cache, progress=False)
    Y = LabelSpace(tuple(NAMES)).to_matrix(rows.labels)
    split = np.asarray(rows.splits)
    test = np.flatnonzero(split == "test")[:300]
    train = np.flatnonzero(split == "train")
    embed = lambda t: embed_texts(list(t), enc, cache, progress=False)[0]  # noqa: E731
    T = np.asarray(rows.texts, dtype=object)
    return {"X": X[train], "Y": Y[train], "Xt": X[test], "Yt": Y[test], "embed": embed,
            "T": list(T[train]), "Tt": list(T[test])}


def test_zero_shot_beats_predicting_every_label(semeval):
    d = semeval
    model = fit_low_label("zero-shot", None, None, None, d["X"], NAMES, d["embed"])
    pred = model.predict(d["Xt"])
    assert pred.shape == d["Yt"].shape
    all_f1 = _macro_f1(d["Yt"], np.ones_like(d["Yt"]))
    zs_f1 = _macro_f1(d["Yt"], pred)
    assert zs_f1 > all_f1 + 0.02, (zs_f1, all_f1)
    # every label is predicted for some texts, none for all of them (the per-label rank cut)
    rate = pred.mean(0)
    assert (rate > 0).all() and (rate < 0.6).all()


def test_few_shot_trains_predicts_and_round_trips(semeval, tmp_path):
    d = semeval
    X, Y = d["X"][:80], d["Y"][:80]
    model = fit_low_label("few-shot", X, Y, None, d["X"][80:], NAMES, d["embed"])
    assert isinstance(model, FewShotClassifier)
    P = model.predict_proba(d["Xt"])
    assert P.shape == d["Yt"].shape and np.isfinite(P).all()
    ap = multilabel_report(d["Yt"], model.predict(d["Xt"]), P, NAMES)["macro_ap"]
    assert ap > 0.3  # far above the ~0.2 label prevalence of a random ranking
    save_model(model, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(d["Xt"]), P, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loaded.threshold_, model.threshold_)


def test_label_without_labeled_examples_falls_back_to_zero_shot(semeval):
    d = semeval
    k = NAMES.index("fear")
    keep = d["Y"][:, k] == 0  # no labeled positive of 'fear' at all
    X, Y = d["X"][keep][:100], d["Y"][keep][:100]
    model = fit_low_label("few-shot", X, Y, None, d["X"], NAMES, d["embed"])
    zs_logit = model.zeroshot_.decision_function(d["Xt"])[:, k]
    np.testing.assert_allclose(model.decision_function(d["Xt"])[:, k], zs_logit, rtol=1e-5, atol=1e-5)
    pred = model.predict(d["Xt"])[:, k]
    assert 0 < pred.sum() < len(pred)  # still predicted, from the label name
    # and the zero-shot ranking of 'fear' is informative
    ap = multilabel_report(d["Yt"][:, [k]], pred[:, None], zs_logit[:, None], ["fear"])["macro_ap"]
    assert ap > d["Yt"][:, k].mean() * 1.5


def test_cotraining_learns_from_the_pool_texts_and_round_trips(semeval, tmp_path):
    d = semeval
    X, Y, U = d["X"][:60], d["Y"][:60], d["X"][60:]
    T, T_pool = d["T"][:60], d["T"][60:]
    model = fit_low_label("semi-supervised", X, Y, None, U, NAMES, d["embed"], texts=T, texts_unlabeled=T_pool)
    assert isinstance(model, CoTrainingClassifier)
    info = model.n_pseudo_
    assert info["examples"] == info["unlabeled_pool"] == len(U) and info["soft_cells"] == len(U) * len(NAMES)
    assert 0 < info["positive"] < info["soft_cells"]
    # the n-gram student alone, trained on 60 labeled tweets + 340 soft-labeled ones, ranks test labels
    lexical = model.lexical_.transform(d["Tt"]) @ model.lex_coef_ + model.lex_intercept_
    ap = multilabel_report(d["Yt"], lexical > 0, lexical, NAMES)["macro_ap"]
    assert ap > d["Yt"].mean() * 1.5, ap
    pred = model.predict(d["Xt"], texts=d["Tt"])
    assert pred.shape == d["Yt"].shape and 0 < pred.mean() < 0.6
    with pytest.raises(TagwiseError, match="texts="):
        model.predict(d["Xt"])
    save_model(model, tmp_path / "co")
    assert not list((tmp_path / "co").glob("*.pkl"))
    loaded, _ = load_model(tmp_path / "co")
    np.testing.assert_allclose(loaded.predict_proba(d["Xt"], texts=d["Tt"]),
                               model.predict_proba(d["Xt"], texts=d["Tt"]), rtol=1e-5, atol=1e-6)
    # the control without the pool: same views, nothing learned from unlabeled rows
    control = CoTrainingClassifier(self_train=False).fit(X, Y, texts=T, X_unlabeled=U, texts_unlabeled=T_pool,
                                                         zeroshot=model.head_.zeroshot_)
    assert control.n_pseudo_["examples"] == 0
    assert not np.allclose(control.lex_coef_, model.lex_coef_)


def test_semi_supervised_graph_uses_and_reports_pseudo_labels(semeval, tmp_path):
    d = semeval
    X, Y, U = d["X"][:60], d["Y"][:60], d["X"][60:]
    model = fit_low_label("semi-supervised", X, Y, None, U, NAMES, d["embed"], params={"method": "graph", "k": 10})
    assert isinstance(model, SemiSupervisedClassifier)
    info = model.n_pseudo_
    assert info["unlabeled_pool"] == len(U) and 0 < info["positive"] and 0 < info["examples"] <= len(U)
    pred = model.predict(d["Xt"])
    assert pred.shape == d["Yt"].shape and pred.sum() > 0
    save_model(model, tmp_path / "ss")
    loaded, _ = load_model(tmp_path / "ss")
    np.testing.assert_array_equal(loaded.predict(d["Xt"]), pred)


def test_semi_supervised_without_unlabeled_is_a_clear_error(semeval):
    d = semeval
    with pytest.raises(TagwiseError, match="unlabeled"):
        fit_low_label("semi-supervised", d["X"][:50], d["Y"][:50], None, None, NAMES, d["embed"])
    with pytest.raises(TagwiseError, match="texts"):  # co-training without the texts
        fit_low_label("semi-supervised", d["X"][:50], d["Y"][:50], None, d["X"][50:], NAMES, d["embed"])
    with pytest.raises(TagwiseError, match="unknown semi-supervised method"):
        fit_low_label("semi-supervised", d["X"][:50], d["Y"][:50], None, d["X"][50:], NAMES, d["embed"],
                      params={"method": "tri-training"})


def test_propagation_moves_labels_to_neighbours(semeval):
    d = semeval
    X, Y = d["X"], d["Y"]
    S = knn_graph(X, k=10)
    assert abs(S - S.T).max() < 1e-6  # symmetric
    known = np.zeros_like(Y, dtype=bool)
    known[:100] = True
    F = propagate_labels(S, Y, known, alpha=0.99)
    # on the rows whose labels were hidden, the propagated scores rank true labels above chance
    rest = slice(100, None)
    ap = multilabel_report(Y[rest], F[rest] > 0.5, F[rest], NAMES)["macro_ap"]
    assert ap > Y[rest].mean() * 1.2


def test_cli_train_zero_shot_and_semi_supervised(tmp_path, capsys):
    import json

    from tagwise.cli import main
    from tagwise.workflows.models import load_project_model
    from tagwise.project import Project

    from conftest import semeval_labeled_and_pool_specs

    labeled, pool = semeval_labeled_and_pool_specs(tmp_path, n_labeled=60, n_pool=200)
    root = str(tmp_path / "p")
    assert main(["init", root]) == 0
    assert main(["add-source", root, str(labeled)]) == 0
    assert main(["add-source", root, str(pool)]) == 0
    assert main(["train", root, "--zero-shot"]) == 0
    project = Project.open(root)
    model = load_project_model(project)
    assert type(model.head).__name__ == "ZeroShotClassifier" and model.labels == NAMES
    assert main(["train", root, "--semi-supervised"]) == 0
    assert "soft pseudo-labels on 200 of 200 unlabeled examples" in capsys.readouterr().out
    model = load_project_model(project)
    assert type(model.head).__name__ == "CoTrainingClassifier" and model.head.needs_texts
    pool = project.examples(split="unlabeled")
    X = project.features(pool)
    assert model.head.predict(X, texts=list(pool.texts)).shape == (200, len(NAMES))
    with pytest.raises(TagwiseError, match="texts="):
        model.head.predict_proba(X)
    # batch predict and evaluate hand the texts through
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in pool.texts[:20]))
    assert main(["predict", root, str(tmp_path / "new.jsonl"), "--out", str(tmp_path / "pred.jsonl")]) == 0
    assert len((tmp_path / "pred.jsonl").read_text().splitlines()) == 20
    assert main(["evaluate", root, "--split", "train"]) == 0
    assert main(["train", root, "--semi-supervised", "--params", '{"method": "graph"}']) == 0
    assert "negative pseudo-labels on" in capsys.readouterr().out
    assert type(load_project_model(project).head).__name__ == "SemiSupervisedClassifier"


def test_pool_thresholds_follow_the_unlabeled_pool(semeval):
    """threshold_method='pool' (for actively chosen labels) cuts by the pool's expected F1."""
    from tagwise.learn.thresholds import expected_f1_thresholds

    d = semeval
    X, Y, rest, Yrest = d["X"][:150], d["Y"][:150], d["X"][150:], d["Y"][150:]
    zs = fit_low_label("zero-shot", None, None, None, d["X"], NAMES, d["embed"])
    cv = FewShotClassifier().fit(X, Y, zeroshot=zs, X_corpus=d["X"])
    pool = FewShotClassifier(threshold_method="pool").fit(X, Y, zeroshot=zs, X_corpus=d["X"], X_unlabeled=rest)
    np.testing.assert_allclose(pool.coef_, cv.coef_)  # same head, only the cuts differ
    assert not np.allclose(pool.threshold_, cv.threshold_)
    # on a representative draw both kinds of cut are about as good
    f_cv, f_pool = _macro_f1(d["Yt"], cv.predict(d["Xt"])), _macro_f1(d["Yt"], pool.predict(d["Xt"]))
    assert f_pool > f_cv - 0.03, (f_pool, f_cv)
    # properties of the pool cut (not a re-derivation of it): it depends on which rows the pool
    # holds, not on their order; it moves when the pool's make-up moves; and for every label with
    # known positives it cuts inside the pool (some rows predicted, not all)
    oof_logits = np.log(pool.oof_proba_) - np.log1p(-pool.oof_proba_)
    Z = pool.decision_function(rest)
    shuffled = np.random.default_rng(0).permutation(len(Z))
    np.testing.assert_allclose(expected_f1_thresholds(Y, oof_logits, Z[shuffled]),
                               expected_f1_thresholds(Y, oof_logits, Z), rtol=1e-9)
    k = NAMES.index("joy")
    rich = expected_f1_thresholds(Y, oof_logits, Z[Yrest[:, k] > 0])[k]
    poor = expected_f1_thresholds(Y, oof_logits, Z[Yrest[:, k] == 0])[k]
    assert abs(rich - poor) > 0.01, (rich, poor)
    tuned = Y.sum(0) >= 2
    predicted = (pool.predict_proba(rest) >= pool.threshold_).mean(0)
    assert np.all((predicted[tuned] > 0) & (predicted[tuned] < 1)), predicted
    with pytest.raises(TagwiseError, match="threshold_method"):
        FewShotClassifier(threshold_method="pool").fit(X, Y, zeroshot=zs)


def test_score_shift_weights_make_labeled_scores_look_like_the_pool():
    """Actively chosen rows crowd the high scores; the weights give each pool-score decile the
    pool's share again (within the clip), and leave a representative draw at weight 1."""
    from tagwise.learn.thresholds import score_shift_weights

    rng = np.random.default_rng(0)
    pool = rng.normal(size=20_000)
    same = score_shift_weights(pool[:2_000], pool)
    assert np.abs(same - 1).max() < 0.25
    chosen = np.r_[rng.normal(1.5, 0.5, size=900), rng.normal(size=300)]  # high scores over-sampled
    w = score_shift_weights(chosen, pool)
    assert w.mean() == pytest.approx(1.0)
    edges = np.quantile(pool, np.linspace(0, 1, 11)[1:-1])
    share = np.bincount(np.searchsorted(edges, chosen), weights=w, minlength=10) / w.sum()
    np.testing.assert_allclose(share, 0.1, atol=0.02)
    assert w[chosen > 2].mean() < 0.5 < 2 < w[chosen < -1].mean()


def test_char_ngram_view_round_trips_on_arabic_and_hindi_tweets():
    """The lexical view needs no tokenizer: any script, same matrix after a save/load as arrays."""
    from tagwise.learn.lexical import CharNgramTfidf

    base = DATA.parent / "umsab_xlmt_sentiment"
    texts = []
    for lang in ("arabic", "hindi"):
        texts += (base / lang / "test_text.txt").read_text(encoding="utf-8").splitlines()[:150]
    lex = CharNgramTfidf()
    T = lex.fit_transform(texts)
    assert T.shape[0] == 300 and T.shape[1] > 1000
    norms = np.asarray(T.multiply(T).sum(1)).ravel()  # L2 rows; a tweet with no n-gram seen twice is empty
    assert np.all(np.isclose(norms, 1.0, rtol=1e-5) | (norms == 0)) and (norms > 0).mean() > 0.95
    assert any("\u0600" <= c <= "\u06ff" for term in lex.terms_.tolist() for c in term)  # Arabic n-grams kept
    meta, arrays = lex.get_state()
    assert all(a.dtype != object for a in arrays.values())  # saved with np.save(allow_pickle=False)
    again = CharNgramTfidf.from_state(meta, arrays).transform(texts)
    assert abs(again - T).max() < 1e-6
    with pytest.raises(TagwiseError, match="empty"):
        CharNgramTfidf().fit_transform(["   ", ""])
