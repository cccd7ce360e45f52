"""Audit a project's stored labels and write the ranked issues file (CSV / JSONL / Parquet).

The CSV is meant to be opened in a spreadsheet: a text cell that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is written with a leading ``'``
(OWASP's CSV-injection rule), and ``read_issues`` removes it again, so the round trip is exact.
"""
from __future__ import annotations

import csv
import io
import json
import resource
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._io import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_write_text
from .._io import neutralise_formula as _neutralise
from .._io import restore_formula as _restore
from ..audit.core import PARTITION_ROWS, AuditResult, audit_arrays, check_audit_inputs
from ..project import Project
from ..types import Examples, LabelSpace, TagwiseError

ISSUE_COLUMNS = ["rank", "store_id", "example_id", "source", "split", "text", "given_labels",
                 "suggested_labels", "label_quality", "findings"]
FORMATS = (".csv", ".jsonl", ".parquet")


def check_output_path(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise TagwiseError(f"{path}: unknown issues file format {path.suffix!r}. Fix: name it *.csv, *.jsonl "
                           f"or *.parquet.")
    return path


def labeled_examples(project: Project, split: str | None) -> tuple[Examples, LabelSpace, np.ndarray, np.ndarray]:
    """(examples, space, labels (n, K) uint8, known mask (n, K) bool) of one split's labeled rows,
    with a TagwiseError for labels outside the taxonomy."""
    space = project.labels
    split_arg = None if split in (None, "all") else split
    ex = project.examples(split=split_arg, labeled=True)
    known = set(space.names)
    for i, labels in enumerate(ex.labels):
        bad = [n for n in labels if n not in known]
        if bad:
            raise TagwiseError(f"{project.path}: example {ex.example_ids[i]} of source {ex.sources[i]!r} has labels "
                               f"{bad} outside the taxonomy {list(space.names)[:8]}{'…' if len(space) > 8 else ''}. "
                               f"Fix: map them in the source spec (labels/map) or add them to the taxonomy.")
    if len(ex) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r}. Fix: pick another --split "
                           f"(have: {project.splits()}).")
    return ex, space, ex.label_matrix(space), ex.known_mask(space)


def audit_project(project: Project, split: str | None = "train", folds: int = 5, k: int | None = None,
                  encoder: str | None = None, progress: bool = True, engine=None,
                  **options) -> tuple[AuditResult, Examples, LabelSpace]:
    """Audit the labeled examples of ``split`` ("all" or None = every split) of a project.

    ``engine``: a ``tagwise.engine`` engine; a non-local one embeds the examples and runs the
    cross-fitting folds and the kNN search on its workers."""
    ex, space, Y, M = labeled_examples(project, split)
    where = f"{project.path} split {split!r}"
    check_audit_inputs(Y, M, folds, where)
    if k is not None and k < 1:
        raise TagwiseError(f"--k must be at least 1 (got {k}).")
    if engine is None or engine.name == "local":
        with _audit_features(project, ex, encoder, progress, options.get("partition_rows", PARTITION_ROWS)) as X:
            result = audit_arrays(X, Y, M, texts=ex.texts, folds=folds, k=k, progress=progress, **options)
    else:
        from .embed import embed_texts_on

        X = embed_texts_on(engine, list(ex.texts), encoder or project.default_encoder, project.cache_dir,
                           progress=progress)[0]
        result = audit_arrays(X, Y, M, texts=ex.texts, folds=folds, k=k, progress=progress, map_fn=engine.map,
                              **options)
    return result, ex, space


@contextmanager
def _audit_features(project: Project, ex: Examples, encoder: str | None, progress: bool,
                    partition_rows: int | None):
    """The (n, dim) float32 embeddings of ``ex``: in memory up to ``partition_rows`` rows (the size
    the whole audit handles in memory), above it a read-only memory map of a temporary file, so a
    partitioned audit of more rows than memory holds keeps only the partition it works on resident."""
    if not partition_rows or len(ex) <= partition_rows:
        yield project.features(ex, encoder=encoder, progress=progress)
        return
    dim = project.encoder(encoder).dim
    with tempfile.TemporaryDirectory(prefix="tagwise-audit-x-") as tmp:
        path = Path(tmp) / "X.npy"
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(ex), dim))
        project.features(ex, encoder=encoder, progress=progress, out=X)
        X.flush()
        del X
        yield np.load(path, mmap_mode="r")


