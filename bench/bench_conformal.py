"""Risk-controlled label sets: tagwise (learn.conformal) vs MAPIE's MultiLabelClassificationController.

One head (tagwise's supervised MultiLabelLinear, default parameters) is trained per dataset; its
probabilities on a held-out pool are split at random into calibration / test halves ``--reps`` times.
On each split both libraries calibrate on the same rows and scores, with the same threshold grid,
and the realised risk of their sets is measured on the same test rows with the same loss:

- fnr (1 - recall) in expectation: tagwise CRC vs MAPIE CRC (``risk="recall", method="crc"``);
- fnr with confidence: tagwise Learn-then-Test/RCPS (Hoeffding-Bentkus) vs MAPIE RCPS (``rcps_bound="wsr"``);
- precision with confidence: tagwise LTT vs MAPIE LTT.

Reported per target: realised risk (mean, 95th percentile), violation rate (share of splits whose
test risk exceeds the target), mean set size and, for tagwise, the abstention rule's figures: the
abstention rate, the kept rows' realised risk and the share of kept rows that break the promise on
their own (the rule promises at most ``row_violation`` = 0.1 of them). The data:

- semeval2018: head on train (USE), pool = dev + test;
- goemotions: the test split (USE) halved once (seed 0): head on one half, pool = the other half (the
  train split's embeddings are not in the shared cache; encoding 43k texts is out of this run's budget);
- reuters: head on ModApte train, pool = test, with the hashing encoder (USE embeddings of the long
  articles are not cached).

- emotion_multisource: a project with partial labels, GoEmotions and SemEval-2018 on
  bench/taxonomies/emotion.yaml (each source annotates only its own labels; the other cells are
  unknown). tagwise's MultiSourceLinear trains on SemEval train + GoEmotions dev; the pool is SemEval
  dev + test and GoEmotions test, each row scored in its source's mode. tagwise calibrates on the
  known cells only, per source (Mondrian) and pooled, and the realised risk is reported per source.
  MAPIE has no notion of an unknown cell (a 0 would count as a true negative), so it cannot run
  there; it runs, with tagwise on the same splits, on the fully labeled subset
  (``emotion_multisource_known_subset``: the labels every pool row's source annotates, rows with at
  least one of them true).

    OMP_NUM_THREADS=1 TAGWISE_CACHE_DIR=/work/.cache/embeddings python bench/bench_conformal.py --reps 100
writes bench/results/conformal.json (with the command) and bench/results/conformal.png.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from common import BENCH, CACHE, RESULTS, save_figure, save_results
from tagwise.encoders import embed_texts, get_encoder
from tagwise.learn.conformal import LTT_GRID, ConformalRiskController, fdr_loss, fnr_loss
from tagwise.learn.linear import MultiLabelLinear
from tagwise.sources import ingest, load_spec
from tagwise.types import LabelSpace

MAPIE_GRID = np.arange(0, 1, 0.01)  # MAPIE's default predict_params (a finer grid costs it ~linear time)


def pool_probabilities(name: str):
    """-> (P_pool (n, K) float64, Y_pool (n, K) float64, description)."""
    spec = {"semeval2018": "semeval2018", "goemotions": "goemotions", "reuters": "reuters"}[name]
    rows = ingest(load_spec(BENCH / "specs" / f"{spec}.yaml"))
    splits = np.array(rows.splits)
    space = LabelSpace(tuple(rows.annotated_labels))
    Y_all = space.to_matrix(rows.labels).astype(np.float64)
    if name == "semeval2018":
        train, pool, enc = splits == "train", np.isin(splits, ["dev", "test"]), "use"
    elif name == "reuters":
        train, pool, enc = splits == "train", splits == "test", "hashing"
    else:
        test = np.flatnonzero(splits == "test")
        half = np.random.default_rng(0).permutation(test)
        train, pool = np.zeros(len(splits), bool), np.zeros(len(splits), bool)
        train[half[: len(half) // 2]] = True
        pool[half[len(half) // 2:]] = True
        enc = "use"
    idx = np.flatnonzero(train | pool)
    X, _ = embed_texts([rows.texts[i] for i in idx], get_encoder(enc), CACHE, progress=False)
    where = {int(i): j for j, i in enumerate(idx)}
    tr, po = [where[i] for i in np.flatnonzero(train)], [where[i] for i in np.flatnonzero(pool)]
    keep = Y_all[train].sum(0) >= 2  # labels the head can learn at all
    head = MultiLabelLinear().fit(X[tr], Y_all[train][:, keep])
    P, Y = head.predict_proba(X[po]).astype(np.float64), Y_all[pool][:, keep]
    # MAPIE refuses a row without any true label ("All observations should contain at least one
    # label"); both libraries get the same rows
    has = Y.sum(1) > 0
    return P[has], Y[has], (f"{enc} encoder, head on {len(tr)} rows, pool {int(has.sum())} rows with a label "
                            f"(of {len(po)}), {int(keep.sum())} labels")


def multisource_pool():
    """-> (P (n, K), Y (n, K), mask (n, K) bool, sources (n,), description, label names) of the
    partial-label project."""
    import tempfile
    from pathlib import Path

    from tagwise.learn.multisource import MultiSourceLinear, partial_targets
    from tagwise.project import Project

    project = Project.init(Path(tempfile.mkdtemp(prefix="tagwise-bench-conf-")) / "project",
                           taxonomy=BENCH / "taxonomies" / "emotion.yaml")
    for spec in ("emotion_goemotions", "emotion_semeval2018"):
        project.add_source(BENCH / "specs" / f"{spec}.yaml")
    ex = project.examples(labeled=True)
    src, split = np.asarray(ex.sources, dtype=object), np.asarray(ex.splits, dtype=object)
    train = ((src == "semeval2018") & (split == "train")) | ((src == "goemotions") & (split == "dev"))
    pool = ((src == "semeval2018") & np.isin(split, ["dev", "test"])) | ((src == "goemotions") & (split == "test"))
    idx = np.flatnonzero(train | pool)
    X, _ = embed_texts([ex.texts[i] for i in idx], get_encoder("use"), CACHE, progress=False)
    Y, known = partial_targets(ex, project.taxonomy)
    Y, known, src, train, pool = Y[idx], known[idx], src[idx], train[idx], pool[idx]
    A = project.taxonomy.ancestor_matrix(project.labels)
    head = MultiSourceLinear(random_state=0).fit(X[train], Y[train], src[train], known[train], A)
    P = head.predict_proba(X[pool], source=src[pool]).astype(np.float64)
    Y, M, S = np.asarray(Y[pool], np.float64), known[pool], src[pool]
    has = (Y * M).sum(1) > 0  # as for the other datasets: rows with a known true label
    names = list(project.labels.names)
    project.close()
    desc = (f"use encoder, MultiSourceLinear on {int(train.sum())} rows (semeval2018 train, goemotions dev), "
            f"pool {int(has.sum())} rows with a known true label (semeval2018 dev+test, goemotions test), "
            f"{P.shape[1]} labels, {M[has].mean():.2f} of the pool's cells known")
    return P[has], Y[has], M[has], S[has], desc, names


def mapie_sets(P_cal, Y_cal, P_test, risk: str, method: str, levels: list[float], confidence: float | None):
    """MAPIE's sets for every target level at once (one risk computation): (n_test, K, len(levels)) bool."""
    from mapie.risk_control import MultiLabelClassificationController

    kwargs = dict(predict_function=lambda X: X, risk=risk, method=method, target_level=levels,
                  predict_params=MAPIE_GRID)
    if confidence is not None:
        kwargs["confidence_level"] = confidence
    if method == "rcps":
        kwargs["rcps_bound"] = "wsr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctrl = MultiLabelClassificationController(**kwargs)
        ctrl.calibrate(P_cal, Y_cal.astype(int))
        return ctrl.predict(P_test).astype(bool)


