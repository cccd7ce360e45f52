"""Load a benchmark dataset (spec in bench/specs) as embeddings + label matrices per split.

Shared by bench_fewshot.py and bench_active.py. Embeddings go through the team cache
(``common.CACHE``: ``TAGWISE_CACHE_DIR`` or .cache/emb) so nothing is encoded twice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common import BENCH, CACHE  # noqa: F401  (CACHE is re-exported to the few-shot benches)
from tagwise.encoders import embed_texts, get_encoder
from tagwise.evaluate.transfer import macro_f1 as _macro_f1_over
from tagwise.learn.fewshot import FewShotClassifier
from tagwise.learn.thresholds import best_f1_thresholds
from tagwise.sources import ingest, load_spec
from tagwise.types import LabelSpace


@dataclass
class Split:
    texts: list
    X: np.ndarray      # (n, d) float32
    Y: np.ndarray      # (n, K) uint8


def train_halves(name: str, max_rows: int, eval_rows: int, min_positives: int = 0, progress: bool = False):
    """(names, A, B, embed) from the train split only, for the choice scripts (no dev or test row is read):
    a seeded sample (seed 0) of at most ``max_rows`` train rows (only those are embedded, with USE),
    cut in half A (draws + pool) and half B (scoring, <= ``eval_rows``). Labels with fewer than
    ``min_positives`` positives in the sample are dropped (a few-shot draw needs positives to draw).
    A and B are dicts ``{"X": (n, 512) float32, "Y": (n, K) uint8, "texts": list[str]}``; ``embed(texts)``
    embeds more texts through the cache."""
    rows = ingest(load_spec(BENCH / "specs" / f"{name}.yaml"))
    names = list(rows.annotated_labels)
    train = np.flatnonzero(np.asarray(rows.splits) == "train")
    order = train[np.random.default_rng(0).permutation(len(train))][:max_rows]
    texts = [rows.texts[i] for i in order]
    enc = get_encoder("use")
    X, _ = embed_texts(texts, enc, CACHE, progress=progress)
    Y = LabelSpace(tuple(names)).to_matrix([rows.labels[i] for i in order])
    keep = Y.sum(0) >= min_positives
    a, b = np.arange(len(order) // 2), np.arange(len(order) // 2, len(order))[:eval_rows]
    pick = lambda idx: {"X": X[idx], "Y": Y[idx][:, keep], "texts": [texts[i] for i in idx]}  # noqa: E731
    embed = lambda t: embed_texts(list(t), enc, CACHE, progress=False)[0]  # noqa: E731
    return [n for n, k in zip(names, keep) if k], pick(a), pick(b), embed


def load_dataset(name: str, encoder: str = "use", progress: bool = False):
    """Returns (label names, {split: Split}, encoder object)."""
    rows = ingest(load_spec(BENCH / "specs" / f"{name}.yaml"))
    names = list(rows.annotated_labels)
    space = LabelSpace(tuple(names))
    enc = get_encoder(encoder)
    X, _ = embed_texts(rows.texts, enc, CACHE, progress=progress)
    Y = space.to_matrix(rows.labels)
    splits = np.asarray(rows.splits)
    out = {}
    for s in ("train", "dev", "test"):
        idx = np.flatnonzero(splits == s)
        out[s] = Split([rows.texts[i] for i in idx], X[idx], Y[idx])
    return names, out, enc


def sample_k_per_label(Y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of a seeded draw with at least ``k`` positives for every label (where possible).

    Procedure (multi-label): shuffle the rows with ``seed``; visit labels from rarest to most
    frequent; for each, add shuffled rows carrying that label until the drawn set holds >= k
    positives of it (rows already drawn for earlier labels count). The draw therefore has exactly
    k positives for the rarest labels and usually more for frequent, co-occurring ones.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(Y))
    chosen = np.zeros(len(Y), dtype=bool)
    counts = np.zeros(Y.shape[1], dtype=np.int64)
    for lab in np.argsort(Y.sum(0), kind="stable"):
        if counts[lab] >= k:
            continue
        for i in order[Y[order, lab] > 0]:
            if chosen[i]:
                continue
            chosen[i] = True
            counts += Y[i].astype(np.int64)
            if counts[lab] >= k:
                break
    return np.flatnonzero(chosen)


def macro_f1(Y: np.ndarray, P: np.ndarray) -> float:
    """Macro-F1 of (n, K) {0,1} predictions ``P`` against ``Y`` over all K labels."""
    return _macro_f1_over(Y, P, np.arange(Y.shape[1]))


def fewshot_cv_thresholds(oof_fn, Y, seed: int) -> np.ndarray:
    """Per-label thresholds by FewShotClassifier's own procedure, for a peer.

    oof_fn(train_mask, test_mask) -> (n_test, K) probabilities of the held-out rows. The folds are
    FewShotClassifier's (seeded permutation of ``arange(n) % cv``), the cut is its
    ``best_f1_thresholds(..., min_positives=2, shrink=threshold_shrink, default=0.5)``.
    """
    ref = FewShotClassifier(random_state=seed)
    n = len(Y)
    folds = np.random.default_rng(seed).permutation(np.arange(n) % max(2, min(ref.cv, n)))
    oof = np.zeros(Y.shape, dtype=np.float64)
    for f in np.unique(folds):
        oof[folds == f] = oof_fn(folds != f, folds == f)
    return best_f1_thresholds(Y, oof, None, min_positives=2, shrink=ref.threshold_shrink, default=0.5)
