"""On-disk embedding cache keyed by encoder id + text hash; shards are memory-mapped.

Layout: ``ROOT/<encoder id>/shard-<time>-<pid>.keys.npy`` (uint64 text keys) and
``shard-<time>-<pid>.vecs.npy`` ((n, dim) float32). Shards are written atomically, keys last, so a
crash mid-encode keeps every finished shard and the next run resumes where it stopped. Shard names
are unique per writer, so several processes can fill one cache at once.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from .._io import atomic_save_npy, load_npy
from .base import Encoder, cap_texts, max_chars


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """(n,) texts -> (n,) uint64 content keys (64-bit BLAKE2b of the UTF-8 text)."""
    out = np.empty(len(texts), dtype=np.uint64)
    for i, t in enumerate(texts):
        out[i] = int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little")
    return out


@dataclass
class EmbedStats:
    n_texts: int
    n_unique: int
    n_encoded: int
    seconds: float
    n_truncated: int = 0  # texts longer than the encoder reads, cut to ``max_chars`` characters
    max_chars: int | None = None


class EmbeddingCache:
    """All cached vectors of one encoder under ``root``."""

    def __init__(self, root: str | Path, encoder_id: str):
        self.dir = self.directory(root, encoder_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._load_index()

    @staticmethod
    def directory(root: str | Path, encoder_id: str) -> Path:
        """The folder holding ``encoder_id``'s shards under ``root``."""
        return Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("shard-*.keys.npy"))

    def _load_index(self) -> None:
        keys, shard_ids, rows, self._vecs = [], [], [], []
        self._shard_paths = self._shards()
        for sid, kpath in enumerate(self._shard_paths):
            k = load_npy(kpath)
            self._vecs.append(load_npy(kpath.with_name(kpath.name.replace(".keys.", ".vecs.")), mmap=True))
            keys.append(k)
            shard_ids.append(np.full(len(k), sid, dtype=np.int32))
            rows.append(np.arange(len(k), dtype=np.int64))
        if keys:
            k = np.concatenate(keys)
            order = np.argsort(k, kind="stable")
            self._keys, self._shard = k[order], np.concatenate(shard_ids)[order]
            self._row = np.concatenate(rows)[order]
        else:
            self._keys = np.zeros(0, dtype=np.uint64)
            self._shard = np.zeros(0, dtype=np.int32)
            self._row = np.zeros(0, dtype=np.int64)

    def _merge_shard(self, kpath: Path) -> None:
        """Add one new shard to the sorted index by merging, so n writes of a big cache cost O(n) each."""
        k = load_npy(kpath)
        self._vecs.append(load_npy(kpath.with_name(kpath.name.replace(".keys.", ".vecs.")), mmap=True))
        self._shard_paths = self._shards()  # sorted names; shard ids stay the order of self._vecs
        order = np.argsort(k, kind="stable")
        at = np.searchsorted(self._keys, k[order], side="right")  # after equal keys, as the stable re-sort
        self._keys = np.insert(self._keys, at, k[order])
        self._shard = np.insert(self._shard, at, np.int32(len(self._vecs) - 1))
        self._row = np.insert(self._row, at, order.astype(np.int64))

    def refresh(self) -> None:
        """Pick up the shards other writers added since the index was read: one directory listing, and a
        re-read only when it changed (so an instance kept across calls stays cheap and current)."""
        if self._shards() != self._shard_paths:
            self._load_index()

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """(n,) keys -> (n,) positions into the sorted index, -1 where absent."""
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, max(len(self._keys) - 1, 0))
        found = (len(self._keys) > 0) & (self._keys[pos] == keys) if len(self._keys) else np.zeros(len(keys), bool)
        return np.where(found, pos, -1)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Write one new shard (vectors first, keys last, each atomically)."""
        stem = self.dir / f"shard-{time.time_ns():020d}-{os.getpid()}"
        atomic_save_npy(f"{stem}.vecs.npy", np.asarray(vectors, dtype=np.float32))
        atomic_save_npy(f"{stem}.keys.npy", np.asarray(keys, dtype=np.uint64))
        if self._shards() == sorted(self._shard_paths + [Path(f"{stem}.keys.npy")]):
            self._merge_shard(Path(f"{stem}.keys.npy"))  # only our shard is new: O(n) merge, not a re-sort
        else:  # another writer added shards too: read them all
            self._load_index()

    def gather(self, keys: np.ndarray, dim: int, out: np.ndarray | None = None) -> np.ndarray:
        """(n,) keys, all present -> (n, dim) float32 read from the memory-mapped shards.

        ``out``: an (n, dim) array to fill instead of a new one (e.g. a ``np.memmap`` when the
        matrix is larger than memory, or a float16 array to halve it).
        """
        pos = self.lookup(keys)
        if (pos < 0).any():
            raise KeyError(f"{int((pos < 0).sum())} texts are not in the cache")
        if out is None:
            out = np.empty((len(keys), dim), dtype=np.float32)
        elif out.shape != (len(keys), dim):
            raise ValueError(f"out has shape {out.shape}, expected {(len(keys), dim)}")
        shard, row = self._shard[pos], self._row[pos]
        for sid in np.unique(shard):
            sel = np.flatnonzero(shard == sid)
            rows = row[sel]
            order = np.argsort(rows)  # sorted reads are much faster on a memmap
            out[sel[order]] = self._vecs[sid][rows[order]]
        return out


def write_shard(directory: str | Path, name: str, keys: np.ndarray, vectors: np.ndarray) -> None:
    """Write one shard ``directory/<name>.{vecs,keys}.npy`` without loading the cache's index (a
    worker of a distributed embed); vectors first, keys last, each atomically, as ``add`` does."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(directory / f"{name}.vecs.npy", np.asarray(vectors, dtype=np.float32))
    atomic_save_npy(directory / f"{name}.keys.npy", np.asarray(keys, dtype=np.uint64))


