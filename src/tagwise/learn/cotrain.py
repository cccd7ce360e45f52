"""Semi-supervised co-training across two views: sentence embeddings and character n-grams.

Why this and not only graph self-training (``semisupervised.py``): on emotion data the kNN graph of
sentence embeddings is not label-smooth, so pseudo-labels taken from the embedding view teach the
embedding head what it already believes. A second view that errs differently turns the unlabeled
pool into new evidence (Blum & Mitchell 1998; here in its distillation form):

1. embedding view ``H``: the few-shot head (``FewShotClassifier``, zero-shot prior + linear) on the
   labeled rows;
2. lexical view ``L``: a ridge regression on character n-gram TF-IDF (``lexical.py``) of the
   labeled rows only, targets +1 / -1 (``positive_target`` / ``negative_target``);
3. teacher on the unlabeled pool: z(H) + z(L), each view standardised per label over the pool;
4. lexical student ``S``: ridge on the n-grams of pool + labeled rows, soft targets = the
   standardised teacher on the pool, +1 / -1 on labeled cells; it learns which n-grams go with the
   label across the whole pool, far more text than the few labeled rows;
5. final score z(H) + z(S). Per label, the cut keeps the base head's predicted positive rate on the
   pool (its thresholds came from cross-validation on the labeled rows only), mapped so that
   ``predict_proba >= threshold_`` reproduces it with the base head's thresholds.

Every pool row gets a soft pseudo-label for every label; ``n_pseudo_`` counts them and how many
cells the teacher puts above the cut (the confident positives).

Measured (bench/bench_fewshot.py --sections semi, USE, rest of train unlabeled, 3 seeds): see
``bench/results/fewshot.json`` "semi_supervised"; the README's "Few labels" section has the table.
The model needs the texts as well as their embeddings at predict time (``texts=``).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logit
from sklearn.linear_model import Ridge
from tqdm.auto import tqdm

from ..types import TagwiseError
from .base import MultiLabelHead, check_fit_arrays
from .fewshot import FewShotClassifier
from .lexical import CharNgramTfidf
from .thresholds import cuts_at_rate
from .zeroshot import ZeroShotClassifier


def _ridge(T: sp.csr_matrix, targets: np.ndarray, known: np.ndarray, alpha: float):
    """Per-label ridge on sparse features, each label fitted on its known rows.

    T: (n, V) CSR; targets: (n, K) float32; known: (n, K) bool. Labels whose rows are all known
    share one multi-target fit (the usual case). Returns (coef (V, K) float32, intercept (K,) float32).
    """
    n, K = targets.shape
    coef = np.zeros((T.shape[1], K), np.float32)
    intercept = np.zeros(K, np.float32)
    full = known.all(0)
    groups = ([np.flatnonzero(full)] if full.any() else []) + [np.array([j]) for j in np.flatnonzero(~full)]
    for cols in groups:
        rows = known[:, cols[0]] if len(cols) == 1 else np.ones(n, bool)
        y = targets[rows][:, cols]
        if rows.sum() < 2 or np.ptp(y, axis=0).max() == 0:
            continue  # nothing to learn for these labels: score stays constant (z = 0)
        model = Ridge(alpha=alpha, solver="sparse_cg", fit_intercept=True).fit(T[rows], y)
        coef[:, cols] = np.atleast_2d(model.coef_).T
        intercept[cols] = model.intercept_
    return coef, intercept


def _zstats(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, K) scores -> per-label mean, sd (sd of a constant column -> inf, so its z is 0)."""
    mean = S.mean(0)
    sd = S.std(0)
    return mean.astype(np.float32), np.where(sd > 1e-9, sd, np.inf).astype(np.float32)


