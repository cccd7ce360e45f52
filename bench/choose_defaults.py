"""Issue 16: re-choose MultiLabelLinear's defaults on training data only, then report on held-out settings.

The head's defaults (C, pos_weight, the iteration cap and the fold fits' share of it, the threshold
shrinkage of ``best_f1_thresholds``) were first set from test-split figures. Here they are chosen
again without reading any test split:

Choice (training split only)
- By default GoEmotions and Reuters (--choice-datasets), official train split (or a seeded
  --choice-max-rows subsample of it), cut into 3 seeded outer folds (seed 0). Include a dataset
  with many rare labels: a choice made without one (GoEmotions + SemEval) picked pos_weight=None,
  which lost 0.05 macro-F1 on MULAN rcv1subset1500 (bench/results/protocol.md).
- For each candidate, the head is fitted on 2 outer folds exactly as tagwise fits it (its own
  5-fold internal CV yields out-of-fold probabilities ``oof_proba_``); per-label thresholds are
  tuned from those out-of-fold probabilities with each candidate shrinkage (so thresholds are
  tuned inside the training fold) and the head is scored by macro-F1 on the third fold (labels
  with a positive in that fold, as ``multilabel_report`` averages).
- Criterion: the mean over the datasets of the mean over the 3 folds; the best candidate wins.
- Search: stage 1 crosses C (0.25, 1, 4) with pos_weight (None, "auto", "sqrt") at the old
  iteration cap; stage 1b tries half and double the best C; stage 2 tries iteration caps 50 and
  200 at the best (C, pos_weight) (fold fits keep their max_iter // 3 share: a budget limit, see
  ITER_GRID). The shrinkage costs no refit and is chosen jointly with every fitted candidate.

Report (test splits, after the choice; nothing here feeds back into it)
- old vs chosen defaults, test macro-F1 (and micro-F1, fit seconds, same process, same thread):
  * GoEmotions, Reuters: seed 0 = full train, random_state 0 (what bench_core.py runs); held-out
    seeds 1-4 = a seeded 90% subsample of train with random_state=seed (new inner folds too);
  * datasets that took no part in the choice (--held-out-datasets): SemEval-2018 E-c (official
    train/test) and XED-en (no official split: a seeded 80/20 split per seed), seeds 1-4; also
    ``mulan_<name>`` (MULAN ARFF, bag-of-words features, many rare labels), e.g. mulan_Arts1500.
  mean +- sd over seeds 1-4. --report-only '{...}' reports given values without a choice.
The old defaults' test runs are scheduled during the choice to keep workers busy; the choice code
never reads them (they are collected after it).

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/choose_defaults.py [--workers 2] [--quick]
Writes bench/results/defaults.json (--out).
"""
from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_dataset, save_results  # noqa: E402

from tagwise.learn.linear import MultiLabelLinear  # noqa: E402
from tagwise.learn.thresholds import best_f1_thresholds  # noqa: E402

OLD = {"C": 1.0, "pos_weight": "auto", "max_iter": 100, "fold_iter_divisor": 3, "shrink": 5.0}
# Grids are small because the machine is shared (2 cores, 4 engineers): one full-size fit costs
# minutes under that load. C and pos_weight first, then the iteration cap at their best.
C_GRID = (0.25, 1.0, 4.0)  # stage 1; stage 1b tries half and double of the best C
POS_WEIGHT_GRID = (None, "auto", "sqrt")  # "balanced" (n_neg / n_pos) is not tried
ITER_GRID = ((50, 3), (200, 3))  # (max_iter, fold fits get max(20, max_iter // divisor)); (100, 3) is stage 1
SHRINK_GRID = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
CHOICE_DATASETS = ("goemotions", "reuters")
HELD_OUT_DATASETS = ("semeval2018", "xed_en")
HELD_OUT_SEEDS = (1, 2, 3, 4)


