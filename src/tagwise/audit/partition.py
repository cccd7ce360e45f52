"""Pieces of the partitioned audit (``core.audit_arrays(..., partition_rows=N)``).

The audit holds several (n, K) and (n, k) arrays at once (out-of-fold probabilities, kNN votes,
their blend, cell scores, the kNN graph, their temporaries), so its memory grows with n until it
no longer fits. Above ``partition_rows`` rows it audits random partitions of the rows one after
the other; this module deals the rows to partitions, keeps each partition's row-aligned outputs
in files on disk (written with plain file writes, so written rows never stay in this process's
memory, and mapped read-only at the end), and finds exact duplicates across partitions from 64-bit
text hashes instead of a dictionary of every text.
"""
from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

import numpy as np

from ..text import normalize_text


def partition_runs(n: int, partition_rows: int, random_state: int = 0,
                   block_rows: int | None = None) -> list[list[tuple[int, int]]]:
    """Deal rows 0..n-1 to ``ceil(n / partition_rows)`` partitions of about equal size.

    Rows go in contiguous blocks of ``block_rows`` (default ``partition_rows // 256``, at most
    4,096), the blocks dealt to partitions by a seeded shuffle: every partition is a random
    sample of the data (a corpus stored source by source still mixes, since each partition takes
    hundreds of blocks from all over it), while reads from a memory-mapped X and writes of the
    outputs stay sequential runs. Returns, per partition, its runs ``[(start, stop), ...]`` in
    increasing order (adjacent blocks merged).
    """
    n_parts = -(-n // partition_rows)
    block = block_rows or max(1, min(4_096, partition_rows // 256))
    n_blocks = -(-n // block)
    owner = np.random.default_rng(random_state).permutation(np.arange(n_blocks) % n_parts)
    parts = []
    for p in range(n_parts):
        runs: list[tuple[int, int]] = []
        for b in np.flatnonzero(owner == p).tolist():
            start, stop = b * block, min((b + 1) * block, n)
            if runs and runs[-1][1] == start:
                runs[-1] = (runs[-1][0], stop)
            else:
                runs.append((start, stop))
        parts.append(runs)
    return parts


def run_rows(runs: list[tuple[int, int]]) -> np.ndarray:
    """(m,) int64 row indices of ``runs``, increasing."""
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in runs])


def take_runs(A, runs: list[tuple[int, int]], dtype) -> np.ndarray:
    """The rows of ``runs`` of A ((n, ...) array or np.memmap) as one in-memory array of ``dtype``,
    copied run by run (no whole-array temporary). Pages of a memory-mapped A that this touched are
    dropped from the process afterwards (they stay in the page cache), so reading every partition
    of a memory-mapped X does not pile X up in this process's resident memory."""
    m = sum(b - a for a, b in runs)
    out = np.empty((m,) + tuple(A.shape[1:]), dtype=dtype)
    pos = 0
    for a, b in runs:
        out[pos:pos + b - a] = A[a:b]
        pos += b - a
    drop_mapped_pages(A)
    return out


def drop_mapped_pages(A) -> None:
    """Release the resident pages of a read-only or shared np.memmap (a no-op for anything else;
    a copy-on-write map keeps its pages, which hold the only copy of its changes)."""
    mm = getattr(A, "_mmap", None)
    if mm is not None and getattr(A, "mode", "c") in ("r", "r+", "w+") and hasattr(mm, "madvise"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError, AttributeError):
            pass


class RowFile:
    """An (n, width) or (n,) array on disk, written run by run with plain file writes and mapped
    read-only once complete (``mapped``)."""

    def __init__(self, directory: Path, name: str, n: int, width: int | None, dtype):
        self.path = Path(directory) / f"{name}.bin"
        self.dtype = np.dtype(dtype)
        self.shape = (n,) if width is None else (n, width)
        self.row_bytes = self.dtype.itemsize * (1 if width is None else width)
        with open(self.path, "wb") as fh:
            fh.truncate(n * self.row_bytes)

    def write(self, runs: list[tuple[int, int]], values: np.ndarray) -> None:
        """Write ``values`` (rows of ``runs`` in order) to their rows."""
        values = np.asarray(values, dtype=self.dtype)
        pos = 0
        with open(self.path, "r+b") as fh:
            for a, b in runs:
                fh.seek(a * self.row_bytes)
                fh.write(np.ascontiguousarray(values[pos:pos + b - a]).tobytes())
                pos += b - a

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start:stop as an in-memory array."""
        count = (stop - start) * self.row_bytes // self.dtype.itemsize
        flat = np.fromfile(self.path, dtype=self.dtype, count=count, offset=start * self.row_bytes)
        return flat.reshape((stop - start,) + self.shape[1:])

    def mapped(self) -> np.ndarray:
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=self.shape)


def text_hashes(texts) -> np.ndarray:
    """(n,) uint64 hash of each text's ``normalize_text`` key; 0 for a text that normalises to
    nothing (never a duplicate). 64 bits: a chance collision among 100M texts has probability ~3e-4."""
    out = np.zeros(len(texts), dtype=np.uint64)
    for i, t in enumerate(texts):
        key = normalize_text(t)
        if key:
            out[i] = max(1, int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little"))
    return out


def exact_duplicate_pairs(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, pairing every row with the first row of equal nonzero hash (as
    ``duplicates.conflicting_duplicates`` pairs exact duplicates). Returns two (m,) int64 arrays."""
    order = np.lexsort((np.arange(len(hashes)), hashes))
    h = hashes[order]
    keep = h != 0
    order, h = order[keep], h[keep]
    if len(h) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new_group = np.ones(len(h), bool)
    new_group[1:] = h[1:] != h[:-1]
    first = order[np.flatnonzero(new_group)[np.cumsum(new_group) - 1]]
    dup = ~new_group
    return first[dup].astype(np.int64), order[dup].astype(np.int64)
