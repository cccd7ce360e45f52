"""Predict with a project's model: texts (or a file of them) in, labels and scores out.

Every prediction goes through the fitted head's own ``predict`` / ``predict_proba`` (its per-label,
per-source thresholds and its hierarchy rule), with each row in its source's mode when the head has
one for that source, and in the source-agnostic mode otherwise.
"""
from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..project import Project
from ..encoders.base import max_chars
from ..sources.spec import _EXTENSIONS
from ..text import check_unicode
from ..types import TagwiseError
from .models import LoadedModel, load_project_model


def predict_with(project: Project, loaded: LoadedModel, texts: list[str], sources=None,
                 progress: bool = False, embed=None) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> ``(Z (n, K) uint8 decisions, P (n, K) float32 probabilities)`` with ``loaded``'s head.

    sources: None (source-agnostic), one source name, or (n,) names (None entries = agnostic); a name the
    head has no mode for is scored agnostically. embed: optional ``texts -> (n, d)`` vectors of the
    model's encoder (a server passes the encoder itself, so arbitrary request texts do not grow the
    project's embedding cache); default: the project's cache.
    """
    n = len(texts)
    if sources is None or isinstance(sources, str):
        sources = [sources] * n
    if len(sources) != n:
        raise TagwiseError(f"{len(sources)} sources for {n} texts; give one per text (or one for all).")
    modes = loaded.source_modes(sources) if loaded.sources else None
    X = embed(texts) if embed is not None else project.embed_texts(texts, loaded.encoder, progress=progress)[0]
    P = loaded.head.predict_proba(X, texts=texts, source=modes)
    Z = loaded.head.decide(P, source=modes)
    return Z, P.astype(np.float32)


def predict_texts(project: Project, texts: list[str], model: str | None = None, source=None,
                  progress: bool = False, risk: str | None = None, confidence: float | None = None,
                  row_violation: float | None = None) -> dict:
    """``{"model": name, "labels": label names, "predictions": [{"labels": [...], "scores": {label: p}}]}``.

    With ``risk`` (see ``predict_file``) each prediction also has ``uncertain`` and ``abstain`` and the
    result a ``promise``."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise TagwiseError(f"text {bad[0]} is {'empty' if isinstance(texts[bad[0]], str) else 'not a string'} "
                           f"({len(bad)} such). Fix: send non-empty strings.")
    for i, t in enumerate(texts):
        if not t.isascii():
            check_unicode(t, f"text {i}")
    loaded = load_project_model(project, model)
    controller = None
    if risk is None:  # labels a taxonomy change brought in get zero-shot scores until retrained
        from .taxonomy_changes import with_zero_shot_labels

        loaded = with_zero_shot_labels(project, loaded)
    if risk is not None:
        from .conformal import fit_risk_controller
        controller = fit_risk_controller(project, loaded, risk, confidence, row_violation=row_violation)
    elif confidence is not None or row_violation is not None:
        raise TagwiseError("confidence and row_violation need risk (e.g. risk fnr=0.1, confidence 0.95).")
    Z, P = predict_with(project, loaded, list(texts), source, progress=progress)
    out = {"model": loaded.name, "labels": loaded.labels,
           "predictions": prediction_rows(loaded.labels, Z, P, controller, source)}
    if controller is not None:
        out["promise"] = controller.promise_
    return out


def prediction_rows(names: list[str], Z: np.ndarray, P: np.ndarray, controller=None, sources=None) -> list[dict]:
    """``[{"labels": [...], "scores": {label: p}}]`` for (n, K) decisions Z and scores P; with a fitted
    ``ConformalRiskController`` the labels are its promised sets and each row gains ``uncertain`` and
    ``abstain`` (sources: (n,) names / one name / None, for per-source cuts)."""
    sets = controller.predict(P, sources) if controller is not None else None
    if sets is not None:
        Z = sets["labels"]
    rows = [{"labels": [names[k] for k in np.flatnonzero(z)],
             "scores": {nm: round(float(p), 6) for nm, p in zip(names, row)}} for z, row in zip(Z, P)]
    if sets is not None:
        for pred, u, a in zip(rows, sets["uncertain"], sets["abstain"]):
            pred.update(uncertain=[names[k] for k in np.flatnonzero(u)], abstain=bool(a))
    return rows


