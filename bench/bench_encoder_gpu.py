"""The st: encoder's pipeline against sentence-transformers' own `encode`, same model, same texts, same run.

Texts: real comments (GoEmotions, short), news (AG News, medium; Reuters, long, past the 256-token
cut) and German/Finnish dialogue lines (XED), shuffled. The model is the bundled MiniLM
(`st:all-minilm-l6-v2`) unless `--model` names another.

Runs:
- `tagwise`: `SentenceTransformerEncoder.encode` (length buckets, tokenization on a background
  thread, vectors kept on the device; precision "auto": fp16 on a GPU, fp32 on the CPU);
- `st_same`: `SentenceTransformer.encode` on the same model object (same precision and batch size),
  so the peer gets every setting tagwise gets;
- on a GPU also `st_default`: a fresh fp32 `SentenceTransformer` with its default batch size (32),
  the usual call, and `model_only`: the forward passes alone on pre-tokenized, length-sorted
  batches (the ceiling no pipeline can pass).
Each run is timed `--repeats` times (best kept) after one warm-up batch. Accuracy: the largest
absolute difference to `st_same`, and the lowest cosine to fp32 vectors.

Same script on the CPU (writes bench/results/encoder_cpu.json) and on a CUDA machine
(encoder_gpu.json); `--devices cuda:0,cuda:1` uses several GPUs for tagwise.

    OMP_NUM_THREADS=1 python bench/bench_encoder_gpu.py [--n 2000] [--repeats 1]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))
sys.path.insert(0, str(BENCH))
from common import save_results  # noqa: E402

from tagwise.sources import ingest, load_spec  # noqa: E402

MIX = (("goemotions", 0.5), ("ag_news", 0.25), ("reuters", 0.1), ("emotion_xed_de", 0.075), ("emotion_xed_fi", 0.075))


def mixed_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` real texts, each dataset its share of ``MIX``, distinct, shuffled."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for spec, share in MIX:
        texts = list(dict.fromkeys(t for t in ingest(load_spec(BENCH / "specs" / f"{spec}.yaml")).texts if t))
        k = min(len(texts), int(round(n * share)) if spec != MIX[-1][0] else n - len(out))
        out += [texts[i] for i in rng.choice(len(texts), size=k, replace=False)]
    return [out[i] for i in rng.permutation(len(out))]


CPU_SECONDS: dict[str, float] = {}


def best_time(fn, repeats: int, name: str = ""):
    """Best wall time of ``repeats`` calls; the process CPU time of that call goes to CPU_SECONDS[name]
    (every thread's: on a shared CPU the wall time also counts other people's work)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if time.perf_counter() - t0 < best:
            best, CPU_SECONDS[name] = time.perf_counter() - t0, time.process_time() - c0
    return out, best


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="all-minilm-l6-v2")
    ap.add_argument("--n", type=int, default=None, help="texts (default: 2000 on the CPU, 200000 on a GPU)")
    ap.add_argument("--devices", default=None, help="tagwise's devices (default: cuda:0 if any, else cpu)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None, help="default: 1 on the CPU, 3 on a GPU")
    args = ap.parse_args()
    gpu = torch.cuda.is_available()
    devices = args.devices or ("cuda:0" if gpu else "cpu")
    n = args.n or (200_000 if gpu else 2000)
    repeats = args.repeats or (3 if gpu else 1)
    sync = torch.cuda.synchronize if gpu else (lambda: None)

    from tagwise.encoders.sentence_transformers import SentenceTransformerEncoder, load_sentence_transformer

    texts = mixed_texts(n)
    chars = np.array([len(t) for t in texts])
    enc = SentenceTransformerEncoder(args.model, device=devices, batch_size=args.batch_size, precision=args.precision)
    print(f"{len(texts)} texts (chars: median {int(np.median(chars))}, max {chars.max()}), devices {enc.devices}, "
          f"precision {enc.precision}, batch {enc.batch_size}", flush=True)
    results = {"model": args.model, "n_texts": len(texts), "median_chars": int(np.median(chars)),
               "devices": enc.devices, "precision": enc.precision, "batch_size": enc.batch_size,
               "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": repeats,
               "device_name": torch.cuda.get_device_name(0) if gpu else platform.processor() or platform.machine(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}

    def run_tagwise():
        X = enc.encode(texts)
        sync()
        return X

    def run_st(model, batch_size):
        def go():
            X = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                             show_progress_bar=False)
            sync()
            return X
        return go

    enc.encode(texts[:64])  # warm-up: kernels, allocator, tokenizer
    enc.model.encode(texts[:64], batch_size=enc.batch_size)
    runs = {}
    X_tw, runs["tagwise"] = best_time(run_tagwise, repeats, "tagwise")
    X_st, runs["st_same"] = best_time(run_st(enc.model, enc.batch_size), repeats, "st_same")
    X_fp32 = X_st if enc.precision == "fp32" else None
    if gpu:
        ref, _ = load_sentence_transformer(args.model, devices.split(",")[0])
        ref.encode(texts[:64])
        X_fp32, runs["st_default"] = best_time(run_st(ref, 32), repeats, "st_default")
        # the forward passes alone, on batches already tokenized, sorted and on the device
        feats = [{k: v.to(enc.devices[0]) for k, v in f.items() if hasattr(v, "to")}
                 for _, f in enc._batches(texts, np.argsort([-len(t) for t in texts]), pin=False)]

        def model_only():
            with torch.inference_mode():
                for f in feats:
                    enc._replicas[0](f)
            sync()
        _, runs["model_only"] = best_time(model_only, repeats, "model_only")
        del feats
    for name, seconds in runs.items():
        results[name] = {"seconds": round(seconds, 3), "sentences_per_s": round(len(texts) / seconds, 1),
                         "cpu_seconds": round(CPU_SECONDS[name], 3)}
        print(f"{name:11} {seconds:8.2f}s  {len(texts) / seconds:10.1f} sentences/s  (CPU {CPU_SECONDS[name]:.1f}s)",
              flush=True)
    results["speedup_vs_st_same"] = round(runs["st_same"] / runs["tagwise"], 2)
    results["cpu_time_ratio_st_same_over_tagwise"] = round(CPU_SECONDS["st_same"] / CPU_SECONDS["tagwise"], 2)
    if "st_default" in runs:
        results["speedup_vs_st_default"] = round(runs["st_default"] / runs["tagwise"], 2)
    results["max_abs_diff_vs_st_same"] = float(np.abs(X_tw - X_st).max())
    results["min_cosine_vs_fp32"] = float(np.sum(X_tw * X_fp32, axis=1).min())
    print(f"tagwise / st_same speed: {results['speedup_vs_st_same']}x; max |diff| {results['max_abs_diff_vs_st_same']:.2e}; "
          f"min cosine to fp32 {results['min_cosine_vs_fp32']:.5f}")
    print(f"results -> {save_results('encoder_gpu' if gpu else 'encoder_cpu', results)}")


if __name__ == "__main__":
    main()
