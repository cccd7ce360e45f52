"""Accept suggested fixes from an issues file, and undo them: every change stays in history.

Each ``apply`` is one batch in the store's ``corrections`` table (old and new labels per example,
written in one transaction with the label update). ``undo`` restores the old labels of whole
batches, newest first, and marks them ``undone_at``; rows are never deleted.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..types import TagwiseError
from .project import new_run, read_issues


def apply_corrections(project, path, reason: str | None = None) -> tuple[str, int]:
    """Set every row's ``suggested_labels`` as the example's labels. Returns (batch id, n changed).

    Rows name the example by ``store_id`` (or ``source`` + ``example_id``). A row whose example's
    labels changed since the audit, or whose suggestion leaves the taxonomy, is an error naming it.
    """
    path = Path(path)
    rows = read_issues(path)
    known = set(project.labels.names)
    store = project.store
    by_source_id = None
    updates: dict[int, list[str]] = {}
    for n, r in enumerate(rows, 1):
        sid = r.get("store_id")
        if sid in (None, ""):
            if by_source_id is None:
                by_source_id = {(s, e): i for i, s, e in store.conn.execute(
                    "SELECT id, source, example_id FROM examples").fetchall()}
            sid = by_source_id.get((str(r.get("source")), str(r.get("example_id"))))
            if sid is None:
                raise TagwiseError(f"{path}: row {n}: no example {r.get('example_id')!r} in source "
                                   f"{r.get('source')!r}. Fix: keep the store_id column or delete the row.")
        sid = int(sid)
        suggested = r.get("suggested_labels")
        if isinstance(suggested, str):
            suggested = json.loads(suggested) if suggested.strip() else []
        if not isinstance(suggested, list):
            raise TagwiseError(f"{path}: row {n}: suggested_labels must be a list of label names.")
        bad = [s for s in suggested if s not in known]
        if bad:
            raise TagwiseError(f"{path}: row {n}: suggested_labels {bad} are not in the taxonomy. Fix: use one of "
                               f"{sorted(known)[:10]}{'…' if len(known) > 10 else ''} or delete the row.")
        current = store.conn.execute("SELECT labels FROM examples WHERE id=?", (sid,)).fetchone()
        if current is None:
            raise TagwiseError(f"{path}: row {n}: store id {sid} is not in this project. Fix: apply the file to "
                               f"the project it was audited from.")
        given = r.get("given_labels")
        if isinstance(given, str):
            given = json.loads(given) if given.strip() else []
        now = json.loads(current[0]) if current[0] is not None else None
        if given is not None and now is not None and sorted(now) != sorted(given):
            raise TagwiseError(f"{path}: row {n}: example {r.get('example_id')} now has labels {now}, not the "
                               f"audited {given}. Fix: re-run `tagwise audit` and apply the new file.")
        if now is None or sorted(now) != sorted(suggested):
            updates[sid] = list(suggested)
    batch = new_run(project, "corrections", {"file": str(path), "rows": len(rows)}).name
    changed = store.set_labels(updates, batch, reason or f"accepted audit suggestions from {path.name}")
    return batch, changed


def correction_batches(project) -> list[dict]:
    """Applied batches, oldest first: ``{"batch", "n", "created_at", "undone_at", "reason"}``."""
    rows = project.store.conn.execute(
        "SELECT batch, COUNT(*), MIN(created_at), MAX(undone_at), MAX(reason), MIN(id) FROM corrections "
        "GROUP BY batch ORDER BY MIN(id)").fetchall()
    return [{"batch": b, "n": n, "created_at": c, "undone_at": u, "reason": r} for b, n, c, u, r, _ in rows]


def undo_corrections(project, to: str | None = None) -> list[str]:
    """Undo the latest active batch, or with ``to=BATCH`` every active batch applied after BATCH
    (``to="start"`` undoes all). Restores each example's exact previous labels. Returns batches undone."""
    batches = [b for b in correction_batches(project) if b["undone_at"] is None]
    names = [b["batch"] for b in batches]
    if not batches:
        raise TagwiseError(f"{project.path}: there are no applied corrections to undo.")
    if to is None:
        targets = names[-1:]
    elif to == "start":
        targets = names
    elif to in names:
        targets = names[names.index(to) + 1:]
    else:
        raise TagwiseError(f"{project.path}: no applied correction batch {to!r}. Fix: pick one of {names} "
                           f"(or 'start' to undo all).")
    store = project.store
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    with store.transaction() as conn:
        for batch in reversed(targets):
            rows = conn.execute("SELECT id, example, old_labels, new_labels FROM corrections WHERE batch=? "
                                "ORDER BY id DESC", (batch,)).fetchall()
            for cid, example, old, new in rows:
                current = conn.execute("SELECT labels FROM examples WHERE id=?", (example,)).fetchone()
                if current is None or current[0] != new:
                    raise TagwiseError(f"{project.path}: example {example} changed after batch {batch} outside the "
                                       f"corrections history; refusing to overwrite it. Nothing was undone.")
                conn.execute("UPDATE examples SET labels=? WHERE id=?", (old, example))
                conn.execute("UPDATE corrections SET undone_at=? WHERE id=?", (now, cid))
    return targets
