"""Scale check for the project store and embedding cache: 1M examples x 100 labels on one machine.

Writes a synthetic 1M-row CSV (texts built from a 5k-word vocabulary, 1-3 of 100 labels each),
then times `tagwise add-source`, loading all examples, filling the embedding cache with 1M
512-d vectors and gathering them back (memory-mapped), each in its own process with its peak RSS.

    python bench/bench_scale.py [--rows 1000000]
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
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return {"seconds": round(time.perf_counter() - t0, 1),
            "peak_rss_mb": round(int(proc.stderr.strip().splitlines()[-1]) / 1024), "out": proc.stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(5000)])
    results = {"rows": args.rows, "labels": 100}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with open(tmp / "big.csv", "w") as f:
            f.write("text,labels\n")
            for start in range(0, args.rows, 100_000):
                n = min(100_000, args.rows - start)
                words = vocab[rng.integers(0, 5000, size=(n, 12))]
                labs = rng.integers(0, 100, size=(n, 3))
                k = rng.integers(1, 4, size=n)
                f.writelines(f"{start + i} {' '.join(words[i])},\"{'|'.join(f'L{x}' for x in labs[i, :k[i]])}\"\n"
                             for i in range(n))
        (tmp / "big.yaml").write_text("name: big\npath: big.csv\nlabels: {delimiter: '|'}\n")
        project = tmp / "p"
        subprocess.run([sys.executable, "-m", "tagwise", "init", str(project)], check=True)
        results["add_source"] = run_timed(f"""
            from tagwise.project import Project
            print(Project.open({str(project)!r}).add_source({str(tmp / 'big.yaml')!r})['n_examples'])""")
        results["load_examples"] = run_timed(f"""
            import time; from tagwise.project import Project
            p = Project.open({str(project)!r}); t = time.perf_counter(); ex = p.examples()
            Y = ex.label_matrix(p.labels); print(len(ex), Y.shape, round(time.perf_counter() - t, 1))""")
        results["cache_fill_1M_vectors"] = run_timed(f"""
            import numpy as np
            from tagwise.project import Project
            from tagwise.encoders import EmbeddingCache, text_keys
            p = Project.open({str(project)!r}); texts = p.examples().texts
            cache = EmbeddingCache({str(tmp / 'cache')!r}, 'synthetic-512')
            rng = np.random.default_rng(0)
            for s in range(0, len(texts), 100_000):
                keys = text_keys(texts[s:s + 100_000])
                cache.add(keys, rng.standard_normal((len(keys), 512), dtype=np.float32))
            print(len(cache))""")
        results["cache_gather_1M_vectors"] = run_timed(f"""
            import time
            from tagwise.project import Project
            from tagwise.encoders import EmbeddingCache, text_keys
            p = Project.open({str(project)!r}); keys = text_keys(p.examples().texts)
            t = time.perf_counter(); X = EmbeddingCache({str(tmp / 'cache')!r}, 'synthetic-512').gather(keys, 512)
            print(X.shape, round(time.perf_counter() - t, 1))""")
        results["db_size_mb"] = round((project / "tagwise.db").stat().st_size / 2**20)
    for step in ("add_source", "load_examples", "cache_fill_1M_vectors", "cache_gather_1M_vectors"):
        r = results[step]
        print(f"{step:26} {r['seconds']:>7.1f}s  peak RSS {r['peak_rss_mb']:>6} MB   {r['out']}")
    print(f"store size: {results['db_size_mb']} MB")
    print(f"results -> {save_results('scale', results)}")


if __name__ == "__main__":
    main()
