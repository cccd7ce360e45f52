"""`tagwise serve` for a team, safely (issue 28): accounts (token, login link, session cookie + CSRF),
roles, no impersonation, and no way in for another site: foreign Host (DNS rebinding), foreign Origin,
`no-cors` writes, bodies past the limit whatever their framing, and no HTTP 500 from bad input.

Real projects on the bundled GoEmotions sample; real uvicorn servers on loopback ports where the wire
matters (chunked bodies, a cross-origin page in Debian's chromium)."""
import hashlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serve_data import Server, make_project
from tagwise.serve.app import create_app
from tagwise.workflows.train import train
from tagwise.workflows.users import add_user, remove_user

REPO = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8765"
ADMIN_TOKEN = "admin-token-for-tests"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Wraps an ASGI app and keeps ``(method, path, status)`` of every request it answered."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def record(message):
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)
        await self.app(scope, receive, record)


@pytest.fixture(scope="module")
def solo(tmp_path_factory):
    """A project without users, served on loopback without a token: today's single-person use."""
    root = tmp_path_factory.mktemp("solo")
    project = make_project(root, n_train=160, n_pool=60, n_dev=40, n_test=40)
    train(project, mode="supervised", progress=False)
    port = _free_port()
    app = create_app(project.path, port=port, body_timeout_s=1.5)
    recorder = Recorder(app)
    server = Server(recorder, port)
    client = TestClient(app, base_url=server.url, raise_server_exceptions=False)
    yield project, app, client, server, recorder
    server.stop()
    app.state.predictor.stop()


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A project with an annotator, a reviewer and an admin, and an admin --token."""
    root = tmp_path_factory.mktemp("team")
    project = make_project(root, n_train=160, n_pool=60, n_dev=40, n_test=40)
    train(project, mode="supervised", progress=False)
    users = {name: add_user(project, name, role) for name, role in
             (("alice", "annotator"), ("bob", "annotator"), ("rita", "reviewer"), ("ada", "admin"))}
    app = create_app(project.path, token=ADMIN_TOKEN, annotator="owner")
    yield project, app, users
    app.state.predictor.stop()


def _client(app, token: str | None = None, **kw) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url=BASE, headers=headers, raise_server_exceptions=False, **kw)


def _active(project) -> list[dict]:
    return project.store.annotations()


def _pool(project, n: int) -> list[int]:
    return project.examples(split="unlabeled").ids[:n].tolist()


# -- another site cannot write -----------------------------------------------------------------------
class _PageB(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args):
        pass


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_a_page_of_another_loopback_port_cannot_change_anything(solo):
    """The attack of the issue: a page on 127.0.0.1:B posts `no-cors` to the server on 127.0.0.1:A (undo,
    annotate as text/plain, retrain, and a JSON fetch that needs a preflight). Nothing changes, and the
    server did see (and refuse) the writes that reached it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    project, app, client, server, recorder = solo
    sid = _pool(project, 1)[0]
    aid = client.post("/api/annotations", json={"example_id": sid, "labels": ["joy"]}).json()["annotation_id"]
    before = _active(project)
    model = (project.path / "models" / "CURRENT").read_text()
    a = server.url
    script = f"""
    const A = "{a}";
    const body = JSON.stringify({{example_id: {sid}, labels: ["anger"], annotator: "mallory"}});
    Promise.allSettled([
      fetch(A + "/api/annotations/{aid}/undo", {{method: "POST", mode: "no-cors"}}),
      fetch(A + "/api/annotations", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body}}),
      fetch(A + "/api/train", {{method: "POST", mode: "no-cors", body: "{{}}"}}),
      fetch(A + "/api/annotations", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body}}),
    ]).then((r) => {{ document.title = "done " + r.map((x) => x.status).join(","); }});
    """
    _PageB.html = f"<!doctype html><title>attack</title><script>{script}</script>".encode()
    page_server = ThreadingHTTPServer(("127.0.0.1", 0), _PageB)
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{page_server.server_address[1]}/")
            page.wait_for_function("document.title.startsWith('done')", timeout=30_000)
            browser.close()
    finally:
        page_server.shutdown()
    writes = [(m, p, s) for m, p, s in recorder.seen if m == "POST"]
    assert ("POST", f"/api/annotations/{aid}/undo", 403) in writes  # it reached the server and was refused
    assert all(400 <= s < 500 for _, _, s in writes), writes
    assert _active(project) == before  # nothing undone, nothing added
    assert app.state.jobs.jobs == {}  # no retrain started
    assert (project.path / "models" / "CURRENT").read_text() == model


