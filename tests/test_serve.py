"""`tagwise serve` HTTP API (issue 17): the contract, micro-batching through the fitted head's own
predict, request limits, the token, escaping in the pages, retrain jobs, and the server writing while
a CLI command runs on the same project."""
import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_data import make_project
from tagwise.serve.app import create_app, run_server
from tagwise.types import TagwiseError
from tagwise.workflows.audit import audit
from tagwise.workflows.models import load_project_model
from tagwise.workflows.predict import predict_texts
from tagwise.workflows.train import train

REPO = Path(__file__).resolve().parents[1]
NASTY = ['<script>alert("x")</script> I love it', '"><img src=x onerror=alert(1)> so sad']
TOKEN = "t0ken-for-tests"
BASE = "http://127.0.0.1:8765"  # the Host a loopback-bound server answers (a TestClient's default "testserver" is refused)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    rows = [f"{NASTY[0]}\t17\tnasty1", f"{NASTY[1]}\t25\tnasty2"]
    # a pool the first batch (50) covers whole, so the nasty rows are always queued
    project = make_project(root, n_train=200, n_pool=40, n_dev=60, n_test=60, extra_rows=rows)
    train(project, mode="supervised", progress=False)
    audit(project, root / "issues.jsonl", progress=False)
    app = create_app(project.path, token=TOKEN)
    # the label queue's first batch, prepared in the background as `tagwise serve` does at start
    assert app.state.label_batches.start() and app.state.label_batches.wait(600)
    client = TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {TOKEN}"})
    yield project, app, client
    app.state.predictor.stop()
    app.state.label_batches.stop()


def test_health_and_predict_go_through_the_fitted_head(served):
    project, app, client = served
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["examples"] == len(project.examples())
    texts = ["thank you so much for this", "I am so angry at them", "what does this even mean?"]
    r = client.post("/api/predict", json={"texts": texts})
    assert r.status_code == 200
    body = r.json()
    loaded = load_project_model(project)
    assert body["model"] == loaded.name == health["model"]
    X = project.embed_texts(texts, loaded.encoder, progress=False)[0]
    Z = loaded.head.predict(X, texts=texts)
    P = loaded.head.predict_proba(X, texts=texts)
    for i, pred in enumerate(body["predictions"]):
        assert pred["labels"] == [loaded.labels[k] for k in np.flatnonzero(Z[i])]
        assert np.allclose([pred["scores"][n] for n in loaded.labels], P[i], atol=1e-5)
    # the same answers as `tagwise predict` (workflows.predict.predict_texts)
    cli = predict_texts(project, texts)["predictions"]
    assert [p["labels"] for p in cli] == [p["labels"] for p in body["predictions"]]


def test_concurrent_requests_share_encoder_calls(served):
    _, app, client = served
    predictor = app.state.predictor
    before_batches, before_requests = predictor.batches, predictor.requests
    texts = [f"request number {i} makes me happy" for i in range(48)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: client.post("/api/predict", json={"texts": [t]}).json(), texts))
    assert all(len(r["predictions"]) == 1 for r in results)
    assert predictor.requests - before_requests == 48
    assert predictor.batches - before_batches < 48  # some requests were answered by a shared call


