"""Scale check for the project store and embedding cache: 1M-10M examples x 100 labels on one machine.

Writes synthetic CSVs (texts built from a 5k-word vocabulary, 1-3 of 100 labels each; ``--sources``
files of equal size), then times `tagwise add-source` for each, loading the label matrix and the text
keys column-wise (``Store.label_matrix``/``example_text_keys``), loading all examples as objects (only
up to ``--examples-max`` rows: it costs ~1 KB per row), filling the embedding cache with 512-d float32
vectors and gathering them back in 1M-row chunks (memory-mapped), each in its own process with its
peak RSS, plus the size on disk of the store and the cache. The temporary project is deleted at the end.

    python bench/bench_scale.py [--rows 1000000] [--sources 1] [--out scale] [--tmp DIR]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402


def run_timed(code: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    rss_kb, user, system = proc.stderr.strip().splitlines()[-1].split()
    # CPU seconds too: on a shared machine the wall time also counts other people's work
    return {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(float(user) + float(system), 1),
            "peak_rss_mb": round(int(rss_kb) / 1024), "out": proc.stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sources", type=int, default=1, help="split the rows over this many source files")
    ap.add_argument("--examples-max", type=int, default=2_000_000,
                    help="time Project.examples() (Python objects per row) only up to this many rows")
    ap.add_argument("--out", default="scale", help="results name under bench/results")
    ap.add_argument("--tmp", default=None, help="folder for the synthetic project (default: the system's)")
    ap.add_argument("--steps", default="store,cache",
                    help="store: CSVs, add-source, label matrix; cache: fill and gather the cache (without "
                         "'store' the keys are random)")
    ap.add_argument("--csv-dir", default=None, help="write the CSVs here and keep them; reuse the ones there")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(5000)])
    results = {"rows": args.rows, "labels": 100, "sources": args.sources, "dim": 512}
    per_source = -(-args.rows // args.sources)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        steps = set(args.steps.split(","))
        project = tmp / "p"
        keys_code = "p = Project.open(%r); keys = p.store.example_text_keys()" % str(project)
        if "store" in steps:
            csv_dir = Path(args.csv_dir) if args.csv_dir else tmp
            csv_dir.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            for s in range(args.sources):
                lo, hi = s * per_source, min(args.rows, (s + 1) * per_source)
                if (csv_dir / f"big{s}.yaml").exists():
                    continue
                with open(csv_dir / f"big{s}.csv", "w") as f:
                    f.write("text,labels\n")
                    for start in range(lo, hi, 100_000):
                        n = min(100_000, hi - start)
                        words = vocab[rng.integers(0, 5000, size=(n, 12))]
                        labs = rng.integers(0, 100, size=(n, 3))
                        k = rng.integers(1, 4, size=n)
                        f.writelines(f"{start + i} {' '.join(words[i])},\"{'|'.join(f'L{x}' for x in labs[i, :k[i]])}\"\n"
                                     for i in range(n))
                (csv_dir / f"big{s}.yaml").write_text(f"name: big{s}\npath: big{s}.csv\nlabels: {{delimiter: '|'}}\n")
            results["csv_write_seconds"] = round(time.perf_counter() - t0, 1)
            print(f"csv written in {results['csv_write_seconds']}s", flush=True)
            subprocess.run([sys.executable, "-m", "tagwise", "init", str(project)], check=True)
            adds = [run_timed(f"""
                from tagwise.project import Project
                print(Project.open({str(project)!r}).add_source({str(csv_dir / f'big{s}.yaml')!r})['n_examples'])""")
                    for s in range(args.sources)]
            results["add_source"] = {"seconds": round(sum(a["seconds"] for a in adds), 1),
                                     "cpu_seconds": round(sum(a["cpu_seconds"] for a in adds), 1),
                                     "peak_rss_mb": max(a["peak_rss_mb"] for a in adds),
                                     "out": str(sum(int(a["out"]) for a in adds)),
                                     "per_source_seconds": [a["seconds"] for a in adds]}
            print("add_source", results["add_source"], flush=True)
            results["load_label_matrix"] = run_timed(f"""
                import time; from tagwise.project import Project
                p = Project.open({str(project)!r}); t = time.perf_counter()
                Y = p.store.label_matrix(p.labels.names); t1 = time.perf_counter() - t
                t = time.perf_counter(); keys = p.store.example_text_keys(); t2 = time.perf_counter() - t
                print(Y.shape, int(Y.sum()), "matrix", round(t1, 1), "s; keys", keys.shape, round(t2, 1), "s")""")
            print("load_label_matrix", results["load_label_matrix"], flush=True)
            if args.rows <= args.examples_max:
                results["load_examples"] = run_timed(f"""
                    import time; from tagwise.project import Project
                    p = Project.open({str(project)!r}); t = time.perf_counter(); ex = p.examples()
                    Y = ex.label_matrix(p.labels); print(len(ex), Y.shape, round(time.perf_counter() - t, 1))""")
                print("load_examples", results["load_examples"], flush=True)
        else:
            keys_code = "keys = np.random.default_rng(1).integers(0, 2**63, size=%d, dtype=np.uint64)" % args.rows
        if "cache" not in steps:
            results["db_size_mb"] = round(sum(f.stat().st_size for f in project.glob("tagwise.db*")) / 2**20)
            print(f"results -> {save_results(args.out, results)}")
            return
        results["cache_fill"] = run_timed(f"""
            import numpy as np
            from tagwise.project import Project
            from tagwise.encoders import EmbeddingCache
            {keys_code}
            cache = EmbeddingCache({str(tmp / 'cache')!r}, 'synthetic-512')
            # one random block, shifted per shard: the bytes differ, and drawing 5G normals is not what we time
            block = np.random.default_rng(0).standard_normal((100_000, 512), dtype=np.float32)
            for s in range(0, len(keys), 100_000):
                n = len(keys[s:s + 100_000])
                cache.add(keys[s:s + 100_000], block[:n] + np.float32(s / len(keys)))
            print(len(cache))""")
        print("cache_fill", results["cache_fill"], flush=True)
        results["cache_gather"] = run_timed(f"""
            import time
            import numpy as np
            from tagwise.project import Project
            from tagwise.encoders import EmbeddingCache
            {keys_code}
            t = time.perf_counter(); cache = EmbeddingCache({str(tmp / 'cache')!r}, 'synthetic-512')
            t_open = time.perf_counter() - t
            buf = np.empty((min(len(keys), 1_000_000), 512), np.float32); t = time.perf_counter(); total = 0.0
            for s in range(0, len(keys), len(buf)):  # 1M-row chunks, as predict/kNN stream them
                X = cache.gather(keys[s:s + len(buf)], 512, out=buf[:len(keys[s:s + len(buf)])])
                total += float(X[:, 0].sum())
            print(len(keys), "x 512; index open", round(t_open, 1), "s; gather", round(time.perf_counter() - t, 1), "s")""")
        print("cache_gather", results["cache_gather"], flush=True)
        if "store" in steps:
            results["db_size_mb"] = round(sum(f.stat().st_size for f in project.glob("tagwise.db*")) / 2**20)
        results["cache_size_mb"] = round(sum(f.stat().st_size for f in (tmp / "cache").rglob("*")) / 2**20)
    for step in ("add_source", "load_label_matrix", "load_examples", "cache_fill", "cache_gather"):
        if step in results:
            r = results[step]
            print(f"{step:26} {r['seconds']:>7.1f}s (CPU {r['cpu_seconds']:>6.1f}s)  peak RSS {r['peak_rss_mb']:>6} MB   {r['out']}")
    print(f"store size: {results.get('db_size_mb')} MB; cache size: {results['cache_size_mb']} MB")
    print(f"results -> {save_results(args.out, results)}")


if __name__ == "__main__":
    main()