def test_a_foreign_host_is_refused_dns_rebinding(solo):
    project, _, client, server, _ = solo
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1.evil.example", f"127.0.0.1:{server.port + 1}"):
        r = httpx.get(f"{server.url}/api/health", headers={"Host": host})
        assert r.status_code == 400 and "Host" in r.json()["detail"], host
    before = len(_active(project))
    r = httpx.post(f"{server.url}/api/annotations", headers={"Host": "evil.example"},
                   json={"example_id": _pool(project, 1)[0], "labels": ["joy"]})
    assert r.status_code == 400 and len(_active(project)) == before
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        assert httpx.get(f"{server.url}/api/health", headers={"Host": host}).status_code == 200
    assert client.get("/api/health", headers={"Host": f"[::1]:{server.port}"}).status_code == 200
    # a name of one's own (a reverse proxy's) is answered only when allowed
    app = create_app(project.path, allow_hosts=["labels.internal"])
    try:
        assert _client(app).get("/api/health", headers={"Host": "labels.internal"}).status_code == 200
        assert _client(app).get("/api/health", headers={"Host": "other.internal"}).status_code == 400
    finally:
        app.state.predictor.stop()


def test_a_foreign_origin_or_a_non_json_write_is_refused(solo):
    project, _, client, server, _ = solo
    sid = _pool(project, 1)[0]
    before = len(_active(project))
    body = {"example_id": sid, "labels": ["joy"]}
    for headers in ({"Origin": "http://127.0.0.1:9"}, {"Origin": "null"}, {"Origin": "http://evil.example"},
                    {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}):
        assert client.post("/api/annotations", json=body, headers=headers).status_code == 403, headers
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": ctype} if ctype else {}
        r = client.post("/api/annotations", content=json.dumps(body).encode(), headers=headers)
        assert r.status_code == 415 and "application/json" in r.json()["detail"], ctype
    assert len(_active(project)) == before
    assert client.post("/api/annotations", json=body, headers={"Origin": server.url}).status_code == 200


