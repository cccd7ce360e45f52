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
Where the next batch comes from: suggesting one fits the few-shot head (seconds of CPU). Done inside a
queue request, as it once was, that request waited ~40 s (p99) and took the CPU from every predict
request meanwhile (bench/bench_serve.py --team: predict p99 2.9x alone). So the web app gives
``label_queue`` a ``BatchRefill``: the next batch is suggested ahead of time, when the places left
unassigned drop under a low-water mark, one at a time, in a child process at a lower CPU priority
(``os.nice``: a thread would share the server's GIL and its scheduling priority), which writes the
batch file atomically. A request only reads batches that exist; with none open for the person it
answers at once with ``preparing`` (the page asks again by itself). Without a ``BatchRefill`` (the
library, a single call) a new batch is suggested inline when nothing is left for the asking person.
The overlap and assignment guarantees do not depend on where a batch comes from: the store checks them
in its write transactions (``lease_examples``, ``annotate(cap=...)``).
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

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
    since = 0
    if cap is not None:  # an example a taxonomy split queued again: only judgements since the split count
        run = origin[len("suggest:"):]
        batch = project.path / "runs" / run / "batch.jsonl"
        if run.replace("-", "").isalnum() and batch.is_file():  # a run name, never a path
            for ln in batch.read_text(encoding="utf-8").splitlines():
                if ln.strip() and (x := json.loads(ln)).get("store_id") == int(store_id):
                    since = int(x.get("after_annotation") or 0)
                    break
    return annotate(project, store_id, labels, user, origin=origin, cap=cap, since=since)


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
    """Every example of the recent batches (first batch wins): ``({store id: batch row}, {store id: run})``.

    A taxonomy split's batch (reason ``split:<label>``, ``taxonomy_changes``) comes first and wins: its
    examples need the new labels before anything else can be trained on them."""
    rows, runs = {}, {}
    for run, batch in _batches(project):
        for x in batch:
            e = x["store_id"]
            if e not in rows or (str(x.get("reason", "")).startswith("split:")
                                 and not str(rows[e].get("reason", "")).startswith("split:")):
                rows[e], runs[e] = x, run
    first = [e for e, x in rows.items() if str(x.get("reason", "")).startswith("split:")]
    if first:
        seen = set(first)
        order = first + [e for e in rows if e not in seen]
        rows, runs = {e: rows[e] for e in order}, {e: runs[e] for e in order}
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


def _refill_child(project_path: str, batch_size: int, exclude: list[int], nice: int) -> None:
    """The child process of ``BatchRefill``: lower its CPU priority, suggest one batch, exit 0 (a batch
    written) or ``EXIT_POOL_EMPTY``."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no os.nice on Windows
        os.nice(nice)
    try:
        project = Project.open(project_path)
        try:
            made = _new_batch(project, batch_size, exclude=exclude)
        finally:
            project.close()
    except TagwiseError as exc:  # e.g. a taxonomy without labels: one line in the server's log, no traceback
        print(f"tagwise serve: the label queue's next batch could not be suggested: {exc}", file=sys.stderr)
        sys.exit(BatchRefill.EXIT_FAILED)
    sys.exit(0 if made else BatchRefill.EXIT_POOL_EMPTY)


class BatchRefill:
    """Suggests the label queue's next batch off the request path (see the module docstring): at most
    one child process at a time, ``nice`` steps below the server, so predict requests keep the CPU.

    ``start(exclude)`` starts one unless one is running (or the pool was found empty / a refill failed
    less than ``retry_s`` ago); ``running``; ``wait(timeout)``; ``stop()``. The child writes
    ``runs/<id>-suggest/batch.jsonl`` atomically, so a reader sees a whole batch or none."""

    EXIT_POOL_EMPTY = 3
    EXIT_FAILED = 4

    def __init__(self, project_path, batch_size: int = 50, nice: int = 10, retry_s: float = 30.0):
        self.project_path = Path(project_path)
        self.batch_size, self.nice, self.retry_s = int(batch_size), int(nice), float(retry_s)
        self._lock = threading.Lock()
        self._proc = None
        self._gave_up_at = None  # when the last refill found the pool empty or failed
        self.batches = 0         # refills that wrote a batch
        self.pool_empty = False  # the last refill found nothing left to suggest
        self.failures = 0

    def _reap(self) -> bool:
        """Whether a refill is running; collects a finished one (caller holds the lock)."""
        if self._proc is None:
            return False
        if self._proc.is_alive():
            return True
        self._proc.join()
        code, self._proc = self._proc.exitcode, None
        self.pool_empty = code == self.EXIT_POOL_EMPTY
        if code == 0:
            self.batches += 1
            self._gave_up_at = None
        else:  # the pool is empty, or the child failed (its traceback went to the server's stderr)
            self.failures += code != self.EXIT_POOL_EMPTY
            self._gave_up_at = time.monotonic()
        return False

    @property
    def running(self) -> bool:
        with self._lock:
            return self._reap()

    def start(self, exclude=()) -> bool:
        """Start a refill leaving out ``exclude`` (store ids still open in earlier batches); False when one
        is running or it is too soon after an empty pool or a failure."""
        with self._lock:
            if self._reap():
                return False
            if self._gave_up_at is not None and time.monotonic() - self._gave_up_at < self.retry_s:
                return False
            # spawn, not fork: the server has threads (uvicorn, the predictor) that a fork would copy
            # mid-flight; the child imports what it needs
            ctx = multiprocessing.get_context("spawn")
            self._proc = ctx.Process(target=_refill_child, daemon=True, name="tagwise-label-queue-refill",
                                     args=(str(self.project_path), self.batch_size, [int(e) for e in exclude],
                                           self.nice))
            self._proc.start()
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running refill; True once none runs."""
        proc = self._proc
        if proc is not None:
            proc.join(timeout)
        return not self.running

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                self._proc.terminate()  # the batch file is written atomically: nothing half-written stays
                self._proc.join(10)
            self._proc = None


def low_water(overlap: int, active: int, batch_size: int) -> int:
    """Open places under which the next batch is prepared: two examples ahead for each person at work
    (``overlap`` places each), and at least half a batch, so that a refill (seconds, at low priority)
    lands before the people working run out."""
    return max(2 * overlap * max(active, 1), (batch_size * overlap) // 2)


def refill_if_low(project: Project, refill: BatchRefill, overlap: int = 1, lease_s: float = LEASE_S) -> bool:
    """Start ``refill`` if the label queue's open places are under the low-water mark (``tagwise serve``
    calls it at start, so the first person finds a batch ready). Returns whether one started."""
    rows, _ = _queued(project)
    leases, judged = project.store.queue_state(list(rows), _since(rows))
    return _refill_if_low(refill, rows, leases, judged, overlap, time.time(), lease_s)


def _since(rows: dict[int, dict]) -> dict[int, int] | None:
    """{store id: annotation id} for the rows a taxonomy split queued again: judgements made up to that
    id (before the split) do not count for the queue."""
    out = {e: int(x["after_annotation"]) for e, x in rows.items() if x.get("after_annotation")}
    return out or None


def _refill_if_low(refill, rows, leases, judged, overlap, now, lease_s) -> bool:
    # the places nobody has taken yet (labeled or leased); under the low-water mark the next batch is
    # prepared now, while the people at work still have examples
    free = sum(max(0, overlap - places_taken(e, leases, judged, now, lease_s)) for e in rows)
    active = len({a for e in rows for a, t in leases.get(e, {}).items() if now - t < lease_s})
    if free >= low_water(overlap, active, refill.batch_size):
        return False
    return refill.start(exclude=[e for e in rows if len(judged.get(e, ())) < overlap])


def label_queue(project: Project, user: str = "web", overlap: int = 1, limit: int = 20, filters: dict | None = None,
                batch_size: int = 50, predict=None, lease_s: float = LEASE_S, lease: bool = True,
                batch_lock=None, refill: BatchRefill | None = None) -> dict:
    """The next examples for ``user`` to label (see the module docstring), leased to them unless
    ``lease`` is False. ``refill``: prepares the next batch in the background (see the module docstring);
    without it a new batch is suggested inline when nothing is left for ``user``, holding ``batch_lock``
    (a ``threading.Lock``) so that requests at once do not each suggest one.

    predict: optional ``(texts, sources) -> predictions`` (``{"labels", "scores"}`` each) of the current
    model; default ``workflows.predict.predict_texts`` when a model exists, else the suggest head's.
    Returns ``{"batch", "user", "overlap", "items": [{"example_id" (store id), "source_example_id",
    "text", "source", "split", "language", "labels" (the model's guess), "scores", "reason", "origin"}],
    "done" (examples of the queue ``user`` labeled), "remaining" (examples still open to them),
    "total" (done + remaining), "preparing" (a refill is under way: ask again in a few seconds), "message"}``.
    """
    if overlap < 1:
        raise TagwiseError(f"overlap must be at least 1 (got {overlap}).")
    rows, runs = _queued(project)
    now = time.time()
    leases, judged = project.store.queue_state(list(rows), _since(rows))
    if refill is None and not any(open_for(user, e, leases, judged, overlap, now, lease_s) for e in rows):
        # only suggesting a new batch is done one request at a time (``batch_lock``): the leases are
        # atomic in the store, and the model's guesses below need no lock
        with batch_lock if batch_lock is not None else contextlib.nullcontext():
            rows, runs = _queued(project)  # another request may have suggested one meanwhile
            leases, judged = project.store.queue_state(list(rows), _since(rows))
            if not any(open_for(user, e, leases, judged, overlap, now, lease_s) for e in rows):
                still_open = [e for e in rows if len(judged.get(e, ())) < overlap]
                if _new_batch(project, batch_size, exclude=still_open) is None and not rows:
                    return {"batch": None, "user": user, "overlap": overlap, "items": [], "done": 0,
                            "remaining": 0, "total": 0, "preparing": False,
                            "message": "Every example is labeled (or a duplicate of a labeled one). Add unlabeled "
                                       "texts with `tagwise add-source` (split: unlabeled) to get suggestions."}
                rows, runs = _queued(project)
                leases, judged = project.store.queue_state(list(rows), _since(rows))
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
        picks = project.store.lease_examples(user, wanted, choose, now, _since(rows))
        leases, judged = project.store.queue_state(list(rows), _since(rows))
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
            current = set(project.labels.names)
            for it, p in zip(fresh_guess, model_preds):
                # labels the model was not trained on (a split's new labels) keep the batch's zero-shot guess
                extra = {k: v for k, v in it["scores"].items() if k not in p["scores"] and k in current}
                it["labels"] = list(p["labels"]) + [n for n in it["labels"] if n in extra and n not in p["labels"]]
                it["scores"] = {**dict(p["scores"]), **extra}
    done = sum(user in judged.get(e, ()) for e in rows)
    remaining = sum(open_for(user, e, leases, judged, overlap, now, lease_s) for e in rows)
    latest = max(runs.values()) if runs else None
    preparing = False
    if refill is not None:
        _refill_if_low(refill, rows, leases, judged, overlap, now, lease_s)
        preparing = refill.running
    if chosen:
        message = None
    elif remaining:
        message = "Nothing to label with these filters."
    elif preparing:
        message = "Preparing the next batch of examples: this page asks again in a few seconds."
    elif refill is not None and refill.pool_empty and not rows:
        message = ("Every example is labeled (or a duplicate of a labeled one). Add unlabeled texts with "
                   "`tagwise add-source` (split: unlabeled) to get suggestions.")
    else:
        message = "Nothing left for you right now: the open examples are with other people. Reload later."
    return {"batch": latest, "user": user, "overlap": overlap, "items": chosen, "done": done,
            "remaining": remaining, "total": done + remaining, "preparing": preparing, "message": message}


def progress(project: Project, overlap: int = 1, people: list[str] = (), lease_s: float = LEASE_S) -> dict:
    """Per-person progress over the label queue's batches: ``{"examples", "complete" (labeled by
    ``overlap`` people), "people": {name: {"done", "remaining"}}}`` for everyone who labeled a queued
    example or holds one, plus ``people``."""
    rows, _ = _queued(project)
    leases, judged = project.store.queue_state(list(rows), _since(rows))
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
