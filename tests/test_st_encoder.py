"""The st: encoder's own pipeline (length buckets, background tokenization, one copy per device)
against sentence-transformers' ``encode`` on real texts of mixed length. CPU only: no test needs a GPU."""
import numpy as np
import pytest

from tagwise.encoders import embed_texts, get_encoder
from tagwise.types import TagwiseError

pytest.importorskip("sentence_transformers")
from tagwise.encoders.sentence_transformers import SentenceTransformerEncoder  # noqa: E402

from conftest import ROOT  # noqa: E402


@pytest.fixture(scope="module")
def mixed_texts(data_dir):
    """Short tweets-like comments (GoEmotions), long news (Reuters, past the 256-token cut), German and
    Finnish (XED), shuffled so lengths alternate."""
    from tagwise.sources import ingest, load_spec

    texts = []
    for spec, n in (("goemotions", 50), ("reuters", 14), ("emotion_xed_de", 10), ("emotion_xed_fi", 10)):
        texts += ingest(load_spec(ROOT / "bench" / "specs" / f"{spec}.yaml")).texts[:n]
    texts += ["", "ok", texts[0]]  # an empty text, a one-word one and a duplicate
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.permutation(len(texts))]


@pytest.fixture(scope="module")
def encoder():
    # batches of 4 -> chunks of 64: several chunks and many length buckets on 87 texts
    return SentenceTransformerEncoder("all-minilm-l6-v2", device="cpu", batch_size=4, precision="auto")


def test_equals_sentence_transformers_encode_in_input_order(encoder, mixed_texts):
    lengths = [len(t) for t in mixed_texts]
    assert max(lengths) > 1500 and min(lengths) == 0  # really mixed: long news next to empty texts
    X = encoder.encode(mixed_texts)
    ref = encoder.model.encode(mixed_texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    assert X.shape == (len(mixed_texts), 384) and X.dtype == np.float32 and encoder.precision == "fp32"
    np.testing.assert_allclose(X, ref, atol=1e-5)
    # order restored: a permuted input gives the same rows permuted
    perm = np.random.default_rng(1).permutation(len(mixed_texts))
    np.testing.assert_allclose(encoder.encode([mixed_texts[i] for i in perm]), X[perm], atol=1e-5)


def test_two_copies_split_the_batches_and_agree(encoder, mixed_texts):
    two = SentenceTransformerEncoder("all-minilm-l6-v2", device="cpu,cpu", batch_size=4)
    assert len(two._replicas) == 2 and two._replicas[0] is not two._replicas[1]
    np.testing.assert_allclose(two.encode(mixed_texts), encoder.encode(mixed_texts), atol=1e-5)
    assert two.id == encoder.id  # same weights, same precision -> same cache


def test_cache_path_calls_in_chunks_and_matches(encoder, mixed_texts, tmp_path):
    texts = mixed_texts[:40]
    X, stats = embed_texts(texts, encoder, tmp_path, batch_size=8, progress=False)
    assert stats.n_encoded == len(set(texts)) and encoder.chunk_texts > 8
    np.testing.assert_allclose(X, encoder.encode(texts), atol=1e-5)


def test_half_precision_is_close_and_cached_apart(mixed_texts):
    texts = [t for t in mixed_texts if 0 < len(t) < 200][:12]
    fp32 = get_encoder("st:all-minilm-l6-v2")
    bf16 = SentenceTransformerEncoder("all-minilm-l6-v2", device="cpu", precision="bf16")
    assert bf16.id == fp32.id + "-bf16"
    cos = np.sum(bf16.encode(texts) * fp32.encode(texts), axis=1)
    assert cos.min() > 0.98
    with pytest.raises(TagwiseError, match="unknown precision 'fp8'"):
        SentenceTransformerEncoder("all-minilm-l6-v2", device="cpu", precision="fp8")


def test_a_hub_model_not_on_disk_fails_at_once_when_offline(monkeypatch):
    """Before: sentence-transformers retried the hub for ~75 s before giving up. Now: a clear error at once."""
    import time

    from tagwise.encoders import sentence_transformers as st

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(TagwiseError, match=r"st:someone/no-such-model-here: the model is not on this machine.*"
                                           r"HF_HUB_OFFLINE is set.*st:all-minilm-l6-v2"):
        get_encoder("st:someone/no-such-model-here").encode(["a text"])
    assert time.monotonic() - start < 30
    monkeypatch.delenv("HF_HUB_OFFLINE")
    if not st._hub_reachable():  # this machine is offline: the same error without the variable
        with pytest.raises(TagwiseError, match="the hub cannot be reached"):
            get_encoder("st:someone/no-such-model-here").encode(["a text"])
    # the bundled model still loads offline
    assert get_encoder("st:all-minilm-l6-v2").encode(["a text"]).shape == (1, 384)


def test_the_character_cap_leaves_what_the_model_reads_unchanged(encoder, mixed_texts):
    """The cap sits well past max_seq_length tokens: a long text gets the vector sentence-transformers gives
    the whole text, so cached vectors stay valid (the cache keys a cut text by what is left)."""
    long_text = " ".join(t for t in mixed_texts if t) * 3
    assert len(long_text) > encoder.max_chars == 16 * encoder.model.max_seq_length
    want = encoder.model.encode([long_text], convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(encoder.encode([long_text]), want, atol=2e-5)
