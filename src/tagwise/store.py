"""The project's embedded store: one SQLite file, every change in one transaction.

SQLite gives atomic, durable commits without a server: a process killed mid-ingest leaves the
previous state intact (the WAL is rolled back on next open).
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from .encoders.cache import text_keys
from .sources.ingest import SourceRows
from .taxonomy import Taxonomy
from .types import Examples, TagwiseError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, annotated TEXT NOT NULL,
    n_examples INTEGER NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, split TEXT NOT NULL, language TEXT NOT NULL,
    annotator TEXT, example_id TEXT NOT NULL, row INTEGER NOT NULL, text TEXT NOT NULL,
    text_key INTEGER NOT NULL, labels TEXT);
CREATE INDEX IF NOT EXISTS examples_source ON examples(source, split);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY, batch TEXT NOT NULL, example INTEGER NOT NULL,
    old_labels TEXT, new_labels TEXT, reason TEXT, created_at TEXT NOT NULL, undone_at TEXT);
CREATE INDEX IF NOT EXISTS corrections_batch ON corrections(batch);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, example_id TEXT NOT NULL, annotator TEXT NOT NULL,
    labels TEXT NOT NULL, row INTEGER, origin TEXT NOT NULL, added_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS annotations_source ON annotations(source, example_id);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def _signed(keys: np.ndarray) -> list[int]:
    """uint64 keys -> Python ints that fit SQLite's signed 64-bit INTEGER."""
    return keys.view(np.int64).tolist()


