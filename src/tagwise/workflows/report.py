"""The HTML report: one self-contained file with inline plots.

Sections are functions ``(project, split) -> str | None`` (an HTML fragment, or None to skip)
listed in ``SECTIONS``; they read the newest runs (evaluate, audit, transfer) and the current model.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from .._io import atomic_write_text, load_npy
from ..evaluate.metrics import format_metric
from ..evaluate.plots import figure_to_img, pyplot as _plt, transfer_heatmap_png
from ..project import Project
from ..types import TagwiseError
from .models import load_project_model


def latest_evaluation(project: Project, split: str = "test", model: str | None = None,
                      plain: bool = False) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The newest evaluate run of ``split``: (metrics, arrays y_true/proba/mask/thresholds).

    model: only runs of that model; plain: only runs that score rows in their own sources' modes
    (no ``--as-source``, no ``--agnostic``), whole-split runs preferred to ``--source`` ones. The
    metrics gain ``"run"`` (the run folder's name)."""
    fallback = None
    # run names sort by second, then at random: runs of one second are ordered by when they were written
    runs = [(run, run / "metrics.json") for run in project.runs("evaluate")]
    runs = sorted(((r, m) for r, m in runs if m.exists()), key=lambda rm: (rm[0].name[:15], rm[1].stat().st_mtime_ns))
    for run, metrics_path in reversed(runs):
        metrics = json.loads(metrics_path.read_text())
        if metrics.get("split") != split or (model is not None and metrics.get("model") != model):
            continue
        params = _run_params(run)
        if plain and (metrics.get("as_source") or params.get("as_source") or metrics.get("agnostic")
                      or params.get("agnostic")):
            continue
        if plain and params.get("source") and fallback is None:
            fallback = (run, metrics)  # one source only: shown if no whole-split run exists
            continue
        if plain and params.get("source"):
            continue
        return _with_arrays(run, metrics)
    return _with_arrays(*fallback) if fallback else None


def _run_params(run: Path) -> dict:
    try:
        return json.loads((run / "params.json").read_text())
    except (OSError, ValueError):
        return {}


def _with_arrays(run: Path, metrics: dict) -> tuple[dict, dict[str, np.ndarray]]:
    arrays = {k: load_npy(run / f"{k}.npy") for k in ("y_true", "proba", "mask", "pred")
              if (run / f"{k}.npy").exists()}
    return {**metrics, "run": run.name, "source": _run_params(run).get("source")}, arrays


def model_evaluation(project: Project, split: str = "test") -> tuple[dict, dict[str, np.ndarray]] | None:
    """What the model page and the report show as the current model's evaluation: its newest plain
    evaluate run (``latest_evaluation(plain=True)``) of ``split``, else (for the test split) of dev;
    None without a current model or such a run."""
    from .models import model_name

    try:
        current = model_name(project)
    except TagwiseError:
        return None
    for which in dict.fromkeys([split, "dev"] if split == "test" else [split]):
        found = latest_evaluation(project, which, model=current, plain=True)
        if found is not None:
            return found
    return None


def section_overview(project: Project, split: str = "test") -> str:
    rows = "".join(f"<tr><td>{html.escape(s['name'])}</td><td>{s['n_examples']}</td>"
                   f"<td>{len(s['annotated'])}</td></tr>" for s in project.store.sources())
    counts = project.store.count()
    split_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['n']}</td><td>{v['labeled']}</td></tr>"
                         for k, v in sorted(counts.items()))
    return (f"<h2>Project</h2><p>{len(project.labels)} labels, encoder <code>{html.escape(project.default_encoder)}</code></p>"
            f"<table><tr><th>source</th><th>examples</th><th>labels annotated</th></tr>{rows}</table>"
            f"<table><tr><th>source/split</th><th>examples</th><th>labeled</th></tr>{split_rows}</table>")


