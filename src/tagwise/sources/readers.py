"""File readers: CSV/TSV, JSON lines, Parquet and Hugging Face ``datasets`` folders.

Each returns only the wanted columns, column-oriented, plus the file's row numbers for
error messages (1-based line numbers for text formats, 0-based row index for columnar ones).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from ..types import TagwiseError

csv.field_size_limit(1 << 30)


def decode_utf8(data: bytes, path: Path) -> str:
    """Decode bytes as UTF-8 (BOM allowed); on failure name the line and byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TagwiseError(
            f"{path}: line {line}: bytes are not valid UTF-8 ({exc.reason} at byte {exc.start}). "
            f"Fix: re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed`."
        ) from None


class MissingColumnError(TagwiseError):
    """A wanted column the file lacks; ``column``, ``available`` and ``header`` let a caller that is not
    reading a spec (``predict``) name its own fix."""

    def __init__(self, message: str, path: Path, column: Any, available: Sequence[Any], header: bool):
        super().__init__(message)
        self.path, self.column, self.available, self.header = path, column, list(available), header


def _missing_column(path: Path, col: Any, available: Sequence[Any], header: bool) -> TagwiseError:
    if isinstance(col, int) or not header:
        return MissingColumnError(f"{path}: column position {col!r} does not exist; rows have "
                                  f"{len(available)} columns (0..{len(available) - 1}).", path, col, available, False)
    return MissingColumnError(f"{path}: column {col!r} not found. Available columns: {list(available)}. "
                              f"Fix the 'columns:' mapping in the spec.", path, col, available, True)


def read_delimited(path: Path, wanted: Sequence[Any], *, separator: str, header: bool,
                   quoting: str = "minimal", limit: int | None = None):
    text = decode_utf8(path.read_bytes(), path)
    # chunk_rows=None: exactly one chunk, the whole (limited) file
    return next(_delimited_chunks(io.StringIO(text, newline=""), path, wanted, separator=separator,
                                  header=header, quoting=quoting, chunk_rows=None, limit=limit))


def _delimited_chunks(fh, path: Path, wanted: Sequence[Any], *, separator: str, header: bool,
                      quoting: str = "minimal", chunk_rows: int | None, limit: int | None = None):
    """The rows of a delimited text stream ``fh`` as ``(columns, line numbers)`` chunks of ``chunk_rows``
    rows (None: one chunk), up to ``limit`` rows; every malformed piece is an error naming the line."""
    # strict: a quote that never closes is an error at the end of the file (not a field that silently
    # swallows every following row), and so is text right after a closing quote
    reader = csv.reader(fh, delimiter=separator, strict=True,
                        quoting=csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL)
    names: list[str] | None = None
    if header:
        try:
            names = [n.strip() for n in next(reader)]
        except StopIteration:
            raise TagwiseError(f"{path}: the file is empty (expected a header row).") from None
        except csv.Error as exc:
            raise TagwiseError(f"{path}: line 1: malformed header ({exc}). Fix the header's quoting.") from None
        except UnicodeDecodeError as exc:
            raise TagwiseError(f"{path}: line 1: bytes are not valid UTF-8 ({exc.reason}). "
                               f"Fix: re-encode the file as UTF-8.") from None
    positions = {}
    for col in wanted:
        if isinstance(col, int) and (names is None or col < len(names)):
            positions[col] = col
        elif names is not None and col in names:
            positions[col] = names.index(col)
        elif names is not None:
            raise _missing_column(path, col, names, header)
        elif not isinstance(col, int) or isinstance(col, bool) or col < 0:
            raise TagwiseError(f"{path}: the file has no header row, so columns are 0-based positions, but the spec "
                               f"names column {col!r}. Fix: give its position (e.g. columns: {{labels: 1}}), or "
                               f"set 'header: true'.")
        else:
            positions[col] = col
    out: dict[Any, list] = {col: [] for col in wanted}
    rows: list[int] = []
    n_rows = 0
    need = max(positions.values(), default=-1)
    while not limit or n_rows < limit:
        start = reader.line_num + 1  # the line the next row (and any quote it opens) starts on
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise TagwiseError(f"{path}: line {start}: malformed row starting here ({exc}; a quote opened on this "
                               f"row is not closed where it should be). Fix the quoting, or set 'quoting: none' "
                               f"in the spec.") from None
        except UnicodeDecodeError as exc:
            raise TagwiseError(f"{path}: near line {start}: bytes are not valid UTF-8 ({exc.reason}). "
                               f"Fix: re-encode the file as UTF-8.") from None
        if not values or values == [""]:
            continue
        if len(values) <= need and names is None and n_rows == 0:  # the first row: the position is wrong
            raise _missing_column(path, next(c for c, p in positions.items() if p == need), values, header)
        if len(values) <= need:
            raise TagwiseError(f"{path}: line {reader.line_num}: row has {len(values)} fields, expected at "
                               f"least {need + 1} (separator {separator!r}). Fix the row or the "
                               f"'separator'/'columns' fields of the spec.")
        for col, pos in positions.items():
            out[col].append(values[pos])
        rows.append(reader.line_num)
        n_rows += 1
        if chunk_rows and len(rows) >= chunk_rows:
            yield out, rows
            out, rows = {col: [] for col in wanted}, []
    if rows or chunk_rows is None:
        yield out, rows