class CoTrainingClassifier(MultiLabelHead):
    """Few-shot embedding head + a character n-gram student trained on the unlabeled pool.

    ``alpha`` and the two targets were chosen by ``bench/choose_fewshot.py --sections cotrain`` on the
    training splits of XED-en and ISEAR only (9-point grid; 1.0 and +1/-1 beat the earlier hand-set
    3.0 and +2/-1 in 12 of 12 draws, +0.003 macro-F1); on held-out SemEval-2018 test the two are
    equal (-0.0004 ± 0.0014 at k=8, -0.0002 ± 0.0009 at k=32; ``bench/results/choose_cotrain.json``).

    Parameters
    ----------
    alpha : float
        Ridge strength of the lexical view and the student.
    positive_target, negative_target : float
        Regression targets for labeled positives / negatives (pool rows get z-scored teacher scores).
    ngram_range, min_df, max_features :
        Character n-gram vocabulary (see ``CharNgramTfidf``), learned on labeled + pool texts.
    self_train : bool
        False: the lexical view is trained on the labeled rows only and nothing is learned from
        the pool except the per-label score scales (the no-unlabeled-data control).
    max_unlabeled : int
        Random cap on the pool (time and memory grow linearly with it).
    head_params : dict
        Parameters of the ``FewShotClassifier`` embedding head.
    """

    needs_texts = True  # predict_proba(X, texts=...): the lexical view reads the texts
    _OWN_ARRAYS = ("lex_coef", "lex_intercept", "head_mean", "head_sd", "lex_mean", "lex_sd", "cut", "threshold")

    def __init__(self, alpha: float = 1.0, positive_target: float = 1.0, negative_target: float = -1.0,
                 ngram_range: tuple[int, int] = (2, 5), min_df: int = 2, max_features: int = 200_000,
                 self_train: bool = True, max_unlabeled: int = 100_000, head_params: dict | None = None,
                 random_state: int = 0):
        self.alpha = alpha
        self.positive_target = positive_target
        self.negative_target = negative_target
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.self_train = self_train
        self.max_unlabeled = max_unlabeled
        self.head_params = head_params
        self.random_state = random_state

    def fit(self, X, Y, mask=None, *, texts, X_unlabeled, texts_unlabeled,
            zeroshot: ZeroShotClassifier | None = None, progress: bool = False):
        """X: (n, d) labeled embeddings; Y: (n, K) {0,1}; mask: (n, K) bool or None (False = unknown);
        texts: the n labeled texts; X_unlabeled: (m, d) pool embeddings; texts_unlabeled: its m texts;
        zeroshot: optional fitted label-name prior for the embedding head.
        """
        X, Y, M = check_fit_arrays(X, Y, mask, where="CoTrainingClassifier.fit")
        texts, texts_unlabeled = list(texts), list(texts_unlabeled)
        if X_unlabeled is None or len(X_unlabeled) == 0:
            raise TagwiseError("co-training: no unlabeled examples. Fix: add a source with split 'unlabeled' "
                               "(or texts without labels), or train without --semi-supervised.")
        U = np.asarray(X_unlabeled, dtype=np.float32)
        if len(texts) != len(X) or len(texts_unlabeled) != len(U) or Y.shape[0] != len(X) or M.shape != Y.shape:
            raise TagwiseError(f"co-training: {len(X)} labeled embeddings, {len(texts)} texts, labels {Y.shape}, "
                               f"mask {M.shape}; {len(U)} unlabeled embeddings, {len(texts_unlabeled)} texts: "
                               f"the counts must match.")
        if len(U) > self.max_unlabeled:
            keep = np.sort(np.random.default_rng(self.random_state).choice(len(U), self.max_unlabeled, replace=False))
            U, texts_unlabeled = U[keep], [texts_unlabeled[i] for i in keep]
        n, K = Y.shape
        m = len(U)
        steps = tqdm(total=4 if self.self_train else 3, desc="co-training", disable=not progress)
        params = dict(self.head_params or {})
        if zeroshot is None:
            params["use_prior"] = False
        head = FewShotClassifier(random_state=self.random_state, **params).fit(
            X, Y, M, zeroshot=zeroshot, X_corpus=np.concatenate([X, U]), X_unlabeled=U)
        steps.update()
        lex = CharNgramTfidf(self.ngram_range, self.min_df, self.max_features)
        T = lex.fit_transform(texts + texts_unlabeled)
        T_lab, T_pool = T[:n], T[n:]
        steps.update()
        # a soft target sits between the two ridge targets in proportion (Y > 0 made 0.01 a full positive)
        hard = (Y * self.positive_target + (1.0 - Y) * self.negative_target).astype(np.float32)
        coef, intercept = _ridge(T_lab, hard, M, self.alpha)
        steps.update()
        H_pool = head.decision_function(U)
        self.head_mean_, self.head_sd_ = _zstats(H_pool)
        zH_pool = (H_pool - self.head_mean_) / self.head_sd_
        L_pool = T_pool @ coef + intercept
        lex_mean, lex_sd = _zstats(L_pool)
        teacher_pool = zH_pool + (L_pool - lex_mean) / lex_sd
        base_thr = np.clip(np.asarray(head.threshold_, dtype=np.float64), 1e-6, 1 - 1e-6)
        rate = (H_pool >= logit(base_thr)).mean(0)  # the base head's predicted positive rate on the pool
        if self.self_train:
            t_mean, t_sd = _zstats(teacher_pool)
            zH_lab = (head.decision_function(X) - self.head_mean_) / self.head_sd_
            teacher_lab = zH_lab + (T_lab @ coef + intercept - lex_mean) / lex_sd
            # labeled cells keep their label; unknown cells of labeled rows get the teacher, like the pool
            lab_targets = np.where(M, hard, (teacher_lab - t_mean) / t_sd)
            targets = np.concatenate([lab_targets, (teacher_pool - t_mean) / t_sd]).astype(np.float32)
            coef, intercept = _ridge(T, targets, np.ones_like(targets, bool), self.alpha)  # rows of T: lab, pool
            steps.update()
            confident = teacher_pool >= cuts_at_rate(teacher_pool, rate).astype(np.float32)[None, :]
            self.n_pseudo_ = {"examples": int(m), "unlabeled_pool": int(m), "soft_cells": int(m * K),
                              "positive": int(confident.sum()), "negative": int(m * K - confident.sum())}
        else:
            self.n_pseudo_ = {"examples": 0, "unlabeled_pool": int(m), "soft_cells": 0, "positive": 0, "negative": 0}
        steps.close()
        self.head_, self.lexical_ = head, lex
        self.lex_coef_, self.lex_intercept_ = coef, intercept
        S_pool = T_pool @ coef + intercept
        self.lex_mean_, self.lex_sd_ = _zstats(S_pool)
        final = zH_pool + (S_pool - self.lex_mean_) / self.lex_sd_
        self.cut_ = cuts_at_rate(final, rate).astype(np.float32)
        self.threshold_ = base_thr
        self.n_labels_ = K
        return self

    def _texts(self, X, texts):
        if texts is None:
            raise TagwiseError("this model (co-training) reads the texts as well as their embeddings: "
                               "pass texts=... to predict / predict_proba.")
        texts = list(texts)
        if len(texts) != len(X):
            raise TagwiseError(f"co-training: {len(X)} embeddings but {len(texts)} texts.")
        return texts

    def _n_features(self) -> int | None:
        return self.head_._n_features()

    def decision_function(self, X, texts=None) -> np.ndarray:
        """X: (n, d) embeddings, texts: their n texts -> (n, K) logits (cut at logit(threshold_))."""
        X = self._check_X(X)
        texts = self._texts(X, texts)
        zH = (self.head_.decision_function(X) - self.head_mean_) / self.head_sd_
        S = self.lexical_.transform(texts) @ self.lex_coef_ + self.lex_intercept_
        score = zH + (S - self.lex_mean_) / self.lex_sd_
        return (score - self.cut_ + logit(self.threshold_)).astype(np.float32)

    def predict_proba(self, X, texts=None, source=None) -> np.ndarray:
        """X: (n, d), texts: n strings -> (n, K) scores in (0, 1); ``>= threshold_`` is the decision."""
        return expit(self.decision_function(X, texts))

    def get_state(self):
        hmeta, harr = self.head_.get_state()
        lmeta, larr = self.lexical_.get_state()
        params = self.get_params()
        params["ngram_range"] = list(params["ngram_range"])
        meta = {"params": params, "head": hmeta, "lexical": lmeta, "n_pseudo": self.n_pseudo_,
                "n_labels": int(self.n_labels_)}
        arrays = {f"head_{k}": v for k, v in harr.items()}
        arrays.update({f"lex_{k}": v for k, v in larr.items()})
        arrays.update({f"co_{k}": getattr(self, k + "_") for k in self._OWN_ARRAYS})
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        params = dict(meta["params"])
        params["ngram_range"] = tuple(params["ngram_range"])
        model = cls(**params)
        model.head_ = FewShotClassifier.from_state(meta["head"], {k[5:]: v for k, v in arrays.items()
                                                                   if k.startswith("head_")})
        model.lexical_ = CharNgramTfidf.from_state(meta["lexical"], {k[4:]: v for k, v in arrays.items()
                                                                     if k.startswith("lex_")})
        for key in cls._OWN_ARRAYS:
            setattr(model, key + "_", arrays[f"co_{key}"])
        model.n_pseudo_, model.n_labels_ = meta["n_pseudo"], int(meta["n_labels"])
        return model
