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
from .people import require_user

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

class ReleaseIn(BaseModel):
    example_id: int = Field(..., description="a store id the label queue gave the requesting user")

class AdjudicationIn(BaseModel):
    example_id: int = Field(..., description="the disputed example's store id (as /api/team gives it)")
    labels: list[str] = Field(..., description="the labels the reviewer decides on ([] for none)")



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
               max_chars: int = MAX_CHARS, max_body_bytes: int = MAX_BODY_BYTES, predictor: Predictor | None = None,
               overlap: int = 1, trust_user_header: bool = False):
    """The app serving ``project_path``. With ``token``, every request needs ``Authorization: Bearer TOKEN``.

    overlap: how many distinct people label each queued example (``serve --overlap K``).
    trust_user_header: TEST-ONLY stand-in for accounts (``serve/people.py``); no CLI option sets it."""
    project_path = Path(project_path)
    if not isinstance(overlap, int) or overlap < 1:
        raise TagwiseError(f"--overlap must be a whole number of at least 1 (got {overlap!r}).")
    Project.open(project_path).close()  # a clear error now, not on the first request
    predictor = predictor or Predictor(project_path)
    jobs = Jobs(project_path)
    queue_lock = threading.Lock()  # two label-queue requests must not both start a new suggest batch
    app = FastAPI(title="tagwise", description="Label, review and use a tagwise project's model.",
                  version="1")
    app.state.predictor, app.state.jobs = predictor, jobs
    app.state.annotator, app.state.overlap, app.state.trust_user_header = annotator, overlap, trust_user_header

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

    def _queue(project: Project, kind: str, limit: int, filters: dict, user: dict, offset: int = 0) -> dict:
        from ..workflows.queue import label_queue, review_queue

        if kind == "review":
            return review_queue(project, limit=limit, filters=filters, offset=offset)
        model = predictor.current_model()
        predict_fn = None
        if model is not None:
            def predict_fn(texts, sources):
                futures = [predictor.submit([t], s) for t, s in zip(texts, sources)]
                return [f.result(timeout=600)["predictions"][0] for f in futures]
        with queue_lock:
            out = label_queue(project, user=user["name"], overlap=overlap, limit=limit, filters=filters,
                              predict=predict_fn)
        for it in out["items"]:
            it["display_text"] = pages.decoded(it["text"])  # entities decoded; the page shows it as text
        return out

    @app.get("/api/queue")
    def queue(request: Request, kind: str = Query("label", pattern="^(label|review)$"),
              limit: int = Query(20, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000),
              source: Optional[str] = None, split: Optional[str] = None, language: Optional[str] = None,
              label: Optional[str] = None, q: Optional[str] = None):
        """kind=label: the next examples for the requesting user (leased to them; see workflows/queue.py);
        kind=review: the latest audit's undecided rows, ``offset`` paging through them."""
        user = require_user(request, *(("reviewer", "admin") if kind == "review" else ()))
        filters = {"source": source, "split": split, "language": language, "label": label, "q": q}
        with opened() as project:
            return _queue(project, kind, limit, filters, user, offset)

    @app.post("/api/queue/release")
    def release_item(body: ReleaseIn, request: Request):
        """The requesting user gives a queued example back (skipped it), so another person may take it."""
        from ..workflows.queue import release

        user = require_user(request)
        with opened() as project:
            return {"released": release(project, user["name"], body.example_id)}

    @app.post("/api/annotations")
    def add_annotation(body: AnnotationIn, request: Request):
        from ..workflows.queue import OverlapReached, save_label

        user = require_user(request)
        who = (body.annotator or user["name"]).strip()
        if who != user["name"] and user["role"] != "admin":  # only an admin may record labels for someone else
            raise HTTPException(403, f"{user['name']} cannot save labels as {who!r}; leave out 'annotator'.")
        origin = (body.origin or "api")[:200]
        with opened() as project:
            try:
                return {"annotation_id": save_label(project, body.example_id, body.labels, who, origin, overlap)}
            except OverlapReached as exc:
                raise HTTPException(409, str(exc)) from None

    @app.get("/api/annotations")
    def recent_annotations(request: Request, limit: int = Query(50, ge=1, le=1000)):
        """The latest annotations: everyone's for reviewers and admins, else only the requesting user's
        (nobody sees another person's labels before giving their own)."""
        from ..workflows.labels import history

        user = require_user(request)
        mine = None if user["role"] in ("reviewer", "admin") else user["name"]
        with opened() as project:
            return {"annotations": history(project, limit=limit, annotator=mine)}

    @app.post("/api/annotations/{annotation_id}/undo")
    def undo(annotation_id: int, request: Request):
        from ..workflows.labels import NotYours, undo_annotation

        user = require_user(request)
        owner = None if user["role"] in ("reviewer", "admin") else user["name"]  # annotators undo only their own
        with opened() as project:
            try:
                return undo_annotation(project, annotation_id, owner=owner)
            except NotYours as exc:
                raise HTTPException(403, str(exc)) from None

    @app.get("/api/team")
    def team(request: Request):
        """Agreement per label, each person's quality and progress, and the disagreements to settle
        (reviewers and admins)."""
        from ..workflows.team import team_report

        require_user(request, "reviewer", "admin")
        with opened() as project:
            return team_report(project, overlap=overlap)

    @app.post("/api/adjudications")
    def adjudication(body: AdjudicationIn, request: Request):
        """A reviewer's decision on a disputed example: an annotation of origin ``adjudication``."""
        from ..workflows.team import adjudicate

        user = require_user(request, "reviewer", "admin")
        with opened() as project:
            return {"annotation_id": adjudicate(project, body.example_id, body.labels, user["name"]),
                    "origin": "adjudication", "annotator": user["name"]}

    @app.post("/api/train")
    def train(body: TrainIn = Body(default=TrainIn())):
        return {"job_id": jobs.start(body.mode)}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str):
        found = jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return found

    # -- pages (templates in serve/templates/, rendered by pages.render) ---------------------------
    def _filters(request: Request) -> dict:
        return {k: request.query_params.get(k) for k in pages.FILTERS}

    def _page(request, name, title, active, user, **context):
        return pages.render(request, name, title, active, token, user, **context)

    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/label")

    @app.get("/label", response_class=HTMLResponse, include_in_schema=False)
    def label_page(request: Request):
        user = require_user(request)
        filters = _filters(request)
        with opened() as project:
            # with overlap, a page holds one example at a time (the next is fetched after each save), so
            # people working at once finish examples in pairs instead of each holding a stack
            q = _queue(project, "label", 20 if overlap == 1 else 1, filters, user)
            tax = project.taxonomy
            names = list(project.labels.names)
            return _page(request, "label.html", "Label", "label", user, queue=q, filters=filters,
                         window=len(q["items"]) or 1,
                         options=filter_options(project), labels=pages.label_buttons(names, tax.descriptions),
                         guide=pages.guide(names, tax.descriptions, tax.examples))

    REVIEW_PAGE = 50

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, offset: int = Query(0, ge=0, le=10_000_000)):
        from urllib.parse import urlencode

        from ..workflows.labels import history

        user = require_user(request, "reviewer", "admin")
        filters = _filters(request)
        with opened() as project:
            q = _queue(project, "review", REVIEW_PAGE, filters, user, offset)

            def url(at):
                return "/review?" + urlencode({**{k: v for k, v in filters.items() if v}, "offset": at})

            prev_url = url(max(0, offset - REVIEW_PAGE)) if offset > 0 else None
            next_url = url(offset + REVIEW_PAGE) if offset + REVIEW_PAGE < q.get("matching", 0) else None
            return _page(request, "review.html", "Review", "review", user, queue=q, filters=filters,
                         options=filter_options(project), labels=list(project.labels.names),
                         recent=history(project, limit=20), prev_url=prev_url, next_url=next_url,
                         page_size=REVIEW_PAGE)

    @app.get("/team", response_class=HTMLResponse, include_in_schema=False)
    def team_page(request: Request):
        from ..workflows.team import team_report

        user = require_user(request, "reviewer", "admin")
        with opened() as project:
            report = team_report(project, overlap=overlap)
        return _page(request, "team.html", "Team", "team", user, team=report,
                     can_decide=user["role"] in ("reviewer", "admin"))

    @app.get("/model", response_class=HTMLResponse, include_in_schema=False)
    def model_page(request: Request):
        from ..workflows.models import load_project_model
        from ..workflows.report import section_metrics, section_overview

        user = require_user(request)
        with opened() as project:
            info = None
            if predictor.current_model() is not None:
                loaded = load_project_model(project)
                info = {**loaded.info, "name": loaded.name}
            sections = [s for s in (section_overview(project), section_metrics(project, "test")) if s]
            return _page(request, "model.html", "Model", "model", user, info=info, sections=sections,
                         job=jobs.last_done())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in ("app.js", "app.css"):
            raise HTTPException(404)
        return FileResponse(STATIC / name, media_type="text/javascript" if name.endswith(".js") else "text/css")

    return app


def run_server(project_path, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
               annotator: str = "web", overlap: int = 1) -> None:
    """Serve until interrupted. A host other than loopback needs a token."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise TagwiseError(f"--host {host} would let other machines reach this project without a password. "
                           f"Fix: add --token SECRET (clients send `Authorization: Bearer SECRET`), or keep "
                           f"the default --host 127.0.0.1.")
    app = create_app(project_path, token=token, annotator=annotator, overlap=overlap)
    print(f"tagwise serve: http://{host}:{port}/label  (API docs at /docs{'; token required' if token else ''}"
          f"{f'; each example goes to {overlap} people' if overlap > 1 else ''})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.state.predictor.stop()
