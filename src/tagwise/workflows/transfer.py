"""Transfer evaluation of a project: train on one source (or all but one), test on the others.

The array-level pieces (holdouts, leak check, the macro-F1 over shared labels) live in
``evaluate.transfer``; this module fits the models on the project's embeddings and saves the run.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .._io import atomic_write_json
from ..evaluate.metrics import multilabel_report
from ..evaluate.transfer import (METRIC, covered_columns, source_columns, drop_test_overlap, holdout_splits,
                                 macro_f1)
from ..learn.multisource import MultiSourceLinear, partial_targets
from ..project import Project
from ..types import TagwiseError


def transfer_evaluation(project: Project, sources: list[str] | None = None, encoder: str | None = None,
                        test_frac: float = 0.2, seed: int = 0, model_params: dict | None = None,
                        progress: bool = True) -> dict:
    """Train-on-A / test-on-B matrix, leave-one-source-out and per-language macro-F1.

    project: an open ``Project`` with at least two labeled sources; sources: restrict to these;
    encoder: feature encoder (default: the project's); test_frac/seed: holdout for sources that
    have no test split; model_params: ``MultiSourceLinear`` parameters (defaults are fast).

    A source with test rows but no training rows (a test-only gold source) is a test column only: it
    is in no training set, and its rows are scored in the agnostic mode.

    Returns ``{"metric": "macro_f1", "matrix": {train_source: {test_source: value}}, "columns": every
    tested source, "test_only": [sources that are columns only], "leave_one_out": {source: value}, "languages": {lang: value}, "n_test": {source: n},
    "labels": {source: [label, ...]}, "modes": which prediction mode each figure used}``; a value
    is None where the two sides share no label.
    """
    examples = project.examples(labeled=True)
    taxonomy = project.taxonomy
    space = taxonomy.space
    names = sorted(set(examples.sources)) if sources is None else list(sources)
    missing = [s for s in names if s not in set(examples.sources)]
    if missing:
        raise TagwiseError(f"{project.path}: no labeled examples from source(s) {missing}; have "
                           f"{sorted(set(examples.sources))}.")
    if len(names) < 2:
        raise TagwiseError(f"{project.path}: transfer evaluation needs at least two labeled sources; "
                           f"have {names}. Fix: `tagwise add-source` another dataset.")
    examples = examples.subset(np.isin(examples.sources, names))
    splits = holdout_splits(examples, test_frac, seed)
    train = drop_test_overlap(examples.texts, splits)
    test = splits == "test"
    Y, known = partial_targets(examples, taxonomy, space)
    X = project.features(examples, encoder, progress=progress)
    A = taxonomy.ancestor_matrix(space)
    params = {"C": 4.0, "adapter_C": 1.0, "cv": 3, "max_iter": 100, **(model_params or {})}
    own_cols = {s: source_columns(examples, taxonomy, space, s) for s in names}

    trainable = [s for s in names if (train & (examples.sources == s) & known.any(axis=1)).any()]
    test_only = [s for s in names if s not in trainable]
    if not trainable:
        raise TagwiseError(f"{project.path}: none of the sources {names} has training rows with a known label "
                           f"(all are test-only). Fix: add a source with train rows, or pass --sources.")

    fitted: dict[tuple, MultiSourceLinear] = {}

    def fit(train_sources):
        key = tuple(sorted(train_sources))
        if key not in fitted:
            fitted[key] = _fit(train_sources)
        return fitted[key]

    def _fit(train_sources):
        rows = train & np.isin(examples.sources, train_sources)
        if not (known[rows].any()):
            raise TagwiseError(f"{project.path}: transfer: source(s) {list(train_sources)} have no training row with "
                               f"a known label (every label is masked). Fix: give them train rows, or leave them "
                               f"out with --sources.")
        try:
            return MultiSourceLinear(**params).fit(X[rows], Y[rows], examples.sources[rows], known[rows], A)
        except TagwiseError as exc:
            raise TagwiseError(f"{project.path}: transfer: training on source(s) {list(train_sources)}: {exc}") from None

    def score(model, test_source, train_sources):
        rows = test & (examples.sources == test_source)
        cols = np.intersect1d(own_cols[test_source], covered_columns(examples, taxonomy, space, train_sources))
        if not rows.any() or len(cols) == 0:
            return None
        # an unseen source gets the agnostic mode; a one-source model's only calibration is its source's
        mode = (test_source if test_source in model.sources_
                else model.sources_[0] if len(model.sources_) == 1 else "agnostic")
        modes_used.setdefault(train_key(train_sources), {})[test_source] = mode
        value = macro_f1(Y[rows], model.predict(X[rows], source=mode), cols)
        return None if np.isnan(value) else round(float(value), 4)

    modes_used: dict[str, dict[str, str]] = {}
    train_key = lambda srcs: "+".join(srcs) if len(srcs) < len(trainable) else "all"  # noqa: E731
    jobs = len(trainable) + len(names) + 1
    bar = tqdm(total=jobs, desc="transfer", disable=not progress)
    matrix: dict[str, dict[str, float | None]] = {}
    for a in trainable:  # a test-only source is a column, never a row
        model = fit([a])
        matrix[a] = {b: score(model, b, [a]) for b in names}
        bar.update()
    leave_one_out = {}
    for b in names:
        others = [s for s in trainable if s != b]
        leave_one_out[b] = score(fit(others), b, others) if others else None
        bar.update()
    full = fit(trainable)
    bar.update()
    bar.close()
    languages = {}
    langs = examples.languages.astype(str)
    # a test-only source has no mode of its own: its rows are scored in the agnostic mode
    pred = full.predict(X[test], source=[s if s in full.sources_ else "agnostic" for s in examples.sources[test]])
    for lang in sorted(set(langs[test])):
        rows = langs[test] == lang
        cols = np.unique(np.concatenate([own_cols[s] for s in set(examples.sources[test][rows])]))
        # per-source cells outside a row's own schema are unknown: score only known cells
        sub_known = known[test][rows][:, cols]
        rep = multilabel_report(Y[test][rows][:, cols], pred[rows][:, cols], None,
                                [space.names[c] for c in cols], mask=sub_known)
        languages[lang] = round(float(rep["macro_f1"]), 4)
    return {"metric": METRIC, "matrix": matrix, "columns": names, "test_only": test_only,
            "leave_one_out": leave_one_out, "languages": languages,
            "n_test": {s: int((test & (examples.sources == s)).sum()) for s in names},
            "labels": {s: [space.names[c] for c in own_cols[s]] for s in names},
            "modes": {"matrix": "a row's own source mode where the model was trained on it; the only source's "
                                "mode for a one-source model; else agnostic",
                      "used": modes_used, "languages": "each test row in its source's mode"}}


def run_transfer(project: Project, sources: list[str] | None = None, encoder: str | None = None,
                 progress: bool = True, **options) -> dict:
    """``transfer_evaluation`` saved as ``runs/<id>-transfer-*/transfer.json`` (what the report shows).

    Returns the result with ``"run"`` (the run folder's name) added.
    """
    result = transfer_evaluation(project, sources=sources, encoder=encoder, progress=progress, **options)
    run_dir = project.new_run("transfer", {"sources": list(result["matrix"])})
    atomic_write_json(run_dir / "transfer.json", result)
    return {**result, "run": run_dir.name, "path": str(run_dir / "transfer.json")}
