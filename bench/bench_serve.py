"""`tagwise serve` /api/predict against the endpoint a user would write, on loopback, same run.

The naive endpoint: FastAPI + uvicorn, a sync handler that calls the same encoder and a scikit-learn
one-vs-rest logistic regression (fitted on the same training embeddings) for each request. tagwise:
`tagwise serve` (micro-batched predictor, the fitted head's own predict). Both servers run as their
own processes with one BLAS thread; the load comes from this process (an asyncio HTTP/1.1 client with
keep-alive connections), with 1, 8 and 32 concurrent clients sending one short text per request.
Then a bounded soak of the tagwise server at 32 clients samples its RSS (every text unique, so no
cache can hide growth).

    python bench/bench_serve.py [--encoder use] [--requests 400] [--soak-s 300]
-> bench/results/serve.json

A team at work (issue 28), ``--team``: 20 annotators, each a real account (``tagwise users add --json``,
sending its Bearer token), label on ``tagwise serve --overlap 2`` (ask the queue for one example, think,
post the labels) while 32 clients call /api/predict. Predict alone at 32 clients is measured first, in
the same run, for as long. Checked afterwards in the store: every 2xx annotation answer is one stored
annotation under its annotator (none lost, none doubled) and no example has more than 2 people.

    python bench/bench_serve.py --team [--seconds 300] [--annotators 20] [--clients 32] [--think-s 5]
-> bench/results/serve_team.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(BENCH))

SAMPLE = ROOT / "examples" / "goemotions-sample"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": str(ROOT / "src")}


# -- the naive endpoint (runs in its own process) ----------------------------------------------------
class NaiveIn(BaseModel):
    texts: list[str]


def naive_server(project_path: str, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from tagwise.project import Project

    project = Project.open(project_path)
    ex = project.examples(split="train", labeled=True)
    names = list(project.labels.names)
    X = project.features(ex)
    Y = ex.label_matrix(project.labels)
    keep = Y.sum(0) > 0  # a label with no positive cannot be fitted by LogisticRegression
    clf = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(X, Y[:, keep])
    kept = [n for n, k in zip(names, keep) if k]
    encoder = project.encoder()

    app = FastAPI()

    @app.post("/api/predict")
    def predict(body: NaiveIn):
        P = clf.predict_proba(encoder.encode(body.texts))
        return {"predictions": [{"labels": [n for n, p in zip(kept, row) if p >= 0.5],
                                 "scores": {n: float(p) for n, p in zip(kept, row)}} for row in P]}

    @app.get("/api/health")
    def health():
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- load generator ------------------------------------------------------------------------------------
async def _client(port: int, texts, n_requests: list, latencies: list, errors: list, stop_at: float,
                  auth: bytes = b""):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while n_requests[0] > 0 and time.perf_counter() < stop_at:
            n_requests[0] -= 1
            body = json.dumps({"texts": [next(texts)]}).encode()
            req = (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + auth +
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            t0 = time.perf_counter()
            writer.write(req)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status != 200 or b"predictions" not in payload:
                errors.append(status)
    finally:
        writer.close()


def load(port: int, clients: int, n_requests: int, texts, max_s: float, auth: bytes = b"") -> dict:
    latencies, errors = [], []
    remaining = [n_requests]

    async def main():
        stop_at = time.perf_counter() + max_s
        await asyncio.gather(*(_client(port, texts, remaining, latencies, errors, stop_at, auth)
                               for _ in range(clients)))

    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "seconds": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1)}


def _text_stream(base: list[str], unique: bool):
    rng = random.Random(0)
    n = 0
    while True:
        t = base[rng.randrange(len(base))]
        n += 1
        yield f"{t} #{n}" if unique else t


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(port: int, proc, timeout: float = 600, token: str | None = None) -> None:
    import urllib.request

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/health", headers=headers),
                                   timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError("server did not come up")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_project(path: Path, encoder: str) -> None:
    from tagwise.project import Project
    from tagwise.workflows.train import train

    if (path / "models" / "CURRENT").exists():
        return
    project = Project.init(path, exist_ok=True)
    if not project.store.source_names():
        project.add_source(SAMPLE / "spec.yaml")
    project.embed(encoder)
    train(project, mode="supervised", progress=True)


# -- a team at work (issue 28) -------------------------------------------------------------------------
async def _http(reader, writer, method: str, path: str, body: dict | None, headers: dict) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a keep-alive connection -> (status, body)."""
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    writer.write(head.encode() + b"\r\n" + data)
    await writer.drain()
    got = await reader.readuntil(b"\r\n\r\n")
    status = int(got.split(b" ", 2)[1])
    length = 0
    for line in got.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)


