"""MultiSourceLinear: masked partial labels, hierarchy consistency, source modes (issue 4)."""
import numpy as np
import pytest

from tagwise.learn.linear import MultiLabelLinear
from tagwise.learn.multisource import MultiSourceLinear, partial_targets
from tagwise.learn.persist import load_model, save_model
from tagwise.types import TagwiseError

from conftest import emotion_project


@pytest.fixture(scope="module")
def emotion(tmp_path_factory):
    """GoEmotions + XED en (first 400 rows each) on the benchmark's emotion taxonomy, hashing features."""
    project = emotion_project(tmp_path_factory.mktemp("ms"), limit=400)
    ex = project.examples(labeled=True)
    X = project.features(ex, "hashing:256")
    Y, known = partial_targets(ex, project.taxonomy)
    return project, ex, X, Y, known


def _flip_masked(Y, known, seed=0):
    rng = np.random.default_rng(seed)
    Y2 = Y.copy()
    flip = ~known & (rng.random(Y.shape) < 0.5)
    Y2[flip] = 1 - Y2[flip]
    return Y2, flip


def test_partial_targets_on_real_sources(emotion):
    project, ex, X, Y, known = emotion
    space = project.labels
    xed, goe = ex.sources == "xed_en", ex.sources == "goemotions"
    a, rage, neutral = space.index("anger"), space.index("rage"), space.index("neutral")
    # XED annotates the anger family, not GoEmotions' children
    assert known[xed, a].all() and not known[xed, neutral].any()
    anger_neg = xed & (Y[:, a] == 0)
    assert known[anger_neg, rage].all()                    # family negative -> child known negative
    assert not known[xed & (Y[:, a] == 1), rage].any()     # family positive -> which child is unknown
    # GoEmotions annotates every anger child, hence the family (positive iff some child is)
    kids = [space.index(n) for n in ("rage", "annoyance", "disapproval")]
    assert known[goe, a].all()
    assert np.array_equal(Y[goe, a], Y[np.ix_(goe, kids)].max(axis=1))


@pytest.mark.parametrize("make", [
    lambda: MultiLabelLinear(C=1.0, thresholds=0.5, max_iter=30),
    lambda: MultiSourceLinear(C=1.0, thresholds=0.5, refit=True, max_iter=30),
])
def test_masked_cells_are_excluded_from_the_loss(emotion, make):
    project, ex, X, Y, known = emotion
    Y_flipped, flip = _flip_masked(Y, known)
    assert flip.sum() > 500  # plenty of masked cells really change

    def fit(Y_, mask):
        model = make()
        if isinstance(model, MultiSourceLinear):
            return model.fit(X, Y_, ex.sources, mask)
        return model.fit(X, Y_, mask)

    a, b = fit(Y, known), fit(Y_flipped, known)
    np.testing.assert_allclose(a.predict_proba(X[:50]), b.predict_proba(X[:50]), atol=1e-6)
    # the same change without the mask moves the model: the check above can fail
    c, d = fit(Y, None), fit(Y_flipped, None)
    assert np.abs(c.predict_proba(X[:50]) - d.predict_proba(X[:50])).max() > 1e-2


def test_hierarchy_source_modes_and_persistence(emotion, tmp_path):
    project, ex, X, Y, known = emotion
    A = project.taxonomy.ancestor_matrix()
    model = MultiSourceLinear(C=2.0, cv=3, max_iter=40).fit(X, Y, ex.sources, known, A)
    for mode in (None, "xed_en", "goemotions"):
        P = model.predict_proba(X, source=mode)
        for c, p in zip(*np.nonzero(A)):
            assert (P[:, p] >= P[:, c] - 1e-6).all()       # P(parent) >= P(child)
        Z = model.predict(X, source=mode)
        for c, p in zip(*np.nonzero(A)):
            assert (Z[:, p] >= Z[:, c]).all()              # a predicted child implies its parent
    # modes differ: each source has its own offsets/residual head and thresholds
    assert not np.allclose(model.predict_proba(X, source="xed_en"), model.predict_proba(X, source="goemotions"))
    per_row = model.predict_proba(X[:10], source=ex.sources[:10])
    np.testing.assert_allclose(per_row[0], model.predict_proba(X[:1], source=ex.sources[0])[0], rtol=1e-5)
    with pytest.raises(TagwiseError, match="not seen in training"):
        model.predict(X[:3], source="isear")
    save_model(model, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m")
    assert isinstance(loaded, MultiSourceLinear)
    np.testing.assert_array_equal(loaded.predict(X[:100], source="xed_en"), model.predict(X[:100], source="xed_en"))


def test_bad_inputs_are_clear_errors(emotion):
    project, ex, X, Y, known = emotion
    with pytest.raises(TagwiseError, match="one source per row"):
        MultiSourceLinear().fit(X, Y, ex.sources[:-1], known)
    with pytest.raises(TagwiseError, match="mask has shape"):
        MultiSourceLinear().fit(X, Y, ex.sources, known[:, :-1])
    with pytest.raises(TagwiseError, match="every label is masked"):
        MultiSourceLinear().fit(X, Y, ex.sources, np.zeros_like(known))


def test_cli_train_multisource_in_a_target_mode(emotion):
    from tagwise.cli import main
    from tagwise.workflows.models import load_project_model

    project, ex, X, Y, known = emotion
    project.store.set_meta("encoder", "hashing:256")
    params = '{"target_source": "xed_en", "max_iter": 20}'
    assert main(["train", str(project.path), "--model", "multisource", "--params", params]) == 0
    loaded = load_project_model(project)
    assert isinstance(loaded.head, MultiSourceLinear) and loaded.head.target_source == "xed_en"
    np.testing.assert_allclose(loaded.head.predict_proba(X[:20]), loaded.head.predict_proba(X[:20], source="xed_en"))
    assert not np.allclose(loaded.head.predict_proba(X[:20]), loaded.head.predict_proba(X[:20], source="agnostic"))
    bad = '{"target_source": "isear"}'
    assert main(["train", str(project.path), "--model", "multisource", "--params", bad]) == 2


def test_source_expert_weight_one_is_the_source_alone(emotion):
    """expert_mix=(1.0,): a source's mode is exactly a plain head fitted on that source's rows."""
    project, ex, X, Y, known = emotion
    xed = ex.sources == "xed_en"
    model = MultiSourceLinear(C=2.0, cv=3, max_iter=40, expert_mix=(1.0,)).fit(X, Y, ex.sources, known)
    s = model.sources_.index("xed_en")
    cols = np.flatnonzero(model.source_support_[s] >= 3)
    assert len(cols) >= 4 and np.all(model.expert_mix_[s, cols] == 1.0)
    alone = MultiLabelLinear(C=2.0, cv=3, max_iter=40, pos_weight="sqrt").fit(
        X[xed], Y[np.ix_(xed, cols)], known[np.ix_(xed, cols)])
    np.testing.assert_allclose(model.predict_proba(X[:60], source="xed_en")[:, cols], alone.predict_proba(X[:60]), atol=1e-4)
    # other labels and the agnostic mode still come from the shared, source-aware head
    off = model.predict_proba(X[:60], source="agnostic")
    assert np.abs(off[:, cols] - alone.predict_proba(X[:60])).max() > 1e-2
    # candidates are chosen on out-of-fold mean AP, so the default picks from its grid
    default = MultiSourceLinear(C=2.0, cv=3, max_iter=40).fit(X, Y, ex.sources, known)
    assert set(np.unique(default.expert_mix_).round(2)) <= {0.0, 0.25, 0.5, 0.75, 1.0}
