"""Shared helpers for the benchmarks: load a bench spec with its cached USE embeddings."""
from __future__ import annotations

import json
import os
import resource
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from tagwise.encoders import embed_texts, get_encoder
from tagwise.sources import ingest, load_spec
from tagwise.types import LabelSpace

BENCH = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("TAGWISE_CACHE_DIR", BENCH.parent / ".cache" / "emb"))
RESULTS = BENCH / "results"


def load_dataset(spec_name: str, encoder: str = "use"):
    """-> dict(texts, X (n,d), Y (n,K) uint8, splits (n,) str, labels LabelSpace, rows SourceRows)."""
    rows = ingest(load_spec(BENCH / "specs" / f"{spec_name}.yaml"))
    X, _ = embed_texts(rows.texts, get_encoder(encoder), CACHE, progress=True)
    space = LabelSpace(tuple(rows.annotated_labels))
    return {"texts": rows.texts, "X": X, "Y": space.to_matrix(rows.labels), "splits": np.array(rows.splits),
            "labels": space, "rows": rows}


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def peak_rss_mb() -> float:
    """This process's peak RSS in MB. Read from VmHWM, which belongs to the process image: Linux
    carries ru_maxrss across exec, so a benchmark child would otherwise report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def command_line() -> str:
    """The command that wrote this run's results, to run from the repository root.

    Every file in bench/results records it (top-level "command"), and that command, run alone,
    rewrites the whole file: no script reads an earlier results file back or merges into it
    (``tests/test_bench_integrity.py`` checks both)."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(BENCH.parent)
    except ValueError:
        pass
    env = [f"{k}={os.environ[k]}" for k in THREAD_VARS if k in os.environ]
    return " ".join(env + ["PYTHONPATH=src", "python", shlex.join([str(script), *sys.argv[1:]])])


def results_path(name: str | Path) -> Path:
    """A results name ("core") -> bench/results/core.json; a path ending in .json stays as given."""
    name = str(name)
    return Path(name) if name.endswith(".json") or "/" in name else RESULTS / f"{name}.json"


def save_results(name: str | Path, results: dict) -> Path:
    """Write ``results`` (whole, never merged into an earlier file) with the command that made them.

    Scripts call it again as runs finish, so a long run leaves its partial results behind."""
    path = results_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"command": command_line(), **{k: v for k, v in results.items() if k != "command"}}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)
    return path


def save_figure(fig, name: str | Path) -> Path:
    """Save a matplotlib figure as bench/results/<name>.png (or the given path) and, beside it,
    ``<file>.command``: the command that drew it (a PNG has no room for it)."""
    path = Path(name) if str(name).endswith(".png") or "/" in str(name) else RESULTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    Path(str(path) + ".command").write_text(command_line() + "\n")
    return path


XED = BENCH.parents[1] / "shared" / "data" / "xed"


def read_xed(lang: str, n: int | None = None, skip: int = 0) -> tuple[list[str], np.ndarray]:
    """Rows ``skip .. skip + n`` (all when ``n`` is None) of XED ``{lang}-annotated.tsv``: texts and
    (rows, 8) float32 targets (XED numbers its 8 emotions from 1)."""
    texts, Y = [], []
    with open(XED / f"{lang}-annotated.tsv", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if n is not None and i >= skip + n:
                break
            if i >= skip:
                text, labels = line.rstrip("\n").split("\t")
                y = np.zeros(8, np.float32)
                y[[int(k) - 1 for k in labels.split(",")]] = 1.0
                texts.append(text)
                Y.append(y)
    return texts, np.array(Y)


UMSAB = BENCH.parents[1] / "shared" / "data" / "umsab_xlmt_sentiment"
UMSAB_LANGUAGES = {"en": "english", "ar": "arabic", "fr": "french", "de": "german", "hi": "hindi",
                   "it": "italian", "pt": "portuguese", "es": "spanish"}
UMSAB_LABELS = ("negative", "neutral", "positive")


def read_umsab(lang: str, split: str) -> tuple[list[str], np.ndarray]:
    """UMSAB (XLM-T) sentiment, language code ``lang`` (``UMSAB_LANGUAGES``), split "train" / "val" / "test":
    texts and (rows, 3) float32 one-hot targets over ``UMSAB_LABELS`` (the files number them 0, 1, 2; one
    label per tweet, kept as three labels for tagwise's multi-label models)."""
    folder = UMSAB / UMSAB_LANGUAGES[lang]
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
    labels = [int(v) for v in (folder / f"{split}_labels.txt").read_text().split()]
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} {split} texts against {len(labels)} labels")
    Y = np.zeros((len(labels), len(UMSAB_LABELS)), np.float32)
    Y[np.arange(len(labels)), labels] = 1.0
    return [t.strip() for t in texts], Y