def summarise(values, sizes, target, higher_is_better=False, abstain=None, kept_risk=None, kept_violation=None):
    v = np.asarray(values)
    viol = v < target if higher_is_better else v > target
    out = {"mean": float(v.mean()), "p95": float(np.quantile(v, 0.05 if higher_is_better else 0.95)),
           "violation_rate": float(viol.mean()), "mean_set_size": float(np.mean(sizes))}
    if abstain:
        kept = [k for k in kept_risk if k is not None]
        out.update(abstention_rate=float(np.mean(abstain)), abstention_rate_sd=float(np.std(abstain, ddof=1)),
                   # over the splits that kept a row: the kept rows' realised risk, and the share of kept
                   # rows whose own risk breaks the target (promised <= ROW_VIOLATION)
                   kept_risk=float(np.mean(kept)) if kept else None,
                   kept_row_violation=float(np.mean([k for k in kept_violation if k is not None])) if kept else None,
                   kept_row_violation_p95=float(np.quantile([k for k in kept_violation if k is not None], 0.95))
                   if kept else None, splits_keeping_rows=len(kept))
    return out


ROW_VIOLATION = 0.1  # ConformalRiskController's default: at most 10% of the kept rows break the promise alone


def run(name: str, reps: int, targets: list[float], confidence: float, mapie_reps: int, data=None) -> dict:
    """data: (P, Y, mask or None, sources or None, description), else ``pool_probabilities(name)``.
    With a mask, MAPIE does not run (it has no unknown cells); with sources, tagwise runs per source
    (``tagwise``) and pooled (``tagwise_pooled``) and every row has its per-source figures."""
    t0 = time.perf_counter()
    if data is None:
        P, Y, desc = pool_probabilities(name)
        M = S = None
    else:
        P, Y, M, S, desc = data
    print(f"{name}: {desc} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    rng = np.random.default_rng(1)
    configs = []
    for a in targets:
        configs += [("fnr", a, None), ("fnr", a, confidence), ("precision", round(1 - a, 10), confidence)]
    libs = ["tagwise"] + (["tagwise_pooled"] if S is not None else []) + \
        (["mapie", "tagwise_on_mapie_splits"] if M is None and mapie_reps else [])
    acc = {(r, lv, c, lib): {"v": [], "s": [], "a": [], "kr": [], "kv": [], "src": {}} for r, lv, c in configs
           for lib in libs}
    for rep in range(reps):
        perm = rng.permutation(len(P))
        cal, te = perm[: len(P) // 2], perm[len(P) // 2:]
        Mc, Mt = (None, None) if M is None else (M[cal], M[te])
        Sc, St = (None, None) if S is None else (S[cal], S[te])
        mapie = {}
        if rep < mapie_reps and "mapie" in libs:
            for key, (mrisk, method, conf) in {"crc": ("recall", "crc", None), "rcps": ("recall", "rcps", confidence),
                                              "ltt": ("precision", "ltt", confidence)}.items():
                levels = [1 - a for a in targets]
                Z = mapie_sets(P[cal], Y[cal], P[te], mrisk, method, levels, conf)
                mapie.update({(key, j): Z[:, :, j] for j in range(len(targets))})
        for risk, level, conf in configs:
            j = targets.index(level) if risk == "fnr" else [round(1 - a, 10) for a in targets].index(level)
            key = "crc" if risk == "fnr" and conf is None else "rcps" if risk == "fnr" else "ltt"
            loss = fnr_loss if risk == "fnr" else fdr_loss
            alpha = level if risk == "fnr" else 1 - level
            pairs = []
            for lib, by_source in (("tagwise", True), ("tagwise_pooled", False)):
                if lib in libs:
                    ours = ConformalRiskController(risk, level, conf, by_source=by_source,
                                                   row_violation=ROW_VIOLATION).fit(P[cal], Y[cal], Mc, Sc).predict(P[te], St)
                    pairs.append((lib, ours["labels"], ours["abstain"]))
            if mapie:
                pairs.append(("mapie", mapie[(key, j)], None))
                pairs.append(("tagwise_on_mapie_splits", pairs[0][1], pairs[0][2]))
            for lib, Z, ab in pairs:
                row_loss = loss(Y[te], Z, Mt)
                r = float(row_loss.mean())
                d = acc[(risk, level, conf, lib)]
                d["v"].append(1 - r if risk == "precision" else r)
                d["s"].append(float(Z.sum(1).mean()))
                if ab is not None:
                    kept = ~ab
                    d["a"].append(float(ab.mean()))
                    d["kr"].append(float(row_loss[kept].mean()) if kept.any() else None)
                    d["kv"].append(float((row_loss[kept] > alpha).mean()) if kept.any() else None)
                if S is not None:
                    for s in sorted(set(St)):
                        rs = float(row_loss[St == s].mean())
                        d["src"].setdefault(s, []).append(1 - rs if risk == "precision" else rs)
    out = {"data": desc, "n_pool": int(len(P)), "n_labels": int(P.shape[1]), "rows": []}
    for (risk, level, conf, lib), d in acc.items():
        if not d["v"]:
            continue
        row = {"risk": risk, "target": level, "confidence": conf, "library": lib, "splits": len(d["v"]),
               **summarise(d["v"], d["s"], level, risk == "precision", d["a"], d["kr"], d["kv"])}
        if d["src"]:
            row["per_source"] = {s: {k: v for k, v in summarise(vals, [0], level, risk == "precision").items()
                                     if k != "mean_set_size"} for s, vals in d["src"].items()}
        out["rows"].append(row)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def plot(results: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = [r for r in results["datasets"][name]["rows"] if r["risk"] == "fnr"]
        multi = any("per_source" in r for r in rows)
        for lib, marker in (("tagwise", "o"), ("mapie", "s"), ("tagwise_pooled", "^")):
            for conf, ls in ((None, "-"), (results["confidence"], "--")):
                sel = sorted((r for r in rows if r["library"] == lib and r["confidence"] == conf),
                             key=lambda r: r["target"])
                if not sel:
                    continue
                label = f"{lib} {'CRC' if conf is None else f'RCPS/LTT {conf}'}"
                if not multi:
                    ax.plot([r["target"] for r in sel], [r["mean"] for r in sel], ls, marker=marker, label=label)
                    continue
                for s in sel[0]["per_source"]:  # the promise per source: Mondrian vs one pooled cut
                    ax.plot([r["target"] for r in sel], [r["per_source"][s]["mean"] for r in sel], ls, marker=marker,
                            label=f"{label}: {s}")
        t = sorted({r["target"] for r in rows})
        ax.plot(t, t, ":", color="grey", label="target")
        ax.set_title(name + (" (per source)" if multi else ""), fontsize=9)
        ax.set_xlabel("target FNR")
        ax.set_ylabel("realised test FNR (mean over splits)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--datasets", nargs="+", default=["semeval2018", "goemotions", "reuters", "emotion_multisource"])
    ap.add_argument("--targets", nargs="+", type=float, default=[0.05, 0.1, 0.2])
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--mapie-reps", type=int, default=20,
                    help="MAPIE runs on the first N splits only (about 3 s per method and split on 2 shared "
                         "cores); tagwise's figures on those same splits are reported as tagwise_on_mapie_splits")
    ap.add_argument("--out", default="conformal")
    args = ap.parse_args()
    results = {"command": "OMP_NUM_THREADS=1 python bench/bench_conformal.py " + " ".join(sys.argv[1:]),
               "reps": args.reps, "targets": args.targets, "confidence": args.confidence,
               "mapie_reps": args.mapie_reps,
               "grid": "tagwise: exact CRC cuts / LTT on expit(linspace(-9, 9, 721)); MAPIE: its default "
                       "np.arange(0, 1, 0.01)",
               "row_violation": ROW_VIOLATION,
               "datasets": {}}
    for name in args.datasets:
        if name == "emotion_multisource":
            P, Y, M, S, desc, label_names = multisource_pool()
            results["datasets"][name] = run(name, args.reps, args.targets, args.confidence, 0, (P, Y, M, S, desc))
            results["datasets"][name]["mapie"] = ("MAPIE cannot run on this pool: it has no notion of an unknown cell "
                                                  "(a label the row's source does not annotate would count as a true "
                                                  "negative); see emotion_multisource_known_subset")
            cols = M.all(0)  # the labels every pool row's source annotates
            rows = (Y[:, cols] > 0).any(1)
            sub = (P[rows][:, cols], Y[rows][:, cols], None, None,
                   f"the fully labeled subset of emotion_multisource: {int(cols.sum())} labels every source annotates "
                   f"({', '.join(n for n, c in zip(label_names, cols) if c)}), {int(rows.sum())} rows with "
                   f"one of them true; the same head's scores")
            name = "emotion_multisource_known_subset"
            results["datasets"][name] = run(name, args.reps, args.targets, args.confidence, args.mapie_reps, sub)
        else:
            results["datasets"][name] = run(name, args.reps, args.targets, args.confidence, args.mapie_reps)
        for nm in (name, "emotion_multisource") if name.startswith("emotion_multisource") else (name,):
            for r in results["datasets"][nm]["rows"]:
                print(f"{nm[:14]:14} {r['risk']:9} {r['target']:.2f} conf={r['confidence']} {r['library']:14} "
                      f"mean {r['mean']:.4f} p95 {r['p95']:.4f} viol {r['violation_rate']:.2f} "
                      f"size {r['mean_set_size']:.2f} abst {r.get('abstention_rate')} kept {r.get('kept_risk')} "
                      f"keptviol {r.get('kept_row_violation')} {r.get('per_source', '')}", flush=True)
        save_results(args.out, results)  # partial results of a long run stay behind
    path = save_results(args.out, results)
    plot(results, RESULTS / f"{args.out}.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
