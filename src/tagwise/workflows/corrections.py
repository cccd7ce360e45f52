"""Accept suggested fixes from an issues file, and undo them: every change stays in history.

Each ``apply`` is one batch in the store's ``corrections`` table (old and new labels per example,
written in one transaction with the label update). ``undo`` restores the old labels of whole
batches, newest first, and marks them ``undone_at``; rows are never deleted.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from ..project import Project
from ..types import TagwiseError
from .audit import read_issues


def _label_list(value, path, n: int, field: str) -> list[str] | None:
    """A row's label field (list, or JSON text of a list of strings) -> list; None when absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None if value is None else []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TagwiseError(f"{path}: row {n}: {field} must be a list of label names such as [\"anger\", \"joy\"].")
    return [unicodedata.normalize("NFC", v) for v in value]  # as label names are stored (sources.spec)


def _store_id(value, path, n: int) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > 18:
        raise TagwiseError(f"{path}: row {n}: store_id {value!r} is not a store id (a whole number from the "
                           f"audit file). Fix: restore it from the audit output or delete the row.")
    return int(text)


def apply_corrections(project: Project, path, reason: str | None = None) -> dict:
    """Set every row's ``suggested_labels`` as the example's labels.

    Rows name the example by ``store_id`` and, to guard against a re-ingested source reusing ids,
    ``source`` + ``example_id`` (checked against the store). A row whose example's labels changed since
    the audit, whose suggestion leaves the taxonomy, or that repeats an example is an error naming it;
    nothing is changed then. Returns ``{"batch", "changed", "rows"}``.
    """
    path = Path(path)
    project.clean_orphans()
    rows = read_issues(path)
    if not rows:
        raise TagwiseError(f"{path}: no rows to apply. Fix: keep the rows whose suggestions you accept.")
    known = set(project.labels.names)
    store = project.store
    wanted: dict[int, tuple[int, dict]] = {}
    by_key: list[tuple[int, dict]] = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise TagwiseError(f"{path}: row {n}: expected an object with store_id/source/example_id/"
                               f"suggested_labels, got {type(r).__name__}.")
        sid = _store_id(r.get("store_id"), path, n)
        if sid is None:
            if r.get("source") in (None, "") or r.get("example_id") in (None, ""):
                raise TagwiseError(f"{path}: row {n}: names no example. Fix: keep store_id or source + example_id.")
            by_key.append((n, r))
        else:
            if sid in wanted:
                raise TagwiseError(f"{path}: rows {wanted[sid][0]} and {n} both correct store id {sid}. Fix: keep one.")
            wanted[sid] = (n, r)
    records = store.example_records(list(wanted))
    found = store.find_examples([(str(r.get("source")), str(r.get("example_id"))) for _, r in by_key])
    targets: dict[int, tuple[int, dict, str | None]] = {}
    for sid, (n, r) in wanted.items():
        if sid not in records:
            raise TagwiseError(f"{path}: row {n}: store id {sid} is not in this project. Fix: apply the file to "
                               f"the project it was audited from.")
        source, example_id, labels = records[sid]
        if (r.get("source") not in (None, "") and str(r["source"]) != source) or \
                (r.get("example_id") not in (None, "") and str(r["example_id"]) != example_id):
            raise TagwiseError(f"{path}: row {n}: store id {sid} is now example {example_id!r} of source {source!r}, "
                               f"not {r.get('example_id')!r} of {r.get('source')!r} (the source was re-ingested). "
                               f"Fix: re-run `tagwise audit` and apply the new file.")
        targets[sid] = (n, r, labels)
    for n, r in by_key:
        hit = found.get((str(r.get("source")), str(r.get("example_id"))))
        if hit is None:
            raise TagwiseError(f"{path}: row {n}: no example {r.get('example_id')!r} in source "
                               f"{r.get('source')!r}. Fix: keep the store_id column or delete the row.")
        if hit[0] in targets:
            raise TagwiseError(f"{path}: rows {targets[hit[0]][0]} and {n} both correct example "
                               f"{r.get('example_id')!r}. Fix: keep one.")
        targets[hit[0]] = (n, r, hit[1])
    updates: dict[int, list[str]] = {}
    expected: dict[int, str | None] = {}
    for sid, (n, r, current) in targets.items():
        suggested = _label_list(r.get("suggested_labels"), path, n, "suggested_labels")
        if suggested is None:
            raise TagwiseError(f"{path}: row {n}: no suggested_labels. Fix: give the labels to set (or [] for none).")
        bad = [s for s in suggested if s not in known]
        if bad:
            raise TagwiseError(f"{path}: row {n}: suggested_labels {bad} are not in the taxonomy. Fix: use one of "
                               f"{sorted(known)[:10]}{'…' if len(known) > 10 else ''} or delete the row.")
        given = _label_list(r.get("given_labels"), path, n, "given_labels")
        now = json.loads(current) if current is not None else None
        if given is not None and now is not None and sorted(now) != sorted(given):
            raise TagwiseError(f"{path}: row {n}: example {r.get('example_id')} now has labels {now}, not the "
                               f"audited {given}. Fix: re-run `tagwise audit` and apply the new file.")
        if now is None or sorted(now) != sorted(suggested):
            updates[sid] = list(suggested)
            expected[sid] = current
    # the run folder is made after the batch commits: a kill before that leaves no folder, and a
    # folder always names a committed batch (Project.clean_orphans relies on it)
    batch = project.new_run_id("corrections")
    changed = store.set_labels(updates, batch, reason or f"accepted audit suggestions from {path.name}",
                               expected=expected)
    if changed:
        project.new_run("corrections", {"file": str(path), "rows": len(rows), "changed": changed}, run_id=batch)
    return {"batch": batch if changed else None, "changed": changed, "rows": len(rows)}


def correction_batches(project: Project) -> list[dict]:
    """Applied batches, oldest first: ``{"batch", "n", "created_at", "undone_at", "reason"}``."""
    return project.store.correction_batches()


def undo_corrections(project: Project, to: str | None = None) -> list[str]:
    """Undo the latest active batch, or with ``to=BATCH`` every active batch applied after BATCH
    (``to="start"`` undoes all). Restores each example's exact previous labels. Returns batches undone."""

    def choose(names: list[str]) -> list[str]:
        if not names:
            raise TagwiseError(f"{project.path}: there are no applied corrections to undo.")
        if to is None:
            return names[-1:]
        if to == "start":
            return names
        if to in names:
            return names[names.index(to) + 1:]
        raise TagwiseError(f"{project.path}: no applied correction batch {to!r}. Fix: pick one of {names} "
                           f"(or 'start' to undo all).")

    return project.store.undo_batches(choose, str(project.path))
