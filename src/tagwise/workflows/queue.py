"""The web app's work queues: who labels what next (with overlap), and the audit rows left to review.

Label queue (issue 28): the examples of the label queue's suggest batches (``runs/<id>-suggest/
batch.jsonl``), each meant for ``overlap`` distinct people. An example is offered to a person

- never when they have already labeled it (an undone annotation does not count),
- never once ``overlap`` people have labeled it,
- only while fewer than ``overlap`` people have labeled it or hold it: asking for the queue *leases*
  the examples it returns to the person for ``LEASE_S`` seconds (the store's ``assignments``), so
  three people working at once on overlap 2 give every example exactly two judgements.

A person never sees another's labels before giving their own: an item shows the model's guess, and
once somebody has labeled the example it shows the guess stored with the batch (made before anyone
labeled it), not the current model's, which may have been trained on that person's labels.
A new batch is suggested when nothing is left for the asking person.
"""
from __future__ import annotations

import contextlib
import json
import time

from .._io import atomic_write_text
from ..project import Project
from ..store import OverlapReached  # noqa: F401  (what save_label raises when an example is full)
from ..types import TagwiseError
from .labels import annotate

LEASE_S = 30 * 60  # a person holds the examples a queue request gave them this long
MAX_BATCHES = 20   # the label queue looks this many suggest batches back for open examples


# -- shared helpers ---------------------------------------------------------------------------------
def filter_items(items: list[dict], filters: dict | None) -> list[dict]:
    """Keep items matching every given filter: source, split, language, label (in labels/predicted/
    suggested), q (case-insensitive text search)."""
    f = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    out = []
    for it in items:
        if any(k in f and str(it.get(k)) != str(f[k]) for k in ("source", "split", "language")):
            continue
        if "label" in f and f["label"] not in set(it.get("labels") or []) | set(it.get("predicted") or []) \
                | set(it.get("suggested_labels") or []):
            continue
        if "q" in f and str(f["q"]).lower() not in it["text"].lower():
            continue
        out.append(it)
    return out


def _languages(project: Project, ids) -> dict[int, str]:
    return {i: r["language"] for i, r in project.store.example_info(ids).items()}


# -- who may take an example --------------------------------------------------------------------------
def open_for(user: str, example: int, leases: dict, judged: dict, overlap: int, now: float,
             lease_s: float = LEASE_S) -> bool:
    """Whether ``example`` may go to ``user``: not labeled by them, fewer than ``overlap`` labels, and
    a place left once the live leases of people who have not labeled it yet are counted (``user``'s
    own lease keeps its place)."""
    done = judged.get(example, set())
    if user in done or len(done) >= overlap:
        return False
    held = {a for a, t in leases.get(example, {}).items() if now - t < lease_s and a not in done}
    return user in held or len(done) + len(held) < overlap


def places_taken(example: int, leases: dict, judged: dict, now: float, lease_s: float = LEASE_S) -> int:
    """How many people have labeled ``example`` or hold a live lease on it."""
    done = judged.get(example, set())
    return len(done | {a for a, t in leases.get(example, {}).items() if now - t < lease_s})


def release(project: Project, user: str, example: int) -> bool:
    """``user`` gives ``example`` back (skipped it): its place is open to others at once."""
    return project.store.release_example(int(example), user)


def save_label(project: Project, store_id: int, labels: list[str], user: str, origin: str, overlap: int = 1) -> int:
    """Save ``user``'s labels for an example; one the label queue gave (origin ``suggest:<run>``) is
    refused (``OverlapReached``) once ``overlap`` other people have labeled it (a lease that ran out
    while others took its place). Returns the annotation id."""
    cap = overlap if origin.startswith("suggest:") else None
    return annotate(project, store_id, labels, user, origin=origin, cap=cap)


def _batches(project: Project) -> list[tuple[str, list[dict]]]:
    """The label queue's latest suggest batches, oldest first: ``[(run name, rows)]``."""
    out = []
    for run in reversed(project.runs("suggest")):
        path = run / "batch.jsonl"
        if path.exists():
            rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            out.append((run.name, rows))
            if len(out) >= MAX_BATCHES:
                break
    return out[::-1]


