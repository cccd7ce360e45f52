"""Who is asking, and may they: the guard in front of every ``tagwise serve`` request.

``Guard`` is a plain ASGI middleware (it sees the raw byte stream, whatever its framing) that, in order:

1. refuses a ``Host`` that is not the bound host (or an allowed one): a DNS-rebinding page cannot reach us;
2. finds the requester: ``Authorization: Bearer`` (a user's token, or ``serve --token``, the admin token),
   else the session cookie a login set, else -- only in a project without users, served on loopback,
   without ``--token`` -- the one local person (role admin, named by ``serve --annotator``);
3. for a state-changing method (POST/PUT/PATCH/DELETE): refuses a foreign ``Origin`` or a cross-site
   ``Sec-Fetch-Site``, any ``Content-Type`` other than ``application/json`` (which a ``no-cors`` fetch or an
   HTML form cannot send), and, for a session, a missing or wrong ``X-CSRF-Token``;
4. checks the route's role (``ROUTE_ROLES``; annotator < reviewer < admin);
5. reads the body itself, counting the bytes actually received (chunked or not): 413 past the limit,
   408 when the client stops sending before the body it announced is complete.

Routes read the requester with the ``current_user`` dependency (``{"name", "role", "via"}``) and check
finer rules with ``require_role`` / ``annotator_for``. Sessions live in memory: a restart signs everyone
out (they open their link again); removing a user ends their sessions within ``USERS_TTL_S``.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ..project import Project
from ..types import TagwiseError
from ..workflows.users import (DEFAULT_BASE_URL, ROLES, add_user, check_name, has_role, hash_token, list_users,
                               remove_user, users_by_token_hash)
from .pages import landing, sign_in_page

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = frozenset({"/login", "/api/login", "/static/app.css"})  # reachable before signing in (the
# sign-in page and its style sheet; no project data)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SESSION_COOKIE = "tagwise_session"  # + "_<port>": cookies are not separated by port, servers on one host are
CSRF_COOKIE = "tagwise_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_MAX_AGE_S = 7 * 24 * 3600
MAX_SESSIONS_PER_USER = 20  # a 21st sign-in ends the oldest session (memory stays bounded)
USERS_TTL_S = 1.0  # the user list is re-read at most this often (users added or removed by the CLI)
# (method or "*", path, query key, query value) -> the least role; anything not listed needs "annotator"
ROUTE_ROLES: list[tuple[str, str, Optional[str], Optional[str], str]] = [
    ("GET", "/review", None, None, "reviewer"),
    ("GET", "/api/queue", "kind", "review", "reviewer"),
    ("GET", "/team", None, None, "reviewer"),  # the team page shows everyone's labels
    ("GET", "/api/team", None, None, "reviewer"),
    ("POST", "/api/adjudications", None, None, "reviewer"),
    ("POST", "/api/train", None, None, "admin"),
    ("*", "/api/users", None, None, "admin"),
    ("*", "/api/taxonomy", None, None, "admin"),  # the label set's changes (issue 32)
    ("GET", "/taxonomy", None, None, "admin"),
]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, Optional[int]] | None:
    """``"name:port"`` / ``"[v6]:port"`` / ``"name"`` -> (lower-case name, port or None); None if malformed."""
    value = value.strip().lower()
    if not value or any(c in value for c in "/\\@ \t"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else None
    elif value.count(":") == 1:
        name, port = value.split(":")
    elif ":" in value:  # a bare IPv6 address
        name, port = value, None
    else:
        name, port = value, None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            return None
        port = int(port)
    return name.rstrip("."), port


class HostPolicy:
    """Which ``Host`` headers a server bound to ``bind_host`` (port ``port``; None: any) answers.

    Loopback bind: 127.0.0.1, localhost, [::1]. Wildcard bind (0.0.0.0, ::): those, any IP literal (a
    rebinding attack needs a DNS name) and this machine's host name. Any other bind: that host. Plus
    ``allow`` (names from ``serve --allow-host``)."""

    def __init__(self, bind_host: str = "127.0.0.1", port: Optional[int] = None, allow=()):
        self.port = port
        bind = bind_host.strip("[]").lower()
        self.wildcard = bind in ("0.0.0.0", "::", "")
        names = {bind} | {a.strip().strip("[]").lower().rstrip(".") for a in allow if a.strip()}
        if self.wildcard or is_loopback(bind):
            names |= LOOPBACK_NAMES
        if self.wildcard:
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.names = frozenset(names)

    def allows(self, header: str) -> bool:
        parsed = split_host(header)
        if parsed is None:
            return False
        name, port = parsed
        if self.port is not None and port is not None and port != self.port:  # a program may leave the port out
            return False
        return name in self.names or (self.wildcard and _is_ip(name))

    def describe(self) -> str:
        names = sorted(self.names) + (["any IP address"] if self.wildcard else [])
        return ", ".join(names) + (f" (port {self.port})" if self.port else "")


def _origin_tuple(scheme: str, host: str) -> tuple[str, str, int] | None:
    parsed = split_host(host)
    if parsed is None:
        return None
    name, port = parsed
    return scheme, name, port or (443 if scheme == "https" else 80)


def same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether an ``Origin`` header names this server (``scheme://Host``); ``null`` never does."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return _origin_tuple(parts.scheme, parts.netloc) == _origin_tuple(scheme, host)


def cookie_suffix(host: str) -> str:
    """The port of the ``Host`` header, or "default": what a page's ``location.port`` says, behind a TLS proxy too."""
    parsed = split_host(host) or ("", None)
    return str(parsed[1] or "default")


