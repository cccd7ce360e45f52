"""--engine ray (issue 20): embed, predict and audit on a local Ray give the local engine's results."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from conftest import DATA  # noqa: E402
from tagwise.engine import LocalEngine, RayEngine, get_engine  # noqa: E402
from tagwise.types import TagwiseError  # noqa: E402

N_TRAIN = 600


@pytest.fixture(scope="module")
def engine():
    if not (DATA / "goemotions").exists():
        pytest.skip(f"shared data not found at {DATA}")
    # workers of the local Ray import this checkout's tagwise (the engine sets PYTHONPATH for a Ray it starts)
    src = str(Path(__file__).resolve().parents[1] / "src")
    os.environ["PYTHONPATH"] = src + os.pathsep + os.environ.get("PYTHONPATH", "")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    # the test module's own task functions travel by value (workers cannot import tests/)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield RayEngine()  # joins the running Ray, so its shutdown() leaves it up
    ray.shutdown()


@pytest.fixture(scope="module")
def project(tmp_path_factory, engine):
    """GoEmotions: the first 600 train rows and 300 dev rows, hashing encoder, a trained linear head."""
    from tagwise.project import Project
    from tagwise.workflows.train import train

    root = tmp_path_factory.mktemp("ray")
    spec = root / "goemotions.yaml"
    spec.write_text(
        f"name: goemotions\nformat: tsv\nheader: false\nquoting: none\ncolumns: {{text: 0, labels: 1, id: 2}}\n"
        f"splits: {{train: {DATA}/goemotions/original_train.tsv, dev: {DATA}/goemotions/original_dev.tsv}}\n"
        f"labels: {{format: delimited, delimiter: ',', names_file: {DATA}/goemotions/original_labels.txt}}\n"
        f"limit: {N_TRAIN}\n")
    p = Project.init(root / "p")
    os.environ.pop("TAGWISE_CACHE_DIR", None)
    p.add_source(spec)
    p.embed("hashing", progress=False)
    train(p, mode="supervised", params={"C": 1.0, "cv": 2}, progress=False)
    return p


def _texts(split, n):
    lines = (DATA / "goemotions" / f"original_{split}.tsv").read_text(encoding="utf-8").splitlines()
    return [ln.split("\t")[0] for ln in lines[:n]]


def test_embed_matches_local_and_encodes_nothing_twice(engine, tmp_path):
    from tagwise.encoders import embed_texts, get_encoder
    from tagwise.workflows.embed import embed_texts_on

    texts = _texts("test", 400)
    texts += texts[:50]  # duplicates are encoded once
    X_local, s_local = embed_texts(texts, get_encoder("hashing"), tmp_path / "local", progress=False)
    X_ray, s_ray = embed_texts_on(engine, texts, "hashing", tmp_path / "ray", shard_rows=100, progress=False)
    np.testing.assert_allclose(X_ray, X_local, atol=1e-6)
    assert s_ray.n_encoded == s_local.n_encoded == s_ray.n_unique < len(texts)
    shards = sorted((tmp_path / "ray").rglob("shard-k*.keys.npy"))
    assert len(shards) == -(-s_ray.n_unique // 100)  # one shard per task
    # a second run finds everything in the cache (registered by the driver) and encodes nothing
    X_again, s_again = embed_texts_on(engine, texts, "hashing", tmp_path / "ray", shard_rows=100, progress=False)
    assert s_again.n_encoded == 0 and np.array_equal(X_again, X_ray)
    # concatenated encoders: each part in its own cache, the same joined vectors
    X_cat, _ = embed_texts_on(engine, texts[:60], "hashing+hashing:64", tmp_path / "ray", progress=False)
    X_cat_local, _ = embed_texts(texts[:60], get_encoder("hashing+hashing:64"), tmp_path / "local", progress=False)
    np.testing.assert_allclose(X_cat, X_cat_local, atol=1e-6)


def _dies_once(item, marker_dir, **shared):
    """A task whose worker process dies on its first try: before encoding, or just after its shard is written."""
    from tagwise.workflows.embed import encode_shard

    shard, after_write = item
    marker = Path(marker_dir) / f"{int(shard[1][0])}"
    first_try = not marker.exists()
    marker.touch()
    if first_try and not after_write:
        os._exit(1)
    n = encode_shard(shard, **shared)
    if first_try:
        os._exit(1)
    return n


def test_a_killed_worker_task_is_redone_and_nothing_encoded_twice(engine, tmp_path):
    from tagwise.encoders import EmbeddingCache, embed_texts, get_encoder, text_keys

    texts = _texts("test", 300)[100:]
    keys = text_keys(texts)
    # shard 0's worker dies before encoding, shard 1's right after writing its cache shard
    shards = [((texts[s:s + 100], keys[s:s + 100]), s > 0) for s in range(0, len(texts), 100)]
    (tmp_path / "markers").mkdir()
    done = engine.map(_dies_once, shards, shared={"marker_dir": str(tmp_path / "markers"),
                                                  "encoder_name": "hashing", "cache_dir": str(tmp_path / "c")})
    # every task's worker died once; the retry encoded a shard only when the first try had not written it
    assert len(list((tmp_path / "markers").iterdir())) == len(shards)
    assert done == [100, 0]
    cache = EmbeddingCache(tmp_path / "c", get_encoder("hashing").id)
    assert len(cache) == len(texts)
    X_local, _ = embed_texts(texts, get_encoder("hashing"), tmp_path / "local", progress=False)
    np.testing.assert_allclose(cache.gather(keys, X_local.shape[1]), X_local, atol=1e-6)


def _read(path):
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _assert_same_predictions(a, b):
    assert [str(r["id"]) for r in a] == [str(r["id"]) for r in b]
    assert [sorted(r["labels"]) for r in a] == [sorted(r["labels"]) for r in b]
    for ra, rb in zip(a, b):
        assert ra["scores"].keys() == rb["scores"].keys()
        np.testing.assert_allclose(list(ra["scores"].values()), list(rb["scores"].values()), atol=2e-5)


def test_predict_streams_in_order_and_matches_local(engine, project, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tagwise.workflows.predict import predict_file

    texts = _texts("dev", 500)
    ids = [f"dev-{i}" for i in range(len(texts))]
    pq.write_table(pa.table({"id": ids, "text": texts}), tmp_path / "in.parquet", row_group_size=128)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts)))
    # the local engine: one chunk or many, the same rows
    assert predict_file(project, tmp_path / "in.jsonl", tmp_path / "local.jsonl", chunk_rows=10_000) == len(texts)
    local = _read(tmp_path / "local.jsonl")
    assert [r["id"] for r in local] == ids
    predict_file(project, tmp_path / "in.parquet", tmp_path / "local-chunks.jsonl", chunk_rows=37)
    _assert_same_predictions(_read(tmp_path / "local-chunks.jsonl"), local)
    # Ray: many small chunks over two actors, written back in input order, JSONL and Parquet in and out
    for src, out in (("in.parquet", "ray.jsonl"), ("in.jsonl", "ray.parquet")):
        n = predict_file(project, tmp_path / src, tmp_path / out, engine=engine, chunk_rows=37, progress=False)
        assert n == len(texts)
        _assert_same_predictions(_read(tmp_path / out), local)
    assert any(r["labels"] for r in local)  # the comparison covers decisions, not only empty label lists


def test_predict_errors_name_the_row_on_ray_too(engine, project, tmp_path):
    from tagwise.workflows.predict import predict_file

    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts("dev", 80)) + '{"text": "  "}\n')
    with pytest.raises(TagwiseError, match="row 81: empty text"):
        predict_file(project, bad, tmp_path / "out.jsonl", engine=engine, chunk_rows=16)
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written


def test_audit_matches_local(engine, project, tmp_path):
    from tagwise.workflows.audit import audit_project

    local, ex, _ = audit_project(project, split="train", folds=4, progress=False)
    on_ray, ex_ray, _ = audit_project(project, split="train", folds=4, progress=False, engine=engine)
    assert len(ex) == N_TRAIN and list(ex.ids) == list(ex_ray.ids)
    np.testing.assert_allclose(on_ray.pred_probs, local.pred_probs, atol=1e-4)
    np.testing.assert_allclose(on_ray.similarity, local.similarity, atol=1e-5)
    assert (on_ray.neighbors == local.neighbors).mean() > 0.99  # ties may swap places
    np.testing.assert_allclose(on_ray.label_quality, local.label_quality, atol=1e-3)
    assert np.array_equal(on_ray.is_flagged, local.is_flagged)


def test_knn_inverted_file_and_iterative_folds_match_local(engine, project):
    from tagwise.audit.oof import default_estimator_factory, out_of_fold_proba
    from tagwise.neighbors import nearest_neighbors
    from tagwise.workflows.audit import labeled_examples

    ex, _, Y, M = labeled_examples(project, "train")
    X, Y, M = project.features(ex)[:300], Y[:300], M[:300]
    # above exact_max: the inverted file, its cells spread over the workers
    n_local, s_local = nearest_neighbors(X, k=10, exact_max=100, progress=False)
    n_ray, s_ray = nearest_neighbors(X, k=10, exact_max=100, progress=False, map_fn=engine.map)
    np.testing.assert_allclose(s_ray, s_local, atol=1e-5)
    assert (n_ray == n_local).mean() > 0.99
    P_local = out_of_fold_proba(X[:200], Y[:200], M[:200], folds=2, estimator_factory=default_estimator_factory,
                                progress=False)
    P_ray = out_of_fold_proba(X[:200], Y[:200], M[:200], folds=2, estimator_factory=default_estimator_factory,
                              progress=False, map_fn=engine.map)
    np.testing.assert_allclose(P_ray, P_local, atol=1e-4)


def test_cli_engine_flags(engine, project, tmp_path):
    from tagwise.cli import main

    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts("dev", 40)))
    assert main(["predict", str(project.path), str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "a.jsonl"),
                 "--engine", "ray", "--chunk-rows", "8"]) == 0
    assert main(["predict", str(project.path), str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "b.jsonl")]) == 0
    _assert_same_predictions(_read(tmp_path / "a.jsonl"), _read(tmp_path / "b.jsonl"))
    assert main(["embed", str(project.path), "--engine", "ray"]) == 0
    assert main(["audit", str(project.path), "--engine", "ray", "--quiet", "--folds", "3",
                 "--out", str(tmp_path / "issues.csv")]) == 0
    assert ray.is_initialized()  # a Ray the command did not start is left running
    with pytest.raises(TagwiseError, match="unknown engine"):
        get_engine("spark")
    with pytest.raises(TagwiseError, match="needs --engine ray"):
        get_engine("local", address="auto")
    assert isinstance(get_engine(None), LocalEngine)


def test_the_local_engine_never_imports_ray():
    code = ("import sys, tagwise, tagwise.cli, tagwise.workflows.embed, tagwise.workflows.predict; "
            "from tagwise.engine import get_engine; get_engine('local'); assert 'ray' not in sys.modules")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "TAGWISE_ENGINE": ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
