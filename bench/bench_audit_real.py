"""Label audit on real human label errors: tagwise vs cleanlab 2.9, same embeddings, same folds.

Settings (every one audited by both tools in the same run):

- ``convabuse/AnnotatorN``: ConvAbuse (../shared/data/convabuse, long file), items that annotator N
  judged and at least two *other* annotators judged too. Given labels = annotator N's (first
  judgement when repeated); truth = the other annotators' majority per label (each other annotator
  votes the mean of their repeats); a cell whose others tie is not an error (both values are
  defensible). Labels: abusive (severity -1..-3) and the abuse types / directness with enough
  positives. Text embedded = the user turn.
- ``hs_brexit/AnnN``: HS-Brexit (all 1,120 tweets, every one judged by the same 6 annotators): given =
  annotator N's three labels (hate speech, aggressive, offensive), truth = the majority of the other
  five (never tied).
- ``instance/<dataset>/<rate>``: GoEmotions (train, subsample) and SemEval E-c (train) with
  instance-dependent noise (``tagwise.audit.noise.inject_instance_noise``: the mistakes of a
  ridge model fitted on 5% of the rows).
- ``crosssource``: GoEmotions vs SemEval E-c exact / near duplicates whose labels disagree after
  mapping both to the shared emotions of bench/taxonomies/emotion.yaml (report only, never tuned on).

An error is a row with at least one wrong cell. Reported per setting and tool: AUPRC and
precision@k (k = number of true error rows) of the ranking, precision / recall of the flagged set,
the estimated number of errors against the true count, per-label cell AUPRC, and seconds.
cleanlab gets the same USE embeddings and the same stratified folds (``tagwise.audit.stratified_folds``
passed as a ``PredefinedSplit``), ``cross_val_predict`` of one-vs-rest ``LogisticRegression``
(multinomial for single-label), its ``find_label_issues`` and ``get_label_quality_scores``
(``multilabel_classification`` variants when multi-label) and ``get_label_quality_scores_per_class``.

Run (from the repo root)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TAGWISE_CACHE_DIR=/work/.cache/embeddings \\
        /work/main/.venv/bin/python bench/bench_audit_real.py            # writes bench/results/audit_real.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))
sys.path.insert(0, str(BENCH))

from _crowd_data import hs_brexit_votes  # noqa: E402
from _peers import cleanlab_pred_probs  # noqa: E402
from common import CACHE, save_results  # noqa: E402
from tagwise.audit.core import audit_arrays  # noqa: E402
from tagwise.audit.label_quality import estimate_label_errors  # noqa: E402
from tagwise.audit.noise import inject_instance_noise  # noqa: E402
from tagwise.folds import stratified_folds  # noqa: E402
from tagwise.encoders import embed_texts, get_encoder  # noqa: E402
from tagwise.evaluate.metrics import average_precision  # noqa: E402

DATA = BENCH.parent.parent / "shared" / "data"
CONVABUSE_LABELS = {  # label -> columns of the long file whose max is the label
    "abusive": ["is_abuse.-1", "is_abuse.-2", "is_abuse.-3"], "explicit": ["direction.explicit"],
    "implicit": ["direction.implicit"], "sex_harassment": ["type.sex_harassment"],
    "intellectual": ["type.intellectual"], "sexist": ["type.sexist"], "homophobic": ["type.homophobic"],
}


@dataclass
class Setting:
    name: str
    family: str  # "real", "instance" or "planted"
    texts: list
    X: np.ndarray
    Y: np.ndarray  # (n, K) given labels
    errors: np.ndarray  # (n, K) bool true error cells
    label_names: list
    multi_label: bool = True
    info: dict = field(default_factory=dict)


def embed(texts):
    X, _ = embed_texts(list(texts), get_encoder("use"), CACHE, progress=False)
    return np.asarray(X, dtype=np.float32)


# -- real-error settings ---------------------------------------------------------------------------
def convabuse_settings(min_items: int = 500):
    import pandas as pd
    df = pd.read_csv(DATA / "convabuse" / "1_full" / "ConvAbuseEMNLPfull.csv")
    df["key"] = df[["conv_id", "prev_agent", "prev_user", "agent", "user"]].astype(str).agg("\x1f".join, axis=1)
    for name, cols in CONVABUSE_LABELS.items():
        df[name] = df[cols].max(axis=1).astype(float)
    names = list(CONVABUSE_LABELS)
    # each annotator's vote per item: the mean of their repeats
    votes = df.groupby(["key", "annotator_id"])[names].mean()
    first = df.sort_values("example_no").groupby(["key", "annotator_id"])[names].first()
    text_of = df.groupby("key")["user"].first()
    out = []
    for ann in sorted(df["annotator_id"].unique()):
        mine = first.xs(ann, level="annotator_id")
        others = votes[votes.index.get_level_values("annotator_id") != ann]
        n_others = others.groupby(level="key").size()
        keys = [k for k in mine.index if n_others.get(k, 0) >= 2]
        if len(keys) < min_items:
            continue
        share = others.groupby(level="key").mean().loc[keys].to_numpy()
        Y = (mine.loc[keys].to_numpy() > 0.5).astype(np.uint8)
        truth = np.where(share > 0.5, 1, np.where(share < 0.5, 0, Y))  # ties: the given value stands
        texts = [str(text_of[k]) for k in keys]
        out.append(Setting(f"convabuse/{ann}", "real", texts, embed(texts), Y, truth != Y, names,
                           info={"tied_cells": int((share == 0.5).sum())}))
    return out


def hs_brexit_settings():
    items = []
    for split in ("train", "dev", "test"):
        items += json.loads((DATA / "hs_brexit" / f"HS-Brexit_{split}.json").read_text()).values()
    texts = [it["text"] for it in items]
    A = np.stack([hs_brexit_votes(it) for it in items])  # (n, 3 labels, 6 annotators)
    X = embed(texts)
    out = []
    for a in range(A.shape[2]):
        Y = A[:, :, a]
        others = np.delete(A, a, axis=2).mean(2)
        truth = (others > 0.5).astype(np.uint8)
        out.append(Setting(f"hs_brexit/Ann{a + 1}", "real", texts, X, Y, truth != Y,
                           ["hate_speech", "aggressive", "offensive"]))
    return out


def load_spec_split(spec: str, split: str, limit: int | None, seed: int = 0):
    from tagwise.sources import ingest, load_spec
    from tagwise.types import LabelSpace
    rows = ingest(load_spec(BENCH / "specs" / f"{spec}.yaml"))
    idx = [i for i, s in enumerate(rows.splits) if s == split]
    if limit and limit < len(idx):
        idx = sorted(np.random.default_rng(seed).choice(idx, size=limit, replace=False).tolist())
    space = LabelSpace(tuple(rows.annotated_labels))
    Y = space.to_matrix([rows.labels[i] for i in idx])
    keep = Y.sum(0) > 0
    texts = [rows.texts[i] for i in idx]
    return texts, Y[:, keep], [n for n, k in zip(space.names, keep) if k]


def instance_settings(rates, seed, goemotions_limit, datasets=("goemotions", "semeval2018", "isear"),
                      view: str = "use"):
    """view: the weak model's features, "use" (the auditor's own embeddings) or "hashing"
    (character / word n-grams, a different view)."""
    out = []
    for spec in datasets:
        split = "test" if spec == "ag_news" else "train"  # the AG News copy is its test set
        texts, Y, names = load_spec_split(spec, split, goemotions_limit if spec == "goemotions" else None)
        X = embed(texts)
        multi = not bool((Y.sum(1) == 1).all())
        Xw = X if view == "use" else get_encoder("hashing").encode(texts)
        for rate in rates:
            Yn, changed = inject_instance_noise(Xw, Y, rate, seed=seed)
            prefix = "instance" if view == "use" else f"instance-{view}"
            out.append(Setting(f"{prefix}/{spec}/{rate}", "instance", texts, X, Yn, changed, names, multi,
                               info={"achieved_rate": round(float(changed.any(1).mean()), 4), "seed": seed}))
    return out


def planted_settings(rates, seed, goemotions_limit, datasets=("goemotions", "semeval2018", "ag_news", "isear")):
    """bench_audit.py's planted noise (uniform / confusion / missing) on the same data, one seed."""
    from tagwise.audit.noise import NOISE_MODELS, inject_noise, label_similarity
    out = []
    for spec in datasets:
        split = "test" if spec == "ag_news" else "train"
        texts, Y, names = load_spec_split(spec, split, goemotions_limit if spec == "goemotions" else None)
        X = embed(texts)
        multi = not bool((Y.sum(1) == 1).all())
        sim = label_similarity(X, Y)
        for model in (NOISE_MODELS if multi else ("uniform", "confusion")):
            for rate in rates:
                Yn, changed = inject_noise(Y, model, rate, sim, seed=seed)
                out.append(Setting(f"planted/{spec}/{model}/{rate}", "planted", texts, X, Yn, changed, names, multi,
                                   info={"achieved_rate": round(float(changed.any(1).mean()), 4), "seed": seed}))
    return out