def required_role(method: str, path: str, query: dict) -> str:
    for m, p, key, value, role in ROUTE_ROLES:
        if (m == "*" or m == method) and (path == p or path.startswith(p + "/")) and \
                (key is None or query.get(key) == value):
            return role
    return "annotator"


class Sessions:
    """In-memory browser sessions: id -> ``{"name", "via", "csrf", "expires"}``."""

    def __init__(self):
        self._by_id: dict[str, dict] = {}
        self._lock = threading.Lock()

    def create(self, name: str, via: str) -> tuple[str, dict]:
        sid = secrets.token_urlsafe(32)
        session = {"name": name, "via": via, "csrf": secrets.token_urlsafe(32),
                   "expires": time.time() + SESSION_MAX_AGE_S}
        with self._lock:
            now = time.time()
            mine = [k for k, s in self._by_id.items() if s["name"] == name]  # oldest first (dicts keep order)
            for k in [k for k, s in self._by_id.items() if s["expires"] < now] + mine[:-MAX_SESSIONS_PER_USER + 1]:
                self._by_id.pop(k, None)
            self._by_id[sid] = session
        return sid, session

    def get(self, sid: str) -> Optional[dict]:
        with self._lock:
            session = self._by_id.get(sid)
        return session if session is not None and session["expires"] > time.time() else None

    def drop(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)


class Users:
    """The project's users by token hash, re-read at most every ``USERS_TTL_S`` seconds."""

    def __init__(self, project_path: Path):
        self.project_path = Path(project_path)
        self._snapshot: dict[str, dict] = {}
        self._read_at = -1e9
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict]:
        project = Project.open(self.project_path)
        try:
            return users_by_token_hash(project)
        finally:
            project.close()

    def snapshot(self, fresh: bool = False) -> dict[str, dict]:
        with self._lock:
            if fresh or time.monotonic() - self._read_at > USERS_TTL_S:
                self._snapshot = self._read()
                self._read_at = time.monotonic()
            return self._snapshot

    def by_token(self, token: str) -> Optional[dict]:
        return self.snapshot().get(hash_token(token))

    def by_name(self, name: str) -> Optional[dict]:
        return next((u for u in self.snapshot().values() if u["name"] == name), None)


