"""Consensus labels from several annotators: tagwise vs majority vote, crowd-kit and cleanlab.

Datasets (../shared/data, see bench/_crowd_data.py): HS-Brexit (6 annotators on every tweet, 3
binary labels) and ConvAbuse (8 annotators, 2-7 per item, abuse + 8 multi-label flags).

Parts (``--part``):

- ``real``: consensus from the full real crowd against the published aggregate / full-crowd
  majority (test split), and the test macro-F1 of the same classifier (tagwise's
  ``MultiLabelLinear`` on USE embeddings, default settings) trained on each method's consensus
  over the train split.
- ``sim``: simulated crowds. Per example keep ``r`` (1 or 2) of its real annotations (chosen at
  random) and add 8 synthetic annotators, each judging an example with probability 0.35:
  ``mixed`` = 2 good (every cell right with prob 0.9), 2 careless (0.7), 2 always-positive
  spammers, 2 adversarial (right with prob 0.25); ``spammy`` = 1 good, 2 careless, 4 spammers,
  1 adversarial. Planted quality = balanced accuracy (0.9, 0.7, 0.5, 0.25). Reported: consensus
  macro-F1 against the full-crowd gold on the test items, and the Spearman correlation between
  each method's annotator quality and the planted one (synthetic annotators only).
- ``relabel``: start from one real annotation per example; each of 5 rounds adds one held-back
  real annotation to ``budget`` examples picked by tagwise's ``suggest_relabel``, ActiveLab
  (cleanlab ``get_active_learning_scores``; an example scores its lowest label) or at random.
  Reported: consensus macro-F1 (test items) after each round, with tagwise's consensus for all
  three rules and with cleanlab's CROWDLAB consensus for ActiveLab.
- ``scale``: time and peak RSS of one consensus fit on 1M synthetic single-label annotations
  (200k examples x 5, 50 annotators), tagwise vs crowd-kit DawidSkene, each in its own process;
  tagwise also on 10 labels at once.
- ``criteria``: could the consensus be chosen per dataset from the votes alone? Held-out vote
  likelihood / agreement / kappa of each candidate (two-coin, one-coin, vote shares, two-coin with
  the classifier prior) on the real crowd and on seed-100 simulated crowds, next to train-item F1.
- ``relabel_choose``: the constants of tagwise's relabel rule (look-ahead, the next annotator's
  rates, label weights; ``select.relabel``) on the *train* items with seeds 100-102.
- ``independence``: residual correlation of the real annotators' votes within the consensus's
  latent classes (the conditional-independence check of Dawid-Skene; votes only, no gold).
- ``choose``: the defaults of ConsensusModel (``rates``, ``pool``, ``prior_strength``, ``use_classifier``)
  compared on the *train* items only: simulated crowds with seed 100 (never the report seeds)
  and the real crowd against the train items' gold.

Peers get the same inputs: crowd-kit's DawidSkene, MACE, GLAD and MajorityVote run per label
(they are single-label); cleanlab's ``get_label_quality_multiannotator`` runs per label with the
same out-of-fold classifier probabilities that tagwise's consensus uses (ridge cross-fitting on
USE embeddings, targets = the majority-vote decisions).

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 TAGWISE_CACHE_DIR=/work/.cache/embeddings \
     PYTHONPATH=src python bench/bench_consensus.py --part real sim relabel scale

Run times on the shared 2-core machine (load 14-20, one thread): ``--part real --skip crowdkit_glad
crowdkit_mace`` 4 min and ``--part criteria`` 8 min (the ~10-minute check of a change); crowd-kit's
GLAD and MACE take 5-6 min per HS-Brexit fit and 10-38 min per ConvAbuse fit, and its DawidSkene
1-4 min per simulated-crowd fit, so ``--part sim`` with every peer (at their documented defaults)
takes hours. It is run as one command all the same: a results file is never merged from parts.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _crowd_data import LOADERS  # noqa: E402
from _stats import compare, mean_sd  # noqa: E402
from common import CACHE, peak_rss_mb, save_results  # noqa: E402

from tagwise.audit.oof import ridge_out_of_fold_proba  # noqa: E402
from tagwise.learn.consensus import (Annotations, annotator_quality, consensus,  # noqa: E402
                                     majority_vote)
from tagwise.learn.linear import MultiLabelLinear  # noqa: E402
from tagwise.select.relabel import next_annotator_rates, pooled_rates, suggest_relabel  # noqa: E402

warnings.filterwarnings("ignore")
PEERS = ["majority", "crowdkit_ds", "crowdkit_mace", "crowdkit_glad", "cleanlab"]
TAGWISE = ["tagwise", "tagwise_clf"]  # default (no classifier prior), with the classifier prior
RESULT_FILE = "consensus"


def embed(texts):
    from tagwise.encoders import embed_texts, get_encoder
    X, _ = embed_texts(texts, get_encoder("use"), CACHE, progress=False)
    return X


def macro_f1(gold, decided, rows):
    """Macro-F1 over labels with at least one gold positive among ``rows``."""
    ks = [k for k in range(gold.shape[1]) if gold[rows, k].any()]
    return float(np.mean([f1_score(gold[rows, k], decided[rows, k], zero_division=0) for k in ks]))


def oof_probs(X, ann):
    """Out-of-fold classifier probabilities from majority-vote targets (ties positive)."""
    target = (majority_vote(ann, tie=1.0) >= 0.5).astype(np.float32)
    return ridge_out_of_fold_proba(X, target, progress=False).astype(np.float64)


# ----------------------------------------------------------------------------- methods
# Every crowd-kit peer runs with its documented defaults, in every part (issue 29: the simulation
# loop used to cap MACE at n_restarts=1 and GLAD at n_iter=25 to save time). DawidSkene's n_iter=100
# is its default, written out. Recorded in each results file as "peer_params".
PEER_PARAMS = {"crowdkit_ds": {"n_iter": 100}, "crowdkit_mace": {}, "crowdkit_glad": {}, "crowdkit_mv": {}}


def run_crowdkit(name, ann, k):
    """-> (proba (n,), quality (A,) NaN for annotators without votes)."""
    import pandas as pd
    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote
    V = ann.votes()[:, k]
    df = pd.DataFrame({"worker": ann.annotator[V], "task": ann.example[V], "label": ann.labels[V, k].astype(int)})
    q = np.zeros(ann.n_examples)
    qual = np.full(ann.n_annotators, np.nan)
    if df.empty:
        return q, qual
    model = {"crowdkit_ds": DawidSkene, "crowdkit_mace": MACE, "crowdkit_glad": GLAD,
             "crowdkit_mv": MajorityVote}[name](**PEER_PARAMS[name]).fit(df)
    probas = model.probas_
    if 1 in probas.columns:
        q[probas.index.to_numpy(dtype=int)] = probas[1].to_numpy()
    if name == "crowdkit_ds":
        err = model.errors_
        # errors_: rows (worker, observed label), columns true label; a worker who never gave a
        # label has no row for it, i.e. P(observed = that label | truth) = 0.
        for w in np.unique(df.worker):
            s = err.loc[(w, 1), 1] if (w, 1) in err.index and 1 in err.columns else 0.0
            t = err.loc[(w, 0), 0] if (w, 0) in err.index and 0 in err.columns else 0.0
            qual[w] = (s + t) / 2
    elif name == "crowdkit_mace":
        workers, names = pd.factorize(df["worker"])
        qual[np.asarray(names, int)] = model.spamming_[:, 1]  # P(not spamming)
    elif name == "crowdkit_glad":
        qual[model.alphas_.index.to_numpy(dtype=int)] = model.alphas_.to_numpy()
    return q, qual


def run_cleanlab(ann, k, pred_probs):
    """CROWDLAB consensus of label k -> (decision (n,) float, quality (A,))."""
    from cleanlab.multiannotator import get_label_quality_multiannotator
    L = np.full((ann.n_examples, ann.n_annotators), np.nan)
    V = ann.votes()[:, k]
    L[ann.example[V], ann.annotator[V]] = ann.labels[V, k]
    used = ~np.isnan(L).all(0)
    has = ~np.isnan(L).all(1)
    q = np.zeros(ann.n_examples)
    qual = np.full(ann.n_annotators, np.nan)
    P = np.clip(np.stack([1 - pred_probs[has, k], pred_probs[has, k]], 1), 1e-4, 1 - 1e-4)
    P /= P.sum(1, keepdims=True)
    Lu = L[has][:, used]
    if (np.sum(~np.isnan(Lu), axis=1) == 1).all():  # one label each: cleanlab's consensus is that label
        q[has] = np.nanmax(Lu, axis=1)
        return q, qual
    if np.nanmax(Lu) == np.nanmin(Lu):  # cleanlab needs both classes present
        q[has] = np.nanmax(Lu)
        return q, qual
    out = get_label_quality_multiannotator(Lu, P, verbose=False, return_detailed_quality=False)
    q[has] = out["label_quality"]["consensus_label"].to_numpy()
    st = out["annotator_stats"]
    qual[np.flatnonzero(used)[st.index.to_numpy(dtype=int)]] = st["annotator_quality"].to_numpy()
    return q, qual


def run_method(name, ann, pred_probs, params=None):
    """-> (proba (n, K), quality (A,) mean over labels)."""
    n, K, A = ann.n_examples, ann.n_labels, ann.n_annotators
    if name in TAGWISE:
        r = (consensus(ann, pred_probs, use_classifier=True, **(params or {})) if name == "tagwise_clf"
             else consensus(ann, **(params or {})))
        return r.proba, annotator_quality(r)
    if name == "majority":
        share = majority_vote(ann, tie=0.5)
        decided = share > 0.5
        V = ann.votes()
        agree = (ann.labels == decided[ann.example]) & V
        qual = np.bincount(ann.annotator, agree.sum(1), A) / np.maximum(np.bincount(ann.annotator, V.sum(1), A), 1)
        return share, qual
    Q = np.zeros((n, K))
    quals = np.full((K, A), np.nan)
    for k in range(K):
        if name == "cleanlab":
            Q[:, k], quals[k] = run_cleanlab(ann, k, pred_probs)
        else:
            Q[:, k], quals[k] = run_crowdkit(name, ann, k)
    return Q, np.nanmean(quals, 0)


def decide(proba):
    return (proba >= 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- part: real
def part_real(data, X, methods=None):
    ann, gold, split = data["ann"], data["gold"], data["split"]
    P = oof_probs(X, ann)
    test, train = split == "test", split == "train"
    out = {}
    for name in methods or TAGWISE + PEERS:
        t0 = time.perf_counter()
        Q, _ = run_method(name, ann, P)
        secs = time.perf_counter() - t0
        D = (Q > 0.5).astype(np.uint8) if name == "majority" else decide(Q)
        # The same classifier trained on each consensus (train split), scored on the test gold.
        clf = MultiLabelLinear().fit(X[train], D[train])
        pred = clf.predict(X[test])
        # ... and on the consensus probabilities as soft targets (what `tagwise train` does by default)
        soft = MultiLabelLinear().fit(X[train], np.clip(Q[train], 0, 1)).predict(X[test])
        every = np.ones(test.sum(), bool)
        out[name] = {"agreement_macro_f1_test": macro_f1(gold, D, test),
                     "cell_accuracy_test": float((D[test] == gold[test]).mean()),
                     "classifier_test_macro_f1": macro_f1(gold[test], pred, every),
                     "classifier_soft_test_macro_f1": macro_f1(gold[test], soft, every),
                     "seconds": secs}
        print(f"  {data['name']} real {name:14s} agree-F1 {out[name]['agreement_macro_f1_test']:.3f} "
              f"clf-F1 {out[name]['classifier_test_macro_f1']:.3f} soft {out[name]['classifier_soft_test_macro_f1']:.3f}"
              f" ({secs:.1f}s)", flush=True)
    return out


# ----------------------------------------------------------------------------- part: sim
CROWDS = {"mixed": [("good", 2), ("careless", 2), ("spammer", 2), ("adversarial", 2)],
          "spammy": [("good", 1), ("careless", 2), ("spammer", 4), ("adversarial", 1)]}
ACCURACY = {"good": 0.9, "careless": 0.7, "adversarial": 0.25}
PLANTED = {"good": 0.9, "careless": 0.7, "spammer": 0.5, "adversarial": 0.25}
COVERAGE = 0.35


def simulate(data, keep, crowd, seed):
    """-> (Annotations with the kept real + synthetic judgements, planted quality (A,) NaN for real)."""
    rng = np.random.default_rng(seed)
    ann, gold = data["ann"], data["gold"]
    n, K, A0 = ann.n_examples, ann.n_labels, ann.n_annotators
    order = rng.permutation(len(ann.example))
    rank = np.zeros(len(order), int)
    # rank of each judgement within its example, in random order: keep ranks < keep
    ex_sorted = ann.example[order]
    srt = np.argsort(ex_sorted, kind="stable")
    first = np.r_[0, np.flatnonzero(np.diff(ex_sorted[srt])) + 1]
    counts = np.diff(np.r_[first, len(srt)])
    within = np.arange(len(srt)) - np.repeat(first, counts)
    rank[order[srt]] = within
    kept = rank < keep
    ex, an, Y = [ann.example[kept]], [ann.annotator[kept]], [ann.labels[kept]]
    planted = [np.nan] * A0
    a = A0
    for kind, count in CROWDS[crowd]:
        for _ in range(count):
            rows = np.flatnonzero(rng.random(n) < COVERAGE)
            if kind == "spammer":
                votes = np.ones((len(rows), K), np.uint8)
            else:
                right = rng.random((len(rows), K)) < ACCURACY[kind]
                votes = np.where(right, gold[rows], 1 - gold[rows]).astype(np.uint8)
            ex.append(rows)
            an.append(np.full(len(rows), a))
            Y.append(votes)
            planted.append(PLANTED[kind])
            a += 1
    sim = Annotations.from_arrays(np.concatenate(ex), np.concatenate(an), np.concatenate(Y),
                                  n_examples=n, n_annotators=a)
    return sim, np.array(planted)


def part_sim(data, X, seeds, rows_name="test", methods=None, params=None):
    rows = data["split"] == rows_name
    out = {}
    secs = {}
    for keep in (1, 2):
        for crowd in CROWDS:
            per = {m: {"macro_f1": [], "spearman": []} for m in (methods or TAGWISE + PEERS)}
            for seed in seeds:
                sim, planted = simulate(data, keep, crowd, seed)
                P = oof_probs(X, sim)
                syn = ~np.isnan(planted)
                for m in per:
                    t0 = time.perf_counter()
                    Q, qual = run_method(m, sim, P, params if m in TAGWISE else None)
                    secs[m] = secs.get(m, 0.0) + time.perf_counter() - t0
                    D = (Q > 0.5).astype(np.uint8) if m == "majority" else decide(Q)
                    per[m]["macro_f1"].append(macro_f1(data["gold"], D, rows))
                    per[m]["spearman"].append(float(spearmanr(qual[syn], planted[syn]).correlation))
            key = f"keep{keep}_{crowd}"
            out[key] = {m: {"seconds_so_far": secs[m], "macro_f1": float(np.mean(v["macro_f1"])), "macro_f1_seeds": v["macro_f1"],
                            "macro_f1_mean_sd": mean_sd(v["macro_f1"]),
                            "spearman": float(np.nanmean(v["spearman"])), "spearman_seeds": v["spearman"]}
                        for m, v in per.items()}
            # every tagwise method against every peer, seed by seed (a mean can hide 16 losses in 32)
            out[key]["wins_losses_macro_f1"] = {f"{t} vs {p}": compare(per[t]["macro_f1"], per[p]["macro_f1"])
                                                for t in per if t in TAGWISE for p in per if p not in TAGWISE}
            print(f"  {data['name']} sim {key}: " + ", ".join(
                f"{m} {v['macro_f1']:.3f}/{v['spearman']:.2f}" for m, v in out[key].items() if m in per), flush=True)
    # wall time of each method over every setting and seed of this dataset (fits only, not the shared
    # simulation and classifier probabilities)
    out["seconds_by_method"] = {m: round(v, 2) for m, v in secs.items()}
    return out


# ----------------------------------------------------------------------------- part: relabel
# Look-ahead of tagwise's relabel rule (select.relabel): the library default, chosen with the
# label weights by --part relabel_choose on the train items with seeds 100-102.
from tagwise.select.relabel import DEFAULT_HORIZON as RELABEL_HORIZON  # noqa: E402


def part_relabel_choose(data, X):
    """The look-ahead ``horizon`` of tagwise's relabel rule, the next annotator's rates and the
    label weights, on the *train* items with seeds 100-102 (never the report seeds 0-5 or the
    test items)."""
    rules = [f"tagwise_h{h}{w}" for w in ("", "w", "m") for h in (1, 2, 3)]
    return part_relabel(data, X, [100, 101, 102], rows_name="train", rules=rules)


def activelab_scores(ann, P):
    """ActiveLab per label; an example's score is its lowest (most in need) label score."""
    from cleanlab.multiannotator import get_active_learning_scores
    scores = np.full((ann.n_examples, ann.n_labels), np.inf)
    for k in range(ann.n_labels):
        L = np.full((ann.n_examples, ann.n_annotators), np.nan)
        V = ann.votes()[:, k]
        L[ann.example[V], ann.annotator[V]] = ann.labels[V, k]
        used = ~np.isnan(L).all(0)
        Pk = np.clip(np.stack([1 - P[:, k], P[:, k]], 1), 1e-4, 1 - 1e-4)
        Pk /= Pk.sum(1, keepdims=True)
        try:
            s, _ = get_active_learning_scores(L[:, used], Pk)
        except Exception:  # one class only among the votes: ActiveLab cannot score this label
            continue
        scores[:, k] = s
    return scores.min(1)


