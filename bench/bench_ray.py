"""--engine ray against the local engine (issue 20): embed, predict and audit throughput, in one run.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 TAGWISE_CACHE_DIR=/work/.cache/embeddings \
        python bench/bench_ray.py [--n 20000] [--workers 2]

Short texts: GoEmotions comments (deduplicated), USE encoder (the default). Every engine encodes into
its own fresh, empty cache, so both encode every text. A local Ray is started once with ``--workers``
CPUs; its start-up is reported apart (a command pays it once), and the per-worker throughput (texts/s
divided by the workers) is what scales to a cluster. The peer is what a user would write without
tagwise's engine: Ray Data ``read_parquet(...).map_batches(<class loading the encoder and the head>)``,
on the same texts, model and workers. Saves ``bench/results/ray.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, peak_rss_mb, save_results  # noqa: E402

DATA = BENCH.parent.parent / "shared" / "data" / "goemotions"


def goemotions_texts() -> list[str]:
    seen, out = set(), []
    for split in ("train", "dev", "test"):
        for line in (DATA / f"original_{split}.tsv").read_text(encoding="utf-8").splitlines():
            t = line.split("\t")[0]
            if t.strip() and t not in seen:
                seen.add(t)
                out.append(t)
    return out


class UserPredictor:
    """The peer: what a user writes for Ray Data — load the encoder and the saved head once per actor,
    then encode and score each batch (no cache)."""

    def __init__(self, model_dir: str):
        from tagwise.encoders import get_encoder
        from tagwise.learn.persist import load_model

        self.head, info = load_model(model_dir)
        self.encoder = get_encoder(info["encoder"])
        self.names = info["labels"]

    def __call__(self, batch):
        X = self.encoder.encode(list(batch["text"]))
        P = self.head.predict_proba(X)
        Z = self.head.decide(P)
        return {"id": batch["id"],
                "labels": np.array([json.dumps([self.names[k] for k in np.flatnonzero(z)]) for z in Z]),
                "scores": np.array([json.dumps({n: round(float(p), 6) for n, p in zip(self.names, row)}) for row in P])}


class UserEncoder:
    def __init__(self):
        from tagwise.encoders import get_encoder

        self.encoder = get_encoder("use")

    def __call__(self, batch):
        return {"vec": self.encoder.encode(list(batch["text"]))}


def cpu_seconds() -> float:
    """CPU time used so far by this process and by every Ray process of this machine (raylet, GCS,
    workers, actors): the cost of a step, whatever share of the busy machine it got."""
    total = time.process_time()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            cmd = (stat.parent / "cmdline").read_bytes()
            if b"ray::" in cmd or b"raylet" in cmd or b"gcs_server" in cmd or b"ray/_private" in cmd:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    return total


class Clock:
    """Wall time and CPU time (``cpu_seconds``) of one step."""

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.t0, cpu_seconds() - self.c0


def rate(n, clock, workers=1):
    """Throughput of a step: per second of wall time, per worker, and per CPU-second (the figure
    that does not depend on how busy the machine was, and that scales to a cluster)."""
    return {"seconds": round(clock.wall, 2), "texts_per_s": round(n / clock.wall, 1),
            "texts_per_s_per_worker": round(n / clock.wall / workers, 1),
            "cpu_seconds": round(clock.cpu, 2), "texts_per_cpu_s": round(n / clock.cpu, 1)}


def peer_rate(n, clock, workers):
    return {k: v for k, v in rate(n, clock, workers).items() if not k.startswith(("cpu", "texts_per_cpu"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6_000, help="short texts to embed and predict")
    ap.add_argument("--audit-rows", type=int, default=20_000, help="labeled GoEmotions train rows to audit")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-rows", type=int, default=500)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    from tagwise.audit.core import audit_arrays
    from tagwise.encoders import embed_texts, get_encoder
    from tagwise.engine import LocalEngine, RayEngine
    from tagwise.project import Project
    from tagwise.workflows.embed import embed_texts_on
    from tagwise.workflows.models import load_project_model
    from tagwise.workflows.predict import predict_file
    from tagwise.workflows.train import train

    texts_all = goemotions_texts()
    n = min(args.n, len(texts_all))
    texts = texts_all[:n]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    shared_cache = os.environ.get("TAGWISE_CACHE_DIR")
    results = {"n_texts": n, "workers": args.workers, "encoder": "use", "chunk_rows": args.chunk_rows,
               "machine": f"{os.cpu_count()} cores shared with other jobs; OMP_NUM_THREADS="
                          f"{os.environ.get('OMP_NUM_THREADS')}"}

    # a model to predict with: a supervised head on 5,000 GoEmotions train rows (embedded from the shared cache)
    spec = tmp / "goemotions.yaml"
    spec.write_text(
        f"name: goemotions\nformat: tsv\nheader: false\nquoting: none\ncolumns: {{text: 0, labels: 1, id: 2}}\n"
        f"splits: {{train: {DATA}/original_train.tsv}}\n"
        f"labels: {{format: delimited, delimiter: ',', names_file: {DATA}/original_labels.txt}}\nlimit: 5000\n")
    project = Project.init(tmp / "p")
    project.add_source(spec)
    project.embed("use", progress=False)
    train(project, mode="supervised", params={"C": 1.0, "cv": 2}, progress=False)
    model_dir = load_project_model(project).path

    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    results["ray_init_s"] = round(time.perf_counter() - t0, 2)
    engine = RayEngine()
    local = LocalEngine()

    # 1. embed: every text encoded into a fresh cache, local vs Ray tasks. "cold" includes loading the
    # encoder (once locally, once per Ray worker process) and the workers' first imports, as one command
    # pays them; "warm" repeats the step into new caches with everything loaded: the rate that scales.
    results["embed"], results["predict"] = {}, {}
    encoder = None
    for phase in ("cold", "warm"):
        with Clock() as c_local:
            encoder = encoder or get_encoder("use")
            X_local, _ = embed_texts(texts, encoder, tmp / f"cache-embed-local-{phase}", progress=False)
        with Clock() as c_ray:
            X_ray, stats = embed_texts_on(engine, texts, "use", tmp / f"cache-embed-ray-{phase}", progress=False)
        results["embed"][phase] = {"local": rate(n, c_local), "ray": rate(n, c_ray, args.workers),
                                   "speedup": round(c_local.wall / c_ray.wall, 2),
                                   "cpu_overhead": round(c_ray.cpu / c_local.cpu, 2), "encoded": stats.n_encoded,
                                   "max_abs_diff": float(np.abs(X_ray - X_local).max())}
        print("embed", phase, results["embed"][phase], flush=True)

    # 2. predict: a Parquet file of the texts -> JSONL, each engine with a fresh cache
    pq.write_table(pa.table({"id": [f"t{i}" for i in range(n)], "text": texts}), tmp / "in.parquet")
    project._encoders.clear()  # the cold local run loads its encoder, as a command does
    for phase in ("cold", "warm"):
        os.environ["TAGWISE_CACHE_DIR"] = str(tmp / f"cache-predict-local-{phase}")
        with Clock() as c_local:
            predict_file(project, tmp / "in.parquet", tmp / "local.jsonl", engine=local, chunk_rows=args.chunk_rows,
                         progress=False)
        os.environ["TAGWISE_CACHE_DIR"] = str(tmp / f"cache-predict-ray-{phase}")
        with Clock() as c_ray:
            predict_file(project, tmp / "in.parquet", tmp / "ray.jsonl", engine=engine, chunk_rows=args.chunk_rows,
                         progress=False)
        a = [json.loads(x) for x in (tmp / "local.jsonl").read_text().splitlines()]
        b = [json.loads(x) for x in (tmp / "ray.jsonl").read_text().splitlines()]
        results["predict"][phase] = {
            "local": rate(n, c_local), "ray": rate(n, c_ray, args.workers), "speedup": round(c_local.wall / c_ray.wall, 2),
            "cpu_overhead": round(c_ray.cpu / c_local.cpu, 2), "same_order": [r["id"] for r in a] == [r["id"] for r in b],
            "max_abs_score_diff": max(abs(ra["scores"][k] - rb["scores"][k]) for ra, rb in zip(a, b) for k in ra["scores"]),
            "same_labels": all(ra["labels"] == rb["labels"] for ra, rb in zip(a, b))}
        print("predict", phase, results["predict"][phase], flush=True)

    # 3. the peer: Ray Data map_batches with the encoder and the head loaded once per actor (no cache)
    if not args.no_peer:
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        # the reads reserve no CPU: with both CPUs held by the two actors, one-CPU read tasks would wait forever
        read = dict(override_num_blocks=4 * args.workers, ray_remote_args={"num_cpus": 0})
        with Clock() as c_peer, open(tmp / "peer.jsonl", "w", encoding="utf-8") as fh:
            for batch in ray.data.read_parquet(str(tmp / "in.parquet"), **read).map_batches(
                    UserPredictor, fn_constructor_kwargs={"model_dir": str(model_dir)}, batch_size=args.chunk_rows,
                    concurrency=args.workers).iter_batches(batch_size=None):
                fh.write("".join(json.dumps({"id": i, "labels": json.loads(lab), "scores": json.loads(sc)}) + "\n"
                                 for i, lab, sc in zip(batch["id"], batch["labels"], batch["scores"])))
        # wall time only: Ray Data's actors exit at the end, taking their CPU time out of /proc
        results["predict"]["peer_ray_data_cold"] = peer_rate(n, c_peer, args.workers)
        results["predict"]["peer_wall_over_ray_cold"] = round(c_peer.wall / results["predict"]["cold"]["ray"]["seconds"], 2)
        with Clock() as c_peer:
            ray.data.read_parquet(str(tmp / "in.parquet"), **read).map_batches(
                UserEncoder, batch_size=args.chunk_rows, concurrency=args.workers).materialize()
        results["embed"]["peer_ray_data_cold"] = peer_rate(n, c_peer, args.workers)
        results["embed"]["peer_wall_over_ray_cold"] = round(c_peer.wall / results["embed"]["cold"]["ray"]["seconds"], 2)
        print("peer", results["predict"]["peer_ray_data_cold"], results["embed"]["peer_ray_data_cold"], flush=True)

    # 4. audit: cross-fitting folds + kNN on labeled GoEmotions train rows (USE vectors from the shared cache)
    if shared_cache:
        os.environ["TAGWISE_CACHE_DIR"] = shared_cache
    from tagwise.sources import ingest, load_spec
    from tagwise.types import LabelSpace

    spec.write_text(spec.read_text().replace("limit: 5000", f"limit: {args.audit_rows}"))
    rows = ingest(load_spec(spec))
    space = LabelSpace(tuple(rows.annotated_labels))
    Y = space.to_matrix(rows.labels)
    X, _ = embed_texts(rows.texts, get_encoder("use"), shared_cache or tmp / "cache-audit", progress=False)
    res = {}
    # "ray" includes each worker's first import of the audit code; "ray_warm" is a second run
    for name, map_fn in (("local", None), ("ray", engine.map), ("ray_warm", engine.map)):
        with Clock() as c:
            r = audit_arrays(X, Y, texts=rows.texts, folds=5, progress=False, map_fn=map_fn)
        res[name] = {"seconds": round(c.wall, 2), "cross_fit_s": round(r.seconds["cross_fit"], 2),
                     "knn_s": round(r.seconds["knn"], 2), "rows_per_s": round(len(Y) / c.wall, 1),
                     "cpu_seconds": round(c.cpu, 2), "rows_per_cpu_s": round(len(Y) / c.cpu, 1)}
        res[name + "_result"] = r
        print("audit", name, res[name], flush=True)
    results["audit"] = {"rows": len(Y), "local": res["local"], "ray": res["ray"], "ray_warm": res["ray_warm"],
                        "speedup": round(res["local"]["seconds"] / res["ray"]["seconds"], 2),
                        "speedup_warm": round(res["local"]["seconds"] / res["ray_warm"]["seconds"], 2),
                        "cpu_overhead": round(res["ray"]["cpu_seconds"] / res["local"]["cpu_seconds"], 2),
                        "cpu_overhead_warm": round(res["ray_warm"]["cpu_seconds"] / res["local"]["cpu_seconds"], 2),
                        "max_abs_prob_diff": float(np.abs(res["ray_result"].pred_probs - res["local_result"].pred_probs).max()),
                        "same_flags": bool(np.array_equal(res["ray_result"].is_flagged, res["local_result"].is_flagged))}
    results["audit"]["ray"]["rows_per_s_per_worker"] = round(results["audit"]["ray"]["rows_per_s"] / args.workers, 1)
    print("audit", results["audit"], flush=True)

    # what 1M short texts cost at these rates (predict dominates: encode + head + write)
    # per worker = warm texts per CPU-second on Ray (one worker is one CPU): what an idle core would do
    warm = results["predict"]["warm"]
    per_worker = warm["ray"]["texts_per_cpu_s"]
    results["extrapolation_1M_predict"] = {
        "local_this_run_hours": round(1e6 / warm["local"]["texts_per_s"] / 3600, 2),
        "ray_this_run_hours": round(1e6 / warm["ray"]["texts_per_s"] / 3600, 2),
        "ray_per_idle_worker_texts_per_s": per_worker,
        "ray_one_idle_core_hours": round(1e6 / per_worker / 3600, 2),
        "ray_100_idle_workers_minutes": round(1e6 / (100 * per_worker) / 60, 2),
        "note": "per idle worker = warm texts per CPU-second of the Ray run (driver, raylet and workers included); "
                "linear in workers while the input has more chunks than workers and the cache sits on a shared "
                "filesystem; measured on 2 cores shared with other jobs, not on a cluster"}
    results["peak_rss_mb_driver"] = round(peak_rss_mb(), 1)
    ray.shutdown()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    path = save_results("ray", results)
    print(json.dumps(results, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
