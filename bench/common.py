"""Shared helpers for the benchmarks: load a bench spec with its cached USE embeddings."""
from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np

from tagwise.encoders import embed_texts, get_encoder
from tagwise.sources import ingest, load_spec
from tagwise.types import LabelSpace

BENCH = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("TAGWISE_CACHE_DIR", BENCH.parent / ".cache" / "emb"))
RESULTS = BENCH / "results"


def load_dataset(spec_name: str, encoder: str = "use"):
    """-> dict(texts, X (n,d), Y (n,K) uint8, splits (n,) str, labels LabelSpace, rows SourceRows)."""
    rows = ingest(load_spec(BENCH / "specs" / f"{spec_name}.yaml"))
    X, _ = embed_texts(rows.texts, get_encoder(encoder), CACHE, progress=True)
    space = LabelSpace(tuple(rows.annotated_labels))
    return {"texts": rows.texts, "X": X, "Y": space.to_matrix(rows.labels), "splits": np.array(rows.splits),
            "labels": space, "rows": rows}


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def peak_rss_mb() -> float:
    """This process's peak RSS in MB. Read from VmHWM, which belongs to the process image: Linux
    carries ru_maxrss across exec, so a benchmark child would otherwise report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_results(name: str, results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