def read_jsonl(path: Path, wanted: Sequence[Any], *, limit: int | None = None):
    text = decode_utf8(path.read_bytes(), path)
    out: dict[Any, list] = {col: [] for col in wanted}
    rows: list[int] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        _append_jsonl_record(out, line, line_no, path, wanted)
        rows.append(line_no)
        if limit and len(rows) >= limit:
            break
    return out, rows


def _append_jsonl_record(out: dict[Any, list], line: str, line_no: int, path: Path, wanted: Sequence[Any]) -> None:
    """Parse one JSONL line and append its ``wanted`` keys to ``out`` (clear errors naming the line)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TagwiseError(f"{path}: line {line_no}: not valid JSON ({exc.msg}). "
                           f"Each line must be one JSON object.") from None
    if not isinstance(obj, dict):
        raise TagwiseError(f"{path}: line {line_no}: expected a JSON object, got {type(obj).__name__}.")
    for col in wanted:
        if col not in obj:
            raise TagwiseError(f"{path}: line {line_no}: key {col!r} missing. Keys present: "
                               f"{sorted(obj)}. Fix the 'columns:' mapping in the spec.")
        out[col].append(obj[col])


def _read_arrow_table(table, path: Path, wanted: Sequence[Any], limit: int | None):
    names = table.column_names
    out = {}
    for col in wanted:
        key = names[col] if isinstance(col, int) and col < len(names) else col
        if key not in names:
            raise _missing_column(path, col, names, header=True)
        column = table.column(key)
        out[col] = column.slice(0, limit).to_pylist() if limit else column.to_pylist()
    n = min(table.num_rows, limit) if limit else table.num_rows
    return out, list(range(n))


def read_parquet(path: Path, wanted: Sequence[Any], *, limit: int | None = None):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise TagwiseError(f"{path}: cannot read as Parquet: {exc}") from None
    return _read_arrow_table(table, path, wanted, limit)


def read_hf_folder(path: Path, wanted: Sequence[Any], *, limit: int | None = None):
    """A folder written by ``datasets.Dataset.save_to_disk``: Arrow stream files + state.json."""
    import pyarrow as pa

    state = path / "state.json"
    if state.exists():
        files = [path / f["filename"] for f in json.loads(state.read_text())["_data_files"]]
    else:
        files = sorted(path.glob("*.arrow"))
    if not files:
        raise TagwiseError(f"{path}: no .arrow files; expected a folder written by "
                           f"datasets' save_to_disk (or use format parquet/jsonl).")
    tables = []
    for f in files:
        with pa.memory_map(str(f)) as source:
            try:
                tables.append(pa.ipc.open_stream(source).read_all())
            except pa.ArrowInvalid:
                tables.append(pa.ipc.open_file(source).read_all())
    return _read_arrow_table(pa.concat_tables(tables), path, wanted, limit)


def read_lines(files: dict[str, Path], wanted: Sequence[Any], *, limit: int | None = None):
    """Parallel files with one item per line; ``files`` maps column name -> file."""
    out, n = {}, None
    for col in wanted:
        if col not in files:
            raise TagwiseError(f"format 'lines' has files for {sorted(files)} but the spec wants column "
                               f"{col!r}. Fix the 'columns:' mapping or add the file to 'splits'.")
        lines = decode_utf8(files[col].read_bytes(), files[col]).splitlines()
        if lines and lines[-1] == "":
            lines.pop()
        if n is not None and len(lines) != n:
            raise TagwiseError(f"{files[col]}: has {len(lines)} lines but the other files of this split "
                               f"have {n}; parallel files must align line by line.")
        n = len(lines)
        out[col] = lines[:limit] if limit else lines
    n_rows = len(next(iter(out.values()))) if out else 0
    return out, list(range(1, n_rows + 1))


def read_columns(path: Path, fmt: str, wanted: Sequence[Any], *, header: bool = True,
                 separator: str | None = None, quoting: str = "minimal", limit: int | None = None):
    """Read ``wanted`` columns of one file. Returns ``(columns: {col: list}, row_numbers: list[int])``."""
    if fmt == "lines":
        return read_lines(path, wanted, limit=limit)
    path = Path(path)
    if fmt in ("csv", "tsv"):
        sep = separator or ("\t" if fmt == "tsv" else ",")
        return read_delimited(path, wanted, separator=sep, header=header, quoting=quoting, limit=limit)
    if fmt == "jsonl":
        return read_jsonl(path, wanted, limit=limit)
    if fmt == "parquet":
        return read_parquet(path, wanted, limit=limit)
    if fmt == "hf":
        return read_hf_folder(path, wanted, limit=limit)
    raise TagwiseError(f"{path}: unsupported format {fmt!r}.")


def iter_columns(path: Path, fmt: str, wanted: Sequence[Any], *, header: bool = True, chunk_rows: int = 4096,
                 separator: str | None = None):
    """Stream ``wanted`` columns of one file in chunks of ``chunk_rows`` rows, never the whole file in memory.

    Yields ``(columns: {col: list}, row_numbers: list[int])`` per chunk, numbered as ``read_columns``
    numbers them. Parquet is read batch by batch, JSON lines and CSV/TSV line by line; ``hf`` and
    ``lines`` folders are read whole and then cut into chunks.
    """
    path = Path(path)
    if fmt == "parquet":
        yield from _iter_parquet(path, wanted, chunk_rows)
    elif fmt == "jsonl":
        yield from _iter_jsonl(path, wanted, chunk_rows)
    elif fmt in ("csv", "tsv"):
        yield from _iter_delimited(path, wanted, separator or ("\t" if fmt == "tsv" else ","), header, chunk_rows)
    else:
        cols, rows = read_columns(path, fmt, wanted, header=header, separator=separator)
        for s in range(0, len(rows), chunk_rows):
            yield {c: v[s:s + chunk_rows] for c, v in cols.items()}, rows[s:s + chunk_rows]


def _iter_parquet(path: Path, wanted: Sequence[Any], chunk_rows: int):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise TagwiseError(f"{path}: cannot read as Parquet: {exc}") from None
    names = pf.schema_arrow.names
    keys = {}
    for col in wanted:
        key = names[col] if isinstance(col, int) and 0 <= col < len(names) else col
        if key not in names:
            raise _missing_column(path, col, names, header=True)
        keys[col] = key
    start = 0
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=sorted(set(keys.values()))):
        yield ({col: batch.column(key).to_pylist() for col, key in keys.items()},
               list(range(start, start + batch.num_rows)))
        start += batch.num_rows


def _iter_jsonl(path: Path, wanted: Sequence[Any], chunk_rows: int):
    out: dict[Any, list] = {col: [] for col in wanted}
    rows: list[int] = []
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise TagwiseError(f"{path}: line {line_no}: bytes are not valid UTF-8 ({exc.reason} at byte "
                                   f"{exc.start} of the line). Fix: re-encode the file as UTF-8.") from None
            if not line.strip():
                continue
            _append_jsonl_record(out, line, line_no, path, wanted)
            rows.append(line_no)
            if len(rows) >= chunk_rows:
                yield out, rows
                out, rows = {col: [] for col in wanted}, []
    if rows:
        yield out, rows


def _iter_delimited(path: Path, wanted: Sequence[Any], separator: str, header: bool, chunk_rows: int):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        yield from _delimited_chunks(fh, path, wanted, separator=separator, header=header, chunk_rows=chunk_rows)
