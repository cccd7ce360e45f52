"""How every benchmark reports a figure over seeds: mean ± sample sd, and per-seed wins/losses.

The sd is the sample sd (ddof=1): with 3-6 seeds the population sd (ddof=0) understates the spread
by 18-29%. A comparison of two methods is made seed by seed (both ran on the same draw), so the
win/loss count shows what a mean hides: "ahead on average" can be "behind in 16 of 32 settings".
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def sample_sd(values: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1); 0.0 for a single value (no spread can be estimated)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def mean_sd(values: Sequence[float], digits: int = 4) -> dict:
    """{"mean", "sd" (sample), "n", "per_seed"} of a figure measured once per seed (NaNs dropped)."""
    v = [float(x) for x in values if x is not None and not np.isnan(x)]
    if not v:
        return {"mean": None, "sd": None, "n": 0, "per_seed": []}
    return {"mean": round(float(np.mean(v)), digits), "sd": round(sample_sd(v), digits), "n": len(v),
            "per_seed": [round(x, digits) for x in v]}


def compare(ours: Sequence[float], theirs: Sequence[float], higher_is_better: bool = True, tie: float = 0.0,
            digits: int = 4) -> dict:
    """Seed-by-seed comparison of two methods run on the same draws.

    ours, theirs: one figure per seed, in the same seed order. Returns {"wins", "losses", "ties", "n",
    "diff": mean_sd of ours - theirs}; a difference within ``tie`` counts as a tie.
    """
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"compare: {a.shape} figures against {b.shape}; one per seed on both sides")
    d = (a - b) if higher_is_better else (b - a)
    return {"wins": int((d > tie).sum()), "losses": int((d < -tie).sum()), "ties": int((np.abs(d) <= tie).sum()),
            "n": int(len(d)), "diff": mean_sd(a - b, digits)}


def fmt_mean_sd(values: Sequence[float], digits: int = 3) -> str:
    """"0.512 ± 0.013 (n=4)": the form every printed table and README sentence uses."""
    m = mean_sd(values, digits + 2)
    if not m["n"]:
        return "n/a"
    return f"{m['mean']:.{digits}f} ± {m['sd']:.{digits}f} (n={m['n']})"


def fmt_compare(ours: Sequence[float], theirs: Sequence[float], higher_is_better: bool = True) -> str:
    """"ahead in 3 of 4 seeds, behind in 1" plus the mean ± sd difference."""
    c = compare(ours, theirs, higher_is_better)
    return (f"{c['diff']['mean']:+.3f} ± {c['diff']['sd']:.3f}; ahead in {c['wins']} of {c['n']} seeds, "
            f"behind in {c['losses']}")
