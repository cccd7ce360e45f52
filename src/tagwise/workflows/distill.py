"""Distil a project's model (e.g. a fine-tuned transformer) into the fast default head on frozen features.

``tagwise distill PROJECT [--student ENCODER] [--teacher MODEL]``: the teacher's probabilities over the
unlabeled pool and the labeled rows become soft targets for ``MultiLabelLinear`` on the student
encoder's cached vectors, so serving runs at frozen-encoder speed while keeping what it can of the
teacher's gain.
"""
from __future__ import annotations

import time

import numpy as np

from .._io import unique_name
from ..evaluate.metrics import multilabel_report
from ..learn.linear import MultiLabelLinear
from ..learn.multisource import partial_targets
from ..learn.persist import save_model
from ..learn.registry import check_params
from ..learn.thresholds import best_f1_thresholds
from ..project import Project
from ..types import Examples, LabelSpace, TagwiseError
from .annotators import apply_consensus
from .models import LoadedModel, load_project_model
from .predict import predict_with

STUDENT_ALIASES = {"hashing": "hashing:256"}  # `--student hashing`: what `train --encoder hashing` would hash to


def _dev_macro_f1(project: Project, head, encoder: str, names: list[str], dev: Examples,
                  sources: list[str] | None = None) -> float:
    """Macro-F1 of ``head`` on the labeled ``dev`` rows as ``workflows.evaluate.evaluate`` computes it (each
    row in its source's mode when the head has modes, cells the row's source does not claim left out)."""
    from .evaluate import claimed_mask

    space = LabelSpace(tuple(names))
    Y, mask = partial_targets(dev, project.taxonomy, space)
    mask &= claimed_mask(dev, project.taxonomy, space)
    known = set(sources or [])
    modes = [str(s) if str(s) in known else "agnostic" for s in dev.sources] if known else None
    X = project.features(dev, encoder, progress=False)
    P = head.predict_proba(X, texts=list(dev.texts), source=modes)
    Z = head.decide(P, source=modes)
    return float(multilabel_report(Y, Z, P, names, mask)["macro_f1"])


def _teacher_proba(project: Project, teacher: LoadedModel, ex: Examples, names: list[str],
                   progress: bool) -> np.ndarray:
    """(n, K) float32 teacher probabilities of ``ex``'s rows in the project's label order, each row in its
    own source's mode when the teacher has one."""
    if not len(ex):
        return np.zeros((0, len(names)), np.float32)
    col = {n: k for k, n in enumerate(teacher.labels)}
    missing = [n for n in names if n not in col]
    if missing:
        raise TagwiseError(f"{project.path}: teacher {teacher.name!r} has no column for labels {missing[:8]} of the "
                           f"taxonomy. Fix: retrain the teacher (`tagwise train --fine-tune`) or pass --teacher.")
    _, P = predict_with(project, teacher, list(ex.texts), sources=[str(s) for s in ex.sources], progress=progress)
    return P[:, [col[n] for n in names]].astype(np.float32)


