"""Micro-batching predictor: concurrent predict requests share one encoder call and one head call.

One worker thread owns the project, the encoder and the loaded model. Each request is queued with a
future; the worker takes the first waiting request plus every request already queued behind it (and,
with ``max_wait_s`` > 0, what arrives within that time), up to ``max_batch`` texts, predicts them all in one ``workflows.predict.predict_with``
call (each row in its source's mode) and resolves every future. The model is loaded once and again
only when ``models/CURRENT`` changes (a retrain, or ``tagwise train`` from another process) or the
current model's ``model.json`` or the taxonomy does (a taxonomy change renames its labels, or brings in
labels it serves with zero-shot scores until retrained: ``taxonomy_changes.with_zero_shot_labels``).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path


from ..encoders import get_encoder
from ..project import Project
from ..types import TagwiseError
from ..workflows.models import load_project_model
from ..workflows.conformal import PromiseCache
from ..workflows.predict import prediction_rows, predict_with
from ..workflows.taxonomy_changes import changes_stamp, with_zero_shot_labels


class Predictor:
    """``submit(texts, source) -> Future`` of ``{"model", "predictions": [{"labels", "scores"}]}``."""

    # max_wait_s 0: a lone request is answered at once (no added latency); under load, requests queue up
    # while the worker is busy and the next call takes them all, so batches grow with the load by themselves
    def __init__(self, project_path: str | Path, max_batch: int = 256, max_wait_s: float = 0.0):
        self.project_path = Path(project_path)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue = queue.Queue()
        self._stamp = None
        self._loaded = None
        self._encoders: dict[str, object] = {}
        self._promises = PromiseCache()
        self.batches = 0   # encoder calls made (for tests and the bench)
        self.requests = 0
        self._thread = threading.Thread(target=self._run, name="tagwise-predictor", daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> "Predictor":
        with self._lock:
            if not self._started:
                self._thread.start()
                self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)

    def submit(self, texts: list[str], source: str | None = None, risk: str | None = None,
               confidence: float | None = None, row_violation: float | None = None) -> Future:
        """``risk``/``confidence``: the request's promise (``workflows.conformal``); its rows gain
        ``uncertain`` and ``abstain`` and the result a ``promise``."""
        fut: Future = Future()
        self.start()
        self._queue.put((list(texts), source, fut, (risk, confidence, row_violation)))
        return fut

    def current_model(self) -> str | None:
        current = self.project_path / "models" / "CURRENT"
        return current.read_text(encoding="utf-8").strip() if current.exists() else None

    # -- worker ------------------------------------------------------------------------------------
    def _model(self, project: Project):
        """The current model, reloaded when ``models/CURRENT`` changed since the last batch, or its
        ``model.json`` (a taxonomy change rewrites the label map in place)."""
        current = project.models_dir / "CURRENT"
        try:
            st = os.stat(current)
            name = current.read_text(encoding="utf-8").strip()
            info = os.stat(project.models_dir / name / "model.json")
            stamp = (st.st_mtime_ns, st.st_size, name, info.st_mtime_ns, info.st_size, info.st_ino,
                     changes_stamp(project))
        except FileNotFoundError:
            raise TagwiseError(f"{project.path}: no trained model yet. Fix: run `tagwise train {project.path}` "
                               f"or POST /api/train.") from None
        if stamp != self._stamp:
            # labels a taxonomy change brought in are served with zero-shot scores until retrained
            self._loaded = with_zero_shot_labels(project, load_project_model(project))
            self._stamp = stamp
        return self._loaded

    def _encoder(self, name: str):
        if name not in self._encoders:
            self._encoders[name] = get_encoder(name)
        return self._encoders[name]

    def _run(self) -> None:
        project = Project.open(self.project_path)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch, n = [first], len(first[0])
                deadline = time.perf_counter() + self.max_wait_s
                while n < self.max_batch:
                    left = deadline - time.perf_counter()
                    try:
                        item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._queue.put(None)
                        break
                    batch.append(item)
                    n += len(item[0])
                self._predict(project, batch)
        finally:
            project.close()

    def _predict(self, project: Project, batch: list) -> None:
        try:
            loaded = self._model(project)
            texts = [t for texts, _, _, _ in batch for t in texts]
            sources = [s for texts, s, _, _ in batch for _ in texts]
            encoder = self._encoder(loaded.encoder)
            Z, P = predict_with(project, loaded, texts, sources, embed=encoder.encode)
        except Exception as exc:  # every waiting request gets the error, the worker keeps serving
            for _, _, fut, _ in batch:
                fut.set_exception(exc)
            return
        self.batches += 1
        self.requests += len(batch)
        start = 0
        for texts, source, fut, (risk, confidence, row_violation) in batch:
            stop = start + len(texts)
            try:  # a request's promise is its own: its calibration error fails it alone
                controller = self._promises.get(project, loaded, risk, confidence, row_violation) if risk else None
                result = {"model": loaded.name,
                          "predictions": prediction_rows(loaded.labels, Z[start:stop], P[start:stop], controller,
                                                         source)}
                if controller is not None:
                    result["promise"] = controller.promise_
                fut.set_result(result)
            except Exception as exc:
                fut.set_exception(exc)
            start = stop
