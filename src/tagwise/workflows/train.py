"""Train a project's model: gather its labeled (and unlabeled) examples, pick or run a mode, save it."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .._io import unique_name
from ..learn.lowlabel import zero_shot_prior
from ..learn.multisource import max_up, partial_targets
from ..learn.persist import save_model
from ..learn.registry import MODES, ModeChoice, TrainingData, check_params, choose_mode, resolve_mode
from ..learn.semisupervised import SemiSupervisedClassifier
from ..learn.cotrain import CoTrainingClassifier
from ..project import Project
from ..types import Examples, TagwiseError


def training_data(project: Project, split: str | list[str] = "train", encoder: str | None = None,
                  progress: bool = True, consensus: str = "model") -> tuple[TrainingData, Examples, Examples]:
    """The project's labeled ``split`` and unlabeled rows (train/unlabeled splits) as a ``TrainingData``.

    Labels are closed upward over the taxonomy's hierarchy, and a cell is known where the row's source
    annotates the label (``learn.multisource.partial_targets``). An example with several judgements
    trains on their consensus (``consensus``, one of ``workflows.annotators.CONSENSUS_METHODS``): soft
    targets in [0, 1] on the cells the judgements cover. Returns ``(data, labeled, unlabeled)``.
    """
    encoder = encoder or project.default_encoder
    tax = project.taxonomy
    space = tax.space
    if not len(space):
        raise TagwiseError(f"{project.path}: the taxonomy has no labels. Fix: `tagwise init --taxonomy "
                           f"labels.yaml` or add a labeled source.")
    lab = project.examples(split=split, labeled=True)
    unl = project.examples(split=["train", "unlabeled"], labeled=False)
    Y, known = partial_targets(lab, tax, space)
    Y = apply_consensus(project, lab, Y, consensus)
    X = project.features(lab, encoder, progress=progress) if len(lab) else np.zeros((0, 0), np.float32)
    U = project.features(unl, encoder, progress=progress) if len(unl) else None
    if len(lab) == 0 and U is not None:
        X = np.zeros((0, U.shape[1]), np.float32)
    data = TrainingData(
        X=X, Y=Y, mask=known, label_names=list(space.names), sources=np.asarray(lab.sources, dtype=object),
        ancestors=tax.ancestor_matrix(space), X_unlabeled=U, texts=list(lab.texts), texts_unlabeled=list(unl.texts),
        embed=lambda texts: project.embed_texts(list(texts), encoder, progress=False)[0],
        descriptions=tax.descriptions, examples=tax.examples, sub_labels=tax.zero_shot_sub_labels())
    return data, lab, unl


def apply_consensus(project: Project, examples: Examples, Y: np.ndarray, method: str = "model") -> np.ndarray:
    """``Y`` (n, K) of ``examples`` with the consensus (``workflows.annotators.consensus_overrides``)
    in the cells several people judged; float32 soft targets where any row changed, else ``Y``."""
    from .annotators import consensus_overrides

    overrides = consensus_overrides(project, method)
    rows = [(r, overrides[int(i)]) for r, i in enumerate(examples.ids.tolist()) if int(i) in overrides]
    if not rows:
        return Y
    Y = Y.astype(np.float32)
    for r, (proba, covered) in rows:
        Y[r, covered] = proba[covered]
    # a parent is at least as likely as each of its children (the hard labels were closed upward)
    return max_up(Y, project.taxonomy.ancestor_matrix(project.labels))


def weak_training_data(project: Project, encoder: str | None = None,
                       progress: bool = True) -> tuple[TrainingData, Examples, Examples]:
    """Training data from labeling-function votes: the label model's soft targets, gold winning where
    present (``workflows.weak.weak_training_targets``), over the train/unlabeled rows with a target."""
    from .weak import weak_training_targets

    encoder = encoder or project.default_encoder
    t = weak_training_targets(project)
    if list(t["label_names"]) != list(project.labels.names):
        raise TagwiseError(f"{project.path}: the LF votes are for labels {t['label_names'][:8]}, the taxonomy "
                           f"has {list(project.labels.names)[:8]}. Fix: re-apply the LFs (`tagwise lf apply`).")
    every = project.examples()
    row_of = {int(i): r for r, i in enumerate(every.ids)}
    ex = every.subset(np.array([row_of[int(i)] for i in t["ids"]], dtype=np.int64))
    X = project.features(ex, encoder, progress=progress)
    tax = project.taxonomy
    data = TrainingData(X=X, Y=t["targets"], mask=t["mask"], label_names=list(t["label_names"]),
                        sources=np.asarray(ex.sources, dtype=object), ancestors=tax.ancestor_matrix(tax.space),
                        texts=list(ex.texts), embed=lambda texts: project.embed_texts(list(texts), encoder,
                                                                                       progress=False)[0])
    return data, ex, ex.subset(np.zeros(0, dtype=np.int64))


def fine_tune_encoder(project: Project, split: str = "train", base: str | None = None,
                      max_steps: int = 100) -> dict:
    """SetFit-style fine-tuning of a sentence-transformers body on the labeled ``split`` (torch extra).

    The body lands in ``PROJECT/encoders/<name>``. Returns ``{"encoder": "st:<folder>", "steps",
    "pairs", "seconds", "final_loss"}``.
    """
    from ..learn.finetune import DEFAULT_BASE, finetune_encoder

    ex = project.examples(split=split, labeled=True)
    if len(ex) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r} to fine-tune on. Fix: add a "
                           f"labeled source or pass another --split.")
    Y = ex.label_matrix(project.labels) * ex.known_mask(project.labels)
    out = Path(project.path) / "encoders" / unique_name("finetuned")
    result = finetune_encoder(list(ex.texts), Y, out, base=base or DEFAULT_BASE, max_steps=max_steps)
    return {**result, "encoder": f"st:{out.resolve()}"}


def train(project: Project, mode: str = "auto", split: str | list[str] = "train", encoder: str | None = None,
          params: dict | None = None, name: str | None = None, seed: int = 0, progress: bool = True,
          consensus: str = "model") -> dict:
    """Fit ``mode`` (or, with "auto", the mode ``learn.registry.choose_mode`` picks) and make it current.

    ``consensus``: what an example several people annotated trains on (``workflows.annotators``'
    ``CONSENSUS_METHODS``; default the annotator model's soft consensus).

    Returns ``{"model", "mode", "choice": {"mode", "reason", "cv"}, "n_examples", "n_unlabeled",
    "n_labels", "seconds", "thresholds", "pseudo_labels"?, "sub_labels"?}``.
    """
    from .annotators import check_consensus_method

    check_consensus_method(consensus)
    encoder = encoder or project.default_encoder
    project.clean_orphans()
    if mode == "weak":
        data, lab, unl = weak_training_data(project, encoder, progress=progress)
    else:
        data, lab, unl = training_data(project, split, encoder, progress=progress, consensus=consensus)
    if mode == "auto" and params:
        # parameters name one head's options: they go to the supervised head, the default before "auto"
        choice = ModeChoice("supervised", "--params given without a mode")
    elif mode == "auto":
        choice = choose_mode(data, seed=seed, progress=progress)
    else:
        choice = ModeChoice(resolve_mode(mode).name, "asked for")
    chosen = MODES[choice.mode]
    check_params(chosen.name, params)
    if chosen.name not in ("zero-shot",) and len(lab) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r}. Fix: add a source with that "
                           f"split (`tagwise add-source`), pass another --split, or use --zero-shot.")
    t0 = time.perf_counter()
    try:
        head = chosen.fit(data, dict(params or {}), seed, progress)
    except TagwiseError:
        raise
    except (TypeError, ValueError) as exc:
        if not params:
            raise
        # the names are valid (check_params), so a value has the wrong type or range
        raise TagwiseError(f"--params {params}: the {chosen.name} head refused a value ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}). Fix: give each parameter a value of its "
                           f"default's type.") from None
    seconds = time.perf_counter() - t0
    name = name or unique_name(chosen.name.replace("-", ""))
    names = list(data.label_names)
    info = {"labels": names, "encoder": encoder, "mode": chosen.name,
            "choice": {"mode": choice.mode, "reason": choice.reason, "cv": choice.cv},
            "trained_on": {"split": split, "n_examples": len(lab), "n_unlabeled": len(unl),
                           "sources": sorted(set(map(str, lab.sources))), "consensus": consensus},
            "fit_seconds": round(seconds, 3)}
    out = {"model": name, "mode": chosen.name, "choice": info["choice"], "n_examples": len(lab),
           "n_unlabeled": len(unl), "n_labels": len(names), "seconds": seconds,
           "thresholds": dict(zip(names, map(float, head.thresholds_for(1)[0])))}
    if isinstance(head, (SemiSupervisedClassifier, CoTrainingClassifier)):
        info["pseudo_labels"] = out["pseudo_labels"] = head.n_pseudo_
    prior = zero_shot_prior(head)
    if prior is not None and len(prior.sub_owner_):
        has = sorted(set(prior.sub_owner_.tolist()))
        info["sub_labels"] = out["sub_labels"] = {"used": [names[k] for k in has if prior.expanded_[k]],
                                                  "off": [names[k] for k in has if not prior.expanded_[k]]}
    save_model(head, project.models_dir / name, info)
    # cross-conformal calibration data for `predict --risk` when the project has no dev split
    from .conformal import save_calibration_oof
    save_calibration_oof(head, data.Y, data.mask, data.sources, project.models_dir / name)
    project.set_current_model(name)
    return out
