"""Risk-controlled label sets and calibrated probabilities for a project's model (``learn.conformal``).

Calibration rows, in this order:

1. the project's ``dev`` split, when it has labeled rows and the model did not train on it, each row
   scored in its own source's mode (as ``evaluate`` and ``predict --source-column`` score it);
2. else the training rows' out-of-fold probabilities the head kept (``oof_proba_``), saved beside the
   model at train time (``models/<name>/calibration/``): cross-conformal. The final head is refitted
   on all training rows, so its test scores are slightly better than the out-of-fold ones; the
   promise is then approximate (a little conservative in practice) and says so.

Nothing to calibrate on is a ``TagwiseError`` naming the fix.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_save_npy, atomic_write_json, load_npy
from ..learn.conformal import (LOSSES, ConformalRiskController, PerLabelCalibrator, masked_ece, parse_risk,
                               reliability_bins)
from ..learn.multisource import partial_targets
from ..project import Project
from ..types import LabelSpace, TagwiseError
from .models import LoadedModel

CALIBRATION_DIR = "calibration"
ROW_VIOLATION = 0.1  # abstention: at most this share of the kept rows may break the promise alone


def save_calibration_oof(head, Y: np.ndarray, mask: np.ndarray, sources, model_dir: str | Path) -> bool:
    """Keep the head's out-of-fold probabilities of its training rows for cross-conformal calibration.

    Y: (n, K) float targets in [0, 1] (never rounded); mask: (n, K) bool; sources: (n,) names.
    Writes ``model_dir/calibration/{oof_proba,targets,mask}.npy`` + ``sources.json``; returns False
    (writing nothing) when the head kept no out-of-fold probabilities of that shape.
    """
    oof = getattr(head, "oof_proba_", None)
    if oof is None or np.shape(oof) != np.shape(Y):
        return False
    out = Path(model_dir) / CALIBRATION_DIR
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(out / "targets.npy", np.asarray(Y, dtype=np.float32))
    atomic_save_npy(out / "mask.npy", np.asarray(mask, dtype=bool))
    atomic_write_json(out / "sources.json", [str(s) for s in sources])
    atomic_save_npy(out / "oof_proba.npy", np.asarray(oof, dtype=np.float32))  # last: its presence = complete
    return True


def calibration_data(project: Project, loaded: LoadedModel) -> dict:
    """``{"P", "Y", "mask", "sources", "method"}`` of the model's calibration rows (see the module doc)."""
    trained_on = loaded.info.get("trained_on", {}).get("split", "train")
    trained_on = [trained_on] if isinstance(trained_on, str) else list(trained_on)
    if "dev" not in trained_on and "dev" in project.splits():
        ex = project.examples(split="dev", labeled=True)
        if len(ex):
            space = LabelSpace(tuple(loaded.labels))
            Y, mask = partial_targets(ex, project.taxonomy, space)
            if mask.any():
                modes = loaded.source_modes(ex.sources) if loaded.sources else None
                X = project.features(ex, loaded.encoder, progress=False)
                P = loaded.head.predict_proba(X, texts=list(ex.texts), source=modes)
                return {"P": np.asarray(P, np.float64), "Y": np.asarray(Y, np.float64), "mask": mask,
                        "sources": np.asarray(ex.sources, dtype=object), "method": "split conformal (dev split)"}
    folder = loaded.path / CALIBRATION_DIR
    if (folder / "oof_proba.npy").exists():
        try:
            P = load_npy(folder / "oof_proba.npy")
            Y = load_npy(folder / "targets.npy")
            mask = load_npy(folder / "mask.npy")
            sources = json.loads((folder / "sources.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TagwiseError(f"{folder}: cannot read the calibration data ({exc}). Fix: retrain with "
                               f"`tagwise train`.") from None
        if P.shape != Y.shape or mask.shape != P.shape or len(sources) != len(P) or P.shape[1] != len(loaded.labels):
            raise TagwiseError(f"{folder}: calibration arrays do not fit together. Fix: retrain with `tagwise train`.")
        return {"P": P.astype(np.float64), "Y": Y.astype(np.float64), "mask": mask.astype(bool),
                "sources": np.asarray(sources, dtype=object),
                "method": "cross-conformal (out-of-fold probabilities of the training rows; approximate)"}
    raise TagwiseError(f"{project.path}: nothing to calibrate --risk on for model {loaded.name!r}: the project has "
                       f"no labeled dev split the model did not train on, and the model kept no out-of-fold "
                       f"probabilities. Fix: add a source with a dev split (`split: dev` in its spec), or retrain "
                       f"with a supervised head (`tagwise train {project.path} --model supervised`), which keeps them.")


def fit_risk_controller(project: Project, loaded: LoadedModel, risk: str, confidence: float | None = None,
                        by_source: bool = True, cal: dict | None = None,
                        row_violation: float | None = None) -> ConformalRiskController:
    """A ``ConformalRiskController`` for ``risk`` (``"fnr=0.1"``, ``"precision=0.9"``, ``"fdr=0.1"``)
    fitted on the model's calibration rows (``cal``: ``calibration_data``'s result, computed when None);
    its ``promise_`` names the model and the calibration. ``row_violation``: the abstention rule's
    largest share of kept rows that may break the promise on their own (None: ``ROW_VIOLATION``)."""
    check_risk(risk, confidence, row_violation)  # validates the forms, with the accepted ones in its message
    row_violation = ROW_VIOLATION if row_violation is None else row_violation
    name, _, level = str(risk).partition("=")
    name, level = name.strip().lower(), float(level)
    cal = cal if cal is not None else calibration_data(project, loaded)
    controller = ConformalRiskController(name, level, confidence, by_source=by_source, row_violation=row_violation)
    controller.fit(cal["P"], cal["Y"], cal["mask"], cal["sources"])
    controller.promise_.update(model=loaded.name, calibration=cal["method"])
    return controller


def check_risk(risk: str | None, confidence: float | None = None, row_violation: float | None = None) -> None:
    """Validate ``risk`` / ``confidence`` / ``row_violation`` before any work (a request's 4xx, a
    command's exit 2): raises ``TagwiseError`` with the accepted forms."""
    if risk is None:
        if confidence is not None or row_violation is not None:
            raise TagwiseError("confidence and row_violation need risk (e.g. risk fnr=0.1, confidence 0.95).")
        return
    parse_risk(risk)
    if confidence is not None and not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise TagwiseError(f"confidence must lie in (0, 1), e.g. 0.95; got {confidence!r}.")
    if row_violation is not None and not (isinstance(row_violation, (int, float)) and 0 < row_violation < 1):
        raise TagwiseError(f"row_violation must lie in (0, 1), e.g. 0.1 (of the rows not sent to a person, the "
                           f"largest share that may break the promise on their own); got {row_violation!r}.")


class PromiseCache:
    """Risk controllers of one loaded model, fitted once per (risk, confidence) for a long-running
    process (``serve``'s predictor): calibrating scores the dev split, an encoder pass, so it is done
    once per model, and again only when the model object changes (a retrain)."""

    def __init__(self, max_items: int = 32):
        self.max_items = max_items
        self._loaded = None
        self._cal = None
        self._items: dict = {}

    def get(self, project: Project, loaded: LoadedModel, risk: str, confidence: float | None = None,
            row_violation: float | None = None) -> ConformalRiskController:
        if loaded is not self._loaded:
            self._loaded, self._cal, self._items = loaded, None, {}
        key = (parse_risk(risk), str(risk).split("=")[0].strip().lower(), confidence, row_violation)
        if key not in self._items:
            if self._cal is None:
                self._cal = calibration_data(project, loaded)
            if len(self._items) >= self.max_items:
                self._items.pop(next(iter(self._items)))
            self._items[key] = fit_risk_controller(project, loaded, risk, confidence, cal=self._cal,
                                                   row_violation=row_violation)
        return self._items[key]


def _bootstrap_ci(losses: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    if len(losses) == 0:
        return [float("nan"), float("nan")]
    means = losses[rng.integers(0, len(losses), (n_boot, len(losses)))].mean(1)
    return [float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))]


