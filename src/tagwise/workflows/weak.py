"""Weak supervision at project level: apply / import LF votes, analyse LFs, soft training targets.

- ``apply_lfs(project, lfs_yaml)``: run the YAML's LFs over every example and store their votes
  (sparse, with each LF's version). The file is the whole set of YAML LFs: an LF removed from it
  loses its stored votes on the next apply.
- ``import_votes(project, wrench_file)``: store published WRENCH ``weak_labels`` for the project's
  examples with the same texts.
- ``analyze_lfs(project)``: Snorkel's LFAnalysis per LF and label: coverage, overlaps, conflicts,
  empirical accuracy on labeled examples, plus the label model's estimated accuracy.
- ``weak_training_targets(project)``: the one function ``tagwise train --weak`` needs: a probability
  per (example, label) from the label model, with gold labels winning where present.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..encoders.cache import text_keys
from ..learn.labelmodel import WeakLabelModel
from ..project import Project
from ..learn.lfs import LFContext, apply_lfs as run_lfs, load_lfs, read_wrench, wrench_to_votes
from ..types import TagwiseError

YAML_ORIGIN = "yaml"


def _store_votes(project: Project, origin: str, lf_records: list[dict], lf_votes, example_ids) -> int:
    V = lf_votes.votes.tocoo()
    cells = [(lf_votes.columns[j][0].split(":")[0], lf_votes.columns[j][0], lf_votes.columns[j][1],
              int(example_ids[i]), int(v)) for i, j, v in zip(V.row, V.col, V.data)]
    project.store.replace_lf_votes(origin, lf_records, cells)
    return len(cells)


def apply_lfs(project: Project, lfs_path: str | Path, *, skip_failing: bool = False,
              progress: bool = True) -> dict:
    """Apply the LF file to all examples and store the votes. Returns a summary dict:
    {"n_examples", "n_lfs", "n_votes", "columns", "failed": [{"lf", "example", "text", "error"}]}."""
    taxonomy = project.taxonomy
    lfs = load_lfs(lfs_path, taxonomy.labels)
    ex = project.examples()
    context = LFContext(
        embed=lambda texts: project.embed_texts(list(texts), progress=progress)[0],
        embed_with=lambda texts, encoder: project.embed_texts(list(texts), encoder=encoder, progress=progress)[0],
        label_names=list(taxonomy.labels), descriptions=dict(taxonomy.descriptions), label_examples=dict(taxonomy.examples),
        example_texts={str(e): t for e, t in zip(ex.example_ids, ex.texts)})
    votes = run_lfs(lfs, ex.texts, languages=ex.languages, ids=ex.example_ids, context=context,
                    skip_failing=skip_failing, progress=progress)
    applied = [lf for lf in lfs if lf.name in votes.versions]
    records = [{"name": lf.name, "kind": lf.kind, "version": lf.version,
                "definition": {"labels": lf.labels, "vote": lf.vote, "language": lf.language, **lf.params}}
               for lf in applied]
    n_votes = _store_votes(project, YAML_ORIGIN, records, votes, ex.ids)
    return {"n_examples": len(ex), "n_lfs": len(applied), "n_votes": n_votes,
            "columns": [c for c, _ in votes.columns], "failed": votes.failed}


def import_votes(project: Project, path: str | Path, lf_prefix: str | None = None) -> dict:
    """Store WRENCH ``weak_labels`` from ``path`` for the project's examples with the same text.

    Each WRENCH LF j becomes LF ``{prefix}_{j}`` voting its class's label (from ``label.json``)
    positive; the classes must be labels of the project. Re-importing the same file replaces its
    votes. Returns {"n_items", "n_matched_items", "n_examples", "n_votes", "lfs"}.
    """
    path = Path(path)
    data = read_wrench(path)
    known = set(project.taxonomy.labels)
    unknown = [c for c in data["class_names"] if c not in known]
    if unknown:
        raise TagwiseError(f"{path}: classes {unknown} (from label.json) are not labels of the project. "
                           f"Fix: ingest the dataset with these label names first, or rename them.")
    prefix = lf_prefix or f"{path.parent.name}"
    votes = wrench_to_votes(data["weak_labels"], data["class_names"], prefix)
    ex = project.examples()
    by_key: dict[int, list[int]] = {}
    for store_id, key in zip(ex.ids, text_keys(ex.texts)):
        by_key.setdefault(int(key), []).append(int(store_id))
    item_keys = text_keys([t.strip() for t in data["texts"]])  # ingest strips texts the same way
    # every project example with an item's text gets its votes; an example whose text occurs in
    # several items takes the first (LFs see only the text, so repeats vote alike)
    rows, targets, taken = [], [], set()
    for i, key in enumerate(item_keys):
        for store_id in by_key.get(int(key), ()):
            if store_id not in taken:
                taken.add(store_id)
                rows.append(i)
                targets.append(store_id)
    if not rows:
        raise TagwiseError(f"{path}: none of its {len(item_keys)} texts is in the project. Fix: add the "
                           f"dataset as a source first (`tagwise add-source`).")
    expanded = votes.votes[np.asarray(rows)]
    from ..learn.lfs import LFVotes

    lf_names = sorted({c.split(":")[0] for c, _ in votes.columns})
    records = [{"name": n, "kind": "imported", "version": "imported",
                "definition": {"file": str(path.resolve())}} for n in lf_names]
    n_votes = _store_votes(project, f"import:{path.resolve()}", records,
                           LFVotes(expanded.tocsr(), votes.columns, votes.versions), np.asarray(targets))
    n_matched = sum(int(k) in by_key for k in item_keys)
    return {"n_items": len(item_keys), "n_matched_items": n_matched, "n_examples": len(set(targets)),
            "n_votes": n_votes, "lfs": len(lf_names)}


# -- reading votes back ----------------------------------------------------------
def load_votes(project: Project) -> dict:
    """Stored votes over all examples in store order.

    Returns {"ids": (n,) store ids, "votes": (n, c) CSR int8, "columns": [column names],
    "column_lfs": [lf name per column], "lf_labels": (c,) index into label_names,
    "label_names": [K names], "examples": Examples}.
    """
    ex = project.examples()
    names = list(project.taxonomy.labels)
    label_index = {n: k for k, n in enumerate(names)}
    row_of = {int(i): r for r, i in enumerate(ex.ids)}
    cells = project.store.lf_vote_cells()
    columns, col_of, col_lf, col_label = [], {}, [], []
    rows, cols, data = [], [], []
    for lf, col, label, example, vote in cells:
        if label not in label_index or int(example) not in row_of:
            continue  # a label or example removed since: the vote has nothing to attach to
        if col not in col_of:
            col_of[col] = len(columns)
            columns.append(col)
            col_lf.append(lf)
            col_label.append(label_index[label])
        rows.append(row_of[int(example)])
        cols.append(col_of[col])
        data.append(vote)
    votes = sp.csr_matrix((np.asarray(data, dtype=np.int8), (np.asarray(rows, dtype=np.int64),
                                                             np.asarray(cols, dtype=np.int64))),
                          shape=(len(ex), len(columns)))
    return {"ids": ex.ids, "votes": votes, "columns": columns, "column_lfs": col_lf,
            "lf_labels": np.asarray(col_label, dtype=np.int64), "label_names": names, "examples": ex}


def _gold(ex, names, splits=None) -> np.ndarray:
    """(n, K) int8: 1 / 0 where the example's source annotates the label, -1 unknown / unlabeled
    (and for examples outside ``splits``, when given)."""
    K = len(names)
    G = np.full((len(ex), K), -1, dtype=np.int8)
    index = {n: k for k, n in enumerate(names)}
    for i, labels in enumerate(ex.labels):
        if labels is None or (splits is not None and ex.splits[i] not in splits):
            continue
        annotated = ex.annotated.get(ex.sources[i]) or frozenset(names)
        for n in annotated:
            if n in index:
                G[i, index[n]] = 0
        for n in labels:
            if n in index:
                G[i, index[n]] = 1
    return G


def _is_exclusive(G: np.ndarray) -> bool:
    """Single-label project: every labeled example has exactly one label (and there are some)."""
    labeled = (G >= 0).any(axis=1)
    return bool(labeled.any()) and bool(np.all((G[labeled] == 1).sum(axis=1) == 1))


def fit_label_model(project: Project, exclusive: bool | None = None, gold_splits=("train",), **params) -> dict:
    """Fit a WeakLabelModel on the stored votes. Gold labels of ``gold_splits`` (train only by
    default: dev and test stay out of training) anchor EM and give the class balance.

    Returns load_votes()'s dict plus "model", "gold" (n, K, gold of gold_splits) and "exclusive".
    """
    data = load_votes(project)
    if not data["columns"]:
        raise TagwiseError(f"{project.path}: no LF votes stored. Fix: run `tagwise lf apply` or "
                           f"`tagwise lf import` first.")
    names = data["label_names"]
    G = _gold(data["examples"], names, gold_splits)
    if exclusive is None:
        exclusive = _is_exclusive(_gold(data["examples"], names))
    balance = None
    known = G >= 0
    if len(names) and known.sum(axis=0).min() >= 5:
        balance = np.clip((G == 1).sum(axis=0) / np.maximum(known.sum(axis=0), 1), 0.005, 0.995)
        if exclusive:
            balance = balance / balance.sum()
    model = WeakLabelModel(n_labels=len(names), exclusive=exclusive, **params)
    model.fit(data["votes"], data["lf_labels"], class_balance=balance, gold=G)
    return {**data, "model": model, "gold": G, "exclusive": exclusive}


def analyze_lfs(project: Project) -> dict:
    """Per vote column (LF x label): Snorkel's LFAnalysis plus the label model's view.

    Returns {"n_examples", "exclusive", "lfs": [{"lf", "column", "label", "polarity", "version",
    "coverage", "overlaps", "conflicts", "n_labeled_votes", "empirical_accuracy",
    "estimated_accuracy", "weight"}], "report_markdown"}. Coverage / overlaps / conflicts are
    fractions of all examples: the LF votes; it votes and another LF votes the same label
    (exclusive projects: any label); it votes and another LF disagrees (opposite vote on the same
    label, or - exclusive - a positive vote for another label). Empirical accuracy is over labeled
    examples whose source annotates the label (None when there are none).
    """
    fitted = fit_label_model(project)
    V, lf_labels = fitted["votes"].tocsc(), fitted["lf_labels"]
    G = _gold(fitted["examples"], fitted["label_names"])  # every labeled example, for the analysis
    n, c = V.shape
    exclusive = fitted["exclusive"]
    versions = {lf["name"]: lf["version"] for lf in project.store.lfs()}
    model = fitted["model"]
    est = model.lf_accuracies_
    K = len(fitted["label_names"])
    Vr = fitted["votes"].tocsr()
    rows_idx = np.repeat(np.arange(n), np.diff(Vr.indptr))
    lab = lf_labels[Vr.indices]
    pos_per = np.bincount(rows_idx * K + lab, weights=(Vr.data > 0), minlength=n * K).reshape(n, K)
    neg_per = np.bincount(rows_idx * K + lab, weights=(Vr.data < 0), minlength=n * K).reshape(n, K)
    any_per = pos_per + neg_per
    total_votes = any_per.sum(axis=1)
    total_pos = pos_per.sum(axis=1)
    out = []
    for j in range(c):
        col = V[:, j]
        r, v = col.indices, col.data
        k = int(lf_labels[j])
        own = 1
        if exclusive:
            others = total_votes[r] - own
            conflict = np.where(v > 0, (total_pos[r] - pos_per[r, k]) + neg_per[r, k], pos_per[r, k] - 0) > 0
        else:
            others = any_per[r, k] - own
            conflict = np.where(v > 0, neg_per[r, k], pos_per[r, k]) > 0
        g = G[r, k]
        known = g >= 0
        correct = ((v > 0) & (g == 1)) | ((v < 0) & (g == 0))
        polarity = "positive" if (v > 0).sum() >= (v < 0).sum() else "negative"
        out.append({"lf": fitted["column_lfs"][j], "column": fitted["columns"][j],
                    "label": fitted["label_names"][k], "polarity": polarity,
                    "version": versions.get(fitted["column_lfs"][j]),
                    "coverage": round(len(r) / max(n, 1), 4), "overlaps": round(float((others > 0).sum()) / max(n, 1), 4),
                    "conflicts": round(float(conflict.sum()) / max(n, 1), 4), "n_labeled_votes": int(known.sum()),
                    "empirical_accuracy": round(float(correct[known].mean()), 4) if known.any() else None,
                    "estimated_accuracy": round(float(est[j]), 4), "weight": round(float(model.lf_weights_[j]), 4)})
    return {"n_examples": n, "exclusive": exclusive, "lfs": out, "report_markdown": _markdown(out, n)}


def _markdown(rows: list[dict], n: int) -> str:
    lines = [f"## Labeling functions ({len({r['lf'] for r in rows})} LFs, {len(rows)} vote columns, {n} examples)",
             "", "| LF | label | vote | coverage | overlaps | conflicts | emp. acc (n) | est. acc | weight |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        emp = "-" if r["empirical_accuracy"] is None else f"{r['empirical_accuracy']:.3f} ({r['n_labeled_votes']})"
        lines.append(f"| {r['column']} | {r['label']} | {r['polarity']} | {r['coverage']:.3f} | {r['overlaps']:.3f} | "
                     f"{r['conflicts']:.3f} | {emp} | {r['estimated_accuracy']:.3f} | {r['weight']:.2f} |")
    return "\n".join(lines) + "\n"


def weak_training_targets(project: Project, splits=("train", "unlabeled"), exclusive: bool | None = None) -> dict:
    """Soft targets for ``tagwise train --weak``: label-model probabilities, gold wins where present.

    Returns {"ids": (n,) store ids of the chosen splits' examples that have a target,
    "targets": (n, K) float32 in [0, 1], "mask": (n, K) bool (False = no information: no gold and no
    LF voted on that label (exclusive: no LF voted at all)), "label_names": [K], "exclusive": bool,
    "n_gold_cells", "n_weak_cells", "model": the fitted WeakLabelModel}.
    """
    fitted = fit_label_model(project, exclusive=exclusive)
    V, G, names = fitted["votes"], fitted["gold"], fitted["label_names"]
    P = fitted["model"].predict_proba(V)
    n, K = P.shape
    Vr = V.tocsr()
    rows_idx = np.repeat(np.arange(n), np.diff(Vr.indptr))
    voted = np.zeros((n, K), dtype=bool)
    voted[rows_idx, fitted["lf_labels"][Vr.indices]] = True
    if fitted["exclusive"]:
        voted = np.repeat(voted.any(axis=1, keepdims=True), K, axis=1)
    gold_known = G >= 0
    targets = np.where(gold_known, G == 1, P).astype(np.float32)
    mask = gold_known | voted
    in_split = np.isin(fitted["examples"].splits, list(splits)) & mask.any(axis=1)
    return {"ids": fitted["ids"][in_split], "targets": targets[in_split], "mask": mask[in_split],
            "label_names": names, "exclusive": fitted["exclusive"],
            "n_gold_cells": int((gold_known & in_split[:, None]).sum()),
            "n_weak_cells": int((voted & ~gold_known & in_split[:, None]).sum()), "model": fitted["model"]}
