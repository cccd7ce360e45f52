"""``tagwise suggest``: the next batch of a project's unlabeled examples to label, as JSONL or Label Studio tasks.

The pool is every unlabeled example of the train/unlabeled splits, minus exact duplicates (same
normalised text; the first occurrence stays) and minus texts that already carry a label anywhere in
the project (so a labeled batch that came back as a new source is never suggested again). The model
is a fresh few-shot head (label-name prior + linear head) fitted on all labeled examples, a few
seconds, with thresholds cut for the pool's expected F1 (the labels may have come from earlier
suggestions, so they are not a random sample); with no labeled example the batch is a coverage cold
start and the shown predictions are zero-shot.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from ..learn.lowlabel import fit_low_label
from ..project import Project
from ..select.active import relabel_candidates, select_batch
from ..select.relabel import relabel_scores
from ..text import normalize_text
from ..types import TagwiseError


def unlabeled_pool(project: Project, splits=("train", "unlabeled"), exclude=None):
    """The de-duplicated unlabeled examples that may be suggested, as ``Examples`` (minus the store ids
    in ``exclude``: e.g. those already queued for someone)."""
    labeled = project.examples(labeled=True)
    seen = {normalize_text(t) for t in labeled.texts}
    pool = project.examples(split=list(splits), labeled=False)
    skip = set(int(i) for i in exclude or ())
    keep = []
    for i, t in enumerate(pool.texts):
        key = normalize_text(t)
        if key and key not in seen and int(pool.ids[i]) not in skip:
            seen.add(key)
            keep.append(i)
    return pool.subset(np.asarray(keep, dtype=np.int64))


STRATEGIES = ("default", "abstain")


def suggest(project: Project, budget: int = 100, *, encoder: str | None = None, relabel: int = 0, seed: int = 0,
            top_labels: int = 5, exclude=None, strategy: str = "default", risk: str | None = None,
            confidence: float | None = None) -> list[dict]:
    """Rows to label next, best first (never a store id in ``exclude``).

    Each row: ``{"example_id", "source", "split", "text", "score", "reason", "predicted" (label
    names), "scores" ({label: probability} for the top labels), "predicted_by", "store_id"}``; ``reason``
    is one of cold-start / uncertain / rare-label / diverse (pool rows) or relabel (labeled rows, only if
    ``relabel`` > 0). ``predicted`` and ``scores`` come from the project's current model (its thresholds,
    each row in its source's mode, and the taxonomy's hierarchy rule: what ``/api/predict`` answers), and
    ``predicted_by`` names it; with no trained model they come from the selection's own few-shot (or
    zero-shot) head and ``predicted_by`` says so.

    ``strategy="abstain"``: the rows the current model would send to a person under the promise
    ``risk`` (default ``"fnr=0.1"``; ``confidence``; ``workflows.conformal``), most doubtful first (``score`` = the row's
    expected loss, reason *abstain*; when fewer rows abstain than ``budget``, the next most doubtful,
    reason *doubtful*). Needs a trained model and calibration rows, as ``predict --risk`` does.
    """
    if budget < 1:
        raise TagwiseError(f"--budget must be at least 1 (got {budget}).")
    if strategy not in STRATEGIES:
        raise TagwiseError(f"unknown --strategy {strategy!r}; use one of {', '.join(STRATEGIES)}.")
    if strategy == "abstain":
        return _suggest_abstained(project, budget, risk or "fnr=0.1", confidence, top_labels, exclude)
    if risk is not None or confidence is not None:
        raise TagwiseError("--risk and --confidence choose the promise of --strategy abstain; the default strategy "
                           "has none. Fix: add --strategy abstain, or leave them out.")
    encoder = encoder or project.default_encoder
    names = list(project.labels.names)
    if not names:
        raise TagwiseError(f"{project.path}: the taxonomy has no labels. Fix: `tagwise init --taxonomy labels.yaml`.")
    pool = unlabeled_pool(project, exclude=exclude)
    if len(pool) == 0:
        raise TagwiseError(f"{project.path}: nothing left to suggest: every example is labeled (or a duplicate "
                           f"of a labeled one). Fix: add unlabeled texts with `tagwise add-source`.")
    tax = project.taxonomy
    space = project.labels
    labeled = project.examples(labeled=True)
    labeled = labeled.subset(labeled.splits != "test")  # never learn from the test split
    X_pool = project.features(pool, encoder, progress=True)
    embed = lambda texts: project.embed_texts(list(texts), encoder, progress=False)[0]  # noqa: E731
    Y = labeled.label_matrix(space)
    M = labeled.known_mask(space)
    X_lab = project.features(labeled, encoder, progress=True) if len(labeled) else None
    mode = "few-shot" if len(labeled) >= 2 and Y.any() else "zero-shot"
    # The head's cuts come from its cross-validation on the labeled rows (FewShotClassifier's
    # threshold_method="cv"): bench/choose_suggest.py compared it with cuts at the best expected F1 on
    # the pool ("pool", the default before issue 29) on training data, together with the selection rule.
    # The head is solved to its optimum, as in `train` (no iteration budget): its preconditioned
    # solver fits the demo's 3,000 rows in seconds, and the batch does not depend on rounding.
    params = {"threshold_method": "cv"} if mode == "few-shot" else None
    model = fit_low_label(mode, X_lab, Y, M, X_pool, names, embed, descriptions=tax.descriptions,
                          examples=tax.examples, sub_labels=tax.zero_shot_sub_labels(), params=params,
                          seed=seed)
    proba = model.predict_proba(X_pool)
    thresholds = np.asarray(model.threshold_)
    if mode == "few-shot":
        n_pos = (Y * M).sum(0)
        sel = select_batch(X_pool, budget, proba, thresholds, n_pos, seed=seed)
    else:
        sel = select_batch(X_pool, budget, None, seed=seed)
    rows = [_row(pool, i, float(s), str(r), proba[i], thresholds, names, top_labels)
            for i, s, r in zip(sel.index, sel.score, sel.reason)]
    crowd = _crowd_relabel(project, relabel, names, top_labels) if relabel > 0 else None
    if crowd is not None:
        rows.extend(crowd["rows"])
        # the same scale for the new rows: the expected error per vote that votes of a typical
        # annotator of the crowd remove, with the classifier's probability as the consensus of no votes
        gain = relabel_scores(proba[sel.index], crowd["sensitivity"], crowd["specificity"], thresholds,
                              label_weights=crowd["label_weights"])
        for r, g in zip(rows, gain):
            r["error_reduction"] = round(float(g), 6)
    elif relabel > 0 and mode == "few-shot":
        doubt = relabel_candidates(Y, model.oof_proba_, M, n=relabel)
        P_lab = model.predict_proba(X_lab)
        for i, s in zip(doubt.index, doubt.score):
            row = _row(labeled, i, float(s), "relabel", P_lab[i], thresholds, names, top_labels)
            row["current_labels"] = list(labeled.labels[i] or [])
            rows.append(row)
    _predict_with_current_model(project, rows, mode, top_labels)
    return rows


def _suggest_abstained(project: Project, budget: int, risk: str, confidence: float | None, top_labels: int,
                       exclude) -> list[dict]:
    """``suggest(strategy="abstain")``: the pool rows the current model abstains on under ``risk``."""
    from .conformal import check_risk, fit_risk_controller
    from .models import load_project_model
    from .predict import predict_with

    check_risk(risk, confidence)
    if not (project.models_dir / "CURRENT").exists():
        raise TagwiseError(f"{project.path}: --strategy abstain draws the rows the current model abstains on, and "
                           f"there is no trained model yet. Fix: `tagwise train {project.path}` first, or use the "
                           f"default strategy.")
    loaded = load_project_model(project)
    controller = fit_risk_controller(project, loaded, risk, confidence)
    pool = unlabeled_pool(project, exclude=exclude)
    if len(pool) == 0:
        raise TagwiseError(f"{project.path}: nothing left to suggest: every example is labeled (or a duplicate "
                           f"of a labeled one). Fix: add unlabeled texts with `tagwise add-source`.")
    sources = [str(s) for s in pool.sources]
    Z, P = predict_with(project, loaded, list(pool.texts), sources)
    out = controller.predict(P, sources)
    order = np.lexsort((-out["doubt"], ~out["abstain"]))[:budget]  # abstained first, then by doubt
    names = list(loaded.labels)
    rows = []
    for i in order:
        row = _row(pool, int(i), float(out["doubt"][i]), "abstain" if out["abstain"][i] else "doubtful", P[i],
                   np.full(len(names), np.inf), names, top_labels)
        row.update(predicted=[names[k] for k in np.flatnonzero(out["labels"][i])], predicted_by=f"model {loaded.name} "
                   f"under the promise {risk}" + (f" at confidence {confidence}" if confidence else ""))
        rows.append(row)
    return rows


def _predict_with_current_model(project: Project, rows: list[dict], head_mode: str, top_labels: int) -> None:
    """Replace each row's ``predicted``/``scores`` with the current model's answer (as ``/api/predict``)."""
    from .models import load_project_model
    from .predict import predict_with

    if not rows or not (project.models_dir / "CURRENT").exists():
        for r in rows:
            r["predicted_by"] = f"{head_mode} head fitted for this selection (no trained model yet)"
        return
    loaded = load_project_model(project)
    Z, P = predict_with(project, loaded, [r["text"] for r in rows], [r["source"] for r in rows])
    names = list(loaded.labels)
    for r, z, p in zip(rows, Z, P):
        top = np.argsort(-p)[:top_labels]
        r["predicted"] = [names[k] for k in np.flatnonzero(z)]
        r["scores"] = {names[k]: round(float(p[k]), 4) for k in top}
        r["predicted_by"] = f"model {loaded.name}"


def _crowd_relabel(project: Project, n: int, names, top_labels) -> dict | None:
    """Where several people annotated examples: the ``n`` that most need one more annotation by the
    consensus (``workflows.annotators.relabel_suggestions``, the ActiveLab idea) as suggestion rows
    (reason ``relabel``; ``score`` = ``error_reduction``: the expected drop in wrong cell decisions),
    plus the crowd's pooled sensitivity / specificity. None when nobody annotated twice."""
    from .annotators import relabel_suggestions

    if not project.store.annotation_records():
        return None
    out = relabel_suggestions(project, n, details=True)
    if not out["n_multi"]:
        return None
    every = project.examples()
    row_of = {int(i): r for r, i in enumerate(every.ids)}
    rows = []
    for pick in out["picks"]:
        i = row_of[pick["id"]]
        p = np.array([pick["consensus"].get(name, 0.0) for name in names])
        row = _row(every, i, pick["score"], "relabel", p, np.full(len(names), 0.5), names, top_labels)
        row.update(current_labels=list(every.labels[i] or []), error_reduction=row["score"],
                   doubtful_labels=pick["labels"], n_judgements=pick["n_judgements"])
        rows.append(row)
    return {"rows": rows, "sensitivity": out["sensitivity"], "specificity": out["specificity"],
            "label_weights": out["label_weights"]}


