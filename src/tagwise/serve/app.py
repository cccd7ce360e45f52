"""The FastAPI app of ``tagwise serve``: pages, the JSON API (OpenAPI at /docs) and the retrain jobs.

Every request that touches the store opens its own ``Project`` (SQLite connections stay in their
thread; the store's WAL mode and busy timeout let the server and CLI commands write at once). Predict
requests go to one ``Predictor`` (micro-batched, model loaded once). Every request first passes
``auth.Guard`` (Host, Origin, content type, sign-in, CSRF, role, body size); routes read the requester
with ``auth.current_user``.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from fastapi import Body, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..project import Project
from ..types import TagwiseError
from ..workflows.conformal import check_risk
from ..workflows.sources import example_count, filter_options
from ..workflows.team import ADJUDICATION
from ..workflows.queue import BatchRefill
from ..workflows.users import has_role
from . import pages
from .auth import Guard, HostPolicy, Sessions, Users, annotator_for, is_loopback, login_routes, require_user
from .batcher import Predictor

STATIC = Path(__file__).resolve().parent / "static"
# Request limits: a predict call is meant for online use (a page, a service); bulk files go through
# `tagwise predict FILE`. The body cap bounds what is parsed before the per-field checks run.
MAX_TEXTS = 256
MAX_CHARS = 10_000
MAX_BODY_BYTES = 4 * 1024 * 1024
BODY_TIMEOUT_S = 30.0  # a body that announces more than it sends is answered 408 after this long
MAX_ID = 2**63 - 1  # SQLite's INTEGER
MAX_LABELS = 1000
MAX_NAME = 100
MAX_ORIGIN = 200
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")


def _no_lone_surrogates(value: str) -> str:
    """A JSON string may hold an unpaired surrogate (``"\\ud800"``) that no UTF-8 text can: refuse it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"character {exc.start} is an unpaired UTF-16 surrogate ({ascii(value[exc.start])}); "
                         f"send valid Unicode text") from None
    return value


def _short_label_names(labels: list[str]) -> list[str]:
    long = [x for x in labels if len(x) > MAX_ORIGIN]
    if long:
        raise ValueError(f"a label name of {len(long[0])} characters; names are at most {MAX_ORIGIN}")
    return labels


class Strict(BaseModel):
    """A request body: strict types (no "1" for 1, no true for 1), and text that is valid Unicode."""

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value):
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                _no_lone_surrogates(v)
        return value


class PredictIn(Strict):
    texts: list[StrictStr] = Field(..., description="texts to label (at most MAX_TEXTS, each at most MAX_CHARS characters; HTTP 413 beyond)")
    source: Optional[StrictStr] = Field(None, max_length=MAX_ORIGIN,
                                        description="score in this training source's mode (a source of the project)")
    risk: Optional[StrictStr] = Field(None, max_length=40,
                                      description="a promise on the label sets: fnr=0.1 (at most 10% of true labels "
                                                  "missed), precision=0.9 or fdr=0.1; rows gain uncertain and "
                                                  "abstain, the response a promise")
    row_violation: Optional[float] = Field(None, description="with risk: of the rows not abstained, at most this share "
                                                             "break the promise on their own (default 0.1)")
    confidence: Optional[float] = Field(None, description="with risk: hold the promise with this probability "
                                                          "(e.g. 0.95) instead of on average")

class AnnotationIn(Strict):
    example_id: StrictInt = Field(..., ge=1, le=MAX_ID, description="the example's store id (as the queue gives it)")
    labels: list[StrictStr] = Field(..., max_length=MAX_LABELS)
    annotator: Optional[StrictStr] = Field(None, max_length=MAX_NAME,
                                           description="leave out: the signed-in user (a user cannot name another)")
    origin: Optional[StrictStr] = Field(None, max_length=MAX_ORIGIN, description="suggest:<run>, audit:<run>, ... (default: api)")

    _short_labels = field_validator("labels")(_short_label_names)

class ReleaseIn(Strict):
    example_id: StrictInt = Field(..., ge=1, le=MAX_ID, description="a store id the label queue gave the requesting user")