def _json(status: int, detail: str, headers: dict | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class Guard:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app, *, users: Users, sessions: Sessions, hosts: HostPolicy, admin_token: Optional[str],
                 local_name: str, allow_anonymous: bool, max_body_bytes: int, body_timeout_s: float):
        self.app, self.users, self.sessions, self.hosts = app, users, sessions, hosts
        self.admin_token, self.local_name, self.allow_anonymous = admin_token, local_name, allow_anonymous
        self.max_body_bytes, self.body_timeout_s = max_body_bytes, body_timeout_s

    # -- who ----------------------------------------------------------------------------------------
    def identify(self, headers: dict, cookies: dict, suffix: str) -> tuple[Optional[dict], Optional[str]]:
        """(user or None, why not). A user: ``{"name", "role", "via", "csrf"?}``."""
        auth = headers.get("authorization", "")
        if auth:
            scheme, _, given = auth.partition(" ")
            given = given.strip()
            if scheme.lower() != "bearer" or not given:
                return None, "send `Authorization: Bearer TOKEN`."
            if self.admin_token is not None and hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                                                    self.admin_token.encode()):
                return {"name": self.local_name, "role": "admin", "via": "token"}, None
            user = self.users.by_token(given)
            if user is None:
                return None, "wrong token: send `Authorization: Bearer TOKEN` with a token `tagwise users add` gave."
            return {**user, "via": "bearer"}, None
        sid = cookies.get(f"{SESSION_COOKIE}_{suffix}")
        if sid:
            session = self.sessions.get(sid)
            if session is not None:
                if session["via"] == "token":
                    return {"name": session["name"], "role": "admin", "via": "session", "csrf": session["csrf"]}, None
                user = self.users.by_name(session["name"])
                if user is not None:  # the role as it is now; a removed user's session is over
                    return {**user, "via": "session", "csrf": session["csrf"]}, None
        if self.allow_anonymous and self.admin_token is None and not self.users.snapshot():
            return {"name": self.local_name, "role": "admin", "via": "local"}, None
        return None, "sign in first: open your login link, POST /api/login {\"token\"}, or send " \
                     "`Authorization: Bearer TOKEN`."

    # -- ASGI ---------------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            key = k.decode("latin-1").lower()
            headers[key] = (headers[key] + "," + v.decode("latin-1")) if key in headers and key != "cookie" \
                else v.decode("latin-1")
        method, path = scope["method"].upper(), scope.get("path", "/")
        scheme = scope.get("scheme", "http")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                         (b"referrer-policy", b"no-referrer")]
                have = {k.lower() for k, _ in message.get("headers", [])}
                if b"content-security-policy" not in have:
                    extra.append((b"content-security-policy", b"default-src 'self'; img-src 'self' data:; "
                                  b"style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        async def reply(response: Response):
            await response(scope, receive, send_with_headers)

        host = headers.get("host", "")
        if not self.hosts.allows(host):
            return await reply(_json(400, f"Host {host[:100]!r} is not served here (DNS rebinding is refused); "
                                          f"this server answers {self.hosts.describe()}. Fix: open it by one of "
                                          f"those names, or start it with `--allow-host NAME`."))
        suffix = cookie_suffix(host)
        cookies = _parse_cookies(headers.get("cookie", ""))
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        changing = method in STATE_CHANGING
        fetch_site = headers.get("sec-fetch-site", "")

        # a page of another site (another port of this host is "same-site") may navigate here, nothing more
        if fetch_site in ("cross-site", "same-site") and (changing or headers.get("sec-fetch-mode") != "navigate"):
            return await reply(_json(403, "cross-site request refused: this server only answers its own pages "
                                          "and programs (which send no Sec-Fetch-Site)."))
        if changing:
            origin = headers.get("origin")
            if origin is not None and not same_origin(origin, scheme, host):
                return await reply(_json(403, f"Origin {origin[:100]!r} is not this server's; a state-changing "
                                              f"request must come from its own pages or from a program."))

        user, why = self.identify(headers, cookies, suffix)
        if user is None and path not in OPEN_PATHS:
            if not path.startswith("/api/") and method == "GET" and "text/html" in headers.get("accept", ""):
                return await reply(sign_in_page(why, next_path=path))
            return await reply(_json(401, why, {"WWW-Authenticate": "Bearer"}))

        if changing:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return await reply(_json(415, f"a {method} request must send `Content-Type: application/json` "
                                              f"(got {ctype[:60] or 'none'!r}), even with an empty body."))
            if user is not None and user["via"] == "session" and path not in OPEN_PATHS:
                given = headers.get(CSRF_HEADER, "")
                if not given or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), user["csrf"].encode()):
                    return await reply(_json(403, "missing or wrong X-CSRF-Token: send the csrf_token the login "
                                                  f"gave (also in the {CSRF_COOKIE}_{suffix} cookie) with every "
                                                  f"state-changing request."))
        if user is not None:
            role = required_role(method, path, query)
            if not has_role(user, role):
                return await reply(_json(403, f"{user['name']!r} is a {user['role']}; {method} {path} needs a "
                                              f"{role} (roles: {', '.join(ROLES)})."))

        # the body: read here, counted as it arrives, then handed to the app in one piece
        if headers.get("content-length") not in (None, "0") or "transfer-encoding" in headers:
            length = headers.get("content-length")
            if length is not None and not length.strip().isdigit():
                return await reply(_json(400, f"bad Content-Length {length[:40]!r}."))
            if length is not None and int(length) > self.max_body_bytes:
                return await reply(self._too_large(int(length)))
            body, problem = await self._read_body(receive)
            if problem is not None:
                return await reply(problem)
            receive = _replay(body, receive)

        scope["tagwise.user"] = None if user is None else {k: user[k] for k in ("name", "role", "via")}
        scope["tagwise.csrf"] = None if user is None else user.get("csrf")
        scope["tagwise.cookie_suffix"] = suffix

        await self.app(scope, receive, send_with_headers)

    def _too_large(self, n: int | None) -> Response:
        got = f"{n} bytes" if n is not None else f"more than {self.max_body_bytes} bytes"
        return JSONResponse({"detail": f"request body of {got} is over the limit of {self.max_body_bytes}; send "
                                       f"fewer or shorter texts per request."}, status_code=413,
                            headers={"Connection": "close"})

    async def _read_body(self, receive) -> tuple[bytes, Optional[Response]]:
        chunks, total = [], 0
        deadline = time.monotonic() + self.body_timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except asyncio.TimeoutError:
                return b"", JSONResponse({"detail": f"the request body did not arrive within "
                                                    f"{self.body_timeout_s:g}s ({total} bytes received); send the "
                                                    f"whole body it announces."}, status_code=408,
                                         headers={"Connection": "close"})
            if message["type"] == "http.disconnect":
                return b"", Response(status_code=400)
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                return b"", self._too_large(None)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


