"""Every single-command case of issue 21, run as a user would (the `tagwise` CLI in a subprocess)
against one checkout's ``src``: what happens before the fix (the original commit) and after.

    python bench/reliability_cases.py /tmp/orig/src bench/results/reliability_before.json
    python bench/reliability_cases.py src bench/results/reliability_after.json

Each case prints one outcome: ``traceback`` (a Python traceback or a signal), ``error: <first line>``
(exit 2, a one-line TagwiseError), or ``accepted`` (exit 0) with what the project then holds. The
two-process cases (1-3, the same-name race) are the tests of tests/test_concurrency.py.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "goemotions-sample"
SRC = Path(sys.argv[1]).resolve()
OUT = Path(sys.argv[2])
TMP = Path(tempfile.mkdtemp(prefix="tagwise-reliab-"))
ENV = {**os.environ, "PYTHONPATH": str(SRC), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}


def tw(*args, stdin=None, pipe_head=False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tagwise", *map(str, args)]
    if pipe_head:  # `tagwise ... | head -1`
        p1 = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        p2 = subprocess.run(["head", "-1"], stdin=p1.stdout, capture_output=True)
        p1.stdout.close()
        err = p1.stderr.read().decode()
        p1.wait()
        return subprocess.CompletedProcess(cmd, p1.returncode, p2.stdout.decode(), err)
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, input=stdin, timeout=300)


def outcome(proc, detail: str = "") -> str:
    if proc.returncode < 0:
        return f"killed by {signal.Signals(-proc.returncode).name}, no message"
    if "Traceback" in proc.stderr:
        last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1]
        return f"traceback ({last[:120]})"
    if proc.returncode == 2:
        line = [ln for ln in proc.stderr.splitlines() if "error" in ln][-1:] or proc.stderr.splitlines()[-1:]
        return f"error: {line[0][:220]}" if line else "error (no message)"
    warn = [ln for ln in proc.stderr.splitlines() if "warning" in ln.lower()]
    return f"accepted (exit {proc.returncode})" + (f"; {detail}" if detail else "") + \
        (f"; {warn[0][:200]}" if warn else "")


def taxonomy(project: Path) -> list[str]:
    conn = sqlite3.connect(project / "tagwise.db")
    row = conn.execute("SELECT value FROM meta WHERE key='taxonomy'").fetchone()
    conn.close()
    return json.loads(row[0]).get("labels", []) if row else []


def n_examples(project: Path, labeled: bool | None = None) -> int:
    conn = sqlite3.connect(project / "tagwise.db")
    where = "" if labeled is None else (" WHERE labels IS NOT NULL" if labeled else " WHERE labels IS NULL")
    n = conn.execute("SELECT COUNT(*) FROM examples" + where).fetchone()[0]
    conn.close()
    return n


def new_project(name: str) -> Path:
    p = TMP / name
    tw("init", p)
    return p


def spec_case(name: str, spec: str, files: dict[str, str | bytes]) -> tuple[subprocess.CompletedProcess, Path]:
    folder = TMP / f"src-{name}"
    folder.mkdir()
    for fname, content in files.items():
        (folder / fname).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (folder / "spec.yaml").write_text(spec, encoding="utf-8")
    project = new_project(f"p-{name}")
    return tw("add-source", project, folder / "spec.yaml"), project


CSV = "text,labels,id\nfirst text,joy,1\nsecond text,anger,2\nthird text,joy,3\nfourth text,anger,4\n"
BASIC = "path: data.csv\nlabels: {format: delimited}\ncolumns: {text: text, labels: labels, id: id}\n"
CASES: dict[str, str] = {}


def case(key: str):
    def wrap(fn):
        t0 = time.time()
        try:
            CASES[key] = fn()
        except Exception as exc:  # noqa: BLE001  (a broken case is reported, not fatal)
            CASES[key] = f"(case could not run: {type(exc).__name__}: {exc})"
        print(f"{key}: {CASES[key]}  [{time.time() - t0:.0f}s]", flush=True)
        return fn
    return wrap


# -- case 5 and 6 ----------------------------------------------------------------------
@case("5 unbalanced quote in the last CSV column")
def _():
    proc, p = spec_case("quote", BASIC, {"data.csv": 'text,labels,id\nfirst,joy,1\nsecond,anger,"2\nthird,joy,3\n'
                                                     'fourth,anger,4\n'})
    return outcome(proc, f"{n_examples(p) if proc.returncode == 0 else 0} examples stored of 4 rows")


@case("6 empty / whitespace-only label")
def _():
    proc, p = spec_case("emptylabel", "path: data.jsonl\nlabels: {format: list}\n",
                        {"data.jsonl": '{"text": "a", "labels": [" ", "joy"]}\n{"text": "b", "labels": ["anger"]}\n'})
    return outcome(proc, f"taxonomy {taxonomy(p)}" if proc.returncode == 0 else "")


for key, extra in [("language: [en, de]", "language: [en, de]\n"), ("limit: true", "limit: true\n"),
                   ("map: {joy: {x: 1}}", "labels: {format: delimited, map: {joy: {x: 1}}}\n"),
                   ("annotator: [a, b]", "annotator: [a, b]\n"), ("separator: [',']", "separator: [',']\n"),
                   ("id_base: abc", "labels: {format: delimited, id_base: abc}\n"),
                   ("columns: {text: {a: 1}}", "columns: {text: {a: 1}}\n"),
                   ("names: 5", "labels: {format: delimited, names: 5}\n"),
                   ("delimiter: ''", "labels: {format: delimited, delimiter: ''}\n")]:
    spec = "path: data.csv\n" + extra + ("" if "labels:" in extra else "labels: {format: delimited}\n")
    if "columns" not in extra:
        spec += "columns: {text: text, labels: labels, id: id}\n"

    def run(spec=spec, key=key):
        proc, p = spec_case(key.split(":")[0].replace(" ", ""), spec, {"data.csv": CSV})
        return outcome(proc, f"taxonomy {taxonomy(p)}" if proc.returncode == 0 else "")
    case(f"6/spec {key}")(run)


@case("6 label names differing only in Unicode normalisation")
def _():
    proc, p = spec_case("nfc", BASIC, {"data.csv": "text,labels,id\na,caf\u00e9,1\nb,cafe\u0301,2\n"})
    return outcome(proc, f"{len(taxonomy(p))} taxonomy labels {taxonomy(p)}" if proc.returncode == 0 else "")


@case("6 duplicate example ids in one source")
def _():
    proc, p = spec_case("dupid", BASIC, {"data.csv": "text,labels,id\na,joy,1\nb,anger,1\nc,joy,2\n"})
    return outcome(proc, f"{n_examples(p)} examples" if proc.returncode == 0 else "")


@case("6 blank one-hot cells in a test file, then evaluate")
def _():
    folder = TMP / "src-onehot"
    folder.mkdir()
    (folder / "train.csv").write_text("text,joy,anger\n" + "".join(
        f"happy day number {i},1,0\nangry day number {i},0,1\n" for i in range(30)))
    (folder / "test.csv").write_text("text,joy,anger\n" + "".join(f"test row {i},,\n" for i in range(10)))
    (folder / "spec.yaml").write_text("splits: {train: train.csv, test: test.csv}\nlabels: {format: onehot, "
                                      "onehot_columns: [joy, anger]}\n")
    p = new_project("p-onehot")
    add = tw("add-source", p, folder / "spec.yaml")
    tw("embed", p, "--encoder", "hashing:128")
    tw("train", p, "--model", "linear", "--params", '{"cv": 2, "C_grid": [1.0]}')
    ev = tw("evaluate", p, "--split", "test", "--json")
    detail = ""
    if ev.returncode == 0:
        detail = f"test rows stored as labeled: {n_examples(p, True) - 60}; macro-F1 {json.loads(ev.stdout)['macro_f1']}"
    return f"add-source exit {add.returncode}; evaluate: " + outcome(ev, detail)


@case("6/spec a folder given as the spec")
def _():
    p = new_project("p-folder")
    return outcome(tw("add-source", p, SAMPLE))


@case("6/spec YAML alias bomb (a 279-byte spec, 7 nested aliases in 'description')")
def _():
    levels = "abcdefg"
    parts = ["&a [x,x,x,x,x,x,x,x,x]"] + [f"&{c} [{','.join(['*' + p] * 9)}]" for p, c in zip(levels, levels[1:])]
    folder = TMP / "src-bomb"
    folder.mkdir()
    (folder / "data.csv").write_text(CSV)
    (folder / "spec.yaml").write_text("path: data.csv\nlabels: {format: delimited}\ndescription: [" + ", ".join(parts)
                                      + "]\n")
    p = new_project("p-bomb")
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-m", "tagwise", "add-source", str(p), str(folder / "spec.yaml")],
                              capture_output=True, text=True, env=ENV, timeout=120)
    except subprocess.TimeoutExpired:
        return "hung > 120 s (killed)"
    size = (p / "tagwise.db").stat().st_size / 1e6
    return outcome(proc) + f" in {time.time() - t0:.1f}s; tagwise.db {size:.1f} MB"


# -- a trained base project for the rest ----------------------------------------------
BASE = new_project("base")
tw("add-source", BASE, SAMPLE / "spec.yaml")
tw("embed", BASE, "--encoder", "hashing:256")
_train = tw("train", BASE, "--model", "linear", "--params", '{"cv": 2, "C_grid": [1.0]}')
print("base train:", _train.returncode, _train.stderr[-300:], flush=True)
MODEL = (BASE / "models" / "CURRENT").read_text().strip()
INPUT = TMP / "in.jsonl"
INPUT.write_text('{"text": "thank you so much"}\n{"text": "this is awful"}\n')


for enc in ["hashing:0", "hashing:abc", "hashing:-5", "st:/nonexistent", "use+", "hashing+hashing"]:
    def run(enc=enc):
        before = sorted(os.listdir(BASE / "cache" / "embeddings"))
        proc = tw("embed", BASE, "--encoder", enc)
        after = sorted(os.listdir(BASE / "cache" / "embeddings"))
        tw("embed", BASE, "--encoder", "hashing:256")  # the default encoder back
        new = sorted(set(after) - set(before))
        return outcome(proc) + (f"; new cache folders {new}" if new else "")
    case(f"encoder {enc}")(run)


def corrections_case(name: str, content: bytes, suffix: str = ".csv"):
    path = TMP / f"fix-{name}{suffix}"
    path.write_bytes(content)
    conn = sqlite3.connect(BASE / "tagwise.db")
    n0 = conn.execute("SELECT COUNT(*) FROM corrections").fetchone()[0]
    conn.close()
    proc = tw("corrections", BASE, "apply", path)
    conn = sqlite3.connect(BASE / "tagwise.db")
    n1 = conn.execute("SELECT COUNT(*) FROM corrections").fetchone()[0]
    batches = conn.execute("SELECT COUNT(DISTINCT batch) FROM corrections WHERE undone_at IS NULL").fetchone()[0]
    conn.close()
    if proc.returncode == 0 and batches:
        tw("corrections", BASE, "undo")
    runs = len([r for r in os.listdir(BASE / "runs") if "-corrections-" in r])
    return outcome(proc, f"{n1 - n0} corrections recorded; corrections run folders now {runs}"
                   if proc.returncode == 0 else "")


conn = sqlite3.connect(BASE / "tagwise.db")
SID, EXID, LAB = conn.execute("SELECT id, example_id, labels FROM examples WHERE split='train' ORDER BY id LIMIT 1").fetchone()
conn.close()
HEAD = "store_id,example_id,source,suggested_labels\n"
for name, row in [("store_id abc", f'abc,{EXID},goemotions-sample,"[""joy""]"\n'),
                  ("store_id 1.5", f'1.5,{EXID},goemotions-sample,"[""joy""]"\n'),
                  ("store_id 23 digits", f'{"1" * 23},{EXID},goemotions-sample,"[""joy""]"\n'),
                  ("suggested_labels \"joy\"", f'{SID},{EXID},goemotions-sample,joy\n'),
                  ("suggested_labels [[\"joy\"]]", f'{SID},{EXID},goemotions-sample,"[[""joy""]]"\n'),
                  ("two rows for one example", f'{SID},{EXID},goemotions-sample,"[""joy""]"\n'
                                               f'{SID},{EXID},goemotions-sample,"[""anger""]"\n')]:
    case(f"corrections {name}")(lambda name=name, row=row: corrections_case(name.split()[0] + str(len(row)),
                                                                          (HEAD + row).encode()))
case("corrections empty file (header only)")(lambda: corrections_case("empty", HEAD.encode()))
case("corrections Latin-1 CSV")(lambda: corrections_case(
    "latin1", (HEAD + f'{SID},{EXID},goemotions-sample,"[""joy""]"\n# caf\xe9\n').encode("latin-1")))
case("corrections JSONL row that is a list")(lambda: corrections_case("list", b'[1, 2]\n', ".jsonl"))


def model_case(name: str, corrupt) -> str:
    folder = BASE / "models" / f"bad-{name}"
    shutil.copytree(BASE / "models" / MODEL, folder)
    corrupt(folder)
    return outcome(tw("predict", BASE, INPUT, "--out", TMP / "pred.jsonl", "--model", folder.name))


def edit_json(fn):
    def corrupt(folder):
        doc = json.loads((folder / "model.json").read_text())
        fn(doc)
        (folder / "model.json").write_text(json.dumps(doc))
    return corrupt


def first_array(folder: Path) -> Path:
    return folder / (json.loads((folder / "model.json").read_text())["arrays"][0] + ".npy")


def _pickled(folder):
    import numpy as np
    np.save(first_array(folder), np.array([{"a": 1}], dtype=object), allow_pickle=True)


def _wrong_shape(folder):
    import numpy as np
    path = first_array(folder)
    arr = np.load(path)
    np.save(path, np.zeros(tuple(s + 1 for s in arr.shape), arr.dtype))


MODEL_CASES = {
    "class given as a list": edit_json(lambda d: d.update({"class": [d["class"]]})),
    "missing 'arrays'": edit_json(lambda d: d.pop("arrays")),
    "missing .npy file": lambda f: first_array(f).unlink(),
    "missing info.labels": edit_json(lambda d: d["info"].pop("labels")),
    "an extra param": edit_json(lambda d: d["meta"].setdefault("params", {}).update({"bogus": 1})
                                if isinstance(d["meta"].get("params"), dict) else d["meta"].update({"bogus": 1})),
    "wrong shape": _wrong_shape,
    "truncated .npy": lambda f: first_array(f).write_bytes(first_array(f).read_bytes()[:40]),
    ".npy that needs pickle": _pickled,
}
for name, corrupt in MODEL_CASES.items():
    case(f"model folder: {name}")(lambda name=name, corrupt=corrupt: model_case(name.split()[0] + str(len(name)), corrupt))

outside = TMP / "outside-model"
shutil.copytree(BASE / "models" / MODEL, outside)
case("--model ../../outside-model")(lambda: outcome(tw("predict", BASE, INPUT, "--out", TMP / "p.jsonl",
                                                      "--model", "../../outside-model")))


@case("models/CURRENT naming a folder outside models/")
def _():
    cur = BASE / "models" / "CURRENT"
    keep = cur.read_text()
    cur.write_text("../../outside-model\n")
    try:
        return outcome(tw("predict", BASE, INPUT, "--out", TMP / "p.jsonl"))
    finally:
        cur.write_text(keep)


for name, args in [("--params '{bad'", ["train", BASE, "--model", "linear", "--params", "{bad"]),
                   ("--params '{\"CC\": 1}' (unknown)", ["train", BASE, "--model", "linear", "--params", '{"CC": 1}']),
                   ("--params '{\"C\": \"abc\"}' (mistyped)", ["train", BASE, "--model", "linear", "--params",
                                                            '{"C": "abc", "cv": 2}']),
                   ("--params '[1]' (not an object)", ["train", BASE, "--model", "linear", "--params", "[1]"]),
                   ("audit --folds 0", ["audit", BASE, "--folds", "0", "--out", TMP / "i.csv"]),
                   ("audit --k -1", ["audit", BASE, "--k", "-1", "--out", TMP / "i.csv"]),
                   ("audit --k 0", ["audit", BASE, "--k", "0", "--out", TMP / "i.csv"]),
                   ("predict --no-header --text-column abc",
                    ["predict", BASE, SAMPLE / "test.tsv", "--format", "tsv", "--no-header", "--text-column", "abc",
                     "--out", TMP / "p.jsonl"]),
                   ("predict --out under a file (cannot be created)",
                    ["predict", BASE, INPUT, "--out", INPUT / "sub" / "p.jsonl"]),
                   ("predict: JSONL text that is not a string", None)]:
    def run(args=args, name=name):
        if args is None:
            bad = TMP / "nonstring.jsonl"
            bad.write_text('{"text": {"a": 1}}\n{"text": 5}\n')
            proc = tw("predict", BASE, bad, "--out", TMP / "ns.jsonl")
            return outcome(proc, "predictions written for the stringified values" if proc.returncode == 0 else "")
        return outcome(tw(*args))
    case(name)(run)

case("evaluate --json | head -1 (BrokenPipe)")(lambda: outcome(tw("evaluate", BASE, "--json", pipe_head=True)))


@case("another writer holds the lock for 8 s")
def _():
    conn = sqlite3.connect(BASE / "tagwise.db", isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    threading.Timer(8.0, lambda: conn.execute("COMMIT")).start()
    fix = TMP / "lock.csv"
    fix.write_text(HEAD + f'{SID},{EXID},goemotions-sample,"[""joy""]"\n')
    t0 = time.time()
    proc = tw("corrections", BASE, "apply", fix)
    waited = time.time() - t0
    time.sleep(max(0.0, 8.5 - waited))
    conn.close()
    if proc.returncode == 0:
        tw("corrections", BASE, "undo")
    return outcome(proc) + f" after {waited:.0f}s"


@case("report with a $...$ label name")
def _():
    folder = TMP / "src-math"
    folder.mkdir()
    (folder / "data.csv").write_text("text,labels\n" + "".join(
        f"row {i} happy,$\\frac{{a}}{{b}}$\nrow {i} sad,$x_$\n" for i in range(20)))
    (folder / "test.csv").write_text("text,labels\n" + "".join(
        f"test {i} happy,$\\frac{{a}}{{b}}$\ntest {i} sad,$x_$\n" for i in range(5)))
    (folder / "spec.yaml").write_text("splits: {train: data.csv, test: test.csv}\nlabels: {format: single}\n")
    p = new_project("p-math")
    tw("add-source", p, folder / "spec.yaml")
    tw("embed", p, "--encoder", "hashing:64")
    tw("train", p, "--model", "linear", "--params", '{"cv": 2, "C_grid": [1.0]}')
    tw("evaluate", p, "--split", "test")
    return outcome(tw("report", p))


@case("CSV injection in the audit CSV, then corrections apply")
def _():
    folder = TMP / "src-inject"
    folder.mkdir()
    evil = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)  # quotes inside a formula are escaped: the file is valid CSV
    writer.writerow(["text", "labels"])
    for i in range(40):
        writer.writerow([f"{evil[i % 6]} number {i}", "joy" if i % 2 else "anger"])
        writer.writerow([f"plain text {i}", "joy" if i % 2 else "anger"])
    (folder / "data.csv").write_text(buf.getvalue())
    (folder / "spec.yaml").write_text("path: data.csv\nlabels: {format: single}\n")
    p = new_project("p-inject")
    tw("add-source", p, folder / "spec.yaml")
    tw("embed", p, "--encoder", "hashing:64")
    out = TMP / "issues.csv"
    audit = tw("audit", p, "--all", "--folds", "2", "--out", out)
    if audit.returncode != 0:
        return "audit: " + outcome(audit)
    with out.open(newline="", encoding="utf-8") as fh:
        cells = [r["text"] for r in csv.DictReader(fh)]
    dangerous = sum(c[:1] in ("=", "+", "-", "@", "\t", "\r") for c in cells)
    apply = tw("corrections", p, "apply", out)
    return (f"{dangerous} of {len(cells)} text cells start with = + - @ tab or CR; corrections apply: "
            + outcome(apply))


OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps({"src": str(SRC), "cases": CASES}, indent=2, ensure_ascii=False) + "\n")
shutil.rmtree(TMP, ignore_errors=True)
print(f"wrote {OUT}")
