"""Same data, same command, another machine's rounding -> the same model, within what a user can see.

Every estimator/mode that trains is fitted twice on real SemEval-2018 E-c tweets (USE embeddings):
once on the embeddings, once on the embeddings plus Gaussian noise of sd 1e-6 (about the difference
between two engines' or two BLAS builds' embeddings of the same texts). The predicted label sets of
300 held-out tweets may change for at most 0.5% of them. A solver stopped by an iteration cap (or
by float32 rounding noise) instead of converging fails this: ``FewShotClassifier`` changed up to 8%
of the label sets before it solved to a tolerance (``learn/fewshot.py``, ``_fit_prior_head``).
"""
from __future__ import annotations

import numpy as np
import pytest

from tagwise.encoders import embed_texts, get_encoder
from tagwise.learn.fewshot import FewShotClassifier
from tagwise.learn.linear import MultiLabelLinear
from tagwise.learn.lowlabel import fit_low_label
from tagwise.sources import ingest, parse_spec
from tagwise.types import LabelSpace

from conftest import DATA, SEMEVAL_NAMES as NAMES

SEMEVAL = DATA / "semeval2018_ec_en"
MAX_CHANGED = 0.005  # share of label sets allowed to change under the perturbation
EPS = 1e-6

pytestmark = pytest.mark.usefixtures("shared_embedding_cache")


@pytest.fixture(scope="module")
def tweets(shared_embedding_cache):
    """300 labeled + 700 pool train tweets, 300 test tweets (USE)."""
    if not SEMEVAL.exists():
        pytest.skip(f"shared data not found at {SEMEVAL}")
    spec = {"name": "semeval", "format": "tsv", "quoting": "none", "limit": 1000,
            "splits": {"train": str(SEMEVAL / "E-c-En-train.txt"), "test": str(SEMEVAL / "E-c-En-test-gold.txt")},
            "columns": {"text": "Tweet", "id": "ID"}, "labels": {"format": "onehot", "onehot_columns": NAMES}}
    rows = ingest(parse_spec(spec, SEMEVAL / "spec.yaml"))
    enc = get_encoder("use")
    X, _ = embed_texts(rows.texts, enc, shared_embedding_cache, progress=False)
    Y = LabelSpace(tuple(NAMES)).to_matrix(rows.labels)
    split = np.asarray(rows.splits)
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")[:300]
    T = np.asarray(rows.texts, dtype=object)
    return {"X": X[train[:300]], "Y": Y[train[:300]], "U": X[train[300:]], "Xt": X[test],
            "T": list(T[train[:300]]), "Tu": list(T[train[300:]]), "Tt": list(T[test]),
            "embed": lambda t: embed_texts(list(t), enc, shared_embedding_cache, progress=False)[0]}


def _fit(mode, d, X, U):
    Y = d["Y"]
    if mode == "few-shot":  # the zero-shot prior + linear correction (what `train --few-shot` fits)
        return fit_low_label("few-shot", X, Y, None, U, NAMES, d["embed"])
    if mode == "few-shot-no-prior":
        return FewShotClassifier(use_prior=False).fit(X, Y, X_corpus=np.concatenate([X, U]))
    if mode == "few-shot-pool-cuts":
        return fit_low_label("few-shot", X, Y, None, U, NAMES, d["embed"], params={"threshold_method": "pool"})
    if mode == "cotrain":
        return fit_low_label("semi-supervised", X, Y, None, U, NAMES, d["embed"], texts=d["T"], texts_unlabeled=d["Tu"])
    if mode == "graph":
        return fit_low_label("semi-supervised", X, Y, None, U, NAMES, d["embed"], params={"method": "graph"})
    if mode == "zero-shot":  # label names + the labeled rows' cut calibration
        return fit_low_label("zero-shot", X, Y, None, U, NAMES, d["embed"])
    if mode == "linear":
        return MultiLabelLinear().fit(X, Y)
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["few-shot", "few-shot-no-prior", "few-shot-pool-cuts", "cotrain", "graph",
                                  "zero-shot", "linear"])
def test_a_1e6_perturbation_of_the_inputs_changes_almost_no_label_set(tweets, mode):
    d = tweets
    rng = np.random.default_rng(0)
    base = _fit(mode, d, d["X"], d["U"])
    kw = {"texts": d["Tt"]} if getattr(base, "needs_texts", False) else {}
    pred = base.predict(d["Xt"], **kw)
    assert 0 < pred.mean() < 0.7  # a real model, not a constant one
    for _ in range(2):
        X = d["X"] + rng.normal(scale=EPS, size=d["X"].shape).astype(np.float32)
        U = d["U"] + rng.normal(scale=EPS, size=d["U"].shape).astype(np.float32)
        again = _fit(mode, d, X, U)
        changed = (again.predict(d["Xt"], **kw) != pred).any(1).mean()
        assert changed <= MAX_CHANGED, (mode, changed)
        # and the probabilities move by about as much as the inputs, not by the solver's stopping point
        dp = np.abs(again.predict_proba(d["Xt"], **kw) - base.predict_proba(d["Xt"], **kw)).max()
        assert dp < 1e-4, (mode, dp)