def _chunked_request(port: int, path: str, total_bytes: int) -> tuple[int, int, bytes]:
    """POST a JSON body of about ``total_bytes`` with Transfer-Encoding: chunked over a raw socket; stop
    sending once the server answers. Returns (bytes sent, status, response head)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                 f"Transfer-Encoding: chunked\r\n\r\n".encode())
    piece = b'{"example_id": 1, "labels": ["joy"], "annotator": "' + b"a" * 65_000
    sent, answered = 0, False
    try:
        while sent < total_bytes:
            chunk = piece if sent == 0 else b"a" * 65_536
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
        if not answered:
            sock.sendall(b'3\r\n"}\n\r\n0\r\n\r\n')
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            more = sock.recv(65_536)
            if not more:
                break
            data += more
    except ConnectionResetError:
        pass
    sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return sent, status, data


def test_a_chunked_50mb_body_is_refused_with_413_and_stores_nothing(solo):
    project, _, _, server, _ = solo
    before = len(_active(project))
    sent, status, head = _chunked_request(server.port, "/api/annotations", 50 * 1024 * 1024)
    assert status == 413, head[:300]
    assert sent < 20 * 1024 * 1024  # answered once the limit was passed, not after reading all 50 MB
    assert len(_active(project)) == before
    assert all(len(a["annotator"]) <= 100 for a in _active(project))
    assert httpx.get(f"{server.url}/api/health").status_code == 200  # still serving


def test_a_body_that_announces_more_than_it_sends_gets_408(solo):
    _, _, _, server, _ = solo
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: 1000\r\n\r\n{{\"texts\": [".encode())
        data = sock.recv(65_536)
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert time.monotonic() - started < 15  # the server's 1.5 s read timeout, not the client's patience


# -- no 500 from input -------------------------------------------------------------------------------
BAD_REQUESTS = [
    ("post", "/api/annotations", {"example_id": 2**63, "labels": ["joy"]}),
    ("post", "/api/annotations", {"example_id": -(2**63) - 1, "labels": ["joy"]}),
    ("post", "/api/annotations", {"example_id": True, "labels": ["joy"]}),
    ("post", "/api/annotations", {"example_id": "1", "labels": ["joy"]}),
    ("post", "/api/annotations", {"example_id": 1.5, "labels": ["joy"]}),
    ("post", "/api/annotations", {"example_id": 1, "labels": "joy"}),
    ("post", "/api/annotations", {"example_id": 1, "labels": ["joy"] * 5000}),
    ("post", "/api/annotations", {"example_id": 1, "labels": ["x" * 5000]}),
    ("post", "/api/annotations", {"example_id": 1, "labels": ["joy"], "annotator": "a" * 101}),
    ("post", "/api/annotations", {"example_id": 1, "labels": ["joy"], "origin": "o" * 5000}),
    ("post", "/api/annotations", {"example_id": 1, "labels": ["joy"], "annotator": 7}),
    ("post", "/api/annotations", {"example_id": 1, "labels": ["joy"], "annotator": "bell\u0007name"}),
    ("post", "/api/annotations", {"example_id": 1, "labels": ["joy\ud800"]}),
    ("post", "/api/annotations", [1, 2]),
    ("post", "/api/annotations/1e23/undo", {}),
    ("post", f"/api/annotations/{2**70}/undo", {}),
    ("post", "/api/annotations/-3/undo", {}),
    ("post", "/api/annotations/999999/undo", {}),
    ("post", "/api/predict", {"texts": ["fine", "lone \ud800 surrogate"]}),
    ("post", "/api/predict", {"texts": [1, 2]}),
    ("post", "/api/predict", {"texts": "not a list"}),
    ("post", "/api/predict", {"texts": ["hello"], "source": "no-such-source"}),
    ("post", "/api/train", {"mode": "no-such-mode"}),
    ("post", "/api/train", {"mode": 3}),
    ("get", "/api/jobs/" + "x" * 500, None),
    ("get", "/api/queue?limit=99999999999999999999999", None),
    ("get", "/api/queue?q=" + "x" * 5000, None),
    ("get", "/label?source=" + "x" * 5000, None),
    ("post", "/api/queue/release", {"example_id": True}),
    ("post", "/api/queue/release", {"example_id": 2**63}),
    ("post", "/api/queue/release", {}),
    ("post", "/api/adjudications", {"example_id": 1, "labels": ["joy\ud800"]}),
    ("post", "/api/adjudications", {"example_id": 1, "labels": ["joy"] * 5000}),
    ("post", "/api/adjudications", {"example_id": 999999, "labels": ["joy"]}),
    ("post", "/api/adjudications", {"example_id": 1, "labels": ["no-such-label"]}),
]


@pytest.mark.parametrize("method,url,body", BAD_REQUESTS, ids=[f"{m} {u[:40]} {str(b)[:40]}" for m, u, b in BAD_REQUESTS])
def test_every_bad_request_is_a_4xx_with_a_message(solo, method, url, body):
    project, app, client, _, _ = solo
    before = len(_active(project))
    if body is None:
        r = getattr(client, method)(url)
    else:  # json.dumps keeps a lone surrogate as the JSON escape "\ud800", as a client would send it
        r = client.request(method.upper(), url, content=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert len(_active(project)) == before
    assert app.state.jobs.jobs == {}


def test_the_bad_inputs_named_in_the_issue_get_their_own_message(solo):
    _, _, client, _, _ = solo
    r = client.post("/api/predict", json={"texts": ["hello"], "source": "nope"})
    assert r.status_code == 422 and "goemotions-sample" in r.json()["detail"]
    r = client.post("/api/train", json={"mode": "turbo"})
    assert r.status_code == 422 and all(m in r.json()["detail"] for m in ("supervised", "few-shot", "auto"))
    r = client.post("/api/annotations", json={"example_id": True, "labels": ["joy"]})
    assert r.status_code == 422 and "example_id" in r.json()["detail"]
    r = client.post("/api/predict", content=b'{"texts": ["a \\ud800 b"]}', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "surrogate" in r.json()["detail"]


# -- accounts ----------------------------------------------------------------------------------------
def test_with_users_every_request_needs_a_token_or_a_session(team):
    project, app, users = team
    bare = _client(app)
    for url in ("/api/health", "/api/queue", "/label", "/model", "/docs", "/openapi.json", "/api/me"):
        assert bare.get(url).status_code == 401, url
    sign_in = bare.get("/label", headers={"Accept": "text/html"})
    assert sign_in.status_code == 401 and 'action="/login"' in sign_in.text
    assert sign_in.headers["x-frame-options"] == "DENY"  # the guard's own answers carry the page headers too
    assert bare.post("/api/predict", json={"texts": ["hi"]}).status_code == 401
    assert _client(app, "not-a-token").get("/api/health").status_code == 401
    alice = _client(app, users["alice"]["token"])
    assert alice.get("/api/me").json() == {"name": "alice", "role": "annotator", "via": "bearer", "csrf_token": None}
    assert alice.post("/api/predict", json={"texts": ["thank you"]}).status_code == 200  # a program: no CSRF
    owner = _client(app, ADMIN_TOKEN)
    assert owner.get("/api/me").json()["role"] == "admin"  # serve --token stays an admin token
    # the token is stored only as its sha256
    stored = {u["name"]: u["token_sha256"] for u in project.store.users()}
    token = users["alice"]["token"]
    assert stored["alice"] == hashlib.sha256(token.encode()).hexdigest()
    # the files, read by another process: closing a file of the store in this one would drop SQLite's locks
    files = [str(p) for p in project.path.glob("tagwise.db*")]
    found = subprocess.run([sys.executable, "-c", "import sys; print(any(sys.argv[1].encode() in open(f, 'rb').read() "
                            "for f in sys.argv[2:]))", token, *files], capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "False", found.stderr


def test_login_link_sets_a_strict_httponly_session_and_a_csrf_token(team):
    project, app, users = team
    browser = _client(app)
    r = browser.get("/login", params={"token": users["bob"]["token"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/label"
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    session, csrf_cookie = cookies["tagwise_session_8765"], cookies["tagwise_csrf_8765"]
    assert "httponly" in session and "samesite=strict" in session
    assert "httponly" not in csrf_cookie and "samesite=strict" in csrf_cookie
    assert browser.get("/label").status_code == 200
    csrf = browser.cookies.get("tagwise_csrf_8765")
    sid = _pool(project, 1)[0]
    before = len(_active(project))
    body = {"example_id": sid, "labels": ["joy"]}
    assert browser.post("/api/annotations", json=body).status_code == 403  # the cookie alone is not enough
    assert browser.post("/api/annotations", json=body, headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert len(_active(project)) == before
    r = browser.post("/api/annotations", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert _active(project)[-1]["annotator"] == "bob"
    # POST /api/login gives the csrf_token in its answer
    other = _client(app)
    r = other.post("/api/login", json={"token": users["rita"]["token"]})
    assert r.status_code == 200 and r.json()["name"] == "rita" and r.json()["role"] == "reviewer"
    assert other.get("/api/me").json()["csrf_token"] == r.json()["csrf_token"]
    assert other.post("/api/login", json={"token": "wrong"}).status_code == 401
    assert _client(app).get("/login", params={"token": "wrong"}).status_code == 401
    # logout ends the session
    assert other.post("/api/logout", json={}, headers={"X-CSRF-Token": r.json()["csrf_token"]}).status_code == 200
    assert other.get("/api/me").status_code == 401
    # a link followed from another site (a mail client) lands on a page of ours that moves on to /label,
    # so the Strict cookie is sent (a redirect would stay cross-site)
    r = _client(app).get("/login", params={"token": users["bob"]["token"]}, follow_redirects=False,
                         headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 200 and "url=/label" in r.text and "tagwise_session_8765" in r.headers["set-cookie"]
    # the admin --token logs a browser in too
    owner = _client(app)
    assert owner.get("/login", params={"token": ADMIN_TOKEN}, follow_redirects=False).status_code == 303
    assert owner.get("/api/me").json()["role"] == "admin"


def test_an_annotation_is_stored_under_the_requester_who_cannot_claim_another_name(team):
    project, app, users = team
    alice = _client(app, users["alice"]["token"])
    sid = _pool(project, 3)[2]
    before = len(_active(project))
    r = alice.post("/api/annotations", json={"example_id": sid, "labels": ["joy"], "annotator": "bob"})
    assert r.status_code == 403 and "alice" in r.json()["detail"]
    assert len(_active(project)) == before
    for claimed in (None, "alice"):
        body = {"example_id": sid, "labels": ["joy"], **({"annotator": claimed} if claimed else {})}
        assert alice.post("/api/annotations", json=body).status_code == 200
    assert [a["annotator"] for a in _active(project)[-2:]] == ["alice", "alice"]
    # the --token admin (a program importing labels) may name the annotator; by default it is --annotator
    owner = _client(app, ADMIN_TOKEN)
    owner.post("/api/annotations", json={"example_id": sid, "labels": ["joy"]})
    owner.post("/api/annotations", json={"example_id": sid, "labels": ["joy"], "annotator": "import-2024"})
    assert [a["annotator"] for a in _active(project)[-2:]] == ["owner", "import-2024"]


def test_roles_annotators_label_reviewers_review_admins_retrain_and_manage_users(team):
    project, app, users = team
    alice, bob = _client(app, users["alice"]["token"]), _client(app, users["bob"]["token"])
    rita, ada = _client(app, users["rita"]["token"]), _client(app, users["ada"]["token"])
    sid = _pool(project, 4)[3]
    mine = alice.post("/api/annotations", json={"example_id": sid, "labels": ["joy"]}).json()["annotation_id"]
    theirs = bob.post("/api/annotations", json={"example_id": sid, "labels": ["anger"]}).json()["annotation_id"]
    for client, allowed in ((alice, False), (rita, True), (ada, True)):
        assert (client.get("/review").status_code == 200) is allowed
        assert (client.get("/api/queue", params={"kind": "review"}).status_code == 200) is allowed
        assert (client.get("/team").status_code == 200) is allowed
        assert (client.get("/api/team").status_code == 200) is allowed
        # everyone's annotations for a reviewer; an annotator gets only their own (no one else's labels)
        seen = {a["annotator"] for a in client.get("/api/annotations").json()["annotations"]}
        assert seen >= {"alice", "bob"} if allowed else seen == {"alice"}
    # a decision on a dispute is a reviewer's: not an annotator's, not through /api/annotations either
    n = len(_active(project))
    assert alice.post("/api/adjudications", json={"example_id": sid, "labels": []}).status_code == 403
    assert alice.post("/api/annotations", json={"example_id": sid, "labels": [],
                                                "origin": "adjudication"}).status_code == 422
    assert len(_active(project)) == n
    assert alice.get("/api/queue", params={"kind": "label"}).status_code == 200
    assert alice.post(f"/api/annotations/{theirs}/undo", json={}).status_code == 403  # not hers
    assert alice.post(f"/api/annotations/{mine}/undo", json={}).status_code == 200
    assert rita.post(f"/api/annotations/{theirs}/undo", json={}).status_code == 200  # a reviewer may
    # retrain: admins only (a bad mode proves the admin passed the role check without starting a job)
    assert alice.post("/api/train", json={}).status_code == 403
    assert rita.post("/api/train", json={}).status_code == 403
    assert ada.post("/api/train", json={"mode": "no-such"}).status_code == 422
    assert app.state.jobs.jobs == {}
    # users: admins only
    assert rita.get("/api/users").status_code == 403
    assert rita.post("/api/users", json={"name": "eve", "role": "admin"}).status_code == 403
    made = ada.post("/api/users", json={"name": "carol", "role": "annotator"}).json()
    assert made["login_url"].endswith(f"/login?token={made['token']}")
    assert _client(app, made["token"]).get("/api/me").json()["name"] == "carol"
    assert "carol" in [u["name"] for u in ada.get("/api/users").json()["users"]]
    assert ada.request("DELETE", "/api/users/carol", headers={"Content-Type": "application/json"}).status_code == 200
    assert _client(app, made["token"]).get("/api/me").status_code == 401


def test_a_removed_user_is_out_token_and_session(team):
    project, app, _ = team
    dan = add_user(project, "dan", "annotator")
    time.sleep(1.2)  # the server re-reads its users at most once a second
    program, browser = _client(app, dan["token"]), _client(app)
    browser.post("/api/login", json={"token": dan["token"]})
    assert program.get("/api/me").status_code == 200 and browser.get("/api/me").status_code == 200
    remove_user(project, "dan")
    time.sleep(1.2)
    assert program.get("/api/me").status_code == 401 and browser.get("/api/me").status_code == 401


def test_a_project_without_users_works_from_loopback_as_before(solo, tmp_path):
    project, app, client, server, _ = solo
    assert client.get("/label").status_code == 200 and client.get("/review").status_code == 200
    sid = _pool(project, 5)[4]
    r = httpx.post(f"{server.url}/api/annotations", json={"example_id": sid, "labels": ["joy"], "annotator": "ann"})
    assert r.status_code == 200
    assert _active(project)[-1]["annotator"] == "ann"
    r = httpx.post(f"{server.url}/api/annotations", json={"example_id": sid, "labels": ["joy"]})
    assert _active(project)[-1]["annotator"] == "web"  # serve --annotator's default
    assert httpx.post(f"{server.url}/api/annotations/{r.json()['annotation_id']}/undo", json={}).status_code == 200
    assert httpx.post(f"{server.url}/api/predict", json={"texts": ["thank you"]}).status_code == 200
    # bound beyond loopback, a project without users answers nobody anonymously
    wide = create_app(project.path, host="0.0.0.0")
    try:
        assert _client(wide).get("/api/health", headers={"Host": "127.0.0.1"}).status_code == 401
    finally:
        wide.state.predictor.stop()


def test_users_cli_contract(tmp_path, team):
    project, app, _ = team
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tagwise", "users", *args], capture_output=True, text=True,
                              env=env, timeout=120)

    r = cli("add", str(project.path), "erin", "--role", "reviewer", "--json")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert set(made) == {"name", "role", "token", "login_url"} and made["role"] == "reviewer"
    assert made["login_url"] == f"http://127.0.0.1:8765/login?token={made['token']}"
    time.sleep(1.2)
    assert _client(app, made["token"]).get("/api/me").json()["role"] == "reviewer"
    r = cli("add", str(project.path), "fay", "--base-url", "https://labels.example.org/")
    assert r.returncode == 0 and "https://labels.example.org/login?token=" in r.stdout
    assert cli("add", str(project.path), "erin").returncode == 2  # a name is taken once
    assert cli("add", str(project.path), "x", "--role", "boss").returncode == 2
    listed = cli("list", str(project.path)).stdout
    assert "erin" in listed and "reviewer" in listed and made["token"] not in listed
    assert cli("remove", str(project.path), "erin").returncode == 0
    assert cli("remove", str(project.path), "erin").returncode == 2
    time.sleep(1.2)
    assert _client(app, made["token"]).get("/api/me").status_code == 401


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_docs_work_offline(solo):
    """/docs loads Swagger UI from this server only (the swagger-ui-bundle package), under the page CSP."""
    sync_api = pytest.importorskip("playwright.sync_api")
    _, _, _, server, _ = solo
    elsewhere = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page()

        def route(r):
            if r.request.url.startswith(server.url):
                r.continue_()
            else:
                elsewhere.append(r.request.url)
                r.abort()
        page.route("**/*", route)
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        title = page.inner_text(".swagger-ui .info .title")
        operations = page.locator(".opblock").count()
        browser.close()
    assert "tagwise" in title and operations >= 8
    assert elsewhere == []


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_a_signed_in_browser_labels_through_its_session(team):
    """In chromium, with no Authorization header: /label shows the sign-in form; the token signs in
    (HttpOnly session cookie the page's script cannot read); a label saved from the keyboard goes through
    the page's CSRF header and is stored under the signed-in user."""
    sync_api = pytest.importorskip("playwright.sync_api")
    project, app, users = team
    port = _free_port()
    server = Server(app, port)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            context = browser.new_context(bypass_csp=True)  # the page's CSP forbids eval; wait_for_function needs it
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/label")
            page.fill("input[name=token]", users["bob"]["token"])
            page.click("form button")
            page.wait_for_selector("article.item:not([hidden])")
            assert page.url == f"{server.url}/label"
            cookies = {c["name"]: c for c in context.cookies()}
            session = cookies[f"tagwise_session_{port}"]
            assert session["httpOnly"] and session["sameSite"] == "Strict"
            assert f"tagwise_session_{port}" not in page.evaluate("document.cookie")
            example = int(page.get_attribute("article.item:not([hidden])", "data-example-id"))
            page.keyboard.press("1")
            page.keyboard.press("Enter")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('saved')")
            status = page.inner_text("#status")
            browser.close()
    finally:
        server.stop()
    last = _active(project)[-1]
    assert (last["example"], last["annotator"]) == (example, "bob"), status


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_docs_try_it_out_works_in_a_session(team):
    """/docs' "Try it out" sends the session's CSRF token: a signed-in user can call a POST route from it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    project, app, users = team
    port = _free_port()
    server = Server(app, port)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/login?token={users['alice']['token']}")
            page.goto(f"{server.url}/docs")
            block = page.locator(".opblock-post", has=page.locator("[data-path='/api/predict']"))
            block.locator(".opblock-summary").click()
            block.locator("button.try-out__btn").click()
            block.locator("textarea.body-param__text").fill('{"texts": ["thank you so much"]}')
            block.locator("button.execute").click()
            status = block.locator(".live-responses-table tr.response .response-col_status").first
            status.wait_for()
            code, body = status.inner_text().strip(), block.locator(".live-responses-table .microlight").first.inner_text()
            browser.close()
    finally:
        server.stop()
    assert code == "200" and "predictions" in body, body[:300]


def test_the_team_routes_pass_the_same_guard(team):
    """The writes the team page and the label queue added (release, adjudication) need the session's CSRF
    token, this server's Origin and JSON, take strict capped fields, and are a reviewer's where they decide."""
    project, app, users = team
    rita = _client(app)
    assert rita.get("/login", params={"token": users["rita"]["token"]}, follow_redirects=False).status_code == 303
    csrf = rita.cookies.get("tagwise_csrf_8765")
    sid = _pool(project, 5)[4]
    before = len(_active(project))
    for path, body in (("/api/queue/release", {"example_id": sid}),
                       ("/api/adjudications", {"example_id": sid, "labels": ["joy"]})):
        assert rita.post(path, json=body).status_code == 403, path  # the cookie alone
        assert rita.post(path, json=body, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
                         ).status_code == 403, path
        r = rita.post(path, content=json.dumps(body).encode(), headers={"X-CSRF-Token": csrf,
                                                                         "Content-Type": "text/plain"})
        assert r.status_code == 415, path
        for bad in ({**body, "example_id": True}, {**body, "example_id": 2**63}, {**body, "example_id": "1"}):
            assert rita.post(path, json=bad, headers={"X-CSRF-Token": csrf}).status_code == 422, (path, bad)
        assert len(_active(project)) == before
    r = rita.post("/api/adjudications", json={"example_id": sid, "labels": ["x" * 5000]}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    r = rita.post("/api/adjudications", json={"example_id": sid, "labels": ["joy"]}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["annotator"] == "rita" and r.json()["origin"] == "adjudication"
    assert _active(project)[-1]["annotator"] == "rita" and _active(project)[-1]["origin"] == "adjudication"
    assert rita.post("/api/queue/release", json={"example_id": sid}, headers={"X-CSRF-Token": csrf}).status_code == 200


def test_pages_say_who_is_signed_in_and_the_sign_in_page_is_a_template(team):
    project, app, users = team
    browser = _client(app)
    page = browser.get("/login", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "<title>Sign in · tagwise</title>" in page.text
    assert 'name="token"' in page.text and "/static/app.js" not in page.text  # nothing but the form
    denied = browser.get("/label", headers={"Accept": "text/html"})
    assert denied.status_code == 401 and "<title>Sign in · tagwise</title>" in denied.text
    browser.get("/login", params={"token": users["bob"]["token"]})
    page = browser.get("/label").text
    assert "signed in as <b>bob</b> (annotator)" in page and 'id="sign-out"' in page
    assert 'href="/team"' not in page  # an annotator's menu has no team or review page
    # a sign-in moves on to the page asked for, only ever one of ours
    assert 'name="next" value="/team"' in _client(app).get("/team", headers={"Accept": "text/html"}).text
    for asked, to in (("/team", "/team"), ("https://evil.example/", "/label"), ("//evil.example", "/label")):
        r = _client(app).get("/login", params={"token": users["rita"]["token"], "next": asked}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == to, asked
    # a program's Bearer token is not a browser session: nothing to sign out of
    assert 'id="sign-out"' not in _client(app, users["rita"]["token"]).get("/team").text
