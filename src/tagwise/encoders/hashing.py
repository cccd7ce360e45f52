"""A weight-free encoder: hashed word and character n-grams, any language."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import cap_texts, l2_normalize


class HashingEncoder:
    """Word 1-2-grams + char 2-4-grams hashed into ``dim`` buckets, TF-IDF-free, L2-normalised.

    Deterministic and fast; useful as a baseline and for languages no bundled model covers.
    """

    languages = None  # any language: no pretrained weights
    # n-gram counting holds every n-gram of a text as a Python string: no text longer than this
    max_chars = 100_000

    def __init__(self, dim: int = 1024):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.dim = dim
        self.id = f"hashing-v1-{dim}"
        common = dict(n_features=dim, alternate_sign=True, norm=None, lowercase=True)
        self._word = HashingVectorizer(analyzer="word", ngram_range=(1, 2), **common)
        self._char = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), **common)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = cap_texts(texts, self.max_chars)[0]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        word = self._word.transform(texts)
        char = self._char.transform(texts)
        # sublinear counts so long texts do not dominate; the two views weigh the same
        word.data = np.sign(word.data) * np.log1p(np.abs(word.data))
        char.data = np.sign(char.data) * np.log1p(np.abs(char.data))
        X = l2_normalize(word.toarray()) + l2_normalize(char.toarray())
        return l2_normalize(X)
