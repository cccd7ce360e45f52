"""A labeling team in real browsers (issue 28): three people in three browser contexts at once on
`tagwise serve --overlap 2`, each labels 10 examples from the keyboard; every example gets exactly two
judgements from two different people; the team page shows alpha and each person's quality; a
reviewer settles one disagreement. Playwright drives Debian's chromium (/usr/bin/chromium).

Each person is an account (`tagwise users add PROJECT NAME --json`) and signs in by opening their own
login link in their own browser context (each context has its own cookies; the cookie names carry the
server's port).
"""
import json
import os
from pathlib import Path

import pytest

from serve_data import Server, make_project
from tagwise.workflows.train import train
from test_serve_team import add_user
from test_browser import ARGS, CHROMIUM, _free_port

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test installs it)")
PEOPLE = ("Amara", "Bastian", "Chiara")
REVIEWER = "Dagny"


@pytest.fixture()
def team_server(tmp_path):

    from tagwise.serve.app import create_app

    project = make_project(tmp_path, n_train=200, n_pool=60, n_dev=60, n_test=60)
    tax = project.taxonomy
    tax.descriptions["joy"] = "A feeling of great pleasure and happiness."
    tax.examples["joy"] = ["This made my whole week!"]
    project.store.set_meta("taxonomy", tax.to_dict())
    train(project, mode="supervised", progress=False)
    port = _free_port()
    links = {n: add_user(project.path, n, "annotator")["login_url"] for n in PEOPLE}
    links[REVIEWER] = add_user(project.path, REVIEWER, "reviewer")["login_url"]
    app = create_app(project.path, overlap=2, port=port)
    # the label queue's first batch, prepared in the background as `tagwise serve` does at start
    assert app.state.label_batches.start() and app.state.label_batches.wait(600)
    srv = Server(app, port)
    url = srv.url
    # the links name the default address; this server listens on another port
    yield project, url, {n: link.replace("http://127.0.0.1:8765", url) for n, link in links.items()}
    srv.stop()
    app.state.predictor.stop()
    app.state.label_batches.stop()


def _wait_saved(page, n: int, before: str) -> None:
    page.wait_for_function(
        "([n, before]) => { const s = document.getElementById('status').textContent;"
        " return s !== before && s.startsWith('saved #') &&"
        " document.getElementById('progress').textContent.startsWith(n + ' of'); }", arg=[n, before])


