"""Semi-supervised learning: label propagation over a sparse kNN graph + confident self-training.

Why not scikit-learn's ``LabelSpreading(kernel="knn")``: it is single-label, uses an unweighted
kNN graph and a dense label matrix, and on sentence embeddings of multi-label data it ends up below
the majority class. Here, per label, positive and negative seed mass are propagated separately on a
symmetric, cosine-weighted, degree-normalised kNN graph (Zhou et al. 2004, iterated with sparse
matrix products, so 1M nodes x k=15 stay cheap), and each side is divided by its seed count (class
mass normalisation) so a rare label is not drowned by its many negatives.

``SemiSupervisedClassifier`` then self-trains: the propagated scores are averaged with a few-shot
head's probabilities on the unlabeled pool; per label, only the most confident unlabeled examples
become pseudo-positives / pseudo-negatives (per-label confidence cuts from the expected label rate),
every other cell stays masked (unknown); the head is refitted on labeled + pseudo-labeled rows with
the pseudo rows down-weighted. The numbers of pseudo-labels used are kept in ``n_pseudo_``.

What to expect (bench/bench_fewshot.py --sections semi; figures in bench/results/fewshot.json):
about the head alone, and far above LabelSpreading. On emotion datasets the kNN graph is not
label-smooth: propagation alone ranks the pool below the head, so its pseudo-labels add little the
head does not already know. Co-training with a lexical view (``cotrain.py``, the default of
``--semi-supervised``) gains over the head there.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logit

from ..neighbors import nearest_neighbors
from ..types import TagwiseError
from .base import MultiLabelHead, check_fit_arrays
from .fewshot import FewShotClassifier
from .thresholds import cuts_at_rate
from .zeroshot import ZeroShotClassifier


def knn_graph(X: np.ndarray, k: int = 15, power: float = 3.0, progress: bool = False) -> sp.csr_matrix:
    """Symmetric, normalised kNN affinity graph over the rows of X.

    X: (n, d) float embeddings. Neighbours come from ``neighbors.nearest_neighbors`` (exact for small
    n, an IVF index beyond, never an n x n matrix). Edge weight = max(cos, 0) ** power (sharpens the
    near-uniform cosines of sentence embeddings); W = max(W, W^T); returns S = D^-1/2 W D^-1/2 as
    (n, n) CSR float32.
    """
    n = len(X)
    k = int(min(k, n - 1))
    if k < 1:
        raise TagwiseError("knn_graph: need at least 2 examples.")
    nbrs, sims = nearest_neighbors(X, k=k, progress=progress)
    rows = np.repeat(np.arange(n), k)
    cols, vals = nbrs.ravel(), np.maximum(sims.ravel(), 0) ** power
    keep = cols >= 0  # missing neighbours are padded with -1
    W = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n), dtype=np.float32)
    W = W.maximum(W.T).tocsr()
    deg = np.asarray(W.sum(1)).ravel()
    inv = 1.0 / np.sqrt(np.maximum(deg, 1e-12))
    return (sp.diags(inv.astype(np.float32)) @ W @ sp.diags(inv.astype(np.float32))).tocsr()


def propagate_labels(S: sp.csr_matrix, Y: np.ndarray, known: np.ndarray, alpha: float = 0.95,
                     n_iter: int = 30) -> np.ndarray:
    """Multi-label propagation on a normalised graph.

    S: (n, n) from ``knn_graph``; Y: (n, K) {0,1}; known: (n, K) bool (True where Y is a real
    label, i.e. labeled rows and annotated labels). Iterates F <- alpha S F + (1 - alpha) F0 for
    positive and negative seeds separately, each scaled by its seed count.
    Returns (n, K) float32 scores in [0, 1]: the positive share of the propagated mass (0.5 where
    nothing reached a node).
    """
    Y = np.asarray(Y, dtype=np.float32)
    known = np.asarray(known, dtype=bool)
    # a soft target seeds both sides in proportion (Y > 0 made 0.01 a whole positive seed)
    pos = np.where(known, Y, 0.0).astype(np.float32)
    neg = np.where(known, 1.0 - Y, 0.0).astype(np.float32)
    F0 = np.concatenate([pos / np.maximum(pos.sum(0), 1), neg / np.maximum(neg.sum(0), 1)], axis=1)
    F0 = F0.astype(np.float32)
    F = F0.copy()
    for _ in range(n_iter):
        F = alpha * (S @ F) + (1 - alpha) * F0
    K = Y.shape[1]
    fp, fn = F[:, :K], F[:, K:]
    total = fp + fn
    return np.where(total > 0, fp / np.maximum(total, 1e-30), 0.5).astype(np.float32)


class SemiSupervisedClassifier(MultiLabelHead):
    """Few-shot head self-trained on unlabeled data with graph-propagated, confidence-filtered pseudo-labels.

    Parameters
    ----------
    k : int
        Neighbours per node in the kNN graph.
    alpha : float
        Propagation strength (0 = keep seeds only, near 1 = spread far).
    confident_fraction : float
        Per label, the top ``confident_fraction * expected positives`` unlabeled examples become
        pseudo-positives (expected positives = label rate among labeled x pool size).
    negative_quantile : float
        Per label, unlabeled examples scoring below this quantile become pseudo-negatives.
    pseudo_weight : float
        Total weight of the pseudo-labeled rows relative to the labeled rows (spread over them).
    rounds : int
        Self-training rounds.
    max_unlabeled : int
        Random cap on the unlabeled pool used (keeps time bounded on huge corpora).
    head_params : dict
        Parameters of the ``FewShotClassifier`` head.
    """

    def __init__(self, k: int = 15, alpha: float = 0.95, confident_fraction: float = 0.5,
                 negative_quantile: float = 0.5, pseudo_weight: float = 1.0, rounds: int = 1,
                 max_unlabeled: int = 200_000, head_params: dict | None = None, random_state: int = 0):
        self.k = k
        self.alpha = alpha
        self.confident_fraction = confident_fraction
        self.negative_quantile = negative_quantile
        self.pseudo_weight = pseudo_weight
        self.rounds = rounds
        self.max_unlabeled = max_unlabeled
        self.head_params = head_params
        self.random_state = random_state

    def _head(self, zeroshot):
        params = dict(self.head_params or {})
        if zeroshot is None:
            params["use_prior"] = False
        return FewShotClassifier(random_state=self.random_state, **params)

    def fit(self, X, Y, mask=None, X_unlabeled=None, zeroshot: ZeroShotClassifier | None = None,
            progress: bool = False, graph: sp.csr_matrix | None = None):
        """X: (n, d) labeled embeddings; Y: (n, K) {0,1}; mask: (n, K) bool or None;
        X_unlabeled: (m, d) embeddings without labels; zeroshot: optional fitted label-name prior;
        graph: optional precomputed ``knn_graph`` over the rows of concat(X, X_unlabeled) (reused
        across fits on one corpus; ignored when the pool is subsampled).
        """
        X, Y, M = check_fit_arrays(X, Y, mask, where="SemiSupervisedClassifier.fit")
        if X_unlabeled is None or len(X_unlabeled) == 0:
            raise TagwiseError("semi-supervised: no unlabeled examples. Fix: add a source with split "
                               "'unlabeled' (or texts without labels), or train without --semi-supervised.")
        U = np.asarray(X_unlabeled, dtype=np.float32)
        rng = np.random.default_rng(self.random_state)
        if len(U) > self.max_unlabeled:
            U = U[np.sort(rng.choice(len(U), self.max_unlabeled, replace=False))]
            graph = None
        n, K = Y.shape
        corpus = np.concatenate([X, U])
        base = self._head(zeroshot).fit(X, Y, M, zeroshot=zeroshot, X_corpus=corpus)
        if graph is not None and graph.shape != (len(corpus), len(corpus)):
            raise TagwiseError(f"semi-supervised: graph has shape {graph.shape}, expected {(len(corpus),) * 2}.")
        S = graph if graph is not None else knn_graph(corpus, k=self.k, progress=progress)
        known = np.concatenate([M, np.zeros((len(U), K), bool)])
        Yall = np.concatenate([Y, np.zeros((len(U), K), np.float32)])
        prop = propagate_labels(S, Yall, known, alpha=self.alpha)[n:]
        # expected positives per label in the pool, from the labeled label rates
        rate = (Y * M).sum(0) / np.maximum(M.sum(0), 1)
        head = base
        base_pred_rate = (base.predict(U)).mean(0)
        for _ in range(self.rounds):
            # average in logit space: the graph and the head see different evidence
            P_head = np.clip(head.predict_proba(U), 1e-4, 1 - 1e-4)
            score = expit(0.5 * (logit(np.clip(prop, 1e-4, 1 - 1e-4)) + logit(P_head)))
            pseudo_pos = np.zeros_like(score, dtype=bool)
            pseudo_neg = np.zeros_like(score, dtype=bool)
            cut_pos = np.ones(K)
            for j in range(K):
                n_conf = int(self.confident_fraction * rate[j] * len(U))
                order = np.argsort(-score[:, j])
                if n_conf > 0:
                    pseudo_pos[order[:n_conf], j] = True
                    cut_pos[j] = score[order[n_conf - 1], j]
                pseudo_neg[:, j] = score[:, j] <= np.quantile(score[:, j], self.negative_quantile)
            pseudo_neg &= ~pseudo_pos
            rows = (pseudo_pos | pseudo_neg).any(1)
            Xp = np.concatenate([X, U[rows]])
            Yp = np.concatenate([Y, pseudo_pos[rows].astype(np.float32)])
            Mp = np.concatenate([M, (pseudo_pos | pseudo_neg)[rows]])
            w = np.concatenate([np.ones(n, np.float32),
                                np.full(rows.sum(), self.pseudo_weight * n / max(rows.sum(), 1), np.float32)])
            head = self._head(zeroshot).fit(Xp, Yp, Mp, zeroshot=zeroshot, X_corpus=corpus, sample_weight=w,
                                            tune_thresholds=False)
        # thresholds: keep the base head's predicted label rate on the pool (its cuts came from
        # cross-validation on the labeled examples only), but let the new ranking decide who is in
        # (the head's own threshold_ stays as fitted: this model's decisions use self.threshold_)
        thr = cuts_at_rate(head.predict_proba(U), base_pred_rate)
        self.head_ = head
        self.threshold_ = thr
        self.pseudo_threshold_ = cut_pos
        self.n_pseudo_ = {"positive": int(pseudo_pos.sum()), "negative": int(pseudo_neg.sum()),
                          "examples": int(rows.sum()), "unlabeled_pool": int(len(U))}
        return self

    def _n_features(self) -> int | None:
        return self.head_._n_features()

    def decision_function(self, X) -> np.ndarray:
        X = self._check_X(X)
        return self.head_.decision_function(X)

    def predict_proba(self, X, texts=None, source=None) -> np.ndarray:
        """(n, d) -> (n, K) probabilities."""
        X = self._check_X(X)
        return self.head_.predict_proba(X)

    def get_state(self):
        hmeta, harr = self.head_.get_state()
        meta = {"params": self.get_params(), "head": hmeta, "n_pseudo": self.n_pseudo_}
        arrays = {f"head_{k}": v for k, v in harr.items()}
        arrays.update({"threshold": self.threshold_, "pseudo_threshold": self.pseudo_threshold_})
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        model = cls(**meta["params"])
        model.head_ = FewShotClassifier.from_state(meta["head"], {k[5:]: v for k, v in arrays.items()
                                                                   if k.startswith("head_")})
        model.threshold_, model.pseudo_threshold_ = arrays["threshold"], arrays["pseudo_threshold"]
        model.n_pseudo_ = meta["n_pseudo"]
        return model