class Store:
    """Examples, sources, taxonomy and corrections in ``PROJECT/tagwise.db``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions only
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: an exception (or a kill) rolls every statement back."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- meta / taxonomy -------------------------------------------------
    def get_meta(self, key: str, default=None):
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value, conn: sqlite3.Connection | None = None) -> None:
        (conn or self.conn).execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                    (key, json.dumps(value)))

    def taxonomy(self) -> Taxonomy:
        return Taxonomy.from_dict(self.get_meta("taxonomy", {}))

    # -- sources ---------------------------------------------------------
    def source_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sources ORDER BY added_at, name")]

    def sources(self) -> list[dict]:
        rows = self.conn.execute("SELECT name, spec, annotated, n_examples, added_at FROM sources "
                                 "ORDER BY added_at, name").fetchall()
        return [{"name": n, "spec": json.loads(s), "annotated": json.loads(a), "n_examples": k,
                 "added_at": t} for n, s, a, k, t in rows]

    def add_source(self, rows: SourceRows, spec_record: dict, *, replace: bool, where: str) -> list[str]:
        """Insert one source's rows and extend the taxonomy, atomically. Returns new label names."""
        exists = rows.name in self.source_names()
        if exists and not replace:
            raise TagwiseError(f"{where}: a source named {rows.name!r} already exists in this project. "
                               f"Fix: give the spec another 'name', or pass --replace to re-ingest it.")
        taxonomy = self.taxonomy()
        label_names = list(rows.annotated_labels)
        for labels in rows.labels:
            if labels:
                label_names.extend(n for n in labels if n not in label_names)
        new_labels = taxonomy.extend(label_names, where)
        keys = _signed(text_keys(rows.texts))
        with self.transaction() as conn:
            if exists:
                conn.execute("DELETE FROM examples WHERE source=?", (rows.name,))
                conn.execute("DELETE FROM sources WHERE name=?", (rows.name,))
            conn.executemany(
                "INSERT INTO examples(source, split, language, annotator, example_id, row, text, text_key,"
                " labels) VALUES (?,?,?,?,?,?,?,?,?)",
                ((rows.name, rows.splits[i], rows.languages[i], rows.annotators[i], rows.example_ids[i],
                  rows.rows[i], rows.texts[i], keys[i],
                  None if rows.labels[i] is None else json.dumps(rows.labels[i], ensure_ascii=False))
                 for i in range(len(rows))))
            conn.execute("INSERT INTO sources(name, spec, annotated, n_examples, added_at) VALUES (?,?,?,?,?)",
                         (rows.name, json.dumps(spec_record, ensure_ascii=False, default=str),
                          json.dumps(rows.annotated_labels, ensure_ascii=False), len(rows), _now()))
            self.set_meta("taxonomy", taxonomy.to_dict(), conn)
        return new_labels

    # -- examples --------------------------------------------------------
    def examples(self, split: str | list[str] | None = None, source: str | list[str] | None = None,
                 labeled: bool | None = None) -> Examples:
        """Load examples (optionally filtered) in store order."""
        where, params = [], []
        for col, val in (("split", split), ("source", source)):
            if val is not None:
                vals = [val] if isinstance(val, str) else list(val)
                where.append(f"{col} IN ({','.join('?' * len(vals))})")
                params += vals
        if labeled is True:
            where.append("labels IS NOT NULL")
        elif labeled is False:
            where.append("labels IS NULL")
        sql = ("SELECT id, source, split, language, annotator, example_id, text, labels FROM examples"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id")
        rows = self.conn.execute(sql, params).fetchall()
        annotated = {s["name"]: frozenset(s["annotated"]) for s in self.sources()}
        col = lambda j: np.array([r[j] for r in rows], dtype=object)  # noqa: E731
        return Examples(
            ids=np.array([r[0] for r in rows], dtype=np.int64), texts=[r[6] for r in rows],
            labels=[None if r[7] is None else json.loads(r[7]) for r in rows],
            sources=col(1), splits=col(2), languages=col(3), example_ids=col(5), annotators=col(4),
            annotated=annotated)

    def count(self) -> dict:
        rows = self.conn.execute("SELECT source, split, COUNT(*), SUM(labels IS NOT NULL) FROM examples "
                                 "GROUP BY source, split").fetchall()
        return {f"{s}/{sp}": {"n": n, "labeled": int(k or 0)} for s, sp, n, k in rows}

    def set_labels(self, updates: dict[int, list[str] | None], batch: str, reason: str = "") -> int:
        """Replace labels of store ids, recording old and new in ``corrections`` (one transaction)."""
        if not updates:
            return 0
        ids = list(updates)
        old = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            old.update(self.conn.execute(f"SELECT id, labels FROM examples WHERE id IN "
                                         f"({','.join('?' * len(chunk))})", chunk).fetchall())
        unknown = [i for i in ids if i not in old]
        if unknown:
            raise TagwiseError(f"corrections name example ids not in the project: {unknown[:5]}")
        now = _now()
        with self.transaction() as conn:
            for ex_id, labels in updates.items():
                new = None if labels is None else json.dumps(list(labels), ensure_ascii=False)
                conn.execute("INSERT INTO corrections(batch, example, old_labels, new_labels, reason, created_at)"
                             " VALUES (?,?,?,?,?,?)", (batch, ex_id, old[ex_id], new, reason, now))
                conn.execute("UPDATE examples SET labels=? WHERE id=?", (new, ex_id))
        return len(updates)

    # -- annotations (several annotators per example; issue 18) ------------
    def add_annotations(self, source: str, records: list[tuple[str, str, list[str], int | None]],
                        origin: str = "ingest", replace: bool = False) -> int:
        """Append judgements ``(example_id, annotator, label names, file row)`` of ``source``'s
        examples (linked by the examples' ``example_id``); ``replace`` first drops the source's
        judgements of that origin. One transaction."""
        now = _now()
        with self.transaction() as conn:
            if replace:
                conn.execute("DELETE FROM annotations WHERE source=? AND origin=?", (source, origin))
            conn.executemany("INSERT INTO annotations(source, example_id, annotator, labels, row, origin, added_at)"
                             " VALUES (?,?,?,?,?,?,?)",
                             ((source, ex, ann, json.dumps(list(labels), ensure_ascii=False), row, origin, now)
                              for ex, ann, labels, row in records))
        return len(records)

    def annotations(self, source: str | None = None) -> list[tuple[int, str, list[str], str]]:
        """Judgements joined to their examples: ``(store example id, annotator, label names,
        source)``, in insertion order; judgements whose example is gone are skipped."""
        sql = ("SELECT e.id, a.annotator, a.labels, a.source FROM annotations a JOIN examples e "
               "ON e.source = a.source AND e.example_id = a.example_id"
               + (" WHERE a.source=?" if source else "") + " ORDER BY a.id")
        return [(i, ann, json.loads(lab), src)
                for i, ann, lab, src in self.conn.execute(sql, (source,) if source else ())]

