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

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) texts -> (n, dim) float32, rows L2-normalised."""
        ...


def join_parts(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """(n, d_i) unit-row blocks -> (n, sum d_i) unit rows, each block weighted equally."""
    return (np.hstack(blocks) / np.sqrt(len(blocks))).astype(np.float32)


def l2_normalize(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms
