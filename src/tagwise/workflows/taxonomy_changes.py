"""Change a live project's label set (issue 32): add, rename, merge, split, move and retire labels,
with a history and an exact undo.

One change is one write transaction (``Store.apply_label_change``) over everything that names labels:
the taxonomy (store meta), each source's ``annotated`` labels and its spec's ``labels/map``, the
examples' stored labels, people's annotations, corrections (old and new labels), LF definitions and
their votes; and, just before the commit, the label map in every saved model's ``model.json`` (so the
current model keeps serving under the new names without a retrain). The plan is computed inside the
transaction from what is stored at that moment, so two changes at once are serialized and neither is
lost.

Undo: the change's record (table ``taxonomy_changes``) keeps the whole prior row of every row it
rewrote or deleted, the prior text of each meta key and of each ``model.json``; ``undo`` puts those
back exactly (the label-bearing tables then dump byte-identical to before the change). It refuses,
changing nothing, when a rewritten row changed since, or when a judgement added since names a label
the undo would remove (undo that judgement first).

Semantics (what is positive / known afterwards):

- ``rename OLD NEW``: every judgement keeps its meaning under the new name; models are relabeled.
- ``merge A B --into C``: C is positive where any merged label was, and known for a source where any
  was known; a saved model serves C as the max of the merged heads (threshold: their min) until retrained.
- ``split A --into A1 A2``: the children are unknown on A's positives and known negatives where A was a
  known negative. With ``keep_parent`` A stays as their parent (the hierarchy rules of
  ``propagate_partial_labels`` carry A's negatives down). Without it A leaves the taxonomy: its
  positives become positives of A's parent (if any), and a source that annotated A annotates the
  children (its rows with A are unknown for them: ``Examples.unknown_labels``). A's positives are
  queued for labeling: a label-queue batch (``runs/<id>-suggest-*/batch.jsonl``, reason ``split:A``,
  each row with the children's zero-shot scores, ``zero_shot_scores``, and those above their cut as
  the guess) is written, which the label queue serves first, counting only judgements made after the
  split (an example a person labeled before comes back); ``split_examples`` returns them.
- ``add NAME``: unknown everywhere until labeled. ``move``: changes the parent only.
- ``retire NAME``: the label leaves the taxonomy (queues, training, exports) and models' outputs; its
  definition is kept in meta ``retired_labels`` and every rewritten row in the change's record.
- A label's known-ness is kept when the hierarchy changes: a label a source covered before (directly or
  by annotating all its children) stays annotated by it.
- Audit runs made before the latest change are stale (``stale_audit_runs``); meta
  ``taxonomy_changed_at`` holds the time.

A person's judgement speaks for the labels that existed when it was made: after ``add`` the new label
is unknown on examples people labeled before, after ``split`` the children are unknown where that
judgement had A (``annotations.labels_unknown_after_changes``, applied by ``Project.examples``).

Until retrained, the current model predicts (``predict``, ``tagwise serve``) zero-shot scores for the
labels it was not trained on (``with_zero_shot_labels``); ``evaluate`` scores it on the labels it knows.
"""
from __future__ import annotations

import json

import numpy as np

from .._io import atomic_write_json, atomic_write_text, utc_now
from ..annotations import resolve_training_labels
from ..project import Project
from ..store import judgement_content
from ..taxonomy import Taxonomy
from ..types import TagwiseError

TRAIN_SUGGESTED = ("rename", "merge", "retire")
_DROP = object()


# -- pure helpers --------------------------------------------------------------------------------
def _map_list(names, mapping: dict[str, list[str]]) -> list[str]:
    """Label names -> mapped names (a name maps to a list: [] drops it), order kept, deduplicated."""
    out: list[str] = []
    for n in names:
        for m in mapping.get(n, [n]):
            if m not in out:
                out.append(m)
    return out


