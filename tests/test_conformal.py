"""Risk-controlled label sets (learn.conformal) on planted models with known probabilities, and
`predict/evaluate --risk` end to end on real SemEval-2018 E-c slices."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import DATA, SEMEVAL_NAMES
from tagwise.learn.conformal import (LOSSES, LTT_GRID, ConformalRiskController, PerLabelCalibrator, crc_cut, fdr_loss,
                                     fnr_loss, ltt_cut, masked_ece, parse_risk,
                                     reliability_bins, risk_curve, selective_cut)
from tagwise.types import TagwiseError

K = 8


def planted(rng, n, k=K, a=0.4, b=1.6):
    """Scores that ARE the true probabilities: y ~ Bernoulli(p), p ~ Beta(a, b) per cell."""
    P = rng.beta(a, b, (n, k))
    return P, (rng.random((n, k)) < P).astype(np.float64)


@pytest.fixture(scope="module")
def population():
    """A large fresh sample standing in for the population: the true risk of a cut. FNR from the sorted
    positive cells (any cut), FDR tabulated once on the Learn-then-Test grid (the only cuts it picks)."""
    P, Y = planted(np.random.default_rng(123), 60_000)
    w = Y / np.maximum(Y.sum(1, keepdims=True), 1)
    order = np.argsort(P[Y > 0])
    fnr = (P[Y > 0][order], np.concatenate([[0.0], np.cumsum(w[Y > 0][order])]) / len(P))
    fdr = dict(zip(LTT_GRID.tolist(), risk_curve(Y, P, None, "fdr", LTT_GRID)))
    return {"fnr": fnr, "fdr": fdr}


def true_risk(population, risk, cut):
    if risk == "fdr":
        return float(population["fdr"][cut])
    p_sorted, cum = population["fnr"]
    return float(cum[np.searchsorted(p_sorted, cut, side="left")])


def test_losses_count_only_known_cells():
    Y = np.array([[1, 1, 0, 0], [0, 0, 0, 1.0]])
    Z = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], bool)
    M = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
    assert np.allclose(fnr_loss(Y, Z, M), [0.5, 0.0])  # row 2's only positive is unknown: nothing to miss
    assert np.allclose(fdr_loss(Y, Z, M), [0.5, 0.0])
    M2 = M.copy()
    M2[0, 2] = False  # the wrong prediction falls on an unknown cell
    assert np.allclose(fdr_loss(Y, Z, M2), [0.0, 0.0])
    Ys = np.array([[0.6, 0.4, 0, 0]])  # soft targets count as that share of a positive
    assert np.allclose(fnr_loss(Ys, np.array([[1, 0, 0, 0]], bool)), [0.4])


def test_risk_curve_matches_direct_computation():
    rng = np.random.default_rng(1)
    P, Y = planted(rng, 60, 6)
    M = rng.random(P.shape) < 0.7
    cuts = np.concatenate([[np.inf, -np.inf, 0.5], P[:4].ravel()])
    for risk in ("fnr", "fdr"):
        direct = [LOSSES[risk](Y, P >= t, M).mean() for t in cuts]
        assert np.allclose(risk_curve(Y, P, M, risk, cuts), direct)


def test_crc_fnr_matches_theory_on_a_planted_model(population):
    """CRC: E[test FNR] <= alpha, and (continuous scores) >= alpha - 2/(n+1): tight, not just safe."""
    rng = np.random.default_rng(0)
    alpha, n = 0.1, 400
    realised = []
    for _ in range(300):
        P, Y = planted(rng, n)
        realised.append(true_risk(population, "fnr", crc_cut(Y, P, None, alpha)))
    realised = np.array(realised)
    se = realised.std() / np.sqrt(len(realised))
    assert realised.mean() <= alpha + 3 * se
    assert realised.mean() >= alpha - 2 / (n + 1) - 3 * se


def test_high_probability_fnr_violations_at_most_one_minus_confidence(population):
    rng = np.random.default_rng(2)
    alpha, delta, n, reps = 0.1, 0.1, 400, 300
    crc_viol, ltt_viol = [], []
    for _ in range(reps):
        P, Y = planted(rng, n)
        ltt_viol.append(true_risk(population, "fnr", ltt_cut(Y, P, None, "fnr", alpha, delta)) > alpha)
        crc_viol.append(true_risk(population, "fnr", crc_cut(Y, P, None, alpha)) > alpha)
    slack = 3 * np.sqrt(delta * (1 - delta) / reps)
    assert np.mean(ltt_viol) <= delta + slack
    assert np.mean(crc_viol) > np.mean(ltt_viol)  # the in-expectation promise is violated far more often


def test_precision_promise_holds_with_the_stated_confidence(population):
    rng = np.random.default_rng(3)
    alpha, delta, n, reps = 0.25, 0.1, 400, 200
    risks = []
    for _ in range(reps):
        P, Y = planted(rng, n)
        cut = ltt_cut(Y, P, None, "fdr", alpha, delta)
        assert cut is not None
        risks.append(true_risk(population, "fdr", cut))
    risks = np.array(risks)
    assert np.mean(risks > alpha) <= delta + 3 * np.sqrt(delta * (1 - delta) / reps)
    assert risks.mean() > alpha - 0.1  # not vacuous: the sets are not just empty


def test_masked_cells_change_nothing():
    rng = np.random.default_rng(4)
    P, Y = planted(rng, 500)
    M = rng.random(P.shape) < 0.6
    M[:20] = False  # rows with no known label at all
    P2, Y2 = P.copy(), Y.copy()
    P2[~M] = rng.random(int((~M).sum()))
    Y2[~M] = 1 - Y2[~M]
    assert crc_cut(Y, P, M, 0.1) == crc_cut(Y2, P2, M, 0.1)
    for risk in ("fnr", "fdr"):
        assert ltt_cut(Y, P, M, risk, 0.2, 0.1) == ltt_cut(Y2, P2, M, risk, 0.2, 0.1)
    a = ConformalRiskController("precision", 0.8, 0.9).fit(P, Y, M)
    b = ConformalRiskController("precision", 0.8, 0.9).fit(P2, Y2, M)
    assert a.promise_ == b.promise_ and a.promise_["n_calibration"] == 480
    cal_a, cal_b = PerLabelCalibrator().fit(P, Y, M), PerLabelCalibrator().fit(P2, Y2, M)
    assert np.array_equal(cal_a.transform(P), cal_b.transform(P))


def test_per_source_cuts_keep_the_promise_per_source():
    """Source b's scores are overconfident: a pooled cut misses too many of b's labels; Mondrian cuts don't."""
    rng = np.random.default_rng(5)
    alpha, n = 0.1, 400

    def draw(m):
        Pa, Ya = planted(rng, m)
        Pb, Yb = planted(rng, m)
        return np.vstack([Pa, Pb ** 3]), np.vstack([Ya, Yb]), np.array(["a"] * m + ["b"] * m, dtype=object)

    pooled_b, mondrian, kept_viol = [], {"a": [], "b": []}, {"a": [], "b": []}
    for _ in range(60):
        P, Y, S = draw(n)
        Pt, Yt, St = draw(2000)
        c = ConformalRiskController("fnr", alpha).fit(P, Y, sources=S)
        out = c.predict(Pt, St)
        sets = out["labels"]
        for s in ("a", "b"):
            mondrian[s].append(fnr_loss(Yt[St == s], sets[St == s]).mean())
            keep = (St == s) & ~out["abstain"]  # each source's kept rows keep the per-row promise
            kept_viol[s].append(np.mean(fnr_loss(Yt[keep], sets[keep]) > alpha) if keep.any() else 0.0)
        pooled = ConformalRiskController("fnr", alpha, by_source=False).fit(P, Y, sources=S)
        pooled_b.append(fnr_loss(Yt[St == "b"], pooled.predict(Pt, St)["labels"][St == "b"]).mean())
    assert c.promise_["sources"]["b"]["n_calibration"] == n and not c.promise_["sources"]["b"]["pooled"]
    for s in ("a", "b"):
        assert np.mean(mondrian[s]) <= alpha + 3 * np.std(mondrian[s]) / np.sqrt(60)
        assert np.mean(kept_viol[s]) <= 0.1 + 3 * np.std(kept_viol[s]) / np.sqrt(60)
    assert set(c.source_abstain_cuts_) == {"a", "b"}
    assert np.mean(pooled_b) > alpha + 0.02