class AdjudicationIn(Strict):
    example_id: StrictInt = Field(..., ge=1, le=MAX_ID, description="the disputed example's store id (as /api/team gives it)")
    labels: list[StrictStr] = Field(..., max_length=MAX_LABELS, description="the labels the reviewer decides on ([] for none)")

    _short_labels = field_validator("labels")(_short_label_names)

class TrainIn(Strict):
    mode: Optional[StrictStr] = Field(None, max_length=MAX_NAME, description="auto (default) or a training mode")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode):
        from ..learn.registry import resolve_mode

        if mode not in (None, "auto"):
            try:
                resolve_mode(mode)
            except TagwiseError as exc:
                raise ValueError(str(exc)) from None
        return mode


class AddLabelIn(Strict):
    name: StrictStr = Field(..., min_length=1, max_length=MAX_ORIGIN, description="the new label")
    parent: Optional[StrictStr] = Field(None, max_length=MAX_ORIGIN, description="its parent (a label), or none")
    description: Optional[StrictStr] = Field(None, max_length=MAX_CHARS, description="what it means (guidelines, zero-shot)")

class RenameLabelIn(Strict):
    old: StrictStr = Field(..., min_length=1, max_length=MAX_ORIGIN)
    new: StrictStr = Field(..., min_length=1, max_length=MAX_ORIGIN)

class MergeLabelsIn(Strict):
    labels: list[StrictStr] = Field(..., min_length=1, max_length=MAX_LABELS, description="the labels to merge")
    into: StrictStr = Field(..., min_length=1, max_length=MAX_ORIGIN, description="the merged label (new or one of them)")

    _short_labels = field_validator("labels")(_short_label_names)

class SplitLabelIn(Strict):
    label: StrictStr = Field(..., min_length=1, max_length=MAX_ORIGIN)
    into: list[StrictStr] = Field(..., min_length=1, max_length=MAX_LABELS, description="the new labels")
    keep_parent: StrictBool = Field(False, description="keep the label as the new labels' parent")

    _short_labels = field_validator("into")(_short_label_names)

class MoveLabelIn(Strict):
    name: StrictStr = Field(..., min_length=1, max_length=MAX_ORIGIN)
    parent: Optional[StrictStr] = Field(None, max_length=MAX_ORIGIN, description="the new parent; null: a root label")

class RetireLabelIn(Strict):
    name: StrictStr = Field(..., min_length=1, max_length=MAX_ORIGIN)

class UndoChangeIn(Strict):
    to: Optional[StrictInt] = Field(None, ge=1, le=MAX_ID, description="undo this change and every later one (default: the latest)")


class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error that echoes a bad input (a lone surrogate) still encodes."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


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
               host: str = "127.0.0.1", port: int | None = None, allow_hosts=(), body_timeout_s: float = BODY_TIMEOUT_S,
               overlap: int = 1):
    """The app serving ``project_path``, bound (or reached) at ``host``:``port`` (port None: any).

    ``token``: an admin token (``Authorization: Bearer TOKEN``, or as a login token). Once the project has
    users (``tagwise users add``), every request needs a user's token or session; without users and
    without ``token``, a loopback-bound server answers its one local person. ``allow_hosts``: more names
    the ``Host`` header may carry (a reverse proxy's). ``overlap``: how many distinct people label each
    queued example (``serve --overlap K``)."""
    project_path = Path(project_path)
    if not isinstance(overlap, int) or overlap < 1:
        raise TagwiseError(f"--overlap must be a whole number of at least 1 (got {overlap!r}).")
    Project.open(project_path).close()  # a clear error now, not on the first request
    predictor = predictor or Predictor(project_path)
    jobs = Jobs(project_path)
    # the label queue's next batch is suggested ahead of time in a low-priority child process, never
    # inside a request: a suggest fit is seconds of CPU that predict requests would wait behind
    # (workflows/queue.py explains; bench/bench_serve.py --team measures it)
    label_batches = BatchRefill(project_path)
    app = FastAPI(title="tagwise", description="Label, review and use a tagwise project's model. Sign in with "
                  "`Authorization: Bearer TOKEN` (a program) or POST /api/login (a browser; then send the "
                  "csrf_token as X-CSRF-Token). State-changing requests need `Content-Type: application/json`.",
                  version="1", docs_url=None, redoc_url=None, default_response_class=SafeJSONResponse)
    app.state.predictor, app.state.jobs, app.state.label_batches = predictor, jobs, label_batches
    guard_config = {"users": Users(project_path), "sessions": Sessions(), "admin_token": token,
                    "local_name": annotator}
    app.add_middleware(Guard, hosts=HostPolicy(host, port, allow_hosts), allow_anonymous=is_loopback(host),
                       max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s, **guard_config)
    app.include_router(login_routes(project_path, guard_config))
    app.state.annotator, app.state.overlap = annotator, overlap

    @contextmanager
    def opened():
        project = Project.open(project_path)
        try:
            yield project
        finally:
            project.close()

    @app.exception_handler(TagwiseError)
    async def tagwise_error(request: Request, exc: TagwiseError):
        return SafeJSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # one line per problem, naming the field; the offending input is not echoed back
        problems = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
            problems.append({"field": where, "message": str(err.get("msg", "invalid"))[:500], "type": err.get("type")})
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return SafeJSONResponse({"detail": detail, "errors": problems}, status_code=422)

    # -- API -----------------------------------------------------------------------------------
    @app.get("/api/health")
    def health():
        with opened() as project:
            n = example_count(project)
        return {"status": "ok", "model": predictor.current_model(), "examples": n}

    @app.post("/api/predict")
    async def predict(body: PredictIn):
        try:
            check_risk(body.risk, body.confidence, body.row_violation)
        except TagwiseError as exc:
            raise HTTPException(422, str(exc)) from None
        if body.source is not None:
            from ..workflows.sources import source_names

            with opened() as project:
                known = source_names(project)
            if body.source not in known:
                raise HTTPException(422, f"unknown source {body.source!r}; this project's sources are: "
                                         f"{', '.join(known) or 'none'} (leave `source` out to score without one).")
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
            return await asyncio.wrap_future(predictor.submit(body.texts, body.source, body.risk, body.confidence,
                                                                body.row_violation))
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
        out = label_queue(project, user=user["name"], overlap=overlap, limit=limit, filters=filters,
                          predict=predict_fn, refill=label_batches)
        for it in out["items"]:
            it["display_text"] = pages.decoded(it["text"])  # entities decoded; the page shows it as text
        return out

    @app.get("/api/queue")
    def queue(request: Request, kind: str = Query("label", pattern="^(label|review)$"),
              limit: int = Query(20, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000),
              source: Optional[str] = Query(None, max_length=MAX_ORIGIN),
              split: Optional[str] = Query(None, max_length=MAX_ORIGIN),
              language: Optional[str] = Query(None, max_length=MAX_ORIGIN),
              label: Optional[str] = Query(None, max_length=MAX_ORIGIN), q: Optional[str] = Query(None, max_length=MAX_ORIGIN)):
        """kind=label: the next examples for the requesting user (leased to them; see workflows/queue.py);
        kind=review: the latest audit's undecided rows, ``offset`` paging through them."""
        user = require_user(request, "reviewer" if kind == "review" else "annotator")
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

        who = annotator_for(request, body.annotator)
        origin = body.origin or "api"
        if origin == ADJUDICATION:  # a reviewer's decision goes through its own route (and its role check)
            raise HTTPException(422, "origin 'adjudication' is a reviewer's decision: POST /api/adjudications.")
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
        mine = None if has_role(user, "reviewer") else user["name"]
        with opened() as project:
            return {"annotations": history(project, limit=limit, annotator=mine)}

    @app.post("/api/annotations/{annotation_id}/undo")
    def undo(request: Request, annotation_id: int = PathParam(..., ge=1, le=MAX_ID)):
        from ..workflows.labels import NotYours, undo_annotation

        user = require_user(request)
        owner = None if has_role(user, "reviewer") else user["name"]  # annotators undo only their own
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

        require_user(request, "reviewer")
        with opened() as project:
            return team_report(project, overlap=overlap)

    @app.post("/api/adjudications")
    def adjudication(body: AdjudicationIn, request: Request):
        """A reviewer's decision on a disputed example: an annotation of origin ``adjudication``."""
        from ..workflows.team import adjudicate

        user = require_user(request, "reviewer")
        with opened() as project:
            return {"annotation_id": adjudicate(project, body.example_id, body.labels, user["name"]),
                    "origin": ADJUDICATION, "annotator": user["name"]}

    @app.post("/api/train")
    def train(body: TrainIn = Body(default=TrainIn())):
        return {"job_id": jobs.start(body.mode)}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str = PathParam(..., max_length=64)):
        found = jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return found

    # -- taxonomy changes (issue 32; admins): one route per change, each one store transaction ----------
    def _taxonomy_change(fn, **args) -> dict:
        from ..workflows import taxonomy_changes as tc

        with opened() as project:
            return tc.change_summary(getattr(tc, fn)(project, **args))

    @app.get("/api/taxonomy")
    def taxonomy_info():
        """The label tree with counts, retired labels, the change history (newest first) and what splits
        left to label (admins)."""
        from ..workflows.taxonomy_changes import taxonomy_overview

        with opened() as project:
            return taxonomy_overview(project)

    @app.post("/api/taxonomy/add")
    def taxonomy_add(body: AddLabelIn):
        """A new label: unknown everywhere until people label it."""
        return _taxonomy_change("add_label", name=body.name, parent=body.parent, description=body.description)

    @app.post("/api/taxonomy/rename")
    def taxonomy_rename(body: RenameLabelIn):
        """Every judgement and the current model keep their meaning under the new name."""
        return _taxonomy_change("rename_label", old=body.old, new=body.new)

    @app.post("/api/taxonomy/merge")
    def taxonomy_merge(body: MergeLabelsIn):
        """``into`` is positive where any merged label was; the model serves the max of their heads."""
        return _taxonomy_change("merge_labels", labels=body.labels, into=body.into)

    @app.post("/api/taxonomy/split")
    def taxonomy_split(body: SplitLabelIn):
        """The new labels are unknown on the label's positives, which go to the label queue."""
        return _taxonomy_change("split_label", label=body.label, into=body.into, keep_parent=body.keep_parent)

    @app.post("/api/taxonomy/move")
    def taxonomy_move(body: MoveLabelIn):
        return _taxonomy_change("move_label", name=body.name, parent=body.parent)

    @app.post("/api/taxonomy/retire")
    def taxonomy_retire(body: RetireLabelIn):
        """The label leaves queues, models and exports; its history is kept."""
        return _taxonomy_change("retire_label", name=body.name)

    @app.post("/api/taxonomy/undo")
    def taxonomy_undo(body: UndoChangeIn = Body(default=UndoChangeIn())):
        """Undo the latest change (or ``to`` and every later one) exactly."""
        from ..workflows import taxonomy_changes as tc

        with opened() as project:
            return {"undone": tc.undo(project, body.to)}

    # -- pages (templates in serve/templates/, rendered by pages.render) ---------------------------
    def _filters(request: Request) -> dict:
        filters = {k: request.query_params.get(k) for k in pages.FILTERS}
        long = [k for k, v in filters.items() if v is not None and len(v) > MAX_ORIGIN]
        if long:
            raise HTTPException(422, f"filter {long[0]!r} is over {MAX_ORIGIN} characters.")
        return filters

    def _page(request, name, title, active, user, **context):
        return pages.render(request, name, title, active, user, **context)

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
                         options=filter_options(project), labels=pages.label_tree(tax),
                         guide=pages.guide(names, tax.descriptions, tax.examples))

    REVIEW_PAGE = 50

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, offset: int = Query(0, ge=0, le=10_000_000)):
        from urllib.parse import urlencode

        from ..workflows.labels import history

        user = require_user(request, "reviewer")
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

        user = require_user(request, "reviewer")
        with opened() as project:
            report = team_report(project, overlap=overlap)
        return _page(request, "team.html", "Team", "team", user, team=report,
                     can_decide=has_role(user, "reviewer"))

    @app.get("/taxonomy", response_class=HTMLResponse, include_in_schema=False)
    def taxonomy_page(request: Request):
        from ..workflows.taxonomy_changes import taxonomy_overview

        user = require_user(request, "admin")
        with opened() as project:
            return _page(request, "taxonomy.html", "Taxonomy", "taxonomy", user, overview=taxonomy_overview(project))

    @app.get("/model", response_class=HTMLResponse, include_in_schema=False)
    def model_page(request: Request):
        from ..workflows.health import project_health
        from ..workflows.models import load_project_model
        from ..workflows.report import section_metrics, section_overview

        user = require_user(request)
        with opened() as project:
            info = None
            if predictor.current_model() is not None:
                loaded = load_project_model(project)
                info = {**loaded.info, "name": loaded.name}
            health = (project_health(project) if info is not None
                      or len(project.examples(split="train", labeled=True)) else None)
            sections = [s for s in (section_overview(project), section_metrics(project, "test")) if s]
            return _page(request, "model.html", "Model", "model", user, info=info, sections=sections,
                         health=health, job=jobs.last_done())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in ("app.js", "app.css", "docs.js"):
            raise HTTPException(404)
        return FileResponse(STATIC / name, media_type="text/javascript" if name.endswith(".js") else "text/css")

    # -- /docs: Swagger UI from the swagger-ui-bundle package, not a CDN (works offline) -------------
    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs():
        return HTMLResponse("""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tagwise API</title>
<link rel="stylesheet" href="/docs-assets/swagger-ui.css"><link rel="icon" href="/docs-assets/favicon-32x32.png">
</head><body><div id="swagger-ui"></div><script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>""")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_assets(name: str):
        try:
            from swagger_ui_bundle import swagger_ui_path
        except ImportError:
            raise HTTPException(404, "the API page needs the swagger-ui-bundle package: "
                                     "pip install swagger-ui-bundle") from None
        if name not in SWAGGER_FILES:
            raise HTTPException(404)
        kind = {"css": "text/css", "js": "text/javascript", "png": "image/png"}[name.rsplit(".", 1)[1]]
        return FileResponse(Path(swagger_ui_path) / name, media_type=kind,
                            headers={"Cache-Control": "public, max-age=86400"})

    return app


