"""Train a project's model: gather its labeled (and unlabeled) examples, pick or run a mode, save it."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .._io import unique_name
from ..learn.lowlabel import zero_shot_prior
from ..learn.multisource import partial_targets
from ..learn.persist import save_model
from ..learn.registry import (MAX_ROWS_TO_COMPARE, MODES, ModeChoice, TrainingData, check_params, choose_mode,
                              resolve_mode)
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
    """SetFit-style fine-tuning of a sentence-transformers body on the labeled ``split`` (torch extra;
    ``train --fine-tune --fine-tune-method contrastive``).

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


FINE_TUNE_ENCODER = "hashing:8"  # what info["encoder"] names for a fine-tuned model: it reads the texts itself,
# and the few hashed numbers predict/evaluate/serve compute for it are ignored (cheap, any language)
FINE_TUNE_BUDGET_MINUTES = 5.0  # `train --fine-tune` without --budget-minutes
FINE_TUNE_MODES = ("auto", "supervised", "linear", "few-shot", "semi-supervised", "multisource", "weak")
FINE_TUNE_MAX_POOL = 5000  # pool rows a semi-supervised fine-tune reads at most (a seeded draw): their cached
# lower-layer states (~60 KB a tweet-length row) stay under half a GB, and an epoch stays minutes on a CPU


def _fine_tune_pool(project: Project, mode: str, split, consensus: str, drop_shared_test_texts: bool, seed: int,
                    progress: bool) -> tuple[str, dict | None, tuple | None]:
    """What the unlabeled pool teaches a fine-tune: ``(mode, pool_info, pool)``.

    In the semi-supervised mode (asked for, or picked by ``choose_mode`` for "auto" exactly as ``train``
    picks it, on the project's encoder), the frozen semi-supervised head ``train --model semi-supervised``
    fits is the teacher of the pool: its predictions, centred on its own per-label cuts, become soft
    targets for the pool rows, and the cells it is not sure of carry no loss
    (``learn.endtoend.pool_soft_targets``). Why this teacher: it is the model that already reads the pool
    (co-training with an n-gram view), so the fine-tuned body learns from many more texts than the few
    labeled ones what the best frozen model knows of them, while the human labels keep the larger share
    of the loss (``FineTunedTransformer.pool_weight``). Returns the mode unchanged and no pool otherwise.
    """
    from ..learn.endtoend import pool_soft_targets

    if mode not in ("auto", "semi-supervised"):
        return mode, None, None
    n_lab = len(project.examples(split=split, labeled=True))
    n_pool = len(project.examples(split=["train", "unlabeled"], labeled=False))
    if mode == "auto" and not (0 < n_lab <= MAX_ROWS_TO_COMPARE and n_pool >= n_lab):
        return mode, None, None  # choose_mode would not consider semi-supervised: no need to embed anything
    if n_pool == 0:
        if mode == "semi-supervised":
            raise TagwiseError(f"{project.path}: the semi-supervised mode learns from unlabeled texts and the project "
                               f"has none. Fix: add a source with `split: unlabeled`, or fine-tune with --model "
                               f"supervised.")
        return mode, None, None
    data, _, unl = training_data(project, split, progress=progress, consensus=consensus,
                                 drop_shared_test_texts=drop_shared_test_texts)
    choice = None
    if mode == "auto":
        choice = choose_mode(data, seed=seed, progress=progress)
        if choice.mode != "semi-supervised":
            return mode, {"auto_choice": choice.mode, "cv": choice.cv}, None
    t0 = time.perf_counter()
    frozen = MODES["semi-supervised"].fit(data, {}, seed, progress)
    rows = np.arange(len(unl))
    if len(rows) > FINE_TUNE_MAX_POOL:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), FINE_TUNE_MAX_POOL, replace=False))
    texts = [unl.texts[i] for i in rows]
    T, M = pool_soft_targets(frozen.predict_proba(data.X_unlabeled[rows], texts=texts),
                             frozen.thresholds_for(len(rows)))
    info = {"teacher": "semi-supervised (frozen, on " + project.default_encoder + ")", "rows": int(len(rows)),
            "pool_rows": int(n_pool), "cells_kept": round(float(M.mean()), 4),
            "teacher_seconds": round(time.perf_counter() - t0, 3)}
    if choice is not None:
        info.update(auto_choice=choice.mode, cv=choice.cv)
    return "semi-supervised", info, (texts, T, M)