def test_uncertain_labels_lie_between_the_cuts():
    rng = np.random.default_rng(6)
    P, Y = planted(rng, 2000)
    c = ConformalRiskController("fnr", 0.2).fit(P, Y)
    lo, hi = c.cut_
    out = c.predict(P[:300])
    assert lo < hi
    assert np.array_equal(out["labels"], P[:300] >= lo)
    assert np.array_equal(out["uncertain"], (P[:300] >= lo) & (P[:300] < hi))


@pytest.mark.parametrize("risk, level", [("fnr", 0.2), ("precision", 0.8)])
def test_kept_rows_keep_the_promise_per_row_and_abstention_is_selective(risk, level):
    """Of the rows not abstained, at most row_violation break the promise on their own (fresh rows of
    the planted model), the abstained rows are the worse ones, and abstention is neither none nor all."""
    rng = np.random.default_rng(9)
    alpha, share = (level if risk == "fnr" else 1 - level), 0.1
    kept_viol, rates, gaps = [], [], []
    for _ in range(40):
        P, Y = planted(rng, 600, a=0.3, b=0.9)
        Pt, Yt = planted(rng, 3000, a=0.3, b=0.9)
        c = ConformalRiskController(risk, level, row_violation=share).fit(P, Y)
        out = c.predict(Pt)
        loss = LOSSES[c.promise_["controlled"]](Yt, out["labels"])
        keep = ~out["abstain"]
        kept_viol.append(np.mean(loss[keep] > alpha))
        rates.append(out["abstain"].mean())
        gaps.append(loss[~keep].mean() - loss[keep].mean())
        assert np.array_equal(out["labels"], c.predict(Pt)["labels"])  # the sets do not depend on abstention
    assert np.mean(kept_viol) <= share + 3 * np.std(kept_viol) / np.sqrt(40)
    assert 0.02 < np.mean(rates) < 0.9
    assert np.mean(gaps) > 0
    assert c.promise_["abstain"]["row_violation"] == share and c.promise_["abstain"]["cut"] is not None


