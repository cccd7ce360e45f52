"""Server-rendered pages. Every text, label, source and model name goes through ``esc`` (HTML-escaped,
quotes included, so it is safe in attributes too); the only script is ``/static/app.js``."""
from __future__ import annotations

import html
import json
import string

FILTERS = ("source", "split", "language", "label", "q")
# keys that toggle labels in the label queue: digits, then letters that are not commands (s skip, u undo)
TOGGLE_KEYS = list("123456789") + [c for c in string.ascii_lowercase if c not in "su"]


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def layout(title: str, body: str, token: str | None, active: str) -> str:
    nav = "".join(f'<a href="{href}" class="{"on" if key == active else ""}">{name}</a>'
                  for key, href, name in (("label", "/label", "Label"), ("review", "/review", "Review"),
                                          ("model", "/model", "Model"), ("docs", "/docs", "API")))
    meta = f'<meta name="tagwise-token" content="{esc(token)}">' if token else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)} · tagwise</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body data-page="{esc(active)}"><header><b>tagwise</b> {nav}</header><main>{body}</main>
<script src="/static/app.js"></script></body></html>"""


def filter_form(action: str, filters: dict, options: dict) -> str:
    """A GET form with one control per filter; ``options`` holds the known sources/splits/languages/labels."""
    parts = []
    for key in FILTERS:
        value = filters.get(key) or ""
        if key == "q":
            parts.append(f'<input name="q" placeholder="search text" value="{esc(value)}">')
            continue
        opts = "".join(f'<option value="{esc(o)}"{" selected" if str(o) == str(value) else ""}>{esc(o)}</option>'
                       for o in options.get(key, []))
        parts.append(f'<select name="{key}" aria-label="{key}"><option value="">any {key}</option>{opts}</select>')
    return f'<form class="filters" method="get" action="{esc(action)}">{"".join(parts)}<button>Filter</button></form>'


def label_page(queue: dict, names: list[str], filters: dict, options: dict, token, annotator: str) -> str:
    items = queue["items"]
    toggles = "".join(
        f'<button type="button" class="toggle" data-label="{esc(n)}" data-key="{esc(TOGGLE_KEYS[k]) if k < len(TOGGLE_KEYS) else ""}">'
        f'<kbd>{esc(TOGGLE_KEYS[k]) if k < len(TOGGLE_KEYS) else ""}</kbd> {esc(n)}<span class="score"></span></button>'
        for k, n in enumerate(names))
    cards = "".join(
        f'<article class="item" hidden data-example-id="{int(it["example_id"])}" data-origin="{esc(it["origin"])}" '
        f'data-source="{esc(it["source"])}" data-guess="{esc(json.dumps(it["labels"]))}" '
        f'data-scores="{esc(json.dumps(it["scores"]))}">'
        f'<p class="text">{esc(it["text"])}</p>'
        f'<p class="prov">source <b>{esc(it["source"])}</b> · split {esc(it["split"])} · language '
        f'{esc(it["language"])} · id {esc(it["source_example_id"])} · why: {esc(it["reason"])}</p></article>'
        for it in items)
    body = f"""<h1>Label queue</h1>{filter_form("/label", filters, options)}