def _parse_cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq:
            out.setdefault(name.strip(), value.strip())
    return out


# -- what routes call -------------------------------------------------------------------------------
def current_user(request: Request) -> dict:
    """FastAPI dependency: the requester, ``{"name", "role", "via"}`` (via: bearer, session, token for the
    ``serve --token`` admin, local for the one person of a project without users). 401 if nobody."""
    user = request.scope.get("tagwise.user")
    if user is None:
        raise HTTPException(401, "sign in first: open your login link, or send `Authorization: Bearer TOKEN`.")
    return user


def request_user(request: Request) -> Optional[dict]:
    """The requester as the ``Guard`` found them, ``{"name", "role", "via"}``, or None when nobody is signed in
    (the one local person of a project without users, served on loopback, is ``{"name": --annotator,
    "role": "admin", "via": "local"}``). The one place pages, queues and the team page learn who asks."""
    return request.scope.get("tagwise.user")


def require_user(request: Request, role: str = "annotator") -> dict:
    """The requester, or HTTP 401 (nobody signed in) / 403 (a role below ``role``)."""
    user = current_user(request)
    if not has_role(user, role):
        raise HTTPException(403, f"{user['name']!r} is a {user['role']}; this needs a {role} "
                                 f"(roles: {', '.join(ROLES)}).")
    return user


def require_role(role: str):
    """A dependency factory: ``Depends(require_role("reviewer"))`` -> the user, or 403."""
    def dependency(request: Request) -> dict:
        return require_user(request, role)
    return dependency


def annotator_for(request: Request, claimed: Optional[str]) -> str:
    """The name an annotation is stored under: the signed-in user's own (a body naming anyone else is a
    403); the local person and the ``--token`` admin may name an annotator (a program importing labels)."""
    user = current_user(request)
    claimed = None if claimed is None else claimed.strip()
    if user["via"] in ("bearer", "session"):
        if claimed and claimed != user["name"]:
            raise HTTPException(403, f"signed in as {user['name']!r}: an annotation cannot be stored as "
                                     f"{claimed[:100]!r}. Leave `annotator` out (or give your own name).")
        return user["name"]
    if not claimed:
        return user["name"]
    try:
        return check_name(claimed, "annotator")
    except TagwiseError as exc:
        raise HTTPException(422, str(exc)) from None


# -- login routes -----------------------------------------------------------------------------------
class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: StrictStr = Field(..., min_length=1, max_length=200)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(..., min_length=1, max_length=100)
    role: StrictStr = Field("annotator", description=f"one of {', '.join(ROLES)}")


