"""Training data health: what each source teaches each label, and whether the trained model learned it.

Nothing on the default path may fail silently (a soft target rounded away, a label a source never
contradicts, a model no better than predicting everything). These functions return plain data that
``train`` keeps in its summary and in ``model.json`` (``info["health"]``), that the CLI prints
(``format_health``) and that the report and the model page show:

- ``data_health(project)``: before training, per source x label: positives, negatives, unknown and
  expected positives (the sum of the soft targets) of the training targets, with warnings for a
  label a source claims but never contradicts (no negatives), never asserts (no positives), or has
  fewer than ``FEW`` of either, and for a consensus or hierarchy step that moves a source's positive
  rate by more than ``RATE_CHANGE`` (half) of what its stored labels say;
- ``model_health(head, data, ...)``: after training, per source on its own out-of-fold rows (in its own
  mode): per-label F1 beside the trivial predictors (all-negative, all-positive, the prior), and with
  two or more sources the macro-F1 of the same head trained on that source alone;
- ``shared_texts(project)``: texts one source trains on that another source is tested on.

Every warning is ``{"kind", "source", "label", "message", "fix"}`` (label None where the warning is
about a whole source or a pair of sources).
"""
from __future__ import annotations

import numpy as np

from ..evaluate.metrics import PREDICTED_EVERYWHERE, trivial_f1
from ..learn.linear import MultiLabelLinear
from ..learn.multisource import partial_targets
from ..project import Project
from ..taxonomy import propagate_with_ancestors
from ..text import normalize_text
from ..types import Examples
from .annotators import apply_consensus

FEW = 5              # fewer positives (or negatives) than this for a claimed label: a warning
RATE_CHANGE = 0.5    # a step moving a source's positive count by more than this share of it: a warning
MIN_CHANGE = 3       # ... and by at least this many rows (a move from 2 to 4 positives is noise)
TRIVIAL_MARGIN = 0.01  # out-of-fold F1 must beat the best trivial predictor by this much
ALONE_MARGIN = 0.02    # the joint model's source macro-F1 may fall this far below the source alone (fold noise)
ALONE_MIN_ROWS = 30    # sources with fewer labeled rows are not re-trained alone (their CV is noise)


def _warning(kind: str, source: str | None, label: str | None, message: str, fix: str) -> dict:
    return {"kind": kind, "source": source, "label": label, "message": message, "fix": fix}


def claimed_columns(examples: Examples, taxonomy, space) -> dict[str, np.ndarray]:
    """{source: (k,) columns the source annotates}: its own labels (after its spec's map) plus the
    parents all of whose children it annotates (``Taxonomy.covered``)."""
    out = {}
    for source in sorted(set(map(str, examples.sources))):
        names = taxonomy.covered(examples.annotated.get(source, frozenset()))
        out[source] = np.array(sorted(space.index(n) for n in names if n in space._lookup), dtype=np.int64)
    return out