def _map_json_list(raw: str | None, mapping) -> str | None:
    """A stored labels JSON -> the mapped JSON, or None when nothing changes (keeps the row's bytes)."""
    if raw is None:
        return None
    names = json.loads(raw)
    new = _map_list(names, mapping)
    return None if new == names else json.dumps(new, ensure_ascii=False)


def _map_definition(obj, mapping):
    """An LF definition with every ``label`` (str) and ``labels`` (list) mapped; ``_DROP`` when its only
    label is dropped."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "label" and isinstance(v, str):
                new = mapping.get(v, [v])
                if not new:
                    return _DROP
                out[k] = new[0]
            elif k == "labels" and isinstance(v, list) and all(isinstance(x, str) for x in v):
                out[k] = _map_list(v, mapping)
            else:
                sub = _map_definition(v, mapping)
                out[k] = v if sub is _DROP else sub
        return out
    if isinstance(obj, list):
        return [x for x in (_map_definition(v, mapping) for v in obj) if x is not _DROP]
    return obj


def _map_spec(spec: dict, old_annotated: list[str], mapping) -> dict:
    """A source's stored spec with ``labels/map`` sending its labels to the new names: mapped targets
    are rewritten, and a source label that reached the taxonomy unmapped under a changed name gets an
    entry (so re-ingesting the spec lands on the new names)."""
    spec = json.loads(json.dumps(spec))
    raw = spec.get("raw")
    if not isinstance(raw, dict):
        return spec
    labels = raw.get("labels") if isinstance(raw.get("labels"), dict) else None
    if labels is None:
        return spec
    mp = dict(labels.get("map") or {})
    targets = set()
    for key, target in list(mp.items()):
        if target is None:
            continue
        names = [str(t) for t in target] if isinstance(target, list) else [str(target)]
        targets.update(names)
        new = _map_list(names, mapping)
        if new != names:
            mp[key] = None if not new else (new[0] if len(new) == 1 and not isinstance(target, list) else new)
    for name in old_annotated:
        if name in mapping and name not in targets and name not in mp:
            new = mapping[name]
            mp[name] = None if not new else (new[0] if len(new) == 1 else new)
    if mp != (labels.get("map") or {}):
        labels["map"] = mp
    return spec


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TagwiseError(f"{what} is {name!r}: a label name must be non-empty text.")
    return name.strip()


# -- the taxonomy itself -----------------------------------------------------------------------------
def _remove_label(t: Taxonomy, name: str, parent: str | None) -> None:
    """Take ``name`` out of ``t`` (split without its parent, retire): its children move up to ``parent``
    (None: they become roots) and its description, examples and sub-labels go."""
    t.labels.remove(name)
    t.parents = {c: (parent if p == name else p) for c, p in t.parents.items() if c != name}
    t.parents = {c: p for c, p in t.parents.items() if p is not None}
    for d in (t.descriptions, t.examples, t.sub_labels):
        d.pop(name, None)


def _plan_taxonomy(tax: Taxonomy, kind: str, a: dict, where: str):
    """-> (new taxonomy, lists mapping, known mapping (LFs), annotated mapping (sources' annotated labels),
    model mapping {output: new name | _DROP}, retired {name: record}). Raises ``TagwiseError`` on a bad
    request."""
    t = Taxonomy.from_dict(json.loads(json.dumps(tax.to_dict())))
    have = set(t.labels)

    def need(name):
        if name not in have:
            raise TagwiseError(f"{where}: no label {name!r} in the taxonomy. Fix: pick one of "
                               f"`tagwise taxonomy show` ({', '.join(t.labels[:12])}{'...' if len(t.labels) > 12 else ''}).")
        return name

    def fresh(name, what):
        name = _check_name(name, what)
        if name in have:
            raise TagwiseError(f"{where}: a label named {name!r} already exists. Fix: choose another name.")
        return name

    def rename_keys(d: dict, old: str, new: str) -> dict:
        return {(new if k == old else k): v for k, v in d.items()}

    lists: dict[str, list[str]] = {}
    known: dict[str, list[str]] = {}
    model: dict[str, object] = {}
    retired: dict[str, dict] = {}
    annotated: dict[str, list[str]] | None = None  # None: as ``known``
    if kind == "add":
        name = fresh(a["name"], "NAME")
        t.labels.append(name)
        if a.get("parent"):
            t.parents[name] = need(a["parent"])
        if a.get("description"):
            t.descriptions[name] = str(a["description"])
    elif kind == "rename":
        old, new = need(a["old"]), fresh(a["new"], "NEW")
        t.labels = [new if n == old else n for n in t.labels]
        t.parents = {(new if c == old else c): (new if p == old else p) for c, p in t.parents.items()}
        t.descriptions, t.examples, t.sub_labels = (rename_keys(d, old, new) for d in
                                                    (t.descriptions, t.examples, t.sub_labels))
        lists = known = {old: [new]}
        model = {old: new}
    elif kind == "merge":
        merged = [need(n) for n in dict.fromkeys(a["labels"])]
        into = _check_name(a["into"], "--into")
        if len(merged) < 2 and into in merged:
            raise TagwiseError(f"{where}: merge needs at least two labels (or one label into another).")
        gone = [n for n in merged if n != into]
        if into not in have:
            t.labels.insert(t.labels.index(merged[0]), into)
            parent = next((t.parents[n] for n in merged if n in t.parents and t.parents[n] not in gone), None)
            if parent:
                t.parents[into] = parent
            descs = [f"{n}: {t.descriptions[n]}" for n in merged if t.descriptions.get(n)]
            t.descriptions[into] = f"Merged from {', '.join(merged)}." + (f" {' '.join(descs)}" if descs else "")
        subs = list(t.sub_labels.get(into, []))
        for n in gone:
            subs += [s for s in [n, *t.sub_labels.get(n, [])] if s not in subs and s != into]
            if t.examples.get(n):
                t.examples[into] = list(t.examples.get(into, [])) + list(t.examples[n])
        if subs:
            t.sub_labels[into] = subs
        for n in gone:
            t.labels.remove(n)
            for d in (t.descriptions, t.examples, t.sub_labels):
                d.pop(n, None)
        t.parents = {c: (into if p in gone else p) for c, p in t.parents.items() if c not in gone}
        t.parents = {c: p for c, p in t.parents.items() if c != p}
        lists = known = {n: [into] for n in gone}
        model = {n: into for n in gone}
    elif kind == "split":
        label = need(a["label"])
        kids = [fresh(n, "--into") for n in dict.fromkeys(a["into"])]
        if len(kids) < 1:
            raise TagwiseError(f"{where}: split needs --into with at least one new label.")
        parent = t.parents.get(label)
        at = t.labels.index(label) + 1
        t.labels[at:at] = kids
        for k in kids:
            if a.get("keep_parent"):
                t.parents[k] = label
            elif parent:
                t.parents[k] = parent
        if not a.get("keep_parent"):
            _remove_label(t, label, parent)
            lists, known = {label: [parent] if parent else []}, {label: []}
            # a source that annotated A annotates its children: A's negatives are theirs (A's positives
            # are unknown for them, per row: ``annotations.labels_unknown_after_changes``)
            annotated = {label: kids}
            model = {label: _DROP}
    elif kind == "move":
        name = need(a["name"])
        if a.get("parent"):
            p = need(a["parent"])
            if p == name or name in t.ancestors(p):
                raise TagwiseError(f"{where}: {p!r} is {name!r} or below it; moving {name!r} under it makes a cycle.")
            t.parents[name] = p
        else:
            t.parents.pop(name, None)
    elif kind == "retire":
        name = need(a["name"])
        parent = t.parents.get(name)
        retired[name] = {"parent": parent, "description": t.descriptions.get(name),
                         "children": t.children(name), "retired_at": utc_now()}
        _remove_label(t, name, parent)
        lists, known = {name: [parent] if parent else []}, {name: []}
        model = {name: _DROP}
    else:
        raise TagwiseError(f"unknown taxonomy change {kind!r}")
    t.validate(where)
    return t, lists, known, known if annotated is None else annotated, model, retired


# -- the whole change ------------------------------------------------------------------------------
def _plan(kind: str, a: dict, where: str):
    def plan(meta: dict, rows: dict) -> dict:
        old_tax = Taxonomy.from_dict(meta.get("taxonomy") or {})
        tax, lists, known, annotated_map, model, retired = _plan_taxonomy(old_tax, kind, a, where)
        changes: dict[str, dict] = {t: {} for t in rows}
        for rowid, r in rows["examples"].items():
            new = _map_json_list(r["labels"], lists)
            if new is not None:
                changes["examples"][rowid] = {"labels": new}
        for rowid, r in rows["annotations"].items():
            new = _map_json_list(r["labels"], lists)
            if new is not None:
                upd = {"labels": new}
                if r["content"] is not None:
                    upd["content"] = judgement_content(json.loads(new))
                changes["annotations"][rowid] = upd
        for rowid, r in rows["corrections"].items():
            upd = {c: v for c in ("old_labels", "new_labels") if (v := _map_json_list(r[c], lists)) is not None}
            if upd:
                changes["corrections"][rowid] = upd
        for rowid, r in rows["sources"].items():
            annotated = json.loads(r["annotated"])
            new = _map_list(annotated, annotated_map)
            # a label the source covered before (itself or all its children) stays known for it
            covered_before = old_tax.covered(annotated)
            after = tax.covered(new)
            new += [n for n in tax.labels if n in covered_before and n not in after and n not in new]
            upd = {}
            if new != annotated:
                upd["annotated"] = json.dumps(new, ensure_ascii=False)
            spec = json.loads(r["spec"])
            new_spec = _map_spec(spec, annotated, lists)
            if new_spec != spec:
                upd["spec"] = json.dumps(new_spec, ensure_ascii=False, default=str)
            if upd:
                changes["sources"][rowid] = upd
        for rowid, r in rows["lfs"].items():
            definition = json.loads(r["definition"])
            new = _map_definition(definition, known)  # a vote on a dropped label is not its parent's
            if new is _DROP:
                new = definition  # an LF of a dropped label keeps its definition; its votes go
            if new != definition:
                changes["lfs"][rowid] = {"definition": json.dumps(new, ensure_ascii=False, default=str)}
        seen_cells = set()
        for rowid, r in rows["lf_votes"].items():
            targets = known.get(r["label"], [r["label"]])
            if not targets:
                changes["lf_votes"][rowid] = None
                continue
            label, col = targets[0], r["col"]
            if label != r["label"] and col.endswith(f":{r['label']}"):
                col = col[: -len(r["label"])] + label
            if (r["lf"], col, r["example"]) in seen_cells:  # two merged columns of one LF: keep the first vote
                changes["lf_votes"][rowid] = None
                continue
            seen_cells.add((r["lf"], col, r["example"]))
            if (label, col) != (r["label"], r["col"]):
                changes["lf_votes"][rowid] = {"label": label, "col": col}
        new_meta = {"taxonomy": tax.to_dict(), "taxonomy_changed_at": utc_now()}
        if retired:
            new_meta["retired_labels"] = {**(meta.get("retired_labels") or {}), **retired}
        result = {"labels_before": len(old_tax.labels), "labels_after": len(tax.labels),
                  "rows_rewritten": {t: len(c) for t, c in changes.items() if c}, "model_map": {
                      k: (None if v is _DROP else v) for k, v in model.items()},
                  # judgements up to this annotation id predate the change (labels_unknown_after_changes)
                  "last_annotation": max(rows["annotations"], default=0)}
        if kind == "merge":
            result["into_new"] = a["into"] not in old_tax.labels
        if kind == "split":
            label = a["label"]
            names = {label, *old_tax.descendants(label)}  # A's positives: A or any label below it
            people: dict[int, list[dict]] = {}
            for r in rows["annotations"].values():
                if r["undone_at"] is None and not r["origin"].startswith("ingest:"):
                    people.setdefault(r["example"], []).append({**r, "labels": json.loads(r["labels"])})
            # the judgements (people's and a crowd source's) that had A: not judgements on its children
            result["annotations_with_label"] = sorted(int(i) for i, r in rows["annotations"].items()
                                                      if names & set(json.loads(r["labels"])))
            stored = {int(i): json.loads(r["labels"]) for i, r in rows["examples"].items()}
            # the examples whose training labels (a person's judgement, else the stored labels) have A
            result["queued"] = sorted(e for e in set(stored) | set(people)
                                      if names & set(resolve_training_labels(stored.get(e), people.get(e, [])) or []))
        return {"meta": new_meta, "rows": changes, "result": result}

    return plan


def _model_files(project: Project):
    """(rewrite(result, prior), restore(prior)) for every saved model's ``model.json``."""

    def folders():
        d = project.models_dir
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and (p / "model.json").is_file()) if d.is_dir() else []

    def rewrite(result: dict, prior: dict) -> dict:
        mapping = {k: (_DROP if v is None else v) for k, v in result.get("model_map", {}).items()}
        if not mapping:
            return prior
        for folder in folders():
            text = (folder / "model.json").read_text(encoding="utf-8")
            doc = json.loads(text)
            info = doc.get("info") or {}
            labels = list(info.get("labels") or [])
            if not any(n in mapping for n in labels):
                continue
            cols = info.get("head_columns") or [[k] for k in range(len(labels))]
            new_labels, new_cols = [], []
            for name, c in zip(labels, cols):
                target = mapping.get(name, name)
                if target is _DROP:
                    continue
                if target in new_labels:
                    new_cols[new_labels.index(target)] += [k for k in c if k not in new_cols[new_labels.index(target)]]
                else:
                    new_labels.append(target)
                    new_cols.append(list(c))
            info["labels"] = new_labels
            if new_cols == [[k] for k in range(len(new_cols))] and len(new_cols) == len(cols) \
                    and "head_columns" not in info:
                info.pop("head_columns", None)  # a plain rename: the head's columns are unchanged
            else:
                info["head_columns"] = new_cols
            doc["info"] = info
            prior[folder.name] = text
            atomic_write_json(folder / "model.json", doc)
        return prior

    def restore(prior: dict) -> None:
        for name, text in prior.items():
            path = project.models_dir / name / "model.json"
            if path.parent.is_dir():
                atomic_write_text(path, text)

    return rewrite, restore


