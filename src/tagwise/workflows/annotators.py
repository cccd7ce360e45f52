"""Several annotators per example at project level: ingest, consensus targets, annotator report.

- ``add_annotated_source(project, spec)``: ingest a source with per-annotator labels (one row per
  judgement, wide, votes or long layout, ``sources/annotations.py``): one example row per example (labels = the strict
  majority, as before) plus every judgement in the store's ``annotations`` table.
- ``load_annotations(project)``: the project's judgements as ``learn.consensus.Annotations``.
- ``consensus_targets(project, method)``: per (example, label) probabilities for training.
- ``annotator_report(project)``: agreement per label, annotator quality, pairwise agreement, as
  a JSON-ready dict with the stable contract

      {"labels": {name: {"alpha": a}}, "annotators": {id: {"quality": q, "n_examples": n,
       "per_label": {name: {"sensitivity": s, "specificity": t}}}}}

  (``alpha`` is null where undefined: fewer than two judgements per example or one value only).
"""
from __future__ import annotations

import numpy as np

from ..annotations import judgement_unknown_labels
from ..evaluate.agreement import alpha_per_label, pairwise_agreement
from ..learn.consensus import Annotations, ConsensusModel, annotator_quality, majority_vote
from ..learn.multisource import max_up
from ..project import Project
from ..types import Examples, TagwiseError

# What ``train``, ``labels export`` and ``suggest --relabel`` use for an example several people
# annotated: ``model`` the annotator model's soft consensus (the default), ``model-classifier`` the
# same with the classifier's out-of-fold probabilities as a per-example prior (the CROWDLAB idea),
# ``majority`` the strict majority decision (ties undecided: 0.5), ``none`` no consensus (the stored
# labels, or the latest annotation a person gave: the rule before consensus existed). Soft targets
# by default because issue 18 asks for them (they keep a split vote's doubt); not tuned on any data.
CONSENSUS_METHODS = ("model", "model-classifier", "majority", "none")

# A crowd is sparse when the median annotated example has at most this many judgements; then
# ``model`` adds the classifier prior (as ``model-classifier``). With one or two votes per example the
# votes cannot tell a label that annotators under-report from a rare one (sensitivity and prevalence
# trade off along a flat likelihood), and the annotator model's prior settles it, wrongly where a
# label is hard for everybody; the texts' out-of-fold classifier probabilities give each example
# evidence of its own (issue 27 section 7; chosen on simulated crowds over SemEval train tweets,
# seeds 100-101; the crowds the consensus defaults were chosen on have 3 or more judgements).
SPARSE_CROWD_JUDGEMENTS = 2
MIN_EXAMPLES_FOR_CLASSIFIER = 50


def add_annotated_source(project: Project, spec, replace: bool = False) -> dict:
    """Ingest a source with per-annotator labels (its layout must be one of ``sources.annotations``').
    ``spec``: a spec path, dict or ``SourceSpec``.

    Returns ``{"name", "n_examples", "n_annotations", "annotators", "splits", "new_labels"}``."""
    out = project.add_source(spec, replace=replace, annotated=True)
    return {k: out[k] for k in ("name", "n_examples", "n_annotations", "annotators", "splits", "new_labels")}


