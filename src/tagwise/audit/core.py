"""The whole audit on arrays: cross-fitting, kNN evidence, typed findings, duplicates, outliers."""
from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..types import TagwiseError
from .duplicates import conflicting_duplicates, outlier_scores
from ..neighbors import nearest_neighbors, neighbor_label_votes
from .label_quality import (LabelIssues, blend_evidence, cell_issue_scores, estimate_label_errors,
                            find_label_issues, label_quality_scores, worst_of_views)
from ..folds import stratified_folds
from .oof import label_dependency_proba, out_of_fold_proba


@dataclass
class AuditResult:
    """Everything the audit found, row-aligned with the input (n examples, K labels).

    pred_probs: (n, K) out-of-fold model probabilities; neighbor_votes: (n, K) kNN label votes;
    evidence: (n, K) their blend, which the typed findings use; dependency_probs: (n, K)
    out-of-fold probabilities given the other given labels (multi-label only, else None), a
    second ranking view; issues: typed cell findings; label_quality: (n,) in (0, 1], lower = more
    likely mislabeled (multi-label: from the per-label view unless ``views`` asks for another); duplicates: conflicting pairs
    ``{"i", "j", "similarity", "exact"}``; outlier_score: (n,) percentile; is_outlier: (n,) bool;
    neighbors / similarity: (n, k) kNN graph; seconds: wall time per stage.
    """

    multi_label: bool
    pred_probs: np.ndarray
    neighbor_votes: np.ndarray
    evidence: np.ndarray
    dependency_probs: np.ndarray | None
    issues: LabelIssues
    label_quality: np.ndarray
    duplicates: dict[str, np.ndarray]
    outlier_score: np.ndarray
    is_outlier: np.ndarray
    neighbors: np.ndarray
    similarity: np.ndarray
    estimated_errors: float = 0.0
    estimated_errors_per_label: np.ndarray | None = None
    flag_budget: int = 0
    flagged_rows: np.ndarray | None = None
    choices: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def is_flagged(self) -> np.ndarray:
        """(n,) bool: the label issues within the flag budget, conflicting duplicates and outliers."""
        flagged = self.issues.is_issue | self.is_outlier
        flagged[self.duplicates["i"]] = True
        flagged[self.duplicates["j"]] = True
        return flagged

    def ranking(self) -> np.ndarray:
        """(n,) example indices, most likely mislabeled first."""
        return np.argsort(self.label_quality, kind="stable")


# Rows per partition of a partitioned audit. Chosen by memory, not by ranking quality: the
# in-memory audit peaked at ~10 KB per row at d = 512 and K = 100 (bench/results/audit_scale_1m.json),
# so a 1M-row partition needs ~8 GB besides X, a third of this 24 GB machine and a sixteenth of a
# 128 GB worker; below ~100k rows a partition's kNN votes and cross-fitted model start to see
# less data than the audit's own tests were tuned on (about 2k-40k rows), so far above that.
PARTITION_ROWS = 1_000_000


def check_audit_inputs(labels: np.ndarray, mask: np.ndarray | None, folds: int, where: str = "audit") -> None:
    """Raise a TagwiseError for inputs the audit cannot score meaningfully."""
    Y = np.asarray(labels, dtype=bool)
    n, K = Y.shape
    if n < folds:
        raise TagwiseError(f"{where}: {n} labeled examples are fewer than the {folds} folds of cross-fitting. "
                           f"Fix: add labeled examples or pass a smaller --folds (at least 2).")
    M = np.ones_like(Y) if mask is None else np.asarray(mask, dtype=bool)
    pos = (Y & M).sum(0)
    neg = (~Y & M).sum(0)
    if not ((pos > 0) & (neg > 0)).any():
        present = [k for k in range(K) if pos[k] > 0]
        raise TagwiseError(f"{where}: the data has only one class (every example carries the same labels, "
                           f"label columns {present}), so nothing can be contrasted. Fix: audit a split or "
                           f"set of sources with at least two classes.")


