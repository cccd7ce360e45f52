"""The project's embedded store: one SQLite file, every change in one transaction.

SQLite gives atomic, durable commits without a server: a process killed mid-ingest leaves the
previous state intact (the WAL is rolled back on next open).
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from ._io import utc_now
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
CREATE TABLE IF NOT EXISTS lfs (
    name TEXT PRIMARY KEY, origin TEXT NOT NULL, kind TEXT NOT NULL, version TEXT NOT NULL,
    definition TEXT NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lf_votes (
    lf TEXT NOT NULL, col TEXT NOT NULL, label TEXT NOT NULL, example INTEGER NOT NULL,
    text_key INTEGER NOT NULL, vote INTEGER NOT NULL, PRIMARY KEY (lf, col, example));
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY, example INTEGER NOT NULL, labels TEXT NOT NULL, annotator TEXT NOT NULL,
    origin TEXT NOT NULL, created_at TEXT NOT NULL, undone_at TEXT, content TEXT);
CREATE INDEX IF NOT EXISTS annotations_example ON annotations(example);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS taxonomy_changes (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, args TEXT NOT NULL, created_at TEXT NOT NULL,
    undone_at TEXT, result TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
    example INTEGER NOT NULL, annotator TEXT NOT NULL, assigned_at REAL NOT NULL,
    PRIMARY KEY (example, annotator));
"""

# An imported judgement is keyed by (example, annotator, content): importing a file again, or twice
# at once, stores each judgement once. ``content`` is the sorted label names as JSON, set on imported
# rows only (a person relabeling an example in the web app always adds a row: the latest one decides).
# Created after ``_migrate`` has added the column to a store made before it existed.
IMPORT_KEY_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS annotations_import_key ON annotations(example, annotator, "
                    "content) WHERE content IS NOT NULL AND undone_at IS NULL")


def judgement_content(labels) -> str:
    """The content key of a judgement: its label names, deduplicated and sorted, as JSON."""
    return json.dumps(sorted(set(labels)), ensure_ascii=False)


def _signed(keys: np.ndarray) -> list[int]:
    """uint64 keys -> Python ints that fit SQLite's signed 64-bit INTEGER."""
    return keys.view(np.int64).tolist()


BUSY_TIMEOUT_S = 60.0


class OverlapReached(TagwiseError):
    """An example already has its ``cap`` judgements from other people (``add_annotations(cap=...)``)."""


