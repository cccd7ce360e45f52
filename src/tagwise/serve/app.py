"""The FastAPI app of ``tagwise serve``: pages, the JSON API (OpenAPI at /docs) and the retrain jobs.

Every request that touches the store opens its own ``Project`` (SQLite connections stay in their
thread; the store's WAL mode and busy timeout let the server and CLI commands write at once). Predict
requests go to one ``Predictor`` (micro-batched, model loaded once).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from ..project import Project
from ..types import TagwiseError
from ..workflows.sources import example_count, filter_options
from . import pages
from .batcher import Predictor

STATIC = Path(__file__).resolve().parent / "static"
# Request limits: a predict call is meant for online use (a page, a service); bulk files go through
# `tagwise predict FILE`. The body cap bounds what is parsed before the per-field checks run.
MAX_TEXTS = 256
MAX_CHARS = 10_000
MAX_BODY_BYTES = 4 * 1024 * 1024


class PredictIn(BaseModel):
    texts: list[str] = Field(..., description="texts to label (at most MAX_TEXTS, each at most MAX_CHARS characters; HTTP 413 beyond)")
    source: Optional[str] = Field(None, description="score in this training source's mode")

class AnnotationIn(BaseModel):
    example_id: int = Field(..., description="the example's store id (as the queue gives it)")
    labels: list[str]
    annotator: Optional[str] = None
    origin: Optional[str] = Field(None, description="suggest:<run>, audit:<run>, ... (default: api)")

class TrainIn(BaseModel):
    mode: Optional[str] = None



def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Jobs:
    """Background retrain jobs (one at a time): ``{"id", "state", "progress", "stage", "result", "error"}``."""

    def __init__(self, project_path: Path):
        self.project_path = project_path
        self.jobs: dict[str, dict] = {}
        self.lock = threading.Lock()

    def start(self, mode: str | None) -> str:
        from ..workflows.retrain import retrain

        with self.lock:
            for job in self.jobs.values():
                if job["state"] in ("queued", "running"):
                    return job["id"]
            job_id = secrets.token_hex(6)
            job = {"id": job_id, "state": "queued", "progress": 0.0, "stage": "queued", "result": None,
                   "error": None, "mode": mode or "auto", "started_at": time.time()}
            self.jobs[job_id] = job

        def progress(fraction: float, stage: str) -> None:
            job["progress"], job["stage"] = round(float(fraction), 3), stage

        def run() -> None:
            job["state"] = "running"
            project = Project.open(self.project_path)
            try:
                job["result"] = retrain(project, mode=mode or "auto", progress=progress)
                job["state"] = "done"
            except TagwiseError as exc:
                job["state"], job["error"] = "failed", str(exc)
            except Exception as exc:  # a crash in a job must not take the server down; it is reported
                job["state"], job["error"] = "failed", f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                project.close()

        threading.Thread(target=run, name=f"tagwise-job-{job_id}", daemon=True).start()
        return job_id

    def get(self, job_id: str) -> dict | None:
        job = self.jobs.get(job_id)
        return None if job is None else {k: job[k] for k in ("id", "state", "progress", "stage", "result", "error", "mode")}

    def last_done(self) -> dict | None:
        done = [j for j in self.jobs.values() if j["state"] == "done"]
        return done[-1] if done else None


def create_app(project_path, token: str | None = None, annotator: str = "web", max_texts: int = MAX_TEXTS,
               max_chars: int = MAX_CHARS, max_body_bytes: int = MAX_BODY_BYTES, predictor: Predictor | None = None):
    """The app serving ``project_path``. With ``token``, every request needs ``Authorization: Bearer TOKEN``."""
    project_path = Path(project_path)
    Project.open(project_path).close()  # a clear error now, not on the first request
    predictor = predictor or Predictor(project_path)
    jobs = Jobs(project_path)
    queue_lock = threading.Lock()  # two label-queue requests must not both start a new suggest batch
    app = FastAPI(title="tagwise", description="Label, review and use a tagwise project's model.",
                  version="1")
    app.state.predictor, app.state.jobs = predictor, jobs

    @contextmanager
    def opened():
        project = Project.open(project_path)
        try:
            yield project
        finally:
            project.close()

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"detail": "missing or wrong token: send `Authorization: Bearer TOKEN`."},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse({"detail": f"request body of {int(length)} bytes is over the limit of "
                                           f"{max_body_bytes}; send fewer or shorter texts per request."},
                                status_code=413)
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.path not in ("/docs", "/redoc"):  # FastAPI's API pages load their own scripts; no project data there
            response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                           "style-src 'self' 'unsafe-inline'; script-src 'self'")
        return response

    @app.exception_handler(TagwiseError)
    async def tagwise_error(request: Request, exc: TagwiseError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    # -- API -----------------------------------------------------------------------------------
    @app.get("/api/health")
    def health():
        with opened() as project:
            n = example_count(project)
        return {"status": "ok", "model": predictor.current_model(), "examples": n}

    @app.post("/api/predict")
    async def predict(body: PredictIn):
        if len(body.texts) > max_texts:
            raise HTTPException(413, f"{len(body.texts)} texts in one request; the limit is {max_texts}. "
                                     f"Send them in several requests, or use `tagwise predict FILE` for files.")
        long = [i for i, t in enumerate(body.texts) if len(t) > max_chars]
        if long:
            raise HTTPException(413, f"text {long[0]} has {len(body.texts[long[0]])} characters; the limit is "
                                     f"{max_chars} ({len(long)} such texts). Shorten or split them.")
        empty = [i for i, t in enumerate(body.texts) if not t.strip()]
        if empty:
            raise HTTPException(422, f"text {empty[0]} is empty ({len(empty)} such). Send non-empty strings.")
        if not body.texts:
            return {"model": predictor.current_model(), "predictions": []}
        try:
            return await asyncio.wrap_future(predictor.submit(body.texts, body.source))
        except TagwiseError as exc:
            raise HTTPException(409, str(exc)) from None

    def _queue(project: Project, kind: str, limit: int, filters: dict) -> dict:
        from ..workflows.labels import label_queue, review_queue

        if kind == "review":
            return review_queue(project, limit=limit, filters=filters)
        model = predictor.current_model()
        predict_fn = None
        if model is not None:
            def predict_fn(texts, sources):
                futures = [predictor.submit([t], s) for t, s in zip(texts, sources)]
                return [f.result(timeout=600)["predictions"][0] for f in futures]
        with queue_lock:
            return label_queue(project, limit=limit, filters=filters, predict=predict_fn)

    @app.get("/api/queue")
    def queue(kind: str = Query("label", pattern="^(label|review)$"), limit: int = Query(20, ge=1, le=500),
              source: Optional[str] = None, split: Optional[str] = None, language: Optional[str] = None,
              label: Optional[str] = None, q: Optional[str] = None):
        filters = {"source": source, "split": split, "language": language, "label": label, "q": q}
        with opened() as project:
            return _queue(project, kind, limit, filters)

    @app.post("/api/annotations")
    def add_annotation(body: AnnotationIn):
        from ..workflows.labels import annotate

        who = (body.annotator or annotator).strip()
        origin = (body.origin or "api")[:200]
        with opened() as project:
            return {"annotation_id": annotate(project, body.example_id, body.labels, who, origin=origin)}

    @app.get("/api/annotations")
    def recent_annotations(limit: int = Query(50, ge=1, le=1000)):
        from ..workflows.labels import history

        with opened() as project:
            return {"annotations": history(project, limit=limit)}

    @app.post("/api/annotations/{annotation_id}/undo")
    def undo(annotation_id: int):
        from ..workflows.labels import undo_annotation

        with opened() as project:
            return undo_annotation(project, annotation_id)

    @app.post("/api/train")
    def train(body: TrainIn = Body(default=TrainIn())):
        return {"job_id": jobs.start(body.mode)}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str):
        found = jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return found

    # -- pages ---------------------------------------------------------------------------------
    def _options(project: Project) -> dict:
        return filter_options(project)

    def _filters(request: Request) -> dict:
        return {k: request.query_params.get(k) for k in pages.FILTERS}

    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/label")

    @app.get("/label", response_class=HTMLResponse, include_in_schema=False)
    def label_page(request: Request):
        filters = _filters(request)
        with opened() as project:
            q = _queue(project, "label", 20, filters)
            return pages.label_page(q, list(project.labels.names), filters, _options(project), token, annotator)

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request):
        from ..workflows.labels import history

        filters = _filters(request)
        with opened() as project:
            q = _queue(project, "review", 50, filters)
            return pages.review_page(q, list(project.labels.names), filters, _options(project), token, annotator,
                                     history(project, limit=20))

    @app.get("/model", response_class=HTMLResponse, include_in_schema=False)
    def model_page():
        from ..workflows.models import load_project_model
        from ..workflows.report import section_metrics, section_overview

        with opened() as project:
            info = None
            if predictor.current_model() is not None:
                loaded = load_project_model(project)
                info = {**loaded.info, "name": loaded.name}
            sections = [s for s in (section_overview(project), section_metrics(project, "test")) if s]
            return pages.model_page(info, sections, token, jobs.last_done())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in ("app.js", "app.css"):
            raise HTTPException(404)
        return FileResponse(STATIC / name, media_type="text/javascript" if name.endswith(".js") else "text/css")

    return app


def run_server(project_path, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
               annotator: str = "web") -> None:
    """Serve until interrupted. A host other than loopback needs a token."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise TagwiseError(f"--host {host} would let other machines reach this project without a password. "
                           f"Fix: add --token SECRET (clients send `Authorization: Bearer SECRET`), or keep "
                           f"the default --host 127.0.0.1.")
    app = create_app(project_path, token=token, annotator=annotator)
    print(f"tagwise serve: http://{host}:{port}/label  (API docs at /docs{'; token required' if token else ''})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.state.predictor.stop()