def target_health(stages: list[tuple[str, np.ndarray]], Y: np.ndarray, mask: np.ndarray, sources,
                  label_names, claimed: dict[str, np.ndarray], direct: dict[str, np.ndarray] | None = None,
                  parents: set[str] | frozenset = frozenset(), ancestors: np.ndarray | None = None) -> dict:
    """The health table and data warnings of training targets, from arrays.

    stages: ``[(step name, (n, K) targets)]`` in the order the steps run, the first being the stored
    labels; each step's expected positives (its targets summed over the final known cells: the
    positives of hard labels, a soft 0.5 counting half) are compared with the previous step's.
    Y: (n, K) final targets in [0, 1] (soft allowed); mask: (n, K) bool known cells;
    sources: (n,) source per row; claimed: {source: columns it annotates}; direct: {source: columns its
    stored labels name} (the rate checks run on these; default ``claimed``); parents: label names
    with children in the taxonomy (for the wording); ancestors: (K, K) bool, ``[child, ancestor]``
    (``Taxonomy.ancestor_matrix``): a hierarchy step that raises a parent the source names itself
    *and* whose children it annotates is by design (the parent is the family of those children) and
    is a note, not a warning.

    Returns ``{"labels", "sources": {source: {"n_rows", "labels": {label: {"positives", "negatives",
    "unknown", "expected_positives", "positive_rate", "steps": {step: expected positives}, "claimed"}}}},
    "warnings", "notes"}`` (notes: by-design changes worth a line, same shape as warnings);
    a label the source does not claim is listed (claimed False) where the hierarchy implies positives of it.
    """
    Y = np.asarray(Y, dtype=np.float64)
    M = np.asarray(mask, dtype=bool)
    sources = np.asarray(sources, dtype=object).astype(str)
    names = [str(n) for n in label_names]
    direct = claimed if direct is None else direct
    table: dict[str, dict] = {}
    warnings: list[dict] = []
    notes: list[dict] = []
    A = None if ancestors is None else np.asarray(ancestors, dtype=bool)
    for source in sorted(set(map(str, sources))):
        rows = sources == source
        n = int(rows.sum())
        Ys, Ms = Y[rows], M[rows]
        pos = ((Ys >= 0.5) & Ms).sum(0)
        neg = ((Ys < 0.5) & Ms).sum(0)
        expected = (Ys * Ms).sum(0)
        # a step is judged by the sum of its targets (= the positives for hard labels): a soft 0.5 counts half
        steps = [(step, (np.asarray(S, dtype=np.float64)[rows] * Ms).sum(0)) for step, S in stages]
        claimed_set = set(claimed.get(source, np.zeros(0, np.int64)).tolist())
        cols = claimed_set | set(np.flatnonzero(pos).tolist())
        labels = {}
        for k in sorted(cols):
            known = int(Ms[:, k].sum())
            labels[names[k]] = {"positives": int(pos[k]), "negatives": int(neg[k]), "unknown": n - known,
                                "expected_positives": round(float(expected[k]), 2),
                                "positive_rate": round(float(pos[k] / known), 4) if known else None,
                                "steps": {step: round(float(c[k]), 2) for step, c in steps},
                                "claimed": k in claimed_set}
        table[source] = {"n_rows": n, "labels": labels}
        for k in claimed.get(source, np.zeros(0, np.int64)).tolist():
            label, known = names[k], int(Ms[:, k].sum())
            if known == 0:
                continue
            why = (f" (every row has one of its children, and a child implies its parent)"
                   if label in parents and k not in set(direct.get(source, np.zeros(0, np.int64)).tolist()) else "")
            if neg[k] == 0:
                warnings.append(_warning(
                    "no_negatives", source, label,
                    f"source {source!r} claims label {label!r} but none of its {known} rows is a negative for it"
                    f"{why}: it cannot teach when {label!r} does not hold, and its own mode will predict "
                    f"{label!r} on every row.",
                    f"add texts without {label!r} (another source that annotates it, or `tagwise labels import`); "
                    f"if {source!r} holds only texts that have it, score its rows in another source's mode "
                    f"(`evaluate --as-source`), and do not read the own-mode figures of {source!r} for {label!r}."))
            elif neg[k] < FEW:
                warnings.append(_warning(
                    "few_negatives", source, label,
                    f"source {source!r} has only {int(neg[k])} negative(s) for label {label!r} among {known} rows "
                    f"(fewer than {FEW}): its cut for {label!r} rests on a handful of rows.",
                    f"add texts without {label!r} to {source!r}, or rely on another source that annotates it."))
            if pos[k] == 0:
                hint = (f"; its expected positives (sum of soft targets) are {expected[k]:.1f}, so soft targets "
                        f"below 0.5 hold all of them" if expected[k] >= 1 else "")
                warnings.append(_warning(
                    "no_positives", source, label,
                    f"source {source!r} claims label {label!r} but none of its {known} rows is a positive{hint}.",
                    f"check the spec's labels/map (a misspelt or unmapped label?) and the consensus "
                    f"(`--consensus majority`); otherwise label examples of {label!r} (`tagwise suggest`)."))
            elif pos[k] < FEW:
                warnings.append(_warning(
                    "few_positives", source, label,
                    f"source {source!r} has only {int(pos[k])} positive(s) for label {label!r} among {known} rows "
                    f"(fewer than {FEW}): the model can barely learn {label!r} from it.",
                    f"label more examples of {label!r} (`tagwise suggest PROJECT --budget 50`), or rely on "
                    f"another source that annotates it."))
        direct_cols = set(direct.get(source, np.zeros(0, np.int64)).tolist())
        for i in range(1, len(steps)):
            (before_name, before), (step, after) = steps[i - 1], steps[i]
            for k in sorted(direct_cols):
                a, b = float(before[k]), float(after[k])
                if max(a, b) < FEW or abs(b - a) < MIN_CHANGE or abs(b - a) <= RATE_CHANGE * a:
                    continue
                known = int(Ms[:, k].sum())
                family = ([names[c] for c in sorted(direct_cols) if A[c, k]]
                          if A is not None and "hierarchy" in step else [])
                if family:
                    # the source annotates the parent and its children: children imply the parent by design
                    notes.append(_warning(
                        "hierarchy_family", source, names[k],
                        f"{step} raises the positives of source {source!r} for label {names[k]!r} from {a:.0f} "
                        f"to {b:.0f} of {known} rows: {source!r} names {names[k]!r} itself and also annotates "
                        f"its children ({', '.join(family)}), each of which implies {names[k]!r}. This is by "
                        f"design when {names[k]!r} is the family of those labels.",
                        f"If the labels {source!r} maps to {names[k]!r} belong to that family, nothing to do; if "
                        f"they mean something narrower (one emotion, not the whole family), map them to a leaf "
                        f"label of their own instead of the parent."))
                    continue
                warnings.append(_warning(
                    "rate_changed", source, names[k],
                    f"{step} changes the positives of source {source!r} for label {names[k]!r} from {a:.0f} to "
                    f"{b:.0f} of {known} rows ({a / max(known, 1):.1%} -> {b / max(known, 1):.1%}; soft targets "
                    f"summed, {int(pos[k])} at 0.5 or more in the end): the model trains on a different label "
                    f"than {source!r} gives.", _rate_fix(step)))
    return {"labels": names, "sources": table, "warnings": warnings, "notes": notes}


