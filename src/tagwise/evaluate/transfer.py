"""Transfer evaluation: how well training on one source (or all but one) carries to the others.

``transfer_evaluation(project)`` returns the train-on-A / test-on-B macro-F1 matrix over the
project's sources, leave-one-source-out scores and a per-language breakdown of the model trained
on every source. A cell scores only the labels both sides annotate (a model cannot be asked for a
label it never saw), after closing labels over the taxonomy's hierarchy.
"""
from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
from tqdm.auto import tqdm

from ..learn.multisource import MultiSourceLinear, partial_targets
from ..types import Examples, TagwiseError
from .metrics import multilabel_report

METRIC = "macro_f1"
_URL = re.compile(r"https?://\S+")
_USER = re.compile(r"@\w+")
_NON_WORD = re.compile(r"\W+")


def normalize_text(text: str) -> str:
    """Key for "the same text" across sources: lower case, @user and URLs removed, punctuation folded."""
    text = _USER.sub("@user", _URL.sub("", text.lower()))
    return _NON_WORD.sub(" ", text).strip()


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
    keys = np.array([normalize_text(t) for t in texts], dtype=object)
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


def _source_columns(examples: Examples, taxonomy, space, source: str) -> np.ndarray:
    """Columns the source annotates: its own labels, mapped, plus parents whose children it all annotates."""
    names = taxonomy.covered(examples.annotated.get(source, frozenset()))
    return np.array(sorted(space.index(n) for n in names if n in space._lookup), dtype=np.int64)


def _covered_columns(examples: Examples, taxonomy, space, sources) -> np.ndarray:
    cov: set[str] = set()
    for s in sources:
        cov |= taxonomy.covered(examples.annotated.get(s, frozenset()))
        for name in list(cov):
            cov |= set(taxonomy.ancestors(name))  # a child's positives teach its parents
    return np.array(sorted(space.index(n) for n in cov if n in space._lookup), dtype=np.int64)


def transfer_evaluation(project, sources: list[str] | None = None, encoder: str | None = None,
                        test_frac: float = 0.2, seed: int = 0, model_params: dict | None = None,
                        progress: bool = True) -> dict:
    """Train-on-A / test-on-B matrix, leave-one-source-out and per-language macro-F1.

    project: an open ``Project`` with at least two labeled sources; sources: restrict to these;
    encoder: feature encoder (default: the project's); test_frac/seed: holdout for sources that
    have no test split; model_params: ``MultiSourceLinear`` parameters (defaults are fast).

    Returns ``{"metric": "macro_f1", "matrix": {train_source: {test_source: value}},
    "leave_one_out": {source: value}, "languages": {lang: value}, "n_test": {source: n},
    "labels": {source: [label, ...]}}``; a value is None where the two sides share no label.
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
    own_cols = {s: _source_columns(examples, taxonomy, space, s) for s in names}

    def fit(train_sources):
        rows = train & np.isin(examples.sources, train_sources)
        return MultiSourceLinear(**params).fit(X[rows], Y[rows], examples.sources[rows], known[rows], A)

    def score(model, test_source, train_sources):
        rows = test & (examples.sources == test_source)
        cols = np.intersect1d(own_cols[test_source], _covered_columns(examples, taxonomy, space, train_sources))
        if not rows.any() or len(cols) == 0:
            return None
        # an unseen source gets the agnostic mode; a one-source model's only calibration is its source's
        mode = (test_source if test_source in model.sources_
                else model.sources_[0] if len(model.sources_) == 1 else "agnostic")
        value = macro_f1(Y[rows], model.predict(X[rows], mode), cols)
        return None if np.isnan(value) else round(float(value), 4)

    jobs = len(names) * 2 + 1
    bar = tqdm(total=jobs, desc="transfer", disable=not progress)
    matrix: dict[str, dict[str, float | None]] = {}
    for a in names:
        model = fit([a])
        matrix[a] = {b: score(model, b, [a]) for b in names}
        bar.update()
    leave_one_out = {}
    for b in names:
        others = [s for s in names if s != b]
        leave_one_out[b] = score(fit(others), b, others)
        bar.update()
    full = fit(names)
    bar.update()
    bar.close()
    languages = {}
    langs = examples.languages.astype(str)
    pred = full.predict(X[test], examples.sources[test])
    for lang in sorted(set(langs[test])):
        rows = langs[test] == lang
        cols = np.unique(np.concatenate([own_cols[s] for s in set(examples.sources[test][rows])]))
        # per-source cells outside a row's own schema are unknown: score only known cells
        sub_known = known[test][rows][:, cols]
        rep = multilabel_report(Y[test][rows][:, cols], pred[rows][:, cols], None,
                                [space.names[c] for c in cols], mask=sub_known)
        languages[lang] = round(float(rep["macro_f1"]), 4)
    return {"metric": METRIC, "matrix": matrix, "leave_one_out": leave_one_out, "languages": languages,
            "n_test": {s: int((test & (examples.sources == s)).sum()) for s in names},
            "labels": {s: [space.names[c] for c in own_cols[s]] for s in names}}


def format_transfer(result: dict) -> str:
    """Plain-text rendering of ``transfer_evaluation``'s result for the terminal."""
    names = list(result["matrix"])
    width = max(12, *(len(n) for n in names)) + 2
    fmt = lambda v: "     -" if v is None else f"{v:6.3f}"  # noqa: E731
    lines = [f"{result['metric']}: rows = trained on, columns = tested on (labels both annotate)",
             "".ljust(width) + "".join(n[:10].rjust(11) for n in names)]
    for a in names:
        lines.append(a.ljust(width) + "".join(fmt(result["matrix"][a][b]).rjust(11) for b in names))
    lines.append("")
    lines.append("leave one source out (trained on all others):")
    lines += [f"  {s.ljust(width)}{fmt(v)}" for s, v in result["leave_one_out"].items()]
    lines.append("")
    lines.append("per language (trained on all sources, each test row in its source's mode):")
    lines += [f"  {lang.ljust(width)}{fmt(v)}" for lang, v in result["languages"].items()]
    return "\n".join(lines)