def load_annotations(project: Project, source: str | None = None) -> dict:
    """-> {"annotations": Annotations over the annotated examples, "ids": (n,) store example ids,
    "annotators": [annotator id] (index -> id), "labels": [label name] (column -> name)}.

    A judgement knows only the labels its source annotates (``known`` False elsewhere), less those added
    or split off after it (``annotations.judgement_unknown_labels``)."""
    records = project.store.annotation_records(source, ids=True)
    if not records:
        raise TagwiseError(f"{project.path}: no per-annotator labels in this project. Fix: add a source "
                           f"with columns/annotator, labels/annotator_columns or labels/format votes "
                           f"(tagwise annotators PROJECT --add SPEC).")
    names = list(project.labels.names)
    col = {n: k for k, n in enumerate(names)}
    annotated = {s["name"]: set(s["annotated"]) for s in project.store.sources()}
    ids, ex = np.unique(np.array([r[0] for r in records], dtype=np.int64), return_inverse=True)
    annotators, an = np.unique(np.array([r[1] for r in records], dtype=object), return_inverse=True)
    Y = np.zeros((len(records), len(names)), np.uint8)
    known = np.zeros((len(records), len(names)), bool)
    source_known = {s: np.isin(names, sorted(labs)) for s, labs in annotated.items()}
    # a judgement speaks for the labels of its time: not for a label added, or split off one it had, since
    unknown = judgement_unknown_labels([c for c in project.store.label_changes() if c["undone_at"] is None],
                                       [r[4] for r in records])
    for j, (_, _, labels, src, _) in enumerate(records):
        known[j] = source_known.get(src, np.ones(len(names), bool))
        known[j, [col[n] for n in unknown[j] if n in col]] = False
        for name in labels:
            if name in col:
                Y[j, col[name]] = 1
    # Ingestion already rejected conflicting repeats; a pooled anonymous voter judges many times.
    ann = Annotations.from_arrays(ex.ravel(), an.ravel(), Y, known=known, n_examples=len(ids),
                                  n_annotators=len(annotators), check_unique=False)
    return {"annotations": ann, "ids": ids, "annotators": [str(a) for a in annotators], "labels": names}


def check_consensus_method(method: str) -> str:
    if method not in CONSENSUS_METHODS:
        raise TagwiseError(f"--consensus is {method!r}; use one of {', '.join(CONSENSUS_METHODS)}.")
    return method


def consensus_targets(project: Project, method: str = "model", pred_probs: np.ndarray | None = None,
                      data: dict | None = None) -> dict:
    """Training targets for the examples with per-annotator labels.

    method: ``model`` (``ConsensusModel`` with its defaults; ``pred_probs`` (n, K) out-of-fold
    classifier probabilities aligned with the returned ``ids`` switch on its classifier prior, and
    so does a sparse crowd, ``is_sparse_crowd``, computing them as ``model-classifier`` does),
    ``model-classifier`` (the same, computing ``pred_probs`` itself when not given: ridge
    cross-fitting on the project's embeddings of the annotated examples) or ``majority`` (vote
    shares: above 0.5 is the strict majority). ``data``: ``load_annotations``' result, if already
    loaded. Returns ``{"ids": (n,) store ids, "labels": [names], "probabilities": (n, K),
    "confidence": (n, K), "known": (n, K) bool (a label some judgement of the example covers),
    "n_judgements": (n,) int}``. Cells where ``known`` is False say nothing."""
    check_consensus_method(method)
    if method == "none":
        raise TagwiseError("consensus_targets: method 'none' has no consensus; read project.examples().")
    data = data or load_annotations(project)
    ann = data["annotations"]
    known = np.asarray(_incidence_any(ann))
    if method == "majority":
        proba = majority_vote(ann, tie=0.5)
    else:
        if pred_probs is None and (method == "model-classifier" or is_sparse_crowd(ann)):
            pred_probs = annotated_out_of_fold(project, data)
        model = ConsensusModel(use_classifier=pred_probs is not None).fit(ann, pred_probs)
        proba = model.proba_
    return {"ids": data["ids"], "labels": data["labels"], "probabilities": proba,
            "confidence": np.maximum(proba, 1 - proba), "known": known,
            "n_judgements": np.bincount(ann.example, minlength=ann.n_examples)}


def is_sparse_crowd(ann: Annotations) -> bool:
    """Whether the median annotated example has at most ``SPARSE_CROWD_JUDGEMENTS`` judgements (and
    there are enough examples to cross-fit a classifier on)."""
    n_judged = np.bincount(ann.example, minlength=ann.n_examples)
    n_judged = n_judged[n_judged > 0]
    return len(n_judged) >= MIN_EXAMPLES_FOR_CLASSIFIER and float(np.median(n_judged)) <= SPARSE_CROWD_JUDGEMENTS