def hf_trainer_budgeted(model, collate, train_ds: list, dev_ds: list, dev_Y: np.ndarray, tests: dict, seed: int,
                        t_start: float, budget_minutes: float, batch_size: int = 32) -> dict:
    """The Hugging Face peer of the fine-tune benches: ``transformers.Trainer`` with its usual settings (AdamW
    5e-5, weight decay 0.01, batch 32, 6% warmup then linear decay, ``group_by_length``) fine-tunes ``model``
    (a ``...ForSequenceClassification`` with ``problem_type="multi_label_classification"``) on ``train_ds``
    within ``budget_minutes`` counted from ``t_start`` (so loading counts): a probe times a training step for a
    first plan, the plan is re-made from the measured step time after 20, 100 and 500 steps (the linear
    decay ends where the budget does), and a callback stops at the plan or the budget. Per-label thresholds
    are chosen on ``dev_ds`` (targets ``dev_Y`` (n, K)) with ``best_f1_thresholds``.

    train_ds / dev_ds / each of ``tests`` (name -> dataset, or a function that makes it: it is then timed
    with the predict, so tokenizing counts as part of a fresh prediction): lists of ``{"input_ids", ...,
    "labels"}`` that ``collate`` batches. Returns {"P": {name: (n, K) sigmoid probabilities}, "thresholds":
    (K,), "fit_seconds", "predict_seconds": {name: s}, "steps", "planned_steps" (the probe's plan),
    "replanned_steps" (the last plan), "epochs"}."""
    import tempfile

    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from tagwise.learn.thresholds import best_f1_thresholds

    deadline = t_start + 60.0 * budget_minutes
    # probe: seconds per training step (forward + backward + step on a typical batch), to plan max_steps
    # a random batch (the first rows of a file need not be typical in length)
    probe_rows = np.random.default_rng(seed).choice(len(train_ds), size=min(batch_size, len(train_ds)), replace=False)
    # on a GPU the peer trains there too (Trainer's default), and its step is timed there
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    probe = {k: v.to(device) for k, v in collate([train_ds[i] for i in probe_rows]).items()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    model.train()
    for i in range(3):
        if i == 1:
            t0 = time.perf_counter()
        out = model(**probe)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    step_s = (time.perf_counter() - t0) / 2
    model.zero_grad()
    del opt
    dev_eval_s = 1.5 * step_s / 3 * len(dev_ds) / batch_size  # forward only ~ 1/3 of a step
    left = deadline - time.perf_counter() - dev_eval_s - 2.0
    max_steps = max(1, int(0.95 * left / step_s))
    # The plan is re-made from the measured speed: one probe batch is not a length-grouped batch (the
    # run of finetune_goemotions_60min.json planned 2,000 steps from a random batch and used 23 of its 60
    # minutes). The schedule keeps the Trainer's usual shape (6% warmup, then linear decay to 0) over the
    # steps the budget affords at the speed measured so far, re-planned after 20, 100 and 500 steps.
    plan = {"steps": max_steps, "warmup": max(1, int(0.06 * max_steps))}

    def linear(step: int) -> float:  # transformers' get_linear_schedule_with_warmup, over plan["steps"]
        if step < plan["warmup"]:
            return step / plan["warmup"]
        return max(0.0, (plan["steps"] - step) / max(1, plan["steps"] - plan["warmup"]))

    class BudgetTrainer(Trainer):
        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, linear)
            return self.lr_scheduler

    class Budget(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            plan["t0"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            now, done = time.perf_counter(), state.global_step
            measured = (now - plan["t0"]) / max(1, done)
            if done in (20, 100, 500):
                plan["steps"] = max(done + 1, done + int(0.95 * (deadline - now - dev_eval_s) / measured))
            if done >= plan["steps"] or now + measured + dev_eval_s > deadline:
                control.should_training_stop = True
            return control

    def in_order(ds: list) -> np.ndarray:
        """(n, K) sigmoid probabilities of ``ds``'s rows in ``ds``'s order. Not ``trainer.predict``: in
        transformers 5 its evaluation sampler follows ``train_sampling_strategy``, so with
        "group_by_length" it returns the rows length-grouped and shuffled, not in the dataset's order
        (the peer's figures before this fix scored shuffled predictions: GoEmotions macro-F1 0.07)."""
        model.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(ds), 64):
                batch = {k: v.to(model.device) for k, v in collate(ds[i:i + 64]).items() if k != "labels"}
                out.append(torch.sigmoid(model(**batch).logits.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, dev_Y.shape[1]), np.float32)

    with tempfile.TemporaryDirectory() as out_dir:
        args = TrainingArguments(output_dir=out_dir, per_device_train_batch_size=batch_size,
                                 per_device_eval_batch_size=64, learning_rate=5e-5, weight_decay=0.01,
                                 max_steps=10 * max_steps, train_sampling_strategy="group_by_length", save_strategy="no",
                                 eval_strategy="no", logging_strategy="no", report_to=[], seed=seed,
                                 use_cpu=device == "cpu", disable_tqdm=True, dataloader_num_workers=0)
        # max_steps is only an upper bound for the loop; the plan (above) ends the schedule and the run
        trainer = BudgetTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collate,
                                callbacks=[Budget()])
        trainer.train()
        steps = trainer.state.global_step
        P_dev = in_order(dev_ds)
        thresholds = best_f1_thresholds(dev_Y, P_dev)
        fit = time.perf_counter() - t_start
        P, predict_seconds = {}, {}
        for name, ds in tests.items():
            t0 = time.perf_counter()
            ds = ds() if callable(ds) else ds
            P[name] = in_order(ds)
            predict_seconds[name] = time.perf_counter() - t0
    return {"P": P, "thresholds": thresholds, "fit_seconds": fit, "predict_seconds": predict_seconds,
            "steps": int(steps), "planned_steps": max_steps, "replanned_steps": int(plan["steps"]), "epochs": round(steps * batch_size / len(train_ds), 2)}