def calibration_report(project: Project, loaded: LoadedModel, P: np.ndarray, Y: np.ndarray, mask: np.ndarray,
                       split: str = "test", cal: dict | None = None) -> dict:
    """Per-label calibration fitted on the model's calibration rows, measured on already-scored rows.

    P, Y, mask: (n, K) of the evaluated split. Returns ``{"methods": {label: method}, "ece_before",
    "ece_after", "fitted_on", "reliability": {"before": bins, "after": bins}}`` (``reliability_bins``).
    Refuses (``TagwiseError``) to measure on the dev split when that split is the calibration rows.
    """
    cal = cal if cal is not None else calibration_data(project, loaded)
    if split == "dev" and cal["method"].startswith("split conformal"):
        raise TagwiseError("calibration on the dev split would be measured on its own calibration rows. "
                           "Fix: evaluate the test split (--split test).")
    calibrator = PerLabelCalibrator().fit(cal["P"], cal["Y"], cal["mask"])
    after = calibrator.transform(P)
    return {"methods": dict(zip(loaded.labels, calibrator.methods_)),
            "ece_before": masked_ece(Y, P, mask), "ece_after": masked_ece(Y, after, mask),
            "fitted_on": cal["method"], "n_calibration": int(np.asarray(cal["mask"], bool).any(1).sum()),
            "reliability": {"before": reliability_bins(Y, P, mask), "after": reliability_bins(Y, after, mask)}}