def annotated_out_of_fold(project: Project, data: dict) -> np.ndarray:
    """(n, K) out-of-fold classifier probabilities of the annotated examples (ridge cross-fitting
    on the project's embeddings, targets = the majority decisions), for the consensus prior."""
    from ..audit.oof import ridge_out_of_fold_proba

    every = project.examples()
    row_of = {int(i): r for r, i in enumerate(every.ids)}
    ex = every.subset(np.array([row_of[int(i)] for i in data["ids"]], dtype=np.int64))
    X = project.features(ex, progress=False)
    target = (majority_vote(data["annotations"], tie=1.0) >= 0.5).astype(np.float32)
    return np.clip(ridge_out_of_fold_proba(X, target, progress=False).astype(np.float64), 0, 1)


def consensus_overrides(project: Project, method: str = "model", min_judgements: int = 2) -> dict:
    """The consensus of every example with at least ``min_judgements`` judgements, for ``train`` and
    ``labels export``: ``{store id: (probabilities (K,) float, known (K,) bool)}`` in the order of
    ``project.labels.names``. Empty when ``method`` is ``none`` or nobody annotated twice."""
    check_consensus_method(method)
    if method == "none" or not project.store.annotation_records():
        return {}
    data = load_annotations(project)
    n_judged = np.bincount(data["annotations"].example, minlength=data["annotations"].n_examples)
    if not (n_judged >= min_judgements).any():
        return {}
    t = consensus_targets(project, method, data=data)
    if method == "majority":  # the strict majority decision; an exact tie stays undecided
        share = t["probabilities"]
        t["probabilities"] = np.where(share == 0.5, 0.5, (share > 0.5).astype(np.float64))
    decided = adjudicated(project)  # a reviewer's decision stands: those examples train on it
    return {int(t["ids"][i]): (t["probabilities"][i], t["known"][i])
            for i in np.flatnonzero(t["n_judgements"] >= min_judgements) if int(t["ids"][i]) not in decided}


def adjudicated(project: Project) -> set[int]:
    """Store ids whose latest active annotation is a reviewer's decision (origin ``adjudication``,
    the team page): their training labels are that decision, not a consensus."""
    latest: dict[int, str] = {}
    for a in project.store.annotations():
        latest[a["example"]] = a["origin"]
    return {e for e, origin in latest.items() if origin == "adjudication"}


def apply_consensus(project: Project, examples: Examples, Y: np.ndarray, method: str = "model") -> np.ndarray:
    """``Y`` (n, K) of ``examples`` with the consensus (``workflows.annotators.consensus_overrides``)
    in the cells several people judged; float32 soft targets where any row changed, else ``Y``."""
    overrides = consensus_overrides(project, method)
    rows = [(r, overrides[int(i)]) for r, i in enumerate(examples.ids.tolist()) if int(i) in overrides]
    if not rows:
        return Y
    Y = Y.astype(np.float32)
    for r, (proba, covered) in rows:
        Y[r, covered] = proba[covered]
    # a parent is at least as likely as each of its children (the hard labels were closed upward)
    return max_up(Y, project.taxonomy.ancestor_matrix(project.labels))


