"""A labeling team, live (issue 28): agreement per label, each person's estimated quality, per-person
progress, and the disagreements a reviewer settles.

The team's judgements are the labels people gave (``store.annotations(people_only=True)``: not a
source's ingested votes), each person's latest per example, minus adjudications. A web annotator
picks among every label of the taxonomy, so every label of a judgement is known (0 or 1), except the labels
added or split off after it (``annotations.judgement_unknown_labels``).

- Agreement: nominal Krippendorff's alpha of each label's 0/1 judgements
  (``evaluate.agreement.alpha_per_label``); None where undefined (no example with two judgements, or
  a label nobody, or everybody, chose).
- Quality: the project's annotator model (``learn.consensus.ConsensusModel``, the one ``train``'s
  consensus and ``tagwise annotators`` use) fitted on the team's judgements;
  ``annotator_quality`` = its evidence-weighted balanced accuracy (0.5 = no better than chance).
  A team labeling with overlap 2 is a sparse crowd: two people who disagree on an example give the
  model no way to tell which one is right, so, as ``train``'s consensus does for sparse crowds
  (``workflows.annotators.is_sparse_crowd``), the model gets a classifier prior: a linear model fitted
  on the project's labeled examples that nobody on the team judged (so it is independent of the
  judgements it helps to weigh), scoring the judged examples. Without it a perfect annotator paired
  with a random one scored no higher than the random one (tests/test_serve_team.py).
- Disagreements: examples two or more people labeled differently and no reviewer decided yet. A
  decision (``adjudicate``) is one more annotation, origin ``adjudication``, by the reviewer.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..annotations import judgement_unknown_labels
from ..evaluate.agreement import alpha_per_label
from ..learn.consensus import Annotations, ConsensusModel, annotator_quality
from ..project import Project
from ..types import TagwiseError
from .annotators import MIN_EXAMPLES_FOR_CLASSIFIER
from .labels import annotate
from .queue import LEASE_S, progress

ADJUDICATION = "adjudication"


def team_judgements(project: Project) -> list[dict]:
    """Each person's latest active judgement per example (not ingested, not adjudications), oldest first."""
    latest: dict[tuple[int, str], dict] = {}
    for a in project.store.annotations(people_only=True):
        if a["origin"] != ADJUDICATION:
            latest.pop((a["example"], a["annotator"]), None)
            latest[(a["example"], a["annotator"])] = a
    return list(latest.values())


def team_annotations(project: Project, judgements: list[dict] | None = None) -> dict:
    """The team's judgements as ``Annotations``: ``{"annotations", "ids": (n,) store ids, "annotators":
    [name], "labels": [label name]}``; None when nobody has labeled anything."""
    judgements = team_judgements(project) if judgements is None else judgements
    if not judgements:
        return None
    names = list(project.labels.names)
    col = {n: k for k, n in enumerate(names)}
    ids, ex = np.unique(np.array([j["example"] for j in judgements], dtype=np.int64), return_inverse=True)
    who, an = np.unique(np.array([j["annotator"] for j in judgements], dtype=object), return_inverse=True)
    Y = np.zeros((len(judgements), len(names)), np.uint8)
    known = np.ones(Y.shape, bool)  # a judgement speaks for the labels of its time (issue 32)
    unknown = judgement_unknown_labels([c for c in project.store.label_changes() if c["undone_at"] is None],
                                       judgements)
    for r, j in enumerate(judgements):
        for n in j["labels"]:
            if n in col:
                Y[r, col[n]] = 1
        known[r, [col[n] for n in unknown[r] if n in col]] = False
    ann = Annotations.from_arrays(ex.ravel(), an.ravel(), Y, known=None if known.all() else known,
                                  n_examples=len(ids), n_annotators=len(who))
    return {"annotations": ann, "ids": ids, "annotators": [str(w) for w in who], "labels": names}


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def team_report(project: Project, overlap: int = 1, max_disagreements: int = 50, people=(),
                lease_s: float = LEASE_S) -> dict:
    """``{"overlap", "n_judgements", "n_examples", "labels": {name: {"alpha", "n_pairable" (examples
    with two or more judgements), "positives"}}, "annotators": {name: {"quality", "n_examples", "done",
    "remaining"}}, "progress": queue.progress(...), "disagreements": [{"example_id", "text", "source",
    "judgements": [{"annotator", "labels"}], "disputed": [label], "consensus": {label: p}}]}``."""
    queue = progress(project, overlap, people=list(people), lease_s=lease_s)
    judgements = team_judgements(project)
    data = team_annotations(project, judgements)
    out = {"overlap": overlap, "n_judgements": len(judgements), "n_examples": 0, "labels": {}, "annotators": {},
           "progress": queue, "disagreements": []}
    for name, p in queue["people"].items():
        out["annotators"][name] = {"quality": None, "n_examples": 0, **p}
    if data is None:
        return out
    ann, names, who = data["annotations"], data["labels"], data["annotators"]
    n_judged = np.bincount(ann.example, minlength=ann.n_examples)
    pairable = n_judged[ann.example] >= 2
    alpha = alpha_per_label(ann)
    positives = ann.labels.sum(0)
    out["n_examples"] = int(ann.n_examples)
    out["labels"] = {names[k]: {"alpha": _num(alpha[k]), "n_pairable": int((n_judged >= 2).sum()),
                                "positives": int(positives[k]), "pairable_positives": int(ann.labels[pairable, k].sum())}
                     for k in range(len(names))}
    prior = _classifier_prior(project, data["ids"])
    res = ConsensusModel(use_classifier=prior is not None).fit(ann, prior).result()
    quality = annotator_quality(res)
    for a, name in enumerate(who):
        mine = ann.annotator == a
        rec = out["annotators"].setdefault(name, {"quality": None, "done": 0, "remaining": 0})
        rec["quality"] = _num(np.clip(quality[a], 0, 1))
        rec["n_examples"] = int(len(np.unique(ann.example[mine])))
    out["disagreements"] = _disagreements(project, judgements, data, res.proba, max_disagreements)
    return out


