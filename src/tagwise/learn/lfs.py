"""Labeling functions (LFs): rules declared in YAML (or Python) that vote labels on texts.

An LF file looks like::

    lfs:
      - {name: kw_refund, label: billing, kind: keywords, any: [refund, "money back"], language: en}
      - {name: re_price,  label: billing, kind: regex, pattern: '\\$\\d+'}
      - {name: zs_anger,  label: anger,   kind: zero-shot, min_score: 0.6}
      - {name: near_spam, label: spam,    kind: seeds, examples: ["win a free phone"], min_similarity: 0.8}
      - {name: old_model, kind: model, model: models/v1}
      - {name: not_sports, label: sports, kind: keywords, any: [election], vote: negative}
      - {name: has_order_no, label: billing, kind: python, module: my_lfs.py, function: has_order_no}

Each LF votes one label positive (the default), negative (``vote: negative``) or abstains; a
``model`` LF votes every label the model predicts (one vote column per label). A ``python`` LF is a
function decorated with ``@labeling_function()`` in a module named relative to the YAML file; it
takes the text and returns True (vote), False/None (abstain), or +1 / -1 / 0.

``apply_lfs`` returns the votes as a sparse (examples x vote columns) int8 matrix. An LF that
raises stops the run with its name and the example, unless ``skip_failing``: then that LF is left
out (its partial votes would be biased) and reported, and the others apply.

Every LF carries a version: a hash of its YAML entry (and, for Python LFs, the function's source),
so stored votes can be matched to the definition that produced them.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from .._io import read_yaml
from ..types import TagwiseError

KINDS = ("keywords", "regex", "zero-shot", "seeds", "model", "python")
_COMMON_KEYS = {"name", "label", "kind", "vote", "language", "description"}
_KIND_KEYS = {
    "keywords": {"any", "all", "case_sensitive"},
    "regex": {"pattern", "case_sensitive"},
    "zero-shot": {"min_score"},
    "seeds": {"examples", "min_similarity"},
    "model": {"model", "min_score", "negative_below"},
    "python": {"module", "function"},
}
_PYTHON_LF_ATTR = "__tagwise_lf__"


def labeling_function(label: str | None = None, vote: str = "positive"):
    """Mark ``fn(text) -> bool | int | None`` as a labeling function a YAML ``kind: python`` entry
    may name. ``label`` / ``vote`` are defaults the YAML entry can override."""
    def mark(fn):
        setattr(fn, _PYTHON_LF_ATTR, {"label": label, "vote": vote})
        return fn
    return mark


@dataclass
class LabelingFunction:
    """One validated LF. ``columns``: the labels it votes on (several only for ``model`` LFs)."""

    name: str
    kind: str
    labels: list[str]
    vote: int                      # +1 positive, -1 negative
    params: dict
    version: str
    language: str | None = None
    func: Callable | None = field(default=None, repr=False)

    def column_names(self) -> list[str]:
        """One vote column per label: the LF's name, or ``name:label`` for multi-label LFs."""
        return [self.name] if len(self.labels) == 1 and self.kind != "model" else \
            [f"{self.name}:{label}" for label in self.labels]


@dataclass
class LFContext:
    """What model-based LFs need: an embedding function and the project's label metadata.

    embed: texts -> (n, d) float32 unit vectors (one encoder for everything).
    load_model: path -> (model, info) (``learn.persist.load_model`` by default).
    """

    embed: Callable[[Sequence[str]], np.ndarray] | None = None
    label_names: list[str] = field(default_factory=list)          # all labels: zero-shot scores each
    descriptions: dict[str, str] = field(default_factory=dict)
    label_examples: dict[str, list[str]] = field(default_factory=dict)
    example_texts: dict[str, str] = field(default_factory=dict)   # example id -> text, for seeds by id
    load_model: Callable | None = None
    # (texts, encoder name) -> embeddings, for a model LF trained on another encoder than ``embed``'s
    embed_with: Callable[[Sequence[str], str], np.ndarray] | None = None
    texts: Sequence[str] | None = None                             # set by apply_lfs
    _zero_shot: tuple | None = field(default=None, repr=False)  # (corpus id, names, probabilities)


