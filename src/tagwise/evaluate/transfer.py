"""Transfer evaluation: how well training on one source (or all but one) carries to the others.

``workflows.transfer.transfer_evaluation(project)`` returns the train-on-A / test-on-B macro-F1 matrix over the
project's sources, leave-one-source-out scores and a per-language breakdown of the model trained
on every source. A cell scores only the labels both sides annotate (a model cannot be asked for a
label it never saw), after closing labels over the taxonomy's hierarchy.
"""
from __future__ import annotations

import numpy as np

from ..text import normalize_text
from ..types import Examples, TagwiseError
from .metrics import multilabel_report

METRIC = "macro_f1"


def holdout_splits(examples: Examples, test_frac: float = 0.2, seed: int = 0) -> np.ndarray:
    """(n,) split names where each source without a ``test`` split gets a seeded test holdout.

    A source with a test split keeps it (its ``dev`` rows count as training). For the others,
    ``test_frac`` of their labeled rows (seeded permutation per source) become ``test``.
    """
    if not 0 < test_frac < 1:
        raise TagwiseError(f"test_frac must be between 0 and 1, got {test_frac}.")
    splits = np.array(examples.splits, dtype=object).copy()
    splits[splits == "dev"] = "train"
    labeled = np.array([lab is not None for lab in examples.labels], dtype=bool)
    for k, source in enumerate(sorted(set(examples.sources))):
        rows = examples.sources == source
        if (rows & (splits == "test")).any():
            continue
        idx = np.flatnonzero(rows & labeled & (splits == "train"))
        rng = np.random.default_rng([seed, k])
        pick = rng.permutation(idx)[: int(round(len(idx) * test_frac))]
        splits[pick] = "test"
    return splits


def drop_test_overlap(texts: list[str], splits: np.ndarray) -> np.ndarray:
    """(n,) bool: training rows whose normalised text is not in any test row (no cross-source leak).

    TweetEval and SemEval E-c share tweets; without this a multi-source model could train on the
    very tweet it is tested on under the other schema.
    """
    keys = np.array([normalize_text(t, social=True) for t in texts], dtype=object)
    test_keys = set(keys[splits == "test"])
    return (splits == "train") & np.array([k not in test_keys for k in keys], dtype=bool)


def macro_f1(Y: np.ndarray, Z: np.ndarray, cols: np.ndarray, proba: np.ndarray | None = None) -> float:
    """Macro-F1 of predictions ``Z`` against ``Y`` ((n, K) {0,1}) over label columns ``cols``.

    Labels without a positive in ``Y[:, cols]`` are left out of the average (as in
    ``multilabel_report``); returns nan when ``cols`` is empty.
    """
    cols = np.asarray(cols, dtype=np.int64)
    if len(cols) == 0 or len(Y) == 0:
        return float("nan")
    rep = multilabel_report(Y[:, cols], Z[:, cols], None if proba is None else proba[:, cols],
                            [str(c) for c in cols])
    return rep["macro_f1"]


def source_columns(examples: Examples, taxonomy, space, source: str) -> np.ndarray:
    """Columns the source annotates: its own labels, mapped, plus parents whose children it all annotates."""
    names = taxonomy.covered(examples.annotated.get(source, frozenset()))
    return np.array(sorted(space.index(n) for n in names if n in space._lookup), dtype=np.int64)


def covered_columns(examples: Examples, taxonomy, space, sources) -> np.ndarray:
    cov: set[str] = set()
    for s in sources:
        cov |= taxonomy.covered(examples.annotated.get(s, frozenset()))
        for name in list(cov):
            cov |= set(taxonomy.ancestors(name))  # a child's positives teach its parents
    return np.array(sorted(space.index(n) for n in cov if n in space._lookup), dtype=np.int64)


def format_transfer(result: dict) -> str:
    """Plain-text rendering of ``transfer_evaluation``'s result for the terminal."""
    names = list(result["matrix"])
    columns = list(result.get("columns") or names)
    width = max(12, *(len(n) for n in columns)) + 2
    fmt = lambda v: "     -" if v is None else f"{v:6.3f}"  # noqa: E731
    lines = [f"{result['metric']}: rows = trained on, columns = tested on (labels both annotate)",
             "".ljust(width) + "".join(n[:10].rjust(11) for n in columns)]
    for a in names:
        lines.append(a.ljust(width) + "".join(fmt(result["matrix"][a].get(b)).rjust(11) for b in columns))
    if result.get("test_only"):
        lines.append(f"test-only sources (no training rows; columns only, scored in the agnostic mode): "
                     f"{', '.join(result['test_only'])}")
    lines.append("")
    lines.append("leave one source out (trained on all others):")
    lines += [f"  {s.ljust(width)}{fmt(v)}" for s, v in result["leave_one_out"].items()]
    lines.append("")
    lines.append("per language (trained on all sources, each test row in its source's mode):")
    lines += [f"  {lang.ljust(width)}{fmt(v)}" for lang, v in result["languages"].items()]
    return "\n".join(lines)


