"""``ingest``: any source spec -> one row per example, whatever its label layout."""
from __future__ import annotations

from .annotations import read_annotated
from .ingest import SourceRows, ingest_rows
from .spec import SourceSpec


def needs_items(spec: SourceSpec) -> bool:
    """Whether ``spec``'s rows are not examples: votes, long (item, label) rows or wide annotator columns."""
    return spec.labels.format in ("votes", "long") or spec.labels.annotator_columns is not None


def ingest(spec: SourceSpec, on_duplicate_id: str = "warn") -> SourceRows:
    """Read every file of ``spec``; validate every row; return rows with taxonomy label names.

    Raises TagwiseError naming file, row and fix on the first bad row; nothing is written here.
    Label names are NFC-normalised. Example ids that repeat within the source are counted in
    ``duplicate_ids``; ``on_duplicate_id`` is "warn" (keep every row, the caller warns), "error",
    "keep-first" or "keep-last". A per-annotator layout that needs whole items (labels/format votes or
    long, labels/annotator_columns) is read by ``annotations.read_annotated``: one row per item, its
    labels the strict majority of its judgements (votes with labels/threshold: the share >= threshold).
    A spec with columns/annotator is read one row per judgement (``Project.add_source`` groups them).
    """
    if needs_items(spec):
        return read_annotated(spec).rows
    return ingest_rows(spec, on_duplicate_id)
