"""Sparse crowds (issue 27 section 7): why the default consensus gains little over majority vote where
one or two people saw each example, and what the sparse-crowd classifier prior changes.

Crowds: ``tests/test_scenarios.py``'s ``simulate_crowd`` (6 careful annotators, one or two per example,
each with a sensitivity per label ``sigmoid(skill + ease)`` so that some labels are hard for everybody,
specificity 0.8-0.999; plus an always-yes and a random annotator on 30% of the examples each).

Parts:
- ``strength``: the annotator model alone (no classifier) with its Beta prior strength 16 (default),
  4 and 1, against plain Dawid-Skene and majority vote, consensus macro-F1 against the gold.
  Choice crowds: SemEval *train* and the first 6,000 GoEmotions *train* comments, seeds 100-101,
  ease spread 0 and 1.5; reported crowds: the scenario tests' (GoEmotions test, SemEval test, XED en,
  3,000 rows each, seeds 0-2, spread 1.5).
- ``project``: what ``tagwise labels export`` writes for a crowd over 400 SemEval tweets in the long
  layout beside GoEmotions (the scenario test's project), ``--consensus model`` (default) vs
  ``model-classifier`` vs ``majority``, with plain Dawid-Skene on the same votes. Choice: train tweets,
  seeds 100-101; the scenario test's crowd (test tweets, seed 3) is listed too.

Run: OMP_NUM_THREADS=1 TAGWISE_CACHE_DIR=/work/.cache/embeddings PYTHONPATH=src \
     python bench/bench_consensus_sparse.py [--part strength project]
Results: bench/results/consensus_sparse.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from common import save_results  # noqa: E402
import test_scenarios as T  # noqa: E402  (the scenario tests' crowd simulation and plain Dawid-Skene)

from tagwise.learn.consensus import Annotations, ConsensusModel, majority_vote  # noqa: E402


def gold_train(name: str) -> np.ndarray:
    if name == "semeval_train":
        rows = (T.DATA / "semeval2018_ec_en" / "E-c-En-train.txt").read_text(encoding="utf-8").splitlines()[1:]
        return np.array([[int(x) for x in r.split("\t")[2:13]] for r in rows], np.uint8)
    lines = (T.DATA / "goemotions" / "original_train.tsv").read_text(encoding="utf-8").splitlines()[:6000]
    Y = np.zeros((len(lines), 28), np.uint8)
    for i, line in enumerate(lines):
        Y[i, [int(x) for x in line.split("\t")[1].split(",")]] = 1
    return Y[:, :27]


def strength_row(gold, seed, spread):
    ex, an, Y, names = T.simulate_crowd(gold, seed, spread=spread)
    ann = Annotations.from_arrays(ex, an, Y, n_examples=len(gold), n_annotators=len(names))
    row = {f"tagwise_c{c:g}": T.crowd_macro_f1(gold, ConsensusModel(prior_strength=c).fit(ann).proba_ >= 0.5)
           for c in (16.0, 4.0, 1.0)}
    row["dawid_skene"] = T.crowd_macro_f1(gold, T.dawid_skene(ex, an, Y, len(gold)) >= 0.5)
    row["majority"] = T.crowd_macro_f1(gold, majority_vote(ann, tie=0.5) > 0.5)
    return row


def part_strength() -> dict:
    out = {}
    for name in ("semeval_train", "goemotions_train6k"):
        gold = gold_train(name)
        for spread in (0.0, 1.5):
            for seed in (100, 101):
                out[f"choice/{name}/spread{spread}/seed{seed}"] = strength_row(gold, seed, spread)
                print(list(out)[-1], {k: round(v, 3) for k, v in out[list(out)[-1]].items()}, flush=True)
    for dataset, seed in T.CROWD_SETTINGS:
        out[f"report/{dataset}/spread1.5/seed{seed}"] = strength_row(T.read_gold(dataset), seed, 1.5)
        print(list(out)[-1], {k: round(v, 3) for k, v in out[list(out)[-1]].items()}, flush=True)
    return out


def project_row(tweets: str, seed: int) -> dict:
    from tagwise import Project
    from tagwise.workflows.labels import export_labels

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        original = T.DATA / "semeval2018_ec_en" / "E-c-En-test-gold.txt"
        if tweets == "train":   # crowd_files reads the test file: point it at the train file instead
            link = tmp / "data" / "semeval2018_ec_en"
            link.mkdir(parents=True)
            (link / "E-c-En-test-gold.txt").symlink_to(T.DATA / "semeval2018_ec_en" / "E-c-En-train.txt")
            saved, T.DATA = T.DATA, tmp / "data"
            try:
                gold, items, (ex, an, Y) = T.crowd_files(tmp, 400, 200, seed)
            finally:
                T.DATA = saved
        else:
            assert original.exists()
            gold, items, (ex, an, Y) = T.crowd_files(tmp, 400, 200, seed)
        specs = [T.copy_spec(n, tmp) for n in ("emotion_goemotions.yaml", "crowd_semeval.yaml")]
        project = Project.init(tmp / "p", taxonomy=T.HERE / "emotion.yaml")
        try:
            for spec in specs:
                project.add_source(spec)
            project.embed(progress=False)
            row = {}
            for method in ("model", "model-classifier", "majority"):
                export_labels(project, tmp / f"{method}.jsonl", consensus=method)
                rows = [json.loads(x) for x in (tmp / f"{method}.jsonl").read_text().splitlines()]
                by_id = {r["example_id"]: r for r in rows if r["source"] == "crowd" and r["split"] == "train"}
                decided = np.array([[n in by_id[i]["labels"] for n in T.SEMEVAL_TAXONOMY_NAMES] for i in items])
                row[f"export_{method}"] = T.crowd_macro_f1(gold, decided)
        finally:
            project.close()
    ann = Annotations.from_arrays(ex, an, Y, n_examples=len(gold), n_annotators=int(an.max()) + 1)
    plain = ConsensusModel().fit(ann).proba_
    n_judged = np.bincount(ex, minlength=len(gold))[:, None]
    # before the sparse-crowd rule, export wrote the annotator model's consensus for examples with two
    # or more judgements and the stored labels (the one vote) for the others
    row["export_model_before"] = T.crowd_macro_f1(gold, np.where(n_judged >= 2, plain >= 0.5,
                                                                 majority_vote(ann, tie=0.5) > 0.5))
    row["model_without_classifier_all_examples"] = T.crowd_macro_f1(gold, plain >= 0.5)
    row["dawid_skene"] = T.crowd_macro_f1(gold, T.dawid_skene(ex, an, Y, len(gold)) >= 0.5)
    return row


def part_project() -> dict:
    out = {}
    for tweets, seed in (("train", 100), ("train", 101), ("test", 3)):
        key = f"{'choice' if tweets == 'train' else 'scenario test'}/semeval_{tweets}/seed{seed}"
        out[key] = project_row(tweets, seed)
        print(key, {k: round(v, 3) for k, v in out[key].items()}, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", nargs="+", default=["strength", "project"], choices=["strength", "project"])
    ap.add_argument("--out", default="consensus_sparse", help="results name under bench/results")
    args = ap.parse_args()
    res = {}
    if "strength" in args.part:
        res["strength"] = part_strength()
    if "project" in args.part:
        res["project"] = part_project()
    print("wrote", save_results(args.out, res))  # whole, with the command that wrote it


if __name__ == "__main__":
    main()