def test_selective_cut_edges():
    doubt = np.linspace(0, 1, 200)
    assert selective_cut(doubt, np.zeros(200, bool), 0.1) == np.inf  # nothing breaks: keep every row
    assert selective_cut(doubt, np.ones(200, bool), 0.1) == -np.inf  # everything breaks: keep none
    violated = doubt > 0.5  # the doubt ranks perfectly: keep up to the share's worth of violations
    cut = selective_cut(doubt, violated, 0.1)
    kept = doubt <= cut
    assert 0.5 < cut < 1 and (violated[kept].sum() + 1) / (kept.sum() + 1) <= 0.1
    assert selective_cut(np.zeros(5), np.zeros(5, bool), 0.1) == -np.inf  # fewer rows than 1/share


def test_too_few_rows_or_bad_targets_are_clear_errors():
    rng = np.random.default_rng(7)
    P, Y = planted(rng, 5)
    with pytest.raises(TagwiseError, match="calibration rows"):
        ConformalRiskController("fnr", 0.05).fit(P, Y)
    for bad in ("fnr", "fnr=2", "recall=0.9", "fdr=abc"):
        with pytest.raises(TagwiseError, match="NAME=LEVEL"):
            parse_risk(bad)
    assert parse_risk("precision=0.9") == ("fdr", pytest.approx(0.1))


def test_calibration_lowers_ece_on_held_out_rows():
    rng = np.random.default_rng(8)
    P, Y = planted(rng, 6000)
    distorted = P ** 2.5  # systematically underconfident scores of a known model
    cal = PerLabelCalibrator().fit(distorted[:3000], Y[:3000])
    before, after = masked_ece(Y[3000:], distorted[3000:]), masked_ece(Y[3000:], cal.transform(distorted[3000:]))
    assert after < before / 3
    assert set(cal.methods_) <= {"temperature", "isotonic"}
    bins = reliability_bins(Y[3000:], distorted[3000:])  # the curve the report plots is the ECE's
    gap = np.abs(np.subtract(bins["mean_score"], bins["observed"]))
    assert np.isclose((np.array(bins["count"]) * gap).sum() / sum(bins["count"]), before)
    assert sum(bins["count"]) == Y[3000:].size