def _queued(project: Project) -> tuple[dict[int, dict], dict[int, str]]:
    """Every example of the recent batches (first batch wins): ``({store id: batch row}, {store id: run})``."""
    rows, runs = {}, {}
    for run, batch in _batches(project):
        for x in batch:
            if x["store_id"] not in rows:
                rows[x["store_id"]], runs[x["store_id"]] = x, run
    return rows, runs


def _new_batch(project: Project, batch_size: int, exclude) -> str | None:
    """Suggest a new batch (leaving out ``exclude``, the examples still open in earlier batches);
    None when the pool has nothing left."""
    from .suggest import suggest, unlabeled_pool

    if len(unlabeled_pool(project, exclude=exclude)) == 0:
        return None
    rows = suggest(project, budget=batch_size, exclude=exclude)
    run = project.new_run("suggest", {"budget": batch_size, "by": "label queue"})
    atomic_write_text(run / "batch.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows))
    return run.name


def label_queue(project: Project, user: str = "web", overlap: int = 1, limit: int = 20, filters: dict | None = None,
                batch_size: int = 50, predict=None, lease_s: float = LEASE_S, lease: bool = True,
                batch_lock=None) -> dict:
    """The next examples for ``user`` to label (see the module docstring), leased to them unless
    ``lease`` is False. ``batch_lock``: a lock (``threading.Lock``) held while a new batch is suggested,
    so that requests at once do not each suggest one.

    predict: optional ``(texts, sources) -> predictions`` (``{"labels", "scores"}`` each) of the current
    model; default ``workflows.predict.predict_texts`` when a model exists, else the suggest head's.
    Returns ``{"batch", "user", "overlap", "items": [{"example_id" (store id), "source_example_id",
    "text", "source", "split", "language", "labels" (the model's guess), "scores", "reason", "origin"}],
    "done" (examples of the queue ``user`` labeled), "remaining" (examples still open to them),
    "total" (done + remaining), "message"}``.
    """
    if overlap < 1:
        raise TagwiseError(f"overlap must be at least 1 (got {overlap}).")
    rows, runs = _queued(project)
    now = time.time()
    leases, judged = project.store.queue_state(list(rows))
    if not any(open_for(user, e, leases, judged, overlap, now, lease_s) for e in rows):
        # only suggesting a new batch is done one request at a time (``batch_lock``): the leases are
        # atomic in the store, and the model's guesses below need no lock
        with batch_lock if batch_lock is not None else contextlib.nullcontext():
            rows, runs = _queued(project)  # another request may have suggested one meanwhile
            leases, judged = project.store.queue_state(list(rows))
            if not any(open_for(user, e, leases, judged, overlap, now, lease_s) for e in rows):
                still_open = [e for e in rows if len(judged.get(e, ())) < overlap]
                if _new_batch(project, batch_size, exclude=still_open) is None and not rows:
                    return {"batch": None, "user": user, "overlap": overlap, "items": [], "done": 0,
                            "remaining": 0, "total": 0,
                            "message": "Every example is labeled (or a duplicate of a labeled one). Add unlabeled "
                                       "texts with `tagwise add-source` (split: unlabeled) to get suggestions."}
                rows, runs = _queued(project)
                leases, judged = project.store.queue_state(list(rows))
    lang = _languages(project, list(rows))
    items = [{"example_id": e, "source_example_id": x["example_id"], "text": x["text"], "source": x["source"],
              "split": x["split"], "language": lang.get(e, ""), "labels": list(x["predicted"]),
              "scores": dict(x["scores"]), "reason": x["reason"], "origin": f"suggest:{runs[e]}"}
             for e, x in rows.items()]
    wanted = [it["example_id"] for it in filter_items(items, filters)]
    limit = max(0, int(limit))

    def choose(leases_now: dict, judged_now: dict) -> list[int]:
        # what the person holds first; then the examples others have started (fewest left half-done),
        # then the batch's order
        open_ids = [e for e in wanted if open_for(user, e, leases_now, judged_now, overlap, now, lease_s)]
        held = [e for e in open_ids if user in leases_now.get(e, {})
                and now - leases_now[e][user] < lease_s]
        mine = set(held)
        fresh = sorted((e for e in open_ids if e not in mine),
                       key=lambda e: -places_taken(e, leases_now, judged_now, now, lease_s))
        return (held + fresh)[:limit]

    if lease and limit:
        picks = project.store.lease_examples(user, wanted, choose, now)
        leases, judged = project.store.queue_state(list(rows))
    else:
        picks = choose(leases, judged)
    by_id = {it["example_id"]: it for it in items}
    chosen = [by_id[e] for e in picks]
    fresh_guess = [it for it in chosen if not judged.get(it["example_id"])]  # nobody labeled it yet
    if fresh_guess:
        model_preds = None
        if predict is not None:
            model_preds = predict([it["text"] for it in fresh_guess], [it["source"] for it in fresh_guess])
        elif (project.models_dir / "CURRENT").exists():
            from .predict import predict_texts
            model_preds = predict_texts(project, [it["text"] for it in fresh_guess],
                                        source=[it["source"] for it in fresh_guess])["predictions"]
        if model_preds is not None:
            for it, p in zip(fresh_guess, model_preds):
                it["labels"], it["scores"] = list(p["labels"]), dict(p["scores"])
    done = sum(user in judged.get(e, ()) for e in rows)
    remaining = sum(open_for(user, e, leases, judged, overlap, now, lease_s) for e in rows)
    latest = max(runs.values()) if runs else None
    return {"batch": latest, "user": user, "overlap": overlap, "items": chosen, "done": done,
            "remaining": remaining, "total": done + remaining,
            "message": None if chosen else ("Nothing to label with these filters." if remaining else
                                            "Nothing left for you right now: the open examples are with "
                                            "other people. Reload later.")}


def progress(project: Project, overlap: int = 1, people: list[str] = (), lease_s: float = LEASE_S) -> dict:
    """Per-person progress over the label queue's batches: ``{"examples", "complete" (labeled by
    ``overlap`` people), "people": {name: {"done", "remaining"}}}`` for everyone who labeled a queued
    example or holds one, plus ``people``."""
    rows, _ = _queued(project)
    leases, judged = project.store.queue_state(list(rows))
    now = time.time()
    names = set(people)
    for e in rows:
        names |= judged.get(e, set()) | set(leases.get(e, {}))
    out = {n: {"done": sum(n in judged.get(e, ()) for e in rows),
               "remaining": sum(open_for(n, e, leases, judged, overlap, now, lease_s) for e in rows)}
           for n in sorted(names)}
    return {"examples": len(rows), "complete": sum(len(judged.get(e, ())) >= overlap for e in rows),
            "overlap": overlap, "people": out}


# -- review queue -------------------------------------------------------------------------------------
def review_queue(project: Project, limit: int = 20, filters: dict | None = None, offset: int = 0) -> dict:
    """Rows of the latest audit run not decided yet, worst first: ``{"audit", "items": [{"example_id"
    (store id), "text", "source", "split", "language", "labels" (given), "suggested_labels", "findings",
    "label_quality", "origin"}], "done", "total", "matching" (undecided rows that pass the filters),
    "offset"}`` (empty items and ``audit`` None without an audit). ``offset`` pages through the rows."""
    runs = [r for r in project.runs("audit") if (r / "issues.jsonl").exists()]
    if not runs:
        return {"audit": None, "items": [], "done": 0, "total": 0, "matching": 0, "offset": 0}
    run = runs[-1]
    origin = f"audit:{run.name}"
    decided = {a["example"] for a in project.store.annotations(origin=origin)}
    rows = [json.loads(ln) for ln in (run / "issues.jsonl").read_text(encoding="utf-8").splitlines() if ln.strip()]
    todo = sorted((r for r in rows if r["store_id"] not in decided), key=lambda r: r["label_quality"])
    lang = _languages(project, [r["store_id"] for r in todo])
    items = [{"example_id": r["store_id"], "source_example_id": r["example_id"], "text": r["text"],
              "source": r["source"], "split": r["split"], "language": lang.get(r["store_id"], ""),
              "labels": list(r["given_labels"]), "suggested_labels": list(r["suggested_labels"]),
              "findings": r["findings"], "label_quality": r["label_quality"], "origin": origin} for r in todo]
    matching = filter_items(items, filters)
    offset = max(0, int(offset))
    page = matching[offset:offset + max(0, int(limit))]
    return {"audit": run.name, "items": page, "done": len(rows) - len(todo), "total": len(rows),
            "matching": len(matching), "offset": offset}
