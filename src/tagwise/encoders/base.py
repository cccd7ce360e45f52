"""The encoder protocol and the helpers every encoder shares (``registry`` builds them by name)."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..types import TagwiseError

DEFAULT_ENCODER = "use"


@runtime_checkable
class Encoder(Protocol):
    """Texts -> L2-normalised float32 vectors.

    ``id`` must change whenever the vectors would (model, version, options): it keys the cache.
    """

    id: str
    dim: int
    # optional ``max_chars: int | None``: longer texts are cut to it (see ``cap_texts``)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) texts -> (n, dim) float32, rows L2-normalised."""
        ...


# An encoder reads at most ``max_tokens`` tokens of a text; a token spans a few characters, rarely
# more than 16. Cutting a text to 16 characters per token before the encoder leaves what a truncating
# encoder sees unchanged and keeps one huge text (a 5 MB log pasted into a cell) from taking the
# memory of millions of tokens.
CHARS_PER_TOKEN = 16


def max_chars(encoder) -> int | None:
    """The most characters of one text that ``encoder`` is given (its ``max_chars``; None: no cap; for
    encoders side by side, the smallest of their parts')."""
    if hasattr(encoder, "parts"):
        caps = [c for c in map(max_chars, encoder.parts) if c is not None]
        return min(caps) if caps else None
    return getattr(encoder, "max_chars", None)


def cap_texts(texts: Sequence[str], limit: int | None) -> tuple[list[str], list[int]]:
    """Texts cut to ``limit`` characters -> (texts, positions of the texts that were cut).

    Every path to an encoder goes through this (``embed_texts`` keys the cache by the cut text, the
    content the vector is of; each encoder's ``encode`` cuts too, for callers that skip the cache)."""
    texts = texts if isinstance(texts, list) else list(texts)
    if limit is None:
        return texts, []
    cut = [i for i, t in enumerate(texts) if len(t) > limit]
    if cut:
        texts = list(texts)  # a copy: the caller's list keeps its texts whole
        for i in cut:
            texts[i] = texts[i][:limit]
    return texts, cut


def join_parts(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """(n, d_i) unit-row blocks -> (n, sum d_i) unit rows, each block weighted equally."""
    return (np.hstack(blocks) / np.sqrt(len(blocks))).astype(np.float32)


def l2_normalize(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms
