"""Labels people give: annotations (add / undo / list), import and export, and the work queues.

Every label a person gives is one row of the store's ``annotations`` table (example, labels,
annotator, time, origin), never an overwrite of the stored labels; what an example trains with is
decided by ``tagwise.annotations.resolve_training_labels`` (``Project.examples`` applies it).

Import reads JSONL (``{"id"|"store_id"|"example_id", "source"?, "labels": [names]}`` per line), CSV
(the same columns; ``labels`` a JSON list or names joined by ``,``) or a Label Studio JSON export of
a ``tagwise suggest --format label-studio`` batch. A file is checked whole before anything is
written: an unknown example, an unknown label or malformed JSON is one ``TagwiseError`` and nothing is
imported. Import is idempotent: a judgement is keyed by (example, annotator, labels), so a file imported
again (or twice at once) adds nothing. Export writes JSONL, Label Studio JSON or CSV; CSV text cells that
a spreadsheet would run as formulas get a leading ``'`` (``_io.neutralise_formula``, as the audit's CSV).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .._io import atomic_write_text, neutralise_formula, restore_formula
from ..project import Project
from ..text import check_unicode
from ..types import TagwiseError

EXPORT_FORMATS = ("jsonl", "label-studio", "csv")


# -- annotations -----------------------------------------------------------------------------------
def check_labels(project: Project, labels, where: str) -> list[str]:
    """``labels`` as a list of taxonomy names, or a ``TagwiseError`` naming ``where``."""
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise TagwiseError(f"{where}: labels must be a list of label names such as [\"anger\", \"joy\"].")
    known = set(project.labels.names)
    bad = [x for x in labels if x not in known]
    if bad:
        raise TagwiseError(f"{where}: labels {bad[:5]} are not in the taxonomy. Fix: use names from "
                           f"{sorted(known)[:10]}{'…' if len(known) > 10 else ''}.")
    return list(dict.fromkeys(labels))


class NotYours(TagwiseError):
    """Someone tried to undo another person's annotation without the right to."""


def annotate(project: Project, store_id: int, labels: list[str], annotator: str, origin: str = "web",
             cap: int | None = None, since: int = 0) -> int:
    """Record one person's labels for one example (store id). Returns the annotation id.

    cap: refuse (``store.OverlapReached``) when ``cap`` other people have labeled the example already
    (after annotation id ``since``)."""
    if not isinstance(annotator, str) or not annotator.strip():
        raise TagwiseError("annotator must be a non-empty name.")
    labels = check_labels(project, labels, f"example {store_id}")
    return project.store.add_annotations([(int(store_id), labels, annotator.strip(), origin)],
                                         str(project.path), cap=cap, since=since)[0]


def undo_annotation(project: Project, annotation_id: int | None = None, annotator: str | None = None,
                    owner: str | None = None) -> dict:
    """Undo annotation ``annotation_id`` (or ``annotator``'s latest). The row stays, marked ``undone_at``.
    owner: only an annotation of this person may be undone (``NotYours`` otherwise)."""
    if annotation_id is None and annotator is None:
        raise TagwiseError("name the annotation id or the annotator whose latest annotation to undo.")
    if owner is not None and annotation_id is not None:
        found = project.store.annotation(annotation_id)
        if found is not None and found["annotator"] != owner:
            raise NotYours(f"annotation {annotation_id} is not {owner}'s; only a reviewer may undo it.")
    return project.store.undo_annotation(annotation_id, annotator, str(project.path))


def list_annotations(project: Project, include_undone: bool = True) -> list[dict]:
    return project.store.annotations(include_undone=include_undone)


# -- import ----------------------------------------------------------------------------------------
def _read_records(path: Path) -> tuple[list[dict], str]:
    """File -> (records ``{"key", "labels", "annotator"?, "row"}``, kind)."""
    if not path.exists():
        raise TagwiseError(f"{path}: no such file.")
    if path.is_dir():
        raise TagwiseError(f"{path}: is a folder, not a labels file. Fix: name the file inside it (JSONL, CSV or "
                           f"a Label Studio JSON export).")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TagwiseError(f"{path}: not UTF-8 (byte {exc.start}). Fix: save the file as UTF-8.") from None
    except OSError as exc:
        raise TagwiseError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    ext = path.suffix.lower()
    if ext == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as exc:
            raise TagwiseError(f"{path}: malformed CSV ({exc}).") from None
        out = []
        for n, r in enumerate(rows, 2):
            # a cell our export (or a spreadsheet) wrote behind a ' to keep it from running as a formula
            r = {k: restore_formula(v) for k, v in r.items()}
            raw = (r.get("labels") or "").strip()
            if raw.startswith("["):
                try:
                    labels = json.loads(raw)
                except json.JSONDecodeError:
                    raise TagwiseError(f"{path}: row {n}: labels {raw!r} is not a JSON list.") from None
            else:
                labels = [x.strip() for x in raw.split(",") if x.strip()]
            out.append({"row": f"row {n}", "key": r, "labels": labels, "annotator": r.get("annotator") or None})
        return out, "csv"
    stripped = text.lstrip()
    if ext == ".json" or stripped.startswith("["):
        try:
            tasks = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TagwiseError(f"{path}: malformed JSON at line {exc.lineno} ({exc.msg}). Fix: re-export it "
                               f"from Label Studio (JSON) or repair the file. Nothing was imported.") from None
        if not isinstance(tasks, list):
            raise TagwiseError(f"{path}: expected a Label Studio JSON export (a list of tasks).")
        return _label_studio_records(tasks, path), "label-studio"
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TagwiseError(f"{path}: line {n}: not valid JSON ({exc.msg}). Nothing was imported.") from None
        if not isinstance(r, dict):
            raise TagwiseError(f"{path}: line {n}: expected an object with id/example_id and labels.")
        out.append({"row": f"line {n}", "key": r, "labels": r.get("labels"), "annotator": r.get("annotator")})
    return out, "jsonl"


