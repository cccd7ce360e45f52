"""Risk-controlled label sets: tagwise (learn.conformal) vs MAPIE's MultiLabelClassificationController.

One head (tagwise's supervised MultiLabelLinear, default parameters) is trained per dataset; its
probabilities on a held-out pool are split at random into calibration / test halves ``--reps`` times.
On each split both libraries calibrate on the same rows and scores, with the same threshold grid,
and the realised risk of their sets is measured on the same test rows with the same loss:

- fnr (1 - recall) in expectation: tagwise CRC vs MAPIE CRC (``risk="recall", method="crc"``);
- fnr with confidence: tagwise Learn-then-Test/RCPS (Hoeffding-Bentkus) vs MAPIE RCPS (``rcps_bound="wsr"``);
- precision with confidence: tagwise LTT vs MAPIE LTT.

Reported per target: realised risk (mean, 95th percentile), violation rate (share of splits whose
test risk exceeds the target), mean set size and (tagwise) abstention rate. The data:

- semeval2018: head on train (USE), pool = dev + test;
- goemotions: the test split (USE) halved once (seed 0): head on one half, pool = the other half (the
  train split's embeddings are not in the shared cache; encoding 43k texts is out of this run's budget);
- reuters: head on ModApte train, pool = test, with the hashing encoder (USE embeddings of the long
  articles are not cached).

MAPIE refuses calibration rows with unknown labels; tagwise's masked calibration is covered by
tests/test_conformal.py (this script does not run a partial-label project).

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


def summarise(values, sizes, abstain, target, higher_is_better=False):
    v = np.asarray(values)
    viol = v < target if higher_is_better else v > target
    return {"mean": float(v.mean()), "p95": float(np.quantile(v, 0.05 if higher_is_better else 0.95)),
            "violation_rate": float(viol.mean()), "mean_set_size": float(np.mean(sizes)),
            "abstention_rate": None if abstain is None else float(np.mean(abstain))}


def run(name: str, reps: int, targets: list[float], confidence: float, mapie_reps: int) -> dict:
    t0 = time.perf_counter()
    P, Y, desc = pool_probabilities(name)
    print(f"{name}: {desc} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    rng = np.random.default_rng(1)
    configs = []
    for a in targets:
        configs += [("fnr", a, None), ("fnr", a, confidence), ("precision", round(1 - a, 10), confidence)]
    acc = {(r, lv, c, lib): {"v": [], "s": [], "a": []} for r, lv, c in configs
           for lib in ("tagwise", "mapie", "tagwise_on_mapie_splits")}
    for rep in range(reps):
        perm = rng.permutation(len(P))
        cal, te = perm[: len(P) // 2], perm[len(P) // 2:]
        mapie = {}
        if rep < mapie_reps:
            for key, (mrisk, method, conf) in {"crc": ("recall", "crc", None), "rcps": ("recall", "rcps", confidence),
                                              "ltt": ("precision", "ltt", confidence)}.items():
                levels = [1 - a for a in targets]
                Z = mapie_sets(P[cal], Y[cal], P[te], mrisk, method, levels, conf)
                mapie.update({(key, j): Z[:, :, j] for j in range(len(targets))})
        for risk, level, conf in configs:
            ours = ConformalRiskController(risk, level, conf, by_source=False).fit(P[cal], Y[cal]).predict(P[te])
            j = targets.index(level) if risk == "fnr" else [round(1 - a, 10) for a in targets].index(level)
            key = "crc" if risk == "fnr" and conf is None else "rcps" if risk == "fnr" else "ltt"
            loss = fnr_loss if risk == "fnr" else fdr_loss
            pairs = [("tagwise", ours["labels"], ours["abstain"])]
            if mapie:
                pairs.append(("mapie", mapie[(key, j)], None))
                pairs.append(("tagwise_on_mapie_splits", ours["labels"], ours["abstain"]))
            for lib, Z, ab in pairs:
                r = float(loss(Y[te], Z).mean())
                d = acc[(risk, level, conf, lib)]
                d["v"].append(1 - r if risk == "precision" else r)
                d["s"].append(float(Z.sum(1).mean()))
                if ab is not None:
                    d["a"].append(float(ab.mean()))
    out = {"data": desc, "n_pool": int(len(P)), "n_labels": int(P.shape[1]), "rows": []}
    for (risk, level, conf, lib), d in acc.items():
        if not d["v"]:
            continue
        out["rows"].append({"risk": risk, "target": level, "confidence": conf, "library": lib, "splits": len(d["v"]),
                            **summarise(d["v"], d["s"], d["a"] or None, level, risk == "precision")})
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
        for lib, marker in (("tagwise", "o"), ("mapie", "s")):
            for conf, ls in ((None, "-"), (results["confidence"], "--")):
                sel = sorted((r for r in rows if r["library"] == lib and r["confidence"] == conf),
                             key=lambda r: r["target"])
                if sel:
                    label = f"{lib} {'CRC' if conf is None else f'RCPS/LTT {conf}'}"
                    ax.plot([r["target"] for r in sel], [r["mean"] for r in sel], ls, marker=marker, label=label)
        t = sorted({r["target"] for r in rows})
        ax.plot(t, t, ":", color="grey", label="target")
        ax.set_title(name)
        ax.set_xlabel("target FNR")
        ax.set_ylabel("realised test FNR (mean over splits)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--datasets", nargs="+", default=["semeval2018", "goemotions", "reuters"])
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
               "datasets": {}}
    for name in args.datasets:
        results["datasets"][name] = run(name, args.reps, args.targets, args.confidence, args.mapie_reps)
        for r in results["datasets"][name]["rows"]:
            print(f"{name:12} {r['risk']:9} {r['target']:.2f} conf={r['confidence']} {r['library']:8} "
                  f"mean {r['mean']:.4f} p95 {r['p95']:.4f} viol {r['violation_rate']:.2f} "
                  f"size {r['mean_set_size']:.2f} abst {r['abstention_rate']}", flush=True)
    path = save_results(args.out, results)
    plot(results, RESULTS / f"{args.out}.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