def issue_rows(result: AuditResult, ex: Examples, space: LabelSpace, all_rows: bool = False) -> list[dict]:
    """One dict per flagged example (every example with ``all_rows``), ranked by label quality.

    ``findings`` is a list of ``{"label", "type", "score"}``: type ``missing`` / ``wrong`` (score =
    probability the given value is wrong), ``conflicting_duplicate`` (score = cosine similarity,
    with ``partner`` store id / example id / source and ``exact``), or ``outlier`` (score =
    distance percentile).
    """
    names = space.names
    n = len(ex)
    findings: list[list[dict]] = [[] for _ in range(n)]
    rows, cols = np.nonzero(result.issues.flagged)
    for i, c in zip(rows.tolist(), cols.tolist()):
        findings[i].append({"label": names[c], "type": "missing" if result.issues.kind[i, c] > 0 else "wrong",
                            "score": round(float(result.issues.cell_scores[i, c]), 4)})
    Y = ex.label_matrix(space).astype(bool)
    d = result.duplicates
    for i, j, s, exact in zip(d["i"].tolist(), d["j"].tolist(), d["similarity"].tolist(), d["exact"].tolist()):
        differ = [names[c] for c in np.flatnonzero(Y[i] != Y[j])]
        for a, b in ((i, j), (j, i)):
            findings[a].append({"label": differ, "type": "conflicting_duplicate", "score": round(float(s), 4),
                                "partner": int(ex.ids[b]), "partner_example_id": str(ex.example_ids[b]),
                                "partner_source": str(ex.sources[b]), "exact": bool(exact)})
    for i in np.flatnonzero(result.is_outlier).tolist():
        findings[i].append({"label": None, "type": "outlier", "score": round(float(result.outlier_score[i]), 4)})
    flagged = result.is_flagged
    order = result.ranking()
    suggested = result.issues.suggested
    out = []
    for i in order.tolist():
        if not (all_rows or flagged[i]):
            continue
        out.append({"rank": len(out) + 1, "store_id": int(ex.ids[i]), "example_id": str(ex.example_ids[i]),
                    "source": str(ex.sources[i]), "split": str(ex.splits[i]), "text": ex.texts[i],
                    "given_labels": list(ex.labels[i] or []),
                    "suggested_labels": [names[c] for c in np.flatnonzero(suggested[i])],
                    "label_quality": round(float(result.label_quality[i]), 4), "findings": findings[i]})
    return out


def write_issues(rows: list[dict], path) -> Path:
    """Write issue rows to ``path`` by extension (atomically). Lists are JSON strings in CSV."""
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    if ext == ".jsonl":
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif ext == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=ISSUE_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else _neutralise(v)
                        for k, v in r.items()})
        atomic_write_text(path, buf.getvalue())
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        cols = {k: [r[k] for r in rows] for k in ISSUE_COLUMNS}
        cols["findings"] = [json.dumps(f, ensure_ascii=False) for f in cols["findings"]]
        table = pa.table({k: pa.array(v, type=pa.list_(pa.string()) if k.endswith("_labels") else None)
                          for k, v in cols.items()}) if rows else pa.table({k: pa.array([], pa.string()) for k in ISSUE_COLUMNS})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return path


def read_issues(path) -> list[dict]:
    """Read an issues file written by ``write_issues`` (possibly edited: rows deleted, suggested
    labels changed). Returns dicts with at least store_id/example_id/source/suggested_labels."""
    path = Path(path)
    if not path.exists():
        raise TagwiseError(f"{path}: no such issues file. Fix: run `tagwise audit PROJECT --out {path}` first.")
    ext = check_output_path(path).suffix.lower()
    if ext == ".jsonl":
        rows = []
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise TagwiseError(f"{path}: not UTF-8 (byte {exc.start}). Fix: save the file as UTF-8.") from None
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise TagwiseError(f"{path}: line {n}: not valid JSON ({exc.msg}). Fix: repair or delete the line.") from None
        return rows
    if ext == ".csv":
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                rows = [{k: _restore(v) for k, v in r.items()} for r in csv.DictReader(fh)]
        except UnicodeDecodeError as exc:
            raise TagwiseError(f"{path}: not UTF-8 (byte {exc.start}). Fix: save the file as UTF-8.") from None
        except csv.Error as exc:
            raise TagwiseError(f"{path}: malformed CSV ({exc}). Fix: repair the file or re-run `tagwise audit`.") from None
        for n, r in enumerate(rows, 2):
            for key in ("given_labels", "suggested_labels"):
                if key in r and r[key] not in (None, ""):
                    try:
                        r[key] = json.loads(r[key])
                    except json.JSONDecodeError:
                        raise TagwiseError(f"{path}: row {n}: field {key} must be a JSON list such as "
                                           f'["anger", "joy"]; got {r[key]!r}.') from None
        return rows
    import pyarrow.parquet as pq
    return pq.read_table(path).to_pylist()


def estimates_by_label(result: AuditResult, label_names) -> dict[str, float]:
    """{label: estimated wrong cells}, largest first; labels estimated below half an error are left out."""
    per_label = result.estimated_errors_per_label
    if per_label is None:
        return {}
    order = np.argsort(-np.asarray(per_label), kind="stable")
    return {label_names[k]: round(float(per_label[k]), 1) for k in order if per_label[k] >= 0.5}


def _flagged_mask(ex: Examples, rows: list[dict]) -> np.ndarray:
    """(n,) bool over ``ex``: the rows of the issues file."""
    written = {r["store_id"] for r in rows}
    return np.array([int(i) in written for i in ex.ids.tolist()], dtype=bool)