def transfer_heatmap_png(result: dict) -> bytes:
    """The transfer matrix as a PNG heat map (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["matrix"])
    M = np.array([[np.nan if result["matrix"][a][b] is None else result["matrix"][a][b] for b in names]
                  for a in names], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(names), 1.0 + 0.8 * len(names)), dpi=100)
    im = ax.imshow(M, cmap="viridis", vmin=0, vmax=max(1e-6, np.nanmax(M)) if np.isfinite(M).any() else 1)
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, "-" if np.isnan(M[i, j]) else f"{M[i, j]:.2f}", ha="center", va="center",
                    color="white" if np.isnan(M[i, j]) or M[i, j] < np.nanmax(M) * 0.6 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=result["metric"])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def transfer_report_section(project) -> str | None:
    """HTML fragment for the project report: the transfer heat map, leave-one-out and languages.

    Uses the latest ``runs/*-transfer-*/transfer.json`` (written by ``tagwise evaluate --transfer``);
    returns None when there is none (the report then skips the section rather than training here).
    """
    import json

    runs = [r for r in project.runs("transfer") if (r / "transfer.json").exists()]
    if not runs:
        return None
    result = json.loads((runs[-1] / "transfer.json").read_text(encoding="utf-8"))
    png = base64.b64encode(transfer_heatmap_png(result)).decode("ascii")
    rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{'-' if v is None else f'{v:.3f}'}</td></tr>"
                   for s, v in result["leave_one_out"].items())
    langs = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" for k, v in result["languages"].items())
    return (f"<section><h2>Transfer across sources</h2>"
            f"<p>Macro-F1 of a model trained on one source (rows) and tested on another (columns), over the "
            f"labels both annotate. Run: {html.escape(runs[-1].name)}.</p>"
            f"<img alt='transfer heat map' src='data:image/png;base64,{png}'/>"
            f"<h3>Leave one source out</h3><table><tr><th>held-out source</th><th>macro-F1</th></tr>{rows}</table>"
            f"<h3>Per language</h3><table><tr><th>language</th><th>macro-F1</th></tr>{langs}</table></section>")