# The prior's model depends only on the labeled rows outside the team's judgements, their labels and
# the encoder; /team refreshes every 10 seconds while people label pool rows (which join the judged
# set, not these rows), so the fit is kept while those stay the same.
_PRIOR_MODELS: dict[tuple, object] = {}
_PRIOR_MODELS_MAX = 4


def _classifier_prior(project: Project, judged_ids: np.ndarray) -> np.ndarray | None:
    """(n, K) probabilities of the judged examples (``judged_ids`` (n,) store ids) from
    ``MultiLabelLinear`` (fixed 0.5 cut: only its probabilities are used) fitted on the project's
    labeled train examples outside them, in the order of ``project.labels``; None with fewer than
    ``MIN_EXAMPLES_FOR_CLASSIFIER`` such examples (the consensus then has no prior)."""
    from ..learn.linear import MultiLabelLinear

    every = project.examples()  # one read of the store: the training rows and the judged rows come from it
    is_judged = np.isin(every.ids, judged_ids)
    labeled = np.array([lab is not None for lab in every.labels], dtype=bool)
    outside = labeled & (every.splits.astype(str) == "train") & ~is_judged
    if outside.sum() < MIN_EXAMPLES_FOR_CLASSIFIER:
        return None
    train = every.subset(outside)
    row_of = {int(i): r for r, i in enumerate(every.ids)}
    judged = every.subset(np.array([row_of[int(i)] for i in judged_ids], dtype=np.int64))
    space = project.labels
    Y, M = train.label_matrix(space), train.known_mask(space)
    key = (str(project.path), project.default_encoder, tuple(space.names),
           hashlib.sha1(train.ids.tobytes() + Y.tobytes() + M.tobytes()).hexdigest())
    model = _PRIOR_MODELS.get(key)
    if model is None:
        model = MultiLabelLinear(thresholds=0.5).fit(project.features(train), Y, M)
        while len(_PRIOR_MODELS) >= _PRIOR_MODELS_MAX:
            _PRIOR_MODELS.pop(next(iter(_PRIOR_MODELS)))
        _PRIOR_MODELS[key] = model
    return model.predict_proba(project.features(judged)).astype(np.float64)


def _disagreements(project: Project, judgements: list[dict], data: dict, proba: np.ndarray, limit: int) -> list[dict]:
    """Examples whose people disagree on some label and that no reviewer decided since, the most
    disputed first."""
    decided = {a["example"]: a["id"] for a in project.store.annotations(origin=ADJUDICATION)}
    by_example: dict[int, list[dict]] = {}
    for j in judgements:
        by_example.setdefault(j["example"], []).append(j)
    row_of = {int(i): r for r, i in enumerate(data["ids"])}
    names = data["labels"]
    found = []
    for e, js in by_example.items():
        if len(js) < 2 or (e in decided and decided[e] > max(j["id"] for j in js)):
            continue
        sets = [set(j["labels"]) for j in js]
        disputed = sorted(set.union(*sets) - set.intersection(*sets), key=names.index)
        if disputed:
            found.append((e, js, disputed))
    found.sort(key=lambda f: (-len(f[2]), f[0]))
    found = found[:limit]
    info = project.store.example_info([e for e, _, _ in found])
    out = []
    for e, js, disputed in found:
        p = proba[row_of[e]]
        out.append({"example_id": int(e), "text": info.get(e, {}).get("text", ""), "source": info.get(e, {}).get("source", ""),
                    "judgements": [{"annotator": j["annotator"], "labels": list(j["labels"])} for j in js],
                    "disputed": disputed,
                    "consensus": {names[k]: round(float(p[k]), 3) for k in range(len(names))
                                  if names[k] in disputed or p[k] >= 0.5}})
    return out


def adjudicate(project: Project, store_id: int, labels: list[str], reviewer: str) -> int:
    """Store a reviewer's decision on an example as an annotation of origin ``adjudication``; returns its id."""
    if not project.store.example_info([store_id]):
        raise TagwiseError(f"no example with store id {store_id} in this project.")
    return annotate(project, store_id, labels, reviewer, origin=ADJUDICATION)
