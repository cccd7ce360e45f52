"""The whole human loop in a real browser (issue 17): Playwright drives Debian's chromium
(/usr/bin/chromium; Playwright never downloads one) against `tagwise serve` with a token.

Label 5 examples with the keyboard (a model's guess is saved only when taken with G), review 3 audit rows (accept, edit, keep), undo one, retrain, see
the model page change. Screenshots of each page go to $TAGWISE_TEST_OUTPUT (default: the test's
tmp folder)."""
import json
import os
import socket
from pathlib import Path

import pytest

from serve_data import Server, make_project
from tagwise.workflows.audit import audit
from tagwise.workflows.train import train

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "browser-test-token"
NASTY = '"><img src=x onerror=alert(1)> <script>alert(2)</script> awful day'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path):

    from tagwise.serve.app import create_app

    project = make_project(tmp_path, n_train=200, n_pool=40, n_dev=80, n_test=80,
                           extra_rows=[f"{NASTY}\t25\tnasty"])
    train(project, mode="supervised", progress=False)
    audit(project, tmp_path / "issues.jsonl", progress=False)
    app = create_app(project.path, token=TOKEN, annotator="tester")
    port = _free_port()
    srv = Server(app, port)
    yield project, srv.url
    srv.stop()
    app.state.predictor.stop()


