import json
import subprocess
import sys

import pytest

from conftest import SAMPLE


def tagwise(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "tagwise", *map(str, args)], capture_output=True, text=True,
                          env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"tagwise {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory, use_cache):
    import os

    env = {**os.environ, "TAGWISE_CACHE_DIR": str(use_cache)}
    project = tmp_path_factory.mktemp("cli") / "demo"
    tagwise("init", project, env=env)
    tagwise("add-source", project, SAMPLE / "spec.yaml", env=env)
    tagwise("embed", project, env=env)
    tagwise("train", project, "--params", '{"C": 1.0, "cv": 3}', env=env)
    return project, env


def test_evaluate_json_contract(trained_project):
    project, env = trained_project
    out = json.loads(tagwise("evaluate", project, "--split", "test", "--json", env=env).stdout)
    for key in ("micro_f1", "macro_f1", "macro_ap", "n_examples", "per_label"):
        assert key in out
    assert out["n_examples"] == 1000 and len(out["per_label"]) == 28
    assert set(out["per_label"]["joy"]) >= {"precision", "recall", "f1", "support"}
    assert 0.2 < out["macro_f1"] < 1 and 0.3 < out["micro_f1"] < 1


def test_predict_writes_one_object_per_row(trained_project, tmp_path):
    project, env = trained_project
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"id": f"r{i}", "text": t}) for i, t in
                             enumerate(["Thank you so much, this is wonderful!", "I am so angry right now",
                                        "What does this even mean?"])) + "\n")
    tagwise("predict", project, src, "--out", tmp_path / "out.jsonl", env=env)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["r0", "r1", "r2"]
    assert len(rows[0]["scores"]) == 28 and "gratitude" in rows[0]["labels"]
    assert max(rows[1]["scores"], key=rows[1]["scores"].get) in {"anger", "annoyance"}
    assert all(set(r["labels"]) <= set(r["scores"]) for r in rows)


def test_predict_on_a_headerless_file_names_no_header_as_the_fix(trained_project, tmp_path):
    """The walk-through's GoEmotions file: text, label ids, comment id, and no header row."""
    project, env = trained_project
    src = tmp_path / "no_header.tsv"
    src.write_text("My favourite food is anything I didn't have to cook myself.\t27\teebbqej\n"
                   "Now if he does off himself, everyone will think hes having a laugh\t27\ted00q6i\n"
                   "WHY THE FUCK IS BAYLESS ISOING\t2\teezlygj\n")
    proc = tagwise("predict", project, src, "--text-column", 0, "--id-column", 2, "--out", tmp_path / "o.jsonl",
                   env=env, check=False)
    assert proc.returncode != 0 and "--no-header" in proc.stderr and "spec" not in proc.stderr
    assert str(src) in proc.stderr and not (tmp_path / "o.jsonl").exists()
    proc = tagwise("predict", project, src, "--no-header", "--text-column", 0, "--id-column", 5,
                   "--out", tmp_path / "o.jsonl", env=env, check=False)
    assert proc.returncode != 0 and "0 to 2" in proc.stderr
    tagwise("predict", project, src, "--no-header", "--text-column", 0, "--id-column", 2,
            "--out", tmp_path / "o.jsonl", env=env)
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["eebbqej", "ed00q6i", "eezlygj"]


def test_report_has_plots(trained_project):
    project, env = trained_project
    tagwise("evaluate", project, "--split", "test", env=env)
    out = tagwise("report", project, env=env).stdout
    html = (project / "report.html").read_text()
    assert "report.html" in out and html.count("<img") >= 3 and "Most confused label pairs" in html


def test_log_axis_ticks_render_as_plain_numbers():
    """With math text off (user labels are plain text), matplotlib's log ticks came out as the raw string
    $\\mathdefault{10^{2}}$ in the report's plots."""
    import numpy as np

    from tagwise.evaluate.plots import figure_to_img, plain_log_ticks, pyplot

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.hist(np.random.default_rng(0).beta(5, 1, 3000), bins=40)
    ax.set_yscale("log")
    ax.set_title("label $x$")
    plain_log_ticks(fig)
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and not any("$" in t or "mathdefault" in t for t in ticks)
    assert {"1", "10", "100"} <= set(ticks)
    assert figure_to_img(fig, "x").startswith("<img")


def test_errors_are_clear_and_exit_2(trained_project, tmp_path):
    project, env = trained_project
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npath: nowhere.csv\n")
    proc = tagwise("add-source", project, bad, env=env, check=False)
    assert proc.returncode == 2 and "nowhere.csv" in proc.stderr and "Traceback" not in proc.stderr
    proc = tagwise("evaluate", project, "--split", "dev", env=env, check=False)
    assert proc.returncode == 2 and "no labeled examples in split 'dev'" in proc.stderr
    proc = tagwise("train", tmp_path / "not-a-project", env=env, check=False)
    assert proc.returncode == 2 and "tagwise init" in proc.stderr