def change_taxonomy(project: Project, kind: str, **args) -> dict:
    """Make one change (``kind``: add, rename, merge, split, move, retire; ``args`` as the CLI's) in one
    transaction. Returns ``{"id", "kind", "args", "created_at", "result", "train_suggested",
    "queued_batch"}`` (``result["queued"]``: the store ids a split queued)."""
    where = f"{project.path}: taxonomy {kind}"
    rewrite, restore = _model_files(project)
    change = project.store.apply_label_change(kind, args, _plan(kind, args, where), files=rewrite,
                                              restore_files=restore)
    change["train_suggested"] = kind in TRAIN_SUGGESTED
    change["queued_batch"] = _queue_split(project, change) if kind == "split" else None
    return change


def add_label(project: Project, name: str, parent: str | None = None, description: str | None = None) -> dict:
    return change_taxonomy(project, "add", name=name, parent=parent, description=description)


def rename_label(project: Project, old: str, new: str) -> dict:
    return change_taxonomy(project, "rename", old=old, new=new)


def merge_labels(project: Project, labels: list[str], into: str) -> dict:
    return change_taxonomy(project, "merge", labels=list(labels), into=into)


def split_label(project: Project, label: str, into: list[str], keep_parent: bool = False) -> dict:
    return change_taxonomy(project, "split", label=label, into=list(into), keep_parent=bool(keep_parent))