def section_label_frequencies(project: Project, split: str = "test") -> str | None:
    """Label counts on the training split (what the model learned from), whatever ``split`` is shown."""
    ex = project.examples(split="train", labeled=True)
    if len(ex) == 0:
        return None
    space = project.labels
    counts = ex.label_matrix(space).sum(0)
    order = np.argsort(-counts)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(space))))
    ax.barh([space.names[k] for k in order][::-1], counts[order][::-1], color="#4c78a8")
    ax.set_xlabel("training examples with the label")
    ax.set_title("Label frequencies (train)")
    return "<h2>Label frequencies</h2>" + figure_to_img(fig, "label frequencies")


def section_metrics(project: Project, split: str = "test") -> str | None:
    """The current model's evaluation (``model_evaluation``): which run, split and mode it is."""
    found = model_evaluation(project, split)
    if found is None:
        return (f"<h2>Evaluation</h2><p>No evaluation of the current model on split {html.escape(split)} yet "
                f"(runs with <code>--as-source</code> or <code>--agnostic</code>, and runs of older models, are not "
                f"shown here): run <code>tagwise evaluate {html.escape(str(project.path))} --split "
                f"{html.escape(split)}</code>.</p>")
    metrics, arrays = found
    shown = metrics["split"]
    instead = (f" (no evaluation of split {html.escape(split)} for this model yet: showing {html.escape(shown)})"
               if shown != split else "")
    only = (f" · only source <code>{html.escape(str(metrics['source']))}</code>" if metrics.get("source") else "")
    plt = _plt()
    names = list(metrics["per_label"])
    f1 = np.array([metrics["per_label"][n]["f1"] for n in names])
    support = np.array([metrics["per_label"][n]["support"] for n in names])
    order = np.argsort(f1)
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(names))))
    ax.barh([names[k] for k in order], f1[order], color="#59a14f")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title(f"Per-label F1 ({shown})")
    parts = [f"<h2>Evaluation on {html.escape(shown)}</h2>",
             f"<p id='evaluation-run'>Run <code>{html.escape(metrics['run'])}</code> of the current model on split "
             f"<b>{html.escape(shown)}</b>, each row in its source's own mode{only}{instead}.</p>",
             f"<p>{metrics['n_examples']} examples · micro-F1 <b>{metrics['micro_f1']:.3f}</b> · macro-F1 "
             f"<b>{format_metric(metrics['macro_f1'] if support.any() else None)}</b> · macro-AP "
             f"<b>{format_metric(metrics['macro_ap'])}</b> · ECE {format_metric(metrics['ece'])} · model <code>{html.escape(str(metrics.get('model')))}</code></p>",
             _modes_line(metrics.get("modes")),
             figure_to_img(fig, "per-label F1")]
    if "proba" in arrays:
        Y, P = arrays["y_true"].astype(bool), arrays["proba"]
        M = arrays.get("mask", np.ones_like(Y)).astype(bool)
        parts.append(_pr_curves(plt, Y, P, M, names, support))
        parts.append(_confusions(Y, arrays["pred"].astype(bool), M, names)) if "pred" in arrays else None
    if metrics.get("calibration"):
        parts.append(_reliability(plt, metrics["calibration"]))
    base = (metrics.get("baselines") or {}).get("per_label", {})
    dash = lambda v, support=None: html.escape(format_metric(v, support))  # noqa: E731
    table = "".join(f"<tr><td>{html.escape(n)}</td><td>{dash(m['precision'], m['support'] or m.get('predicted', 1))}</td>"
                    f"<td>{dash(m['recall'], m['support'])}</td><td>{dash(m['f1'], m['support'])}</td>"
                    f"<td>{m['support']}</td><td>{dash(base.get(n, {}).get('all_positive'), m['support'])}</td>"
                    f"<td>{dash(base.get(n, {}).get('prior'), m['support'])}</td></tr>"
                    for n, m in metrics["per_label"].items())
    parts.append(f"<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th>"
                 f"<th>F1 predicting everything</th><th>F1 of the prior</th></tr>{table}</table>"
                 f"<p>— : no positive of the label in the cells the rows' sources annotate (recall and F1 undefined; left out "
                 f"of macro averages).</p>")
    if metrics.get("baselines"):
        b = metrics["baselines"]["macro_f1"]
        parts.insert(3, f"<p>Trivial macro-F1: predict everything {dash(b['all_positive'])} · prior (each label on a "
                        f"random share of rows equal to its training rate) {dash(b['prior'])} · predict nothing "
                        f"{dash(b['all_negative'])}</p>")
    if metrics.get("per_source"):
        rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{html.escape(str(m['mode']))}</td><td>{m['n_examples']}</td>"
                       f"<td>{dash(m['macro_f1'] if m['labels_with_support'] else None)}</td>"
                       f"<td>{dash(m['baselines']['macro_f1']['all_positive'])}</td>"
                       f"<td>{dash(m['baselines']['macro_f1']['prior'])}</td></tr>"
                       for s, m in metrics["per_source"].items())
        parts.insert(3, "<h3>Per source, each in its own mode</h3><table><tr><th>source</th><th>mode</th><th>rows</th>"
                        "<th>macro-F1</th><th>predict everything</th><th>prior</th></tr>" + rows + "</table>")
    warnings = metrics.get("warnings") or []
    if warnings:
        parts.append("<h3>Warnings</h3><ul>" + "".join(
            f"<li>{html.escape(w['message'])} <b>Fix:</b> {html.escape(w['fix'])}</li>" for w in warnings) + "</ul>")
    return "".join(parts)