# kNN evidence per kind of data: (neighbours, weight of their votes in the evidence). A single-label
# class vote is one K-way histogram, better estimated from many neighbours; sparse multi-label
# votes blur when far neighbours join. Both pairs were chosen on seeded planted noise
# (bench_audit.py, seed 0). Single-label data does not use the weight: it picks its own from
# KNN_WEIGHT_GRID by the out-of-fold log loss of the given labels (``choose_knn_weight``), because on
# long texts (ISEAR situation descriptions) the neighbours' votes are noisier than the linear model
# and a fixed weight hurt; on multi-label data that per-cell log loss preferred no kNN at all on
# the real-error settings where the votes helped the ranking, so the fixed weight stays.
KNN_DEFAULTS = {"single_label": (50, 0.35), "multi_label": (10, 0.2)}
KNN_WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5)


def choose_knn_weight(P: np.ndarray, V: np.ndarray, labels: np.ndarray, grid=KNN_WEIGHT_GRID) -> float:
    """Single-label kNN vote weight: the one in ``grid`` whose blend ``(1 - w) P + w V``, renormalised,
    gives the given classes the lowest mean log loss. P (n, K) is out of fold and V (n, K) excludes
    each row from its own neighbours, so this is a cross-validated choice on the data audited."""
    Y = np.asarray(labels, dtype=bool)
    losses = []
    for w in grid:
        E = blend_evidence(P, V, w)
        E = E / np.maximum(E.sum(1, keepdims=True), 1e-12)
        losses.append(-np.log(np.clip(E[Y], 1e-6, 1.0)).mean())
    return float(grid[int(np.argmin(losses))])


def audit_arrays(X: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                 texts: Sequence[str] | None = None, folds: int = 5, k: int | None = None,
                 knn_weight: float | None = None,
                 multi_label: bool | None = None, slack: float = 0.0, duplicate_similarity: float = 0.95,
                 estimator_factory: Callable[[], object] | None = None,
                 random_state: int = 0, progress: bool = True, views: str = "auto",
                 quality_method: str = "auto", max_flags: int | None = None,
                 error_count_method: str = "auto", map_fn=None,
                 partition_rows: int | None = PARTITION_ROWS, scratch_dir=None) -> AuditResult:
    """Audit given labels against the data.

    X: (n, d) float embeddings; labels: (n, K) {0,1}; mask: optional (n, K) bool (False = label
    unknown for that example); texts: n strings for exact-duplicate detection (optional);
    multi_label: None infers it (False when every row has exactly one label); k, knn_weight:
    neighbours and their vote weight, None = ``KNN_DEFAULTS`` for the kind of data.
    views, quality_method: ranking ablations (see ``rank_rows``; "auto" = the default choice:
    ``DEFAULT_VIEWS``, the per-label view);
    max_flags: number of rows to flag (None = the estimated number of errors).
    map_fn: ``tagwise.engine``'s ``map`` to spread the cross-fitting folds and the kNN search over
    workers (e.g. Ray); None runs them in this process.

    The result carries ``estimated_errors`` (rows) and ``estimated_errors_per_label`` (K,)
    (``estimate_label_errors``), ``flag_budget`` (rows flagged: the rounded estimate, or
    ``max_flags``) and ``flagged_rows`` (n,) bool, the ``flag_budget`` lowest-quality rows.

    partition_rows: above this many rows the audit runs per random partition of about that size
    (``_audit_partitioned``), so its memory stays that of one partition; None never partitions.
    X and labels may then be np.memmaps, and the result's (n, K) and (n, k) arrays are read-only
    maps of files in a temporary folder under ``scratch_dir`` (default: the system's), removed
    from the directory at once and from the disk when the result is dropped.
    """
    if partition_rows is not None and partition_rows < 1:
        raise TagwiseError(f"audit: --partition-rows must be at least 1, got {partition_rows}. Fix: pass a row count.")
    if partition_rows is not None and len(labels) > partition_rows:
        return _audit_partitioned(X, labels, mask, texts, partition_rows, scratch_dir, folds=folds, k=k,
                                  knn_weight=knn_weight, multi_label=multi_label, slack=slack,
                                  duplicate_similarity=duplicate_similarity, estimator_factory=estimator_factory,
                                  random_state=random_state, progress=progress, views=views,
                                  quality_method=quality_method, max_flags=max_flags,
                                  error_count_method=error_count_method, map_fn=map_fn)
    return _audit_in_memory(X, labels, mask, texts, folds=folds, k=k, knn_weight=knn_weight,
                            multi_label=multi_label, slack=slack, duplicate_similarity=duplicate_similarity,
                            estimator_factory=estimator_factory, random_state=random_state, progress=progress,
                            views=views, quality_method=quality_method, max_flags=max_flags,
                            error_count_method=error_count_method, map_fn=map_fn)