def risk_report(project: Project, loaded: LoadedModel, P: np.ndarray, Y: np.ndarray, mask: np.ndarray,
                sources, risk: str, confidence: float | None = None, split: str = "test",
                row_violation: float | None = None) -> dict:
    """Realised risk of the promised sets on already-scored rows (``evaluate --risk``).

    P, Y, mask: (n, K) of the evaluated split; sources: (n,) names. Returns ``{"promise", "realised":
    {"risk", "ci95", "n"}, "holds", "consistent", "mean_set_size", "abstention_rate", "kept": {"n",
    "risk", "row_violation"} (the rows not abstained), "per_source", "calibration": ``calibration_report``}``.
    Refuses to evaluate on the calibration split itself.
    """
    cal = calibration_data(project, loaded)
    controller = fit_risk_controller(project, loaded, risk, confidence, cal=cal, row_violation=row_violation)
    if split == "dev" and controller.promise_["calibration"].startswith("split conformal"):
        raise TagwiseError("evaluate --risk on the dev split measures the promise on its own calibration rows. "
                           "Fix: evaluate --risk on the test split (--split test).")
    controlled = controller.promise_["controlled"]
    sets = controller.predict(P, sources)
    known = np.asarray(mask, bool).any(1)
    losses = LOSSES[controlled](Y, sets["labels"], mask)[known]
    realised = float(losses.mean()) if len(losses) else float("nan")
    target = controller.promise_["controlled_level"]
    flip = (lambda x: 1.0 - x) if controller.risk == "precision" else (lambda x: x)
    ci = sorted(flip(x) for x in _bootstrap_ci(losses))
    kept = ~sets["abstain"][known]
    src = np.asarray([str(s) for s in sources], dtype=object)[known]
    per_source = {}
    for s in sorted(set(src)):
        ls = losses[src == s]
        per_source[s] = {"n": int(len(ls)), "risk": flip(float(ls.mean())),
                         "ci95": sorted(flip(x) for x in _bootstrap_ci(ls))}
    return {"promise": controller.promise_,
            "realised": {"risk": flip(realised), "ci95": ci, "n": int(len(losses)), "name": controller.risk},
            # a single test split is one draw: the point estimate may exceed an in-expectation target by
            # noise; "consistent" says whether the 95% CI still reaches the target
            "holds": bool(realised <= target),
            "consistent": bool(min(flip(x) for x in ci) <= flip(target)) if controller.risk != "precision"
            else bool(max(ci) >= flip(target)),
            "mean_set_size": float(sets["labels"][known].sum(1).mean()) if known.any() else 0.0,
            "abstention_rate": float(sets["abstain"][known].mean()) if known.any() else 0.0,
            # the rows not sent to a person: their realised risk, and the share that break the promise
            # alone (the abstention rule promises at most promise["abstain"]["row_violation"])
            "kept": {"n": int(kept.sum()), "risk": flip(float(losses[kept].mean())) if kept.any() else None,
                     "row_violation": float((losses[kept] > target).mean()) if kept.any() else None},
            "per_source": per_source,
            "calibration": calibration_report(project, loaded, P, Y, mask, split, cal)}
