"""Embed a project's examples in this process or over an engine's workers (``tagwise embed --engine ray``).

On an engine, the texts the cache lacks are cut into shards; each task encodes its shard and writes
it as one cache shard named by the content of its keys (``shard-k<hash>``). A task that finds its
shard already written returns at once, so a task retried after its worker died (Ray's
``max_retries``), or a second run, encodes nothing twice; the driver then reloads the cache index,
which registers every shard, and gathers the vectors in input order.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from ..encoders import EmbeddingCache, EmbedStats, get_encoder, text_keys
from ..encoders.base import cap_texts, join_parts, max_chars
from ..encoders.cache import write_shard
from ..engine import LocalEngine
from ..project import Project

# One encoder per worker process and name: a task after the first on the same worker does not reload it.
_WORKER_ENCODERS: dict[str, object] = {}


def encode_shard(item: tuple[list[str], np.ndarray], encoder_name: str, cache_dir: str,
                 batch_size: int = 512) -> int:
    """One engine task: encode ``texts`` and write them as one cache shard named by their keys.

    item: (texts, keys (n,) uint64). Returns the number of texts encoded (0 when the shard exists).
    """
    texts, keys = item
    encoder = _WORKER_ENCODERS.get(encoder_name)
    if encoder is None:
        encoder = _WORKER_ENCODERS[encoder_name] = get_encoder(encoder_name)
    name = "shard-k" + hashlib.blake2b(np.ascontiguousarray(keys, dtype=np.uint64).tobytes(), digest_size=12).hexdigest()
    directory = EmbeddingCache.directory(cache_dir, encoder.id)
    if (directory / f"{name}.keys.npy").exists():  # written by an earlier try of this task
        return 0
    vecs = np.concatenate([encoder.encode(texts[s:s + batch_size]) for s in range(0, len(texts), batch_size)])
    write_shard(directory, name, keys, vecs)
    return len(texts)


def embed_texts_on(engine, texts: list[str], encoder_name: str, cache_dir, shard_rows: int | None = None,
                   progress: bool = True) -> tuple[np.ndarray, EmbedStats]:
    """Like ``encoders.embed_texts`` (same vectors, same cache), with the encoding spread over ``engine``.

    Returns ``(X (n, dim) float32 in input order, stats)``. ``shard_rows``: texts per task (default:
    about four tasks per worker, between 256 and 50,000 texts: enough tasks to balance the workers and
    redo little after a failure, few enough that the per-task cost stays small).
    """
    t0 = time.perf_counter()
    parts = [p.strip() for p in encoder_name.split("+")] if "+" in encoder_name else [encoder_name]
    full_keys = text_keys(texts)
    n_unique = len(np.unique(full_keys))
    vectors, n_encoded, n_cut, limit = [], 0, 0, None
    for part in parts:
        encoder = get_encoder(part)
        # as encoders.embed_texts: a text longer than the encoder reads is cut and keyed by what is left
        part_texts, cut = cap_texts(texts, max_chars(encoder))
        keys = full_keys.copy()
        if cut:
            keys[cut] = text_keys([part_texts[i] for i in cut])
        if len(cut) >= n_cut:
            n_cut, limit = len(cut), max_chars(encoder)
        uniq, first = np.unique(keys, return_index=True)
        cache = EmbeddingCache(cache_dir, encoder.id)
        missing = np.sort(first[cache.lookup(uniq) < 0])
        if len(missing):
            rows = shard_rows or int(np.clip(-(-len(missing) // (4 * engine.workers)), 256, 50_000))
            shards = [([part_texts[i] for i in missing[s:s + rows]], keys[missing[s:s + rows]])
                      for s in range(0, len(missing), rows)]
            done = engine.map(encode_shard, shards, shared={"encoder_name": part, "cache_dir": str(cache_dir)})
            n_encoded = max(n_encoded, int(sum(done)))
            cache = EmbeddingCache(cache_dir, encoder.id)  # registers the new shards
        vectors.append(cache.gather(keys, encoder.dim))
    X = vectors[0] if len(vectors) == 1 else join_parts(vectors)
    return X, EmbedStats(len(texts), n_unique, n_encoded, time.perf_counter() - t0, n_cut, limit)


def embed_project(project: Project, encoder: str | None = None, engine=None, progress: bool = True) -> EmbedStats:
    """Embed every example of ``project`` (cached ones are not re-encoded) and make ``encoder`` its default.

    ``engine``: a ``tagwise.engine`` engine; None or local embeds in this process (``Project.embed``).
    """
    if engine is None or isinstance(engine, LocalEngine):
        return project.embed(encoder, progress=progress)
    name = encoder or project.default_encoder
    ex = project.examples()
    _, stats = embed_texts_on(engine, list(ex.texts), name, Path(project.cache_dir), progress=progress)
    project.store.set_meta("encoder", name)
    return stats