def move_label(project: Project, name: str, parent: str | None) -> dict:
    return change_taxonomy(project, "move", name=name, parent=parent)


def retire_label(project: Project, name: str) -> dict:
    return change_taxonomy(project, "retire", name=name)


def history(project: Project) -> list[dict]:
    """Every recorded change, oldest first: ``{"id", "kind", "args", "created_at", "undone_at", "result"}``."""
    return project.store.label_changes()


def undo(project: Project, to: int | None = None) -> list[dict]:
    """Undo the latest active change, or change ``to`` and every later one; returns those undone."""
    where = f"{project.path}: taxonomy undo"
    _, restore = _model_files(project)
    before = set(project.taxonomy.labels)

    def check(meta: dict, rows: dict) -> None:
        vanished = before - set(Taxonomy.from_dict(meta.get("taxonomy") or {}).labels)
        if not vanished:
            return
        for table, col in (("examples", "labels"), ("annotations", "labels")):
            for rowid, r in rows[table].items():
                if table == "annotations" and r["undone_at"] is not None:
                    continue
                hit = vanished & set(json.loads(r[col]))
                if hit:
                    raise TagwiseError(f"{where}: {table} row {rowid} names {sorted(hit)}, which the undo removes "
                                       f"(labeled after the change). Nothing was undone. Fix: undo those "
                                       f"judgements first (`tagwise labels undo`), then undo the change.")

    return project.store.undo_label_changes(to, where, check=check, files=restore)