# ---------------------------------------------------------------- end to end through the CLI
def tagwise(*args, env, check=True):
    proc = subprocess.run([sys.executable, "-m", "tagwise", *map(str, args)], capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"tagwise {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def semeval_spec(folder, splits, limit):
    semeval = DATA / "semeval2018_ec_en"
    files = {"train": "E-c-En-train.txt", "dev": "E-c-En-dev.txt", "test": "E-c-En-test-gold.txt"}
    spec = {"name": "semeval", "format": "tsv", "quoting": "none", "limit": limit,
            "splits": {s: str(semeval / files[s]) for s in splits}, "columns": {"text": "Tweet", "id": "ID"},
            "labels": {"format": "onehot", "onehot_columns": SEMEVAL_NAMES}}
    path = folder / f"semeval-{'-'.join(splits)}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def env(use_cache, data_dir):
    return {**os.environ, "TAGWISE_CACHE_DIR": os.environ.get("TAGWISE_CACHE_DIR", str(use_cache))}


def test_predict_and_evaluate_with_risk_on_semeval(tmp_path, env):
    project = tmp_path / "p"
    tagwise("init", project, env=env)
    tagwise("add-source", project, semeval_spec(tmp_path, ["train", "dev", "test"], 800), env=env)
    tagwise("train", project, "--model", "supervised", env=env)
    test_in = tmp_path / "in.jsonl"
    lines = (DATA / "semeval2018_ec_en" / "E-c-En-test-gold.txt").read_text(encoding="utf-8").splitlines()[1:41]
    test_in.write_text("".join(json.dumps({"id": ln.split("\t")[0], "text": ln.split("\t")[1]}) + "\n" for ln in lines))

    # without --risk the output rows keep their contract and no promise is written
    tagwise("predict", project, test_in, "--out", tmp_path / "plain.jsonl", env=env)
    plain = [json.loads(x) for x in (tmp_path / "plain.jsonl").read_text().splitlines()]
    assert set(plain[0]) == {"id", "labels", "scores"} and not (tmp_path / "plain.jsonl.promise.json").exists()

    out = tmp_path / "out.jsonl"
    tagwise("predict", project, test_in, "--out", out, "--risk", "fnr=0.15", env=env)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 40 and set(rows[0]) == {"id", "labels", "scores", "uncertain", "abstain"}
    promise = json.loads((tmp_path / "out.jsonl.promise.json").read_text())["promise"]
    assert promise["risk"] == "fnr" and promise["target"] == 0.15 and promise["n_calibration"] == 800
    assert "dev" in promise["calibration"]
    cut = promise["sources"]["semeval"]["lambda"]
    for r in rows:
        assert all(p >= cut - 1e-6 if k in r["labels"] else p < cut + 1e-6 for k, p in r["scores"].items())
        assert isinstance(r["abstain"], bool)
    assert "row_violation" in promise["abstain"]

    report = json.loads(tagwise("evaluate", project, "--json", "--risk", "fnr=0.15", env=env).stdout)
    rc = report["risk_control"]
    lo, hi = rc["realised"]["ci95"]
    assert lo <= rc["realised"]["risk"] <= hi and rc["realised"]["n"] > 700
    assert lo <= 0.15 + 0.02  # the promise holds up to one test split's noise (dev and test are separate draws)
    # a real promise, not the trivial one: far smaller sets than "every label" (FNR 0)
    assert 1 < rc["mean_set_size"] < len(SEMEVAL_NAMES) * 0.75
    assert rc["calibration"]["ece_after"] <= rc["calibration"]["ece_before"] + 0.01

    from tagwise.project import Project
    from tagwise.workflows.predict import predict_texts
    api = predict_texts(Project.open(project), ["I am furious and disgusted", "what a lovely day"], risk="precision=0.8",
                        row_violation=0.25)
    assert api["promise"]["risk"] == "precision" and all({"uncertain", "abstain"} <= set(p) for p in api["predictions"])
    assert api["promise"]["abstain"]["row_violation"] == 0.25

    text = tagwise("evaluate", project, "--risk", "precision=0.7", "--confidence", "0.9", env=env).stdout
    assert "promised precision >= 0.7" in text and "95% CI" in text
    proc = tagwise("evaluate", project, "--split", "dev", "--risk", "fnr=0.1", env=env, check=False)
    assert proc.returncode == 2 and "own calibration rows" in proc.stderr
    # the report plots the reliability curves of the newest evaluation, which has calibration data
    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.report import write_report
    page = write_report(Project.open(project)).read_text(encoding="utf-8")
    assert "id='reliability'" in page and "ECE" in page and "dev split" in page
    calibrated = evaluate(Project.open(project), calibrate=True, save=False)["calibration"]
    assert calibrated["n_calibration"] == 800 and "dev split" in calibrated["fitted_on"]
    assert sum(calibrated["reliability"]["after"]["count"]) == sum(calibrated["reliability"]["before"]["count"])


def test_cross_conformal_without_dev_and_a_clear_error_when_nothing_to_calibrate(tmp_path, env):
    project = tmp_path / "p"
    tagwise("init", project, env=env)
    tagwise("add-source", project, semeval_spec(tmp_path, ["train", "test"], 600), env=env)
    tagwise("train", project, "--model", "supervised", env=env)
    report = json.loads(tagwise("evaluate", project, "--json", "--risk", "fnr=0.2", "--confidence", "0.9",
                                env=env).stdout)["risk_control"]
    assert report["promise"]["calibration"].startswith("cross-conformal")
    assert report["promise"]["n_calibration"] == 600
    assert report["realised"]["ci95"][0] <= 0.2

    tagwise("train", project, "--zero-shot", env=env)  # keeps no out-of-fold scores, and there is no dev split
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "what a lovely day"}) + "\n")
    proc = tagwise("predict", project, src, "--out", tmp_path / "o.jsonl", "--risk", "fnr=0.1", env=env, check=False)
    assert proc.returncode == 2 and "nothing to calibrate --risk on" in proc.stderr and "dev split" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.jsonl").exists()