def _rate_fix(step: str) -> str:
    if "consensus" in step:
        return ("compare `--consensus majority` (and `tagwise annotators` for the annotators' quality); if the "
                "stored labels are right, train with `--consensus none`.")
    if "hierarchy" in step:
        return ("check the taxonomy's parents (a child implies its parent): map the source's labels so its parent "
                "and child labels agree, or move the label out from under that parent.")
    return "check the spec's labels/map: several labels may map onto this one, or labels map to null."


STEP_STORED = "stored labels"
STEP_CLOSURE = "the hierarchy (children imply parents)"
STEP_CONSENSUS = "the consensus"
STEP_HEAD = "the hierarchy step of the training head"


def data_health(project: Project, split: str | list[str] = "train", consensus: str = "model",
                examples: Examples | None = None, targets: tuple[np.ndarray, np.ndarray] | None = None,
                shared: bool = True, compare_stored: bool = True) -> dict:
    """Health of the training targets ``train`` would build from ``split`` (no embedding needed).

    examples/targets: the labeled rows and their ``(Y, mask)`` when the caller already has them
    (``train`` passes its ``TrainingData``'s; ``compare_stored=False`` for targets that are not meant to
    follow the stored labels, e.g. labeling functions' votes). Steps
    compared, in order: the stored labels, the hierarchy closure, the consensus of several
    judgements (``consensus``), and the hierarchy step the multi-source head runs
    (``taxonomy.propagate_with_ancestors``). With ``shared``, texts shared with another source's test
    rows are counted (``shared_texts``). Returns ``target_health``'s dict plus ``"split"``,
    ``"consensus"`` and ``"shared_texts"``.
    """
    taxonomy = project.taxonomy
    space = taxonomy.space
    lab = examples if examples is not None else project.examples(split=split, labeled=True)
    claimed = claimed_columns(lab, taxonomy, space)
    direct = {s: np.array(sorted(space.index(n) for n in lab.annotated.get(s, ()) if n in space._lookup),
                          dtype=np.int64) for s in claimed}
    A = taxonomy.ancestor_matrix(space)
    stages = []
    if targets is None:
        stored = lab.label_matrix(space)
        Y_closed, known = partial_targets(lab, taxonomy, space)
        Y = apply_consensus(project, lab, Y_closed, consensus)
        stages = [(STEP_STORED, stored), (STEP_CLOSURE, Y_closed), (STEP_CONSENSUS, Y)]
    else:
        Y, known = targets
        if compare_stored:
            stored = lab.label_matrix(space)
            Y_closed, _ = partial_targets(lab, taxonomy, space)
            stages = [(STEP_STORED, stored), (STEP_CLOSURE, Y_closed), (STEP_CONSENSUS, Y)]
    if A.any():
        Y, known = propagate_with_ancestors(Y, known, A)
        if stages:
            stages.append((STEP_HEAD, Y))
    parents = {space.names[p] for p in np.flatnonzero(A.any(axis=0))}
    out = target_health(stages, Y, known, lab.sources, space.names, claimed, direct, parents, A)
    out.update(split=split, consensus=consensus, shared_texts=[])
    if shared:
        pairs = shared_texts(project, training=lab)
        out["shared_texts"] = pairs
        out["warnings"] += shared_text_warnings(pairs, project)
    return out


