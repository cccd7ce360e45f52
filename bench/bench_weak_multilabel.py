"""Multi-label weak supervision on SemEval-2018 E-c (11 emotions): LFs written from label names only.

The LFs (bench/lfs/semeval2018.yaml) were written from the label names and common emotion words
before any SemEval text was read. Same votes for every label model:

- tagwise ``WeakLabelModel`` (one multi-label model, positive and negative votes, label coupling
  from the dev split's co-occurrences; "tagwise_no_coupling" is the same model without it);
- Snorkel 0.10 ``LabelModel`` run per label (binary: the label's positive votes = 1, negative = 0);
- majority vote per label (Snorkel's ``MajorityLabelVoter`` per label);

each given the per-label balance measured on dev (tagwise also the dev split's pairwise label
co-occurrences, which per-label Snorkel and majority vote have no way to take; both also appear
run through tagwise's coupling step). Label-model macro-F1 on test at P >= 0.5 (what
``predict`` gives) and with each label's threshold chosen on dev (the same for every method), and an
end model (one logistic regression per label on USE embeddings, trained on each label model's soft
labels over all train tweets, its threshold per label chosen on dev; the same for all). Beside them:
tagwise zero-shot (label names only) and few-shot at 8 labeled tweets per label (mean of 3 draws).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 TAGWISE_CACHE_DIR=/work/.cache/embeddings \
        PYTHONPATH=src python bench/bench_weak_multilabel.py [--tune]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fewshot_data import macro_f1, sample_k_per_label  # noqa: E402
from common import BENCH, CACHE, load_dataset, peak_rss_mb, save_results  # noqa: E402

from tagwise.encoders import embed_texts, get_encoder  # noqa: E402
from tagwise.learn.fewshot import FewShotClassifier  # noqa: E402
from tagwise.learn.labelmodel import WeakLabelModel, apply_label_coupling, label_coupling_from_gold  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402
from tagwise.learn.lfs import LFContext, apply_lfs, load_lfs  # noqa: E402

LF_FILE = BENCH / "lfs" / "semeval2018.yaml"


# Snorkel's LabelModel gets a dev grid as large as tagwise's (4 abstain weights + 5 coupling
# strengths = 9 points; this one 2 x 4 = 8), its LF precision prior included, chosen by the same
# criterion as tagwise's abstain weight: dev macro-F1 of P >= 0.5. Test takes no part.
SNORKEL_GRID = {"lr": (0.01, 0.001), "prec_init": (0.6, 0.7, 0.8, 0.9)}


def tune_snorkel(V, lf_labels, K, balance, Y_dev) -> tuple[dict, dict]:
    """-> (chosen params, {params as text: dev macro-F1}) over ``SNORKEL_GRID``."""
    import itertools

    scores = {}
    for values in itertools.product(*SNORKEL_GRID.values()):
        params = dict(zip(SNORKEL_GRID, values))
        P_dev = snorkel_per_label(V["train"], [V["dev"]], lf_labels, K, balance, params)["snorkel_label_model"][0]
        scores[json.dumps(params)] = round(macro_f1(Y_dev, (P_dev >= 0.5).astype(np.uint8)), 4)
    best = max(scores, key=scores.get)  # ties: first in grid order
    print("snorkel grid -> dev macro-F1:", scores, flush=True)
    return json.loads(best), scores


def snorkel_per_label(V_tr, V_ev_list, lf_labels, K, balance, params=None):
    """Snorkel LabelModel per label on the binary votes of that label's LFs -> [P (n, K) per eval set].
    params: LabelModel.fit keywords (lr, prec_init, ...); None = Snorkel's defaults."""
    from snorkel.labeling.model import LabelModel, MajorityLabelVoter

    outs = {"snorkel_label_model": [np.zeros((V.shape[0], K)) for V in V_ev_list],
            "snorkel_majority_vote": [np.zeros((V.shape[0], K)) for V in V_ev_list]}
    for k in range(K):
        js = np.flatnonzero(lf_labels == k)

        def as_L(V):
            D = V[:, js].toarray()
            return np.where(D == 0, -1, (D > 0).astype(np.int64))

        lm = LabelModel(cardinality=2, verbose=False)
        lm.fit(as_L(V_tr), class_balance=np.array([1 - balance[k], balance[k]]), seed=0, progress_bar=False,
               **(params or {}))
        mv = MajorityLabelVoter(cardinality=2)
        for i, V in enumerate(V_ev_list):
            L = as_L(V)
            outs["snorkel_label_model"][i][:, k] = lm.predict_proba(L)[:, 1]
            P = mv.predict_proba(L)[:, 1]
            # uncovered rows: MV has no opinion (0.5); the dev balance decides, as for the others
            outs["snorkel_majority_vote"][i][:, k] = np.where((L != -1).any(axis=1), P, balance[k])
    return outs