def child_main(queue, work) -> None:
    """The body of a benchmark's child process: torch's threads from ``OMP_NUM_THREADS``, then ``work()``
    (a dict of figures) put on ``queue`` with the process's peak RSS; an exception is put there as
    ``{"error": ...}`` (reported in the results, not swallowed)."""
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        queue.put({**work(), "peak_rss_mb": round(peak_rss_mb(), 1)})
    except BaseException as exc:  # noqa: BLE001
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def fit_frozen_head(encoder_name: str, data: dict, seed: int):
    """(encoder, head, fit seconds): today's default head (``MultiLabelLinear``, cuts by CV on its own folds)
    on the frozen vectors of ``data["train"]`` + ``data["dev"]`` (each ``(texts, (n, K) targets)``), embedded
    through the cache; the fit time is the head's alone."""
    from tagwise.encoders import embed_texts, get_encoder
    from tagwise.learn.linear import MultiLabelLinear

    enc = get_encoder(encoder_name)
    (tr_t, tr_Y), (dv_t, dv_Y) = data["train"], data["dev"]
    X, _ = embed_texts(tr_t + dv_t, enc, CACHE, progress=False)
    t0 = time.perf_counter()
    head = MultiLabelLinear(random_state=seed).fit(X, np.vstack([tr_Y, dv_Y]))
    return enc, head, time.perf_counter() - t0


def run_in_child(ctx, target, args: tuple) -> dict:
    """Run ``target(*args, queue)`` in a fresh process of the multiprocessing context ``ctx`` (its peak
    memory and its torch threads are its own) and return the dict it puts on the queue, with
    ``wall_seconds`` and the load average after it (the benches' seconds are only comparable at a like load)."""
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    t0 = time.perf_counter()
    proc.start()
    out = queue.get()
    proc.join()
    out["wall_seconds"] = round(time.perf_counter() - t0, 1)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def run_methods_by_seed(ctx, child, seeds, methods, cfg: dict, runs: dict, results: dict, out: str,
                        jobs: int = 1) -> None:
    """For each seed, each method in its own process (``run_in_child(ctx, child, (method, seed, cfg))``):
    ``runs[method][str(seed)]`` gets its dict, which is printed, and ``results`` (holding ``runs``) is
    written to ``out`` after every run, so a run stopped early keeps what finished.

    ``jobs`` > 1 runs up to that many methods of a seed at once, started in ``methods`` order: list the
    methods that share a wall-clock budget next to each other so they start together and meet the same
    contention (give each child ``OMP_NUM_THREADS`` = cores / jobs)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def one(method: str, seed: int) -> None:
        got = run_in_child(ctx, child, (method, seed, cfg))
        with lock:
            runs[method][str(seed)] = got
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in got.items() if k != "history"}
            print(f"seed {seed} {method}: {shown}", flush=True)
            save_results(out, results)

    for seed in seeds:
        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            for fut in [pool.submit(one, method, seed) for method in methods]:
                fut.result()