def shared_texts(project: Project, sources: list[str] | None = None, train_splits=("train", "dev"),
                 test_split: str = "test", training: Examples | None = None) -> list[dict]:
    """Texts one source trains on that another source is tested on.

    Texts are compared through ``text.normalize_text(social=True)`` (case, punctuation and whitespace
    folded, URLs dropped, @mentions anonymised), as transfer evaluation's leak check does.
    sources: only pairs that involve one of these (``add-source`` passes the new one); training: the
    rows a model trains on (``train`` passes its own), instead of every labeled row of ``train_splits``. Returns
    ``[{"train_source", "test_source", "n_texts", "n_test"}]`` (distinct shared texts; the test
    source's distinct test texts), one per pair that shares any, most shared first.
    """
    ex = project.examples()
    if len(ex) == 0:
        return []
    splits = ex.splits.astype(str)
    labeled = np.array([lab is not None for lab in ex.labels], dtype=bool)
    names = np.array([str(s) for s in ex.sources], dtype=object)
    train_rows = labeled & np.isin(splits, list(train_splits))
    test_rows = splits == test_split
    # normalise only the texts compared (train passes its own rows: the store's train rows are not read)
    needed = test_rows if training is not None else test_rows | train_rows
    keys = np.full(len(ex), None, dtype=object)
    keys[needed] = [normalize_text(ex.texts[i], social=True) for i in np.flatnonzero(needed)]
    if training is not None:
        train_keys: dict[str, set] = {}
        for text, s in zip(training.texts, training.sources):
            train_keys.setdefault(str(s), set()).add(normalize_text(text, social=True))
    else:
        train_keys = {s: set(keys[train_rows & (names == s)]) for s in set(names[train_rows])}
    out = []
    for b in sorted(set(map(str, names[test_rows]))):
        tested = set(keys[test_rows & (names == b)])
        for a in sorted(train_keys):
            if a == b or (sources is not None and a not in sources and b not in sources):
                continue
            n = len(tested & train_keys[a])
            if n:
                out.append({"train_source": a, "test_source": b, "n_texts": n, "n_test": len(tested)})
    return sorted(out, key=lambda r: -r["n_texts"])


def shared_text_warnings(pairs: list[dict], project: Project | None = None) -> list[dict]:
    """One warning per ``shared_texts`` pair, naming both sources, the count and the fixes."""
    where = str(project.path) if project is not None else "PROJECT"
    return [_warning(
        "shared_texts", p["train_source"], None,
        f"{p['n_texts']} of the {p['n_test']} test texts of source {p['test_source']!r} are also training texts of "
        f"source {p['train_source']!r} (compared case-, punctuation-, whitespace- and @mention-insensitively): "
        f"the test figures of {p['test_source']!r} are inflated by them.",
        f"train without them (`tagwise train {where} --drop-shared-test-texts`), or remove them from "
        f"the file of {p['train_source']!r} and re-add it (`tagwise add-source --replace`), or give "
        f"{p['test_source']!r} a test holdout of texts {p['train_source']!r} lacks.") for p in pairs]