def _label_studio_records(tasks: list, path: Path) -> list[dict]:
    """The latest completed (not cancelled) annotation of each task; tasks nobody annotated are skipped."""
    out = []
    for n, task in enumerate(tasks, 1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise TagwiseError(f"{path}: task {n}: no 'data' object; is this a Label Studio JSON export?")
        done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            continue
        ann = done[-1]
        labels: list = []
        for res in ann.get("result") or []:
            if isinstance(res, dict) and res.get("type") == "choices":
                choices = (res.get("value") or {}).get("choices")
                if not isinstance(choices, list):
                    raise TagwiseError(f"{path}: task {n}: a choices result without a list of choices.")
                labels += choices
        who = ann.get("completed_by")
        if isinstance(who, dict):
            who = who.get("email") or who.get("id")
        out.append({"row": f"task {n}", "key": task["data"], "labels": labels,
                    "annotator": None if who in (None, "") else f"label-studio:{who}"})
    return out


def _resolve_keys(project: Project, records: list[dict], path: Path) -> list[int]:
    """Each record's store id: ``store_id``/``id`` (a store id), else ``example_id`` (+ ``source``)."""
    ex = project.store.examples()
    store_ids = set(ex.ids.tolist())
    by_source_id: dict[tuple[str, str], int] = {}
    by_id: dict[str, list[int]] = {}
    for i, s, e in zip(ex.ids.tolist(), ex.sources.tolist(), ex.example_ids.tolist()):
        by_source_id[(str(s), str(e))] = i
        by_id.setdefault(str(e), []).append(i)
    out = []
    for r in records:
        key, where = r["key"], f"{path}: {r['row']}"
        sid = key.get("store_id", key.get("id"))
        if sid not in (None, ""):
            try:
                sid = int(str(sid).strip())
            except ValueError:
                raise TagwiseError(f"{where}: id {sid!r} is not a store id (a whole number).") from None
            if sid not in store_ids:
                raise TagwiseError(f"{where}: no example with store id {sid} in {project.path}. Fix: import the "
                                   f"file into the project it came from. Nothing was imported.")
            out.append(sid)
            continue
        eid, source = key.get("example_id"), key.get("source")
        if eid in (None, ""):
            raise TagwiseError(f"{where}: names no example. Fix: give id (store id) or example_id (+ source).")
        if source not in (None, ""):
            hit = by_source_id.get((str(source), str(eid)))
            if hit is None:
                raise TagwiseError(f"{where}: no example {eid!r} in source {source!r}. Nothing was imported.")
        else:
            hits = by_id.get(str(eid), [])
            if len(hits) != 1:
                raise TagwiseError(f"{where}: example_id {eid!r} matches {len(hits)} examples. Fix: add a "
                                   f"'source' field (or use the store id). Nothing was imported.")
            hit = hits[0]
        out.append(hit)
    return out


def import_labels(project: Project, path, annotator: str = "import") -> dict:
    """Import a labeled file as annotations (origin ``import:<file name>``), all or nothing.

    Idempotent: a judgement is keyed by (example, annotator, labels); one already imported (from this
    or any file, and not undone) is not stored again, so importing a file twice, or twice at once,
    adds it once and one person never counts double in the consensus.

    Returns ``{"imported" (new annotations), "already_stored", "skipped_unannotated" (Label Studio
    tasks nobody labeled), "format", "origin", "annotation_ids" (of the new ones)}``.
    """
    path = Path(path)
    records, kind = _read_records(path)
    if not records:
        raise TagwiseError(f"{path}: no labeled rows to import.")
    ids = _resolve_keys(project, records, path)
    rows, seen = [], {}
    origin = f"import:{path.name}"
    for r, sid in zip(records, ids):
        where = f"{path}: {r['row']}"
        if r["labels"] is None:
            raise TagwiseError(f"{where}: no 'labels'. Fix: give a list of label names ([] for none).")
        labels = check_labels(project, r["labels"], where)
        if sid in seen:
            raise TagwiseError(f"{where}: example {sid} was already labeled in {seen[sid]}. Fix: keep one.")
        seen[sid] = r["row"]
        who = str(r.get("annotator") or annotator)
        check_unicode(who, f"{where}: annotator")
        rows.append((sid, labels, who, origin))
    new_ids, already = project.store.import_annotations(rows, str(path))
    n_tasks = None
    if kind == "label-studio":
        n_tasks = len(json.loads(path.read_text(encoding="utf-8")))
    return {"imported": len(new_ids), "already_stored": already, "format": kind, "origin": origin,
            "annotation_ids": new_ids,
            "skipped_unannotated": (n_tasks - len(records)) if n_tasks is not None else 0}


# -- export ----------------------------------------------------------------------------------------
def export_labels(project: Project, out, fmt: str = "jsonl", consensus: str = "model") -> dict:
    """Every labeled example with its training labels and provenance (latest annotation's annotator and
    origin, or ``source`` for labels that came with the data). Returns ``{"rows", "out", "format",
    "consensus_rows"}``.

    Each row has ``labels`` (names) and ``probabilities`` ({name: p} over the labels the row's
    source annotates): where several people annotated the example, the consensus of their
    judgements (``consensus``, as ``tagwise train --consensus``; ``labels`` = p >= 0.5, ``n_judgements``
    how many), else 1 / 0 from its labels."""
    from .annotators import consensus_overrides

    if fmt not in EXPORT_FORMATS:
        raise TagwiseError(f"unknown --format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    ex = project.examples(labeled=True)
    names = list(project.labels.names)
    overrides = consensus_overrides(project, consensus)
    Y, known = ex.label_matrix(project.labels), ex.known_mask(project.labels)
    latest: dict[int, dict] = {}
    n_judged: dict[int, int] = {}
    for a in project.store.annotations():
        latest[a["example"]] = a
    for sid, _, _, _ in project.store.annotation_records() if overrides else ():
        n_judged[sid] = n_judged.get(sid, 0) + 1
    rows = []
    for i in range(len(ex)):
        sid = int(ex.ids[i])
        a = latest.get(sid)
        labels = list(ex.labels[i] or [])
        if sid in overrides:
            p, covered = overrides[sid]
            p = np.where(covered, p, Y[i])
            cols = np.flatnonzero(known[i] | covered)
            labels = [names[k] for k in cols if p[k] >= 0.5]
            probabilities = {names[k]: round(float(p[k]), 4) for k in cols}
        else:
            probabilities = {names[k]: float(Y[i, k]) for k in np.flatnonzero(known[i])}
        row = {"id": sid, "example_id": str(ex.example_ids[i]), "source": str(ex.sources[i]),
               "split": str(ex.splits[i]), "text": ex.texts[i], "labels": labels, "probabilities": probabilities,
               "annotator": a["annotator"] if a else None, "origin": a["origin"] if a else "source",
               "annotated_at": a["created_at"] if a else None, "n_judgements": n_judged.get(sid)}
        if sid in overrides:
            row["origin"] = "consensus"
        rows.append(row)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["id", "labels"])
        w.writeheader()
        for r in rows:
            # cells a spreadsheet would run as formulas get a leading ' (as the audit's issues CSV)
            w.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else neutralise_formula(v)
                        for k, v in r.items()})
        text = buf.getvalue()
    else:
        tasks = [{"data": {"text": r["text"], "store_id": r["id"], "example_id": r["example_id"], "source": r["source"]},
                  "annotations": [{"completed_by": r["annotator"] or r["origin"], "was_cancelled": False,
                                   "result": [{"from_name": "labels", "to_name": "text", "type": "choices",
                                               "value": {"choices": r["labels"]}}]}]} for r in rows]
        text = json.dumps(tasks, ensure_ascii=False, indent=1)
    atomic_write_text(out, text)
    return {"rows": len(rows), "out": str(out), "format": fmt,
            "consensus_rows": sum(r["origin"] == "consensus" for r in rows)}


# The web app's label and review queues live in workflows/queue.py.


def history(project: Project, limit: int = 50, annotator: str | None = None) -> list[dict]:
    """The latest annotations (undone ones too), newest first, with each example's text and source
    (only ``annotator``'s when given: a person sees their own labels, not the team's)."""
    anns = project.store.annotations(include_undone=True)
    if annotator is not None:
        anns = [a for a in anns if a["annotator"] == annotator]
    anns = anns[-limit:][::-1]
    info = project.store.example_info([a["example"] for a in anns])
    return [{**a, "text": info.get(a["example"], {}).get("text", ""),
             "source": info.get(a["example"], {}).get("source", "")} for a in anns]