class Store:
    """Examples, sources, taxonomy and corrections in ``PROJECT/tagwise.db``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # explicit transactions only; a writer waits up to BUSY_TIMEOUT_S for another one to finish
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store made by an earlier version up to this schema, in one write transaction (two
        processes opening an old store at once migrate it once).

        - ``annotations.content`` (the import key): filled for the active imported rows; where the same
          judgement was imported more than once (before imports were idempotent), the later copies are
          marked undone, as if the re-import had added nothing; the count is kept in ``meta``
          (``migrations``)."""
        if "content" not in {r[1] for r in self.conn.execute("PRAGMA table_info(annotations)")}:
            with self.transaction() as conn:
                if "content" not in {r[1] for r in conn.execute("PRAGMA table_info(annotations)")}:
                    conn.execute("ALTER TABLE annotations ADD COLUMN content TEXT")
                    seen, doubles, now = set(), [], utc_now()
                    for aid, example, annotator, labels in conn.execute(
                            "SELECT id, example, annotator, labels FROM annotations WHERE origin LIKE 'import:%' "
                            "AND undone_at IS NULL ORDER BY id").fetchall():
                        key = (example, annotator, judgement_content(json.loads(labels)))
                        if key in seen:
                            doubles.append(aid)
                            continue
                        seen.add(key)
                        conn.execute("UPDATE annotations SET content=? WHERE id=?", (key[2], aid))
                    conn.executemany("UPDATE annotations SET undone_at=? WHERE id=?", ((now, a) for a in doubles))
                    done = self.get_meta("migrations", {})
                    done["annotations_import_key"] = {"at": now, "double_imports_undone": len(doubles)}
                    self.set_meta("migrations", done, conn)
                    conn.execute(IMPORT_KEY_INDEX)
        self.conn.execute(IMPORT_KEY_INDEX)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: an exception (or a kill) rolls every statement back."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TagwiseError(f"{self.path}: another tagwise command has been writing to this project for "
                                   f"over {BUSY_TIMEOUT_S:.0f}s. Fix: wait for it to finish, then run this "
                                   f"command again.") from None
            raise
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

    def add_source(self, rows: SourceRows, spec_record: dict, *, replace: bool, where: str,
                   judgements: list[tuple[int, str, list[str]]] | None = None) -> list[str]:
        """Insert one source's rows and extend the taxonomy, atomically. Returns new label names.

        The taxonomy is read and extended inside the write transaction, so two processes adding
        sources at once both keep their labels. ``judgements``: the source's own per-annotator labels
        ``(row position in rows, annotator, label names)``, stored as annotations of origin ``ingest:<source>``
        in the same transaction (a replaced source's earlier ones are dropped).
        """
        label_names = list(rows.annotated_labels)
        seen = set(label_names)
        for labels in rows.labels:
            for n in labels or ():
                if n not in seen:
                    seen.add(n)
                    label_names.append(n)
        keys = _signed(text_keys(rows.texts))
        with self.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM sources WHERE name=?", (rows.name,)).fetchone() is not None
            if exists and not replace:
                raise TagwiseError(f"{where}: a source named {rows.name!r} already exists in this project. "
                                   f"Fix: give the spec another 'name', or pass --replace to re-ingest it.")
            taxonomy = self.taxonomy()
            new_labels = taxonomy.extend(label_names, where)
            if exists:
                conn.execute("DELETE FROM annotations WHERE origin=?", (f"ingest:{rows.name}",))
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
                          json.dumps(rows.annotated_labels, ensure_ascii=False), len(rows), utc_now()))
            self.set_meta("taxonomy", taxonomy.to_dict(), conn)
            if judgements:
                # rows were inserted in order, so the source's ids in ascending order are its rows' ids. Keyed
                # by example_id alone, two split files' items with the same id got each other's judgements.
                store_id = [i for (i,) in conn.execute("SELECT id FROM examples WHERE source=? ORDER BY id",
                                                       (rows.name,))]
                now = utc_now()
                conn.executemany("INSERT INTO annotations(example, labels, annotator, origin, created_at) "
                                 "VALUES (?,?,?,?,?)",
                                 ((store_id[int(e)], json.dumps(list(labels), ensure_ascii=False), str(a),
                                   f"ingest:{rows.name}", now) for e, a, labels in judgements))
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

    # -- corrections -------------------------------------------------------
    def find_examples(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str | None]]:
        """(source, source's example id) -> (store id, labels JSON or None) for the keys that exist."""
        wanted = set(keys)
        out = {}
        for i, s, e, lab in self.conn.execute("SELECT id, source, example_id, labels FROM examples"):
            if (s, e) in wanted:
                out[(s, e)] = (i, lab)
        return out

    def example_records(self, ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
        """store id -> (source, source's example id, labels JSON or None) for the ids that exist."""
        out = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            for row in self.conn.execute(f"SELECT id, source, example_id, labels FROM examples WHERE id IN "
                                         f"({','.join('?' * len(chunk))})", chunk):
                out[row[0]] = row[1:]
        return out

    def example_info(self, ids) -> dict[int, dict]:
        """store id -> ``{"source", "language", "text"}`` for the ids that exist (a page's rows, not the
        whole table)."""
        ids = sorted({int(i) for i in ids})
        out = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            for row in self.conn.execute(f"SELECT id, source, language, text FROM examples WHERE id IN "
                                         f"({','.join('?' * len(chunk))})", chunk):
                out[row[0]] = {"source": row[1], "language": row[2], "text": row[3]}
        return out

    def set_labels(self, updates: dict[int, list[str] | None], batch: str, reason: str = "",
                   expected: dict[int, str | None] | None = None) -> int:
        """Replace labels of store ids, recording old and new in ``corrections`` (one transaction).

        expected: store id -> the labels JSON the caller saw; checked inside the write transaction, so
        a concurrent change is refused (``TagwiseError``) instead of being overwritten or mis-recorded.
        """
        if not updates:
            return 0
        ids = list(updates)
        now = utc_now()
        with self.transaction() as conn:
            old = {}
            for i in range(0, len(ids), 900):
                chunk = ids[i:i + 900]
                old.update(conn.execute(f"SELECT id, labels FROM examples WHERE id IN "
                                        f"({','.join('?' * len(chunk))})", chunk).fetchall())
            unknown = [i for i in ids if i not in old]
            if unknown:
                raise TagwiseError(f"corrections name example ids not in the project: {unknown[:5]}")
            if expected is not None:
                moved = [i for i in ids if i in expected and old[i] != expected[i]]
                if moved:
                    raise TagwiseError(f"the labels of {len(moved)} example(s) (store ids {moved[:5]}) changed while "
                                       f"the corrections were being applied; nothing was changed. Fix: re-run "
                                       f"`tagwise audit` and apply the new file.")
            for ex_id, labels in updates.items():
                new = None if labels is None else json.dumps(list(labels), ensure_ascii=False)
                conn.execute("INSERT INTO corrections(batch, example, old_labels, new_labels, reason, created_at)"
                             " VALUES (?,?,?,?,?,?)", (batch, ex_id, old[ex_id], new, reason, now))
                conn.execute("UPDATE examples SET labels=? WHERE id=?", (new, ex_id))
        return len(updates)

    def correction_batches(self) -> list[dict]:
        """Applied batches, oldest first: ``{"batch", "n", "created_at", "undone_at", "reason"}``."""
        rows = self.conn.execute(
            "SELECT batch, COUNT(*), MIN(created_at), MAX(undone_at), MAX(reason), MIN(id) FROM corrections "
            "GROUP BY batch ORDER BY MIN(id)").fetchall()
        return [{"batch": b, "n": n, "created_at": c, "undone_at": u, "reason": r} for b, n, c, u, r, _ in rows]

    def undo_batches(self, choose, where: str) -> list[str]:
        """Undo correction batches atomically. ``choose(active batch names, oldest first) -> names to undo``
        runs inside the write transaction, so two undos at once cannot undo the same batch twice.
        Restores each example's exact previous labels; refuses (and changes nothing) when an example
        changed outside the corrections history. Returns the batches undone."""
        now = utc_now()
        with self.transaction() as conn:
            active = [b for (b,) in conn.execute("SELECT batch FROM corrections GROUP BY batch "
                                                 "HAVING MAX(undone_at) IS NULL ORDER BY MIN(id)")]
            targets = choose(active)
            for batch in reversed(targets):
                rows = conn.execute("SELECT id, example, old_labels, new_labels FROM corrections WHERE batch=? "
                                    "ORDER BY id DESC", (batch,)).fetchall()
                for cid, example, old, new in rows:
                    current = conn.execute("SELECT labels FROM examples WHERE id=?", (example,)).fetchone()
                    if current is None or current[0] != new:
                        raise TagwiseError(f"{where}: example {example} changed after batch {batch} outside the "
                                           f"corrections history; refusing to overwrite it. Nothing was undone.")
                    conn.execute("UPDATE examples SET labels=? WHERE id=?", (old, example))
                    conn.execute("UPDATE corrections SET undone_at=? WHERE id=?", (now, cid))
        return targets

    # -- labeling-function votes (sparse: only non-abstain cells are stored) ----------------------
    def replace_lf_votes(self, origin: str, lfs: list[dict], cells) -> None:
        """Make ``lfs`` the whole set of LFs of ``origin``, atomically: every LF of that origin and
        its votes are deleted first, so an LF removed from the file leaves no stale votes.

        lfs: [{"name", "kind", "version", "definition"}]; cells: iterable of
        (lf name, column name, label, store example id, vote +1/-1). Each vote keeps its example's
        text key, so a vote whose example was re-ingested under the same id is recognised as stale.
        """
        now = utc_now()
        with self.transaction() as conn:
            old = [r[0] for r in conn.execute("SELECT name FROM lfs WHERE origin=?", (origin,))]
            new_names = [lf["name"] for lf in lfs]
            clash = conn.execute(f"SELECT name, origin FROM lfs WHERE origin<>? AND name IN "
                                 f"({','.join('?' * len(new_names))})", [origin, *new_names]).fetchall() \
                if new_names else []
            if clash:
                raise TagwiseError(f"LF {clash[0][0]!r} already exists from {clash[0][1]!r}. "
                                   f"Fix: rename it in {origin!r}.")
            for name in old:
                conn.execute("DELETE FROM lf_votes WHERE lf=?", (name,))
            conn.execute("DELETE FROM lfs WHERE origin=?", (origin,))
            conn.executemany("INSERT INTO lfs(name, origin, kind, version, definition, applied_at) "
                             "VALUES (?,?,?,?,?,?)",
                             ((lf["name"], origin, lf["kind"], lf["version"],
                               json.dumps(lf.get("definition", {}), ensure_ascii=False, default=str), now)
                              for lf in lfs))
            conn.executemany("INSERT INTO lf_votes(lf, col, label, example, text_key, vote) "
                             "SELECT ?, ?, ?, id, text_key, ? FROM examples WHERE id=?",
                             ((lf, col, label, vote, example) for lf, col, label, example, vote in cells))

    def lfs(self) -> list[dict]:
        rows = self.conn.execute("SELECT name, origin, kind, version, definition, applied_at FROM lfs "
                                 "ORDER BY applied_at, name").fetchall()
        return [{"name": n, "origin": o, "kind": k, "version": v, "definition": json.loads(d), "applied_at": t}
                for n, o, k, v, d, t in rows]

    def lf_vote_cells(self) -> list[tuple[str, str, str, int, int]]:
        """Stored votes as (lf, column, label, store example id, vote), by LF then example; votes
        whose example is gone or now holds another text (re-ingested source) are left out."""
        return self.conn.execute("SELECT v.lf, v.col, v.label, v.example, v.vote FROM lf_votes v "
                                 "JOIN examples e ON e.id = v.example AND e.text_key = v.text_key "
                                 "ORDER BY v.lf, v.col, v.example").fetchall()

    # -- annotations (issue 17): every label a person gives, never a silent overwrite ---------------
    def add_annotations(self, rows: list[tuple[int, list[str], str, str]], where: str,
                        cap: int | None = None, since: int = 0) -> list[int]:
        """Insert ``(store id, label names, annotator, origin)`` rows in one transaction; returns their ids.

        Unknown store ids raise ``TagwiseError`` (naming ``where``) and insert nothing. Two writers
        annotating the same example both keep their row: annotations are only ever appended.
        cap: refuse (``OverlapReached``, nothing inserted) a row whose example already has ``cap`` other
        people's active judgements (a reviewer's decision, origin ``adjudication``, is not one); checked
        inside the write transaction, so two people saving at once cannot both pass it. since: count only
        judgements after this annotation id (an example a taxonomy split queued again).
        """
        now = utc_now()
        with self.transaction() as conn:
            self._check_examples_exist(conn, [r[0] for r in rows], where)
            out = []
            for example, labels, annotator, origin in rows:
                if cap is not None:
                    others = conn.execute("SELECT COUNT(DISTINCT annotator) FROM annotations WHERE example=? AND "
                                          "undone_at IS NULL AND origin <> 'adjudication' AND annotator <> ? AND id > ?",
                                          (int(example), annotator, int(since))).fetchone()[0]
                    if others >= cap:
                        raise OverlapReached(f"{where}: example {example} already has {others} judgements from other "
                                             f"people (overlap {cap}); nothing was saved. Skip it (S) for the next one.")
                cur = conn.execute("INSERT INTO annotations(example, labels, annotator, origin, created_at) "
                                   "VALUES (?,?,?,?,?)",
                                   (int(example), json.dumps(list(labels), ensure_ascii=False), annotator, origin, now))
                out.append(int(cur.lastrowid))
        return out

    def import_annotations(self, rows: list[tuple[int, list[str], str, str]], where: str) -> tuple[list[int], int]:
        """Insert imported ``(store id, label names, annotator, origin)`` judgements once each, in one
        transaction: a judgement already stored (same example, annotator and labels, in any order;
        imported before, from any file, and not undone) is skipped. Two imports of one file at once
        store it once. Returns ``(ids of the new rows, how many were already stored)``.

        Unknown store ids raise ``TagwiseError`` (naming ``where``) and insert nothing.
        """
        now = utc_now()
        with self.transaction() as conn:
            self._check_examples_exist(conn, [r[0] for r in rows], where)
            new = []
            for example, labels, annotator, origin in rows:
                cur = conn.execute("INSERT OR IGNORE INTO annotations(example, labels, annotator, origin, created_at, "
                                   "content) VALUES (?,?,?,?,?,?)",
                                   (int(example), json.dumps(list(labels), ensure_ascii=False), annotator, origin,
                                    now, judgement_content(labels)))
                if cur.rowcount:
                    new.append(int(cur.lastrowid))
        return new, len(rows) - len(new)

    @staticmethod
    def _check_examples_exist(conn: sqlite3.Connection, store_ids, where: str) -> None:
        ids = sorted({int(i) for i in store_ids})
        have = set()
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            have.update(x for (x,) in conn.execute(
                f"SELECT id FROM examples WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        missing = [i for i in ids if i not in have]
        if missing:
            raise TagwiseError(f"{where}: example ids {missing[:5]} are not in this project; nothing was "
                               f"imported. Fix: use the ids the project's suggest/queue gave.")

    def annotations(self, examples: list[int] | None = None, include_undone: bool = False,
                    origin: str | None = None, people_only: bool = False) -> list[dict]:
        """Annotations, oldest first: ``{"id", "example", "labels", "annotator", "origin", "created_at",
        "undone_at"}`` (optionally only of some store ids, of one origin, or only those people gave,
        leaving out a source's own ingested judgements, origin ``ingest:<source>``)."""
        where, params = [], []
        if not include_undone:
            where.append("undone_at IS NULL")
        if origin is not None:
            where.append("origin=?")
            params.append(origin)
        if people_only:
            where.append("origin NOT LIKE 'ingest:%'")
        sql = ("SELECT id, example, labels, annotator, origin, created_at, undone_at FROM annotations"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id")
        rows = self.conn.execute(sql, params).fetchall()
        if examples is not None:
            wanted = set(int(e) for e in examples)
            rows = [r for r in rows if r[1] in wanted]
        return [{"id": i, "example": e, "labels": json.loads(lab), "annotator": a, "origin": o, "created_at": c,
                 "undone_at": u} for i, e, lab, a, o, c, u in rows]

    def annotation(self, annotation_id: int) -> dict | None:
        """One annotation (undone or not) by id, as ``annotations`` gives them; None if there is none."""
        row = self.conn.execute("SELECT id, example, labels, annotator, origin, created_at, undone_at FROM annotations "
                                "WHERE id=?", (int(annotation_id),)).fetchone()
        if row is None:
            return None
        i, e, lab, a, o, c, u = row
        return {"id": i, "example": e, "labels": json.loads(lab), "annotator": a, "origin": o, "created_at": c,
                "undone_at": u}

    def annotation_records(self, source: str | None = None, ids: bool = False) -> list[tuple]:
        """Active annotations joined to their examples: ``(store example id, annotator, label names,
        source)`` in insertion order (a source's ingested judgements and people's labels alike); with
        ``ids``, also the annotation's ``{"id", "example", "created_at"}``."""
        sql = ("SELECT a.example, a.annotator, a.labels, e.source, a.id, a.created_at FROM annotations a JOIN "
               "examples e ON e.id = a.example WHERE a.undone_at IS NULL" + (" AND e.source=?" if source else "")
               + " ORDER BY a.id")
        rows = self.conn.execute(sql, (source,) if source else ())
        if ids:
            return [(i, ann, json.loads(lab), src, {"id": aid, "example": i, "created_at": at})
                    for i, ann, lab, src, aid, at in rows]
        return [(i, ann, json.loads(lab), src) for i, ann, lab, src, _, _ in rows]

    def undo_annotation(self, annotation_id: int | None, annotator: str | None, where: str) -> dict:
        """Mark one annotation undone (the given id, or ``annotator``'s latest active one); returns it."""
        with self.transaction() as conn:
            if annotation_id is None:
                row = conn.execute("SELECT id FROM annotations WHERE undone_at IS NULL AND annotator=? "
                                   "ORDER BY id DESC LIMIT 1", (annotator,)).fetchone()
                if row is None:
                    raise TagwiseError(f"{where}: {annotator!r} has no annotation to undo.")
                annotation_id = row[0]
            row = conn.execute("SELECT undone_at FROM annotations WHERE id=?", (int(annotation_id),)).fetchone()
            if row is None:
                raise TagwiseError(f"{where}: no annotation {annotation_id}.")
            if row[0] is not None:
                raise TagwiseError(f"{where}: annotation {annotation_id} was already undone at {row[0]}.")
            conn.execute("UPDATE annotations SET undone_at=? WHERE id=?", (utc_now(), int(annotation_id)))
        return next(a for a in self.annotations(include_undone=True) if a["id"] == int(annotation_id))

    # -- users of `tagwise serve` (issue 28): only a token's sha256 is stored ------------------------
    def add_user(self, name: str, role: str, token_sha256: str, where: str) -> dict:
        """Insert one user; a name that exists raises ``TagwiseError`` (naming ``where``) and changes nothing."""
        now = utc_now()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is not None:
                raise TagwiseError(f"{where}: a user named {name!r} already exists. Fix: pick another name, or "
                                   f"`tagwise users remove {where} {name}` first (that also revokes the old link).")
            conn.execute("INSERT INTO users(name, role, token_sha256, created_at) VALUES (?,?,?,?)",
                         (name, role, token_sha256, now))
        return {"name": name, "role": role, "created_at": now}

    def users(self) -> list[dict]:
        """Every user, by name: ``{"name", "role", "token_sha256", "created_at"}``."""
        rows = self.conn.execute("SELECT name, role, token_sha256, created_at FROM users ORDER BY name").fetchall()
        return [{"name": n, "role": r, "token_sha256": h, "created_at": c} for n, r, h, c in rows]

    def remove_user(self, name: str) -> bool:
        """Delete one user (their annotations stay, under their name); False if there was none."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM users WHERE name=?", (name,)).rowcount > 0

    # -- assignments (issue 28): which person holds which queued example, so overlap K means K people ----
    def _queue_state(self, conn: sqlite3.Connection, examples: list[int], since: dict | None = None) -> tuple[dict, dict]:
        """-> (leases {example: {annotator: assigned_at (epoch s)}}, judged {example: {annotator}} from the
        active annotations; a reviewer's decision, origin ``adjudication``, is not a judgement) for ``examples``.
        since: {example: annotation id}: only later judgements count for it (a taxonomy split queued it again)."""
        leases: dict[int, dict[str, float]] = {}
        judged: dict[int, set[str]] = {}
        for i in range(0, len(examples), 900):
            chunk = [int(e) for e in examples[i:i + 900]]
            marks = ",".join("?" * len(chunk))
            for e, a, t in conn.execute(f"SELECT example, annotator, assigned_at FROM assignments WHERE example IN "
                                        f"({marks})", chunk):
                leases.setdefault(e, {})[a] = t
            for i_, e, a in conn.execute(f"SELECT id, example, annotator FROM annotations WHERE undone_at IS NULL AND "
                                         f"origin <> 'adjudication' AND example IN ({marks})", chunk):
                if since is None or i_ > since.get(e, 0):
                    judged.setdefault(e, set()).add(a)
        return leases, judged

    def queue_state(self, examples: list[int], since: dict | None = None) -> tuple[dict, dict]:
        """Read-only ``_queue_state``: who holds and who has judged each of ``examples``."""
        return self._queue_state(self.conn, list(examples), since)

    def lease_examples(self, annotator: str, examples: list[int], choose, now: float,
                       since: dict | None = None) -> list[int]:
        """Give ``annotator`` the examples ``choose(leases, judged) -> [example]`` picks, atomically: the
        state is read and the leases written in one write transaction, so two people asking at once
        cannot both take the last open place of an example. Among ``examples``, the person keeps only the
        new picks (a later request replaces an earlier one's leases). Returns the picks (leases renewed)."""
        with self.transaction() as conn:
            leases, judged = self._queue_state(conn, examples, since)
            picks = [int(e) for e in choose(leases, judged)]
            drop = [int(e) for e in examples if annotator in leases.get(int(e), {}) and int(e) not in set(picks)]
            for i in range(0, len(drop), 900):
                chunk = drop[i:i + 900]
                conn.execute(f"DELETE FROM assignments WHERE annotator=? AND example IN ({','.join('?' * len(chunk))})",
                             [annotator, *chunk])
            conn.executemany("INSERT OR REPLACE INTO assignments(example, annotator, assigned_at) VALUES (?,?,?)",
                             ((e, annotator, now) for e in picks))
        return picks

    def release_example(self, example: int, annotator: str) -> bool:
        """Drop ``annotator``'s lease on ``example``; whether there was one."""
        with self.transaction() as conn:
            cur = conn.execute("DELETE FROM assignments WHERE example=? AND annotator=?", (int(example), annotator))
        return cur.rowcount > 0

    # -- columns at scale (issue 20) ------------------------------------------
    # ``examples()`` builds Python objects per row (about 1 KB each), which stops fitting in memory
    # around 10M examples; these read one column straight into numpy, a chunk of rows at a time.
    def example_text_keys(self, chunk_rows: int = 1_000_000) -> np.ndarray:
        """(n,) uint64 content keys (``text_keys`` of each text) of every example, in store order."""
        parts = []
        cur = self.conn.execute("SELECT text_key FROM examples ORDER BY id")
        while rows := cur.fetchmany(chunk_rows):
            parts.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        return (np.concatenate(parts) if parts else np.zeros(0, np.int64)).view(np.uint64)

    def label_matrix(self, label_names, chunk_rows: int = 1_000_000, sparse: bool = False):
        """Every example's labels, in store order, as (n, K) uint8 (or a scipy CSR matrix if ``sparse``).

        Columns follow ``label_names``; labels outside it are ignored and unlabeled rows stay zero, as
        in ``Examples.label_matrix``. Label lists repeat a lot, so each distinct JSON string is parsed
        once. The dense matrix costs n*K bytes; pass ``sparse=True`` when that does not fit.
        """
        from scipy.sparse import csr_matrix

        column = {name: k for k, name in enumerate(label_names)}
        parsed: dict[str, list[int]] = {}
        indptr, indices, done = [np.zeros(1, np.int64)], [], 0
        cur = self.conn.execute("SELECT labels FROM examples ORDER BY id")
        while rows := cur.fetchmany(chunk_rows):
            cols = []
            for (raw,) in rows:
                c = parsed.get(raw) if raw is not None else ()
                if c is None:
                    c = parsed[raw] = sorted({column[x] for x in json.loads(raw) if x in column})
                cols.append(c)
            lengths = np.fromiter(map(len, cols), dtype=np.int64, count=len(cols))
            indptr.append(indptr[-1][-1] + np.cumsum(lengths))
            indices.append(np.fromiter((k for c in cols for k in c), dtype=np.int32, count=int(lengths.sum())))
            done += len(rows)
        Y = csr_matrix((np.ones(sum(map(len, indices)), np.uint8), np.concatenate(indices or [np.zeros(0, np.int32)]),
                        np.concatenate(indptr)), shape=(done, len(column)))
        return Y if sparse else Y.toarray()

    # -- taxonomy changes (issue 32) -------------------------------------------------
    def apply_label_change(self, kind: str, args: dict, plan, files=None, restore_files=None) -> dict:
        """Run one taxonomy change as one write transaction and record it for ``undo_label_changes``.

        plan(meta: {key: value or None}, rows: ``_label_rows``) -> {"meta": {key: new value}, "rows":
        {table: {rowid: {column: new value} or None to delete}}, "result": JSON-able summary}; it runs
        inside the transaction on what is stored now, so two changes at once are serialized and neither is
        lost. files(result, prior) rewrites files (the models' label maps) just before the commit, filling
        ``prior`` {name: prior text} as it goes (kept in the record); restore_files(prior) puts them back
        when the transaction does not commit.
        The record keeps, for every row rewritten, the prior and new values of the columns rewritten, and
        the whole row of every row deleted (``before`` / ``after``).
        Returns ``{"id", "kind", "args", "created_at", "result"}``.
        """
        now = utc_now()
        prior_files: dict = {}
        try:
            return self._apply_label_change(kind, args, plan, files, now, prior_files)
        except BaseException:
            if prior_files and restore_files is not None:  # the commit did not happen: put the files back
                restore_files(prior_files)
            raise

    def _apply_label_change(self, kind, args, plan, files, now, prior_files: dict) -> dict:
        with self.transaction() as conn:
            meta = {k: self.get_meta(k) for k in LABEL_META_KEYS}
            current = _label_rows(conn)
            out = plan(meta, current)
            before = {"meta": {}, "rows": {}, "files": {}}
            after = {"meta": {}, "rows": {}}
            for key, value in out.get("meta", {}).items():
                if key not in LABEL_META_KEYS:
                    raise ValueError(f"a label change may not set meta {key!r}")
                row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
                before["meta"][key] = None if row is None else row[0]
                self.set_meta(key, value, conn)
                after["meta"][key] = json.dumps(value)
            for table, changes in out.get("rows", {}).items():
                if not changes:
                    continue
                # an update keeps only the columns it rewrote (old and new); a delete keeps the whole row
                deleted = _full_rows(conn, table, [r for r, new in changes.items() if new is None])
                updates_before, updates_after = [], []
                for rowid, new in changes.items():
                    if new is None:
                        conn.execute(f"DELETE FROM {table} WHERE rowid=?", (int(rowid),))
                    else:
                        updates_before.append([rowid, {c: current[table][rowid][c] for c in new}])
                        updates_after.append([rowid, dict(new)])
                        conn.execute(f"UPDATE {table} SET {', '.join(f'{c}=?' for c in new)} WHERE rowid=?",
                                     (*new.values(), int(rowid)))
                before["rows"][table] = {"update": updates_before, "delete": [[r, row] for r, row in deleted.items()]}
                after["rows"][table] = {"update": updates_after, "delete": sorted(deleted)}
            result = out.get("result", {})
            if files is not None:
                before["files"] = files(result, prior_files)
            cur = conn.execute("INSERT INTO taxonomy_changes(kind, args, created_at, undone_at, result, before, after) "
                               "VALUES (?,?,?,?,?,?,?)",
                               (kind, json.dumps(args, ensure_ascii=False), now, None,
                                json.dumps(result, ensure_ascii=False), json.dumps(before, ensure_ascii=False),
                                json.dumps(after, ensure_ascii=False)))
            change = {"id": int(cur.lastrowid), "kind": kind, "args": args, "created_at": now, "result": result}
        return change

    def label_changes(self) -> list[dict]:
        """Recorded taxonomy changes, oldest first: ``{"id", "kind", "args", "created_at", "undone_at", "result"}``."""
        return [{"id": i, "kind": k, "args": json.loads(a), "created_at": c, "undone_at": u, "result": json.loads(r)}
                for i, k, a, c, u, r in self.conn.execute(
                    "SELECT id, kind, args, created_at, undone_at, result FROM taxonomy_changes ORDER BY id")]


    def label_changes_stamp(self) -> tuple[int, int]:
        """(changes recorded, changes undone): moves with every taxonomy change and undo (a cheap check)."""
        n, undone = self.conn.execute("SELECT COUNT(*), COUNT(undone_at) FROM taxonomy_changes").fetchone()
        return int(n), int(undone)

    def undo_label_changes(self, to: int | None, where: str, check=None, files=None) -> list[dict]:
        """Undo the latest active taxonomy change, or with ``to`` that change and every later active one,
        newest first, in one write transaction: each rewritten row (and meta key) gets back its exact prior
        value. Refuses (``TagwiseError``, nothing changed) when a rewritten row changed since. check(meta,
        rows) runs on the restored state before the commit and may refuse; files(prior texts) puts back the
        rewritten files. Returns the changes undone (newest first)."""
        now = utc_now()
        with self.transaction() as conn:
            active = conn.execute("SELECT id, kind, args, before, after FROM taxonomy_changes WHERE undone_at IS NULL "
                                  "ORDER BY id DESC").fetchall()
            if not active:
                raise TagwiseError(f"{where}: no taxonomy change to undo.")
            if to is None:
                targets = active[:1]
            else:
                if int(to) not in {r[0] for r in active}:
                    raise TagwiseError(f"{where}: change {to} is not an active taxonomy change; active ones: "
                                       f"{sorted(r[0] for r in active)}. Fix: pick one from `tagwise taxonomy history`.")
                targets = [r for r in active if r[0] >= int(to)]
            restored_files: list[dict] = []
            for cid, kind, args, before_raw, after_raw in targets:
                before, after = json.loads(before_raw), json.loads(after_raw)
                for table, rows in after["rows"].items():
                    for rowid, cols in rows["update"]:
                        now_row = conn.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE rowid=?",
                                               (int(rowid),)).fetchone()
                        if now_row is None or list(now_row) != list(cols.values()):
                            raise TagwiseError(f"{where}: {table} row {rowid} changed after taxonomy change {cid} "
                                               f"({kind}); refusing to overwrite it. Nothing was undone.")
                    if _full_rows(conn, table, rows["delete"]):
                        raise TagwiseError(f"{where}: a {table} row that taxonomy change {cid} ({kind}) deleted exists "
                                           f"again; refusing to overwrite it. Nothing was undone.")
                for key, raw in before["meta"].items():
                    if raw is None:
                        conn.execute("DELETE FROM meta WHERE key=?", (key,))
                    else:
                        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, raw))
                for table, rows in before["rows"].items():
                    for rowid, cols in rows["update"]:
                        conn.execute(f"UPDATE {table} SET {', '.join(f'{c}=?' for c in cols)} WHERE rowid=?",
                                     (*cols.values(), int(rowid)))
                    _put_rows(conn, table, {r: row for r, row in rows["delete"]})
                conn.execute("UPDATE taxonomy_changes SET undone_at=? WHERE id=?", (now, cid))
                restored_files.append(before.get("files", {}))
            if check is not None:
                check({k: self.get_meta(k) for k in LABEL_META_KEYS}, _label_rows(conn))
            if files is not None:
                for prior in restored_files:  # newest first: the oldest change's prior texts are written last
                    files(prior)
        return [{"id": r[0], "kind": r[1], "args": json.loads(r[2])} for r in targets]

    def dump_label_tables(self) -> str:
        """Every label-bearing table and meta key as text, in rowid order (tests compare two dumps)."""
        lines = []
        for key in LABEL_META_KEYS:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            lines.append(f"meta {key} {row[0] if row else None}")
        for table in LABEL_TABLES:
            lines += [f"{table} {row!r}" for row in self.conn.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid")]
        return "\n".join(lines)



# -- taxonomy changes (issue 32): every row that names a label, rewritten in one transaction ----------
# table -> columns read for a label change (``rowid`` first; the full row, so a snapshot restores it exactly)
LABEL_TABLES: dict[str, tuple[str, ...]] = {
    "sources": ("name", "spec", "annotated", "n_examples", "added_at"),
    "examples": ("labels",),
    "annotations": ("example", "labels", "annotator", "origin", "created_at", "undone_at", "content"),
    "corrections": ("batch", "example", "old_labels", "new_labels", "reason", "created_at", "undone_at"),
    "lfs": ("name", "origin", "kind", "version", "definition", "applied_at"),
    "lf_votes": ("lf", "col", "label", "example", "text_key", "vote"),
}
# the meta keys a label change may rewrite (restored exactly by undo)
LABEL_META_KEYS = ("taxonomy", "retired_labels", "taxonomy_changed_at")


def _label_rows(conn: sqlite3.Connection) -> dict[str, dict[int, dict]]:
    """Every label-bearing row: ``{table: {rowid: {column: value}}}`` (examples: only labeled rows)."""
    out = {}
    for table, cols in LABEL_TABLES.items():
        where = " WHERE labels IS NOT NULL" if table == "examples" else ""
        out[table] = {r[0]: dict(zip(cols, r[1:])) for r in conn.execute(
            f"SELECT rowid, {', '.join(cols)} FROM {table}{where} ORDER BY rowid")}
    return out


def _full_rows(conn: sqlite3.Connection, table: str, rowids) -> dict[int, tuple]:
    """rowid -> the whole row (every column, in table order) for the rowids that exist."""
    out, rowids = {}, sorted(int(r) for r in rowids)
    for i in range(0, len(rowids), 900):
        chunk = rowids[i:i + 900]
        for row in conn.execute(f"SELECT rowid, * FROM {table} WHERE rowid IN ({','.join('?' * len(chunk))})", chunk):
            out[row[0]] = list(row[1:])
    return out


def _put_rows(conn: sqlite3.Connection, table: str, rows: dict[int, list | None]) -> None:
    """Make each rowid hold exactly the given whole row (None: no row)."""
    info = list(conn.execute(f"PRAGMA table_info({table})"))
    cols = [r[1] for r in info]
    # a single INTEGER PRIMARY KEY is the rowid itself (and is part of the row); other tables name it
    alias = sum(r[5] > 0 for r in info) == 1 and any(r[5] == 1 and r[2].upper() == "INTEGER" for r in info)
    names = ", ".join(cols) if alias else ", ".join(["rowid", *cols])
    for rowid in rows:
        conn.execute(f"DELETE FROM {table} WHERE rowid=?", (int(rowid),))
    for rowid, row in rows.items():
        if row is not None:
            values = tuple(row) if alias else (int(rowid), *row)
            conn.execute(f"INSERT INTO {table}({names}) VALUES ({', '.join('?' * len(values))})", values)
