import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tagwise.sources import ingest, load_spec
from tagwise.types import TagwiseError


def write_spec(path, spec: dict):
    path.write_text(yaml.safe_dump(spec))
    return path


def test_goemotions_spec_maps_ids_to_names(data_dir, tmp_path):
    spec = write_spec(tmp_path / "ge.yaml", {
        "name": "ge", "path": str(data_dir / "goemotions/original_dev.tsv"), "header": False, "quoting": "none",
        "columns": {"text": 0, "labels": 1, "id": 2}, "limit": 300, "split": "validation",
        "labels": {"names_file": str(data_dir / "goemotions/original_labels.txt"),
                   "map": {"grief": "sadness", "neutral": None}}})
    rows = ingest(load_spec(spec))
    assert len(rows) == 300
    names = (data_dir / "goemotions/original_labels.txt").read_text().split()
    raw = [ln.split("\t") for ln in (data_dir / "goemotions/original_dev.tsv").read_text().splitlines()[:300]]
    for r, labels in zip(raw, rows.labels):
        expected = [{"grief": "sadness"}.get(names[int(i)], names[int(i)]) for i in r[1].split(",")]
        assert labels == [n for n in dict.fromkeys(expected) if n != "neutral"]
    assert rows.example_ids[0] == raw[0][2]
    assert "neutral" not in rows.annotated_labels and "grief" not in rows.annotated_labels
    assert rows.splits == ["dev"] * 300 and rows.languages[0] == "und"


def test_onehot_and_lines_formats(data_dir, tmp_path):
    sem = write_spec(tmp_path / "sem.yaml", {
        "path": str(data_dir / "semeval2018_ec_en/E-c-En-dev.txt"), "format": "tsv", "quoting": "none",
        "columns": {"text": "Tweet", "id": "ID"}, "limit": 50,
        "labels": {"format": "onehot", "onehot_columns": ["anger", "joy", "fear"]}})
    rows = ingest(load_spec(sem))
    assert rows.name == "sem" and rows.annotated_labels == ["anger", "joy", "fear"]
    assert all(set(lab) <= {"anger", "joy", "fear"} for lab in rows.labels)
    te = write_spec(tmp_path / "te.yaml", {
        "splits": {"test": {"text": str(data_dir / "tweeteval/emotion/test_text.txt"),
                            "labels": str(data_dir / "tweeteval/emotion/test_labels.txt")}},
        "labels": {"format": "single", "names": ["anger", "joy", "optimism", "sadness"]}})
    rows = ingest(load_spec(te))
    assert len(rows) == 1421 and all(len(lab) == 1 for lab in rows.labels)


def test_parquet_jsonl_and_hf_folder(tmp_path):
    table = pa.table({"body": ["good film", "awful plot", "fine"], "tags": [["pos"], ["neg"], []],
                      "uid": ["a", "b", "c"]})
    pq.write_table(table, tmp_path / "d.parquet")
    spec = write_spec(tmp_path / "p.yaml", {"path": "d.parquet", "columns": {"text": "body", "labels": "tags",
                                            "id": "uid"}, "labels": {"format": "list"}})
    rows = ingest(load_spec(spec))
    assert rows.labels == [["pos"], ["neg"], []] and rows.example_ids == ["a", "b", "c"]

    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"text": t, "labels": "x|y"}) for t in ["u", "v"]))
    spec = write_spec(tmp_path / "j.yaml", {"path": "d.jsonl", "labels": {"delimiter": "|"}})
    assert ingest(load_spec(spec)).labels == [["x", "y"], ["x", "y"]]

    # a folder as written by datasets' save_to_disk: an Arrow stream file + state.json
    folder = tmp_path / "hf"
    folder.mkdir()
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    spec = write_spec(tmp_path / "h.yaml", {"path": "hf", "split": "validation",
                                            "columns": {"text": "body", "labels": "tags"},
                                            "labels": {"format": "list"}})
    rows = ingest(load_spec(spec))
    assert rows.splits == ["dev"] * 3 and rows.texts[1] == "awful plot"


def test_real_datasets_save_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a b", "c d"], "label": [0, 1]}),
        "test": datasets.Dataset.from_dict({"text": ["e f"], "label": [1]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    spec = write_spec(tmp_path / "s.yaml", {"path": "dd", "columns": {"labels": "label"},
                                            "labels": {"format": "single", "names": ["neg", "pos"]}})
    rows = ingest(load_spec(spec))
    assert sorted(zip(rows.splits, rows.texts)) == [("test", "e f"), ("train", "a b"), ("train", "c d")]
    assert rows.labels[rows.texts.index("e f")] == ["pos"]


@pytest.mark.parametrize("content, spec_extra, message", [
    ("text,labels\nhello,1\n", {"columns": {"text": "body"}}, "column 'body' not found"),
    ("text,labels\nhello,7\n", {"labels": {"format": "single", "names": ["a", "b"]}}, "row 2: unknown label '7'"),
    ("text,labels\n,a\n", {}, "row 2: empty text"),
    ('text,labels\n"unclosed,a\n', {}, "line 2: malformed row starting here"),
])
def test_bad_input_names_file_row_and_fix(tmp_path, content, spec_extra, message):
    (tmp_path / "d.csv").write_text(content)
    spec = write_spec(tmp_path / "s.yaml", {"path": "d.csv", **spec_extra})
    with pytest.raises(TagwiseError, match=message) as err:
        ingest(load_spec(spec))
    assert "d.csv" in str(err.value) and "Fix" in str(err.value)


def test_non_utf8_and_spec_typos(tmp_path):
    (tmp_path / "d.csv").write_bytes("text,labels\nok,a\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(TagwiseError, match=r"d.csv: line 3: bytes are not valid UTF-8"):
        ingest(load_spec(write_spec(tmp_path / "s.yaml", {"path": "d.csv"})))
    with pytest.raises(TagwiseError, match=r"unknown field 'colums'. Did you mean 'columns'"):
        load_spec(write_spec(tmp_path / "t.yaml", {"path": "d.csv", "colums": {"text": "x"}}))
    with pytest.raises(TagwiseError, match=r"labels/format is 'multi'"):
        load_spec(write_spec(tmp_path / "u.yaml", {"path": "d.csv", "labels": {"format": "multi"}}))
    with pytest.raises(TagwiseError, match=r"not found: .*missing.csv"):
        load_spec(write_spec(tmp_path / "v.yaml", {"path": "missing.csv"}))
    (tmp_path / "e.jsonl").write_text('{"text": "a", "labels": "x"}\n{"text": "b", labels: x}\n')
    with pytest.raises(TagwiseError, match=r"e.jsonl: line 2: not valid JSON"):
        ingest(load_spec(write_spec(tmp_path / "w.yaml", {"path": "e.jsonl"})))