<p class="progress" id="progress" data-done="{queue['done']}" data-total="{queue['total']}">batch {esc(queue['batch'])}:
{queue['done']} of {queue['total']} labeled</p>
<div id="labeler" data-annotator="{esc(annotator)}">{cards or f'<p class="empty">{esc(queue.get("message"))}</p>'}
<input id="label-filter" placeholder="type to filter labels" autocomplete="off">
<div id="toggles">{toggles}</div>
<p class="keys"><kbd>1</kbd>–<kbd>9</kbd>, letters: toggle · <kbd>Enter</kbd> save · <kbd>S</kbd> skip ·
<kbd>U</kbd> undo</p><p id="status" role="status"></p></div>"""
    return layout("Label", body, token, "label")


def _chips(labels) -> str:
    return " ".join(f'<span class="chip">{esc(n)}</span>' for n in labels) or '<i>none</i>'


def review_page(queue: dict, names: list[str], filters: dict, options: dict, token, annotator: str,
                recent: list[dict]) -> str:
    if queue["audit"] is None:
        rows = '<p class="empty">No audit yet: run <code>tagwise audit PROJECT --out issues.csv</code>.</p>'
    else:
        out = []
        for it in queue["items"]:
            findings = "; ".join(f'{esc(f["type"])} {esc(f["label"] if not isinstance(f["label"], list) else ", ".join(f["label"]))}'
                                 for f in it["findings"])
            boxes = "".join(f'<label><input type="checkbox" value="{esc(n)}"{" checked" if n in it["labels"] else ""}> '
                            f'{esc(n)}</label>' for n in names)
            out.append(
                f'<tr class="review" data-example-id="{int(it["example_id"])}" data-origin="{esc(it["origin"])}" '
                f'data-given="{esc(json.dumps(it["labels"]))}" data-suggested="{esc(json.dumps(it["suggested_labels"]))}">'
                f'<td class="text">{esc(it["text"])}<div class="prov">{esc(it["source"])} · {esc(it["split"])}</div></td>'
                f'<td>{_chips(it["labels"])}</td><td>{_chips(it["suggested_labels"])}</td>'
                f'<td>{findings}<div class="prov">quality {it["label_quality"]:.3f}</div></td>'
                f'<td class="actions"><button class="accept">Accept</button> <button class="edit">Edit</button> '
                f'<button class="keep">Keep</button><div class="editor" hidden>{boxes}'
                f'<button class="save-edit">Save</button></div><span class="decision"></span></td></tr>')
        rows = ('<table id="review"><tr><th>text</th><th>given</th><th>suggested</th><th>finding</th><th></th></tr>'
                + "".join(out) + "</table>") if out else '<p class="empty">Nothing left to review with these filters.</p>'
    hist = "".join(
        f'<tr data-annotation-id="{a["id"]}"><td>{a["id"]}</td><td>{esc(a["text"][:80])}</td><td>{_chips(a["labels"])}</td>'
        f'<td>{esc(a["annotator"])}</td><td>{esc(a["origin"])}</td><td>{esc(a["created_at"])}</td>'
        f'<td>{"undone " + esc(a["undone_at"]) if a["undone_at"] else "<button class=undo>Undo</button>"}</td></tr>'
        for a in recent)
    body = f"""<h1>Review queue</h1>{filter_form("/review", filters, options)}
<p class="progress">audit {esc(queue['audit'])}: {queue['done']} of {queue['total']} rows decided</p>
<div id="reviewer" data-annotator="{esc(annotator)}">{rows}</div>
<h2>History</h2><table id="history"><tr><th>#</th><th>text</th><th>labels</th><th>annotator</th><th>origin</th>
<th>time</th><th></th></tr>{hist}</table><p id="status" role="status"></p>"""
    return layout("Review", body, token, "review")


def _figures_table(job: dict | None) -> str:
    if not job or not job.get("result"):
        return ""
    r = job["result"]
    rows = []
    for split in sorted(set(r["before"]) | set(r["after"])):
        for k in ("micro_f1", "macro_f1"):
            b, a = r["before"].get(split, {}).get(k), r["after"].get(split, {}).get(k)
            rows.append(f'<tr><td>{esc(split)}</td><td>{k}</td><td>{"" if b is None else f"{b:.3f}"}</td>'
                        f'<td>{"" if a is None else f"{a:.3f}"}</td></tr>')
    return (f'<h2>Last retrain</h2><p>{esc(r["previous_model"])} → <b>{esc(r["model"])}</b> ({esc(r["mode"])}, '
            f'{r["n_examples"]} examples, {r["seconds"]}s)</p><table id="before-after"><tr><th>split</th><th>figure</th>'
            f'<th>before</th><th>after</th></tr>{"".join(rows)}</table>')


def model_page(info: dict | None, sections: list[str], token, last_job: dict | None) -> str:
    if info is None:
        head = '<p class="empty">No model yet.</p>'
    else:
        head = (f'<p id="model-name">Current model <b>{esc(info["name"])}</b> · mode {esc(info.get("mode"))} · '
                f'encoder {esc(info.get("encoder"))} · trained on {esc(info.get("trained_on", {}).get("n_examples"))} '
                f'examples</p>')
    body = f"""<h1>Model</h1>{head}
<p><button id="retrain">Retrain</button> <progress id="job-progress" max="1" value="0" hidden></progress>
<span id="job-stage"></span></p><div id="job-result">{_figures_table(last_job)}</div>
{"".join(sections)}"""
    return layout("Model", body, token, "model")