def drop_shared_test_rows(project: Project, examples: Examples) -> np.ndarray:
    """(n,) bool: rows of ``examples`` to keep, dropping those whose text is a test text of another source."""
    ex = project.examples(split="test")
    test_keys: dict[str, set[str]] = {}
    for text, source in zip(ex.texts, ex.sources.astype(str)):
        test_keys.setdefault(normalize_text(text, social=True), set()).add(source)
    return np.array([not (test_keys.get(normalize_text(t, social=True), set()) - {str(s)})
                     for t, s in zip(examples.texts, examples.sources)], dtype=bool)


def _oof_decisions(head, P: np.ndarray, sources) -> np.ndarray:
    known = getattr(head, "sources_", None)
    if known:
        return np.asarray(head.decide(P, source=[str(s) if str(s) in known else "agnostic" for s in sources]),
                          dtype=bool)
    return np.asarray(head.decide(P), dtype=bool)


def _f1(Y: np.ndarray, Z: np.ndarray, M: np.ndarray) -> np.ndarray:
    tp = (Y & Z & M).sum(0).astype(np.float64)
    fp = (~Y & Z & M).sum(0)
    fn = (Y & ~Z & M).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)


def model_health(head, X: np.ndarray, Y: np.ndarray, mask: np.ndarray, sources, label_names,
                 claimed: dict[str, np.ndarray] | None = None, mode: str = "", alone: bool = True,
                 seed: int = 0, proba: np.ndarray | None = None) -> dict:
    """After training: each source's out-of-fold figures in its own mode against the trivial predictors
    and, with two or more sources, against the same head trained on that source alone.

    head: the fitted head (its ``oof_proba_``, (n, K), in the order of the training rows, is what is
    scored: each row predicted by a fold model that did not see it); X: (n, d) training features;
    Y: (n, K) targets (soft ones count as positive from 0.5); mask: (n, K) known cells; sources: (n,);
    claimed: {source: columns it annotates} (default: columns with a known cell); alone: also fit a
    ``MultiLabelLinear`` with the head's C, pos_weight, cv and max_iter on each source's rows and
    compare its out-of-fold macro-F1; proba: (n, K) probabilities of held-out rows (e.g. the dev split)
    to score instead of the head's out-of-fold ones (X, Y, mask, sources then describe those rows; no
    comparison with the source alone).

    Returns ``{"checked": bool, "rows": "out-of-fold" | "dev", "reason"?, "sources": {source: {"macro_f1", "alone_macro_f1",
    "trivial_macro_f1": {"all_positive", "prior"}, "labels": {label: {"f1", "all_positive", "prior",
    "predicted_rate", "support"}}}}, "warnings"}``.
    """
    P = getattr(head, "oof_proba_", None) if proba is None else proba
    where = "out-of-fold" if proba is None else "dev"
    alone = alone and proba is None
    Y = np.asarray(Y, dtype=np.float64)
    if P is None or np.shape(P) != Y.shape:
        return {"checked": False, "sources": {}, "warnings": [],
                "reason": f"the {mode or type(head).__name__} head keeps no out-of-fold predictions of its "
                          f"training rows; run `tagwise evaluate` on a dev or test split to check it."}
    H = Y >= 0.5
    M = np.asarray(mask, dtype=bool)
    sources = np.asarray(sources, dtype=object).astype(str)
    names = [str(n) for n in label_names]
    Z = _oof_decisions(head, np.asarray(P), sources)
    several = len(set(sources)) >= 2
    params = head.get_params() if hasattr(head, "get_params") else {}
    out: dict[str, dict] = {}
    warnings: list[dict] = []
    for source in sorted(set(map(str, sources))):
        rows = sources == source
        cols = (claimed or {}).get(source)
        if cols is None:
            cols = np.flatnonzero(M[rows].any(0))
        Hs, Zs, Ms = H[rows][:, cols], Z[rows][:, cols], M[rows][:, cols]
        support = (Hs & Ms).sum(0)
        has = support > 0
        f1 = _f1(Hs, Zs, Ms)
        trivial = trivial_f1(Hs, Ms)
        known = Ms.sum(0)
        rate = np.where(known > 0, (Zs & Ms).sum(0) / np.maximum(known, 1), np.nan)
        labels = {}
        for j, k in enumerate(cols.tolist()):
            labels[names[k]] = {"f1": round(float(f1[j]), 4) if has[j] else None, "support": int(support[j]),
                                "all_positive": _num(trivial["all_positive"][j]), "prior": _num(trivial["prior"][j]),
                                "predicted_rate": _num(rate[j])}
            if not has[j] or known[j] == support[j]:
                continue  # no positive, or no negative: the data warnings already say so
            best = max(trivial["all_positive"][j], trivial["prior"][j], 0.0)
            if f1[j] <= best + TRIVIAL_MARGIN:
                warnings.append(_trivial_warning(source, names[k], float(f1[j]), trivial, j, float(rate[j]),
                                                 int(support[j]), int(known[j]), where))
        entry = {"n_rows": int(rows.sum()), "macro_f1": _num(f1[has].mean()) if has.any() else None,
                 "trivial_macro_f1": {"all_negative": 0.0 if has.any() else None,
                                      "all_positive": _num(np.nanmean(trivial["all_positive"][has])) if has.any() else None,
                                      "prior": _num(np.nanmean(trivial["prior"][has])) if has.any() else None},
                 "alone_macro_f1": None, "labels": labels}
        if several and alone and has.any() and rows.sum() >= ALONE_MIN_ROWS:
            alone_f1 = _alone_macro_f1(X[rows], Y[rows][:, cols][:, has], M[rows][:, cols][:, has], params, seed)
            entry["alone_macro_f1"] = _num(alone_f1)
            if alone_f1 is not None and entry["macro_f1"] is not None and entry["macro_f1"] < alone_f1 - ALONE_MARGIN:
                warnings.append(_warning(
                    "below_alone", source, None,
                    f"source {source!r}: the {mode or 'trained'} model's out-of-fold macro-F1 in the mode of {source!r} is "
                    f"{entry['macro_f1']:.3f}, below {alone_f1:.3f} for the same head trained on {source!r} alone "
                    f"(same rows, same folds count): the other sources pull it down.",
                    f"train {source!r} on its own (a project with only it, or `--params "
                    f"'{{\"source_weight\": \"balanced\"}}'` so small sources weigh more); check the other sources' "
                    f"label maps against the one of {source!r} (the same name may mean different things)."))
        out[source] = entry
    return {"checked": True, "rows": where, "sources": out, "warnings": warnings}