def run_server(project_path, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
               annotator: str = "web", allow_hosts=(), overlap: int = 1) -> None:
    """Serve until interrupted. A host other than loopback needs a token or users."""
    import uvicorn

    from ..workflows.users import list_users

    if not 0 < int(port) < 65536:
        raise TagwiseError(f"--port {port} is not a TCP port; use 1-65535 (default 8765).")
    project = Project.open(project_path)
    try:
        n_users = len(list_users(project))
    finally:
        project.close()
    if not is_loopback(host) and not token:
        if not n_users:
            raise TagwiseError(f"--host {host} would let other machines reach this project without a password. "
                               f"Fix: add users (`tagwise users add {project_path} NAME`, each gets a login link) "
                               f"or --token SECRET (clients send `Authorization: Bearer SECRET`), or keep the "
                               f"default --host 127.0.0.1.")
    app = create_app(project_path, token=token, annotator=annotator, host=host, port=port, allow_hosts=allow_hosts,
                     overlap=overlap)
    from ..workflows.queue import refill_if_low

    project = Project.open(project_path)
    try:  # the first batch is prepared while the server starts, so the first person has work at once
        refill_if_low(project, app.state.label_batches, overlap)
    finally:
        project.close()
    who = (f"{n_users} users sign in with their links (`tagwise users list`)" if n_users else
           "admin token required" if token else "one local person, no sign-in; `tagwise users add` for a team")
    print(f"tagwise serve: http://{host}:{port}/label  (API docs at /docs; {who}"
          f"{f'; each example goes to {overlap} people' if overlap > 1 else ''})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.state.label_batches.stop()
        app.state.predictor.stop()
