"""A labeling team on `tagwise serve` (issue 28), over HTTP: overlap and assignment per person, no
person seeing another's labels first, live agreement checked against the `krippendorff` package, each
person's quality from the consensus model, adjudication stored with its origin, guidelines, and
escaping in every template.

Every person is a real account (`tagwise users add PROJECT NAME --role ROLE --json`) and each client
sends its own `Authorization: Bearer TOKEN`, as a program would.
"""
import concurrent.futures
import contextlib
import io
import json
import random

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serve_data import SAMPLE, make_project
from tagwise.serve import pages
from tagwise.cli import main as tagwise_cli
from tagwise.serve.app import create_app

NASTY = '<script>alert("team")</script> "><img src=x onerror=alert(1)> what a day'
ENTITIES = "Tom &amp; Jerry &lt;3 forever"
PEOPLE = ("Quentin", "Rosalind", "Sebastian")  # gold, noisy, random
ANNOTATORS = (*PEOPLE, "Ulrike", "Vera", "Wanda", "Xavier")
REVIEWERS = ("Ines",)
BASE = "http://127.0.0.1:8765"  # the Host the server answers (serve/auth.py: HostPolicy)
_TOKENS: dict[int, dict[str, str]] = {}  # id(app) -> {name: token}


def _gold() -> dict[str, list[str]]:
    """text -> the sample's own labels (the simulated people's truth)."""
    names = (SAMPLE / "labels.txt").read_text(encoding="utf-8").split()
    out = {}
    for line in (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines():
        text, labels, _ = line.split("\t")
        out[text.strip()] = [names[int(k)] for k in labels.split(",")]
    return out


def add_user(project_path, name: str, role: str) -> dict:
    """`tagwise users add PROJECT NAME --role ROLE --json` -> ``{"name", "role", "token", "login_url"}``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert tagwise_cli(["users", "add", str(project_path), name, "--role", role, "--json"]) == 0
    return json.loads(out.getvalue())


def _as(app, name) -> TestClient:
    """A client acting as ``name`` with their own token (the role is the account's)."""
    return TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {_TOKENS[id(app)][name]}"})


def _team(root):
    project = make_project(root, n_train=150, n_pool=60, n_dev=30, n_test=30,
                           extra_rows=[f"{NASTY}\t25\tnasty", f"{ENTITIES}\t17\tentities"])
    made = [add_user(project.path, n, "annotator") for n in ANNOTATORS] + \
        [add_user(project.path, n, "reviewer") for n in REVIEWERS]
    app = create_app(project.path, overlap=2)
    _TOKENS[id(app)] = {u["name"]: u["token"] for u in made}
    ready(app)
    return project, app


def ready(app):
    """Prepare the label queue's first batch and wait for it (`tagwise serve` starts it at start; the
    queue requests never wait for one)."""
    assert app.state.label_batches.start() and app.state.label_batches.wait(600)
    assert app.state.label_batches.batches == 1


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    project, app = _team(tmp_path_factory.mktemp("team"))
    yield project, app
    app.state.predictor.stop()
    app.state.label_batches.stop()


@pytest.fixture()
def fresh_team(tmp_path):
    project, app = _team(tmp_path)
    yield project, app
    app.state.predictor.stop()
    app.state.label_batches.stop()


def _judge(name: str, text: str, gold: dict, names: list[str], rng: random.Random) -> list[str]:
    truth = gold.get(text.strip(), ["neutral"])
    if name == "Quentin":
        return truth
    if name == "Rosalind":  # right most of the time
        return truth if rng.random() < 0.75 else rng.sample(names, 1)
    return rng.sample(names, 2)  # Sebastian answers at random


def _label(client, item, labels):
    r = client.post("/api/annotations", json={"example_id": item["example_id"], "labels": labels,
                                               "origin": item["origin"]})
    assert r.status_code == 200, r.text
    return r.json()["annotation_id"]


def test_overlap_assignment_progress_and_privacy(team):
    project, app = team
    names = list(project.labels.names)
    gold, rng = _gold(), random.Random(0)
    people = {n: _as(app, n) for n in PEOPLE}

    # three people ask at once: the leases give no example to more than two of them
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first = dict(zip(PEOPLE, pool.map(lambda n: people[n].get("/api/queue", params={"limit": 5}).json(), PEOPLE)))
    held: dict[int, set] = {}
    for n, q in first.items():
        assert len(q["items"]) == 5 and q["user"] == n and q["overlap"] == 2 and q["done"] == 0
        for it in q["items"]:
            held.setdefault(it["example_id"], set()).add(n)
    assert max(len(v) for v in held.values()) == 2
    assert len(held) >= 8  # 15 places, at most 2 per example

    # each labels what they hold, then asks for one more at a time until they have done 10
    for n, q in first.items():
        for it in q["items"]:
            _label(people[n], it, _judge(n, it["text"], gold, names, rng))
    for _ in range(5):
        for n in PEOPLE:
            q = people[n].get("/api/queue", params={"limit": 1}).json()
            assert len(q["items"]) == 1, q
            _label(people[n], q["items"][0], _judge(n, q["items"][0]["text"], gold, names, rng))
    mine = [a for a in project.store.annotations() if a["annotator"] in PEOPLE]
    assert len(mine) == 30 and {a["annotator"] for a in mine} == set(PEOPLE)  # attributed to the asker
    by_example: dict[int, list[str]] = {}
    for a in mine:
        by_example.setdefault(a["example"], []).append(a["annotator"])
    assert all(len(w) == len(set(w)) <= 2 for w in by_example.values())  # two distinct people at most
    complete = {e for e, w in by_example.items() if len(w) == 2}
    assert len(complete) >= 10

    # a skipped example goes back at once; a person holds only what their latest request gave them
    vera = _as(app, "Vera")
    example = vera.get("/api/queue", params={"limit": 1}).json()["items"][0]["example_id"]
    assert vera.post("/api/queue/release", json={"example_id": example}).json() == {"released": True}
    assert "Vera" not in project.store.queue_state([example])[0].get(example, {})
    two = [it["example_id"] for it in vera.get("/api/queue", params={"limit": 2}).json()["items"]]
    one = [it["example_id"] for it in vera.get("/api/queue", params={"limit": 1}).json()["items"]]
    leases = project.store.queue_state(two)[0]
    assert one == two[:1] and [e for e in two if "Vera" in leases.get(e, {})] == one

    # nobody is offered what they labeled, nor an example two people labeled; progress per person
    for n in (*PEOPLE, "Ulrike"):
        q = _as(app, n).get("/api/queue", params={"limit": 200}).json()
        offered = {it["example_id"] for it in q["items"]}
        assert not offered & complete
        assert not offered & {e for e, w in by_example.items() if n in w}
        assert q["done"] == sum(n in w for w in by_example.values())
        assert q["remaining"] >= len(offered) and q["total"] == q["done"] + q["remaining"]
    assert _as(app, "Quentin").get("/api/queue", params={"limit": 1}).json()["done"] == 10

    # a stale page cannot add a third judgement to an example two people labeled (409, nothing stored)
    full = sorted(complete)[0]
    origin = next(a["origin"] for a in mine if a["example"] == full)
    before = len(project.store.annotations())
    r = _as(app, "Ulrike").post("/api/annotations", json={"example_id": full, "labels": ["joy"], "origin": origin})
    assert r.status_code == 409 and "overlap 2" in r.json()["detail"] and len(project.store.annotations()) == before
    # nobody but an admin saves labels under another name
    r = _as(app, "Rosalind").post("/api/annotations", json={"example_id": full, "labels": [], "annotator": "Quentin"})
    assert r.status_code == 403 and len(project.store.annotations()) == before
    # an annotator undoes their own labels only (the answer would show another person's labels)
    theirs = next(a for a in mine if a["annotator"] == "Quentin")
    r = _as(app, "Rosalind").post(f"/api/annotations/{theirs['id']}/undo", json={})
    assert r.status_code == 403 and "labels" not in r.json()
    assert project.store.annotation(theirs["id"])["undone_at"] is None

    # one person's labels are not shown to another before they label: not in the list of annotations,
    # not on the label page (the queue item carries the model's guess, never a person's judgement)
    seen = _as(app, "Rosalind").get("/api/annotations", params={"limit": 1000}).json()["annotations"]
    assert seen and {a["annotator"] for a in seen} == {"Rosalind"}
    fresh = _as(app, "Ulrike")
    page = fresh.get("/label").text
    assert not any(n in page for n in PEOPLE) and "Ulrike" in page
    half = [e for e, w in by_example.items() if len(w) == 1]
    if half:
        offered = fresh.get("/api/queue", params={"limit": 200}).json()["items"]
        batch = {}
        for run in project.runs("suggest"):
            if not (run / "batch.jsonl").exists():
                continue  # the next batch, still being prepared
            for line in (run / "batch.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                batch.setdefault(row["store_id"], row)
        for it in offered:
            if it["example_id"] in half:  # somebody labeled it: the guess made before anybody did
                assert it["labels"] == batch[it["example_id"]]["predicted"]


def test_team_agreement_matches_krippendorff_and_quality_ranks_people(team):
    krippendorff = pytest.importorskip("krippendorff")
    project, app = team
    if not any(a["annotator"] in PEOPLE for a in project.store.annotations()):
        test_overlap_assignment_progress_and_privacy(team)
    report = _as(app, "Ines").get("/api/team").json()
    judgements = [a for a in project.store.annotations(people_only=True) if a["origin"] != "adjudication"]
    who = sorted({a["annotator"] for a in judgements})
    examples = sorted({a["example"] for a in judgements})
    checked = 0
    for name in project.labels.names:
        data = np.full((len(who), len(examples)), np.nan)
        for a in judgements:
            data[who.index(a["annotator"]), examples.index(a["example"])] = float(name in a["labels"])
        ours = report["labels"][name]["alpha"]
        try:
            ref = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        except ValueError:  # one value only: alpha is undefined
            ref = float("nan")
        if np.isnan(ref):
            assert ours is None, name
        else:
            assert ours == pytest.approx(ref, abs=1e-4), name
            checked += 1
    assert checked >= 5
    quality = {n: report["annotators"][n]["quality"] for n in PEOPLE}
    assert quality["Quentin"] > quality["Sebastian"] and quality["Rosalind"] > quality["Sebastian"], quality
    assert all(report["annotators"][n]["done"] == 10 for n in PEOPLE)
    page = _as(app, "Ines").get("/team").text
    assert "Krippendorff" in page and all(f'data-person="{n}"' in page for n in PEOPLE)
    assert f'{quality["Quentin"]:.3f}' in page


def test_adjudication_is_an_annotation_with_its_origin(team):
    project, app = team
    if not any(a["annotator"] in PEOPLE for a in project.store.annotations()):
        test_overlap_assignment_progress_and_privacy(team)
    reviewer = _as(app, "Ines")
    disputes = reviewer.get("/api/team").json()["disagreements"]
    assert disputes and all(len({tuple(sorted(j["labels"])) for j in d["judgements"]}) > 1 for d in disputes)
    d = disputes[0]
    decision = sorted(d["judgements"][0]["labels"])
    # an annotator may neither see the team page nor decide
    annotator = _as(app, "Quentin")
    assert annotator.get("/team").status_code == 403 and annotator.get("/api/team").status_code == 403
    assert annotator.get("/review").status_code == 403  # the review page lists everyone's labels
    assert annotator.get("/api/queue", params={"kind": "review"}).status_code == 403
    assert 'href="/team"' not in annotator.get("/label").text
    assert annotator.post("/api/adjudications", json={"example_id": d["example_id"], "labels": decision}).status_code == 403
    r = reviewer.post("/api/adjudications", json={"example_id": d["example_id"], "labels": decision})
    assert r.status_code == 200, r.text
    stored = [a for a in project.store.annotations() if a["id"] == r.json()["annotation_id"]][0]
    assert (stored["origin"], stored["annotator"], sorted(stored["labels"])) == ("adjudication", "Ines", decision)
    assert stored["example"] == d["example_id"]
    after = reviewer.get("/api/team").json()
    assert d["example_id"] not in {x["example_id"] for x in after["disagreements"]}
    assert "Ines" not in after["annotators"]  # a decision is not a judgement in the agreement figures
    assert reviewer.post("/api/adjudications", json={"example_id": d["example_id"], "labels": ["nope"]}).status_code == 400
    # and what training uses for that example is the decision
    trained = project.examples()
    row = list(trained.ids).index(d["example_id"])
    assert sorted(trained.labels[row]) == decision


def test_templates_escape_and_decode_and_show_guidelines(fresh_team):
    project, app = fresh_team
    tax = project.taxonomy
    tax.descriptions["joy"] = "Happiness <b>not</b> relief"
    tax.examples["joy"] = ["<script>alert('guide')</script> best day ever"]
    project.store.set_meta("taxonomy", tax.to_dict())
    person = _as(app, "Wanda")
    page = person.get("/label", params={"q": "onerror"}).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;team&#34;)&lt;/script&gt;" in page or "&lt;script&gt;alert(&quot;team&quot;)" in page
    # guidelines: each label's description and examples, one key away (the "?" panel), escaped
    assert 'id="guide" hidden' in page and "Happiness &lt;b&gt;not&lt;/b&gt; relief" in page
    assert "&lt;script&gt;alert(&#39;guide&#39;)&lt;/script&gt; best day ever" in page
    assert 'title="Happiness &lt;b&gt;not&lt;/b&gt; relief"' in page
    # HTML entities in a text are shown decoded (and then escaped once)
    page = person.get("/label", params={"q": "Jerry"}).text
    assert "Tom &amp; Jerry &lt;3 forever" in page and "&amp;amp;" not in page
    item = person.get("/api/queue", params={"q": "Jerry"}).json()["items"][0]
    assert item["display_text"] == "Tom & Jerry <3 forever" and item["text"] == ENTITIES
    # the team page escapes texts in the disagreements
    for client, labels in ((person, ["joy"]), (_as(app, "Xavier"), ["anger"])):
        _label(client, client.get("/api/queue", params={"q": "onerror"}).json()["items"][0], labels)
    team_page = _as(app, "Ines").get("/team").text
    assert "onerror" in team_page and "<script>alert" not in team_page and "<img src=x" not in team_page


def test_review_template_decodes_entities_pages_and_model_page_dashes(tmp_path):
    """The review template on a queue page past row 1,000; the model page's per-label table."""
    from starlette.requests import Request

    request = Request({"type": "http", "method": "GET", "path": "/review", "headers": [], "query_string": b""})
    queue = {"audit": "20260101-000000-audit-x", "done": 3, "total": 1500, "matching": 1497, "offset": 1000,
             "items": [{"example_id": 7, "origin": "audit:x", "text": ENTITIES + " " + NASTY, "source": "s",
                        "split": "train", "labels": ["joy"], "suggested_labels": ["anger"],
                        "findings": [{"type": "missing", "label": "anger"}], "label_quality": 0.1}]}
    html = pages.render(request, "review.html", "Review", "review", {"name": "r", "role": "reviewer"},
                        queue=queue, filters={}, options={}, labels=["joy", "anger"], recent=[],
                        prev_url="/review?offset=950", next_url="/review?offset=1050", page_size=50).body.decode()
    assert "Tom &amp; Jerry &lt;3 forever" in html and "&amp;amp;" not in html and "<script>alert" not in html
    assert "rows 1001–1001 of 1497 undecided" in html and 'href="/review?offset=1050"' in html
    assert 'data-done="3" data-total="1500"' in html and "3 of 1500 rows decided" in html


def test_model_page_dashes_unsupported_labels_and_retrain_says_why_the_mode_changed(tmp_path):
    from tagwise.workflows.evaluate import evaluate
    from tagwise.workflows.retrain import retrain
    from tagwise.workflows.train import train

    project = make_project(tmp_path, n_train=150, n_pool=20, n_dev=30, n_test=30)
    train(project, mode="supervised", progress=False)
    metrics = evaluate(project, split="test")
    unsupported = [n for n, m in metrics["per_label"].items() if not m["support"]]
    supported = [n for n, m in metrics["per_label"].items() if m["support"]]
    assert unsupported and supported  # 30 test rows do not cover GoEmotions' 28 labels
    app = create_app(project.path)
    try:
        page = TestClient(app, base_url=BASE).get("/model").text
    finally:
        app.state.predictor.stop()
        app.state.label_batches.stop()
    for name in unsupported:
        # recall and F1 are undefined without support; precision only where the label was never predicted
        precision = "—" if not metrics["per_label"][name].get("predicted") else "0.000"
        assert f"<tr><td>{name}</td><td>{precision}</td><td>—</td><td>—</td><td>0</td>" in page
    m = metrics["per_label"][supported[0]]
    assert f"<tr><td>{supported[0]}</td><td>{m['precision']:.3f}</td>" in page
    same = retrain(project, mode="supervised")
    assert same["mode_changed"] is False and same["mode_note"].startswith("Mode supervised (as before)")
    changed = retrain(project, mode="few-shot")
    assert changed["mode_changed"] is True and changed["previous_mode"] == "supervised"
    assert changed["mode_note"] == f"The mode changed from supervised to few-shot: {changed['choice']['reason']}."


def test_serve_overlap_option(tmp_path, capsys):
    from tagwise.cli import build_parser
    from tagwise.types import TagwiseError

    args = build_parser().parse_args(["serve", str(tmp_path), "--overlap", "3"])
    assert args.overlap == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", str(tmp_path), "--overlap", bad])
        assert "at least 1" in capsys.readouterr().err
    project = make_project(tmp_path, n_train=20, n_pool=5, n_dev=5, n_test=5)
    with pytest.raises(TagwiseError, match="overlap"):
        create_app(project.path, overlap=0)


def test_a_queue_request_never_waits_for_a_suggest_fit(tmp_path):
    """The next batch is suggested in a background child process (workflows/queue.py: BatchRefill): with
    no batch yet, the first request answers 'preparing' while the fit still runs; with a batch, a request
    answers from it while the next one is prepared; the page's next request then gets the new batch."""
    project = make_project(tmp_path, n_train=150, n_pool=60, n_dev=30, n_test=30)
    made = [add_user(project.path, n, "annotator") for n in PEOPLE]
    app = create_app(project.path, overlap=2)
    _TOKENS[id(app)] = {u["name"]: u["token"] for u in made}
    refill = app.state.label_batches
    try:
        first = _as(app, PEOPLE[0]).get("/api/queue", params={"limit": 1})
        # the request returned while the suggest fit (a child process importing tagwise and fitting a
        # head: seconds) had only just started
        assert first.status_code == 200 and refill.running, first.text
        q = first.json()
        assert q["items"] == [] and q["preparing"] is True and "Preparing" in q["message"]
        assert not list(project.runs("suggest")) or not any((r / "batch.jsonl").exists() for r in project.runs("suggest"))
        page = _as(app, PEOPLE[0]).get("/label").text
        assert 'data-preparing="true"' in page and "Preparing the next batch" in page
        assert refill.wait(600) and refill.batches == 1 and refill.failures == 0

        # a batch exists: the people take it down to the low-water mark; the request that crosses it
        # starts the next refill and is answered from the batch at hand, not after the fit
        people = {n: _as(app, n) for n in PEOPLE}
        runs = [r for r in project.runs("suggest") if (r / "batch.jsonl").exists()]
        first_batch = {json.loads(ln)["store_id"] for ln in (runs[0] / "batch.jsonl").read_text(encoding="utf-8").splitlines()}
        q = people[PEOPLE[1]].get("/api/queue", params={"limit": 40}).json()
        assert len(q["items"]) == 40 and q["preparing"] is False and not refill.running  # 60 of 100 places left
        q = people[PEOPLE[2]].get("/api/queue", params={"limit": 40}).json()
        assert len(q["items"]) == 40 and q["preparing"] is True and refill.running  # 20 left: under the mark
        assert refill.wait(600) and refill.batches == 2
        runs = [r for r in project.runs("suggest") if (r / "batch.jsonl").exists()]
        assert len(runs) == 2
        second = {json.loads(ln)["store_id"] for ln in (runs[-1] / "batch.jsonl").read_text(encoding="utf-8").splitlines()}
        assert second and not second & first_batch  # the open examples of the first batch are not suggested again
        # overlap still holds across batches: nobody gets an example twice, none goes to three people
        held: dict[int, set] = {}
        for n in PEOPLE:
            for it in people[n].get("/api/queue", params={"limit": 200}).json()["items"]:
                assert n not in held.setdefault(it["example_id"], set())
                held[it["example_id"]].add(n)
        assert max(len(v) for v in held.values()) <= 2
    finally:
        refill.stop()
        app.state.predictor.stop()