def section_health(project: Project, split: str = "test") -> str | None:
    """Training data health: the current model's (``model.json`` info ``health``, with its out-of-fold
    figures) or, without a model, the health of the train split's targets now (``workflows.health``)."""
    from .health import project_health

    if not len(project.examples(split="train", labeled=True)) and not project.models_dir.joinpath("CURRENT").exists():
        return None
    health = project_health(project)
    before, after = health.get("before", {}), health.get("after") or {}
    scored = after.get("sources", {})
    dash = lambda v: html.escape(format_metric(v))  # noqa: E731
    rows = []
    for source, entry in before.get("sources", {}).items():
        for label, c in entry["labels"].items():
            m = scored.get(source, {}).get("labels", {}).get(label, {})
            rows.append(f"<tr><td>{html.escape(source)}</td><td>{html.escape(label)}</td><td>{c['positives']}</td>"
                        f"<td>{c['negatives']}</td><td>{c['unknown']}</td><td>{c['expected_positives']:.1f}</td>"
                        f"<td>{dash(m.get('f1'))}</td><td>{dash(m.get('all_positive'))}</td><td>{dash(m.get('prior'))}</td></tr>")
    summary = "".join(
        f"<li>{html.escape(s)}: out-of-fold macro-F1 {dash(m.get('macro_f1'))} in its own mode; predicting everything "
        f"{dash(m['trivial_macro_f1']['all_positive'])}, the prior {dash(m['trivial_macro_f1']['prior'])}"
        + (f"; trained alone {dash(m['alone_macro_f1'])}" if m.get("alone_macro_f1") is not None else "") + "</li>"
        for s, m in scored.items())
    notes = "".join(f"<p>Note: {html.escape(n['message'])} {html.escape(n['fix'])}</p>" for n in before.get("notes", []))
    warnings = health["warnings"]
    items = "".join(f"<li><b>{html.escape(w['kind'])}</b> {html.escape(w['message'])} <b>Fix:</b> "
                    f"{html.escape(w['fix'])}</li>" for w in warnings)
    return ("<h2>Training data health</h2><p>Per source and label: the training targets' positives (from 0.5), "
            "negatives, unknown cells and expected positives (the sum of soft targets); after training, each "
            "source's out-of-fold F1 in its own mode beside the trivial predictors.</p>"
            "<table><tr><th>source</th><th>label</th><th>positives</th><th>negatives</th><th>unknown</th>"
            "<th>expected positives</th><th>out-of-fold F1</th><th>predict everything</th><th>prior</th></tr>"
            + "".join(rows) + "</table>" + (f"<ul>{summary}</ul>" if summary else "") + notes
            + (f"<h3>{len(warnings)} warning(s)</h3><ul>{items}</ul>" if warnings else "<p>No warnings.</p>"))