def test_suggest_draws_the_rows_the_model_abstains_on(tmp_path):
    """`suggest --strategy abstain`: pool rows the current model sends to a person under the promise,
    abstained before merely doubtful, each group most doubtful first; clear errors otherwise."""
    from serve_data import make_project
    from tagwise.workflows.conformal import fit_risk_controller
    from tagwise.workflows.models import load_project_model
    from tagwise.workflows.predict import predict_with
    from tagwise.workflows.suggest import suggest, unlabeled_pool
    from tagwise.workflows.train import train

    project = make_project(tmp_path, n_train=200, n_pool=120, n_dev=150, n_test=20)
    with pytest.raises(TagwiseError, match="no trained model"):
        suggest(project, 10, strategy="abstain")
    train(project, mode="supervised", progress=False)
    with pytest.raises(TagwiseError, match="--strategy abstain"):
        suggest(project, 10, risk="fnr=0.2")
    rows = suggest(project, 40, strategy="abstain", risk="precision=0.7")
    pool = unlabeled_pool(project)
    assert len(rows) == 40 and {r["store_id"] for r in rows} <= set(pool.ids.tolist())
    loaded = load_project_model(project)
    out = fit_risk_controller(project, loaded, "precision=0.7").predict(
        predict_with(project, loaded, list(pool.texts), list(pool.sources))[1], list(pool.sources))
    n_abstain = int(out["abstain"].sum())
    assert 0 < n_abstain < len(pool)  # the rule routes some rows, not all
    reasons = [r["reason"] for r in rows]
    assert reasons == ["abstain"] * min(40, n_abstain) + ["doubtful"] * max(0, 40 - n_abstain)
    for group in ("abstain", "doubtful"):
        scores = [r["score"] for r in rows if r["reason"] == group]
        assert scores == sorted(scores, reverse=True)
    assert min(r["score"] for r in rows) >= np.sort(out["doubt"])[::-1][39] - 1e-6  # the most doubtful rows
