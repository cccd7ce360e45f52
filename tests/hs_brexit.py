"""HS-Brexit (../shared/data/hs_brexit): every tweet carries the same 6 annotators' votes on three labels."""
from __future__ import annotations

LABELS = ("hate", "aggressive", "offensive")


def hs_brexit_votes(item: dict) -> dict[str, list[int]]:
    """One HS-Brexit item -> {label: [0/1 vote of annotator 0..5]}; the published "No" strings count as 0."""
    other = item["other_info"]["other annotations"]
    cols = {"hate": item["annotations"], "aggressive": other["aggressive language detection"],
            "offensive": other["offensive language detection"]}
    return {k: [1 if v.strip() == "1" else 0 for v in c.split(",")] for k, c in cols.items()}
