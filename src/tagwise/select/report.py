"""Report section: how the current model learned from few labels, and which labels need more."""
from __future__ import annotations

import html
import json

import numpy as np

FEW = 8  # below this many labeled positives a label is flagged


def low_label_report_section(project) -> str | None:
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
        doc = json.loads((project.model_dir() / "model.json").read_text(encoding="utf-8"))
        info = doc.get("info", {})
    except Exception:  # no model yet: the coverage table is still useful
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