def train_fine_tuned(project: Project, mode: str = "auto", split: str | list[str] = "train", base: str | None = None,
                     budget_minutes: float = FINE_TUNE_BUDGET_MINUTES, device: str = "cpu",
                     params: dict | None = None, name: str | None = None, seed: int = 0, progress: bool = True,
                     consensus: str = "model", on_health=None, drop_shared_test_texts: bool = False) -> dict:
    """Fine-tune a transformer body end to end with a multi-label head (``learn.endtoend``) and make it current.

    Every mode that trains on labels trains the same network on the same masked, soft targets
    ``train`` would build: the labeled ``split`` with its consensus (supervised, few-shot,
    semi-supervised, multisource: unknown cells carry no loss; with several sources a per-source vector
    conditions the predictions) or, for "weak", the label model's soft targets. In the semi-supervised
    mode (asked for, or what "auto" picks as ``train`` would) the unlabeled pool trains too, on the frozen
    semi-supervised head's soft targets (``_fine_tune_pool``). The project's labeled
    ``dev`` split, when there is one and ``split`` does not include it, decides early stopping and the
    per-label thresholds; otherwise a share of the training rows is held out for them.
    ``budget_minutes`` bounds the whole command (the pool's teacher included); ``params`` are
    ``FineTunedTransformer`` parameters.

    Returns ``train``'s dict plus ``"fine_tune": {"base", "top_layers", "epochs", "best_epoch",
    "stop_reason", "budget_minutes", "fit_seconds", "history", "pool": None | {"teacher", "rows", "used",
    "cells_kept", "weight", ...}}``.
    """
    from ..learn.endtoend import DEFAULT_BASE, FineTunedTransformer
    from .annotators import check_consensus_method
    from .health import claimed_columns, data_health, model_health

    if mode not in FINE_TUNE_MODES:
        raise TagwiseError(f"--fine-tune trains on labels; mode {mode!r} does not. Fix: one of "
                           f"{', '.join(FINE_TUNE_MODES)} (zero-shot has no labels to fine-tune on).")
    if not budget_minutes or float(budget_minutes) <= 0:
        raise TagwiseError(f"--budget-minutes {budget_minutes}: give a positive number of minutes.")
    check_consensus_method(consensus)
    project.clean_orphans()
    t_start = time.perf_counter()
    mode, pool_info, pool = _fine_tune_pool(project, mode, split, consensus, drop_shared_test_texts, seed, progress)
    tax = project.taxonomy
    space = tax.space
    names = list(space.names)
    if mode == "weak":
        from .weak import weak_training_targets

        t = weak_training_targets(project)
        every = project.examples()
        row_of = {int(i): r for r, i in enumerate(every.ids)}
        lab = every.subset(np.array([row_of[int(i)] for i in t["ids"]], dtype=np.int64))
        Y, known, names = t["targets"], t["mask"], list(t["label_names"])
    else:
        lab = project.examples(split=split, labeled=True)
        if drop_shared_test_texts and len(lab):
            from .health import drop_shared_test_rows

            lab = lab.subset(drop_shared_test_rows(project, lab))
        Y, known = partial_targets(lab, tax, space)
        Y = apply_consensus(project, lab, Y, consensus)
    if len(lab) == 0:
        raise TagwiseError(f"{project.path}: no labeled examples in split {split!r} to fine-tune on. Fix: add a "
                           f"labeled source, pass another --split, or label some examples.")
    before = data_health(project, split, consensus if mode != "weak" else "weak", examples=lab,
                         targets=(Y, known), compare_stored=mode != "weak")
    if on_health is not None:
        on_health(before)
    splits = [split] if isinstance(split, str) else list(split)
    dev_ex = None
    if mode != "weak" and "dev" not in splits and "dev" in project.splits():
        dev_ex = project.examples(split="dev", labeled=True)
        dev_ex = dev_ex if len(dev_ex) else None
    dev = None
    if dev_ex is not None:
        Yd, Md = partial_targets(dev_ex, tax, space)
        dev = (list(dev_ex.texts), apply_consensus(project, dev_ex, Yd, consensus), Md, list(dev_ex.sources))
    # the budget is the whole command's: what embedding the pool and the frozen teacher took comes off it
    left = float(budget_minutes) - (time.perf_counter() - t_start) / 60.0
    if left <= 0.05 * float(budget_minutes):
        raise TagwiseError(f"--budget-minutes {budget_minutes}: the unlabeled pool's frozen teacher alone took "
                           f"{(time.perf_counter() - t_start) / 60:.1f} minutes. Fix: a larger budget, or "
                           f"--model supervised (no pool).")
    settings = {"base": base or DEFAULT_BASE, "budget_minutes": left, "device": device,
                "random_state": seed, "progress": progress, **dict(params or {})}
    try:
        head = FineTunedTransformer(**settings)
    except TypeError as exc:
        raise TagwiseError(f"--params {params}: {exc}. Fix: name FineTunedTransformer parameters "
                           f"(top_layers, max_epochs, max_seq_len, batch_size, lr, ...).") from None
    head.fit(list(lab.texts), Y, known, sources=list(lab.sources), dev=dev, pool=pool)
    # after: the dev rows (given or held out) in their own source's mode, against the trivial predictors
    if dev_ex is not None:  # the dev rows the budget let the fit use (all of them but on a tiny budget)
        used = head.dev_used_
        Yh, Mh, src_h = dev[1][used], dev[2][used], np.asarray(dev_ex.sources, dtype=object)[used]
        claimed = claimed_columns(dev_ex, tax, space)
    else:
        rows = head.dev_rows_
        Yh, Mh, src_h = Y[rows], known[rows], np.asarray(lab.sources, dtype=object)[rows]
        claimed = None if mode == "weak" else claimed_columns(lab, tax, space)
    after = model_health(head, None, Yh, Mh, src_h, names, claimed, mode="fine-tune", alone=False, seed=seed,
                         proba=head.dev_proba_)
    n_train = head.n_train_rows_
    if not head.history_ or head.n_train_used_ < n_train or head.n_dev_used_ < head.n_dev_:
        # the budget ran out before the training did
        spent = ", ".join(f"{k} {v:.0f} s" for k, v in head.timings_.items())
        what = ("nothing was trained: the model is the head's starting point (each label's base rate)"
                if not head.history_ else f"only {head.n_train_used_} of the {n_train} training rows were used")
        if head.n_dev_used_ < head.n_dev_:
            what += f"; the thresholds were chosen on {head.n_dev_used_} of the {head.n_dev_} dev rows"
        after["warnings"].append({
            "kind": "budget", "source": None, "label": None,
            "message": f"the {float(budget_minutes):g}-minute budget ran out early ({spent}): {what}.",
            "fix": "give --budget-minutes more minutes (on a busy machine loading and caching take longer), "
                   "fewer rows, or a shorter max_seq_len in --params."})
    health = {"before": before, "after": after}
    warnings = before["warnings"] + after["warnings"]
    name = name or unique_name("finetune")
    fine = {"base": head.base, "top_layers": head.top_layers_, "n_layers": head.n_layers_, "epochs": head.epochs_,
            "best_epoch": head.best_epoch_, "stop_reason": head.stop_reason_, "budget_minutes": float(budget_minutes),
            "fit_seconds": round(head.fit_seconds_, 3), "timings": head.timings_, "n_train_used": head.n_train_used_,
            "n_dev_used": head.n_dev_used_,
            "device": head._device(), "history": head.history_,
            "source_conditioning": list(head.sources_), "dev": "dev split" if dev_ex is not None else
            f"{len(head.dev_rows_)} held-out training rows",
            "pool": None if pool_info is None else {**pool_info, "used": int(head.n_pool_used_),
                                                    "weight": float(head.pool_weight)}}
    n_pool_used = int(head.n_pool_used_)
    reason = f"--fine-tune (labels as {mode}" + (f", {n_pool_used} unlabeled rows with the frozen semi-supervised "
                                                 f"head's soft targets)" if pool is not None else ")")
    choice = {"mode": "fine-tune", "reason": reason, "cv": (pool_info or {}).get("cv", {})}
    info = {"labels": names, "encoder": FINE_TUNE_ENCODER, "mode": "fine-tune", "choice": choice,
            "trained_on": {"split": split, "n_examples": len(lab), "n_unlabeled": n_pool_used,
                           "sources": sorted(set(map(str, lab.sources))), "consensus": consensus,
                           "drop_shared_test_texts": drop_shared_test_texts, "targets": mode},
            "fit_seconds": round(head.fit_seconds_, 3), "fine_tune": fine, "health": health, "warnings": warnings}
    save_model(head, project.models_dir / name, info)
    project.set_current_model(name)
    return {"model": name, "mode": "fine-tune", "choice": choice, "n_examples": len(lab), "n_unlabeled": n_pool_used,
            "n_labels": len(names), "seconds": head.fit_seconds_,
            "thresholds": dict(zip(names, map(float, head.thresholds_for(1)[0]))), "health": health,
            "warnings": warnings, "fine_tune": fine}


