"""File I/O shared by every stage: atomic writes (a crash mid-write leaves the previous version
intact), safe YAML reads, and the one timestamp format."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from .types import TagwiseError

# A YAML alias bomb ("billion laughs") is a few hundred bytes that expand to billions of nodes when
# the document is walked or stored; no real spec, taxonomy or LF file comes near this many values.
MAX_YAML_VALUES = 100_000

# A CSV text cell starting with one of these is run as a formula by a spreadsheet (OWASP's
# CSV-injection rule); every CSV we write for people to open goes through ``neutralise_formula``.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """A CSV cell a spreadsheet would evaluate -> the same text behind a ``'`` (a cell already starting
    with ``'`` gets one more, so ``restore_formula`` gives back the exact text)."""
    if isinstance(value, str) and (value.startswith(_FORMULA_START) or value.startswith("'")):
        return "'" + value
    return value


def restore_formula(value):
    """The inverse of ``neutralise_formula`` (for files we wrote)."""
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


def _atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        from .types import TagwiseError  # types imports nothing of ours; kept local so _io stays a leaf

        raise TagwiseError(f"{path}: cannot write here ({exc.strerror or exc}). Fix: pick a path in a folder "
                           f"you can write to.") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder + fsync + rename."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def atomic_save_npy(path, array: np.ndarray) -> None:
    """Save one array as .npy atomically (never pickled: object arrays are refused)."""
    array = np.asarray(array)
    if array.dtype == object:
        raise TypeError(f"refusing to save an object array to {path}: it would need pickle")
    _atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def atomic_replace_dir(build_dir: Path, final_dir: Path) -> None:
    """Swap a fully written ``build_dir`` in as ``final_dir`` (old version removed after the swap)."""
    final_dir = Path(final_dir)
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old-{os.getpid()}")
        os.replace(final_dir, old)
    os.replace(build_dir, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_npy(path, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def check_yaml_size(raw, where) -> None:
    """Count a YAML document's values as expanded (aliases counted every time they are used); refuse a bomb."""
    budget = MAX_YAML_VALUES
    stack = [raw]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise TagwiseError(f"{where}: the file expands to more than {MAX_YAML_VALUES} values (YAML aliases "
                               f"repeated inside each other?). Fix: write it out without nested aliases.")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def read_yaml(path, what: str):
    """Load one YAML file (``what`` names it in errors: "spec", "taxonomy", ...) with a one-line
    ``TagwiseError`` for a missing file, a folder, non-UTF-8 bytes, bad YAML, deep nesting or an alias bomb."""
    path = Path(path)
    if not path.exists():
        raise TagwiseError(f"{path}: {what} file not found.")
    if not path.is_file():
        raise TagwiseError(f"{path}: is a folder, not a {what} file. Fix: pass the YAML file itself.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TagwiseError(f"{path}: cannot read the {what} file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise TagwiseError(f"{path}: not UTF-8 (byte {exc.start}). Fix: save the {what} as UTF-8.") from None
    except yaml.YAMLError as exc:
        raise TagwiseError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise TagwiseError(f"{path}: the YAML nests too deeply. Fix: write a flat {what}.") from None
    check_yaml_size(raw, path)
    return raw


def utc_now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS`` (the one timestamp format of the store and runs)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def utc_stamp() -> str:
    """The current UTC time as ``YYYYmmdd-HHMMSS``, the time part of model and run names."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def unique_name(prefix: str) -> str:
    """``prefix-YYYYmmdd-HHMMSS-xxxxxx``: sortable by time, unique across processes started in the same second."""
    return f"{prefix}-{utc_stamp()}-{secrets.token_hex(3)}"
