"""Train a project's model: gather its labeled (and unlabeled) examples, pick or run a mode, save it."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .._io import unique_name
from ..learn.lowlabel import zero_shot_prior
from ..learn.multisource import partial_targets
from ..learn.persist import save_model
from ..learn.registry import MODES, ModeChoice, TrainingData, check_params, choose_mode, resolve_mode
from ..learn.semisupervised import SemiSupervisedClassifier
from ..learn.cotrain import CoTrainingClassifier
from ..project import Project
from ..types import Examples, TagwiseError
from .annotators import apply_consensus  # noqa: F401  (it lived here; callers import it from train)


def training_data(project: Project, split: str | list[str] = "train", encoder: str | None = None,
                  progress: bool = True, consensus: str = "model",
                  drop_shared_test_texts: bool = False) -> tuple[TrainingData, Examples, Examples]:
    """The project's labeled ``split`` and unlabeled rows (train/unlabeled splits) as a ``TrainingData``.

    Labels are closed upward over the taxonomy's hierarchy, and a cell is known where the row's source
    annotates the label (``learn.multisource.partial_targets``). An example with several judgements
    trains on their consensus (``consensus``, one of ``workflows.annotators.CONSENSUS_METHODS``): soft
    targets in [0, 1] on the cells the judgements cover. ``drop_shared_test_texts``: leave out training
    rows whose text is a test text of another source (``workflows.health.shared_texts`` counts them).
    Returns ``(data, labeled, unlabeled)``.
    """
    encoder = encoder or project.default_encoder
    tax = project.taxonomy
    space = tax.space
    if not len(space):
        raise TagwiseError(f"{project.path}: the taxonomy has no labels. Fix: `tagwise init --taxonomy "
                           f"labels.yaml` or add a labeled source.")
    lab = project.examples(split=split, labeled=True)
    if drop_shared_test_texts and len(lab):
        from .health import drop_shared_test_rows

        lab = lab.subset(drop_shared_test_rows(project, lab))
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


def _dev_health(project: Project, head, mode: str, encoder: str, names: list[str], seed: int) -> dict | None:
    """``workflows.health.model_health`` on the labeled dev rows, for a head without out-of-fold predictions;
    None when the project has no labeled dev row."""
    from ..types import LabelSpace
    from .health import claimed_columns, model_health

    dev = project.examples(split="dev", labeled=True)
    if len(dev) == 0:
        return None
    space = LabelSpace(tuple(names))
    Y, M = partial_targets(dev, project.taxonomy, space)
    X = project.features(dev, encoder, progress=False)
    known = set(getattr(head, "sources_", []) or [])
    modes = [str(s) if str(s) in known else "agnostic" for s in dev.sources] if known else None
    P = head.predict_proba(X, texts=list(dev.texts), source=modes)
    return model_health(head, X, Y, M, dev.sources, names, claimed_columns(dev, project.taxonomy, space),
                        mode=mode, alone=False, seed=seed, proba=np.asarray(P))


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
          consensus: str = "model", on_health=None, drop_shared_test_texts: bool = False,
          check_alone: bool = True) -> dict:
    """Fit ``mode`` (or, with "auto", the mode ``learn.registry.choose_mode`` picks) and make it current.

    ``consensus``: what an example several people annotated trains on (``workflows.annotators``'
    ``CONSENSUS_METHODS``; default the annotator model's soft consensus).

    Training data health (``workflows.health``) is checked before the fit (``data_health``: per source
    x label positives / negatives / unknown / expected positives, shared test texts) and after it
    (``model_health``: each source's out-of-fold F1 in its own mode against the trivial predictors and,
    with several sources, the source trained alone unless ``check_alone`` is False). ``on_health``:
    called as ``on_health(data_health_dict)`` before the fit (the CLI prints it at once).
    ``drop_shared_test_texts``: train without rows whose text is another source's test text.

    Returns ``{"model", "mode", "choice": {"mode", "reason", "cv"}, "n_examples", "n_unlabeled",
    "n_labels", "seconds", "thresholds", "health": {"before", "after"}, "warnings": [{"kind", "source",
    "label", "message", "fix"}], "pseudo_labels"?, "sub_labels"?}``; ``health`` and ``warnings`` are
    also saved in the model's ``model.json`` info.
    """
    from .annotators import check_consensus_method
    from .health import claimed_columns, data_health, model_health

    check_consensus_method(consensus)
    encoder = encoder or project.default_encoder
    project.clean_orphans()
    if mode == "weak":
        data, lab, unl = weak_training_data(project, encoder, progress=progress)
    else:
        data, lab, unl = training_data(project, split, encoder, progress=progress, consensus=consensus,
                                       drop_shared_test_texts=drop_shared_test_texts)
    before = data_health(project, split, consensus if mode != "weak" else "weak", examples=lab,
                         targets=(data.Y, data.mask), compare_stored=mode != "weak")
    if on_health is not None:
        on_health(before)
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
    Y_health, M_health = data.Y, data.mask
    if data.ancestors is not None and data.ancestors.any():
        from ..taxonomy import propagate_with_ancestors

        Y_health, M_health = propagate_with_ancestors(data.Y, data.mask, data.ancestors)
    after = model_health(head, data.X, Y_health, M_health,
                         data.sources if data.sources is not None else np.full(len(data.Y), "all", dtype=object),
                         data.label_names,
                         None if mode == "weak" else claimed_columns(lab, project.taxonomy, project.taxonomy.space),
                         mode=chosen.name, alone=check_alone and chosen.name == "multisource", seed=seed)
    if not after["checked"] and mode != "weak":
        after = _dev_health(project, head, chosen.name, encoder, list(data.label_names), seed) or after
    health = {"before": before, "after": after}
    warnings = before["warnings"] + after["warnings"]
    name = name or unique_name(chosen.name.replace("-", ""))
    names = list(data.label_names)
    info = {"labels": names, "encoder": encoder, "mode": chosen.name,
            "choice": {"mode": choice.mode, "reason": choice.reason, "cv": choice.cv},
            "trained_on": {"split": split, "n_examples": len(lab), "n_unlabeled": len(unl),
                           "sources": sorted(set(map(str, lab.sources))), "consensus": consensus,
                           "drop_shared_test_texts": drop_shared_test_texts},
            "fit_seconds": round(seconds, 3)}
    out = {"model": name, "mode": chosen.name, "choice": info["choice"], "n_examples": len(lab),
           "n_unlabeled": len(unl), "n_labels": len(names), "seconds": seconds,
           "thresholds": dict(zip(names, map(float, head.thresholds_for(1)[0]))),
           "health": health, "warnings": warnings}
    info["health"], info["warnings"] = health, warnings
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