def train(project: Project, mode: str = "auto", split: str | list[str] = "train", encoder: str | None = None,
          params: dict | None = None, name: str | None = None, seed: int = 0, progress: bool = True,
          consensus: str = "model", on_health=None, drop_shared_test_texts: bool = False,
          check_alone: bool = True, budget_minutes: float | None = None,
          encoder_candidates: list[str] | None = None) -> dict:
    """Fit ``mode`` (or, with "auto", the mode ``learn.registry.choose_mode`` picks) and make it current.

    ``consensus``: what an example several people annotated trains on (``workflows.annotators``'
    ``CONSENSUS_METHODS``; default the annotator model's soft consensus).

    Training data health (``workflows.health``) is checked before the fit (``data_health``: per source
    x label positives / negatives / unknown / expected positives, shared test texts) and after it
    (``model_health``: each source's out-of-fold F1 in its own mode against the trivial predictors and,
    with several sources, the source trained alone unless ``check_alone`` is False). ``on_health``:
    called as ``on_health(data_health_dict)`` before the fit (the CLI prints it at once).
    ``drop_shared_test_texts``: train without rows whose text is another source's test text.

    ``budget_minutes`` with mode "auto" and no ``encoder`` named: choose the encoder stack too
    (``workflows.encoder_choice``): the project's encoder and, within the budget, ``encoder_candidates``
    (default: it stacked with each bundled encoder installed), each scored by the cross-validation that
    picks the mode; the winner is the model's encoder (``predict``/``serve`` embed with it). Without
    a budget, or with ``encoder`` named, the encoder is ``encoder`` or the project's, as before.

    Returns ``{"model", "mode", "choice": {"mode", "reason", "cv"}, "n_examples", "n_unlabeled",
    "n_labels", "seconds", "thresholds", "health": {"before", "after"}, "warnings": [{"kind", "source",
    "label", "message", "fix"}], "pseudo_labels"?, "sub_labels"?, "encoder", "encoder_choice"?}``;
    ``health``, ``warnings`` and ``encoder_choice`` are also saved in the model's ``model.json`` info.
    """
    from .annotators import check_consensus_method
    from .health import claimed_columns, data_health, model_health

    check_consensus_method(consensus)
    named_encoder = encoder is not None
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
        t0 = time.perf_counter()
        choice = choose_mode(data, seed=seed, progress=progress)
        choice_seconds = time.perf_counter() - t0
    else:
        choice = ModeChoice(resolve_mode(mode).name, "asked for")
    encoder_choice = None
    if budget_minutes is not None and mode == "auto":
        if named_encoder:
            encoder_choice = {"budget_minutes": float(budget_minutes), "chosen": encoder, "candidates": [],
                              "reason": "--encoder named: it is used as given; the budget chose no encoder"}
        else:
            from .encoder_choice import choose_encoder_stack

            def build(name: str):
                return training_data(project, split, name, progress=progress, consensus=consensus,
                                     drop_shared_test_texts=drop_shared_test_texts)

            encoder_choice, encoder, built, choice = choose_encoder_stack(
                project, encoder, data, choice, build, [*lab.texts, *unl.texts], budget_minutes,
                candidates=encoder_candidates, params=params, seed=seed, progress=progress,
                base_choice_seconds=0.0 if params else choice_seconds)
            if built is not None:
                data, lab, unl = built
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
           "health": health, "warnings": warnings, "encoder": encoder}
    if encoder_choice is not None:
        info["encoder_choice"] = out["encoder_choice"] = encoder_choice
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