def save_audit_run(project: Project, result: AuditResult, rows: list[dict], params: dict,
                   estimated_by_label: dict[str, float] | None = None, flagged: np.ndarray | None = None) -> Path:
    """Keep the audit in ``runs/<id>-audit``: summary.json, issues.jsonl, score arrays (for the report).
    ``estimated_by_label``: ``estimates_by_label`` of the result, kept in the summary. ``flagged``:
    (n,) bool, the flagged rows when a row budget cut ``result.is_flagged``."""
    flagged = result.is_flagged if flagged is None else flagged
    run = project.new_run("audit", params)
    counts: dict[str, int] = {}
    by_label: dict[str, dict[str, int]] = {}
    for r in rows:
        for f in r["findings"]:
            counts[f["type"]] = counts.get(f["type"], 0) + 1
            if f["type"] in ("missing", "wrong"):
                by_label.setdefault(f["label"], {"missing": 0, "wrong": 0})[f["type"]] += 1
    summary = {"n_examples": int(len(result.label_quality)), "n_flagged": len(rows) if not params.get("all") else
               int(flagged.sum()), "findings_by_type": counts, "findings_by_label": by_label,
               "multi_label": result.multi_label, "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
               "estimated_errors": round(float(result.estimated_errors), 1), "flag_budget": int(result.flag_budget)}
    if estimated_by_label is not None:
        summary["estimated_errors_by_label"] = estimated_by_label
    atomic_write_json(run / "summary.json", summary)
    write_issues([r for r in rows if r["findings"]][:1000], run / "issues.jsonl")
    atomic_save_npy(run / "label_quality.npy", result.label_quality)
    atomic_save_npy(run / "flagged.npy", flagged)
    return run


def audit(project: Project, out, split: str | None = "train", folds: int = 5, k: int | None = None,
          encoder: str | None = None, all_rows: bool = False, max_flags: int | None = None,
          progress: bool = True, engine=None, partition_rows: int | None = PARTITION_ROWS) -> dict:
    """Audit ``split``, write the issues file ``out`` and keep the run (for the report and the web app).

    ``max_flags``: flag exactly that many rows, least trustworthy first (default: as many as the audit
    estimates errors). ``engine``: where the heavy steps run (``tagwise.engine``; default local).
    ``partition_rows``: audit random partitions of about that many rows one at a time above it
    (``audit_arrays``; bounds the audit's memory; None = never). Returns ``{"n_examples", "multi_label", "folds", "k", "estimated_errors",
    "estimated_errors_by_label" ({label: wrong cells}, largest first), "flag_budget", "n_flagged", "findings_by_type", "rows_written", "out", "run", "seconds", "peak_rss_mb"}``.
    """
    out = check_output_path(out)
    if folds < 2:
        raise TagwiseError(f"--folds must be at least 2 (got {folds}): each example is scored by a model "
                           f"trained on the other folds.")
    t0 = time.perf_counter()
    if max_flags is not None and max_flags < 0:
        raise TagwiseError(f"--max-flags must be 0 or more (got {max_flags}).")
    result, ex, space = audit_project(project, split=split, folds=folds, k=k, encoder=encoder, progress=progress,
                                      max_flags=max_flags, engine=engine, partition_rows=partition_rows)
    rows = issue_rows(result, ex, space, all_rows=all_rows)
    # --max-flags is a row budget: conflicting duplicates and outliers are flagged besides the label
    # issues, so without this cut a budget of 200 wrote 210 rows; the least trustworthy rows stay.
    beyond_budget = 0
    if max_flags is not None and not all_rows and len(rows) > max_flags:
        beyond_budget, rows = len(rows) - max_flags, rows[:max_flags]
    write_issues(rows, out)
    params = {"split": split, "folds": folds, "k": int(result.neighbors.shape[1]), "all": all_rows, "out": str(out),
              "partitions": int(result.choices.get("partitions", 1))}
    by_label = estimates_by_label(result, list(space.names))
    run = save_audit_run(project, result, rows, params, estimated_by_label=by_label,
                         flagged=_flagged_mask(ex, rows) if beyond_budget else None)
    by_type: dict[str, int] = {}
    for r in rows:
        for f in r["findings"]:
            by_type[f["type"]] = by_type.get(f["type"], 0) + 1
    return {"n_examples": len(ex), "multi_label": bool(result.multi_label), "folds": folds, "k": params["k"],
            "estimated_errors": float(result.estimated_errors), "flag_budget": int(result.flag_budget),
            "estimated_errors_by_label": by_label,
            "n_flagged": len(rows) if beyond_budget else int(result.is_flagged.sum()),
            "beyond_budget": beyond_budget, "findings_by_type": by_type, "rows_written": len(rows),
            "out": str(out), "run": run.name, "seconds": time.perf_counter() - t0, "partitions": params["partitions"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