def test_label_review_undo_retrain_in_the_browser(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    project, url = server
    shots = Path(os.environ.get("TAGWISE_TEST_OUTPUT") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    names = list(project.labels.names)
    dialogs = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"},
                                      viewport={"width": 1280, "height": 900},
                                      bypass_csp=True)  # the page's CSP forbids eval; wait_for_function needs it
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.set_default_timeout(60_000)

        # 1. label queue: 5 examples with the keyboard (digits/letters toggle, / filters, S skips, Enter saves)
        page.goto(f"{url}/label")
        page.wait_for_selector("article.item:not([hidden])")
        page.screenshot(path=str(shots / "label-queue.png"), full_page=True)
        expected = []
        def shown_after(previous):
            # the page moves on asynchronously (it may ask the server for more first): wait for the next item
            sel = "article.item:not([hidden])" + (f':not([data-example-id="{previous}"])' if previous else "")
            page.wait_for_selector(sel)
            return page.locator("article.item:not([hidden])")

        previous = None
        for n in range(5):
            item = shown_after(previous)
            if n == 1:  # skip one, then label the next
                skipped_id = item.get_attribute("data-example-id")
                page.keyboard.press("s")
                item = shown_after(skipped_id)
            example_id = int(item.get_attribute("data-example-id"))
            previous = example_id
            guess = set(json.loads(item.get_attribute("data-guess")))
            # the model's guesses are marked apart from the person's choices, and nothing is chosen yet
            shown_guess = set(page.locator("#toggles button.toggle.guess").evaluate_all(
                "els => els.map(e => e.dataset.label)"))
            assert shown_guess == guess and page.locator("#toggles button.toggle.on").count() == 0
            chosen = set()
            if n in (0, 3):                    # G takes the model's guesses as choices
                page.keyboard.press("g")
                chosen |= guess
            page.keyboard.press("1")          # toggles names[0]
            chosen ^= {names[0]}
            if n == 2:                         # type-to-filter: "/" focuses it, Enter toggles the match
                page.keyboard.press("/")
                page.keyboard.type("gratit")
                page.keyboard.press("Enter")
                chosen ^= {"gratitude"}
            page.keyboard.press("Enter")
            page.wait_for_function(f"document.getElementById('status').textContent.includes('saved') && "
                                   f"document.getElementById('progress').textContent.startsWith('{n + 1} of')")
            expected.append((example_id, chosen))
        got = {a["example"]: a for a in project.store.annotations()}
        for example_id, chosen in expected:
            assert set(got[example_id]["labels"]) == chosen
            assert got[example_id]["annotator"] == "tester" and got[example_id]["origin"].startswith("suggest:")
        # U undoes the last save
        page.keyboard.press("u")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('undid')")
        assert expected[-1][0] not in {a["example"] for a in project.store.annotations()}

        # 2. an escaped text: shown literally, never run
        page.goto(f"{url}/label?q=onerror")
        page.wait_for_selector("article.item:not([hidden])")
        assert page.locator("article.item:not([hidden]) .text").inner_text() == NASTY

        # 3. review queue: accept, edit, keep; then undo the kept one
        page.goto(f"{url}/review")
        rows = page.locator("tr.review")
        assert rows.count() >= 3
        page.screenshot(path=str(shots / "review-queue.png"), full_page=False)
        ids = [int(rows.nth(k).get_attribute("data-example-id")) for k in range(3)]
        suggested = json.loads(rows.nth(0).get_attribute("data-suggested"))
        given_2 = json.loads(rows.nth(2).get_attribute("data-given"))
        rows.nth(0).locator("button.accept").click()
        rows.nth(0).locator(".decision button.undo-row").wait_for()
        rows.nth(1).locator("button.edit").click()
        rows.nth(1).locator(".editor input[value='optimism']").check()
        edited = sorted(rows.nth(1).locator(".editor input:checked").evaluate_all("els => els.map(e => e.value)"))
        rows.nth(1).locator("button.save-edit").click()
        rows.nth(1).locator(".decision button.undo-row").wait_for()
        rows.nth(2).locator("button.keep").click()
        rows.nth(2).locator(".decision button.undo-row").click()
        page.wait_for_function("document.getElementById('status').textContent.startsWith('undid')")
        page.screenshot(path=str(shots / "review-decided.png"), full_page=False)
        # the counter follows the decisions live (two kept, one undone)
        total = int(page.locator("#review-progress").get_attribute("data-total"))
        done0 = int(page.locator("#review-progress").get_attribute("data-done"))
        assert page.locator("#review-progress .count").inner_text() == f"{done0 + 2} of {total} rows decided"
        active = {a["example"]: a for a in project.store.annotations() if a["origin"].startswith("audit:")}
        assert active[ids[0]]["labels"] == suggested
        assert sorted(active[ids[1]]["labels"]) == edited and "optimism" in edited
        assert ids[2] not in active
        undone = [a for a in project.store.annotations(include_undone=True) if a["undone_at"]]
        assert any(a["example"] == ids[2] and a["labels"] == given_2 for a in undone)
        # keyboard: A accepts the current row's suggestion, G keeps the next row's given labels, U undoes
        page.goto(f"{url}/review")
        rows = page.locator("tr.review")
        done0 = int(page.locator("#review-progress").get_attribute("data-done"))
        keyed = [int(rows.nth(k).get_attribute("data-example-id")) for k in range(2)]
        keyed_suggested = json.loads(rows.nth(0).get_attribute("data-suggested"))
        given_1 = json.loads(rows.nth(1).get_attribute("data-given"))
        page.keyboard.press("a")
        rows.nth(0).locator(".decision button.undo-row").wait_for()
        page.keyboard.press("g")
        rows.nth(1).locator(".decision button.undo-row").wait_for()
        assert page.locator("#review-progress .count").inner_text() == f"{done0 + 2} of {total} rows decided"
        page.keyboard.press("u")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('undid')")
        assert page.locator("#review-progress .count").inner_text() == f"{done0 + 1} of {total} rows decided"
        keyed_active = {a["example"]: a for a in project.store.annotations() if a["origin"].startswith("audit:")}
        assert keyed_active[keyed[0]]["labels"] == keyed_suggested and keyed[1] not in keyed_active
        assert any(a["example"] == keyed[1] and a["labels"] == given_1 and a["undone_at"]
                   for a in project.store.annotations(include_undone=True))

        # 4. model page: retrain in the background, then the page shows the new model and before/after
        page.goto(f"{url}/model")
        old_model = page.locator("#model-name b").inner_text()
        page.screenshot(path=str(shots / "model-before.png"), full_page=False)
        page.click("#retrain")
        page.wait_for_function(f"document.querySelector('#model-name b') && "
                               f"document.querySelector('#model-name b').textContent !== {json.dumps(old_model)}",
                               timeout=120_000)
        page.wait_for_selector("#before-after")
        new_model = page.locator("#model-name b").inner_text()
        assert new_model != old_model
        assert page.locator("#before-after tr").count() >= 3  # header + dev/test figures
        # which mode the retrain chose, and why (said apart when it changed)
        note = page.locator("#mode-note").inner_text()
        assert note.startswith(("Mode ", "The mode changed from ")) and len(note) > 20, note
        page.screenshot(path=str(shots / "model-after.png"), full_page=True)
        browser.close()
    assert not dialogs, dialogs
    assert (project.models_dir / "CURRENT").read_text().strip() == new_model
    for name in ("label-queue", "review-queue", "review-decided", "model-before", "model-after"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
