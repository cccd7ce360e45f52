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
