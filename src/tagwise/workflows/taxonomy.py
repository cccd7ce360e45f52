"""Project-level taxonomy work: the label tree with the sources behind each label, and suggested
source-label -> taxonomy mappings (the signals themselves live in ``sources.harmonize``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..project import Project
from ..sources.harmonize import (SIGNALS, SourceLabels, centroid_similarity, combine, cooccurrence_scores,
                                 name_similarity)
from ..sources import ingest
from ..sources.spec import parse_spec
from ..text import normalize_text
from ..types import TagwiseError


def taxonomy_summary(project: Project) -> dict:
    """{"declared", "labels": [{"name", "parent", "description", "sources": [...]}]} for ``show``."""
    tax = project.taxonomy
    by_label: dict[str, list[str]] = {n: [] for n in tax.labels}
    for rec in project.store.sources():
        covered = tax.covered(rec["annotated"])
        for name in tax.labels:
            if name in covered:
                by_label[name].append(rec["name"])
    return {"declared": tax.declared,
            "labels": [{"name": n, "parent": tax.parents.get(n), "description": tax.descriptions.get(n),
                        "sources": by_label[n]} for n in tax.labels]}


def read_source_labels(project: Project, source: str) -> SourceLabels:
    """Re-read ``source``'s files with its spec minus ``labels/map`` to recover its own label names."""
    records = {s["name"]: s for s in project.store.sources()}
    if source not in records:
        raise TagwiseError(f"{project.path}: no source named {source!r}; have {sorted(records)}.")
    record = records[source]["spec"]
    raw = dict(record["raw"])
    label_raw = dict(raw.get("labels") or {})
    mapping = label_raw.pop("map", None) or {}
    raw["labels"] = label_raw
    spec_path = Path(record["spec_path"])
    spec = parse_spec(raw, spec_path)
    rows = ingest(spec)
    keep = [i for i, lab in enumerate(rows.labels) if lab is not None]
    names = list(rows.annotated_labels)
    current = {}
    for name in names:
        target = mapping.get(name, name)
        current[name] = [] if target is None else ([str(t) for t in target] if isinstance(target, list) else [str(target)])
    return SourceLabels(source=source, names=names, texts=[rows.texts[i] for i in keep],
                        labels=[rows.labels[i] for i in keep], current_map=current)


def suggest_for_source(project: Project, source: str, targets: list[str] | None = None, encoder: str | None = None,
                       _cache: dict | None = None) -> tuple[SourceLabels, list[str], dict[str, np.ndarray]]:
    """Signals for one source: returns (its labels, target names, {signal: (L, T) matrix})."""
    cache = _cache if _cache is not None else {}
    taxonomy = project.taxonomy
    mine = read_source_labels(project, source)
    if targets is None:
        targets = list(taxonomy.labels)
        if not taxonomy.declared:  # propose merges with *other* sources' labels
            others = set()
            for rec in project.store.sources():
                if rec["name"] != source:
                    others |= set(rec["annotated"])
            targets = [t for t in targets if t in others]
    if not targets:
        raise TagwiseError(f"{project.path}: nothing to map {source!r} onto: declare a taxonomy "
                           f"(`tagwise init --taxonomy`) or add another source.")

    def embed(texts):
        return project.embed_texts(list(texts), encoder, progress=False)[0]

    if "all" not in cache:
        cache["all"] = project.examples(labeled=True)
    ex = cache["all"]
    key = ("other", source)
    if key not in cache:
        rows = np.flatnonzero(ex.sources != source)
        cache[key] = rows
    rows = cache[key]
    other_labels = [ex.labels[i] for i in rows]
    # close other sources' labels upward so a family is represented by its children's texts too
    other_labels = [sorted(set(lab) | {a for n in lab for a in taxonomy.ancestors(n)}) for lab in other_labels]
    if "X_all" not in cache:
        cache["X_all"] = project.features(ex, encoder)
        cache["center"] = cache["X_all"].mean(axis=0)
    X_all = cache["X_all"]
    signals = {"name": name_similarity(mine.names, targets, taxonomy.descriptions, embed)}
    covered = {src: {n for lab in taxonomy.covered(names) for n in [lab, *taxonomy.ancestors(lab)]}
               for src, names in ex.annotated.items()}
    other_known = [covered.get(ex.sources[i], set()) for i in rows]
    signals["cooccurrence"] = cooccurrence_scores(
        mine.names, mine.texts, mine.labels, [normalize_text(ex.texts[i], social=True) for i in rows], other_labels,
        other_known, targets)
    if np.isnan(signals["cooccurrence"]).all():
        signals.pop("cooccurrence")
    X_mine = embed(mine.texts)
    signals["centroid"] = centroid_similarity(mine.names, X_mine, mine.labels, targets, X_all[rows],
                                              other_labels, cache["center"])
    return mine, targets, signals