def predict_file(project: Project, input_path: str | Path, out_path: str | Path, text_column: str | int = "text",
                 id_column: str | int | None = None, fmt: str | None = None, model: str | None = None,
                 header: bool = True, source: str | None = None, source_column: str | int | None = None,
                 engine=None, chunk_rows: int = 8192, progress: bool | None = None,
                 report: dict | None = None, risk: str | None = None, confidence: float | None = None,
                 row_violation: float | None = None) -> int:
    """Predict every row of a csv/tsv/jsonl/parquet file; write ``{"id", "labels", "scores"}`` rows.

    The input is streamed in chunks of ``chunk_rows`` rows (never whole in memory) and the output is
    written in input order to a temporary file renamed over ``out_path`` at the end: JSON lines, or
    Parquet when ``out_path`` ends in ``.parquet`` (columns ``id`` (string), ``labels`` (list of
    strings), ``scores`` (a struct of one float32 field per label)).
    ``id`` is the ``id_column`` value when given (or an ``id`` column exists), else the row number.
    ``source`` scores every row in that training source's mode; ``source_column`` names a column with
    each row's source. For csv/tsv without a header pass ``header=False`` and 0-based positions.
    ``engine``: a ``tagwise.engine`` engine (default local); on Ray the chunks go to actors that each
    load the model once. Returns the number of rows written. ``report``: a dict to receive
    ``{"truncated": texts longer than the encoder reads (cut to its input length), "max_chars"}``.

    ``risk`` (``"fnr=0.1"``, ``"precision=0.9"``, ``"fdr=0.1"``; ``confidence`` for a high-probability
    promise): ``labels`` become the risk-controlled set (``workflows.conformal``), each row gains
    ``uncertain`` (labels the promise cannot settle) and ``abstain`` (send to a person), and the promise
    is written to the sidecar ``<out_path>.promise.json`` (the output rows keep their format).
    """
    from .._io import _atomic_write
    from ..engine import LocalEngine
    from ..sources.readers import MissingColumnError, iter_columns

    input_path = Path(input_path)
    if not input_path.exists():
        raise TagwiseError(f"{input_path}: input file not found.")
    fmt = fmt or _EXTENSIONS.get(input_path.suffix.lower())
    if fmt is None:
        raise TagwiseError(f"{input_path}: cannot infer the format; pass --format csv|tsv|jsonl|parquet.")
    if source is not None and source_column is not None:
        raise TagwiseError("pass --source or --source-column, not both.")
    if chunk_rows < 1:
        raise TagwiseError(f"chunk_rows must be at least 1 (got {chunk_rows}).")
    wanted = [text_column] + ([source_column] if source_column is not None else [])
    if id_column is None:  # use an 'id' column when the file has one
        try:
            next(iter_columns(input_path, fmt, wanted + ["id"], header=header, chunk_rows=1), None)
            id_key = "id"
        except TagwiseError:
            id_key = None
    else:
        id_key = id_column
    columns = wanted + ([id_key] if id_key is not None and id_key not in wanted else [])
    try:  # every column is checked before the model loads, with predict's own fix (no spec here)
        next(iter_columns(input_path, fmt, columns, header=header, chunk_rows=1), None)
    except MissingColumnError as exc:
        raise TagwiseError(_missing_column_fix(exc)) from None
    loaded = load_project_model(project, model)
    names = loaded.labels
    engine = engine or LocalEngine()
    controller = None
    if risk is not None:
        from .conformal import fit_risk_controller
        controller = fit_risk_controller(project, loaded, risk, confidence, row_violation=row_violation)
    elif confidence is not None or row_violation is not None:
        raise TagwiseError("--confidence and --row-violation need --risk (e.g. --risk fnr=0.1 --confidence 0.95).")
    limit = max_chars(project.encoder(loaded.encoder))
    truncated = 0

    def chunks():
        nonlocal truncated
        for cols, rows in iter_columns(input_path, fmt, columns, header=header, chunk_rows=chunk_rows):
            texts = _check_texts(cols[text_column], rows, input_path, text_column)
            if limit is not None:  # the encoder cuts these (encoders.base.cap_texts); counted to say so once
                truncated += sum(len(t) > limit for t in texts)
            ids = cols[id_key] if id_key is not None else rows
            sources = (source if source_column is None else
                       [None if s in (None, "") else str(s) for s in cols[source_column]])
            yield texts, ids, sources

    if isinstance(engine, LocalEngine):
        results = ((ids, *predict_with(project, loaded, texts, sources), sources) for texts, ids, sources in chunks())
    else:
        pending_ids: deque = deque()

        def work():
            for texts, ids, sources in chunks():
                pending_ids.append((ids, sources))
                yield texts, sources
        state = _model_state(loaded)

        def remote():
            for Z, P in engine.map_stream(ChunkPredictor, work(), init={"state": state,
                                                                         "cache_dir": str(project.cache_dir)}):
                ids, sources = pending_ids.popleft()
                yield ids, Z, P, sources
        results = remote()
    total = _row_count(input_path, fmt)
    show = progress if progress is not None else (total is None or total > 1000)
    written = 0
    out_path = Path(out_path)
    parquet = out_path.suffix.lower() == ".parquet"

    def write(fh):
        nonlocal written
        writer = None
        bar = tqdm(total=total, desc=f"predict [{engine.name}]", unit="row", disable=not show)
        try:
            for ids, Z, P, sources in results:
                sets = None
                if controller is not None:
                    sets = controller.predict(P, sources)
                    Z = sets["labels"]
                if parquet:
                    table = _parquet_chunk(ids, Z, P, names, sets)
                    if writer is None:
                        import pyarrow.parquet as pq
                        writer = pq.ParquetWriter(fh, table.schema)
                    writer.write_table(table)
                elif sets is not None:
                    fh.write("".join(json.dumps({"id": i, "labels": [names[k] for k in np.flatnonzero(z)],
                                                 "scores": {n: round(float(p), 6) for n, p in zip(names, row)},
                                                 "uncertain": [names[k] for k in np.flatnonzero(u)],
                                                 "abstain": bool(a)}, ensure_ascii=False) + "\n"
                                     for i, z, row, u, a in zip(ids, Z, P, sets["uncertain"], sets["abstain"])
                                     ).encode("utf-8"))
                else:
                    fh.write("".join(json.dumps({"id": i, "labels": [names[k] for k in np.flatnonzero(z)],
                                                 "scores": {n: round(float(p), 6) for n, p in zip(names, row)}},
                                                ensure_ascii=False) + "\n"
                                     for i, z, row in zip(ids, Z, P)).encode("utf-8"))
                written += len(Z)
                bar.update(len(Z))
            if parquet:
                if writer is None:  # an empty input still gets a readable file
                    import pyarrow.parquet as pq
                    empty = np.zeros((0, len(names)))
                    writer = pq.ParquetWriter(fh, _parquet_chunk(
                        [], empty, empty, names, None if controller is None else controller.predict(empty)).schema)
                writer.close()
        finally:
            bar.close()

    _atomic_write(out_path, write)
    if controller is not None:
        from .._io import atomic_write_json
        atomic_write_json(promise_path(out_path), {"promise": controller.promise_, "rows": written})
    else:  # a promise left by an earlier --risk run would describe rows that are no longer there
        promise_path(out_path).unlink(missing_ok=True)
    if report is not None:
        report.update(truncated=truncated, max_chars=limit)
    return written