def _modes_line(modes: dict | None) -> str:
    """Which prediction mode each source's rows were scored in (a multi-source model has one per source)."""
    if not modes:
        return ""
    pairs = ", ".join(f"{html.escape(s)}: {html.escape(m)}" for s, m in sorted(modes.items()))
    return f"<p>Prediction mode per source (a source's own mode, or agnostic): {pairs}</p>"


def _pr_curves(plt, Y, P, M, names, support) -> str:
    """Micro-averaged PR curve plus the five most frequent labels."""
    from sklearn.metrics import precision_recall_curve

    fig, ax = plt.subplots(figsize=(6, 5))
    p, r, _ = precision_recall_curve(Y[M].ravel(), P[M].ravel())
    ax.plot(r, p, color="black", lw=2, label="micro-average")
    for k in np.argsort(-support)[:5]:
        if support[k] == 0:
            continue
        pk, rk, _ = precision_recall_curve(Y[M[:, k], k], P[M[:, k], k])
        ax.plot(rk, pk, lw=1, label=names[k])
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Precision-recall")
    return figure_to_img(fig, "precision-recall curves")


def _reliability(plt, calibration: dict) -> str:
    """The calibration curve of the evaluated rows' scores before and after per-label calibration
    (``workflows.conformal.calibration_report``), with each ECE."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for key, colour, name in (("before", "#e15759", "model scores"), ("after", "#4c78a8", "calibrated")):
        bins = calibration["reliability"][key]
        ax.plot(bins["mean_score"], bins["observed"], "-", color=colour, lw=1,
                label=f"{name} (ECE {calibration[f'ece_{key}']:.4f})")
        # a bin's marker area follows its cell count: a sparse bin's swing is visibly a small sample
        count = np.asarray(bins["count"], dtype=np.float64)
        ax.scatter(bins["mean_score"], bins["observed"], s=6 + 200 * count / max(count.sum(), 1.0), color=colour,
                   alpha=0.8)
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed share positive")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Reliability (known cells)")
    methods = calibration.get("methods", {})
    counts = {m: list(methods.values()).count(m) for m in dict.fromkeys(methods.values())}
    return (f"<h3 id='reliability'>Calibration</h3><p>Per-label calibration fitted on the model's calibration rows "
            f"({html.escape(str(calibration['fitted_on']))}, {calibration.get('n_calibration', '?')} rows; marker area: "
            f"cells in the bin), method per label chosen by cross-validated log loss ({html.escape(', '.join(f'{m}: {c}' for m, c in counts.items()))}"
            f"): ECE {calibration['ece_before']:.4f} → {calibration['ece_after']:.4f} on these rows.</p>"
            + figure_to_img(fig, "reliability curves before and after calibration"))


def _confusions(Y, Z, M, names, top: int = 12) -> str:
    """Most confused label pairs: gold a, predicted b instead (a missed, b wrongly added)."""
    missed = Y & ~Z & M
    added = ~Y & Z & M
    counts = missed.T.astype(np.int32) @ added.astype(np.int32)  # (K, K): a missed while b added
    np.fill_diagonal(counts, 0)
    flat = np.argsort(-counts, axis=None)[:top]
    rows = []
    for idx in flat:
        a, b = np.unravel_index(idx, counts.shape)
        if counts[a, b] == 0:
            break
        rows.append(f"<tr><td>{html.escape(names[a])}</td><td>{html.escape(names[b])}</td><td>{counts[a, b]}</td></tr>")
    if not rows:
        return ""
    return ("<h3>Most confused label pairs</h3><p>Examples whose gold label <i>a</i> was missed while "
            "label <i>b</i> was predicted instead.</p><table><tr><th>gold a (missed)</th><th>predicted b "
            "(wrong)</th><th>examples</th></tr>" + "".join(rows) + "</table>")



TOP_ISSUES = 20


def section_audit(project: Project, split: str = "test") -> str | None:
    """HTML fragment: counts by type and label, the top issues, a score-distribution plot.
    None when the project has never been audited."""
    runs = [r for r in project.runs("audit") if (r / "summary.json").exists()]
    if not runs:
        return None
    run = runs[-1]
    summary = json.loads((run / "summary.json").read_text())
    esc = html.escape
    by_type = summary.get("findings_by_type", {})
    parts = [f"<h2>Label audit</h2><p>Run <code>{esc(run.name)}</code>: {summary['n_examples']} labeled examples, "
             f"<b>{summary['n_flagged']}</b> flagged ({'multi' if summary.get('multi_label') else 'single'}-label"
             + (f"; about {summary['estimated_errors']:.0f} label errors estimated" if "estimated_errors" in summary
                else "") + "). "
             "Findings: " + (", ".join(f"{v} {esc(k)}" for k, v in sorted(by_type.items())) or "none") + ".</p>"]
    by_label = summary.get("findings_by_label", {})
    estimated = summary.get("estimated_errors_by_label", {})
    if by_label or estimated:
        names = sorted(set(by_label) | set(estimated),
                       key=lambda k: (-estimated.get(k, 0.0), -sum(by_label.get(k, {}).values())))
        cells = []
        for k in names[:30]:
            found = by_label.get(k, {"missing": 0, "wrong": 0})
            count = f"{estimated[k]:.0f}" if k in estimated else ""
            cells.append(f"<tr><td>{esc(k)}</td><td>{count}</td><td>{found['missing']}</td><td>{found['wrong']}</td></tr>")
        parts.append("<table><tr><th>label</th><th>errors estimated</th><th>flagged missing</th>"
                     "<th>flagged wrong</th></tr>" + "".join(cells) + "</table>")
    issues_path = run / "issues.jsonl"
    if issues_path.exists():
        issues = [json.loads(line) for line in issues_path.read_text(encoding="utf-8").splitlines()[:TOP_ISSUES]]
        body = "".join(
            f"<tr><td>{r['rank']}</td><td>{esc(r['source'])}:{esc(str(r['example_id']))}</td>"
            f"<td>{esc(r['text'][:300])}</td><td>{esc(', '.join(r['given_labels']))}</td>"
            f"<td>{esc(', '.join(r['suggested_labels']))}</td><td>{r['label_quality']:.3f}</td>"
            f"<td>{esc(', '.join(sorted({f['type'] for f in r['findings']})))}</td></tr>" for r in issues)
        parts.append(f"<h3>Top {len(issues)} issues</h3><table><tr><th>rank</th><th>example</th><th>text</th>"
                     f"<th>given</th><th>suggested</th><th>quality</th><th>findings</th></tr>{body}</table>")
    if (run / "label_quality.npy").exists():
        quality = load_npy(run / "label_quality.npy")
        flagged = load_npy(run / "flagged.npy").astype(bool) if (run / "flagged.npy").exists() else np.zeros(len(quality), bool)
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7, 3.2))
        bins = np.linspace(0, 1, 41)
        ax.hist(quality[~flagged], bins=bins, color="#4c78a8", alpha=0.8, label="not flagged")
        ax.hist(quality[flagged], bins=bins, color="#e15759", alpha=0.8, label="flagged")
        ax.set_yscale("log")
        ax.set_xlabel("label quality (lower = more likely mislabeled)")
        ax.set_ylabel("examples")
        ax.legend(fontsize=8)
        ax.set_title("Label quality distribution")
        parts.append(figure_to_img(fig, "label quality distribution"))
    return "".join(parts)


FEW = 8  # below this many labeled positives a label is flagged


def section_low_label(project: Project, split: str = "test") -> str | None:
    """HTML fragment: training mode, pseudo-labels used, labeled positives per label (rare flagged)."""
    names = list(project.labels.names)
    if not names:
        return None
    labeled = project.examples(labeled=True)
    labeled = labeled.subset(labeled.splits != "test")
    n_pos = (labeled.label_matrix(project.labels) & labeled.known_mask(project.labels)).sum(0) \
        if len(labeled) else np.zeros(len(names), dtype=int)
    info = {}
    try:
        info = load_project_model(project).info
    except TagwiseError:  # no model yet (or an unreadable one): the coverage table is still useful
        pass
    parts = ["<h2>Few labels: training mode and label coverage</h2>"]
    if info.get("mode"):
        trained = info.get("trained_on", {})
        parts.append(f"<p>Current model: <code>{html.escape(info['mode'])}</code>, "
                     f"{trained.get('n_examples', 0)} labeled and {trained.get('n_unlabeled', 0)} unlabeled examples.</p>")
        pl = info.get("pseudo_labels")
        if pl:
            parts.append(f"<p>Self-training used {pl['positive']} positive and {pl['negative']} negative pseudo-labels "
                         f"on {pl['examples']} of {pl['unlabeled_pool']} unlabeled examples.</p>")
    few = [n for n, c in zip(names, n_pos) if c < FEW]
    if few:
        parts.append(f"<p>{len(few)} label(s) have fewer than {FEW} labeled positives (the model relies on the "
                     f"label name for them): {html.escape(', '.join(few))}. Run <code>tagwise suggest "
                     f"{html.escape(str(project.path))} --budget 100 --out batch.jsonl</code> to find examples.</p>")
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{int(c)}</td></tr>"
                   for n, c in sorted(zip(names, n_pos), key=lambda t: t[1]))
    parts.append("<table><tr><th>label</th><th>labeled positives</th></tr>" + rows + "</table>")
    return "".join(parts)


def section_transfer(project: Project, split: str = "test") -> str | None:
    """HTML fragment for the project report: the transfer heat map, leave-one-out and languages.

    Uses the latest ``runs/*-transfer-*/transfer.json`` (written by ``tagwise evaluate --transfer``);
    returns None when there is none (the report then skips the section rather than training here).
    """
    runs = [r for r in project.runs("transfer") if (r / "transfer.json").exists()]
    if not runs:
        return None
    result = json.loads((runs[-1] / "transfer.json").read_text(encoding="utf-8"))
    png = base64.b64encode(transfer_heatmap_png(result)).decode("ascii")
    rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{'-' if v is None else f'{v:.3f}'}</td></tr>"
                   for s, v in result["leave_one_out"].items())
    langs = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" for k, v in result["languages"].items())
    return (f"<section><h2>Transfer across sources</h2>"
            f"<p>Macro-F1 of a model trained on one source (rows) and tested on another (columns), over the "
            f"labels both annotate. Run: {html.escape(runs[-1].name)}. Modes: "
            f"{html.escape(str(result.get('modes', {}).get('matrix', 'not recorded')))}.</p>"
            f"<img alt='transfer heat map' src='data:image/png;base64,{png}'/>"
            f"<h3>Leave one source out</h3><table><tr><th>held-out source</th><th>macro-F1</th></tr>{rows}</table>"
            f"<h3>Per language</h3><table><tr><th>language</th><th>macro-F1</th></tr>{langs}</table></section>")


def section_annotators(project: Project, split: str = "test") -> str | None:
    """Several annotators per example: agreement per label (Krippendorff's alpha), each annotator's
    estimated quality, and the least agreeing pairs (``workflows.annotators.annotator_report``)."""
    from .annotators import annotator_report

    if not project.store.annotation_records():
        return None
    rep = annotator_report(project)
    if len(rep["annotators"]) < 2:
        return None
    plt = _plt()
    labels = [(n, r["alpha"]) for n, r in rep["labels"].items() if r["alpha"] is not None]
    parts = [f"<h2>Annotators</h2><p>{rep['n_examples']} examples, {rep['n_judgements']} judgements by "
             f"{len(rep['annotators'])} annotators; consensus cells with confidence below 0.8: "
             f"{rep['consensus']['cells_below_0.8']} (<code>tagwise suggest --relabel N</code> picks the "
             f"examples where one more vote would most likely fix a decision).</p>"]
    if labels:
        labels.sort(key=lambda kv: kv[1])
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.25 * len(labels))))
        ax.barh([n for n, _ in labels], [a for _, a in labels], color="#4c78a8")
        ax.axvline(0.667, color="#999", lw=1, ls="--")  # Krippendorff's lowest bound for tentative conclusions
        ax.set_xlim(min(0.0, min(a for _, a in labels)), 1)
        ax.set_xlabel("Krippendorff's alpha (dashed: 0.667)")
        ax.set_title("Agreement per label")
        parts.append(figure_to_img(fig, "agreement per label"))
    # red below 0.6 only draws the eye (nearer a coin than a careful annotator); nothing is decided by it
    who = sorted(rep["annotators"].items(), key=lambda kv: kv[1]["quality"])
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.25 * len(who))))
    ax.barh([f"{n[:30]} ({r['n_examples']})" for n, r in who], [r["quality"] for _, r in who],
            color=["#e15759" if r["quality"] < 0.6 else "#59a14f" for _, r in who])
    ax.axvline(0.5, color="#999", lw=1, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel("estimated quality: balanced accuracy vs the consensus (0.5 = votes independent of it)")
    ax.set_title("Annotator quality (examples judged)")
    parts.append(figure_to_img(fig, "annotator quality"))
    def rates(per_label: dict) -> str:
        return ", ".join(f"{k} {v['sensitivity']:.2f}/{v['specificity']:.2f}" for k, v in per_label.items())

    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{r['quality']:.3f}</td><td>{r['n_examples']}</td>"
                   f"<td>{html.escape(rates(r['per_label']))}</td></tr>" for n, r in who)
    parts.append("<table><tr><th>annotator</th><th>quality</th><th>examples</th><th>sensitivity / specificity "
                 f"per label</th></tr>{rows}</table>")
    low = sorted(rep["pairwise"], key=lambda p: p["agreement"])[:5]
    if low:
        parts.append("<p>Least agreeing pairs: " + ", ".join(
            f"{html.escape(p['a'])}–{html.escape(p['b'])} {p['agreement']:.2f} ({p['cells']} cells)" for p in low)
            + "</p>")
    return "".join(parts)


# every section is (project, split) -> HTML fragment | None, rendered in this order
SECTIONS = [section_overview, section_health, section_label_frequencies, section_metrics, section_audit, section_transfer,
            section_low_label, section_annotators]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}"""


def write_report(project: Project, split: str = "test", path: str | Path | None = None) -> Path:
    """Render every section into ``PROJECT/report.html`` (atomically). Returns the path."""
    parts = []
    for section in SECTIONS:
        fragment = section(project, split)
        if fragment:
            parts.append(f"<section>{fragment}</section>")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>tagwise report — "
           f"{html.escape(project.path.name)}</title><style>{_STYLE}</style></head><body>"
           f"<h1>tagwise report: {html.escape(project.path.name)}</h1>{''.join(parts)}</body></html>")
    path = Path(path or project.path / "report.html")
    atomic_write_text(path, doc)
    return path