def _row(ex, i, score, reason, p, thresholds, names, top_labels) -> dict:
    top = np.argsort(-p)[:top_labels]
    return {"example_id": str(ex.example_ids[i]), "source": str(ex.sources[i]), "split": str(ex.splits[i]),
            "text": ex.texts[i], "score": round(score, 6), "reason": reason,
            "predicted": [names[k] for k in np.flatnonzero(p >= thresholds)],
            "scores": {names[k]: round(float(p[k]), 4) for k in top}, "store_id": int(ex.ids[i])}


def to_label_studio(rows: list[dict], label_names) -> list[dict]:
    """Label Studio tasks (JSON import) with the predictions as pre-annotations for a
    ``<Choices name="labels" toName="text" choice="multiple">`` config."""
    tasks = []
    for r in rows:
        data = {"text": r["text"], "example_id": r["example_id"], "source": r["source"], "reason": r["reason"],
                "store_id": r["store_id"]}  # `tagwise labels import` finds the example by it
        pred = {"model_version": "tagwise", "score": r["score"],
                "result": [{"from_name": "labels", "to_name": "text", "type": "choices",
                            "value": {"choices": r.get("current_labels", r["predicted"])}}]}
        tasks.append({"data": data, "predictions": [pred]})
    return tasks


LABEL_STUDIO_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="labels" toName="text" choice="multiple">
{choices}
  </Choices>
</View>
"""


def write_suggestions(rows: list[dict], out: str | Path, fmt: str = "jsonl", label_names=()) -> Path:
    """Write rows as JSONL (one object per line) or as a Label Studio JSON task list."""
    out = Path(out)
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    elif fmt == "label-studio":
        text = json.dumps(to_label_studio(rows, label_names), ensure_ascii=False, indent=1)
    else:
        raise TagwiseError(f"unknown --format {fmt!r}; use jsonl or label-studio.")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return out