def distill(project: Project, teacher: str | None = None, student: str | None = None,
            split: str | list[str] = "train", params: dict | None = None, name: str | None = None, seed: int = 0,
            progress: bool = True, consensus: str = "model") -> dict:
    """Train the fast default head (``MultiLabelLinear`` on the ``student`` encoder's frozen vectors, as
    ``train --model supervised`` would) on ``teacher``'s soft labels and make it current.

    teacher: a model name (default: the current model; typically a ``train --fine-tune`` model).
    student: an encoder name ("use", "hashing" = hashing:256, any ``get_encoder`` name; default the
    project's encoder). Targets: the labeled ``split`` rows (the human label where the row's source
    annotates the label, the teacher's probability on the unknown cells) plus every unlabeled pool row
    (the teacher's probabilities). The per-label thresholds are chosen on the labeled ``dev`` split when
    there is one (and ``split`` does not include it), else on the labeled rows' out-of-fold probabilities
    against their human labels; never on the teacher's labels or on a test split.

    Returns ``{"model", "teacher", "student", "n_examples", "n_unlabeled", "n_labels", "seconds",
    "thresholds_on", "dev": {"teacher", "student", "frozen_head", "kept"} | None, "warnings"}``; ``dev``
    holds dev macro-F1 figures and the share of the teacher's gain over the plain frozen head (the same
    head on the same vectors trained on the labeled rows alone) that the student keeps.
    """
    from .annotators import check_consensus_method
    from .health import claimed_columns, data_health, model_health

    check_consensus_method(consensus)
    check_params("supervised", params)
    project.clean_orphans()
    teacher_model = load_project_model(project, teacher)
    encoder = STUDENT_ALIASES.get(student or "", student) or project.default_encoder
    tax = project.taxonomy
    space = tax.space
    names = list(space.names)
    lab = project.examples(split=split, labeled=True)
    if len(lab) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r} to distil with. Fix: pass "
                           f"another --split or label some examples.")
    unl = project.examples(split=["train", "unlabeled"], labeled=False)
    Y, known = partial_targets(lab, tax, space)
    Y = apply_consensus(project, lab, Y, consensus)  # soft consensus stays soft (float32 in [0, 1])
    before = data_health(project, split, consensus, examples=lab, targets=(Y, known))

    t0 = time.perf_counter()
    P_lab = _teacher_proba(project, teacher_model, lab, names, progress)
    P_pool = _teacher_proba(project, teacher_model, unl, names, progress)
    # A human label, where the row's source gives one, is what the teacher was fitted to and may still get
    # wrong; replacing it with the teacher's probability would teach the student the teacher's mistakes on
    # exactly the cells where the truth is known. The teacher's soft probability (its graded "how likely",
    # never rounded to 0/1) is the target only where no human said anything: unknown cells and pool rows.
    T_lab = np.where(known, Y, P_lab).astype(np.float32)
    T = np.vstack([T_lab, P_pool]).astype(np.float32)
    M = np.ones(T.shape, dtype=bool)  # every cell now has a target: a human one or the teacher's
    X_lab = project.features(lab, encoder, progress=progress)
    X = np.vstack([X_lab, project.features(unl, encoder, progress=progress)]) if len(unl) else X_lab
    teacher_seconds = time.perf_counter() - t0

    splits = [split] if isinstance(split, str) else list(split)
    dev = project.examples(split="dev", labeled=True) if "dev" not in splits and "dev" in project.splits() else None
    dev = dev if dev is not None and len(dev) else None
    settings = {"random_state": seed, **dict(params or {})}
    t0 = time.perf_counter()
    if dev is not None:
        # the cuts come from dev below: the head needs no out-of-fold pass for them
        head = MultiLabelLinear(**{**settings, "thresholds": 0.5}).fit(X, T, M)
        Yd, Md = partial_targets(dev, tax, space)
        Yd = apply_consensus(project, dev, Yd, consensus)
        Pd = head.predict_proba(project.features(dev, encoder, progress=False))
        head.threshold_ = best_f1_thresholds(Yd, Pd, Md, shrink=head.threshold_shrink)
        thresholds_on = f"dev split ({len(dev)} rows)"
        after = model_health(head, None, Yd, Md, np.asarray(dev.sources, dtype=object), names,
                             claimed_columns(dev, tax, space), mode="distill", alone=False, seed=seed, proba=Pd)
    else:
        head = MultiLabelLinear(**{**settings, "thresholds": "cv"}).fit(X, T, M)
        # the labeled rows' out-of-fold probabilities against their human labels (known cells only); the
        # teacher saw these rows, so its targets on the other folds know a little of them: a mild optimism
        oof = head.oof_proba_[:len(lab)]
        head.threshold_ = best_f1_thresholds(Y, oof, known, shrink=head.threshold_shrink)
        thresholds_on = f"out-of-fold probabilities of the {len(lab)} labeled rows"
        after = model_health(head, None, Y, known, np.asarray(lab.sources, dtype=object), names,
                             claimed_columns(lab, tax, space), mode="distill", alone=False, seed=seed, proba=oof)
    head.threshold_[head.support_ <= 0] = 1.0 + 1e-9  # as MultiLabelLinear.fit: no positive, never predicted
    seconds = time.perf_counter() - t0

    figures = None
    if dev is not None:
        frozen = MultiLabelLinear(**settings).fit(X_lab, Y, known)  # what `train --model supervised` fits
        f_teacher = _dev_macro_f1(project, teacher_model.head, teacher_model.encoder, names, dev,
                                  teacher_model.sources)
        f_student = _dev_macro_f1(project, head, encoder, names, dev)
        f_frozen = _dev_macro_f1(project, frozen, encoder, names, dev)
        gain = f_teacher - f_frozen
        figures = {"teacher": round(f_teacher, 4), "student": round(f_student, 4), "frozen_head": round(f_frozen, 4),
                   "kept": round((f_student - f_frozen) / gain, 4) if gain > 1e-9 else None}
    warnings = before["warnings"] + after["warnings"]
    if figures is not None and figures["kept"] is None:
        warnings.append({"kind": "teacher_no_better", "source": None, "label": None,
                         "message": f"teacher {teacher_model.name!r} is no better on dev than the plain frozen head "
                                    f"({figures['teacher']:.3f} vs {figures['frozen_head']:.3f} macro-F1): there is "
                                    f"no gain to distil.",
                         "fix": "train a stronger teacher (`tagwise train --fine-tune --budget-minutes N`) or keep "
                                "`tagwise train`'s head."})
    name = name or unique_name("distill")
    info = {"labels": names, "encoder": encoder, "mode": "supervised",
            "choice": {"mode": "supervised", "reason": f"distilled from {teacher_model.name}", "cv": {}},
            "trained_on": {"split": split, "n_examples": len(lab), "n_unlabeled": len(unl),
                           "sources": sorted(set(map(str, lab.sources))), "consensus": consensus,
                           "targets": "teacher soft labels (human labels where known)"},
            "distilled_from": {"teacher": teacher_model.name, "teacher_mode": teacher_model.info.get("mode"),
                               "teacher_encoder": teacher_model.encoder, "thresholds_on": thresholds_on,
                               "teacher_seconds": round(teacher_seconds, 3), "dev_macro_f1": figures},
            "fit_seconds": round(seconds, 3), "health": {"before": before, "after": after}, "warnings": warnings}
    save_model(head, project.models_dir / name, info)
    project.set_current_model(name)
    return {"model": name, "teacher": teacher_model.name, "student": encoder, "n_examples": len(lab),
            "n_unlabeled": len(unl), "n_labels": len(names), "seconds": seconds, "teacher_seconds": teacher_seconds,
            "thresholds_on": thresholds_on, "dev": figures, "warnings": warnings,
            "health": {"before": before, "after": after}}