def test_request_limits_give_413_with_a_clear_message(served):
    _, _, client = served
    r = client.post("/api/predict", json={"texts": ["hello"] * 1000})
    assert r.status_code == 413 and "limit is 256" in r.json()["detail"]
    r = client.post("/api/predict", json={"texts": ["a" * 20_000]})
    assert r.status_code == 413 and "characters" in r.json()["detail"]
    r = client.post("/api/predict", content=b'{"texts": ["' + b"a" * (5 * 1024 * 1024) + b'"]}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/api/health").status_code == 200  # still serving


def test_every_request_needs_the_token(served):
    project, app, _ = served
    bare = TestClient(app, base_url=BASE)
    for method, url in (("get", "/api/health"), ("get", "/label"), ("get", "/docs"), ("get", "/openapi.json"),
                        ("post", "/api/predict"), ("get", "/static/app.js")):
        assert getattr(bare, method)(url).status_code == 401, url
    assert bare.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    bare.cookies.set("token", TOKEN)
    assert bare.get("/api/health").status_code == 401  # no cookie auth
    with pytest.raises(TagwiseError, match="--token"):
        run_server(project.path, host="0.0.0.0", port=1)


def test_pages_escape_texts(served):
    _, _, client = served
    for url in ("/label?q=nasty", "/label?q=onerror", "/label?q=script", "/review", "/model", "/api/docs-nothing"):
        page = client.get(url).text
        assert "<script>alert" not in page and "<img src=x" not in page
    label = client.get("/label", params={"q": "alert"}).text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in label or "&lt;img src=x onerror" in label
    assert client.get("/label").headers["content-security-policy"].startswith("default-src 'self'")


def test_queues_filters_and_annotations(served):
    project, _, client = served
    q = client.get("/api/queue", params={"kind": "label", "limit": 5}).json()
    assert 0 < len(q["items"]) <= 5
    item = q["items"][0]
    assert {"example_id", "text", "source", "labels", "scores"} <= set(item)
    assert item["origin"].startswith("suggest:")
    assert client.get("/api/queue", params={"kind": "label", "q": "zzzz-no-such-text"}).json()["items"] == []
    same = client.get("/api/queue", params={"kind": "label", "q": item["text"][:12]}).json()["items"]
    assert item["example_id"] in [x["example_id"] for x in same]
    review = client.get("/api/queue", params={"kind": "review", "limit": 3}).json()["items"]
    quality = [x["label_quality"] for x in review]
    assert quality == sorted(quality) and all("suggested_labels" in x for x in review)
    r = client.post("/api/annotations", json={"example_id": item["example_id"], "labels": ["joy"],
                                               "annotator": "ann", "origin": item["origin"]})
    aid = r.json()["annotation_id"]
    after = client.get("/api/queue", params={"kind": "label", "limit": 50}).json()["items"]
    assert item["example_id"] not in [x["example_id"] for x in after]
    assert client.post("/api/annotations", json={"example_id": item["example_id"], "labels": ["nope"]}).status_code == 400
    assert client.post(f"/api/annotations/{aid}/undo", json={}).json()["undone_at"]
    back = client.get("/api/queue", params={"kind": "label", "limit": 50}).json()["items"]
    assert item["example_id"] in [x["example_id"] for x in back]


def test_retrain_job_reports_before_after_and_predict_reloads(served):
    project, app, client = served
    old = client.get("/api/health").json()["model"]
    pool = project.examples(split="unlabeled").ids[:5].tolist()
    for sid in pool:
        client.post("/api/annotations", json={"example_id": sid, "labels": ["gratitude"], "annotator": "ann"})
    job_id = client.post("/api/train", json={"mode": "supervised"}).json()["job_id"]
    for _ in range(240):
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.25)
    assert job["state"] == "done", job
    result = job["result"]
    assert result["previous_model"] == old and result["model"] != old
    assert set(result["before"]) == set(result["after"]) == {"dev", "test"}
    assert result["n_examples"] == len(project.examples(split="train", labeled=True))
    assert client.post("/api/predict", json={"texts": ["thanks a lot"]}).json()["model"] == result["model"]
    assert client.get("/api/jobs/nope").status_code == 404


