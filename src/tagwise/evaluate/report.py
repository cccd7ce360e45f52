"""The HTML report: one self-contained file with inline plots.

Sections are functions ``(project, split) -> str | None`` (an HTML fragment, or None to skip)
listed in ``SECTIONS``; other stages (audit, transfer, few labels) are listed there lazily.
"""
from __future__ import annotations

import base64
import html
import importlib
import io
import json
from pathlib import Path

import numpy as np

from .._io import atomic_write_text, load_npy


def figure_to_img(fig, alt: str) -> str:
    """A matplotlib figure -> an inline ``<img>`` tag (PNG, base64)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latest_evaluation(project, split: str = "test") -> tuple[dict, dict[str, np.ndarray]] | None:
    """The newest evaluate run of ``split``: (metrics, arrays y_true/proba/mask/thresholds)."""
    for run in reversed(project.runs("evaluate")):
        metrics_path = run / "metrics.json"
        if not metrics_path.exists():
            continue
        metrics = json.loads(metrics_path.read_text())
        if metrics.get("split") != split:
            continue
        arrays = {k: load_npy(run / f"{k}.npy") for k in ("y_true", "proba", "mask", "thresholds")
                  if (run / f"{k}.npy").exists()}
        return metrics, arrays
    return None


def section_overview(project, split: str = "test") -> str:
    rows = "".join(f"<tr><td>{html.escape(s['name'])}</td><td>{s['n_examples']}</td>"
                   f"<td>{len(s['annotated'])}</td></tr>" for s in project.store.sources())
    counts = project.store.count()
    split_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['n']}</td><td>{v['labeled']}</td></tr>"
                         for k, v in sorted(counts.items()))
    return (f"<h2>Project</h2><p>{len(project.labels)} labels, encoder <code>{html.escape(project.default_encoder)}</code></p>"
            f"<table><tr><th>source</th><th>examples</th><th>labels annotated</th></tr>{rows}</table>"
            f"<table><tr><th>source/split</th><th>examples</th><th>labeled</th></tr>{split_rows}</table>")


def section_label_frequencies(project, split: str = "test") -> str | None:
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


def section_metrics(project, split: str = "test") -> str | None:
    found = latest_evaluation(project, split)
    if found is None:
        return f"<h2>Evaluation</h2><p>No evaluation of split {split!r} yet: run <code>tagwise evaluate</code>.</p>"
    metrics, arrays = found
    plt = _plt()
    names = list(metrics["per_label"])
    f1 = np.array([metrics["per_label"][n]["f1"] for n in names])
    support = np.array([metrics["per_label"][n]["support"] for n in names])
    order = np.argsort(f1)
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(names))))
    ax.barh([names[k] for k in order], f1[order], color="#59a14f")
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title(f"Per-label F1 ({split})")
    parts = [f"<h2>Evaluation on {html.escape(split)}</h2>",
             f"<p>{metrics['n_examples']} examples · micro-F1 <b>{metrics['micro_f1']:.3f}</b> · macro-F1 "
             f"<b>{metrics['macro_f1']:.3f}</b> · macro-AP <b>{metrics['macro_ap']:.3f}</b> · ECE "
             f"{metrics['ece']:.3f} · model <code>{html.escape(str(metrics.get('model')))}</code></p>",
             figure_to_img(fig, "per-label F1")]
    if "proba" in arrays:
        Y, P = arrays["y_true"].astype(bool), arrays["proba"]
        M = arrays.get("mask", np.ones_like(Y)).astype(bool)
        parts.append(_pr_curves(plt, Y, P, M, names, support))
        parts.append(_confusions(Y, P >= arrays["thresholds"][None, :], M, names))
    table = "".join(f"<tr><td>{html.escape(n)}</td><td>{m['precision']:.3f}</td><td>{m['recall']:.3f}</td>"
                    f"<td>{m['f1']:.3f}</td><td>{m['support']}</td></tr>" for n, m in metrics["per_label"].items())
    parts.append(f"<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
                 f"{table}</table>")
    return "".join(parts)


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


def _lazy(module: str, function: str):
    """A section that lives in another stage, imported only when a report is written."""
    def section(project, split):
        return getattr(importlib.import_module(module, __package__), function)(project)

    return section


# every section is (project, split) -> HTML fragment | None, rendered in this order
SECTIONS = [section_overview, section_label_frequencies, section_metrics,
            _lazy("..audit.report", "audit_report_section"),
            _lazy(".transfer", "transfer_report_section"),
            _lazy("..select.report", "low_label_report_section")]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}"""


def write_report(project, split: str = "test", path: str | Path | None = None) -> Path:
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