@dataclass
class LFVotes:
    """Votes of a set of LFs on n examples.

    votes: (n, c) scipy.sparse CSR int8 in {-1, +1} (absent = abstain); columns[j] = (lf name, label);
    versions: lf name -> version; failed: [{"lf", "example", "text", "error"}] LFs left out.
    """

    votes: sp.csr_matrix
    columns: list[tuple[str, str]]
    versions: dict[str, str]
    failed: list[dict] = field(default_factory=list)

    def lf_labels(self, label_names: Sequence[str]) -> np.ndarray:
        """(c,) index in ``label_names`` of each column's label."""
        lookup = {n: i for i, n in enumerate(label_names)}
        return np.array([lookup[label] for _, label in self.columns], dtype=np.int64)


# -- loading -----------------------------------------------------------------
def _version(entry: dict, extra: str = "") -> str:
    blob = json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str) + extra
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]


def _load_python_function(entry: dict, base: Path, where: str) -> Callable:
    module_path = (base / str(entry["module"])).resolve()
    if not module_path.is_file():
        raise TagwiseError(f"{where}: module {entry['module']!r} not found at {module_path}. "
                           f"Fix: give a .py path relative to the LF file.")
    spec = importlib.util.spec_from_file_location(f"tagwise_lfs_{module_path.stem}", module_path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module: report whatever it raised
        raise TagwiseError(f"{where}: importing {module_path} failed: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, str(entry["function"]), None)
    if fn is None or not hasattr(fn, _PYTHON_LF_ATTR):
        marked = sorted(n for n, v in vars(module).items() if hasattr(v, _PYTHON_LF_ATTR))
        raise TagwiseError(f"{where}: {module_path} has no function {entry['function']!r} decorated with "
                           f"@labeling_function(); decorated ones: {marked}")
    return fn


def parse_lfs(doc: dict, label_names: Sequence[str], source: str | Path = "<lfs>",
              base_dir: str | Path | None = None) -> list[LabelingFunction]:
    """Validate an LF document (``{"lfs": [...]}``) against the project's labels."""
    source = str(source)
    base = Path(base_dir) if base_dir is not None else Path(source).resolve().parent
    if not isinstance(doc, dict) or not isinstance(doc.get("lfs"), list):
        raise TagwiseError(f"{source}: expected a top-level 'lfs:' list of labeling functions.")
    known = list(label_names)
    out, seen = [], set()
    for row, entry in enumerate(doc["lfs"]):
        where = f"{source}: lfs[{row}]"
        if not isinstance(entry, dict):
            raise TagwiseError(f"{where}: each LF must be a mapping with name, kind, label.")
        name = entry.get("name")
        if not name or not re.fullmatch(r"[A-Za-z0-9_.\-]+", str(name)):
            raise TagwiseError(f"{where}: 'name' is missing or not made of letters, digits, _ . -")
        name = str(name)
        where = f"{source}: LF {name!r} (lfs[{row}])"
        if name in seen:
            raise TagwiseError(f"{where}: duplicate LF name. Fix: give each LF its own name.")
        seen.add(name)
        kind = entry.get("kind")
        if kind not in KINDS:
            raise TagwiseError(f"{where}: kind is {kind!r}; use one of {list(KINDS)}.")
        allowed = _COMMON_KEYS | _KIND_KEYS[kind]
        for key in entry:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else f" Allowed for {kind}: {sorted(allowed)}."
                raise TagwiseError(f"{where}: unknown field {key!r}.{hint}")
        func, extra = None, ""
        if kind == "python":
            for key in ("module", "function"):
                if not entry.get(key):
                    raise TagwiseError(f"{where}: a python LF needs '{key}'.")
            func = _load_python_function(entry, base, where)
            defaults = getattr(func, _PYTHON_LF_ATTR)
            entry = {"label": defaults["label"], "vote": defaults["vote"], **entry}
            try:
                extra = inspect.getsource(func)
            except (OSError, TypeError):
                extra = ""
        vote_word = str(entry.get("vote", "positive")).lower()
        if vote_word not in ("positive", "negative"):
            raise TagwiseError(f"{where}: vote is {entry.get('vote')!r}; use positive or negative.")
        params = {k: v for k, v in entry.items() if k not in _COMMON_KEYS}
        if kind == "model":
            labels = [entry["label"]] if entry.get("label") else []  # empty: every label it predicts
            if not entry.get("model"):
                raise TagwiseError(f"{where}: a model LF needs 'model: path/to/saved/model'.")
            model_path = (base / str(entry["model"])).resolve()
            if not (model_path / "model.json").is_file():
                raise TagwiseError(f"{where}: model path {entry['model']!r} ({model_path}) holds no saved "
                                   f"tagwise model (model.json). Fix: point 'model' at a folder written by "
                                   f"`tagwise train`.")
            params["model"] = str(model_path)
        else:
            if not entry.get("label"):
                raise TagwiseError(f"{where}: 'label' is missing: the label this LF votes on.")
            labels = [str(entry["label"])]
        for label in labels:
            if label not in known:
                close = difflib.get_close_matches(label, known, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else f" Known labels: {known[:20]}"
                raise TagwiseError(f"{where}: unknown label {label!r}.{hint}")
        if kind == "keywords":
            words = list(entry.get("any") or []) + list(entry.get("all") or [])
            if not words or not all(isinstance(w, str) and w.strip() for w in words):
                raise TagwiseError(f"{where}: a keywords LF needs non-empty 'any' and/or 'all' lists of strings.")
        if kind == "regex":
            if not isinstance(entry.get("pattern"), str):
                raise TagwiseError(f"{where}: a regex LF needs 'pattern' (a string).")
            try:
                re.compile(entry["pattern"], 0 if entry.get("case_sensitive") else re.IGNORECASE)
            except re.error as exc:
                raise TagwiseError(f"{where}: pattern {entry['pattern']!r} does not compile: {exc}. "
                                   f"Fix the regex (quote it in single quotes in YAML).") from None
        if kind == "seeds" and not entry.get("examples"):
            raise TagwiseError(f"{where}: a seeds LF needs 'examples': example ids or texts.")
        for key, lo, hi in (("min_score", 0.0, 1.0), ("min_similarity", -1.0, 1.0), ("negative_below", 0.0, 1.0)):
            if key in entry and not (isinstance(entry[key], (int, float)) and lo <= entry[key] <= hi):
                raise TagwiseError(f"{where}: {key} must be a number in [{lo}, {hi}], got {entry[key]!r}.")
        out.append(LabelingFunction(name=name, kind=kind, labels=labels, vote=1 if vote_word == "positive" else -1,
                                    params=params, version=_version(entry, extra), language=entry.get("language"),
                                    func=func))
    return out


def load_lfs(path: str | Path, label_names: Sequence[str]) -> list[LabelingFunction]:
    """Read and validate an LF YAML file; every error names the file, the LF and the fix."""
    path = Path(path)
    return parse_lfs(read_yaml(path, "LF"), label_names, path, path.resolve().parent)


# -- applying ----------------------------------------------------------------
def _keyword_matcher(lf: LabelingFunction):
    flags = 0 if lf.params.get("case_sensitive") else re.IGNORECASE

    def word(w):  # whole words / phrases; \b only where the keyword starts or ends with a word char
        left = r"\b" if re.match(r"\w", w) else ""
        right = r"\b" if re.search(r"\w$", w) else ""
        return re.compile(left + re.escape(w) + right, flags)

    any_words = [word(w) for w in lf.params.get("any") or []]
    all_words = [word(w) for w in lf.params.get("all") or []]

    def match(text):
        if any_words and not any(p.search(text) for p in any_words):
            return False
        return all(p.search(text) for p in all_words)
    return match


def _fail(lf: LabelingFunction, i: int, ids, texts, exc: BaseException) -> dict:
    return {"lf": lf.name, "example": str(ids[i]) if ids is not None else str(i),
            "text": texts[i][:200], "error": f"{type(exc).__name__}: {exc}"}


def _apply_text_lf(lf, texts, active, ids):
    """-> (rows, votes) for an LF run per text, or raises _LFFailure."""
    if lf.kind == "keywords":
        fn = _keyword_matcher(lf)
    elif lf.kind == "regex":
        pattern = re.compile(lf.params["pattern"], 0 if lf.params.get("case_sensitive") else re.IGNORECASE)
        fn = lambda text: pattern.search(text) is not None  # noqa: E731
    else:
        fn = lf.func
    rows, votes = [], []
    for i in np.flatnonzero(active):
        try:
            out = fn(texts[i])
        except Exception as exc:  # the user's rule: report it by name with the example
            raise _LFFailure(_fail(lf, int(i), ids, texts, exc)) from exc
        if out is None or out is False or out == 0:
            continue
        if out is True:
            v = lf.vote
        elif out in (1, -1):
            v = int(out)
        else:
            raise _LFFailure(_fail(lf, int(i), ids, texts, ValueError(
                f"returned {out!r}; return True/False/None or +1/-1/0")))
        rows.append(int(i))
        votes.append(v)
    return rows, votes


class _LFFailure(Exception):
    def __init__(self, info: dict):
        super().__init__(info["error"])
        self.info = info


def apply_lfs(lfs: Sequence[LabelingFunction], texts: Sequence[str], *, languages: Sequence[str] | None = None,
              ids: Sequence | None = None, context: LFContext | None = None, skip_failing: bool = False,
              progress: bool = True) -> LFVotes:
    """Run the LFs over ``texts`` (n). Returns an ``LFVotes`` with one column per (LF, label).

    languages: (n,) language codes, for LFs restricted with ``language:``; ids: (n,) example ids
    used in error messages; context: embedding / model access for zero-shot, seeds and model LFs.
    """
    from tqdm.auto import tqdm

    n = len(texts)
    context = context or LFContext()
    langs = np.asarray(languages, dtype=object) if languages is not None else None
    cols_rows, cols_votes, columns, versions, failed = [], [], [], {}, []
    X = None
    context.texts = texts
    for lf in tqdm(lfs, desc="labeling functions", unit="lf", disable=not progress):
        active = np.ones(n, dtype=bool)
        if lf.language and langs is not None:
            active = langs == lf.language
        try:
            if lf.kind in ("keywords", "regex", "python"):
                rows, votes = _apply_text_lf(lf, texts, active, ids)
                per_label = [(lf.labels[0], rows, votes)]
            else:
                if context.embed is None:
                    raise TagwiseError(f"LF {lf.name!r} ({lf.kind}) needs embeddings; run it through a project "
                                       f"(`tagwise lf apply`) or pass LFContext(embed=...).")
                if X is None:
                    X = np.asarray(context.embed(list(texts)), dtype=np.float32)
                per_label = _apply_vector_lf(lf, X, active, context)
        except _LFFailure as failure:
            if not skip_failing:
                info = failure.info
                raise TagwiseError(f"LF {info['lf']!r} raised on example {info['example']} "
                                   f"({info['text'][:80]!r}): {info['error']}. Fix the LF, or pass "
                                   f"--skip-failing to leave it out and apply the others.") from None
            failed.append(failure.info)
            continue
        versions[lf.name] = lf.version
        for label, rows, votes in per_label:
            columns.append((lf.name if len(lf.column_names()) == 1 else f"{lf.name}:{label}", label))
            cols_rows.append(np.asarray(rows, dtype=np.int64))
            cols_votes.append(np.asarray(votes, dtype=np.int8))
    c = len(columns)
    if c:
        rows = np.concatenate(cols_rows)
        cols = np.concatenate([np.full(len(r), j, dtype=np.int64) for j, r in enumerate(cols_rows)])
        data = np.concatenate(cols_votes)
    else:
        rows = cols = np.zeros(0, dtype=np.int64)
        data = np.zeros(0, dtype=np.int8)
    votes = sp.csr_matrix((data, (rows, cols)), shape=(n, c), dtype=np.int8)
    return LFVotes(votes=votes, columns=columns, versions=versions, failed=failed)


def _apply_vector_lf(lf, X, active, context):
    """zero-shot / seeds / model LFs over embeddings X (n, d). -> [(label, rows, votes)]."""
    if lf.kind == "zero-shot":
        from .zeroshot import ZeroShotClassifier, label_embeddings

        label = lf.labels[0]
        # score against every label of the project, so the per-label standardisation and cut are
        # the zero-shot model's usual ones; fitted once per corpus and shared by all zero-shot LFs
        names = list(dict.fromkeys([*context.label_names, *context.descriptions, *context.label_examples, label]))
        if context._zero_shot is None or context._zero_shot[0] is not X or context._zero_shot[1] != names:
            vectors = label_embeddings(names, None, descriptions=context.descriptions,
                                       examples=context.label_examples, embed=context.embed)
            context._zero_shot = (X, names, ZeroShotClassifier().fit(X, vectors, names).predict_proba(X))
        score = context._zero_shot[2][:, names.index(label)]
        hit = active & (score >= float(lf.params.get("min_score", 0.5)))
        return [(label, np.flatnonzero(hit), np.full(int(hit.sum()), lf.vote))]
    if lf.kind == "seeds":
        seeds = [context.example_texts.get(str(s), str(s)) for s in lf.params["examples"]]
        S = np.asarray(context.embed(seeds), dtype=np.float32)
        S /= np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        sim = (Xn @ S.T).max(axis=1)
        hit = active & (sim >= float(lf.params.get("min_similarity", 0.8)))
        return [(lf.labels[0], np.flatnonzero(hit), np.full(int(hit.sum()), lf.vote))]
    # model: votes +1 where it predicts the label, -1 below negative_below (if given)
    from .persist import load_model

    model, info = (context.load_model or load_model)(lf.params["model"])
    names = info.get("labels") or info.get("label_names") or getattr(model, "label_names_", None)
    if names is None:
        raise TagwiseError(f"LF {lf.name!r}: model {lf.params['model']} does not record its label names "
                           f"(info['labels']); cannot tell which column is which label.")
    unknown = [n for n in names if context.label_names and n not in context.label_names]
    if unknown and not lf.labels:
        raise TagwiseError(f"LF {lf.name!r}: model {lf.params['model']} predicts labels {unknown[:5]} that are "
                           f"not in the project. Fix: name the labels to use with 'label:', or add them.")
    encoder = info.get("encoder")
    if encoder and context.embed_with is not None:
        X = np.asarray(context.embed_with(list(context.texts), encoder), dtype=np.float32)
    P = np.asarray(model.predict_proba(X))
    min_score = lf.params.get("min_score")
    hits = P >= float(min_score) if min_score is not None else np.asarray(model.predict(X)) > 0
    neg_below = lf.params.get("negative_below")
    out = []
    wanted = lf.labels or None
    for k, label in enumerate(names):
        if wanted and label not in wanted:
            continue
        pos = active & hits[:, k]
        rows, votes = list(np.flatnonzero(pos)), [1] * int(pos.sum())
        if neg_below is not None:
            neg = active & (P[:, k] < float(neg_below))
            rows += list(np.flatnonzero(neg))
            votes += [-1] * int(neg.sum())
        out.append((label, np.asarray(rows, dtype=np.int64), np.asarray(votes, dtype=np.int8)))
    return out


# -- published votes -----------------------------------------------------------
def read_wrench(path: str | Path) -> dict:
    """Read one WRENCH split file (``{id: {label, weak_labels, data: {text}}}``) and its ``label.json``.

    Returns {"ids": [str], "texts": [str], "weak_labels": (n, m) int (-1 = abstain), "gold": (n,) int,
    "class_names": [str] (from label.json beside the file, else "0", "1", ...)}.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TagwiseError(f"{path}: cannot read WRENCH votes: {exc}") from None
    if not isinstance(doc, dict) or not doc:
        raise TagwiseError(f"{path}: expected a JSON object {{id: {{label, weak_labels, data}}}}.")
    ids = sorted(doc, key=lambda k: (len(k), k))
    widths = set()
    for i in ids:
        item = doc[i]
        if not isinstance(item, dict) or "weak_labels" not in item or "text" not in item.get("data", {}):
            raise TagwiseError(f"{path}: item {i!r} lacks 'weak_labels' or 'data.text' (WRENCH layout).")
        widths.add(len(item["weak_labels"]))
    if len(widths) != 1:
        raise TagwiseError(f"{path}: items have different numbers of LF votes {sorted(widths)}.")
    L = np.array([doc[i]["weak_labels"] for i in ids], dtype=np.int64)
    label_file = path.parent / "label.json"
    if label_file.is_file():
        mapping = json.loads(label_file.read_text(encoding="utf-8"))
        class_names = [mapping[str(c)] for c in range(len(mapping))]
    else:
        class_names = [str(c) for c in range(int(L.max()) + 1)]
    return {"ids": ids, "texts": [doc[i]["data"]["text"] for i in ids], "weak_labels": L,
            "gold": np.array([doc[i].get("label", -1) for i in ids]), "class_names": class_names}


def wrench_to_votes(weak_labels: np.ndarray, class_names: Sequence[str], lf_prefix: str = "wrench") -> LFVotes:
    """WRENCH multi-class votes -> LFVotes: LF j voting class c becomes column ``{prefix}_{j}`` voting
    label ``class_names[c]`` positive (an LF that votes several classes gets one column per class)."""
    from .labelmodel import votes_from_multiclass

    votes, lf_labels, sources = votes_from_multiclass(weak_labels, len(class_names))
    multi = np.bincount(sources, minlength=weak_labels.shape[1]) > 1
    columns = [(f"{lf_prefix}_{s}" + (f":{class_names[c]}" if multi[s] else ""), class_names[c])
               for s, c in zip(sources, lf_labels)]
    versions = {f"{lf_prefix}_{j}": "imported" for j in range(weak_labels.shape[1])}
    return LFVotes(votes=votes.tocsr(), columns=columns, versions=versions)
