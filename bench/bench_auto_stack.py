"""Does `tagwise train --budget-minutes N` (mode auto) pick a good encoder stack? (issue 30)

On SemEval-2018 E-c (English tweets, 11 emotions; no default was tuned on it), per seed a seeded
draw of ``--n-labeled`` train tweets is the project's only source. Three trainings of the same
project, each through ``workflows.train`` as the CLI runs it, are scored on the whole SemEval test
split (macro-F1 over the 11 labels):

- auto with a budget: mode and encoder stack chosen together by 3-fold CV on the drawn rows (the
  project's encoder ``use``, and it stacked with the bundled MiniLM and e5 when they fit the budget);
- fixed USE: plain `train` (mode auto, encoder use) — the default;
- fixed USE+MiniLM: `train --encoder use+minilm` (mode auto).

Every candidate the budgeted run tried is also trained and scored on test, to show the best choice
in hindsight. The test split plays no part in any choice. Embeddings go through the shared cache
(``TAGWISE_CACHE_DIR``): the first seed pays for embedding what the cache lacks, and the budget counts it.

    OMP_NUM_THREADS=2 python bench/bench_auto_stack.py [--n-labeled 1500] [--seeds 0 1 2] [--budget-minutes 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, save_results  # noqa: E402
from _fewshot_data import macro_f1  # noqa: E402
from _stats import compare, mean_sd  # noqa: E402

os.environ.setdefault("TAGWISE_CACHE_DIR", str(CACHE))  # the projects below share the bench's cache

from tagwise.project import Project  # noqa: E402
from tagwise.workflows.models import load_project_model  # noqa: E402
from tagwise.workflows.train import train  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semeval2018_ec_en"
NAMES = ["anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism", "sadness",
         "surprise", "trust"]


def read_tsv(path: Path) -> tuple[str, list[str], list[str], np.ndarray]:
    """(header line, data lines, texts, (n, 11) labels) of a SemEval E-c file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [ln for ln in lines[1:] if ln.strip()]
    cols = header.split("\t")
    at = [cols.index(n) for n in NAMES]
    cells = [ln.split("\t") for ln in rows]
    return header, rows, [c[cols.index("Tweet")] for c in cells], \
        np.array([[int(c[i]) for i in at] for c in cells], dtype=np.uint8)


def test_f1(project: Project, model: str, texts: list[str], Y: np.ndarray) -> float:
    loaded = load_project_model(project, model)
    X = project.embed_texts(texts, loaded.encoder, progress=False)[0]
    return round(macro_f1(Y, loaded.head.predict(X, texts=texts)), 4)


def run(seed: int, n_labeled: int, budget: float, folder: Path, test: tuple[list[str], np.ndarray]) -> dict:
    header, rows, _, _ = read_tsv(DATA / "E-c-En-train.txt")
    pick = np.sort(np.random.default_rng(seed).permutation(len(rows))[:n_labeled])
    sub = folder / f"train-{seed}.tsv"
    sub.write_text("\n".join([header, *(rows[i] for i in pick)]) + "\n", encoding="utf-8")
    spec = {"name": "semeval", "format": "tsv", "quoting": "none", "path": str(sub), "split": "train",
            "columns": {"text": "Tweet", "id": "ID"}, "labels": {"format": "onehot", "onehot_columns": NAMES}}
    (folder / f"spec-{seed}.yaml").write_text(yaml.safe_dump(spec))
    project = Project.init(folder / f"p{seed}")
    project.add_source(folder / f"spec-{seed}.yaml")
    texts, Y = test
    out: dict = {"seed": seed, "n_labeled": int(len(pick))}
    seconds, scores = {}, {}
    for key, kwargs in (("use", {}), ("auto_budget", {"budget_minutes": budget}),
                        ("use+minilm", {"encoder": "use+minilm"})):
        t0 = time.perf_counter()
        result = train(project, seed=seed, progress=False, **kwargs)
        seconds[key] = round(time.perf_counter() - t0, 1)
        scores[key] = test_f1(project, result["model"], texts, Y)
        out[f"mode_{key}"] = result["mode"]
        if key == "auto_budget":
            out["encoder_choice"] = result["encoder_choice"]
            out["chosen"] = result["encoder"]
    # every candidate the budgeted run tried, trained alone and scored on test (hindsight only)
    hindsight = {}
    for row in out["encoder_choice"]["candidates"]:
        if row["status"] != "tried":
            continue
        name = row["encoder"]
        hindsight[name] = scores[name] if name in scores else \
            test_f1(project, train(project, encoder=name, seed=seed, progress=False)["model"], texts, Y)
    out.update(test=scores, seconds=seconds, test_of_each_tried=hindsight,
               cv_of_each_tried={r["encoder"]: r["cv"] for r in out["encoder_choice"]["candidates"]
                                 if r["status"] == "tried"})
    out["test_best_in_hindsight"] = max(hindsight.values())
    print({k: out[k] for k in ("seed", "chosen", "test", "seconds", "cv_of_each_tried", "test_of_each_tried")},
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-labeled", type=int, default=1500)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--budget-minutes", type=float, default=10.0)
    args = ap.parse_args()
    _, _, test_texts, test_Y = read_tsv(DATA / "E-c-En-test-gold.txt")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            runs.append(run(seed, args.n_labeled, args.budget_minutes, Path(tmp), (test_texts, test_Y)))
    per = {key: [r["test"][key] for r in runs] for key in ("auto_budget", "use", "use+minilm")}
    summary = {
        "test_macro_f1": {**{k: mean_sd(v) for k, v in per.items()},
                          "best_in_hindsight": mean_sd([r["test_best_in_hindsight"] for r in runs])},
        "auto_budget_vs_use": compare(per["auto_budget"], per["use"]),
        "auto_budget_vs_use+minilm": compare(per["auto_budget"], per["use+minilm"]),
        "chosen": [r["chosen"] for r in runs],
        "train_seconds": {k: mean_sd([r["seconds"][k] for r in runs], 1) for k in ("auto_budget", "use", "use+minilm")},
    }
    for key, value in summary.items():
        print(key, value)
    save_results("auto_stack", {"protocol": [ln for ln in __doc__.strip().splitlines()[2:17] if ln.strip()],
                                "dataset": "semeval2018_ec_en", "n_test": len(test_texts),
                                "budget_minutes": args.budget_minutes, "runs": runs, "summary": summary})


if __name__ == "__main__":
    main()