def suggest_mappings(project: Project, sources: list[str] | None = None, top: int = 3, encoder: str | None = None,
                     use=SIGNALS) -> dict:
    """Proposed ``labels/map`` entries for every source label, best first.

    Returns ``{source: {source_label: {"current": [taxonomy labels] , "suggestions": [{"target",
    "score", "name", "cooccurrence", "centroid"}, ...]}}}`` (signals are None where unavailable).
    """
    names = sources or project.store.source_names()
    cache: dict = {}
    out: dict = {}
    for source in names:
        mine, targets, signals = suggest_for_source(project, source, encoder=encoder, _cache=cache)
        score = combine(signals, use)
        out[source] = {}
        for i, label in enumerate(mine.names):
            order = [j for j in np.argsort(-np.nan_to_num(score[i], nan=-1.0), kind="stable")][:top]
            out[source][label] = {
                "current": mine.current_map.get(label, []),
                "suggestions": [{"target": targets[j], "score": round(float(score[i, j]), 4),
                                 **{s: (None if s not in signals or np.isnan(signals[s][i, j])
                                        else round(float(signals[s][i, j]), 4)) for s in SIGNALS}}
                                for j in order]}
    return out


def evaluate_suggestions(project: Project, ekman_mapping: dict[str, list[str]] | None = None,
                         goemotions_source: str = "goemotions", encoder: str | None = None) -> dict:
    """Top-1 precision of suggestions against each source's declared map (and optionally Ekman).

    For every source label with a declared target, top-1 is correct when it is one of the declared
    targets. ``ekman_mapping`` ({group: [goemotions labels]}) restricts GoEmotions' targets to the
    Ekman groups (which must be taxonomy labels) and scores top-1 against the official grouping.
    Reported per signal combination, over all labels and over the renamed (non-identity) ones.
    """
    combos = {"name": ("name",), "name+cooccurrence": ("name", "cooccurrence"),
              "name+centroid": ("name", "centroid"), "all": SIGNALS}
    cache: dict = {}
    hits = {c: [] for c in combos}
    renamed_hits = {c: [] for c in combos}
    per_label = {}
    for source in project.store.source_names():
        mine, targets, signals = suggest_for_source(project, source, encoder=encoder, _cache=cache)
        for c, use in combos.items():
            score = combine(signals, use)
            for i, label in enumerate(mine.names):
                truth = mine.current_map.get(label) or []
                if not truth:
                    continue
                best = targets[int(np.argmax(np.nan_to_num(score[i], nan=-1.0)))]
                hits[c].append(best in truth)
                if truth != [label]:
                    renamed_hits[c].append(best in truth)
                if c == "all":
                    per_label[f"{source}:{label}"] = {"top1": best, "declared": truth}
    precision = {f"declared/{c}": round(float(np.mean(v)), 4) for c, v in hits.items()}
    precision.update({f"declared_renamed_only/{c}": round(float(np.mean(v)), 4) if v else None
                      for c, v in renamed_hits.items()})
    result = {"precision": precision, "n_labels": len(hits["all"]),
              "n_renamed": len(renamed_hits["all"]), "top1": per_label}
    if ekman_mapping:
        groups = list(ekman_mapping)
        truth_of = {lab: g for g, labs in ekman_mapping.items() for lab in labs}
        mine, _, signals = suggest_for_source(project, goemotions_source, targets=groups, encoder=encoder,
                                              _cache=cache)
        ekman_top = {}
        for c, use in combos.items():
            score = combine(signals, use)
            ok = []
            for i, label in enumerate(mine.names):
                if label in truth_of:
                    best = groups[int(np.argmax(np.nan_to_num(score[i], nan=-1.0)))]
                    ok.append(best == truth_of[label])
                    if c == "all":
                        ekman_top[label] = {"top1": best, "ekman": truth_of[label]}
            result["precision"][f"ekman/{c}"] = round(float(np.mean(ok)), 4)
        result["ekman_top1"] = ekman_top
        result["n_ekman_labels"] = len(ekman_top)
    return result