async def _request(port: int, method: str, path: str, body: dict | None, headers: dict) -> tuple[int, bytes]:
    """One request on a connection of its own: a person's browser idles longer between requests than a
    server keeps a connection open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await _http(reader, writer, method, path, body, headers)
    finally:
        writer.close()


async def _annotator(port: int, name: str, token: str, think_s: float, stop_at: float, log: dict, seed: int):
    """One person: ask for the next example, think, post labels (the model's guess, or one label of their
    own choosing now and then), until ``stop_at``. Every answer is logged; a post whose answer never
    came is counted as unknown (it may or may not have been stored)."""
    rng = random.Random(seed)
    auth = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        status, payload = await _request(port, "GET", "/api/queue?kind=label&limit=1", None, auth)
        log["queue_ms"].append((time.perf_counter() - t0) * 1000)
        if status != 200:
            log["errors"].append(["queue", status, payload[:200].decode("utf-8", "replace")])
            await asyncio.sleep(min(think_s, max(0.0, stop_at - time.perf_counter())))
            continue
        answer = json.loads(payload)
        items = answer["items"]
        if not items:
            log["empty"] += 1
            log["preparing"] += bool(answer.get("preparing"))  # the next batch was still being prepared
            await asyncio.sleep(min(1.0, max(0.0, stop_at - time.perf_counter())))
            continue
        item = items[0]
        think = think_s * rng.uniform(0.5, 1.5)  # reading the text, choosing labels
        if time.perf_counter() + think >= stop_at:
            break  # the run ends before this person would answer
        await asyncio.sleep(think)
        labels = list(item["labels"]) if rng.random() < 0.7 else [rng.choice(log["names"])]
        body = {"example_id": item["example_id"], "labels": labels, "origin": item["origin"]}
        t0 = time.perf_counter()
        try:
            status, payload = await _request(port, "POST", "/api/annotations", body, auth)
        except (OSError, asyncio.IncompleteReadError):
            log["unknown"] += 1
            continue
        log["post_ms"].append((time.perf_counter() - t0) * 1000)
        if status == 200:
            log["ok"].append([name, item["example_id"], json.loads(payload)["annotation_id"]])
        elif status == 409:  # the example got its 2 people while this one was thinking
            log["refused_overlap"] += 1
        else:
            log["errors"].append(["annotation", status, payload[:200].decode("utf-8", "replace")])


def _predict_clients(port: int, clients: int, texts, stop_at: float, latencies: list, errors: list, auth: bytes):
    remaining = [10**9]
    return [_client(port, texts, remaining, latencies, errors, stop_at, auth) for _ in range(clients)]


def _latency(latencies: list, errors: list, seconds: float) -> dict:
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": len(errors), "seconds": round(seconds, 1),
            "throughput_rps": round(len(latencies) / seconds, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1)}


def team(args) -> None:
    import contextlib
    import io
    import urllib.request

    from common import save_results
    from tagwise.cli import main as tagwise_cli
    from tagwise.project import Project

    project_path = Path(args.project) / f"team-{args.encoder.replace(':', '-')}"
    if project_path.exists():  # a fresh project each run: the store's counts are this run's alone
        import shutil

        shutil.rmtree(project_path)
    project = Project.init(project_path)
    project.add_source(SAMPLE / "spec.yaml")
    project.add_source(SAMPLE / "unlabeled.yaml")  # the pool the label queue suggests from
    project.close()
    build_project(project_path, args.encoder)
    names = [f"annotator{k:02d}" for k in range(args.annotators)]
    tokens = {}
    for name in [*names, "predict-service"]:  # `tagwise users add PROJECT NAME --json`, in this process;
        # the predict clients are a program with an account of its own
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert tagwise_cli(["users", "add", str(project_path), name, "--json"]) == 0
        tokens[name] = json.loads(out.getvalue())["token"]
    project = Project.open(project_path)
    label_names = list(project.labels.names)
    project.close()

    texts = [ln.split("\t")[0] for ln in (SAMPLE / "test.tsv").read_text(encoding="utf-8").splitlines()]
    service = tokens.pop("predict-service")
    auth = f"Authorization: Bearer {service}\r\n".encode()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tagwise", "serve", str(project_path), "--port", str(port),
                             "--overlap", str(args.overlap)], env=ENV)
    results = {"command": shlex.join(["python", "bench/bench_serve.py", *sys.argv[1:]]), "python": sys.executable,
               "encoder": args.encoder,
               "seconds": args.seconds, "annotators": args.annotators, "predict_clients": args.clients,
               "overlap": args.overlap, "think_s": args.think_s, "cpus": os.cpu_count(),
               "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        _wait_up(port, proc, token=service)
        load(port, 1, 5, _text_stream(texts, False), 60, auth)  # warm: model load, first encoder call
        # the team starts on a queue: its first batch (which `serve` starts preparing in the background
        # at start) is ready before the clock starts; later batches, prepared in the background when the
        # open places run low, are part of the measured load
        t0 = time.perf_counter()
        while True:
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/queue?kind=label&limit=1",
                    headers={"Authorization": f"Bearer {tokens[names[0]]}"}), timeout=600) as r:
                answer = json.loads(r.read())
            if answer["items"]:
                first = answer["items"][0]["example_id"]
                break
            if not answer.get("preparing") or time.perf_counter() - t0 > 600:
                raise SystemExit(f"the label queue has no first batch: {answer.get('message')}")
            time.sleep(1.0)
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/api/queue/release", data=json.dumps({"example_id": first}).encode(),
            headers={"Authorization": f"Bearer {tokens[names[0]]}", "Content-Type": "application/json"}), timeout=60)
        results["first_batch_s"] = round(time.perf_counter() - t0, 1)
        # 1. predict alone
        lat, err = [], []

        async def alone():
            stop_at = time.perf_counter() + args.seconds
            await asyncio.gather(*_predict_clients(port, args.clients, _text_stream(texts, True), stop_at, lat, err, auth))
        t0 = time.perf_counter()
        asyncio.run(alone())
        results["predict_alone"] = _latency(lat, err, time.perf_counter() - t0)
        print(f"predict alone: {results['predict_alone']}", flush=True)
        # 2. the same predict load while the team labels
        lat, err = [], []
        log = {"ok": [], "refused_overlap": 0, "errors": [], "unknown": 0, "empty": 0, "preparing": 0, "queue_ms": [],
               "post_ms": [], "names": label_names}

        async def mixed():
            stop_at = time.perf_counter() + args.seconds
            await asyncio.gather(
                *_predict_clients(port, args.clients, _text_stream(texts, True), stop_at, lat, err, auth),
                *(_annotator(port, n, tokens[n], args.think_s, stop_at, log, seed=k) for k, n in enumerate(names)))
        t0 = time.perf_counter()
        asyncio.run(mixed())
        wall = time.perf_counter() - t0
        results["predict_with_team"] = _latency(lat, err, wall)
        results["p99_ratio"] = round(results["predict_with_team"]["p99_ms"] / results["predict_alone"]["p99_ms"], 3)
        results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    # 3. the store against the answers
    project = Project.open(project_path)
    stored = [a for a in project.store.annotations() if a["annotator"] in tokens]
    project.close()
    answered = {aid: (name, example) for name, example, aid in log["ok"]}
    stored_ids = {a["id"]: (a["annotator"], a["example"]) for a in stored}
    pairs: dict = {}
    people: dict = {}
    for a in stored:
        pairs[(a["annotator"], a["example"])] = pairs.get((a["annotator"], a["example"]), 0) + 1
        people.setdefault(a["example"], set()).add(a["annotator"])
    per_person = {n: sum(1 for x in log["ok"] if x[0] == n) for n in names}
    results["team"] = {
        "annotations_2xx": len(log["ok"]), "annotations_stored": len(stored),
        "lost": len(set(answered) - set(stored_ids)),
        "stored_without_2xx": len(set(stored_ids) - set(answered)),  # a request whose answer never came
        "mismatched": sum(1 for aid, who in answered.items() if aid in stored_ids and stored_ids[aid] != who),
        "doubled_person_example": sum(1 for c in pairs.values() if c > 1),
        "examples": len(people), "examples_with_2_people": sum(1 for p in people.values() if len(p) == 2),
        "examples_over_overlap": sum(1 for p in people.values() if len(p) > args.overlap),
        "refused_overlap_409": log["refused_overlap"], "unknown_outcome": log["unknown"],
        "errors": len(log["errors"]), "error_samples": log["errors"][:5], "empty_queue_answers": log["empty"],
        "preparing_answers": log["preparing"],
        "annotations_per_s": round(len(log["ok"]) / wall, 2),
        "per_person_min": min(per_person.values()), "per_person_max": max(per_person.values()),
        "queue_p50_ms": round(float(np.percentile(log["queue_ms"], 50)), 1) if log["queue_ms"] else None,
        "queue_p99_ms": round(float(np.percentile(log["queue_ms"], 99)), 1) if log["queue_ms"] else None,
        "post_p50_ms": round(float(np.percentile(log["post_ms"], 50)), 1) if log["post_ms"] else None,
        "post_p99_ms": round(float(np.percentile(log["post_ms"], 99)), 1) if log["post_ms"] else None}
    t = results["team"]
    results["checks"] = {
        "no_lost_or_doubled": t["lost"] == 0 and t["stored_without_2xx"] == 0 and t["mismatched"] == 0
        and t["doubled_person_example"] == 0 and t["annotations_2xx"] == t["annotations_stored"],
        "never_over_overlap": t["examples_over_overlap"] == 0,
        "predict_p99_within_1_5x": results["p99_ratio"] <= 1.5}
    print(json.dumps({k: results[k] for k in ("predict_with_team", "p99_ratio", "team", "checks")}, indent=1))
    path = save_results("serve_team", results)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--naive-server", nargs=2, metavar=("PROJECT", "PORT"))
    ap.add_argument("--encoder", default="use")
    ap.add_argument("--requests", type=int, default=400, help="requests per (endpoint, clients) level")
    ap.add_argument("--max-s", type=float, default=90, help="time bound per level")
    ap.add_argument("--soak-s", type=float, default=300)
    ap.add_argument("--project", default=str(ROOT / "bench" / "out" / "serve-project"))
    ap.add_argument("--team", action="store_true", help="a team labeling while clients predict (issue 28)")
    ap.add_argument("--seconds", type=float, default=300, help="--team: predict alone, then with the team, this long each")
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--clients", type=int, default=32, help="--team: predict clients")
    ap.add_argument("--overlap", type=int, default=2)
    ap.add_argument("--think-s", type=float, default=5.0,
                    help="--team: an annotator's time per example (uniform 0.5-1.5x), between asking and posting")
    args = ap.parse_args()
    if args.naive_server:
        naive_server(args.naive_server[0], int(args.naive_server[1]))
        return
    if args.team:
        team(args)
        return
    from common import save_results

    project = Path(args.project) / args.encoder.replace(":", "-")
    build_project(project, args.encoder)
    texts = [ln.split("\t")[0] for ln in (SAMPLE / "test.tsv").read_text(encoding="utf-8").splitlines()]
    ports = {"tagwise": _free_port(), "naive": _free_port()}
    procs = {"tagwise": subprocess.Popen([sys.executable, "-m", "tagwise", "serve", str(project), "--port",
                                          str(ports["tagwise"])], env=ENV),
             "naive": subprocess.Popen([sys.executable, __file__, "--naive-server", str(project),
                                        str(ports["naive"])], env=ENV)}
    results = {"encoder": args.encoder, "requests_per_level": args.requests, "max_s_per_level": args.max_s,
               "levels": {}, "cpus": os.cpu_count(), "load_average_start": os.getloadavg()}
    try:
        for name, proc in procs.items():
            _wait_up(ports[name], proc)
        for name in procs:  # warm both (model load, first encoder call)
            load(ports[name], 1, 5, _text_stream(texts, False), 60)
        for clients in (1, 8, 32):
            level = {}
            for name in ("naive", "tagwise"):
                level[name] = load(ports[name], clients, args.requests, _text_stream(texts, False), args.max_s)
                print(f"{clients:>2} clients  {name:<8} {level[name]}", flush=True)
            level["throughput_ratio"] = round(level["tagwise"]["throughput_rps"] / level["naive"]["throughput_rps"], 2)
            level["p99_ratio"] = round(level["tagwise"]["p99_ms"] / level["naive"]["p99_ms"], 3)
            print(f"{clients:>2} clients  tagwise/naive throughput x{level['throughput_ratio']}, "
                  f"p99 x{level['p99_ratio']}", flush=True)
            results["levels"][str(clients)] = level
        # soak: the tagwise server at 32 clients, RSS sampled every 5 s
        pid = procs["tagwise"].pid
        samples = []
        stream = _text_stream(texts, True)
        t_end = time.time() + args.soak_s
        total = {"requests": 0, "errors": 0}
        while time.time() < t_end:
            r = load(ports["tagwise"], 32, 10**9, stream, min(5.0, max(0.5, t_end - time.time())))
            total["requests"] += r["requests"]
            total["errors"] += r["errors"]
            samples.append({"t": round(args.soak_s - (t_end - time.time()), 1), "rss_mb": round(rss_mb(pid), 1),
                            "rps": r["throughput_rps"], "p99_ms": r["p99_ms"]})
            print(f"soak {samples[-1]}", flush=True)
        rss = [s["rss_mb"] for s in samples]
        k = max(1, len(rss) // 5)
        results["soak"] = {"seconds": args.soak_s, "clients": 32, **total, "samples": samples,
                           "rss_first_fifth_max_mb": max(rss[:k]), "rss_last_fifth_max_mb": max(rss[-k:]),
                           "rss_peak_mb": max(rss), "rss_growth_mb": round(max(rss[-k:]) - max(rss[:k]), 1)}
        results["load_average_end"] = os.getloadavg()
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
    path = save_results("serve", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