def _num(v) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 4)


def _trivial_warning(source, label, f1, trivial, j, rate, support, known, where="out-of-fold") -> dict:
    ap, pr = float(trivial["all_positive"][j]), float(trivial["prior"][j])
    which = ("predicting it on every row" if ap >= pr else "predicting it at random at its positive rate")
    if rate >= PREDICTED_EVERYWHERE:
        cause = (f"it is predicted on {rate:.0%} of the rows, so its cut sits at (nearly) zero: soft targets "
                 f"read as positives, or too few negatives")
        fix = ("compare `--consensus majority` (hard targets); check the health table's negatives and expected "
               "positives for this label.")
    elif rate == 0:
        cause = "it is never predicted: its positives are too few or were rounded away"
        fix = (f"check the health table's positives and expected positives for {label!r}; label more examples "
               f"(`tagwise suggest`), or compare `--consensus majority`.")
    else:
        cause = f"it is predicted on {rate:.0%} of the rows ({support} of {known} are positive)"
        fix = (f"label more examples of {label!r} (`tagwise suggest`), check its examples in `tagwise audit`, "
               f"or compare `--consensus majority`.")
    return _warning("no_better_than_trivial", source, label,
                    f"source {source!r}, label {label!r}: {where} F1 {f1:.3f} in the source's own mode is no "
                    f"better than {which} ({max(ap, pr):.3f}); {cause}.", fix)


def _alone_macro_f1(X, Y, M, params: dict, seed: int) -> float | None:
    """Out-of-fold macro-F1 of a ``MultiLabelLinear`` with the head's settings on one source's rows."""
    C = params.get("C", 1.0)
    head = MultiLabelLinear(C=C if isinstance(C, (int, float)) else 1.0,
                            pos_weight=params.get("pos_weight", "auto"), cv=int(params.get("cv", 3) or 3),
                            max_iter=int(params.get("max_iter", 100) or 100), random_state=seed)
    head.fit(X, Y, M)
    H = np.asarray(Y) >= 0.5
    Z = head.decide(head.oof_proba_).astype(bool)
    has = (H & M).sum(0) > 0
    return float(_f1(H, Z, M)[has].mean()) if has.any() else None