FAMILIES = ("anger", "disgust", "fear", "joy", "sadness", "surprise")


def crosssource_setting(min_similarity: float = 0.95, goemotions_limit: int = 15000, seed: int = 0):
    """GoEmotions and SemEval E-c rows mapped onto the six emotion families of
    bench/taxonomies/emotion.yaml (both sources annotate every family: GoEmotions through its child
    labels, SemEval directly). A pair of exact or near duplicates across the sources (cosine >= 0.95)
    whose family sets differ is a real inconsistency; which side is wrong is unknown, so both rows
    count as suspects. Returns (Setting whose ``errors`` mark suspect rows on every family, pairs)."""
    import faiss
    import yaml
    from tagwise.audit.duplicates import normalize_text
    from tagwise.sources import ingest, load_spec
    tax = yaml.safe_load((BENCH / "taxonomies" / "emotion.yaml").read_text())["labels"]
    parent = {t["name"]: t.get("parent") for t in tax}

    def families(labels):
        fam = {parent.get(n) or n for n in labels}
        return [int(f in fam) for f in FAMILIES]
    parts = []
    for spec in ("emotion_goemotions", "emotion_semeval2018"):
        rows = ingest(load_spec(BENCH / "specs" / f"{spec}.yaml"))
        parts.append((list(rows.texts), np.array([families(ls) for ls in rows.labels], np.uint8)))
    (tg, Yg), (ts, Ys) = parts
    Xg, Xs = embed(tg), embed(ts)
    index = faiss.IndexFlatIP(Xg.shape[1])
    index.add(np.ascontiguousarray(Xg / np.linalg.norm(Xg, axis=1, keepdims=True)))
    sim, nn = index.search(np.ascontiguousarray(Xs / np.linalg.norm(Xs, axis=1, keepdims=True)), 5)
    norm_g = {}
    for i, t in enumerate(tg):
        norm_g.setdefault(normalize_text(t), []).append(i)
    pairs = set()
    for j, t in enumerate(ts):
        for i in norm_g.get(normalize_text(t), []):
            pairs.add((i, j, 1.0, True))
        for s_, i in zip(sim[j], nn[j]):
            if s_ >= min_similarity:
                pairs.add((int(i), j, float(s_), False))
    pairs = sorted(pairs)
    conflict = [(i, j, s_, ex) for i, j, s_, ex in pairs if (Yg[i] != Ys[j]).any()]
    rng = np.random.default_rng(seed)
    keep_g = set(rng.choice(len(tg), size=min(goemotions_limit, len(tg)), replace=False).tolist())
    keep_g |= {i for i, *_ in pairs}
    g_idx = sorted(keep_g)
    pos_g = {i: n for n, i in enumerate(g_idx)}
    texts = [tg[i] for i in g_idx] + ts
    X = np.concatenate([Xg[g_idx], Xs])
    Y = np.concatenate([Yg[g_idx], Ys])
    errors = np.zeros_like(Y, dtype=bool)
    for i, j, *_ in conflict:
        for r in (pos_g[i], len(g_idx) + j):
            errors[r] = True
    info = {"pairs": len(pairs), "exact_pairs": sum(p[3] for p in pairs), "conflicting_pairs": len(conflict),
            "conflicting_exact_pairs": sum(p[3] for p in conflict), "min_similarity": min_similarity,
            "examples": [{"goemotions": tg[i], "semeval": ts[j], "similarity": round(s_, 3),
                          "goemotions_families": [f for f, v in zip(FAMILIES, Yg[i]) if v],
                          "semeval_families": [f for f, v in zip(FAMILIES, Ys[j]) if v]} for i, j, s_, _ in conflict[:8]]}
    return Setting("crosssource/goemotions+semeval", "crosssource", texts, X, Y, errors, list(FAMILIES), True, info)