def test_server_writes_while_cli_commands_run(served, tmp_path):
    """The server keeps accepting annotations while `tagwise labels import` (a writer) and `tagwise audit`
    run on the same project: no "database is locked", no lost write."""
    import json

    project, _, client = served
    train = project.examples(split="train", labeled=True)
    train_ids = train.ids.tolist()
    # people confirm the labels the rows already have: the data stays as varied as it was
    (tmp_path / "many.jsonl").write_text("".join(json.dumps({"id": sid, "labels": labels}) + "\n"
                                                 for sid, labels in zip(train_ids[:150], train.labels)))
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    before = len(project.store.annotations(include_undone=True))
    procs = [subprocess.Popen([sys.executable, "-m", "tagwise", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for args in (["audit", str(project.path), "--out", str(tmp_path / "i.csv"), "--quiet"],
                          ["labels", str(project.path), "import", str(tmp_path / "many.jsonl")])]
    codes = []
    while any(p.poll() is None for p in procs) or len(codes) < 20:
        k = len(codes) % len(train_ids)
        codes.append(client.post("/api/annotations", json={"example_id": train_ids[k], "labels": train.labels[k],
                                                           "annotator": "w"}).status_code)
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "locked" not in err, err
    assert set(codes) == {200}
    assert len(project.store.annotations(include_undone=True)) == before + len(codes) + 150


def _model_page_project(root: Path):
    project = make_project(root, n_train=160, n_pool=20, n_dev=60, n_test=60, extra_rows=[f"{NASTY[0]}\t17\tn1"])
    train(project, mode="supervised", progress=False)
    app = create_app(project.path, token=TOKEN)
    return project, app, TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {TOKEN}"})


def _shown_run(page: str):
    import re

    found = re.search(r"id='evaluation-run'>Run <code>([^<]+)</code>[^<]*<b>([^<]+)</b>", page)
    return found and found.groups()


def test_model_page_shows_the_health_table_train_saved(tmp_path):
    from tagwise.workflows.health import project_health

    project, app, client = _model_page_project(tmp_path)
    try:
        page = client.get("/model").text
        health = project_health(project)
        assert 'id="health"' in page and health["model"] in page and "<td>goemotions-sample</td>" in page
        assert all(w["kind"] in page for w in health["warnings"])
        for label, c in health["before"]["sources"]["goemotions-sample"]["labels"].items():
            shown = label if c.get("claimed", True) else label + "*"
            assert f"<td>{shown}</td><td>{c['positives']}</td><td>{c['negatives']}</td>" in page
        macro = health["after"]["sources"]["goemotions-sample"]["macro_f1"]
        assert f"out-of-fold macro-F1 {macro:.3f}" in page and "<script>alert" not in page
    finally:
        app.state.predictor.stop()
        project.close()


def test_model_page_and_report_show_the_current_models_own_evaluation(tmp_path):
    """The newest evaluate run of the current model on test in each source's own mode; not a later
    --as-source / --agnostic run, not an older model's run; dev when test has none, saying so."""
    import json

    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.report import write_report

    project, app, client = _model_page_project(tmp_path)
    try:
        old = evaluate(project, split="test")
        train(project, mode="supervised", params={"C": 0.5}, progress=False)  # a newer current model
        page = client.get("/model").text
        assert _shown_run(page) is None and "No evaluation of the current model" in page
        dev = evaluate(project, split="dev")
        assert _shown_run(client.get("/model").text)[1] == "dev"
        test = evaluate(project, split="test")
        evaluate(project, split="test", as_source="goemotions-sample")
        evaluate(project, split="test", agnostic=True)
        evaluate(project, split="dev")
        (plain,) = [r.name for r in project.runs("evaluate") if json.loads((r / "params.json").read_text())
                    in ({"kind": "evaluate", "split": "test", "model": test["model"], "source": None,
                         "as_source": None, "agnostic": False},)]
        page = client.get("/model").text
        run, split = _shown_run(page)
        assert split == "test" and run == plain  # the plain test run, not the three that came after it
        assert f"{test['macro_f1']:.3f}" in page and dev["model"] == test["model"] != old["model"]
        assert _shown_run(write_report(project).read_text(encoding="utf-8")) == (run, "test")
    finally:
        app.state.predictor.stop()
        project.close()


def test_predict_with_a_risk_promise_and_its_4xx(served, tmp_path):
    """`risk` on /api/predict: the promised sets (scores at or above the source's cut), `uncertain`,
    `abstain` and the promise; a bad risk string is a 422, a promise the calibration rows cannot
    support, or a model with nothing to calibrate on, a 409, each with the fix."""
    project, app, client = served
    texts = ["thank you so much for this", "I am so angry at them", "what does this even mean?"]
    body = client.post("/api/predict", json={"texts": texts, "risk": "fnr=0.2"}).json()
    promise = body["promise"]
    assert promise["risk"] == "fnr" and promise["target"] == 0.2 and "dev" in promise["calibration"]
    cut = promise["pooled"]["lambda"]
    for pred in body["predictions"]:
        assert {"labels", "scores", "uncertain", "abstain"} <= set(pred) and isinstance(pred["abstain"], bool)
        assert sorted(pred["labels"]) == sorted(k for k, p in pred["scores"].items() if p >= cut - 1e-6)
    plain = client.post("/api/predict", json={"texts": texts}).json()
    assert "promise" not in plain and set(plain["predictions"][0]) == {"labels", "scores"}
    tight = client.post("/api/predict", json={"texts": texts, "risk": "precision=0.6", "confidence": 0.8}).json()
    assert tight["promise"]["confidence"] == 0.8 and tight["promise"]["controlled"] == "fdr"

    loose = client.post("/api/predict", json={"texts": texts, "risk": "fnr=0.2", "row_violation": 0.3}).json()
    assert loose["promise"]["abstain"]["row_violation"] == 0.3 and loose["promise"]["pooled"] == promise["pooled"]
    for bad in ({"risk": "recall=0.9"}, {"risk": "fnr=1.5"}, {"risk": "fnr=0.1", "confidence": 2.0},
                {"confidence": 0.9}, {"risk": "fnr=0.1", "row_violation": 0}):
        r = client.post("/api/predict", json={"texts": texts, **bad})
        assert r.status_code == 422 and ("NAME=LEVEL" in r.text or "confidence" in r.text
                                         or "row_violation" in r.text), (bad, r.text)
    r = client.post("/api/predict", json={"texts": texts, "risk": "fnr=0.005"})  # 60 dev rows cannot promise it
    assert r.status_code == 409 and "calibration rows" in r.json()["detail"]

    bare = make_project(tmp_path / "bare", n_train=120, n_pool=20, n_dev=0, n_test=20)
    train(bare, mode="zero-shot", progress=False)  # keeps no out-of-fold scores, and there is no dev split
    bare_app = create_app(bare.path, token=TOKEN)
    try:
        c = TestClient(bare_app, base_url=BASE, headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.post("/api/predict", json={"texts": texts, "risk": "fnr=0.1"})
        assert r.status_code == 409 and "nothing to calibrate" in r.json()["detail"]
        assert c.post("/api/predict", json={"texts": texts}).status_code == 200
    finally:
        bare_app.state.predictor.stop()
        bare_app.state.label_batches.stop()