def format_health(health: dict, title: str = "training data health", warnings: bool = True) -> str:
    """Plain-text rendering of a health dict (``data_health``, or ``train``'s ``health``) for the terminal;
    ``warnings=False`` leaves the warnings out (the CLI prints them to stderr, ``health_warnings``)."""
    before = health.get("before", health)
    after = health.get("after") or {}
    lines = []
    table = before.get("sources", {})
    if table:
        lines.append(f"{title} (targets: positive from 0.5; expected = sum of soft targets):")
        width = max(8, *(len(s) for s in table)) + 2
        lwidth = max(8, *(len(n) for s in table.values() for n in s["labels"] or ["label"])) + 2
        header = f"  {'source':<{width}}{'label':<{lwidth}}{'pos':>7}{'neg':>7}{'unknown':>9}{'expected':>10}"
        scored = after.get("sources", {})
        if scored:
            f1_name = "oof F1" if after.get("rows", "out-of-fold") == "out-of-fold" else "dev F1"
            header += f"{f1_name:>8}{'all-pos':>8}{'prior':>7}"
        lines.append(header)
        for source, entry in table.items():
            for label, c in entry["labels"].items():
                shown = label if c.get("claimed", True) else label + "*"
                line = (f"  {source:<{width}}{shown:<{lwidth}}{c['positives']:>7}{c['negatives']:>7}"
                        f"{c['unknown']:>9}{c['expected_positives']:>10.1f}")
                m = scored.get(source, {}).get("labels", {}).get(label)
                if m is not None:
                    line += "".join(("—" if m[key] is None else f"{m[key]:.3f}").rjust(w)
                                    for key, w in (("f1", 8), ("all_positive", 8), ("prior", 7)))
                lines.append(line)
        if any(not c.get("claimed", True) for e in table.values() for c in e["labels"].values()):
            lines.append("  * not annotated by the source: positives implied by its children, the rest unknown")
        for source, m in scored.items():
            if m.get("macro_f1") is None:
                continue
            triv = m["trivial_macro_f1"]
            lines.append(f"  {source}: {after.get('rows', 'out-of-fold')} macro-F1 {m['macro_f1']:.3f} in its own mode "
                         f"(all-positive "
                         f"{triv['all_positive']:.3f}, prior {triv['prior']:.3f}, all-negative 0.000"
                         + (f"; trained alone {m['alone_macro_f1']:.3f}" if m.get("alone_macro_f1") is not None else "")
                         + ")")
    lines += [f"  note: {n['message']} {n['fix']}" for n in before.get("notes", [])]
    if after and not after.get("checked", True):
        lines.append(f"  not checked after training: {after.get('reason')}")
    if warnings:
        lines += [format_warning(w) for w in health_warnings(health)]
    return "\n".join(lines)


def health_warnings(health: dict) -> list[dict]:
    """Every warning of a health dict (``data_health``'s, or ``{"before", "after"}``)."""
    before = health.get("before", health)
    return list(before.get("warnings", [])) + list((health.get("after") or {}).get("warnings", []))


def format_warning(w: dict) -> str:
    return f"tagwise: warning: {w['message']} Fix: {w['fix']}"


def project_health(project: Project, model: str | None = None) -> dict:
    """What the model page and the report show: ``{"model", "before", "after", "warnings"}``.

    The health that ``train`` saved with the current (or named) model (``model.json`` info
    ``health``: the table before training and the out-of-fold figures after it); without a model, or
    for a model saved before health existed, the health of the train split's targets now (``after``
    empty, ``model`` None).
    """
    from ..types import TagwiseError
    from .models import load_project_model

    try:
        loaded = load_project_model(project, model)
    except TagwiseError:
        if model is not None:
            raise
        loaded = None
    saved = loaded.info.get("health") if loaded is not None else None
    if saved:
        return {"model": loaded.name, "before": saved["before"], "after": saved.get("after") or {},
                "warnings": health_warnings(saved)}
    before = data_health(project)
    return {"model": None, "before": before, "after": {}, "warnings": list(before["warnings"])}