def split_examples(project: Project, change: int | None = None) -> list[int]:
    """Store ids a split queued for labeling (the latest active split, or change ``change``) that no
    person has labeled since."""
    splits = [c for c in history(project) if c["kind"] == "split" and c["undone_at"] is None
              and (change is None or c["id"] == change)]
    if not splits:
        return []
    c = splits[-1]
    last = c["result"].get("last_annotation")  # judgements after this id came after the split

    def after(a):
        return a["id"] > last if last is not None else a["created_at"] >= c["created_at"]

    labeled = {a["example"] for a in project.store.annotations(people_only=True)
               if after(a) and set(c["args"]["into"]) & set(a["labels"])}
    return [e for e in c["result"].get("queued", []) if e not in labeled]


ZERO_SHOT_CORPUS = 2000  # project texts (a seeded sample) that standardise the zero-shot scores of new labels


def zero_shot_head(project: Project, encoder: str | None = None):
    """A ``ZeroShotClassifier`` over every label of the taxonomy (``label_names_``), from their names,
    descriptions and examples, standardised over a seeded sample of the project's texts (so each text's
    scores are centred over the whole label set, as in ``train --zero-shot``)."""
    from ..learn.lowlabel import fit_zero_shot

    tax = project.taxonomy
    encoder = encoder or project.default_encoder
    embed = lambda t: project.embed_texts(list(t), encoder, progress=False)[0]  # noqa: E731
    ex = project.store.examples()
    if len(ex) > ZERO_SHOT_CORPUS:
        keep = np.sort(np.random.default_rng(0).choice(len(ex), ZERO_SHOT_CORPUS, replace=False))
        corpus = [ex.texts[i] for i in keep]
    else:
        corpus = list(ex.texts)
    return fit_zero_shot(tax.labels, embed(corpus), embed, descriptions=tax.descriptions, examples=tax.examples,
                         sub_labels=tax.zero_shot_sub_labels())


