"""Encoders: texts -> vectors, pluggable, cached on disk by content."""
from .base import DEFAULT_ENCODER, Encoder, l2_normalize
from .cache import EmbeddingCache, EmbedStats, embed_texts, text_keys
from .registry import get_encoder

__all__ = ["DEFAULT_ENCODER", "Encoder", "EmbeddingCache", "EmbedStats", "embed_texts", "get_encoder",
           "l2_normalize", "text_keys"]