def part_relabel(data, X, seeds, rounds=5, budget_share=0.05, rows_name="test",
                 rules=("tagwise", "activelab", "random"), horizon=RELABEL_HORIZON):
    """``rules``: "tagwise" (``suggest_relabel`` with its defaults), "tagwise_h<H>[w][m]" (variants,
    see below), "activelab", "random". Scored on the ``rows_name`` items."""
    ann, gold, split = data["ann"], data["gold"], data["split"]
    n = ann.n_examples
    test = split == rows_name
    budget = int(round(budget_share * n))
    out = {}
    for rule in rules:
        curves, native = [], []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(ann.example))
            # Per example, a random queue of its real judgements; the first is given at the start.
            queue = {}
            for j in order:
                queue.setdefault(int(ann.example[j]), []).append(int(j))
            shown = np.zeros(len(ann.example), bool)
            for i, js in queue.items():
                shown[js[0]] = True
                js.pop(0)
            curve, nat = [], []
            for rnd in range(rounds + 1):
                cur = ann.subset(shown)
                P = oof_probs(X, cur)
                r = consensus(cur, P)
                curve.append(macro_f1(gold, decide(r.proba), test))
                if rule == "activelab":
                    Q, _ = run_method("cleanlab", cur, P)
                    nat.append(macro_f1(gold, decide(Q), test))
                if rnd == rounds:
                    break
                left = np.array([len(queue.get(i, [])) == 0 for i in range(n)])
                if rule.startswith("tagwise"):
                    # variant names: tagwise_h<H>[w][m]: look-ahead H; w = the rates of the annotators
                    # who have not judged the example (else the crowd's pooled rates); m = labels
                    # weighted by macro_label_weights (else equal). "tagwise" = the library default.
                    spec = rule[len("tagwise_h"):] if rule.startswith("tagwise_h") else f"{horizon}m"
                    h, who, macro = int(spec.rstrip("wm")), "w" in spec, spec.endswith("m")
                    # as `suggest --relabel`: no cap on the look-ahead by the annotators left (a project
                    # does not know who else may annotate); examples without a held-back vote excluded
                    if who:
                        s, t, _ = next_annotator_rates(cur.example, cur.annotator, n, r.sensitivity,
                                                       r.specificity, r.n_examples)
                    else:
                        s, t = pooled_rates(r.sensitivity, r.specificity, r.n_examples)
                    pick = suggest_relabel(r.proba, s, t, budget, exclude=left, horizon=h,
                                           label_weights="macro" if macro else None)
                elif rule == "activelab":
                    sc = np.where(left, np.inf, activelab_scores(cur, P))
                    pick = np.argsort(sc, kind="stable")[:budget]
                else:
                    pick = rng.permutation(np.flatnonzero(~left))[:budget]
                for i in pick:
                    shown[queue[int(i)].pop(0)] = True
            curves.append(curve)
            native.append(nat)
        out[rule] = {"extra_annotations_per_round": budget,
                     "tagwise_consensus_macro_f1": np.mean(curves, 0).tolist(),
                     "per_seed": curves}
        if rule == "activelab":
            out[rule]["cleanlab_consensus_macro_f1"] = np.mean(native, 0).tolist()
        print(f"  {data['name']} relabel {rule}: " + " ".join(f"{v:.3f}" for v in out[rule]["tagwise_consensus_macro_f1"])
              + ("  (cleanlab consensus " + " ".join(f"{v:.3f}" for v in out[rule]["cleanlab_consensus_macro_f1"]) + ")"
                 if rule == "activelab" else ""), flush=True)
    return out