def _incidence_any(ann: Annotations) -> np.ndarray:
    known = np.zeros((ann.n_examples, ann.n_labels), bool)
    V = ann.votes()
    np.logical_or.at(known, ann.example, V)
    return known


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def annotator_report(project: Project) -> dict:
    """Agreement and annotator quality (see the module docstring for the JSON contract)."""
    data = load_annotations(project)
    ann, names, who = data["annotations"], data["labels"], data["annotators"]
    model = ConsensusModel().fit(ann)
    res = model.result()
    quality = annotator_quality(res)
    V = ann.votes()
    used = V.any(0)
    alpha = alpha_per_label(ann)
    pos, cnt = np.zeros(ann.n_labels), V.sum(0)
    np.add.at(pos, np.nonzero(V)[1], ann.labels[V])
    labels = {names[k]: {"alpha": _num(alpha[k]), "n_judgements": int(cnt[k]),
                         "positive_rate": _num(pos[k] / cnt[k]) if cnt[k] else None,
                         "consensus_positive": int((res.proba[:, k] >= 0.5).sum())}
              for k in range(ann.n_labels) if used[k]}
    annotators = {}
    for a, name in enumerate(who):
        mine = ann.annotator == a
        covered = V[mine].any(0)
        annotators[name] = {
            "quality": float(np.clip(quality[a], 0, 1)),
            "n_examples": int(len(np.unique(ann.example[mine]))),
            "n_judgements": int(mine.sum()),
            "per_label": {names[k]: {"sensitivity": float(res.sensitivity[a, k]),
                                     "specificity": float(res.specificity[a, k]),
                                     "evidence_positive": float(res.evidence_pos[a, k]),
                                     "evidence_negative": float(res.evidence_neg[a, k])}
                          for k in range(ann.n_labels) if covered[k]}}
    rate, shared = pairwise_agreement(ann)
    pairs = [{"a": who[i], "b": who[j], "agreement": float(rate[i, j]), "cells": int(shared[i, j])}
             for i in range(len(who)) for j in range(i + 1, len(who)) if shared[i, j] > 0]
    conf = res.confidence[:, used]
    return {"n_examples": int(ann.n_examples), "n_judgements": int(len(ann.example)), "labels": labels,
            "annotators": annotators, "pairwise": pairs,
            "consensus": {"method": "model", "mean_confidence": _num(conf.mean()) if conf.size else None,
                          "cells_below_0.8": int((conf < 0.8).sum())}}


def relabel_suggestions(project: Project, n: int, pred_probs: np.ndarray | None = None,
                        details: bool = False) -> list[dict] | dict:
    """The ``n`` annotated examples that most need one more annotation (``select.relabel``):
    ``[{"id": store id, "score": expected error reduction, "labels": {name: consensus p},
    "consensus": {name: p} over the judged labels, "n_judgements"}]`` (``labels``: those whose
    decision more votes could flip; ``select.relabel`` looks ``DEFAULT_HORIZON`` votes ahead and
    weighs each label's errors by ``macro_label_weights``), best first. ``pred_probs`` as in
    ``consensus_targets``.

    ``details``: return ``{"picks": that list, "sensitivity", "specificity": (K,) the crowd's
    typical next annotator, "label_weights": (K,), "n_multi": examples with two or more
    judgements}`` so that new examples can be scored on the same scale (``relabel.relabel_scores``
    of the classifier's probabilities)."""
    from ..select.relabel import expected_error_reduction, macro_label_weights, pooled_rates, rank_by_score

    data = load_annotations(project)
    ann = data["annotations"]
    res = ConsensusModel(use_classifier=pred_probs is not None).fit(ann, pred_probs).result()
    weights = np.bincount(ann.annotator, minlength=ann.n_annotators)
    s, t = pooled_rates(res.sensitivity, res.specificity, weights)
    covered = _incidence_any(ann)
    gain = expected_error_reduction(res.proba, s, t) * covered
    # each label's errors weighted by the inverse of its consensus positive rate (select.relabel)
    rate = (res.proba * covered).sum(0) / np.maximum(covered.sum(0), 1)
    label_weights = macro_label_weights(rate, ann.n_examples)
    score = gain @ label_weights
    n_judged = np.bincount(ann.example, minlength=ann.n_examples)
    order = rank_by_score(score)[:n]  # ties (the same votes) in a seeded random order, not by row
    names = data["labels"]
    picks = [{"id": int(data["ids"][i]), "score": float(score[i]),
              "labels": {names[k]: float(res.proba[i, k]) for k in np.flatnonzero(gain[i] > 0)},
              "consensus": {names[k]: round(float(res.proba[i, k]), 4) for k in np.flatnonzero(covered[i])},
              "n_judgements": int(n_judged[i])}
             for i in order if score[i] > 0]
    if not details:
        return picks
    return {"picks": picks, "sensitivity": s, "specificity": t, "label_weights": label_weights,
            "n_multi": int((n_judged >= 2).sum())}
