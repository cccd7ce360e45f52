"""Which labels an example trains with, given the annotations people gave it: decided here, only here.

``resolve_training_labels`` is the single rule (``Project.examples`` applies it to every example that
has an active annotation); replace it to change the rule for the whole toolkit, e.g. with a
consensus over annotators.
"""
from __future__ import annotations


def resolve_training_labels(stored: list[str] | None, annotations: list[dict]) -> list[str] | None:
    """An example's training labels from its stored labels and its active annotations.

    stored: the labels the source (or an applied correction) gave, or None when unlabeled.
    annotations: the example's active (not undone) annotations, oldest first, each a dict with at
    least ``labels`` (list of names), ``annotator`` and ``created_at``.
    Rule for now: the latest annotation wins; with none, the stored labels stand.
    """
    if not annotations:
        return stored
    return list(annotations[-1]["labels"])


def _predates(ann: dict | None, change: dict) -> bool:
    """Whether annotation ``ann`` (None: a source's stored labels) was made before ``change``."""
    if ann is None:
        return True
    last = change["result"].get("last_annotation")
    return ann["id"] <= last if last is not None else ann["created_at"] < change["created_at"]


def _unknown_after(changes: list[dict], ann: dict | None, had_split_label) -> set[str]:
    """The labels judgement ``ann`` (None: a source's stored labels) cannot speak for, as named now;
    had_split_label(change) -> whether it had the split label (or one below it) positive."""
    unknown: set[str] = set()
    for c in changes:
        kind, a = c["kind"], c["args"]
        if kind == "add":
            if ann is not None and _predates(ann, c):
                unknown.add(a["name"])
        elif kind == "split":
            if _predates(ann, c) and (a["label"] in unknown or had_split_label(c)):
                unknown.update(a["into"])
            if not a.get("keep_parent"):
                unknown.discard(a["label"])
        elif kind == "rename":
            if a["old"] in unknown:
                unknown.discard(a["old"])
                unknown.add(a["new"])
        elif kind == "merge":  # known where any merged label is known
            into, merged = a["into"], list(a["labels"])
            into_new = c["result"].get("into_new", into not in merged)
            names = set(merged) | (set() if into_new else {into})
            all_unknown = names <= unknown
            unknown -= names
            if all_unknown:
                unknown.add(into)
        elif kind == "retire":
            unknown.discard(a["name"])
    return unknown


def labels_unknown_after_changes(changes: list[dict], decided_by: dict[int, dict]) -> dict[int, frozenset[str]]:
    """The labels each example's judgement cannot speak for, because they came after it (issue 32).

    changes: the project's active taxonomy changes, oldest first (``Store.label_changes`` rows:
    ``{"id", "kind", "args", "created_at", "result"}``).
    decided_by: {store id: the person's annotation that decides the example's training labels} (a dict
    with ``id`` and ``created_at``); examples not in it are decided by their source's stored labels,
    which predate every change.
    Returns {store id: label names (as named now)}, only for examples with some:

    - ``add NAME``: a person who labeled the example before NAME existed said nothing about NAME;
    - ``split A --into A1 ...``: on an example whose training labels (before the split) had A or a label
      below A positive (the split's ``result["queued"]``), the children are unknown (which child holds
      is the open question); where A was a negative they stay known negatives, as A's judgement
      covered them;
    - later renames, merges (known where any merged label is known) and retirements carry the names.
    """
    if not any(c["kind"] in ("add", "split") for c in changes):
        return {}
    queued = {c["id"]: set(c["result"].get("queued", [])) for c in changes if c["kind"] == "split"}
    candidates = set(decided_by)
    for ids in queued.values():
        candidates |= ids
    out: dict[int, frozenset[str]] = {}
    for e in candidates:
        unknown = _unknown_after(changes, decided_by.get(e), lambda c: e in queued[c["id"]])
        if unknown:
            out[e] = frozenset(unknown)
    return out


def judgement_unknown_labels(changes: list[dict], judgements: list[dict]) -> list[frozenset[str]]:
    """Per judgement (an annotation dict with ``id``, ``example`` and ``created_at``), the labels it
    cannot speak for (``labels_unknown_after_changes``' rules, per judgement: a split's children are
    unknown for a judgement made before it that had the split label, ``result["annotations_with_label"]``)."""
    if not any(c["kind"] in ("add", "split") for c in changes):
        return [frozenset()] * len(judgements)
    had = {c["id"]: set(c["result"].get("annotations_with_label", ())) for c in changes if c["kind"] == "split"}
    queued = {c["id"]: set(c["result"].get("queued", [])) for c in changes if c["kind"] == "split"}

    def had_label(j):
        # records made before ``annotations_with_label`` existed: the example's training labels had it
        return lambda c: (j["id"] in had[c["id"]]) if "annotations_with_label" in c["result"] \
            else j["example"] in queued[c["id"]]

    return [frozenset(_unknown_after(changes, j, had_label(j))) for j in judgements]