def zero_shot_scores(project: Project, names: list[str], texts: list[str], encoder: str | None = None) -> np.ndarray:
    """(len(texts), len(names)) zero-shot probabilities (``learn.zeroshot``: 0.5 is each label's cut) of
    ``names``, labels of the taxonomy no model was trained on yet (added or split off), by
    ``zero_shot_head``."""
    encoder = encoder or project.default_encoder
    model = zero_shot_head(project, encoder)
    P = model.predict_proba(project.embed_texts(list(texts), encoder, progress=False)[0]) if texts \
        else np.zeros((0, len(model.label_names_)))
    return np.asarray(P, dtype=np.float64)[:, [model.label_names_.index(n) for n in names]]


def changes_stamp(project: Project) -> tuple[int, int]:
    """Moves with every taxonomy change and undo (what a long-lived predictor checks before each batch)."""
    return project.store.label_changes_stamp()


def introduced_labels(project: Project) -> list[str]:
    """The labels the active taxonomy changes brought in (added, split off; under their current names),
    in taxonomy order."""
    names: set[str] = set()
    for c in history(project):
        if c["undone_at"] is not None:
            continue
        kind, a = c["kind"], c["args"]
        if kind == "add":
            names.add(a["name"])
        elif kind == "split":
            names.update(a["into"])
        elif kind == "rename" and a["old"] in names:
            names.discard(a["old"])
            names.add(a["new"])
        elif kind == "merge":
            if set(a["labels"]) & names:
                names.add(a["into"])
            names -= set(a["labels"]) - {a["into"]}
        elif kind == "retire":
            names.discard(a["name"])
    return [n for n in project.taxonomy.labels if n in names]


