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
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
async def _client(port: int, texts, n_requests: list, latencies: list, errors: list, stop_at: float):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while n_requests[0] > 0 and time.perf_counter() < stop_at:
            n_requests[0] -= 1
            body = json.dumps({"texts": [next(texts)]}).encode()
            req = (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
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


def load(port: int, clients: int, n_requests: int, texts, max_s: float) -> dict:
    latencies, errors = [], []
    remaining = [n_requests]

    async def main():
        stop_at = time.perf_counter() + max_s
        await asyncio.gather(*(_client(port, texts, remaining, latencies, errors, stop_at) for _ in range(clients)))

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


def _wait_up(port: int, proc, timeout: float = 600) -> None:
    import urllib.request

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--naive-server", nargs=2, metavar=("PROJECT", "PORT"))
    ap.add_argument("--encoder", default="use")
    ap.add_argument("--requests", type=int, default=400, help="requests per (endpoint, clients) level")
    ap.add_argument("--max-s", type=float, default=90, help="time bound per level")
    ap.add_argument("--soak-s", type=float, default=300)
    ap.add_argument("--project", default=str(ROOT / "bench" / "out" / "serve-project"))
    args = ap.parse_args()
    if args.naive_server:
        naive_server(args.naive_server[0], int(args.naive_server[1]))
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
