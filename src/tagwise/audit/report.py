"""The audit section of the HTML report, from the newest ``runs/*-audit`` folder."""
from __future__ import annotations

import html
import json

import numpy as np

from .._io import load_npy

TOP_ISSUES = 20


def audit_report_section(project) -> str | None:
    """HTML fragment: counts by type and label, the top issues, a score-distribution plot.
    None when the project has never been audited."""
    runs = [r for r in project.runs("audit") if (r / "summary.json").exists()]
    if not runs:
        return None
    from ..evaluate.report import _plt, figure_to_img

    run = runs[-1]
    summary = json.loads((run / "summary.json").read_text())
    esc = html.escape
    by_type = summary.get("findings_by_type", {})
    parts = [f"<h2>Label audit</h2><p>Run <code>{esc(run.name)}</code>: {summary['n_examples']} labeled examples, "
             f"<b>{summary['n_flagged']}</b> flagged ({'multi' if summary.get('multi_label') else 'single'}-label). "
             "Findings: " + (", ".join(f"{v} {esc(k)}" for k, v in sorted(by_type.items())) or "none") + ".</p>"]
    by_label = summary.get("findings_by_label", {})
    if by_label:
        rows = sorted(by_label.items(), key=lambda kv: -(kv[1]["missing"] + kv[1]["wrong"]))
        parts.append("<table><tr><th>label</th><th>missing</th><th>wrong</th></tr>" + "".join(
            f"<tr><td>{esc(k)}</td><td>{v['missing']}</td><td>{v['wrong']}</td></tr>" for k, v in rows[:30]) + "</table>")
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
