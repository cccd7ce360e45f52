"""A second, lexical view of the texts: character n-gram TF-IDF that saves as arrays, not pickle.

Sentence embeddings and character n-grams make different mistakes (an embedding blurs a rare
emotion word into its neighbours; n-grams see it, and its misspellings and inflections, exactly),
which is what co-training (``cotrain.py``) needs. ``char_wb`` n-grams also work for any language
and script without a tokenizer.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from ..types import TagwiseError


class CharNgramTfidf:
    """Sublinear TF-IDF over character n-grams inside word boundaries, L2-normalised rows.

    Parameters
    ----------
    ngram_range : (int, int)
        Shortest and longest n-gram.
    min_df : int
        Keep n-grams seen in at least this many texts (drops typos and ids).
    max_features : int
        Keep the most frequent n-grams only (bounds model size: max_features x K float32 weights).
    """

    def __init__(self, ngram_range: tuple[int, int] = (2, 5), min_df: int = 2, max_features: int = 200_000):
        self.ngram_range = tuple(int(v) for v in ngram_range)
        self.min_df = int(min_df)
        self.max_features = int(max_features)

    def _counter(self, vocabulary=None) -> CountVectorizer:
        return CountVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, lowercase=True,
                               min_df=1 if vocabulary is not None else getattr(self, "min_df_", self.min_df),
                               max_features=None if vocabulary is not None else self.max_features,
                               vocabulary=vocabulary, dtype=np.float32)

    def fit_transform(self, texts: list[str]) -> sp.csr_matrix:
        """texts: n strings -> (n, V) CSR float32; learns the vocabulary and the idf weights."""
        texts = list(texts)
        if not texts:
            raise TagwiseError("lexical features: no texts to learn a vocabulary from.")
        self.min_df_ = self.min_df  # the min_df in force; the parameter itself is never changed
        counter = self._counter()
        try:
            C = counter.fit_transform(texts).tocsr()
        except ValueError:  # every n-gram below min_df (tiny corpora)
            self.min_df_ = 1
            counter = self._counter()
            try:
                C = counter.fit_transform(texts).tocsr()
            except ValueError:
                raise TagwiseError(f"lexical features: none of the {len(texts)} texts has a character n-gram "
                                   f"(empty or whitespace only). Fix: remove empty texts.") from None
        vocab = counter.vocabulary_
        self.terms_ = np.empty(len(vocab), dtype=f"<U{max(map(len, vocab))}")
        for term, j in vocab.items():
            self.terms_[j] = term
        df = np.bincount(C.indices, minlength=C.shape[1])
        self.idf_ = (np.log((1 + len(texts)) / (1 + df)) + 1).astype(np.float32)  # sklearn's smooth idf
        self._vocab = vocab
        return self._weight(C)

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        """texts: n strings -> (n, V) CSR float32 with the fitted vocabulary."""
        if not hasattr(self, "_vocab"):
            self._vocab = {t: j for j, t in enumerate(self.terms_.tolist())}
        return self._weight(self._counter(self._vocab).transform(list(texts)).tocsr())

    def _weight(self, C: sp.csr_matrix) -> sp.csr_matrix:
        C = C.astype(np.float32)
        np.log(C.data, out=C.data)  # sublinear tf: 1 + log(tf)
        C.data += 1.0
        C = C @ sp.diags(self.idf_)
        return normalize(C.tocsr(), copy=False)

    def get_state(self) -> tuple[dict, dict]:
        return ({"ngram_range": list(self.ngram_range), "min_df": self.min_df, "max_features": self.max_features},
                {"terms": self.terms_, "idf": self.idf_})

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "CharNgramTfidf":
        model = cls(tuple(meta["ngram_range"]), meta["min_df"], meta["max_features"])
        model.terms_, model.idf_ = arrays["terms"], np.asarray(arrays["idf"], dtype=np.float32)
        return model