# ----------------------------------------------------------------------------- part: scale
def synthetic_scale(n=200_000, per=5, A=50, K=1, seed=0):
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, K)) < 0.3).astype(np.uint8)
    acc = rng.uniform(0.55, 0.95, A)
    ex = np.repeat(np.arange(n), per)
    an = np.concatenate([rng.choice(A, per, replace=False) for _ in range(n)]) if n <= 20_000 else \
        (np.tile(np.arange(per), n) * (A // per) + rng.integers(0, A // per, n * per)) % A
    right = rng.random((n * per, K)) < acc[an][:, None]
    Y = np.where(right, truth[ex], 1 - truth[ex]).astype(np.uint8)
    return ex, an, Y, truth


def scale_one(method, K):
    ex, an, Y, truth = synthetic_scale(K=K)
    base = peak_rss_mb()
    t0 = time.perf_counter()
    if method == "tagwise":
        r = consensus(Annotations.from_arrays(ex, an, Y))
        acc, iters = float(((r.proba >= 0.5) == truth).mean()), r.n_iter
    else:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
        df = pd.DataFrame({"worker": an, "task": ex, "label": Y[:, 0].astype(int)})
        m = DawidSkene(n_iter=100).fit(df)
        pred = m.labels_.reindex(np.arange(len(truth))).to_numpy()
        acc, iters = float((pred == truth[:, 0]).mean()), len(getattr(m, "loss_history_", [])) or None
    secs = time.perf_counter() - t0
    print(json.dumps({"method": method, "K": K, "annotations": len(ex), "seconds": secs,
                      "peak_rss_mb": peak_rss_mb(), "rss_before_fit_mb": base, "accuracy": acc, "iterations": iters}))


def part_scale():
    out = {}
    for method, K in (("tagwise", 1), ("crowdkit_ds", 1), ("tagwise", 10)):
        res = subprocess.run([sys.executable, __file__, "--scale-one", method, str(K)], capture_output=True, text=True)
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
        if not line:
            print(res.stderr[-2000:])
            continue
        rec = json.loads(line[-1])
        out[f"{method}_K{K}"] = rec
        print(f"  scale {method} K={K}: {rec['seconds']:.1f}s, peak {rec['peak_rss_mb']:.0f} MB, acc {rec['accuracy']:.4f}",
              flush=True)
    if "tagwise_K1" in out and "crowdkit_ds_K1" in out:
        out["speedup_tagwise_vs_crowdkit_K1"] = out["crowdkit_ds_K1"]["seconds"] / out["tagwise_K1"]["seconds"]
    return out


# ----------------------------------------------------------------------------- part: choose
def part_choose(data, X):
    """The defaults of ConsensusModel, on the *train* items only: simulated crowds of seed 100
    (never the report seeds 0-1) and the real crowd against the train items' gold."""
    train = data["split"] == "train"
    P = oof_probs(X, data["ann"])
    res = {}
    grid = [("two-coin", "label", c) for c in (1.0, 4.0, 16.0)] + \
        [("two-coin", "annotator", c) for c in (1.0, 4.0, 16.0)] + [("one-coin", "label", 4.0)]
    for rates, pool, c in grid:
        for method in ("tagwise", "tagwise_clf"):
            params = {"prior_strength": c, "rates": rates, "pool": pool}
            sim = part_sim(data, X, seeds=[100], rows_name="train", methods=[method], params=params)
            Q, _ = run_method(method, data["ann"], P, params)
            key = f"{rates}|pool={pool}|prior_strength={c}|classifier={method == 'tagwise_clf'}"
            res[key] = {"sim_train_macro_f1": float(np.mean([v[method]["macro_f1"] for v in sim.values()])),
                        "real_train_macro_f1": macro_f1(data["gold"], decide(Q), train)}
            print(f"  choose {data['name']} {key}: {res[key]}", flush=True)
    return res


# ----------------------------------------------------------------------------- part: criteria
def heldout_vote_criteria(ann, fit_proba, X, folds=5, seed=0):
    """How well a consensus fitted without some votes predicts them: the judgements are split in
    ``folds`` (an example's first judgement always stays in), the consensus ``fit_proba(train
    annotations, X) -> (n, K)`` is fitted without fold f, each annotator's two-coin rates are
    re-estimated from that consensus on its training votes, and the held-out votes are scored.
    Returns (mean log-likelihood per held-out vote, share of held-out votes equal to the consensus
    decision, count-weighted Cohen's kappa of annotator vs decision). Uses votes only, no gold."""
    rng = np.random.default_rng(seed)
    m = len(ann.example)
    fold = rng.integers(0, folds, m)
    order = np.argsort(ann.example, kind="stable")
    first = np.r_[True, np.diff(ann.example[order]) != 0]
    fold[order[first]] = -1
    V = ann.votes()
    A, K = ann.n_annotators, ann.n_labels
    ll, cnt, table = 0.0, 0, np.zeros((A, K, 2, 2))
    for f in range(folds):
        te, tr = fold == f, fold != f
        q = fit_proba(ann.subset(tr), X)
        e, a, Y, Vt = ann.example[tr], ann.annotator[tr], ann.labels[tr].astype(float), V[tr]
        qe = q[e]
        tp, p1, tn, n0 = (np.zeros((A, K)) for _ in range(4))
        np.add.at(tp, a, qe * Y * Vt)
        np.add.at(p1, a, qe * Vt)
        np.add.at(tn, a, (1 - qe) * (1 - Y) * Vt)
        np.add.at(n0, a, (1 - qe) * Vt)
        s, t = (tp + 1) / (p1 + 2), (tn + 1) / (n0 + 2)
        e, a, Y, Vt = ann.example[te], ann.annotator[te], ann.labels[te], V[te]
        qe = q[e]
        pv = np.clip(qe * s[a] + (1 - qe) * (1 - t[a]), 1e-6, 1 - 1e-6)
        ll += float((np.where(Y == 1, np.log(pv), np.log1p(-pv)) * Vt).sum())
        cnt += int(Vt.sum())
        D = (qe >= 0.5).astype(int)
        for k in range(K):
            v = Vt[:, k]
            np.add.at(table, (a[v], k, D[v, k], Y[v, k]), 1)
    n = table.sum((2, 3))
    po = (table[..., 0, 0] + table[..., 1, 1]) / np.maximum(n, 1)
    pd1, py1 = table[..., 1, :].sum(-1) / np.maximum(n, 1), table[..., :, 1].sum(-1) / np.maximum(n, 1)
    pe = pd1 * py1 + (1 - pd1) * (1 - py1)
    kappa = np.where(pe < 1, (po - pe) / np.maximum(1 - pe, 1e-9), 0.0)
    return ll / cnt, float((po * n).sum() / n.sum()), float((kappa * n).sum() / n.sum())


CANDIDATES = {
    "two-coin": lambda a, X: consensus(a).proba,
    "one-coin": lambda a, X: consensus(a, rates="one-coin").proba,
    "vote-share": lambda a, X: majority_vote(a, tie=0.5),
    "two-coin+classifier": lambda a, X: consensus(a, oof_probs(X, a), use_classifier=True).proba,
}


def part_criteria(data, X):
    """Could a per-dataset choice judged from the votes alone pick the better consensus? For each
    candidate, the held-out vote criteria (``heldout_vote_criteria``; the classifier prior is
    re-fitted per fold on the training votes only) on the real crowd and the simulated crowds of
    seed 100, next to the consensus macro-F1 on the *train* items (shown to judge the criteria,
    never used to choose)."""
    train = data["split"] == "train"
    settings = [("real", data["ann"])] + [(f"keep{keep}_{crowd}", simulate(data, keep, crowd, 100)[0])
                                          for keep in (1, 2) for crowd in CROWDS]
    out = {}
    for sname, ann in settings:
        out[sname] = {}
        for cname, fit in CANDIDATES.items():
            ll, acc, kappa = heldout_vote_criteria(ann, fit, X)
            q = fit(ann, X)
            D = (q > 0.5) if cname == "vote-share" else (q >= 0.5)
            out[sname][cname] = {"heldout_vote_loglik": ll, "heldout_vote_agreement": acc, "heldout_vote_kappa": kappa,
                                 "train_macro_f1": macro_f1(data["gold"], D.astype(np.uint8), train)}
        best = max(out[sname], key=lambda c: out[sname][c]["heldout_vote_loglik"])
        out[sname]["picked_by_loglik"] = best
        print(f"  criteria {data['name']} {sname}: " + ", ".join(
            f"{c} ll {v['heldout_vote_loglik']:.4f} F1 {v['train_macro_f1']:.3f}"
            for c, v in out[sname].items() if isinstance(v, dict)) + f" -> {best}", flush=True)
    return out


# ----------------------------------------------------------------------------- part: independence
def residual_correlation(ann, proba):
    """(K, 2, A, A) correlation of the annotators' votes within each latent class of a consensus
    (weighted by the posterior: class 1 by ``proba``, class 0 by ``1 - proba``), on the examples
    every annotator judged. Dawid-Skene assumes votes independent given the true label, i.e.
    these correlations near 0; a block of positive ones is a group of annotators who share a
    notion of the label that the others do not. Votes only, no gold."""
    A, K = ann.n_annotators, ann.n_labels
    full = np.bincount(ann.example, minlength=ann.n_examples) == A
    V = np.zeros((ann.n_examples, A, K))
    V[ann.example, ann.annotator] = ann.labels
    out = np.zeros((K, 2, A, A))
    for k in range(K):
        for c, w in enumerate((1 - proba[full, k], proba[full, k])):
            Z = V[full, :, k] - (w[:, None] * V[full, :, k]).sum(0) / w.sum()
            C = (w[:, None, None] * Z[:, :, None] * Z[:, None, :]).sum(0) / w.sum()
            sd = np.sqrt(np.maximum(np.diag(C), 1e-12))
            out[k, c] = C / np.outer(sd, sd)
    return out


def part_independence(data):
    """Is the conditional-independence assumption of Dawid-Skene plausible on the real crowd?
    Residual vote correlations within the latent classes of tagwise's consensus (all items, no
    gold), summarised per annotator group where the dataset names groups (HS-Brexit: Ann1-3
    target group, Ann4-6 control group), and the consensus prevalence next to the majority's."""
    ann = data["ann"]
    if not (np.bincount(ann.example, minlength=ann.n_examples) == ann.n_annotators).any():
        return {"skipped": "no example judged by every annotator (the check needs a fully crossed panel)"}
    r = consensus(ann)
    R = residual_correlation(ann, r.proba)
    A = ann.n_annotators
    groups = data.get("annotator_groups")
    out = {"prevalence_consensus": r.proba.mean(0).tolist(),
           "prevalence_majority": (majority_vote(ann, tie=0.0) > 0.5).mean(0).tolist(), "labels": {}}
    off = ~np.eye(A, dtype=bool)
    for k, name in enumerate(data["label_names"]):
        rec = {"mean_offdiag_class1": float(R[k, 1][off].mean()), "mean_offdiag_class0": float(R[k, 0][off].mean()),
               "class1": np.round(R[k, 1], 3).tolist()}
        if groups is not None:
            g = np.asarray(groups)
            for cls in (0, 1):
                for gname in np.unique(g):
                    m = np.outer(g == gname, g == gname) & off
                    rec[f"within_{gname}_class{cls}"] = float(R[k, cls][m].mean())
                m = np.not_equal.outer(g, g)
                rec[f"across_groups_class{cls}"] = float(R[k, cls][m].mean())
        out["labels"][name] = rec
        print(f"  independence {data['name']} {name}: " + ", ".join(
            f"{key} {v:.2f}" for key, v in rec.items() if not isinstance(v, list)), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", nargs="+", default=["real", "sim", "relabel", "scale"])
    ap.add_argument("--datasets", nargs="+", default=["hs_brexit", "convabuse"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (seeds 100+ are the choice seeds)")
    ap.add_argument("--rows", default="test", help="--part sim: score on these split items (train: a check "
                    "on the choice seeds that never touches the test items)")
    ap.add_argument("--scale-one", nargs=2)
    ap.add_argument("--out", default=RESULT_FILE)
    ap.add_argument("--methods", nargs="*", help="--part real / sim: run only these methods")
    ap.add_argument("--skip", nargs="*", default=[],
                    help="peers that --part sim leaves out (GLAD and MACE take minutes per fit here)")
    args = ap.parse_args()
    if args.scale_one:
        scale_one(args.scale_one[0], int(args.scale_one[1]))
        return
    results = {"peer_params": PEER_PARAMS}  # this run only: nothing is read back or merged
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    for part in args.part:
        t0 = time.perf_counter()
        if part == "scale":
            results["scale"] = part_scale()
        else:
            for name in tqdm(args.datasets, desc=part):
                data = LOADERS[name]()
                X = embed(data["texts"])
                sim_methods = [m for m in (args.methods or TAGWISE + PEERS) if m not in args.skip]
                fn = {"real": lambda: part_real(data, X, sim_methods), "sim": lambda: part_sim(data, X, seeds, rows_name=args.rows, methods=sim_methods),
                      "relabel": lambda: part_relabel(data, X, seeds), "choose": lambda: part_choose(data, X),
                      "criteria": lambda: part_criteria(data, X),
                      "relabel_choose": lambda: part_relabel_choose(data, X),
                      "independence": lambda: part_independence(data)}[part]
                results.setdefault(part, {})[name] = fn()
                save_results(args.out, results)
        results.setdefault("seconds", {})[part] = time.perf_counter() - t0
        save_results(args.out, results)


if __name__ == "__main__":
    main()