# -- the two audits --------------------------------------------------------------------------------
def run_tagwise(s: Setting, **variant):
    if variant.get("knn_weight") == "double":  # twice the default kNN vote weight
        from tagwise.audit.core import KNN_DEFAULTS
        variant = {**variant, "knn_weight": 2 * KNN_DEFAULTS["multi_label" if s.multi_label else "single_label"][1]}
    t0 = time.perf_counter()
    res = audit_arrays(s.X, s.Y, texts=s.texts, folds=5, multi_label=s.multi_label, progress=False, **variant)
    sec = time.perf_counter() - t0
    # the same estimator on labels drawn from the audit's own evidence: what it counts when the
    # labels disagree with the model only as much as the model's uncertainty predicts
    drawn = np.random.default_rng(0).random(s.Y.shape) < res.evidence
    if not s.multi_label:
        drawn = np.eye(s.Y.shape[1], dtype=bool)[(res.evidence.cumsum(1) / res.evidence.sum(1, keepdims=True)
                                                  < np.random.default_rng(0).random((len(s.Y), 1))).sum(1).clip(0, s.Y.shape[1] - 1)]
    drawn_estimate = estimate_label_errors(drawn, res.evidence)[1]
    return {"score": -res.label_quality, "flagged": res.flagged_rows, "cell_scores": res.issues.cell_scores,
            "estimate": float(res.estimated_errors), "estimate_model_drawn": float(drawn_estimate),
            "seconds": sec, "result": res}


