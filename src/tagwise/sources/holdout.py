"""``holdout: {test, dev, seed}``: cut label-stratified, reproducible test/dev splits from a file that has none.

Rows with the same text form one group and always land in the same split (a text in both train
and test would flatter every figure). Each group is put in the stratum of its rarest label (its
rarest by the number of groups carrying it; groups with no label form a stratum of their own), so
a label seen in a handful of rows still gets its share of test rows. Within a stratum the groups
are ordered by a hash of ``seed`` and their text, and the first ``test`` share of them go to test,
the next ``dev`` share to dev; the fractional remainders carry from stratum to stratum, so the
totals match the fractions to within one row. The split of a row depends only on the seed, the
texts and their labels: the same file added again (in any row order) gets the same splits.
"""
from __future__ import annotations

import hashlib
import math
from typing import Sequence


def _order_key(seed: int, text: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{text}".encode("utf-8")).digest()


def stratified_holdout(keys: Sequence[str], labels: Sequence[Sequence[str]], test: float, dev: float,
                       seed: int = 0) -> list[str]:
    """The split ("train", "dev" or "test") of each group.

    ``keys``: (n,) one distinct text per group; ``labels``: (n,) the group's label names.
    """
    count: dict[str, int] = {}
    for labs in labels:
        for name in set(labs):
            count[name] = count.get(name, 0) + 1
    strata: dict[str, list[int]] = {}
    for i, labs in enumerate(labels):
        rarest = min(set(labs), key=lambda n: (count[n], n)) if labs else ""
        strata.setdefault(rarest, []).append(i)
    out = ["train"] * len(keys)
    carry_test = carry_dev = 0.0
    # smallest strata first: their rows are the ones a plain random cut would leave out of test
    for name in sorted(strata, key=lambda n: (len(strata[n]), n)):
        members = sorted(strata[name], key=lambda i: _order_key(seed, keys[i]))
        want_test = len(members) * test + carry_test
        n_test = math.floor(want_test + 0.5)
        carry_test = want_test - n_test
        want_dev = len(members) * dev + carry_dev
        n_dev = min(math.floor(want_dev + 0.5), len(members) - n_test)
        carry_dev = want_dev - n_dev
        for k, i in enumerate(members):
            out[i] = "test" if k < n_test else "dev" if k < n_test + n_dev else "train"
    return out


def apply_holdout(rows, holdout, default_ids: bool) -> None:
    """Move the labeled ``train`` rows of ``rows`` (a ``SourceRows``) into test/dev per ``holdout``.

    ``default_ids``: the example ids were made from the split and row (``"train:12"``); they are
    remade from the new split so an id still says where its row sits.
    """
    groups: dict[str, list[int]] = {}
    for i, (split, labs) in enumerate(zip(rows.splits, rows.labels)):
        if split == "train" and labs is not None:
            groups.setdefault(rows.texts[i], []).append(i)
    if not groups:
        return
    keys = list(groups)
    group_labels = [sorted({n for i in groups[k] for n in rows.labels[i]}) for k in keys]
    splits = stratified_holdout(keys, group_labels, holdout.test, holdout.dev, holdout.seed)
    for key, split in zip(keys, splits):
        for i in groups[key]:
            rows.splits[i] = split
            if default_ids:
                rows.example_ids[i] = f"{split}:{rows.rows[i]}"