def login_routes(project_path: Path, guard_config: dict) -> APIRouter:
    """/login (the link), /api/login, /api/logout, /api/me and the admin's /api/users."""
    router = APIRouter()
    sessions: Sessions = guard_config["sessions"]
    users: Users = guard_config["users"]
    admin_token: Optional[str] = guard_config["admin_token"]
    local_name: str = guard_config["local_name"]

    def start_session(request: Request, token: str) -> tuple[dict, str, str]:
        if admin_token is not None and hmac.compare_digest(token.encode("utf-8", "surrogatepass"), admin_token.encode()):
            name, role, via = local_name, "admin", "token"
        else:
            user = users.snapshot(fresh=True).get(hash_token(token))
            if user is None:
                raise HTTPException(401, "unknown token: the link may be mistyped or its user removed. Ask an "
                                         "admin for a new one (`tagwise users add`).")
            name, role, via = user["name"], user["role"], "user"
        sid, session = sessions.create(name, via)
        return {"name": name, "role": role, "csrf_token": session["csrf"]}, sid, session["csrf"]

    def set_cookies(request: Request, response: Response, sid: str, csrf: str) -> None:
        suffix = request.scope.get("tagwise.cookie_suffix") or cookie_suffix(request.headers.get("host", ""))
        secure = request.url.scheme == "https"
        response.set_cookie(f"{SESSION_COOKIE}_{suffix}", sid, max_age=SESSION_MAX_AGE_S, httponly=True,
                            samesite="strict", secure=secure, path="/")
        response.set_cookie(f"{CSRF_COOKIE}_{suffix}", csrf, max_age=SESSION_MAX_AGE_S, httponly=False,
                            samesite="strict", secure=secure, path="/")

    @router.get("/login", include_in_schema=False)
    def login_link(request: Request, token: Optional[str] = None,
                   next_page: Optional[str] = Query(None, alias="next", max_length=100)):
        """The login link: a session, then on to ``next`` (one of the pages; default /label)."""
        if not token:
            return sign_in_page("Sign in to this tagwise project.", status=200, next_path=next_page)
        if len(token) > 200:
            raise HTTPException(400, "a token is at most 200 characters.")
        try:
            _, sid, csrf = start_session(request, token)
        except HTTPException as exc:
            return sign_in_page(exc.detail, status=exc.status_code, next_path=next_page)
        to = landing(next_page)  # a fixed page path: nothing of the request reaches the markup or the Location
        if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            # a link followed from another site: a redirect would stay "cross-site" and the Strict cookie
            # would not be sent; a page of ours that moves on is same-site
            response: Response = HTMLResponse(f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" '
                                              f'content="0; url={to}"><a href="{to}">Continue</a>')
        else:
            response = RedirectResponse(to, status_code=303)
        set_cookies(request, response, sid, csrf)
        return response

    @router.post("/api/login")
    def api_login(body: LoginIn, request: Request):
        """Exchange a user's token for a session cookie; answers ``{"name", "role", "csrf_token"}`` (send the
        csrf_token as ``X-CSRF-Token`` with every state-changing request)."""
        out, sid, csrf = start_session(request, body.token)
        response = JSONResponse(out)
        set_cookies(request, response, sid, csrf)
        return response

    @router.post("/api/logout")
    def api_logout(request: Request):
        suffix = request.scope.get("tagwise.cookie_suffix") or ""
        sid = request.cookies.get(f"{SESSION_COOKIE}_{suffix}")
        if sid:
            sessions.drop(sid)
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(f"{SESSION_COOKIE}_{suffix}", path="/")
        response.delete_cookie(f"{CSRF_COOKIE}_{suffix}", path="/")
        return response

    @router.get("/api/me")
    def me(request: Request):
        """The requester: ``{"name", "role", "via", "csrf_token"}`` (csrf_token only for a session)."""
        user = current_user(request)
        return {**user, "csrf_token": request.scope.get("tagwise.csrf")}

    def opened():
        return Project.open(project_path)

    @router.get("/api/users")
    def get_users():
        """The project's users (admin)."""
        project = opened()
        try:
            return {"users": list_users(project)}
        finally:
            project.close()

    @router.post("/api/users")
    def post_user(body: UserIn, request: Request):
        """Add a user (admin): answers ``{"name", "role", "token", "login_url"}`` (the token, once)."""
        base = f"{request.url.scheme}://{request.headers.get('host', '127.0.0.1:8765')}"
        project = opened()
        try:
            out = add_user(project, body.name, body.role, base_url=base or DEFAULT_BASE_URL)
        finally:
            project.close()
        users.snapshot(fresh=True)
        return out

    @router.delete("/api/users/{name}")
    def delete_user(name: str):
        """Remove a user (admin): their token and sessions stop working; their labels stay."""
        project = opened()
        try:
            out = remove_user(project, name)
        finally:
            project.close()
        users.snapshot(fresh=True)
        return out

    return router

