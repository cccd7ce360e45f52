"""Evaluate a project's model on one split, each row in its own source's mode, beside trivial baselines."""
from __future__ import annotations

import numpy as np

from .._io import atomic_save_npy, atomic_write_json
from ..evaluate.metrics import baselines_report, multilabel_report
from ..learn.multisource import partial_targets
from ..project import Project
from ..types import LabelSpace, TagwiseError
from .models import LoadedModel, load_project_model
from .taxonomy_changes import labels_for_model


def evaluate(project: Project, split: str = "test", model: str | None = None, source: str | None = None,
             save: bool = True, agnostic: bool = False, as_source: str | None = None, risk: str | None = None,
             confidence: float | None = None, calibrate: bool = False,
             row_violation: float | None = None) -> dict:
    """Metrics of the current (or named) model on the labeled examples of ``split``.

    Rows of a source the model has a mode for (a multi-source model's training sources) are scored in
    that mode with its thresholds; other rows, or all with ``agnostic=True``, in the source-agnostic
    mode; with ``as_source`` every row in that training source's mode (e.g. a test-only gold source
    labeled the way training source S labels). Cells a source does not annotate are left out of every
    metric, including a parent it does not annotate whose positives its children imply (it has no
    negatives there, so its F1 would be 1 by construction).

    Returns the dict of ``evaluate.metrics.multilabel_report`` plus ``split``, ``model``, ``sources``,
    ``modes`` ({source: mode used}; empty for a source-agnostic model), ``baselines``
    (``evaluate.metrics.baselines_report``: the all-negative, all-positive and prior predictors; the
    prior predicts each label on a random share of rows equal to its training positive rate in the
    row's mode), ``per_source`` ({source: {"mode", "n_examples", "macro_f1", "micro_f1", "baselines"}}
    when the split holds several sources), ``shared_texts`` (``workflows.health.shared_texts`` pairs
    whose test source is evaluated here) and ``warnings`` ([{"kind", "source", "label", "message",
    "fix"}]: labels predicted on >= 95% of a source's rows, shared texts). With ``risk`` (``"fnr=0.1"``
    etc., ``confidence``) it gains ``risk_control`` (``workflows.conformal.risk_report``); with ``risk`` or
    ``calibrate`` also ``calibration`` (per-label calibration fitted on the model's calibration rows: ECE
    before/after and the reliability curves the report plots). With ``save`` it is also
    written to ``runs/<id>/metrics.json`` with the predictions (for the report).
    """
    from .health import shared_text_warnings, shared_texts

    loaded = load_project_model(project, model)
    ex = project.examples(split=split, source=source, labeled=True)
    if len(ex) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r}"
                           f"{f' of source {source!r}' if source else ''}. Fix: pass --split with one of "
                           f"{project.splits()}.")
    space = LabelSpace(tuple(loaded.labels))
    ex.labels = labels_for_model(ex, project.taxonomy, space.names)  # labels added since it was trained
    Y, mask = partial_targets(ex, project.taxonomy, space)
    mask &= claimed_mask(ex, project.taxonomy, space)
    if not mask.any():
        raise TagwiseError(f"{project.path}: split {split!r} has no known label for the model's labels "
                           f"{list(space.names)[:8]}. Fix: evaluate on a split whose sources annotate them.")
    if as_source is not None:
        if agnostic:
            raise TagwiseError("--as-source and --agnostic each choose the prediction mode; pass one of them.")
        trained = loaded.sources or list(loaded.info.get("trained_on", {}).get("sources", []))
        if as_source not in trained:
            raise TagwiseError(f"{project.path}: --as-source {as_source!r} is not a training source of model "
                               f"{loaded.name!r}; its training sources: {trained}. Fix: pass one of them.")
        modes = [as_source if loaded.sources else "agnostic"] * len(ex)
    else:
        modes = ["agnostic"] * len(ex) if agnostic else loaded.source_modes(ex.sources)
    X = project.features(ex, loaded.encoder, progress=True)
    texts = list(ex.texts)
    head_modes = modes if loaded.sources else None
    P = loaded.head.predict_proba(X, texts=texts, source=head_modes)
    Z = loaded.head.decide(P, source=head_modes)
    report = multilabel_report(Y, Z, P, space.names, mask)
    shown_modes = [as_source] * len(ex) if as_source is not None else modes
    rates = prior_rates(loaded, project, shown_modes, space, split)
    report["baselines"] = baselines_report(Y, Z, mask, space.names, rates)
    names = sorted(set(map(str, ex.sources)))
    sources = ex.sources.astype(str)
    per_source = {}
    warnings = []
    for s in names:
        rows = sources == s
        rep = multilabel_report(Y[rows], Z[rows], P[rows], space.names, mask[rows])
        base = baselines_report(Y[rows], Z[rows], mask[rows], space.names, rates[rows])
        per_source[s] = {"mode": shown_modes[int(np.flatnonzero(rows)[0])] if loaded.sources or as_source else "agnostic",
                         "n_examples": int(rows.sum()), "macro_f1": rep["macro_f1"], "micro_f1": rep["micro_f1"],
                         "labels_with_support": int(sum(m["support"] > 0 for m in rep["per_label"].values())),
                         "baselines": base}
        # judged on the labels with both sides in these rows: a label every row has (or lacks) is
        # trivially "predicted" and the health table already says that the source never contradicts it
        mixed = [n for n, m in rep["per_label"].items() if 0 < m["support"] < int(mask[rows][:, space.index(n)].sum())]
        if mixed:
            model_f1 = float(np.mean([rep["per_label"][n]["f1"] for n in mixed]))
            triv = {k: float(np.mean([base["per_label"][n][k] for n in mixed])) for k in ("all_positive", "prior")}
            if model_f1 <= max(triv.values()):
                warnings.append({
                    "kind": "below_trivial", "source": s, "label": None,
                    "message": f"source {s!r}: macro-F1 {model_f1:.3f} on {split} (mode {per_source[s]['mode']}; "
                               f"labels {', '.join(mixed[:8])}) is no better than a trivial predictor (predict "
                               f"everything {triv['all_positive']:.3f}, prior {triv['prior']:.3f}).",
                    "fix": "read the health warnings that `tagwise train` printed (kept in the model's model.json) for "
                           "this source; compare `--consensus majority`, and check the source's label map against "
                           "the taxonomy."})
        for label in base["predicted_everywhere"]:
            rate = base["per_label"][label]["predicted_rate"]
            warnings.append({"kind": "predicted_everywhere", "source": s, "label": label,
                             "message": f"label {label!r} is predicted on {rate:.0%} of the {split} rows of source {s!r} "
                                        f"that know it (mode {per_source[s]['mode']}): the model is (nearly) "
                                        f"predicting everything for it.",
                             "fix": "see the health warnings of `tagwise train` for this source and label (no "
                                    "negatives? soft targets?); compare `--consensus majority`."})
    if len(names) > 1:
        report["per_source"] = per_source
    trained_on = loaded.info.get("trained_on", {})
    # texts the model trained on that this split tests on; none if train left them out
    pairs = [p for p in shared_texts(project) if p["test_source"] in names
             and p["train_source"] in trained_on.get("sources", [p["train_source"]])]
    if split != "test" or trained_on.get("drop_shared_test_texts"):
        pairs = []
    report["shared_texts"] = pairs
    warnings += shared_text_warnings(pairs, project)
    report["warnings"] = warnings
    report.update(split=split, model=loaded.name, sources=names, as_source=as_source, agnostic=agnostic,
                  modes={s: m for s, m in zip(map(str, ex.sources), shown_modes)} if loaded.sources else {})
    if risk is not None:
        from .conformal import risk_report
        report["risk_control"] = risk_report(project, loaded, P, Y, mask, ex.sources, risk, confidence, split,
                                             row_violation=row_violation)
        report["calibration"] = report["risk_control"]["calibration"]
    elif calibrate:
        from .conformal import calibration_report
        report["calibration"] = calibration_report(project, loaded, P, Y, mask, split)
    if save:
        run = project.new_run("evaluate", {"split": split, "model": report["model"], "source": source,
                                           "as_source": as_source, "agnostic": agnostic})
        atomic_write_json(run / "metrics.json", report)
        atomic_save_npy(run / "y_true.npy", Y)
        atomic_save_npy(run / "proba.npy", P.astype(np.float32))
        atomic_save_npy(run / "pred.npy", Z.astype(np.uint8))
        atomic_save_npy(run / "mask.npy", mask)
        report["run"] = run.name
    return report