class Head(MultiLabelLinear):
    """MultiLabelLinear with the fold fits' iteration share as a parameter (src fixes max_iter // 3).

    ``fit`` passes an explicit ``max_iter`` only for the internal CV fold fits (the final fit gets
    None), so overriding ``_fit_once`` changes exactly those fits and nothing else.
    """

    def __init__(self, C=1.0, C_grid=(0.25, 1.0, 4.0), pos_weight="auto", thresholds="cv", cv=5,
                 max_iter=100, random_state=0, fold_iter_divisor=3):
        super().__init__(C=C, C_grid=C_grid, pos_weight=pos_weight, thresholds=thresholds, cv=cv,
                         max_iter=max_iter, random_state=random_state)
        self.fold_iter_divisor = fold_iter_divisor

    def _fit_once(self, X, Y, M, C_per_label, W0=None, max_iter=None, **solver_args):
        if max_iter is not None:
            max_iter = max(20, self.max_iter // self.fold_iter_divisor)
        return super()._fit_once(X, Y, M, C_per_label, W0=W0, max_iter=max_iter, **solver_args)


def macro_f1(Y: np.ndarray, Z: np.ndarray) -> float:
    """Macro-F1 over labels with a positive in Y (the rule of tagwise's multilabel_report)."""
    Y, Z = Y.astype(bool), Z.astype(bool)
    tp = (Y & Z).sum(0)
    denom = 2 * tp + (~Y & Z).sum(0) + (Y & ~Z).sum(0)
    has = Y.sum(0) > 0
    return float(np.mean(2 * tp[has] / np.maximum(denom[has], 1))) if has.any() else float("nan")


def micro_f1(Y: np.ndarray, Z: np.ndarray) -> float:
    Y, Z = Y.astype(bool), Z.astype(bool)
    tp = (Y & Z).sum()
    return float(2 * tp / max(2 * tp + (~Y & Z).sum() + (Y & ~Z).sum(), 1))


def thresholds_for(model: MultiLabelLinear, Y: np.ndarray, shrink: float) -> np.ndarray:
    """The estimator's own threshold rule (``best_f1_thresholds`` on its oof_proba_) at a given shrinkage."""
    th = best_f1_thresholds(Y, model.oof_proba_, None, shrink=shrink)
    th[model.support_ == 0] = 1.0 + 1e-9
    return th


def fit_head(cfg: dict, X, Y, random_state: int = 0):
    t0 = time.perf_counter()
    model = Head(C=cfg["C"], pos_weight=cfg["pos_weight"], max_iter=cfg["max_iter"],
                 fold_iter_divisor=cfg["fold_iter_divisor"], random_state=random_state).fit(X, Y)
    return model, time.perf_counter() - t0


def key_of(cfg: dict) -> str:
    return (f"C={cfg['C']}|pw={cfg['pos_weight']}|iter={cfg['max_iter']}"
            f"|fold_div={cfg['fold_iter_divisor']}")


MULAN = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mulan"


def load_mulan(name: str):
    """A MULAN/MEKA ARFF (``-C k``: the first k attributes are the labels, dense rows) as
    (X (n, d) float32, Y (n, k) uint8, splits all "train"). Features are bag-of-words / tf-idf, not
    sentence embeddings: a held-out check of the head with many rare labels, cheap to run."""
    import gzip
    import re

    with gzip.open(MULAN / f"{name}.arff.gz", "rt") as fh:
        lines = fh.read().splitlines()
    k = int(re.search(r"-C (\d+)", next(ln for ln in lines if ln.upper().startswith("@RELATION"))).group(1))
    rows = [ln.split(",") for ln in lines if ln and not ln.startswith(("@", "%"))]
    A = np.asarray(rows, dtype=np.float32)
    return A[:, k:], A[:, :k].astype(np.uint8), np.array(["train"] * len(A))


def load_train_test(name: str):
    if name.startswith("mulan_"):
        return load_mulan(name[len("mulan_"):])
    d = load_dataset(name)
    return d["X"], d["Y"], d["splits"]


_DATA: dict = {}  # dataset -> (X, Y) training rows, loaded once per worker process
_CHOICE_MAX_ROWS = None  # --choice-max-rows: a seeded subsample of each training split for the choice


_WAIT_FOR_CACHE = False  # --wait-for-cache: another process is embedding; wait for it, do not embed twice


def wait_for_cache(name: str, poll_s: float = 30.0, max_wait_s: float = 3600.0) -> None:
    """Block until every text of the dataset is in the shared embedding cache (or max_wait_s)."""
    if name.startswith("mulan_"):
        return
    from common import BENCH, CACHE
    from tagwise.encoders import get_encoder
    from tagwise.encoders.cache import EmbeddingCache, text_keys
    from tagwise.sources import ingest, load_spec

    keys = np.unique(text_keys(ingest(load_spec(BENCH / "specs" / f"{name}.yaml")).texts))
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        if (EmbeddingCache(CACHE, get_encoder("use").id).lookup(keys) >= 0).all():
            return
        time.sleep(poll_s)


def choice_data(name: str):
    """(X, Y) of the TRAINING split only (labels without a training positive dropped)."""
    if name not in _DATA:
        if _WAIT_FOR_CACHE:
            wait_for_cache(name)
        X, Y, splits = load_train_test(name)
        train = splits == "train"
        keep = Y[train].sum(0) > 0
        X, Y = X[train], Y[train][:, keep]
        if _CHOICE_MAX_ROWS and len(X) > _CHOICE_MAX_ROWS:
            rows = np.sort(np.random.default_rng(0).permutation(len(X))[:_CHOICE_MAX_ROWS])
            X, Y = X[rows], Y[rows]
        _DATA[name] = (X, Y)
    return _DATA[name]


def _fold_task(task):
    """One outer fold of one candidate: (key, dataset, fold, {shrink: macro-F1}, fit seconds)."""
    key, cfg, ds, f, n_folds = task
    X, Y = choice_data(ds)
    folds = np.random.default_rng(0).permutation(np.arange(len(X)) % n_folds)
    tr, va = folds != f, folds == f
    model, secs = fit_head(cfg, X[tr], Y[tr])
    P = model.predict_proba(X[va])
    return key, ds, f, {s: macro_f1(Y[va], P >= thresholds_for(model, Y[tr], s)[None, :]) for s in SHRINK_GRID}, secs


def cv_scores_many(cfgs: list, n_folds: int, pool, between=(), after=()) -> tuple[dict, list]:
    """{key: {"per_shrink": {shrink: {dataset: [macro-F1 per fold]}}, "fit_seconds": {dataset: [...]}}}.

    ``between``: (function, task) pairs queued after the first dataset's fits and before the
    others' (work that does not depend on this stage, run while a later dataset is still being
    embedded), ``after``: pairs queued after all fits; their handles are returned untouched,
    nothing here reads them.
    """
    tasks = [[(key_of(c), c, ds, f, n_folds) for c in cfgs for f in range(n_folds)] for ds in CHOICE_DATASETS]
    handles = [pool.apply_async(_fold_task, (t,)) for t in tasks[0]]
    early = [pool.apply_async(fn, (t,)) for fn, t in between]
    handles += [pool.apply_async(_fold_task, (t,)) for ts in tasks[1:] for t in ts]
    early += [pool.apply_async(fn, (t,)) for fn, t in after]
    out = {key_of(c): {"per_shrink": {s: {ds: [None] * n_folds for ds in CHOICE_DATASETS} for s in SHRINK_GRID},
                       "fit_seconds": {ds: [None] * n_folds for ds in CHOICE_DATASETS}} for c in cfgs}
    for h in tqdm(handles, desc="outer folds"):
        key, ds, f, by_shrink, secs = h.get()
        for s, v in by_shrink.items():
            out[key]["per_shrink"][s][ds][f] = v
        out[key]["fit_seconds"][ds][f] = secs
    return out, early


def criterion(per_dataset: dict) -> float:
    return float(np.mean([np.mean(v) for v in per_dataset.values()]))


def choose(n_folds: int, c_grid, pw_grid, iter_grid, pool, between=(), after=()) -> dict:
    """The staged search. ``between``: independent work queued during stage 1 (see cv_scores_many)."""
    table = {}
    early = []

    def run(cfgs, between=(), after=()):
        cfgs = [c for c in cfgs if key_of(c) not in table]
        scores, handles = cv_scores_many(cfgs, n_folds, pool, between, after)
        early.extend(handles)
        for k, r in scores.items():
            cfg = next(c for c in cfgs if key_of(c) == k)
            table[k] = {"config": cfg, **r, "criterion": {str(s): criterion(v) for s, v in r["per_shrink"].items()}}
            best_s = max(r["per_shrink"], key=lambda s: criterion(r["per_shrink"][s]))
            print(f"  {k:45s} best shrink {best_s:>4}: {criterion(r['per_shrink'][best_s]):.4f}  "
                  f"(shrink 5: {criterion(r['per_shrink'][5.0]):.4f})  "
                  f"fit {np.mean([np.mean(v) for v in r['fit_seconds'].values()]):.1f}s", flush=True)

    def best_config():
        return max(table.values(), key=lambda r: max(r["criterion"].values()))["config"]

    base = dict(max_iter=OLD["max_iter"], fold_iter_divisor=OLD["fold_iter_divisor"])
    run([dict(C=c, pos_weight=pw, **base) for c, pw in itertools.product(c_grid, pw_grid)], between, after)  # stage 1
    best1 = best_config()
    run([dict(best1, C=best1["C"] * f) for f in (0.5, 2.0)])                 # stage 1b
    best1 = best_config()
    run([dict(best1, max_iter=m, fold_iter_divisor=dv) for m, dv in iter_grid])  # stage 2
    best = max(table.values(), key=lambda r: max(r["criterion"].values()))
    best_shrink = float(max(best["criterion"], key=lambda s: best["criterion"][s]))
    old = table.get(key_of({k: OLD[k] for k in ("C", "pos_weight", "max_iter", "fold_iter_divisor")}))
    return {"chosen": {**best["config"], "shrink": best_shrink},
            "chosen_cv_macro_f1": best["criterion"][str(best_shrink)],
            "old_cv_macro_f1": old["criterion"][str(OLD["shrink"])] if old else None,
            "candidates": table, "early": early}


def test_run(cfg: dict, X, Y, train_idx, test_idx, seed: int) -> dict:
    keep = Y[train_idx].sum(0) > 0
    Ytr, Yte = Y[train_idx][:, keep], Y[test_idx][:, keep]
    model, secs = fit_head(cfg, X[train_idx], Ytr, random_state=seed)
    Z = model.predict_proba(X[test_idx]) >= thresholds_for(model, Ytr, cfg["shrink"])[None, :]
    return {"macro_f1": macro_f1(Yte, Z), "micro_f1": micro_f1(Yte, Z), "fit_s": secs}


def ms(v) -> dict:
    v = np.asarray(v, dtype=np.float64)
    return {"mean": round(float(v.mean()), 4), "sd": round(float(v.std(ddof=1)), 4) if len(v) > 1 else 0.0,
            "n": int(len(v))}


_REPORT_DATA: dict = {}  # dataset -> (X, Y, splits), loaded once per process
_OFFICIAL_SEED0 = True  # also report the choice datasets' official split (full train, seed 0)
_REPORT_TRAIN_ROWS = None  # --report-train-rows: held-out seeds train on this many rows (default 90%)


def report_data(name: str):
    if name not in _REPORT_DATA:
        if _WAIT_FOR_CACHE:
            wait_for_cache(name)
        _REPORT_DATA[name] = load_train_test(name)
    return _REPORT_DATA[name]


def _split(name: str, seed: int):
    X, Y, splits = report_data(name)
    rng = np.random.default_rng(seed)
    if (splits == "test").any():
        tr_all, te = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
        n_tr = int(0.9 * len(tr_all)) if _REPORT_TRAIN_ROWS is None else min(_REPORT_TRAIN_ROWS, int(0.9 * len(tr_all)))
        tr = tr_all if seed == 0 else np.sort(rng.permutation(tr_all)[:n_tr])
    else:  # XED-en: one file, a seeded 80/20 split
        perm = rng.permutation(len(X))
        n_te = int(0.2 * len(X))
        te, tr = np.sort(perm[:n_te]), perm[n_te:]
        tr = np.sort(tr if _REPORT_TRAIN_ROWS is None else tr[:_REPORT_TRAIN_ROWS])
    return tr, te


def _report_task(task):
    name, seed, c, cfg = task
    X, Y, _ = report_data(name)
    tr, te = _split(name, seed)
    return name, seed, c, test_run(cfg, X, Y, tr, te, seed)


def report_tasks(configs: dict, datasets, seeds) -> list:
    return [(name, seed, c, cfg) for name in datasets
            for seed in ([0] if name in CHOICE_DATASETS and _OFFICIAL_SEED0 else []) + list(seeds)
            for c, cfg in configs.items()]


def report(configs: dict, datasets, seeds, pool, early=()) -> dict:
    """Test figures of each config; ``early``: handles of report tasks already queued (old defaults)."""
    rows = {name: {c: {} for c in configs} for name in datasets}
    for h in tqdm(early, desc="test report (queued early)"):
        name, seed, c, r = h.get()
        rows[name][c][seed] = r
    tasks = [t for t in report_tasks(configs, datasets, seeds) if t[1] not in rows[t[0]][t[2]]]
    for name, seed, c, r in tqdm(pool.imap_unordered(_report_task, tasks), total=len(tasks), desc="test report"):
        rows[name][c][seed] = r
    out = {}
    for name in datasets:
        has_split = (report_data(name)[2] == "test").any()
        n_rows = "90% of train" if _REPORT_TRAIN_ROWS is None else f"min({_REPORT_TRAIN_ROWS}, 90% of train) rows"
        res = {"protocol": (f"official test split; seed 0: full train, random_state 0; other seeds: a seeded {n_rows}"
                            if has_split else f"seeded 80/20 split per seed; train capped at {_REPORT_TRAIN_ROWS}")}
        for c in configs:
            rc = rows[name][c]
            res[c] = {"per_seed": {str(s): {k: round(v, 4) for k, v in r.items()} for s, r in sorted(rc.items())},
                      "held_out_seeds": {m: ms([rc[s][m] for s in seeds]) for m in ("macro_f1", "micro_f1", "fit_s")}}
            if 0 in rc:
                res[c]["seed0_official"] = {k: round(v, 4) for k, v in rc[0].items()}
        diff = [rows[name]["chosen"][s]["macro_f1"] - rows[name]["old"][s]["macro_f1"] for s in seeds]
        res["chosen_minus_old_macro_f1_held_out_seeds"] = ms(diff)
        out[name] = res
        print(f"{name}: old {res['old']['held_out_seeds']['macro_f1']}  chosen "
              f"{res['chosen']['held_out_seeds']['macro_f1']}  diff {res['chosen_minus_old_macro_f1_held_out_seeds']}",
              flush=True)
    return out


def main() -> None:
    global _CHOICE_MAX_ROWS, _WAIT_FOR_CACHE, _REPORT_TRAIN_ROWS, CHOICE_DATASETS, _OFFICIAL_SEED0
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smoke test: a tiny grid on 3,000 training rows per dataset")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--out", default="defaults", help="results name under bench/results/")
    ap.add_argument("--workers", type=int, default=2, help="parallel fits (one BLAS thread each)")
    ap.add_argument("--choice-datasets", nargs="+", default=list(CHOICE_DATASETS))
    ap.add_argument("--held-out-datasets", nargs="+", default=list(HELD_OUT_DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(HELD_OUT_SEEDS), help="held-out seeds")
    ap.add_argument("--choice-max-rows", type=int, default=None,
                    help="choose on a seeded subsample of this many training rows per dataset (compute budget)")
    ap.add_argument("--report-train-rows", type=int, default=None,
                    help="held-out seeds train on this many seeded training rows (default: 90%% of train)")
    ap.add_argument("--held-out-only", action="store_true",
                    help="test report on the held-out datasets only (compute budget)")
    ap.add_argument("--no-official-seed0", action="store_true",
                    help="skip the full-train seed-0 test run of the choice datasets (compute budget)")
    ap.add_argument("--iter-grid", nargs="+", type=int, default=None, help="stage-2 max_iter candidates")
    ap.add_argument("--report-only", default=None, metavar="JSON",
                    help='skip the choice; report old vs these values, e.g. \'{"C": 1.0, "pos_weight": null, '
                         '"max_iter": 100, "fold_iter_divisor": 3, "shrink": 20.0}\'')
    ap.add_argument("--wait-for-cache", action="store_true",
                    help="wait until another process has put each dataset's embeddings in the shared cache")
    args = ap.parse_args()
    c_grid, pw_grid, iter_grid = C_GRID, POS_WEIGHT_GRID, ITER_GRID
    if args.quick:
        c_grid, pw_grid, iter_grid = (1.0,), ("auto",), ((100, 3),)
    _WAIT_FOR_CACHE = args.wait_for_cache
    _OFFICIAL_SEED0 = not args.no_official_seed0
    if args.iter_grid:
        iter_grid = tuple((m, 3) for m in args.iter_grid)
    CHOICE_DATASETS = tuple(args.choice_datasets)
    _CHOICE_MAX_ROWS, _REPORT_TRAIN_ROWS = args.choice_max_rows, args.report_train_rows
    t0 = time.perf_counter()
    if args.quick:
        _CHOICE_MAX_ROWS = 3000
    report_sets = (CHOICE_DATASETS[-1],) if args.quick else \
        (() if args.held_out_only else CHOICE_DATASETS) + tuple(args.held_out_datasets)
    report_seeds = (1, 2) if args.quick else tuple(args.seeds)
    print("choosing on the training splits of", CHOICE_DATASETS, "only", flush=True)
    if args.report_only:
        chosen = json.loads(args.report_only)
        report_sets = tuple(args.held_out_datasets)
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            held = report({"old": OLD, "chosen": chosen}, report_sets, report_seeds, pool)
        save_results(args.out, {"old": OLD, "chosen": chosen,
                                "held_out_seeds": list(report_seeds), "test": held})
        return
    # worker processes, one BLAS thread each. The old defaults' test runs do not depend on the
    # choice, so they are queued during stage 1 to use workers that would otherwise wait for the
    # second dataset's embeddings; the choice never reads them (they are collected after it).
    # Order: all stage-1 fits first, then the old defaults' test runs, cheapest first (they fill the
    # workers while stage 1 finishes), then the later stages.
    old_tasks = report_tasks({"old": OLD}, report_sets, report_seeds)
    old_tasks.sort(key=lambda t: (t[1] == 0, t[0] == "goemotions"))
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        choice = choose(args.folds, c_grid, pw_grid, iter_grid, pool, after=[(_report_task, t) for t in old_tasks])
        chosen = choice["chosen"]
        print("chosen:", chosen, f"CV {choice['chosen_cv_macro_f1']:.4f} vs old {choice['old_cv_macro_f1']}",
              flush=True)
        t_choice = time.perf_counter() - t0
        held = report({"old": OLD, "chosen": chosen}, report_sets, report_seeds, pool, early=choice["early"])
    data = CHOICE_DATASETS
    results = {
        "how": __doc__.split("Choice (training split only)", 1)[1].split("    OMP_NUM_THREADS")[0].strip(),
        "choice_datasets": list(CHOICE_DATASETS), "choice_max_rows": _CHOICE_MAX_ROWS,
        "held_out_datasets": [d for d in report_sets if d not in CHOICE_DATASETS], "held_out_seeds": list(report_seeds),
        "report_train_rows_held_out_seeds": _REPORT_TRAIN_ROWS or "90% of train",
        "grids": {"C": list(c_grid), "pos_weight": [str(p) for p in pw_grid],
                  "iterations (max_iter, fold divisor)": [list(x) for x in iter_grid], "shrink": list(SHRINK_GRID)},
        "old": OLD, "chosen": chosen,
        "set_in_src": {"MultiLabelLinear.C": chosen["C"], "MultiLabelLinear.pos_weight": chosen["pos_weight"],
                       "MultiLabelLinear.max_iter": chosen["max_iter"],
                       "fold fits' max_iter": f"max(20, max_iter // {chosen['fold_iter_divisor']})",
                       "best_f1_thresholds shrink (as MultiLabelLinear uses it)": chosen["shrink"]},
        "cv_macro_f1": {"chosen": round(choice["chosen_cv_macro_f1"], 4),
                        "old": None if choice["old_cv_macro_f1"] is None else round(choice["old_cv_macro_f1"], 4)},
        "choice_seconds": round(t_choice, 1),
        "test": held,
        "candidates": {k: {"config": v["config"], "cv_macro_f1_by_shrink": {s: round(x, 4) for s, x in v["criterion"].items()},
                           "per_dataset_folds_by_shrink": {str(sh): {ds: [round(x, 4) for x in f] for ds, f in by.items()}
                                                           for sh, by in v["per_shrink"].items()},
                           "per_dataset_folds_at_best_shrink": {
                               ds: [round(x, 4) for x in v["per_shrink"][max(v["per_shrink"], key=lambda s: criterion(v["per_shrink"][s]))][ds]]
                               for ds in data},
                           "fit_seconds_mean": {ds: round(float(np.mean(x)), 2) for ds, x in v["fit_seconds"].items()}}
                       for k, v in choice["candidates"].items()},
    }
    print(f"results -> {save_results(args.out, results)}")


if __name__ == "__main__":
    main()