def promise_path(out_path: str | Path) -> Path:
    """The sidecar holding a risk-controlled output's promise: ``<out>.promise.json``."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".promise.json")


def _check_texts(raw: list, rows: list[int], input_path: Path, text_column) -> list[str]:
    for i, t in enumerate(raw):
        if t is not None and not isinstance(t, str):
            raise TagwiseError(f"{input_path}: row {rows[i]}: column {text_column!r} holds a "
                               f"{type(t).__name__}, not text. Fix: quote it as a string.")
    texts = ["" if t is None else t for t in raw]
    for i, t in enumerate(texts):
        if not t.isascii():
            check_unicode(t, f"{input_path}: row {rows[i]}: column {text_column!r}")
    empty = [rows[i] for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise TagwiseError(f"{input_path}: row {empty[0]}: empty text in column {text_column!r} "
                           f"({len(empty)} empty rows in this chunk). Fix: remove or fill them.")
    return texts


def _row_count(path: Path, fmt: str) -> int | None:
    """Rows of a Parquet file from its footer (for the progress bar); None for text formats."""
    if fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001  (the reader reports a corrupt file properly)
        return None


def _parquet_chunk(ids, Z: np.ndarray, P: np.ndarray, names: list[str], sets: dict | None = None):
    import pyarrow as pa

    labels = pa.array([[names[k] for k in np.flatnonzero(z)] for z in Z], type=pa.list_(pa.string()))
    scores = pa.StructArray.from_arrays([pa.array(np.round(P[:, k], 6).astype(np.float32)) for k in range(len(names))],
                                        fields=[pa.field(n, pa.float32()) for n in names])
    columns = {"id": pa.array([str(i) for i in ids], pa.string()), "labels": labels, "scores": scores}
    if sets is not None:  # --risk: the labels the promise cannot settle, and whether a person should look
        columns["uncertain"] = pa.array([[names[k] for k in np.flatnonzero(u)] for u in sets["uncertain"]],
                                        type=pa.list_(pa.string()))
        columns["abstain"] = pa.array([bool(a) for a in sets["abstain"]], type=pa.bool_())
    return pa.table(columns)


def _model_state(loaded: LoadedModel) -> dict:
    """What a worker needs to rebuild ``loaded``: the head's saved state (JSON-able meta + arrays,
    never a pickled object), its encoder name and its training sources."""
    meta, arrays = loaded.head.get_state()
    return {"class": type(loaded.head).__name__, "meta": meta, "arrays": arrays, "info": loaded.info,
            "name": loaded.name, "path": str(loaded.path)}


_WORKER_ENCODERS: dict[str, object] = {}


class ChunkPredictor:
    """One engine worker's model: rebuilt once from ``_model_state``, then ``(texts, sources) -> (Z, P)``
    for each chunk, embedding through the (shared) cache at ``cache_dir`` as the local path does."""

    def __init__(self, state: dict, cache_dir: str):
        from ..encoders import get_encoder
        from ..learn.registry import MODEL_CLASSES

        head = MODEL_CLASSES[state["class"]].from_state(state["meta"], state["arrays"])
        self.loaded = LoadedModel(head=head, info=state["info"], name=state["name"], path=Path(state["path"]))
        # one encoder per worker process: a later stream on the same worker does not reload it
        name = self.loaded.encoder
        self.encoder = _WORKER_ENCODERS.get(name) or _WORKER_ENCODERS.setdefault(name, get_encoder(name))
        self.cache_dir = cache_dir
        self.caches: dict = {}  # the cache's index read once per worker, not once per chunk

    def __call__(self, item) -> tuple[np.ndarray, np.ndarray]:
        from ..encoders import embed_texts

        texts, sources = item
        return predict_with(None, self.loaded, texts, sources,
                            embed=lambda t: embed_texts(t, self.encoder, self.cache_dir, progress=False,
                                                        caches=self.caches)[0])


def _missing_column_fix(exc) -> str:
    """``predict``'s message for a column the input lacks (``sources.readers.MissingColumnError``)."""
    options = "--text-column / --id-column / --source-column"
    if not exc.header:
        n = len(exc.available)
        return (f"{exc.path}: column position {exc.column!r} does not exist; rows have {n} columns (0..{n - 1}). "
                f"Fix: pass {options} a position from 0 to {n - 1}.")
    shown = [str(c)[:40] for c in exc.available]
    return (f"{exc.path}: column {exc.column!r} not found in the header row {shown}. Fix: if the file has no "
            f"header row (its first line is data), add --no-header and pass {options} 0-based positions "
            f"(e.g. --text-column 0); otherwise pass them the header's column names.")
