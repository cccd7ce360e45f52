"""A project folder: the store, the embedding cache, models and runs.

Layout::

    PROJECT/tagwise.db          examples, sources, taxonomy, corrections (SQLite)
    USER CACHE/tagwise/embeddings/  content-keyed vectors per encoder (memory-mapped shards), shared by the
                                user's projects: $TAGWISE_CACHE_DIR, else $XDG_CACHE_HOME/tagwise/embeddings,
                                else ~/.cache/tagwise/embeddings (PROJECT/cache/embeddings if neither is writable)
    PROJECT/models/<name>/      model.json + .npy arrays (never pickle); models/CURRENT names the latest
    PROJECT/runs/<run id>/      metrics and artifacts of each train/evaluate/audit run
    PROJECT/report.html
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import numpy as np

from ._io import atomic_write_json, atomic_write_text, utc_stamp
from .encoders import DEFAULT_ENCODER, EmbedStats, embed_texts, get_encoder
from .encoders.cache import uncached_texts
from .encoders.registry import uncovered_languages_warning
from .annotations import labels_unknown_after_changes, resolve_training_labels
from .sources import ingest, load_spec, parse_spec
from .store import Store
from .taxonomy import Taxonomy, load_taxonomy
from .types import Examples, LabelSpace, TagwiseError

DB_NAME = "tagwise.db"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def user_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/tagwise/embeddings`` (default ``~/.cache``), created; None when it cannot be."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "tagwise" / "embeddings"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


class Project:
    """Open with ``Project.open(path)``; create with ``Project.init(path)``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / DB_NAME).exists():
            raise TagwiseError(f"{self.path}: not a tagwise project (no {DB_NAME}). "
                               f"Fix: run `tagwise init {self.path}` first.")
        self.store = Store(self.path / DB_NAME)
        self._encoders: dict[str, object] = {}
        self._embedding_caches: dict = {}  # cache folder -> EmbeddingCache: its index read once per project

    # -- lifecycle -------------------------------------------------------
    @classmethod
    def init(cls, path: str | Path, taxonomy: str | Path | Taxonomy | None = None,
             exist_ok: bool = False) -> "Project":
        """Create the project folder (and optionally fix its taxonomy from a YAML file)."""
        path = Path(path)
        if (path / DB_NAME).exists() and not exist_ok:
            raise TagwiseError(f"{path}: a project already exists here.")
        # read the taxonomy before anything is created: a bad file must leave no half-made project behind
        tax = taxonomy if isinstance(taxonomy, Taxonomy) or taxonomy is None else load_taxonomy(taxonomy)
        for sub in ("models", "runs"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        store = Store(path / DB_NAME)
        if tax is not None:
            store.set_meta("taxonomy", tax.to_dict())
        store.set_meta("encoder", store.get_meta("encoder", DEFAULT_ENCODER))
        store.close()
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> "Project":
        return cls(path)

    def close(self) -> None:
        self.store.close()

    # -- sources & examples ----------------------------------------------
    def add_source(self, spec, replace: bool = False, on_duplicate_id: str = "warn",
                   annotated: bool | None = None) -> dict:
        """Ingest one source (a spec path or an already-parsed dict/SourceSpec) atomically.

        ``on_duplicate_id``: what to do with example ids that repeat within the source ("warn": keep
        every row and report the count; "error"; "keep-first"; "keep-last").
        ``annotated``: read per-annotator labels (long, wide or votes layout, ``sources.annotations``);
        None decides from the spec. Returns a summary ``{"name", "n_examples", "splits", "new_labels",
        "skipped_empty", "duplicate_ids", "dropped_duplicates", "warnings": [str]}``, plus ``"n_annotations"`` and
        ``"annotators"`` for a per-annotator source.
        """
        if isinstance(spec, (str, Path)):
            spec = load_spec(spec)
        elif isinstance(spec, dict):
            spec = parse_spec(spec, Path.cwd() / "<inline spec>")
        from .sources.harmonize import check_spec_mapping

        check_spec_mapping(spec, self.taxonomy)  # conflicting labels/map -> clear error before ingest
        from .sources.annotations import is_annotated, read_annotated

        judgements = None
        if annotated or (annotated is None and is_annotated(spec)):
            # per-annotator labels: one example per item (repeated ids are the layout)
            data = read_annotated(spec)
            rows = data.rows
            # by row position: the same id may name two items in two split files (ids are per split)
            judgements = [(int(e), a, labels) for e, a, labels in zip(data.example, data.annotator, data.labels)]
        else:
            rows = ingest(spec, on_duplicate_id=on_duplicate_id)
        record = {"spec_path": str(spec.spec_path), "raw": spec.raw, "files": {k: str(v) for k, v in spec.files.items()},
                  "language": spec.language, "description": spec.description}
        if judgements is not None:
            record["annotated_by"] = "several annotators"
        new_labels = self.store.add_source(rows, record, replace=replace, where=str(spec.spec_path),
                                           judgements=judgements)
        language_warning = uncovered_languages_warning(rows.name, rows.languages, self.default_encoder)
        if language_warning:
            rows.warnings.append(language_warning)
        splits: dict[str, int] = {}
        for s in rows.splits:
            splits[s] = splits.get(s, 0) + 1
        out = {"name": rows.name, "n_examples": len(rows), "splits": splits, "new_labels": new_labels,
               "skipped_empty": rows.skipped_empty, "duplicate_ids": rows.duplicate_ids,
               "dropped_duplicates": rows.dropped_duplicates, "warnings": list(rows.warnings)}
        if judgements is not None:
            out.update(n_annotations=len(judgements), annotators=sorted({a for _, a, _ in judgements}))
        return out

    @property
    def taxonomy(self) -> Taxonomy:
        return self.store.taxonomy()

    @property
    def labels(self) -> LabelSpace:
        return self.taxonomy.space

    def examples(self, split=None, source=None, labeled: bool | None = None) -> Examples:
        """Examples with their training labels: the stored labels, or for an example people annotated,
        what ``annotations.resolve_training_labels`` makes of its active annotations (such a row's
        labels are then known for the whole taxonomy, ``Examples.fully_known``, less the labels added
        or split off after the judgement: ``Examples.unknown_labels``). A pool example (split
        ``unlabeled``) that people labeled counts as a ``train`` example."""
        # a source's own per-annotator judgements (origin "ingest:<source>") are already summarised in its
        # stored labels (the strict majority); only labels people gave later override them
        active = self.store.annotations(people_only=True)
        changes = [c for c in self.store.label_changes() if c["undone_at"] is None]
        if not active and not any(c["kind"] == "split" for c in changes):
            return self.store.examples(split=split, source=source, labeled=labeled)
        ex = self.store.examples(source=source)
        by_example: dict[int, list[dict]] = {}
        for a in active:
            by_example.setdefault(a["example"], []).append(a)
        fully_known = np.zeros(len(ex), dtype=bool)
        for i, ex_id in enumerate(ex.ids.tolist()):
            anns = by_example.get(ex_id)
            if anns:
                ex.labels[i] = resolve_training_labels(ex.labels[i], anns)
                fully_known[i] = ex.labels[i] is not None
                if fully_known[i] and ex.splits[i] == "unlabeled":
                    ex.splits[i] = "train"
        ex.fully_known = fully_known
        # the judgement that decides a row is its latest annotation (``resolve_training_labels``' rule)
        unknown = labels_unknown_after_changes(changes, {e: anns[-1] for e, anns in by_example.items()})
        if unknown:
            ex.unknown_labels = np.empty(len(ex), dtype=object)
            ex.unknown_labels[:] = [unknown.get(e, frozenset()) for e in ex.ids.tolist()]
        keep = np.ones(len(ex), dtype=bool)
        if split is not None:
            keep &= np.isin(ex.splits.astype(str), [split] if isinstance(split, str) else list(split))
        if labeled is not None:
            has = np.array([lab is not None for lab in ex.labels], dtype=bool)
            keep &= has if labeled else ~has
        return ex if keep.all() else ex.subset(keep)

    # -- embeddings ------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        """The embedding cache, shared by all of the user's projects (vectors are keyed by encoder and
        text, so a second project on the same texts encodes nothing): ``TAGWISE_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/tagwise/embeddings``, else ``~/.cache/tagwise/embeddings``; the project's own
        ``cache/embeddings`` only when that folder cannot be created."""
        override = os.environ.get("TAGWISE_CACHE_DIR")
        if override:
            return Path(override)
        return user_cache_dir() or self.path / "cache" / "embeddings"

    @property
    def default_encoder(self) -> str:
        return self.store.get_meta("encoder", DEFAULT_ENCODER)

    def encoder(self, name: str | None = None):
        name = name or self.default_encoder
        if name not in self._encoders:
            self._encoders[name] = get_encoder(name)
        return self._encoders[name]

    def embed_texts(self, texts, encoder=None, progress: bool = True,
                    out: np.ndarray | None = None) -> tuple[np.ndarray, EmbedStats]:
        """Embed any texts through the project's cache. ``encoder``: a name (None = the default) or an
        encoder object (e.g. one part of a stack, as ``uncached_texts`` gives). Returns
        ``((n, dim) float32, stats)``; ``out`` (n, dim): an array (e.g. a ``np.memmap``) to fill instead of a new one."""
        enc = encoder if encoder is not None and not isinstance(encoder, str) else self.encoder(encoder)
        return embed_texts(texts, enc, self.cache_dir, progress=progress, out=out, caches=self._embedding_caches)

    def uncached_texts(self, texts, encoder: str | None = None) -> list[tuple[object, list[str]]]:
        """Per leaf encoder of ``encoder``: the distinct texts its cache lacks (``encoders.cache.uncached_texts``)."""
        return uncached_texts(texts, self.encoder(encoder), self.cache_dir, caches=self._embedding_caches)

    def embed(self, encoder: str | None = None, progress: bool = True) -> EmbedStats:
        """Embed every example of the project (cached ones are not re-encoded); sets the default encoder."""
        name = encoder or self.default_encoder
        ex = self.examples()
        _, stats = self.embed_texts(ex.texts, name, progress=progress)
        self.store.set_meta("encoder", name)
        return stats

    def features(self, examples: Examples, encoder: str | None = None, progress: bool = False,
                 out: np.ndarray | None = None) -> np.ndarray:
        """(n, dim) embeddings of ``examples`` (encodes only what the cache lacks), in ``out`` if given."""
        return self.embed_texts(examples.texts, encoder, progress=progress, out=out)[0]

    # -- models & runs ---------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    def set_current_model(self, name: str) -> None:
        atomic_write_text(self.models_dir / "CURRENT", name + "\n")

    def new_run(self, kind: str, params: dict | None = None, run_id: str | None = None) -> Path:
        """A new ``runs/<YYYYmmdd-HHMMSS>-<kind>-<random>`` folder with its ``params.json``.

        The random part keeps two runs started in the same second (two processes) apart; names sort
        by time.
        """
        if not kind.isalnum():
            raise ValueError(f"run kind must be alphanumeric, got {kind!r}")
        run_id = run_id or self.new_run_id(kind)
        run_dir = self.path / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        atomic_write_json(run_dir / "params.json", {"kind": kind, **(params or {})})
        return run_dir

    def clean_orphans(self) -> list[str]:
        """Remove what a killed command left behind; returns the names removed.

        - ``models/.<name>.build-<pid>-*`` and ``models/.<name>.old-<pid>``: a model save interrupted
          before (or during) its folder swap, when process ``pid`` is no longer running (a running
          train's build folder is left alone);
        - ``runs/*-corrections-*`` folders naming no batch in the store: an apply that died before its
          transaction committed (the folders are listed before the batches are read, and an apply
          commits before it creates its folder, so a concurrent apply's folder is never taken).
        """
        removed = []
        for path in self.models_dir.glob(".*"):
            m = re.match(r"\.[^/]*\.(?:build|old)-(\d+)", path.name)
            if path.is_dir() and m and not _pid_alive(int(m.group(1))):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(f"models/{path.name}")
        runs = self.path / "runs"
        folders = [p for p in runs.glob("*-corrections-*") if p.is_dir()] if runs.is_dir() else []
        if folders:
            batches = {b["batch"] for b in self.store.correction_batches()}
            for path in folders:
                if path.name not in batches:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(f"runs/{path.name}")
        return removed

    @staticmethod
    def new_run_id(kind: str) -> str:
        """``<YYYYmmdd-HHMMSS>-<kind>-<random>``: a name for a run folder made later (see ``new_run``)."""
        return f"{utc_stamp()}-{kind}-{secrets.token_hex(4)}"

    def runs(self, kind: str | None = None) -> list[Path]:
        """Run folders, oldest first (optionally only those of ``kind``)."""
        runs = sorted(p for p in (self.path / "runs").iterdir() if p.is_dir() and not p.name.startswith("."))
        return [r for r in runs if kind is None or (len(r.name.split("-")) > 2 and r.name.split("-")[2] == kind)]

    def splits(self) -> list[str]:
        """The splits that hold examples."""
        return sorted({k.split("/", 1)[1] for k in self.store.count()})