def test_three_people_overlap_two_then_team_page_and_adjudication(team_server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    project, url, links = team_server
    shots = Path(os.environ.get("TAGWISE_TEST_OUTPUT") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    names = list(project.labels.names)
    dialogs = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)

        port = url.rsplit(":", 1)[1]

        def open_as(name, role):
            """A browser context of its own that opened ``name``'s login link (a session cookie for this port)."""
            context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.set_default_timeout(60_000)
            # the link signs in and moves on to /label; a reviewer's goes on to the team page (not
            # /label, whose queue would hand them an example to label)
            page.goto(links[name] + ("&next=/team" if role == "reviewer" else ""))
            assert page.url == f"{url}/team" if role == "reviewer" else f"{url}/label"
            cookies = {c["name"]: c for c in context.cookies()}
            assert cookies[f"tagwise_session_{port}"]["httpOnly"] and cookies[f"tagwise_session_{port}"]["sameSite"] == "Strict"
            assert f"tagwise_csrf_{port}" in cookies
            assert page.locator("#who").inner_text().startswith(f"signed in as {name} ({role})")
            return page

        review = open_as(REVIEWER, "reviewer")  # the team page is open while the others work
        review.goto(f"{url}/team")
        assert "Nobody has labeled anything yet" in review.locator("#people").inner_text()
        pages = {n: open_as(n, "annotator") for n in PEOPLE}
        for n, page in pages.items():  # all three open at once
            page.goto(f"{url}/label")
            page.wait_for_selector("article.item:not([hidden])")

        # "?" opens the guidelines (the taxonomy's description and examples), "?" again closes them
        first = pages[PEOPLE[0]]
        first.keyboard.press("?")
        assert first.locator("#guide").is_visible()
        assert "great pleasure" in first.locator("#guide").inner_text()
        assert "This made my whole week!" in first.locator("#guide").inner_text()
        first.screenshot(path=str(shots / "team-label-guide.png"), full_page=False)
        first.keyboard.press("?")
        assert not first.locator("#guide").is_visible()

        # each person labels 10 examples from the keyboard, in turns
        given = []
        for r in range(10):
            for k, n in enumerate(PEOPLE):
                page = pages[n]
                item = page.locator("article.item:not([hidden])")
                example_id = int(item.get_attribute("data-example-id"))
                guess = set(json.loads(item.get_attribute("data-guess")))
                chosen = set()
                if n == "Chiara" and r % 2:      # takes the model's guesses this time
                    page.keyboard.press("g")
                    chosen |= guess
                key = str(k + 1)                  # Amara "1", Bastian "2", Chiara "3": they disagree
                page.keyboard.press(key)
                chosen ^= {names[k]}
                before = page.locator("#status").inner_text()
                page.keyboard.press("Enter")
                _wait_saved(page, r + 1, before)
                given.append((n, example_id, chosen))
        pages[PEOPLE[1]].screenshot(path=str(shots / "team-label.png"), full_page=False)

        judged: dict[int, list[str]] = {}
        stored = {(a["annotator"], a["example"]): a for a in project.store.annotations()}
        for n, example_id, chosen in given:
            assert set(stored[(n, example_id)]["labels"]) == chosen
            judged.setdefault(example_id, []).append(n)
        assert len(given) == 30 == len([a for a in project.store.annotations() if a["annotator"] in PEOPLE])
        assert all(len(w) == 2 and len(set(w)) == 2 for w in judged.values()), judged  # exactly two people each
        assert len(judged) == 15

        # the team page: its figures follow the work live (alpha per label, each person's quality) ...
        review.wait_for_function(
            "(people) => people.every((n) => { const td = document.querySelector(`#people tr[data-person=\"${n}\"] td.quality`);"
            " return td && td.textContent !== '—' && document.getElementById('team-progress').textContent.startsWith('15 of'); })",
            arg=list(PEOPLE), timeout=30_000)
        live = {n: float(review.locator(f'#people tr[data-person="{n}"] td.quality').inner_text()) for n in PEOPLE}
        # ... and after a reload the disagreements are listed; the reviewer settles one
        review.goto(f"{url}/team")
        assert live == {n: float(review.locator(f'#people tr[data-person="{n}"] td.quality').inner_text()) for n in PEOPLE}
        alphas = review.locator("#agreement td.alpha").all_inner_texts()
        assert any(a not in ("—", "") for a in alphas)
        for n in PEOPLE:
            quality = review.locator(f'#people tr[data-person="{n}"] td.quality').inner_text()
            assert 0.0 <= float(quality) <= 1.0
        box = review.locator("#disagreements .dispute").first
        example_id = int(box.get_attribute("data-example-id"))
        box.locator(".decide input[type=checkbox]").first.check()
        decision = sorted(box.locator(".decide input:checked").evaluate_all("els => els.map(e => e.value)"))
        box.locator("button.adjudicate").click()
        box.locator(".decision").filter(has_text="decided").wait_for()
        review.screenshot(path=str(shots / "team-page.png"), full_page=True)
        # signing out ends the session: the team page asks for a sign-in again
        review.locator("#sign-out").click()
        review.wait_for_url(f"{url}/login")
        review.goto(f"{url}/team")
        assert review.locator("h1").inner_text() == "Sign in"
        assert pages[PEOPLE[0]].goto(f"{url}/label").status == 200  # the others are still signed in
        browser.close()
    assert not dialogs, dialogs
    decided = [a for a in project.store.annotations() if a["origin"] == "adjudication"]
    assert len(decided) == 1
    assert (decided[0]["example"], decided[0]["annotator"], sorted(decided[0]["labels"])) == \
        (example_id, REVIEWER, decision)
    for name in ("team-label-guide", "team-label", "team-page"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
