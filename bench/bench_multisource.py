"""Multi-source training over one taxonomy, and how it transfers (issue 4).

Run from the repo root:
    nice -n 10 .venv/bin/python bench/bench_multisource.py            # all four parts
    nice -n 10 .venv/bin/python bench/bench_multisource.py --parts emotion --quick
    # seed spread of the emotion part: run --seed 1 / --seed 2 into their own files, then
    .venv/bin/python bench/bench_multisource.py --summarize bench/results/multisource.json \
        bench/results/multisource_seed1.json bench/results/multisource_seed2.json

Parts (results in bench/results/multisource.json):
 emotion   GoEmotions, SemEval E-c, XED en, ISEAR, TweetEval onto bench/taxonomies/emotion.yaml; on each
           source's test split: (a) that source alone, (b) naive union (missing = negative),
           (c) tagwise MultiSourceLinear (masked partial labels + hierarchy + source awareness).
 lingual   train on XED en, test on XED projections (de it pt nl ru fi) and UMSAB (8 languages);
           gap to in-language training.
 news      Reuters 90 + AG News 4 through bench/taxonomies/news.yaml; transfer both ways.
 suggest   `taxonomy suggest` on the emotion group: top-1 precision against the declared maps and
           GoEmotions' official Ekman mapping.
All models use the same USE embeddings from the shared cache (TAGWISE_CACHE_DIR).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TAGWISE_CACHE_DIR", str(ROOT / ".cache" / "emb"))
sys.path.insert(0, str(ROOT / "src"))

from _stats import compare, fmt_mean_sd, mean_sd  # noqa: E402
from common import peak_rss_mb, save_results  # noqa: E402
from tagwise.evaluate.transfer import drop_test_overlap, holdout_splits, macro_f1  # noqa: E402
from tagwise.learn.linear import MultiLabelLinear  # noqa: E402
from tagwise.learn.multisource import MultiSourceLinear, partial_targets  # noqa: E402
from tagwise.project import Project  # noqa: E402

SPECS = ROOT / "bench" / "specs"
TAXONOMIES = ROOT / "bench" / "taxonomies"
EMOTION_SOURCES = ["goemotions", "semeval2018", "xed_en", "isear", "tweeteval_emotion"]
EMOTION_SPECS = ["emotion_goemotions", "emotion_semeval2018", "emotion_xed_en", "emotion_isear", "emotion_tweeteval"]
SHARED_C = 4.0  # one regularisation strength for every method: same head, same budget (--C)
POS_WEIGHT = "sqrt"  # positive-class weighting for every method (--pos-weight none|sqrt)
BASELINE_ITER = 100  # L-BFGS iterations per fit, baselines and tagwise alike (both default to 100)
GOEMOTIONS_TRAIN = 15000  # GoEmotions training rows used (of 48,836 train+dev): 2-core time budget



def build_project(taxonomy: Path | None, specs: list[str]) -> Project:
    path = Path(tempfile.mkdtemp(prefix="tagwise-bench-ms-")) / "project"
    project = Project.init(path, taxonomy=taxonomy)
    for name in specs:
        project.add_source(SPECS / f"{name}.yaml")
    return project


def prepare(project: Project, quick: bool, seed: int = 0):
    """Examples, features, partial targets and train/test masks for a group of sources."""
    ex = project.examples(labeled=True)
    splits = holdout_splits(ex, 0.2, seed)
    train = drop_test_overlap(ex.texts, splits)
    test = splits == "test"
    if quick:  # cap every source's training rows (development runs only)
        rng = np.random.default_rng(seed)
        for s in set(ex.sources):
            idx = np.flatnonzero(train & (ex.sources == s))
            if len(idx) > 4000:
                train[rng.permutation(idx)[4000:]] = False
    X = project.features(ex, progress=True)
    Y, known = partial_targets(ex, project.taxonomy)
    return ex, X, Y, known, train, test


def own_columns(ex, space, source):
    return np.array(sorted(space.index(n) for n in ex.annotated[source]), dtype=np.int64)


# -- part 1: emotion group ------------------------------------------------------------------
SOURCE_WEIGHT = None  # MultiSourceLinear(source_weight=...); set by --source-weight
SEED = 0  # holdout split, GoEmotions subsample and every model's folds; set from --seeds


def run_emotion(quick: bool) -> dict:
    project = build_project(TAXONOMIES / "emotion.yaml", EMOTION_SPECS)
    tax, space = project.taxonomy, project.labels
    A = tax.ancestor_matrix(space)
    ex, X, Y, known, train, test = prepare(project, quick, SEED)
    goe = np.flatnonzero(train & (ex.sources == "goemotions"))
    if len(goe) > GOEMOTIONS_TRAIN:  # seeded subsample; every other source is used in full
        train[np.random.default_rng(SEED).permutation(goe)[GOEMOTIONS_TRAIN:]] = False
    print(f"emotion: {int(train.sum())} training rows, {int(test.sum())} test rows, {len(space)} labels, "
          f"{int(known[train].sum())}/{known[train].size} training cells known")
    out: dict = {"per_source": {}, "seconds": {}, "n_train": int(train.sum()), "source_weight": SOURCE_WEIGHT, "seed": SEED,
                 "C": SHARED_C, "pos_weight": POS_WEIGHT,
                 "n_train_per_source": {s: int((train & (ex.sources == s)).sum()) for s in EMOTION_SOURCES}}
    src = ex.sources

    t0 = time.perf_counter()
    alone = {}
    for s in EMOTION_SOURCES:
        rows = train & (src == s)
        alone[s] = MultiLabelLinear(C=SHARED_C, pos_weight=POS_WEIGHT, cv=3, max_iter=BASELINE_ITER, random_state=SEED).fit(X[rows], Y[rows], known[rows])
    out["seconds"]["alone"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    naive = MultiLabelLinear(C=SHARED_C, pos_weight=POS_WEIGHT, cv=3, max_iter=BASELINE_ITER, random_state=SEED).fit(X[train], Y[train])  # missing = negative
    out["seconds"]["naive_union"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    masked = MultiLabelLinear(C=SHARED_C, pos_weight=POS_WEIGHT, cv=3, max_iter=BASELINE_ITER, random_state=SEED).fit(X[train], Y[train], known[train])
    out["seconds"]["masked_union"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    multi = MultiSourceLinear(C=SHARED_C, pos_weight=POS_WEIGHT, cv=3, max_iter=BASELINE_ITER,
                              source_weight=SOURCE_WEIGHT, random_state=SEED).fit(X[train], Y[train], src[train], known[train], A)
    out["seconds"]["tagwise"] = round(time.perf_counter() - t0, 1)

    print(f"{'source':20s}{'(a) alone':>11s}{'(b) naive':>11s}{'masked':>9s}{'(c) tagwise':>13s}"
          f"{'agnostic':>10s}{'c/a':>7s}{'c/b':>7s}")
    for s in EMOTION_SOURCES:
        rows = test & (src == s)
        cols = own_columns(ex, space, s)
        f = {
            "alone": macro_f1(Y[rows], alone[s].predict(X[rows]), cols),
            "naive_union": macro_f1(Y[rows], naive.predict(X[rows]), cols),
            "masked_union": macro_f1(Y[rows], masked.predict(X[rows]), cols),
            "tagwise": macro_f1(Y[rows], multi.predict(X[rows], source=s), cols),
            "tagwise_agnostic": macro_f1(Y[rows], multi.predict(X[rows], None), cols),
        }
        f = {k: round(v, 4) for k, v in f.items()}
        f["n_test"] = int(rows.sum())
        out["per_source"][s] = f
        print(f"{s:20s}{f['alone']:11.4f}{f['naive_union']:11.4f}{f['masked_union']:9.4f}{f['tagwise']:13.4f}"
              f"{f['tagwise_agnostic']:10.4f}{f['tagwise'] / f['alone']:7.3f}{f['tagwise'] / f['naive_union']:7.3f}")
    ps = out["per_source"]
    out["targets"] = {
        "c_beats_b_on_every_source": all(v["tagwise"] > v["naive_union"] for v in ps.values()),
        "c_beats_a_count": sum(v["tagwise"] > v["alone"] for v in ps.values()),
    }
    out["mean_macro_f1"] = {k: round(float(np.mean([v[k] for v in ps.values()])), 4)
                            for k in ("alone", "naive_union", "masked_union", "tagwise", "tagwise_agnostic")}
    print("targets:", out["targets"], "seconds:", out["seconds"])
    project.close()
    return out


# -- part 2: cross-lingual ------------------------------------------------------------------
XED_LANGS = ["de", "it", "pt", "nl", "ru", "fi"]
UMSAB_LANGS = ["ar", "en", "fr", "de", "hi", "it", "pt", "es"]


def _cross_lingual_group(specs: list[str], train_source: str, quick: bool) -> dict:
    project = build_project(None, specs)
    space = project.labels
    ex, X, Y, known, train, test = prepare(project, quick)
    src = ex.sources
    rows = train & (src == train_source)
    english = MultiLabelLinear(C=SHARED_C, pos_weight=POS_WEIGHT, cv=3, max_iter=BASELINE_ITER).fit(X[rows], Y[rows], known[rows])
    out = {}
    for s in sorted(set(src)):
        test_rows = test & (src == s)
        cols = own_columns(ex, space, s)
        own_rows = train & (src == s)
        in_lang = english if s == train_source else MultiLabelLinear(C=SHARED_C, pos_weight=POS_WEIGHT, cv=3, max_iter=BASELINE_ITER).fit(
            X[own_rows], Y[own_rows], known[own_rows])
        zero_shot = macro_f1(Y[test_rows], english.predict(X[test_rows]), cols)
        own = macro_f1(Y[test_rows], in_lang.predict(X[test_rows]), cols)
        lang = str(ex.languages[test_rows][0])
        out[lang] = {"source": s, "train_en": round(zero_shot, 4), "in_language": round(own, 4),
                     "gap": round(own - zero_shot, 4), "n_test": int(test_rows.sum()),
                     "n_train_in_language": int(own_rows.sum())}
        print(f"  {lang:4s} {s:12s} train-en {zero_shot:.4f}  in-language {own:.4f}  gap {own - zero_shot:+.4f}")
    project.close()
    return out


def run_lingual(quick: bool) -> dict:
    print("XED: train on English, test on projections (macro-F1 over 8 Plutchik labels)")
    xed = _cross_lingual_group(["emotion_xed_en"] + [f"emotion_xed_{lang}" for lang in XED_LANGS], "xed_en", quick)
    print("UMSAB sentiment: train on English, test each language (macro-F1 over 3 classes)")
    umsab = _cross_lingual_group([f"sentiment_umsab_{lang}" for lang in UMSAB_LANGS], "umsab_en", quick)
    summary = {}
    for name, res in (("xed", xed), ("umsab", umsab)):
        other = [v for k, v in res.items() if k != "en"]
        summary[name] = {"mean_train_en": round(float(np.mean([v["train_en"] for v in other])), 4),
                         "mean_in_language": round(float(np.mean([v["in_language"] for v in other])), 4),
                         "mean_gap": round(float(np.mean([v["gap"] for v in other])), 4)}
    print("summary:", summary)
    return {"xed": xed, "umsab": umsab, "summary": summary}


# -- part 3: news ---------------------------------------------------------------------------
def run_news(quick: bool) -> dict:
    from tagwise.workflows.transfer import transfer_evaluation

    project = build_project(TAXONOMIES / "news.yaml", ["news_reuters", "news_ag_news"])
    t0 = time.perf_counter()
    result = transfer_evaluation(project, model_params={"C": SHARED_C})
    result["seconds"] = round(time.perf_counter() - t0, 1)
    from tagwise.evaluate.transfer import format_transfer

    print(format_transfer(result))
    # the two schemas share one label (business); also report its F1 per direction
    ex, X, Y, known, train, test = prepare(project, quick)
    space = project.labels
    k = space.index("business")
    detail = {}
    for a, b in (("reuters", "ag_news"), ("ag_news", "reuters")):
        rows = train & (ex.sources == a)
        model = MultiLabelLinear(C=SHARED_C, pos_weight=POS_WEIGHT, cv=3, max_iter=BASELINE_ITER).fit(X[rows], Y[rows], known[rows])
        te = test & (ex.sources == b)
        pred = model.predict(X[te])[:, k]
        y = Y[te, k]
        tp = int((pred & y).sum())
        detail[f"{a}->{b}"] = {"business_precision": round(tp / max(int(pred.sum()), 1), 4),
                               "business_recall": round(tp / max(int(y.sum()), 1), 4),
                               "business_f1": round(2 * tp / max(int(pred.sum() + y.sum()), 1), 4),
                               "train_business_positive_rate": round(float(Y[rows, k][known[rows, k]].mean()), 4)}
    print("business label per direction:", detail)
    result["business_detail"] = detail
    project.close()
    return result


# -- part 4: taxonomy suggest ---------------------------------------------------------------
def run_suggest(quick: bool) -> dict:
    from tagwise.workflows.taxonomy import evaluate_suggestions

    project = build_project(TAXONOMIES / "emotion.yaml", EMOTION_SPECS)
    ekman = json.loads((ROOT.parent / "shared" / "data" / "goemotions" / "ekman_mapping.json").read_text())
    t0 = time.perf_counter()
    result = evaluate_suggestions(project, ekman_mapping=ekman)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for key, val in result["precision"].items():
        print(f"  {key:40s} {val}")
    project.close()
    return result


def summarize_seeds(runs: list[dict]) -> dict:
    """Per-source mean ± sample sd over seeds of the emotion part's (a), (b), (c) macro-F1, the
    per-seed win/loss count of (c) against (a) and (b), and the target counts on the means
    (runs: the emotion part's results, one per seed, all from this run)."""
    out = {"seeds": [r.get("seed", 0) for r in runs], "per_source": {},
           "c_beats_a_count_per_seed": [r["targets"]["c_beats_a_count"] for r in runs]}
    for s in EMOTION_SOURCES:
        per = {k: [r["per_source"][s][k] for r in runs] for k in ("alone", "naive_union", "tagwise")}
        row = {k: mean_sd(v) for k, v in per.items()}
        row["c_minus_a_mean"] = round(row["tagwise"]["mean"] - row["alone"]["mean"], 4)
        row["c_vs_a"] = compare(per["tagwise"], per["alone"])
        row["c_vs_b"] = compare(per["tagwise"], per["naive_union"])
        out["per_source"][s] = row
        print(f"  {s:20s} (a) {fmt_mean_sd(per['alone'])}  (b) {fmt_mean_sd(per['naive_union'])}  "
              f"(c) {fmt_mean_sd(per['tagwise'])}  c vs a {row['c_vs_a']['wins']}-{row['c_vs_a']['losses']}")
    ps = out["per_source"]
    out["targets_on_means"] = {
        "c_beats_b_on_every_source": all(v["tagwise"]["mean"] > v["naive_union"]["mean"] for v in ps.values()),
        "c_beats_a_count": sum(v["c_minus_a_mean"] > 0 for v in ps.values())}
    print("targets on the seed means:", out["targets_on_means"], "per seed:", out["c_beats_a_count_per_seed"])
    return out


PARTS = {"emotion": run_emotion, "lingual": run_lingual, "news": run_news, "suggest": run_suggest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="cap training rows per source at 4000")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "multisource.json"))
    parser.add_argument("--source-weight", default=None, choices=["sqrt", "balanced"],
                        help="MultiSourceLinear source_weight for the emotion part")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="emotion part: holdout split, subsample and folds; every seed runs here and is "
                             "summarised (mean ± sd, wins) in this file")
    parser.add_argument("--C", type=float, default=4.0, help="inverse L2 strength, every method")
    parser.add_argument("--pos-weight", default="sqrt", choices=["sqrt", "none"], help="every method")
    args = parser.parse_args()
    global SOURCE_WEIGHT, SHARED_C, POS_WEIGHT, SEED
    SOURCE_WEIGHT = args.source_weight
    SHARED_C = args.C
    POS_WEIGHT = None if args.pos_weight == "none" else args.pos_weight
    results = {}  # this run only: nothing is read back from an earlier file
    for part in args.parts:
        for seed in (args.seeds if part == "emotion" else args.seeds[:1]):
            SEED = seed
            print(f"== {part} (seed {seed}) ==")
            t0 = time.perf_counter()
            r = PARTS[part](args.quick)
            r["wall_seconds"] = round(time.perf_counter() - t0, 1)
            r["quick"] = args.quick
            r["peak_rss_mb"] = round(peak_rss_mb(), 1)
            if part == "emotion":
                results.setdefault("emotion_runs", []).append(r)
                results["emotion"] = results["emotion_runs"][0]
            else:
                results[part] = r
            save_results(args.out, results)
    if "emotion_runs" in results and len(results["emotion_runs"]) > 1:
        results["emotion_seeds"] = summarize_seeds(results["emotion_runs"])
    print(f"wrote {save_results(args.out, results)}")


if __name__ == "__main__":
    main()