def run_peer(s: Setting, fold_ids):
    from cleanlab import filter as cl_filter
    from cleanlab import rank as cl_rank
    from cleanlab.multilabel_classification import filter as ml_filter
    from cleanlab.multilabel_classification import rank as ml_rank

    t0 = time.perf_counter()
    # tagwise's folds and a tuned base model (``_peers.CLEANLAB_BASE_GRID``, out-of-fold log loss)
    P, info = cleanlab_pred_probs(s.X, s.Y, s.multi_label, fold_ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if s.multi_label:
            lists = [np.flatnonzero(r).tolist() for r in s.Y]
            flagged = ml_filter.find_label_issues(labels=lists, pred_probs=P)
            quality = ml_rank.get_label_quality_scores(lists, P)
            per_class = ml_rank.get_label_quality_scores_per_class(lists, P)
            cell = 1.0 - np.asarray(per_class).T if np.asarray(per_class).shape[0] == s.Y.shape[1] else 1.0 - np.asarray(per_class)
        else:
            y = s.Y.argmax(1)
            flagged = cl_filter.find_label_issues(labels=y, pred_probs=P)
            quality = cl_rank.get_label_quality_scores(y, P)
            cell = np.where(s.Y == 1, 1.0 - P, P)
    sec = time.perf_counter() - t0
    flagged = np.asarray(flagged, dtype=bool)
    return {"score": -np.asarray(quality), "flagged": flagged, "cell_scores": cell,
            "estimate": float(flagged.sum()), "seconds": sec, "base_model": info["chosen"]}


def detection(s: Setting, out: dict) -> dict:
    truth = s.errors.any(1)
    k = int(truth.sum())
    top = np.argsort(-out["score"], kind="stable")[:k]
    flagged = out["flagged"]
    tp = int((truth & flagged).sum())
    per_label = {}
    for j, name in enumerate(s.label_names):
        if s.errors[:, j].sum() and (~s.errors[:, j]).sum():
            per_label[name] = round(average_precision(s.errors[:, j], np.nan_to_num(out["cell_scores"][:, j])), 4)
    return {"auprc": round(average_precision(truth, out["score"]), 4),
            "p_at_k": round(float(truth[top].mean()) if k else 0.0, 4),
            "auroc": round(auroc(truth, out["score"]), 4),
            "flag_precision": round(tp / max(int(flagged.sum()), 1), 4), "flag_recall": round(tp / max(k, 1), 4),
            "n_flagged": int(flagged.sum()), "estimate": round(out["estimate"], 1),
            "estimate_ratio": round(out["estimate"] / max(k, 1), 3), "flag_ratio": round(int(flagged.sum()) / max(k, 1), 3),
            "per_label_auprc": per_label, "seconds": round(out["seconds"], 2)}


def auroc(truth, score):
    from scipy.stats import rankdata
    pos = truth.astype(bool)
    if pos.all() or not pos.any():
        return float("nan")
    r = rankdata(score)
    return float((r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def paired_bootstrap(s: Setting, tw: dict, pe: dict, draws: int = 1000, seed: int = 0) -> dict:
    """Rows resampled with replacement (the same draw for both tools): the 95% interval of
    tagwise's AUPRC and P@k minus cleanlab's, and the share of draws where tagwise is at or above.
    A setting with a few dozen true errors moves by several points between draws, so a gap inside
    the interval is not evidence either way."""
    truth = s.errors.any(1)
    rng = np.random.default_rng(seed)
    diffs = {"auprc": [], "p_at_k": []}
    for _ in range(draws):
        rows = rng.integers(0, len(truth), len(truth))
        t = truth[rows]
        k = int(t.sum())
        if k == 0 or k == len(t):
            continue
        a, b = tw["score"][rows], pe["score"][rows]
        diffs["auprc"].append(average_precision(t, a) - average_precision(t, b))
        diffs["p_at_k"].append(t[np.argsort(-a, kind="stable")[:k]].mean() - t[np.argsort(-b, kind="stable")[:k]].mean())
    return {m: {"interval95": [round(float(np.quantile(d, 0.025)), 4), round(float(np.quantile(d, 0.975)), 4)],
                "share_at_or_above": round(float(np.mean(np.asarray(d) >= 0)), 3)} for m, d in diffs.items()}


def describe(s: Setting) -> dict:
    truth = s.errors.any(1)
    return {"n": len(s.Y), "K": s.Y.shape[1], "multi_label": s.multi_label, "true_error_rows": int(truth.sum()),
            "true_error_rate": round(float(truth.mean()), 4),
            "true_errors_per_label": {n: int(c) for n, c in zip(s.label_names, s.errors.sum(0))},
            "given_positives_per_label": {n: int(c) for n, c in zip(s.label_names, s.Y.sum(0))}, **s.info}


VARIANTS = {}  # ablation: name -> audit_arrays keyword arguments (filled in main from --ablation)


def run_setting(s: Setting, ablation: bool):
    fold_ids = stratified_folds(s.Y, 5, 0)  # what audit_arrays uses with random_state=0
    row = describe(s)
    tw = run_tagwise(s)
    pe = run_peer(s, fold_ids)
    row["tagwise"], row["cleanlab"] = detection(s, tw), detection(s, pe)
    row["tagwise"]["choices"] = tw["result"].choices
    row["tagwise"]["estimate_model_drawn"] = round(tw["estimate_model_drawn"], 1)
    row["tagwise_minus_cleanlab"] = paired_bootstrap(s, tw, pe)
    if ablation:
        row["ablation"] = {name: {k: v for k, v in detection(s, run_tagwise(s, **kw)).items()
                                  if k in ("auprc", "p_at_k", "auroc")} for name, kw in VARIANTS.items()}
    t, p = row["tagwise"], row["cleanlab"]
    print(f"{s.name:>28} n={row['n']:>5} err={row['true_error_rows']:>5} | AUPRC {t['auprc']:.3f} {p['auprc']:.3f} "
          f"| P@k {t['p_at_k']:.3f} {p['p_at_k']:.3f} | flagP {t['flag_precision']:.2f} {p['flag_precision']:.2f} "
          f"R {t['flag_recall']:.2f} {p['flag_recall']:.2f} | est {t['estimate']:.0f} ({t['estimate_ratio']:.2f}) "
          f"cl {p['estimate']:.0f} ({p['estimate_ratio']:.2f}) | {t['seconds']:.1f}s {p['seconds']:.1f}s", flush=True)
    if ablation:
        print("      " + "  ".join(f"{k}:{v['auprc']:.3f}/{v['p_at_k']:.3f}" for k, v in row["ablation"].items()),
              flush=True)
    return row


def summarize(results: dict) -> str:
    """Markdown tables for the README: one row per setting, then the ablation (mean AUPRC / P@k
    over the real-error settings of each dataset)."""
    lines = ["| setting | n | true errors | AUPRC tagwise / cleanlab | P@k tagwise / cleanlab | estimate tagwise (/ true) "
             "| flagged tagwise / cleanlab (/ true) | flagged P / R tagwise | flagged P / R cleanlab "
             "| AUPRC, P@k tagwise - cleanlab, 95% bootstrap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["settings"].items():
        t, c = r["tagwise"], r["cleanlab"]
        lines.append(f"| {name} | {r['n']} | {r['true_error_rows']} | {t['auprc']:.3f} / {c['auprc']:.3f} | "
                     f"{t['p_at_k']:.3f} / {c['p_at_k']:.3f} | {t['estimate']:.0f} ({t['estimate_ratio']:.2f}) | "
                     f"{t['n_flagged']} / {c['n_flagged']} ({t['flag_ratio']:.2f} / {c['flag_ratio']:.2f}) | "
                     f"{t['flag_precision']:.2f} / {t['flag_recall']:.2f} | {c['flag_precision']:.2f} / {c['flag_recall']:.2f} | "
                     + (" ; ".join(f"[{b['interval95'][0]:+.3f}, {b['interval95'][1]:+.3f}]"
                                   for b in (r["tagwise_minus_cleanlab"]["auprc"], r["tagwise_minus_cleanlab"]["p_at_k"]))
                        if "tagwise_minus_cleanlab" in r else "") + " |")
    groups: dict[str, list] = {}
    for name, r in results["settings"].items():
        if "ablation" in r:
            groups.setdefault("/".join(name.split("/")[:2]) if name.startswith("instance") else name.split("/")[0],
                              []).append(r)
    if groups:
        variants = list(next(iter(groups.values()))[0]["ablation"])
        lines += ["", "| AUPRC / P@k (mean) | default | cleanlab | " + " | ".join(variants) + " |",
                  "|---|---|---|" + "---|" * len(variants)]
        for g, rs in groups.items():
            def cell(get):
                return f"{np.mean([get(r)['auprc'] for r in rs]):.3f} / {np.mean([get(r)['p_at_k'] for r in rs]):.3f}"
            lines.append(f"| {g} ({len(rs)}) | {cell(lambda r: r['tagwise'])} | {cell(lambda r: r['cleanlab'])} | "
                         + " | ".join(cell(lambda r, v=v: r["ablation"][v]) for v in variants) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="convabuse,hs_brexit,instance,crosssource")
    ap.add_argument("--rates", default="0.05,0.1,0.2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--goemotions-limit", type=int, default=15000)
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--instance-datasets", default="goemotions,semeval2018,isear")
    ap.add_argument("--instance-view", default="use", choices=("use", "hashing"),
                    help="features of the weak model that makes the instance-dependent noise")
    ap.add_argument("--out", default="audit_real")
    args = ap.parse_args()
    fams = args.families.split(",")
    if args.ablation:
        VARIANTS.update({
            "no_knn": {"knn_weight": 0.0},
            "knn_x2": {"knn_weight": "double"},
            "plain_view": {"views": "plain"},
            "dependency_view": {"views": "dependency"},
            "worst_of_views": {"views": "worst"},
            "posterior": {"quality_method": "posterior"},
            "blend": {"quality_method": "blend"},
        })
    settings = []
    if "convabuse" in fams:
        settings += convabuse_settings()
    if "hs_brexit" in fams:
        settings += hs_brexit_settings()
    if "crosssource" in fams:
        settings.append(crosssource_setting())
    if "instance" in fams:
        settings += instance_settings([float(r) for r in args.rates.split(",")], args.seed, args.goemotions_limit,
                                      datasets=args.instance_datasets.split(","), view=args.instance_view)
    results = {"encoder": "use", "folds": 5, "seed": args.seed, "settings": {},
               "cpu_threads": {v: os.environ.get(v, "default") for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    for s in settings:
        results["settings"][s.name] = run_setting(s, args.ablation)
    path = save_results(args.out, results)
    print(summarize(results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
