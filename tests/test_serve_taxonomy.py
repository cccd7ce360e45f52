"""Taxonomy changes in the web app (issue 32): the admins' taxonomy page and its JSON routes (roles, CSRF,
bad requests), the label page's tree, the split's examples first in the label queue (also those a
person labeled before the split), the served model under the new names; and in chromium, an admin
splits a label and an annotator labels the new children in the tree.

A small real project: the bundled GoEmotions sample (flat taxonomy) with the `hashing:256` encoder."""
import re
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serve_data import Server, make_project
from tagwise.project import Project
from tagwise.serve.app import create_app
from tagwise.workflows.labels import annotate
from tagwise.workflows.train import train
from tagwise.workflows.users import add_user

BASE = "http://127.0.0.1:8765"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A trained project with an admin and an annotator; each test works on a fresh copy."""
    root = tmp_path_factory.mktemp("serve-tax")
    project = make_project(root, n_train=120, n_pool=30, n_dev=20, n_test=20)
    train(project, mode="supervised", progress=False)
    users = {name: add_user(project, name, role) for name, role in (("ada", "admin"), ("ann", "annotator"))}
    project.close()
    return root / "project", users


@pytest.fixture()
def served(built, tmp_path):
    import shutil

    src, users = built
    shutil.copytree(src, tmp_path / "project")
    app = create_app(tmp_path / "project", port=8765)
    yield Project.open(tmp_path / "project"), app, users
    app.state.predictor.stop()
    app.state.label_batches.stop()


def _client(app, users, name) -> TestClient:
    return TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {users[name]['token']}"})


def test_admins_change_the_taxonomy_through_json_routes_and_undo_it(served):
    project, app, users = served
    admin, annotator = _client(app, users, "ada"), _client(app, users, "ann")
    dump = project.store.dump_label_tables()
    info = admin.get("/api/taxonomy").json()
    row = {r["name"]: r for r in info["labels"]}
    assert row["joy"]["positives"] > 0 and row["joy"]["known"] == info["n_labeled"]

    # annotators may not change (or read) the label set; a bad request is a 4xx naming the problem
    assert annotator.post("/api/taxonomy/rename", json={"old": "joy", "new": "glee"}).status_code == 403
    assert annotator.get("/taxonomy").status_code == 403 and annotator.get("/api/taxonomy").status_code == 403
    r = admin.post("/api/taxonomy/rename", json={"old": "nope", "new": "x"})
    assert r.status_code == 400 and "no label 'nope'" in r.json()["detail"]
    r = admin.post("/api/taxonomy/split", json={"label": "joy", "into": ["a"], "keep_parent": "yes"})
    assert r.status_code == 422 and "keep_parent" in r.json()["detail"]
    assert admin.post("/api/taxonomy/add", content=b'{"name": "x"}',
                      headers={"Content-Type": "text/plain"}).status_code == 415
    # a browser session must send its CSRF token with a change
    browser = TestClient(app, base_url=BASE)
    csrf = browser.post("/api/login", json={"token": users["ada"]["token"]}).json()["csrf_token"]
    r = browser.post("/api/taxonomy/retire", json={"name": "joy"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert project.store.dump_label_tables() == dump           # none of those changed anything
    r = browser.post("/api/taxonomy/add", json={"name": "awe0"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert browser.post("/api/taxonomy/undo", json={}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert project.store.dump_label_tables() == dump

    # the served model follows a rename at once (its label map is rewritten; the predictor reloads it)
    before = admin.post("/api/predict", json={"texts": ["thank you so much!"]}).json()["predictions"][0]
    r = admin.post("/api/taxonomy/rename", json={"old": "gratitude", "new": "thanks"})
    assert r.status_code == 200 and r.json()["train_suggested"]
    after = admin.post("/api/predict", json={"texts": ["thank you so much!"]}).json()["predictions"][0]
    assert after["scores"]["thanks"] == before["scores"]["gratitude"] and "gratitude" not in after["scores"]
    r = admin.post("/api/taxonomy/merge", json={"labels": ["anger", "annoyance"], "into": "irritation"})
    assert r.status_code == 200, r.text
    r = admin.post("/api/taxonomy/add", json={"name": "awe", "parent": "surprise", "description": "wonder"})
    assert r.status_code == 200, r.text
    # until retrained, the served model scores the added label zero-shot
    scores = admin.post("/api/predict", json={"texts": ["what a wonder"]}).json()["predictions"][0]["scores"]
    assert 0 < scores["awe"] < 1 and "irritation" in scores
    page = admin.get("/taxonomy").text
    assert 'data-label="irritation"' in page and 'data-label="awe"' in page and "merge" in page
    hist = [h for h in admin.get("/api/taxonomy").json()["history"] if not h["undone_at"]]
    assert [h["kind"] for h in hist] == ["add", "merge", "rename"]       # newest first
    r = admin.post("/api/taxonomy/undo", json={"to": hist[-1]["id"]})
    assert r.status_code == 200 and len(r.json()["undone"]) == 3
    assert project.store.dump_label_tables() == dump
    assert "awe" not in admin.post("/api/predict", json={"texts": ["what a wonder"]}).json()["predictions"][0]["scores"]
    assert admin.post("/api/taxonomy/undo", json={}).status_code == 400   # nothing left to undo


def test_a_split_queues_the_parents_positives_first_and_the_label_page_is_a_tree(served):
    project, app, users = served
    admin, annotator = _client(app, users, "ada"), _client(app, users, "ann")
    ex = project.examples(labeled=True)
    positives = {int(i) for i, lab in zip(ex.ids, ex.labels) if "joy" in lab}
    # a person labeled one of joy's examples before the split: it comes back for the new labels
    earlier = min(positives)
    annotate(project, earlier, ["joy"], "ann", origin="web")
    from tagwise.workflows.queue import label_queue

    label_queue(project, user="someone", limit=1)          # an ordinary batch (suggested inline) comes first
    r = admin.post("/api/taxonomy/split", json={"label": "joy", "into": ["delight", "contentment"],
                                                "keep_parent": True})
    assert r.status_code == 200 and r.json()["result"]["n_queued"] == len(positives)
    q = annotator.get("/api/queue", params={"limit": 500}).json()
    split_items = [it for it in q["items"] if it["reason"] == "split:joy"]
    assert {it["example_id"] for it in split_items} == positives
    assert q["items"][:len(split_items)] == split_items                     # before the older batch
    page = annotator.get("/label").text
    # the children sit in the parent's subtree; choosing one chooses joy (data-ancestors)
    joy = re.search(r'<li data-label="joy">(.*?)</li>\s*</ul></li>', page, re.S)
    assert joy and 'data-label="delight"' in joy.group(1) and 'data-label="contentment"' in joy.group(1)
    assert "data-ancestors='[\"joy\"]'" in page
    # at overlap 1 the earlier judgement does not fill the example's place
    r = annotator.post("/api/annotations", json={"example_id": earlier, "labels": ["joy", "delight"],
                                                 "origin": next(it["origin"] for it in split_items
                                                                if it["example_id"] == earlier)})
    assert r.status_code == 200, r.text
    info = admin.get("/api/taxonomy").json()
    assert info["to_label"][0]["open"] == len(positives) - 1
    assert 'class="notice to-label"' in admin.get("/taxonomy").text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test installs it)")
def test_an_admin_splits_a_label_and_an_annotator_labels_the_children_in_the_tree(built, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    import shutil

    src, users = built
    shutil.copytree(src, tmp_path / "project")
    port = _free_port()
    app = create_app(tmp_path / "project", port=port)
    server = Server(app, port)
    project = Project.open(tmp_path / "project")
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)

            def sign_in(name):
                context = browser.new_context(bypass_csp=True)  # the CSP forbids eval; wait_for_function needs it
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{server.url}/login?token={users[name]['token']}&next=/label")
                page.wait_for_url(f"{server.url}/label")
                return page

            # the admin splits "amusement" on the taxonomy page (a session: the page sends the CSRF token)
            admin = sign_in("ada")
            admin.goto(f"{server.url}/taxonomy")
            n_pos = int(admin.inner_text('#tax-tree tr[data-label="amusement"] .positives'))
            form = admin.locator('form.change[data-kind="split"]')
            form.locator("select[name=label]").select_option("amusement")
            form.locator("input[name=into]").fill("laughter, wit")
            form.locator("button").click()
            admin.wait_for_selector('#tax-tree tr[data-label="laughter"][data-depth="1"]')
            assert f"{n_pos} examples queued" in admin.inner_text("#tax-status")
            assert admin.locator(".notice.to-label").count() == 1

            # the annotator finds the split's examples first, picks a child in the tree, the parent follows
            page = sign_in("ann")
            page.wait_for_selector("article.item:not([hidden])")
            item = page.locator("article.item:not([hidden])")
            assert "split:amusement" in item.inner_text()
            page.fill("#label-filter", "laug")
            assert page.locator('#toggles li[data-label="amusement"]').is_visible()     # the match's parent
            assert not page.locator('#toggles li[data-label="anger"]').is_visible()
            page.press("#label-filter", "Enter")                                     # picks laughter
            assert page.locator('button.toggle.on[data-label="amusement"]').count() == 1
            first = int(item.get_attribute("data-example-id"))
            page.keyboard.press("Enter")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('saved')")
            # the next one: a click on the other child
            page.wait_for_selector(f'article.item:not([hidden]):not([data-example-id="{first}"])')
            second = int(page.get_attribute("article.item:not([hidden])", "data-example-id"))
            page.click('button.toggle[data-label="wit"]')
            page.keyboard.press("Enter")
            page.wait_for_function("document.getElementById('progress').textContent.startsWith('2 of')")
            browser.close()
    finally:
        server.stop()
        app.state.predictor.stop()
        app.state.label_batches.stop()
    got = {a["example"]: a for a in project.store.annotations(people_only=True)}
    assert set(got[first]["labels"]) == {"laughter", "amusement"} and got[first]["annotator"] == "ann"
    assert set(got[second]["labels"]) == {"wit", "amusement"}
    from tagwise.workflows import taxonomy_changes as tc

    assert first not in tc.split_examples(project) and second not in tc.split_examples(project)
    project.close()