def with_zero_shot_labels(project: Project, loaded):
    """``loaded`` (a ``LoadedModel``) serving, besides its own labels, zero-shot scores for the labels the
    taxonomy changes brought in that it was not trained on (``introduced_labels``), until retrained:
    the same ``LoadedModel`` when there are none, else a copy whose head is ``learn.zeroshot.
    WithZeroShotLabels`` and whose ``info["labels"]`` lists them after its own (``info["zero_shot_labels"]``)."""
    from dataclasses import replace

    from ..learn.zeroshot import WithZeroShotLabels

    new = [n for n in introduced_labels(project) if n not in set(loaded.labels)]
    if not new:
        return loaded
    zs = zero_shot_head(project, loaded.encoder)
    head = WithZeroShotLabels(loaded.head, zs, [zs.label_names_.index(n) for n in new])
    info = {**loaded.info, "labels": loaded.labels + new, "zero_shot_labels": new}
    return replace(loaded, head=head, info=info)


def _queue_split(project: Project, change: dict) -> str | None:
    """A label-queue batch of the split label's positives (reason ``split:<label>``), each with the new
    labels' zero-shot scores and, as the guess, those above their cut (and the kept parent)."""
    ids = change["result"].get("queued", [])
    if not ids:
        return None
    ex = project.store.examples()
    row_of = {int(i): r for r, i in enumerate(ex.ids.tolist())}
    label, kids = change["args"]["label"], change["args"]["into"]
    ids = [e for e in ids if e in row_of]
    try:
        P = zero_shot_scores(project, kids, [ex.texts[row_of[e]] for e in ids])
    except (TagwiseError, ImportError, OSError):  # the change is made; the queue goes without a guess
        P = np.full((len(ids), len(kids)), np.nan)
    parent = [label] if change["args"].get("keep_parent") else []
    rows = []
    for e, p in zip(ids, P):
        i = row_of[e]
        scores = {k: round(float(v), 4) for k, v in zip(kids, p) if np.isfinite(v)}
        rows.append({"example_id": str(ex.example_ids[i]), "source": str(ex.sources[i]), "split": str(ex.splits[i]),
                     "text": ex.texts[i], "score": 1.0, "reason": f"split:{label}",
                     "predicted": parent + [k for k in kids if scores.get(k, 0.0) >= 0.5], "scores": scores,
                     "store_id": int(e), "after_annotation": int(change["result"].get("last_annotation") or 0)})
    run = project.new_run("suggest", {"budget": len(rows), "by": f"taxonomy split {change['id']}"})
    atomic_write_text(run / "batch.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows))
    return run.name


def stale_audit_runs(project: Project) -> list[str]:
    """Audit runs made before the latest taxonomy change (their label names and figures are out of date)."""
    at = project.store.get_meta("taxonomy_changed_at")
    if not at:
        return []
    stamp = at.replace("-", "").replace(":", "").replace("T", "-")
    return [r.name for r in project.runs("audit") if r.name[:15] < stamp]



def labels_for_model(examples, taxonomy: Taxonomy, names) -> list[list[str] | None]:
    """``examples.labels`` in a model's label set: a label the model does not know (added or split off
    after it was trained) counts as its nearest ancestor the model knows, else is left out (so an
    older model is evaluated on what it predicts, not refused)."""
    known = set(names)

    def lift(name: str) -> str | None:
        if name in known:
            return name
        return next((a for a in taxonomy.ancestors(name) if a in known), None)

    out = []
    for lab in examples.labels:
        if lab is None or all(n in known for n in lab):
            out.append(lab)
        else:
            out.append(list(dict.fromkeys(x for x in map(lift, lab) if x is not None)))
    return out


def change_summary(change: dict) -> dict:
    """A change for a person or a JSON answer: the store ids it queued as a count (``n_queued``), without
    the ids of the judgements it records (``annotations_with_label``)."""
    result = {k: v for k, v in (change.get("result") or {}).items() if k not in ("queued", "annotations_with_label")}
    if "queued" in (change.get("result") or {}):
        result["n_queued"] = len(change["result"]["queued"])
    return {**change, "result": result}


def label_tree(taxonomy: Taxonomy) -> list[dict]:
    """The taxonomy as a tree, roots first in taxonomy order: ``[{"name", "depth", "parent",
    "description", "children": [...]}]``."""

    def node(name: str, depth: int, seen: frozenset) -> dict:
        kids = [c for c in taxonomy.children(name) if c not in seen]  # a cycle cannot pass validate; still safe
        return {"name": name, "depth": depth, "parent": taxonomy.parents.get(name),
                "description": taxonomy.descriptions.get(name, ""),
                "children": [node(c, depth + 1, seen | {c}) for c in kids]}

    return [node(r, 0, frozenset({r})) for r in taxonomy.roots()]


def taxonomy_overview(project: Project) -> dict:
    """What the taxonomy page shows: ``{"labels": [{"name", "parent", "depth", "description",
    "positives", "known", "unknown"}] (tree order), "tree": label_tree, "retired": {name: record},
    "history": history (newest first), "to_label": [{"change", "label", "into", "open"}] (the active
    splits' examples nobody labeled since), "stale_audit_runs"}``. ``positives``/``known``: labeled
    examples where the label holds / is known (after the hierarchy rules), ``unknown``: labeled examples
    where it is not known."""
    from ..learn.multisource import partial_targets

    tax = project.taxonomy
    ex = project.examples(labeled=True)
    if len(ex):
        Y, known = partial_targets(ex, tax)
        pos = ((Y >= 0.5) & known).sum(axis=0)
        kn = known.sum(axis=0)
    else:
        pos = kn = [0] * len(tax.labels)
    counts = {n: (int(pos[k]), int(kn[k])) for k, n in enumerate(tax.labels)}
    tree = label_tree(tax)
    rows: list[dict] = []

    def walk(nodes):
        for n in nodes:
            p, k = counts[n["name"]]
            rows.append({"name": n["name"], "parent": n["parent"], "depth": n["depth"],
                         "description": n["description"], "positives": p, "known": k, "unknown": len(ex) - k})
            walk(n["children"])

    walk(tree)
    changes = history(project)
    to_label = [{"change": c["id"], "label": c["args"]["label"], "into": c["args"]["into"],
                 "open": len(split_examples(project, c["id"]))}
                for c in changes if c["kind"] == "split" and c["undone_at"] is None]
    return {"labels": rows, "tree": tree, "n_labeled": len(ex),
            "retired": project.store.get_meta("retired_labels") or {},
            "history": [change_summary(c) for c in changes[::-1]],
            "to_label": to_label, "stale_audit_runs": stale_audit_runs(project)}