def claimed_mask(examples, taxonomy, space: LabelSpace) -> np.ndarray:
    """(n, K) bool: the cells of the labels each row's source annotates (``health.claimed_columns``), and
    every cell of a row a person annotated against the whole taxonomy."""
    from .health import claimed_columns

    keep = np.zeros((len(examples), len(space)), dtype=bool)
    sources = np.asarray([str(s) for s in examples.sources], dtype=object)
    for source, cols in claimed_columns(examples, taxonomy, space).items():
        keep[np.ix_(sources == source, cols)] = True
    if examples.fully_known is not None:
        keep[np.asarray(examples.fully_known, dtype=bool)] = True
    return examples.clear_unknown(keep, space)


def prior_rates(loaded: LoadedModel, project: Project, modes, space: LabelSpace, split: str = "test") -> np.ndarray:
    """(n, K) the prior predictor's rate per row: each label's training positive rate in the row's mode
    (its source's row of the model's health table), the rate pooled over training sources for an
    agnostic row or a label the mode's source does not annotate. Models saved without a health table
    take the rates of the project's train split."""
    table = (loaded.info.get("health") or {}).get("before", {}).get("sources")
    K = len(space)
    if table:
        pos, known = np.zeros(K), np.zeros(K)
        per = {}
        for s, entry in table.items():
            r = np.full(K, np.nan)
            for label, c in entry["labels"].items():
                if label in space._lookup:
                    k = space.index(label)
                    pos[k] += c["positives"]
                    known[k] += c["positives"] + c["negatives"]
                    r[k] = c["positive_rate"] if c["positive_rate"] is not None else np.nan
            per[s] = r
    else:
        ex = project.examples(split="train", labeled=True)
        Y, M = partial_targets(ex, project.taxonomy, space)
        H = (Y >= 0.5) & M
        pos, known = H.sum(0).astype(float), M.sum(0).astype(float)
        per = {}
        for s in set(map(str, ex.sources)):
            rows = ex.sources.astype(str) == s
            with np.errstate(invalid="ignore", divide="ignore"):
                per[s] = np.where(M[rows].sum(0) > 0, H[rows].sum(0) / M[rows].sum(0), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.where(known > 0, pos / np.maximum(known, 1), 0.0)
    modes = np.asarray([str(m) for m in modes], dtype=object)
    out = np.empty((len(modes), K))
    for m in set(modes):
        r = per.get(m)
        out[modes == m] = pooled if r is None else np.where(np.isnan(r), pooled, r)
    return out
