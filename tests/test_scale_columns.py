"""Column reads that avoid per-row Python objects (Store.label_matrix, Store.example_text_keys) and the
cache's merged index, on real slices: they must give exactly what the object paths give."""
import numpy as np
import pytest

from tagwise.encoders import EmbeddingCache, embed_texts, get_encoder, text_keys
from tagwise.project import Project

from conftest import DATA, ROOT


@pytest.fixture(scope="module")
def project(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("columns")
    p = Project.init(root / "p")
    for name, limit in (("goemotions", 700), ("reuters", 300), ("emotion_xed_de", 200)):
        spec = (ROOT / "bench" / "specs" / f"{name}.yaml").read_text().replace("../../../shared/data", str(DATA))
        path = root / f"{name}.yaml"
        path.write_text(spec.replace("\nlimit:", "\n# limit:") + f"limit: {limit}\n")
        p.add_source(path)
    return p


def test_label_matrix_and_keys_equal_the_object_path(project):
    ex = project.examples()
    Y = ex.label_matrix(project.labels)
    assert Y.sum() > len(ex) // 2 and len(set(ex.sources)) == 3  # several sources, label sets and unlabeled rows
    # small chunks: rows and label lists cross chunk borders
    np.testing.assert_array_equal(project.store.label_matrix(project.labels.names, chunk_rows=97), Y)
    sparse = project.store.label_matrix(project.labels.names, sparse=True)
    assert sparse.nnz == Y.sum() and sparse.dtype == np.uint8
    np.testing.assert_array_equal(sparse.toarray(), Y)
    np.testing.assert_array_equal(project.store.example_text_keys(chunk_rows=101), text_keys(ex.texts))
    # columns follow the names given; a name the store never saw stays an empty column
    names = list(project.labels.names[:5])[::-1] + ["not-a-label"]
    sub = project.store.label_matrix(names)
    np.testing.assert_array_equal(sub[:, :5], Y[:, [project.labels.index(n) for n in names[:5]]])
    assert not sub[:, 5].any()


def test_merged_cache_index_equals_a_fresh_read(project, tmp_path):
    texts = project.examples().texts[:600]
    enc = get_encoder("hashing:64")
    X, _ = embed_texts(texts, enc, tmp_path, shard_rows=64, batch_size=32, progress=False)
    live = EmbeddingCache(tmp_path, enc.id)  # then another writer adds a shard behind its back
    other = EmbeddingCache(tmp_path, enc.id)
    more = [t + " (edited)" for t in texts[:50]]
    other.add(text_keys(more), enc.encode(more))
    live.add(text_keys(["one more text"]), enc.encode(["one more text"]))  # sees the foreign shard too
    fresh = EmbeddingCache(tmp_path, enc.id)
    assert len(live) == len(fresh) == len(set(texts)) + 51
    keys = text_keys(texts + more + ["one more text"])
    np.testing.assert_array_equal(live.gather(keys, 64), fresh.gather(keys, 64))
    np.testing.assert_array_equal(fresh.gather(text_keys(texts), 64), X)
    half = np.empty((len(texts), 64), np.float16)
    fresh.gather(text_keys(texts), 64, out=half)
    np.testing.assert_allclose(half, X, atol=1e-3)