def dev_thresholds(P_dev, Y_dev):
    """Per label, the F1-best cut on dev (candidates: dev probabilities' quantiles and 0.5)."""
    cuts = []
    for k in range(P_dev.shape[1]):
        cand = np.unique(np.r_[np.quantile(P_dev[:, k], np.linspace(0, 0.99, 100)), 0.5])
        f1s = [macro_f1(Y_dev[:, [k]], (P_dev[:, [k]] >= c).astype(np.uint8)) for c in cand]
        cuts.append(cand[int(np.argmax(f1s))])
    return np.array(cuts)


def tune_abstain_weight(V, lf_labels, K, balance, Y_dev) -> dict:
    """The multi-label abstain-weight default: dev macro-F1 of predict (P >= 0.5), dev only."""
    out = {}
    for aw in (0.0, 0.25, 0.5, 1.0):
        model = WeakLabelModel(n_labels=K, abstain_weight=aw).fit(V["train"], lf_labels, class_balance=balance)
        out[str(aw)] = round(macro_f1(Y_dev, model.predict(V["dev"])), 4)
    print("abstain_weight -> dev macro-F1 of predict:", out, flush=True)
    return out


def tune_coupling_strength(V, lf_labels, K, balance, Y_dev, X_tr, X_dev) -> dict:
    """The coupling-strength default, from dev only: dev is cut in two halves; for each half, the
    other half gives the co-occurrences, the label-model cuts and the end model's cuts, and this
    half scores them. Criterion: mean of label-model (dev cuts) and end-model macro-F1."""
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(Y_dev))
    halves = (perm[: len(perm) // 2], perm[len(perm) // 2:])
    out = {}
    for strength in (0.0, 0.25, 0.5, 0.75, 1.0):
        lm_f1, em_f1 = [], []
        for a, b in (halves, halves[::-1]):
            model = WeakLabelModel(n_labels=K, coupling_strength=strength).fit(
                V["train"], lf_labels, class_balance=balance, label_coupling=label_coupling_from_gold(Y_dev[a]))
            P_dev = model.predict_proba(V["dev"])
            cuts = dev_thresholds(P_dev[a], Y_dev[a])
            lm_f1.append(macro_f1(Y_dev[b], (P_dev[b] >= cuts[None, :]).astype(np.uint8)))
            em_f1.append(macro_f1(Y_dev[b], end_model(X_tr, model.predict_proba(V["train"]), X_dev[a], Y_dev[a],
                                                      X_dev[b])))
        out[str(strength)] = {"label_model": round(float(np.mean(lm_f1)), 4),
                              "end_model": round(float(np.mean(em_f1)), 4),
                              "mean": round(float(np.mean(lm_f1) + np.mean(em_f1)) / 2, 4)}
        print("coupling_strength", strength, "-> dev halves", out[str(strength)], flush=True)
    return out


def end_model(X_tr, P_tr, X_dev, Y_dev, X_te):
    """Per label: logistic regression on soft targets (rows duplicated as positive / negative with
    weights P / 1-P); threshold per label chosen on dev for F1. -> (n_test, K) predictions."""
    K = P_tr.shape[1]
    pred = np.zeros((len(X_te), K), dtype=np.uint8)
    for k in range(K):
        p = np.clip(P_tr[:, k], 0, 1)
        X2 = np.vstack([X_tr, X_tr])
        y2 = np.r_[np.ones(len(X_tr)), np.zeros(len(X_tr))]
        w2 = np.r_[p, 1 - p]
        keep = w2 > 1e-4
        if len(np.unique(y2[keep])) < 2:
            continue
        head = LogisticRegression(C=1.0, max_iter=300).fit(X2[keep], y2[keep], sample_weight=w2[keep])
        s_dev, s_te = head.predict_proba(X_dev)[:, 1], head.predict_proba(X_te)[:, 1]
        cuts = np.unique(np.quantile(s_dev, np.linspace(0, 0.99, 100)))
        f1s = [macro_f1(Y_dev[:, [k]], (s_dev >= c)[:, None]) for c in cuts]
        pred[:, k] = s_te >= cuts[int(np.argmax(f1s))]
    return pred


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="print the dev grids the defaults came from")
    args = parser.parse_args()
    t_start = time.perf_counter()
    data = load_dataset("semeval2018")
    names = list(data["labels"].names)
    K = len(names)
    splits = data["splits"]
    idx = {s: np.flatnonzero(splits == s) for s in ("train", "dev", "test")}
    X, Y, texts = data["X"], data["Y"], data["texts"]
    encoder = get_encoder("use")
    embed = lambda t: embed_texts(list(t), encoder, CACHE, progress=False)[0]  # noqa: E731
    lfs = load_lfs(LF_FILE, names)
    votes = {}
    for s, rows in idx.items():  # each split on its own: zero-shot LFs standardise over that split
        ctx = LFContext(embed=embed, label_names=names)
        out = apply_lfs(lfs, [texts[i] for i in rows], context=ctx, progress=False)
        votes[s] = out
    lf_labels = votes["train"].lf_labels(names)
    V = {s: v.votes for s, v in votes.items()}
    balance = np.clip(Y[idx["dev"]].mean(axis=0), 0.005, 0.995)
    res = {"n_lfs": len(lfs), "n_vote_columns": int(V["train"].shape[1]),
           "lf_kinds": {k: sum(lf.kind == k for lf in lfs) for k in ("keywords", "regex", "zero-shot")},
           "n_negative_lfs": sum(lf.vote < 0 for lf in lfs),
           "train_cell_coverage": round(float(np.mean([len(set(V["train"][:, lf_labels == k].tocoo().row))
                                                       for k in range(K)]) / len(idx["train"])), 4),
           "methods": {}}
    Xtr, Xdev, Xte = X[idx["train"]], X[idx["dev"]], X[idx["test"]]
    Yte, Ydev = Y[idx["test"]], Y[idx["dev"]]
    if args.tune:
        res["abstain_weight_choice_dev_macro_f1"] = tune_abstain_weight(V, lf_labels, K, balance, Ydev)
        res["coupling_strength_choice_dev_halves_macro_f1"] = tune_coupling_strength(
            V, lf_labels, K, balance, Ydev, Xtr, Xdev)
    t0 = time.perf_counter()
    tw = WeakLabelModel(n_labels=K).fit(V["train"], lf_labels, class_balance=balance,
                                        label_coupling=label_coupling_from_gold(Ydev))
    probs = {"tagwise": [tw.predict_proba(V[s]) for s in ("train", "dev", "test")]}
    res["tagwise_fit_s"] = round(time.perf_counter() - t0, 3)
    plain = WeakLabelModel(n_labels=K).fit(V["train"], lf_labels, class_balance=balance)
    probs["tagwise_no_coupling"] = [plain.predict_proba(V[s]) for s in ("train", "dev", "test")]
    snorkel_params, res["snorkel_grid_dev_macro_f1"] = tune_snorkel(V, lf_labels, K, balance, Ydev)
    res["snorkel_params_chosen_on_dev"] = snorkel_params
    res["snorkel_grid"] = {k: list(v) for k, v in SNORKEL_GRID.items()}
    t0 = time.perf_counter()
    probs.update(snorkel_per_label(V["train"], [V["train"], V["dev"], V["test"]], lf_labels, K, balance,
                                   snorkel_params))
    res["snorkel_fit_s_both"] = round(time.perf_counter() - t0, 3)
    # the peers through the same coupling step (tagwise's, same dev co-occurrences and strength):
    # how much of tagwise's margin is the coupling, how much the label model under it
    J = label_coupling_from_gold(Ydev)
    for peer in ("snorkel_label_model", "snorkel_majority_vote"):
        probs[peer + "_plus_tagwise_coupling"] = [apply_label_coupling(P, balance, J, tw.coupling_strength)
                                                  for P in probs[peer]]
    for method, (P_tr, P_dev, P_te) in probs.items():
        lm_f1 = macro_f1(Yte, (P_te >= 0.5).astype(np.uint8))
        lm_f1_dev_cut = macro_f1(Yte, (P_te >= dev_thresholds(P_dev, Ydev)[None, :]).astype(np.uint8))
        em_f1 = macro_f1(Yte, end_model(Xtr, P_tr, Xdev, Ydev, Xte))
        res["methods"][method] = {"label_model_test_macro_f1_at_0.5": round(lm_f1, 4),
                                  "label_model_test_macro_f1_dev_thresholds": round(lm_f1_dev_cut, 4),
                                  "end_model_test_macro_f1": round(em_f1, 4)}
        print(f"semeval2018 {method:22s} label model macro-F1 {lm_f1:.4f} (dev cuts {lm_f1_dev_cut:.4f}) | "
              f"end model macro-F1 {em_f1:.4f}", flush=True)
    zs = fit_zero_shot(names, Xtr, embed)
    res["methods"]["tagwise_zero_shot"] = {"test_macro_f1": round(macro_f1(Yte, zs.predict(Xte)), 4)}
    few = []
    for seed in range(3):
        pick = sample_k_per_label(Y[idx["train"]], 8, seed)
        model = FewShotClassifier(random_state=seed).fit(Xtr[pick], Y[idx["train"]][pick], zeroshot=zs, X_corpus=Xtr)
        few.append(macro_f1(Yte, model.predict(Xte)))
    res["methods"]["tagwise_few_shot_8_per_label"] = {"test_macro_f1_mean": round(float(np.mean(few)), 4),
                                                     "test_macro_f1_per_seed": [round(f, 4) for f in few]}
    print(f"semeval2018 zero-shot {res['methods']['tagwise_zero_shot']['test_macro_f1']:.4f} | few-shot 8/label "
          f"{np.mean(few):.4f}", flush=True)
    res["seconds"] = round(time.perf_counter() - t_start, 1)
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("saved", save_results("weak_multilabel", {"semeval2018": res}))


if __name__ == "__main__":
    main()