def embed_texts(texts: Sequence[str], encoder: Encoder, cache_root: str | Path, *,
                batch_size: int = 512, shard_rows: int = 50_000, progress: bool = True,
                keys: np.ndarray | None = None, out: np.ndarray | None = None,
                caches: dict[str, EmbeddingCache] | None = None) -> tuple[np.ndarray, EmbedStats]:
    """Embed ``texts`` through the cache: only texts never seen by this encoder are encoded.

    Returns ``(X, stats)`` with X of shape (n, encoder.dim), float32, rows in input order.
    ``out``: an (n, encoder.dim) array to fill and return instead of a new one (a ``np.memmap`` when
    X is larger than memory). ``caches``: a dict the caller keeps across calls (cache folder ->
    ``EmbeddingCache``), so a stream of calls (predict's chunks, a server's requests) reads the
    cache's index once instead of once per call. A concatenated encoder
    (``registry.ConcatEncoder``) is embedded part by part, each in its own cache.
    """
    t0 = time.perf_counter()
    if hasattr(encoder, "parts"):
        from .base import join_parts

        keys = text_keys(texts) if keys is None else keys
        parts = [embed_texts(texts, part, cache_root, batch_size=batch_size, shard_rows=shard_rows,
                             progress=progress, keys=keys, caches=caches) for part in encoder.parts]
        X = join_parts([X for X, _ in parts])
        if out is not None:
            out[:] = X
            X = out
        stats = parts[0][1]
        cut = max(parts, key=lambda p: p[1].n_truncated)[1]
        return X, EmbedStats(stats.n_texts, stats.n_unique, max(s.n_encoded for _, s in parts),
                             time.perf_counter() - t0, cut.n_truncated, cut.max_chars)
    cache = _open_cache(encoder, cache_root, caches)
    # the encoder reads at most max_chars characters of a text: a cut text is keyed by what is left,
    # the content its vector is of (a part of a concatenated encoder keys by its own cut)
    limit = max_chars(encoder)
    texts, cut = cap_texts(texts, limit)
    keys = text_keys(texts) if keys is None else np.array(keys, dtype=np.uint64)
    if cut:
        keys[cut] = text_keys([texts[i] for i in cut])
    uniq, first = np.unique(keys, return_index=True)
    missing = first[cache.lookup(uniq) < 0]
    missing.sort()
    if len(missing):
        buf_keys, buf_vecs, n_buf = [], [], 0
        bar = tqdm(total=len(missing), desc=f"embed [{encoder.id}]", unit="text", disable=not progress)
        # an encoder with its own pipeline (the st: one) asks for bigger calls to keep it full
        step = max(batch_size, int(getattr(encoder, "chunk_texts", 0)))
        for start in range(0, len(missing), step):
            idx = missing[start:start + step]
            buf_vecs.append(encoder.encode([texts[i] for i in idx]))
            buf_keys.append(keys[idx])
            n_buf += len(idx)
            bar.update(len(idx))
            if n_buf >= shard_rows:
                cache.add(np.concatenate(buf_keys), np.concatenate(buf_vecs))
                buf_keys, buf_vecs, n_buf = [], [], 0
        if n_buf:
            cache.add(np.concatenate(buf_keys), np.concatenate(buf_vecs))
        bar.close()
    X = cache.gather(keys, encoder.dim, out=out)
    return X, EmbedStats(len(texts), len(uniq), len(missing), time.perf_counter() - t0, len(cut), limit)


def _open_cache(encoder: Encoder, cache_root: str | Path, caches: dict[str, EmbeddingCache] | None) -> EmbeddingCache:
    """The encoder's cache under ``cache_root``: the one in ``caches`` (refreshed: another process may
    have added shards since) or a new one, remembered there."""
    where = str(EmbeddingCache.directory(cache_root, encoder.id))
    cache = None if caches is None else caches.get(where)
    if cache is None:
        cache = EmbeddingCache(cache_root, encoder.id)
        if caches is not None:
            caches[where] = cache
    else:
        cache.refresh()
    return cache


def uncached_texts(texts: Sequence[str], encoder: Encoder, cache_root: str | Path,
                   caches: dict[str, EmbeddingCache] | None = None) -> list[tuple[Encoder, list[str]]]:
    """What embedding ``texts`` with ``encoder`` would encode: per leaf encoder (each part of a
    concatenated one, else the encoder itself), ``(leaf, distinct texts its cache lacks)``, each text
    cut as that leaf reads it. Reads the cache only; encodes nothing."""
    if hasattr(encoder, "parts"):
        return [pair for part in encoder.parts for pair in uncached_texts(texts, part, cache_root, caches)]
    cache = _open_cache(encoder, cache_root, caches)
    cut_texts = cap_texts(texts, max_chars(encoder))[0]
    uniq, first = np.unique(text_keys(cut_texts), return_index=True)
    missing = np.sort(first[cache.lookup(uniq) < 0])
    return [(encoder, [cut_texts[i] for i in missing])]