def _audit_in_memory(X, labels, mask, texts, folds, k, knn_weight, multi_label, slack, duplicate_similarity,
                     estimator_factory, random_state, progress, views, quality_method, max_flags,
                     error_count_method, map_fn, restrict: bool = True) -> AuditResult:
    """``audit_arrays`` on arrays held in memory. ``restrict=False`` (a partition of a partitioned
    audit) skips the flag budget: ``issues`` then holds every cell the anchors flag, ``flagged_rows``
    is None, and the budget is applied once over all partitions."""
    t0 = time.perf_counter()
    Y = np.asarray(labels).astype(np.uint8)
    check_audit_inputs(Y, mask, folds)
    if max_flags is not None and max_flags < 0:
        raise TagwiseError(f"audit: --max-flags must be 0 or more, got {max_flags}. Fix: pass a row count.")
    if multi_label is None:
        multi_label = not bool((Y.sum(1) == 1).all())
    default_k, default_weight = KNN_DEFAULTS["multi_label" if multi_label else "single_label"]
    k = default_k if k is None else k
    knn_weight_given = knn_weight
    knn_weight = default_weight if knn_weight is None else knn_weight
    seconds = {}
    fold_ids = stratified_folds(Y if mask is None else Y * np.asarray(mask, dtype=bool), folds, random_state)
    P = out_of_fold_proba(X, Y, mask, folds=folds, estimator_factory=estimator_factory,
                          random_state=random_state, fold_ids=fold_ids, progress=progress, map_fn=map_fn)
    P_dep = label_dependency_proba(P, Y, mask, fold_ids=fold_ids) if multi_label else None
    seconds["cross_fit"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    nbrs, sims = nearest_neighbors(X, k=k, random_state=random_state, progress=progress, map_fn=map_fn)
    V = neighbor_label_votes(nbrs, sims, Y, mask)
    seconds["knn"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    if not multi_label and knn_weight_given is None:
        knn_weight = choose_knn_weight(P, V, Y)
    E = blend_evidence(P, V, knn_weight)
    if not multi_label:
        E = E / np.maximum(E.sum(1, keepdims=True), 1e-12)
    S = cell_issue_scores(Y, E, mask)
    issues = find_label_issues(Y, E, mask, multi_label=multi_label, slack=slack, cell_scores=S)
    choices = {"knn_weight": knn_weight, "k": k}
    if views == "auto":
        views = DEFAULT_VIEWS
        if multi_label:  # reported, not used: the earlier rule read them (see DEFAULT_VIEWS)
            choices["dependency_echo"] = round(dependency_echo(P, P_dep, Y, mask), 4)
            choices["surprise_coupling"] = round(surprise_coupling(P, Y, mask), 4)
    choices.update(views=views, quality_method=quality_method)
    quality = rank_rows(Y, E, P, P_dep, V, knn_weight, mask, multi_label, views, quality_method)
    per_label, est_rows = estimate_label_errors(Y, E, mask, method=error_count_method)
    budget = int(round(est_rows)) if max_flags is None else min(int(max_flags), len(Y))
    flagged_rows = None
    if restrict:
        flagged_rows = np.zeros(len(Y), dtype=bool)
        flagged_rows[np.argsort(quality, kind="stable")[:budget]] = True
        issues = _restrict_issues(issues, flagged_rows, Y, E, multi_label)
    seconds["scoring"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    dups = conflicting_duplicates(texts if texts is not None else [""] * len(Y), Y, mask, nbrs, sims,
                                  min_similarity=duplicate_similarity)
    out_score, is_out = outlier_scores(sims)
    seconds["duplicates_outliers"] = time.perf_counter() - t3
    seconds["total"] = time.perf_counter() - t0
    return AuditResult(multi_label=multi_label, pred_probs=P, neighbor_votes=V, evidence=E,
                       dependency_probs=P_dep, issues=issues,
                       label_quality=quality, duplicates=dups, outlier_score=out_score, is_outlier=is_out,
                       neighbors=nbrs, similarity=sims, estimated_errors=est_rows,
                       estimated_errors_per_label=per_label, flag_budget=budget, flagged_rows=flagged_rows,
                       choices=choices, seconds=seconds)


# The multi-label ranking view of ``views="auto"``: the per-label evidence only ("plain"). Chosen by
# bench/choose_audit.py on development data only (Reuters-21578 train and GoEmotions train with its
# Ekman groups as parent labels, planted and n-gram instance noise at 10% / 25%, seed 100; the
# real-error settings took no part): by mean AUPRC of the row ranking over the 16 settings, always
# plain 0.477, the earlier echo rule (drop the dependency view only when the other labels explain
# >= 0.5 of the log loss and the surprises are coupled >= 0.5) 0.470, always the worse of the two
# views 0.463. The dependency view helps on lone missed labels (Reuters "missing") and hides swaps and
# instance-dependent slips, which outweighed it there. The earlier rule had been designed after
# seeing HS-Brexit and ConvAbuse, the settings it was reported on (issue 29). views="worst" and
# "dependency" stay available; the echo and the coupling are still measured and reported in
# ``choices`` (``dependency_echo``, ``surprise_coupling``) so a user can see when the dependency
# view may pay.
DEFAULT_VIEWS = "plain"


def surprise_coupling(P: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                      min_support: int = 10, chunk: int = 65_536) -> float:
    """Largest Pearson correlation, over pairs of labels, of the per-cell surprise ``|y - p|``
    (P (n, K) out-of-fold probabilities, labels (n, K) {0,1}). High when the model is wrong about
    two labels on the same rows, i.e. when label errors come in coupled cells. Unknown cells are set
    to their label's mean; labels with fewer than ``min_support`` known positives or negatives are
    left out (their correlations rest on a handful of rows). Two passes over ``chunk`` rows at a
    time, so memory stays at a chunk's worth of cells. Returns 0.0 with fewer than two labels."""
    Y = np.asarray(labels)
    M = None if mask is None else np.asarray(mask, dtype=bool)
    n = len(Y)
    pos = Y.astype(bool).sum(0) if M is None else (Y.astype(bool) & M).sum(0)
    known = np.full(Y.shape[1], n) if M is None else M.sum(0)
    keep = np.flatnonzero((pos >= min_support) & (known - pos >= min_support))
    if len(keep) < 2:
        return 0.0

    def block(s):
        S = np.abs(Y[s:s + chunk, keep].astype(np.float32) - np.asarray(P[s:s + chunk, keep], dtype=np.float32))
        return S, (None if M is None else M[s:s + chunk, keep])
    total = np.zeros(len(keep))
    for s in range(0, n, chunk):
        S, Mk = block(s)
        total += (S if Mk is None else S * Mk).sum(0, dtype=np.float64)
    mean = (total / np.maximum(known[keep], 1)).astype(np.float32)
    C = np.zeros((len(keep), len(keep)))
    for s in range(0, n, chunk):
        S, Mk = block(s)
        S = (S if Mk is None else np.where(Mk, S, mean)) - mean
        C += (S.T @ S).astype(np.float64)
    std = np.sqrt(np.diag(C).copy())
    C /= np.maximum(np.outer(std, std), 1e-12)
    np.fill_diagonal(C, -1.0)
    return float(C.max())


def dependency_echo(P: np.ndarray, P_dep: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                    chunk: int = 65_536) -> float:
    """Share of the out-of-fold log loss of the given labels under the per-label probabilities P
    (n, K) that the label-dependency probabilities P_dep (n, K) remove: ``1 - LL(P_dep) / LL(P)``
    over known cells (both are cross-fitted on the same folds, so neither has seen a row's own label).
    Summed ``chunk`` rows at a time, so its float64 temporaries hold a chunk's cells, not n x K."""
    n = len(labels)

    def log_loss(Q):
        total = 0.0
        for s in range(0, n, chunk):
            Y = np.asarray(labels[s:s + chunk], dtype=bool)
            q = np.clip(np.asarray(Q[s:s + chunk], dtype=np.float64), 1e-4, 1 - 1e-4)
            cells = np.where(Y, np.log(q), np.log1p(-q))
            total += float(-(cells if mask is None else cells * np.asarray(mask[s:s + chunk], dtype=bool)).sum())
        return total
    base = log_loss(P)
    return 1.0 - log_loss(P_dep) / base if base > 0 else 0.0


def rank_rows(Y, E, P, P_dep, V, knn_weight, mask, multi_label, views="plain", quality_method="auto"):
    """(n,) label quality (lower = more suspicious) from the evidence E (n, K). ``views``: "plain"
    (the per-label evidence only), "dependency" (evidence from 0.5 * (P + P_dep), the
    label-dependency view, blended with the kNN votes V the same way) or "worst" (the worse
    percentile rank of the two, ``worst_of_views``); ``quality_method`` as in
    ``label_quality_scores``, "auto" = "worst_pair" (the posterior blend ranked real annotator
    errors worse in the ablation of bench/bench_audit_real.py)."""
    method = "worst_pair" if quality_method == "auto" else quality_method
    if not multi_label or P_dep is None or views == "plain":
        return label_quality_scores(Y, E, mask, method=method)
    E_dep = blend_evidence(0.5 * (P + P_dep), V, knn_weight)
    if views == "dependency":
        return label_quality_scores(Y, E_dep, mask, method=method)
    return worst_of_views(label_quality_scores(Y, E, mask, method=method),
                          label_quality_scores(Y, E_dep, mask, method=method))


def _restrict_issues(issues: LabelIssues, rows: np.ndarray, Y: np.ndarray, E: np.ndarray,
                     multi_label: bool) -> LabelIssues:
    """Typed findings on the budgeted rows only. A budgeted row without a typed cell gets its most
    suspicious cell (single-label: the given class and the most likely other class)."""
    flagged = issues.flagged & rows[:, None]
    bare = rows & ~flagged.any(1)
    Yb = Y.astype(bool)
    if bare.any():
        idx = np.flatnonzero(bare)
        if multi_label:
            S = np.nan_to_num(issues.cell_scores[idx], nan=-1.0)
            flagged[idx, S.argmax(1)] = True
        else:
            other = np.where(Yb[idx], -np.inf, E[idx]).argmax(1)
            flagged[idx, Yb[idx].argmax(1)] = True
            flagged[idx, other] = True
    kind = np.where(flagged, np.where(Yb, -1, 1), 0).astype(np.int8)
    suggested = np.where(flagged, ~Yb, Yb).astype(np.uint8)
    return LabelIssues(flagged=flagged, kind=kind, cell_scores=issues.cell_scores, suggested=suggested,
                       is_issue=flagged.any(1))


def _audit_partitioned(X, labels, mask, texts, partition_rows: int, scratch_dir, folds, k, knn_weight,
                       multi_label, slack, duplicate_similarity, estimator_factory, random_state, progress,
                       views, quality_method, max_flags, error_count_method, map_fn) -> AuditResult:
    """``audit_arrays`` one random partition of rows at a time (``partition.partition_runs``).

    Each partition is audited on its own: cross-fitting folds and kNN neighbours come from inside
    it, so at most one partition's arrays are in memory; its row-aligned outputs go to files. The
    data-driven choices (kNN weight on single-label data, the ranking views on multi-label data)
    are made on the first partition and reused, so every partition's label quality is on the same
    scale (a percentile rank within a random partition estimates the rank over all rows). Then,
    over all rows: the error estimates are summed, the flag budget takes the lowest label quality
    of all rows, outliers are judged on all rows' neighbour distances, and exact duplicates are
    found across partitions by text hash (near duplicates only within a partition: they come
    from its kNN graph). Memory besides X and labels: one partition's audit plus a few (n,) vectors.
    """
    import shutil
    import tempfile

    from tqdm.auto import tqdm

    from .duplicates import conflicting_pairs, mean_neighbor_distance, outliers_from_distance
    from .partition import (RowFile, exact_duplicate_pairs, partition_runs, run_rows,
                            take_runs, text_hashes)

    t0 = time.perf_counter()
    if max_flags is not None and max_flags < 0:
        raise TagwiseError(f"audit: --max-flags must be 0 or more, got {max_flags}. Fix: pass a row count.")
    X, labels = (A if isinstance(A, np.ndarray) else np.asarray(A) for A in (X, labels))
    mask = None if mask is None or isinstance(mask, np.ndarray) else np.asarray(mask)
    n, K = labels.shape
    if X.shape[0] != n or (mask is not None and mask.shape != labels.shape):
        raise TagwiseError(f"audit: X {X.shape}, labels {labels.shape} and mask "
                           f"{None if mask is None else mask.shape} must have the same rows (and mask the shape of labels).")
    if multi_label is None:  # over all rows, so every partition scores the same kind of data
        multi_label = any(bool((np.asarray(labels[s:s + 262_144]).sum(1) != 1).any())
                          for s in range(0, n, 262_144))
    parts = partition_runs(n, partition_rows, random_state)
    directory = Path(tempfile.mkdtemp(prefix="tagwise-audit-", dir=scratch_dir))
    try:
        quality = np.empty(n, np.float32)
        distance = np.empty(n, np.float32)
        per_label, est_rows = np.zeros(K), 0.0
        near = []
        seconds: dict[str, float] = {}
        files: dict[str, RowFile] = {}
        choices: dict = {}
        for p, runs in enumerate(tqdm(parts, desc="audit: partitions", unit="partition", disable=not progress)):
            rows = run_rows(runs)
            Xp = take_runs(X, runs, np.float32)
            Yp = take_runs(labels, runs, np.uint8)
            Mp = None if mask is None else take_runs(mask, runs, bool)
            check_audit_inputs(Yp, Mp, folds, where=f"audit partition {p + 1} of {len(parts)} ({len(rows)} rows)")
            res = _audit_in_memory(Xp, Yp, Mp, None, folds=folds, k=k, knn_weight=knn_weight,
                                   multi_label=multi_label, slack=slack, duplicate_similarity=duplicate_similarity,
                                   estimator_factory=estimator_factory, random_state=random_state,
                                   progress=progress and len(parts) == 1, views=views,
                                   quality_method=quality_method, max_flags=0,
                                   error_count_method=error_count_method, map_fn=map_fn, restrict=False)
            del Xp
            if p == 0:  # fix the first partition's choices for the others
                choices = dict(res.choices)
                k, knn_weight, views = res.choices["k"], res.choices["knn_weight"], res.choices["views"]
                outputs = {"pred_probs": (K, np.float32), "neighbor_votes": (K, np.float32),
                           "evidence": (K, np.float32), "cell_scores": (K, np.float32),
                           "flagged_any": (K, bool), "neighbors": (k, np.int64), "similarity": (k, np.float32)}
                if res.dependency_probs is not None:
                    outputs["dependency_probs"] = (K, np.float32)
                files = {name: RowFile(directory, name, n, width, dtype) for name, (width, dtype) in outputs.items()}
            for name, values in (("pred_probs", res.pred_probs), ("neighbor_votes", res.neighbor_votes),
                                 ("evidence", res.evidence), ("cell_scores", res.issues.cell_scores),
                                 ("flagged_any", res.issues.flagged), ("similarity", res.similarity),
                                 ("dependency_probs", res.dependency_probs)):
                if name in files:
                    files[name].write(runs, values)
            files["neighbors"].write(runs, np.where(res.neighbors >= 0, rows[np.maximum(res.neighbors, 0)], -1))
            quality[rows] = res.label_quality
            distance[rows] = mean_neighbor_distance(res.similarity)
            per_label += res.estimated_errors_per_label
            est_rows += res.estimated_errors
            d = res.duplicates
            near.append((rows[d["i"]], rows[d["j"]], d["similarity"]))
            for stage, sec in res.seconds.items():
                seconds[stage] = seconds.get(stage, 0.0) + sec
            del res, Yp, Mp
        t1 = time.perf_counter()
        budget = int(round(est_rows)) if max_flags is None else min(int(max_flags), n)
        flagged_rows = np.zeros(n, dtype=bool)
        flagged_rows[np.argsort(quality, kind="stable")[:budget]] = True
        # the budget's typed findings, row by row (``_restrict_issues`` is row-wise)
        out = {name: RowFile(directory, name, n, K, dtype)
               for name, dtype in (("flagged", bool), ("kind", np.int8), ("suggested", np.uint8))}
        is_issue = np.zeros(n, dtype=bool)
        for s in range(0, n, 65_536):
            e = min(s + 65_536, n)
            Yc = np.asarray(labels[s:e], dtype=np.uint8)
            part = LabelIssues(flagged=files["flagged_any"].read(s, e), kind=None,
                               cell_scores=files["cell_scores"].read(s, e), suggested=None, is_issue=None)
            chunk = _restrict_issues(part, flagged_rows[s:e], Yc, files["evidence"].read(s, e), multi_label)
            for name in out:
                out[name].write([(s, e)], getattr(chunk, name))
            is_issue[s:e] = chunk.is_issue
        out_score, is_out = outliers_from_distance(distance)
        ni, nj, ns = (np.concatenate(v) for v in zip(*near))
        if texts is not None:
            ei, ej = exact_duplicate_pairs(text_hashes(texts))
        else:
            ei, ej = np.zeros(0, np.int64), np.zeros(0, np.int64)
        dups = conflicting_pairs(labels, mask, np.concatenate([ei, ni]), np.concatenate([ej, nj]),
                                 np.concatenate([np.ones(len(ei), np.float32), ns]),
                                 np.concatenate([np.ones(len(ei), bool), np.zeros(len(ni), bool)]))
        seconds["combine"] = time.perf_counter() - t1
        seconds["total"] = time.perf_counter() - t0
        m = {name: f.mapped() for name, f in {**files, **out}.items() if name != "flagged_any"}
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # open maps keep their files until dropped
    issues = LabelIssues(flagged=m["flagged"], kind=m["kind"], cell_scores=m["cell_scores"],
                         suggested=m["suggested"], is_issue=is_issue)
    choices.update(partitions=len(parts), partition_rows=int(partition_rows))
    return AuditResult(multi_label=bool(multi_label), pred_probs=m["pred_probs"], neighbor_votes=m["neighbor_votes"],
                       evidence=m["evidence"], dependency_probs=m.get("dependency_probs"), issues=issues,
                       label_quality=quality, duplicates=dups, outlier_score=out_score, is_outlier=is_out,
                       neighbors=m["neighbors"], similarity=m["similarity"], estimated_errors=est_rows,
                       estimated_errors_per_label=per_label, flag_budget=budget, flagged_rows=flagged_rows,
                       choices=choices, seconds=seconds)
