"""Spec fields for real datasets (issue 27 §3): holdout, labels/threshold, labels/constant, votes, and a crowd
file in the long layout (one row per item and label, one rating column per annotator), on files built from
../shared/data (HS-Brexit's six annotators, ConvAbuse's eight, GoEmotions)."""
import collections
import csv
import json
import random

import pytest
import yaml

from hs_brexit import LABELS, hs_brexit_votes
from tagwise.sources import ingest, load_spec
from tagwise.sources.annotations import read_annotated
from tagwise.types import TagwiseError


def write_spec(path, spec: dict):
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def hs_items(data_dir):
    return list(json.loads((data_dir / "hs_brexit/HS-Brexit_train.json").read_text()).items())


def _write_hs_votes(tmp_path, items):
    """HS-Brexit as a vote-count file: per label how many of the 6 annotators chose it."""
    with open(tmp_path / "votes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", *[f"{k}_votes" for k in LABELS], "n"])
        for key, item in items:
            v = hs_brexit_votes(item)
            w.writerow([key, item["text"], *[sum(v[k]) for k in LABELS], 6])
    return tmp_path / "votes.csv"


# ----------------------------------------------------------------------------- votes
def test_votes_source_keeps_votes_as_judgements_and_threshold_makes_plain_labels(tmp_path, hs_items):
    _write_hs_votes(tmp_path, hs_items)
    base = {"name": "hs_votes", "path": "votes.csv", "columns": {"text": "text", "id": "id"},
            "labels": {"format": "votes", "columns": {k: f"{k}_votes" for k in LABELS}, "count": "n"}}
    data = read_annotated(load_spec(write_spec(tmp_path / "votes.yaml", base)))
    assert len(data.rows) == len(hs_items) and data.rows.annotated_labels == list(LABELS)
    assert len(data.example) == 6 * len(hs_items)  # one anonymous judgement per annotator
    for (key, item), labels in zip(hs_items, data.rows.labels):
        v = hs_brexit_votes(item)
        assert sorted(labels) == sorted(k for k in LABELS if 2 * sum(v[k]) > 6)  # the strict majority
    # threshold: the share of votes decides each example's labels; the votes are no longer judgements
    base["labels"]["threshold"] = 1 / 3
    spec = load_spec(write_spec(tmp_path / "votes_t.yaml", base))
    rows = ingest(spec)
    expected = [sorted(k for k in LABELS if sum(hs_brexit_votes(item)[k]) >= 2) for _, item in hs_items]
    assert [sorted(lab) for lab in rows.labels] == expected
    assert sum(map(bool, expected)) > sum(map(bool, (k for k in data.rows.labels)))  # 2 of 6 is below a majority
    from tagwise.sources.annotations import is_annotated
    assert not is_annotated(spec)


def test_taxonomy_suggest_works_on_votes_and_long_layout_sources(tmp_path, hs_items, data_dir, monkeypatch):
    from tagwise.cli import main
    from tagwise.project import Project

    monkeypatch.setenv("TAGWISE_CACHE_DIR", str(tmp_path / "cache"))
    _write_hs_votes(tmp_path, hs_items[:200])
    write_spec(tmp_path / "votes.yaml", {
        "name": "hs_votes", "path": "votes.csv", "columns": {"text": "text", "id": "id"},
        "labels": {"format": "votes", "columns": {"hateful": "hate_votes", "aggressive": "aggressive_votes",
                                                  "offensive": "offensive_votes"}, "count": "n",
                   "map": {"hateful": "hate"}}})
    (tmp_path / "tax.yaml").write_text("labels:\n  - {name: abuse}\n  - {name: hate, parent: abuse}\n"
                                       "  - {name: aggressive, parent: abuse}\n  - {name: offensive, parent: abuse}\n")
    Project.init(tmp_path / "p", taxonomy=tmp_path / "tax.yaml")
    assert main(["add-source", str(tmp_path / "p"), str(tmp_path / "votes.yaml")]) == 0
    from tagwise.workflows.taxonomy import suggest_mappings
    result = suggest_mappings(Project.open(tmp_path / "p"), encoder="hashing:256")
    labels = result["hs_votes"]
    assert set(labels) == {"hateful", "aggressive", "offensive"}  # the source's own names, before the map
    assert labels["hateful"]["current"] == ["hate"]
    assert labels["aggressive"]["suggestions"][0]["target"] == "aggressive"  # same name: the name signal wins
    # a crowd in the long layout (ConvAbuse), its labels renamed by the map
    items = _convabuse_items(data_dir, 150)
    annotators = _write_long(tmp_path / "long.csv", items)
    write_spec(tmp_path / "crowd.yaml", {
        "name": "convabuse", "path": "long.csv", "columns": {"text": "text"},
        "labels": {"format": "long", "item_column": "item", "label_column": "label", "annotator_columns": annotators,
                   "threshold": 1, "map": {"abuse": "abuse", "racist": "hate", "sexist": "hate",
                                           **{t: None for t in _TYPES if t not in ("racist", "sexist")}}}})
    assert main(["add-source", str(tmp_path / "p"), str(tmp_path / "crowd.yaml")]) == 0
    crowd = suggest_mappings(Project.open(tmp_path / "p"), sources=["convabuse"], encoder="hashing:256")["convabuse"]
    assert set(crowd) == {"abuse", *_TYPES}
    assert crowd["racist"]["current"] == ["hate"] and crowd["ableism"]["current"] == []
    assert all(len(v["suggestions"]) == 3 and {x["target"] for x in v["suggestions"]} <= {
        "abuse", "hate", "aggressive", "offensive"} for v in crowd.values())


# ----------------------------------------------------------------------------- threshold on onehot
def test_onehot_fractions_need_a_threshold(tmp_path, hs_items):
    with open(tmp_path / "shares.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", *LABELS])
        for _, item in hs_items:
            v = hs_brexit_votes(item)
            w.writerow([item["text"], *[f"{sum(v[k]) / 6:.4f}" for k in LABELS]])
    spec = {"path": "shares.csv", "labels": {"format": "onehot", "onehot_columns": list(LABELS)}}
    with pytest.raises(TagwiseError, match=r"fraction.*labels/threshold"):
        ingest(load_spec(write_spec(tmp_path / "s.yaml", spec)))
    spec["labels"]["threshold"] = 0.5
    rows = ingest(load_spec(write_spec(tmp_path / "s.yaml", spec)))
    expected = [sorted(k for k in LABELS if round(sum(hs_brexit_votes(item)[k]) / 6, 4) >= 0.5) for _, item in hs_items]
    assert [sorted(lab) for lab in rows.labels] == expected
    assert any(expected) and not all(expected)
    for bad in (0, 1.5, "half", True):
        spec["labels"]["threshold"] = bad
        with pytest.raises(TagwiseError, match="labels/threshold"):
            load_spec(write_spec(tmp_path / "s.yaml", spec))
    spec["labels"] = {"format": "delimited", "threshold": 0.5}
    with pytest.raises(TagwiseError, match="labels/threshold applies to"):
        load_spec(write_spec(tmp_path / "s.yaml", spec))


# ----------------------------------------------------------------------------- constant
def test_constant_label_on_plain_and_votes_sources(tmp_path, data_dir, hs_items):
    spec = {"name": "sem", "path": str(data_dir / "semeval2018_ec_en/E-c-En-dev.txt"), "format": "tsv",
            "quoting": "none", "columns": {"text": "Tweet", "id": "ID"}, "limit": 200,
            "labels": {"format": "onehot", "onehot_columns": ["anger", "joy"], "constant": {"emotion": 1, "spam": 0}}}
    rows = ingest(load_spec(write_spec(tmp_path / "sem.yaml", spec)))
    assert rows.annotated_labels == ["anger", "joy", "emotion", "spam"]
    assert all("emotion" in lab and "spam" not in lab for lab in rows.labels)
    assert sum("anger" in lab for lab in rows.labels) > 0  # the file's own labels are kept
    # a row that has a label the constant says no row has: one clear error naming the row
    spec["labels"]["constant"] = {"anger": 0}
    with pytest.raises(TagwiseError, match=r"row \d+: the row has label 'anger'.*constant"):
        ingest(load_spec(write_spec(tmp_path / "sem.yaml", spec)))
    spec["labels"]["constant"] = {"emotion": 2}
    with pytest.raises(TagwiseError, match="labels/constant/emotion"):
        load_spec(write_spec(tmp_path / "sem.yaml", spec))
    # with per-annotator votes every judgement carries the constant label
    _write_hs_votes(tmp_path, hs_items[:50])
    data = read_annotated(load_spec(write_spec(tmp_path / "v.yaml", {
        "path": "votes.csv", "columns": {"text": "text", "id": "id"},
        "labels": {"format": "votes", "columns": {"hate": "hate_votes"}, "count": "n", "constant": {"brexit": 1}}})))
    assert data.rows.annotated_labels == ["hate", "brexit"]
    assert all("brexit" in lab for lab in data.labels) and all("brexit" in lab for lab in data.rows.labels)


# ----------------------------------------------------------------------------- long layout (ConvAbuse)
_TYPES = ["ableism", "homophobic", "intellectual", "racist", "sexist", "sex_harassment", "transphobic"]


def _convabuse_items(data_dir, n_items):
    """ConvAbuse judgements grouped by item (conversation + turns): {item: {"text", "judgements": {annotator:
    {"abuse": severity 0..3, type: 0/1}}}} for the first ``n_items`` items; an annotator's first judgement counts."""
    items: dict = {}
    with open(data_dir / "convabuse/1_full/ConvAbuseEMNLPfull.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            key = (r["conv_id"], r["prev_agent"], r["prev_user"], r["agent"], r["user"])
            if key not in items:
                if len(items) >= n_items:
                    continue
                items[key] = {"id": f"item{len(items)}", "text": r["user"], "judgements": {}}
            level = next(int(c.split(".")[1]) for c in r if c.startswith("is_abuse.") and r[c] == "1")
            ratings = {"abuse": max(0, -level), **{t: int(r[f"type.{t}"]) for t in _TYPES}}
            items[key]["judgements"].setdefault(r["annotator_id"], ratings)
    return list(items.values())


def _write_long(path, items):
    annotators = [f"Annotator{a}" for a in range(1, 9)]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item", "text", "label", *annotators])
        for it in items:
            for label in ["abuse", *_TYPES]:
                w.writerow([it["id"], it["text"], label,
                            *[it["judgements"][a][label] if a in it["judgements"] else "" for a in annotators]])
    return annotators


def test_long_layout_crowd_reads_items_labels_and_annotators(tmp_path, data_dir):
    items = _convabuse_items(data_dir, 400)
    annotators = _write_long(tmp_path / "long.csv", items)
    spec = {"name": "convabuse", "path": "long.csv", "columns": {"text": "text"},
            "labels": {"format": "long", "item_column": "item", "label_column": "label",
                       "annotator_columns": annotators}}
    # severities 0..3: which rating means "abuse" is the user's call, never a silent guess
    with pytest.raises(TagwiseError, match=r"ratings run from 0 to 3.*labels/threshold"):
        read_annotated(load_spec(write_spec(tmp_path / "c.yaml", spec)))
    spec["labels"]["threshold"] = 1
    data = read_annotated(load_spec(write_spec(tmp_path / "c.yaml", spec)))
    rows = data.rows
    assert len(rows) == len(items) and rows.example_ids == [it["id"] for it in items]
    assert rows.annotated_labels == ["abuse", *_TYPES] and not rows.warnings
    assert len(data.example) == sum(len(it["judgements"]) for it in items)
    for e, a, labels in zip(data.example, data.annotator, data.labels):
        truth = items[e]["judgements"][a]
        assert sorted(labels) == sorted(k for k, v in truth.items() if v >= 1)
    for it, labels in zip(items, rows.labels):  # the row keeps the strict majority
        n = len(it["judgements"])
        assert sorted(labels) == sorted(k for k in ["abuse", *_TYPES]
                                        if 2 * sum(j[k] >= 1 for j in it["judgements"].values()) > n)
    assert 0 < sum("abuse" in lab for lab in rows.labels) < len(rows)
    # a higher threshold keeps only the severe ratings
    spec["labels"]["threshold"] = 3
    severe = read_annotated(load_spec(write_spec(tmp_path / "c.yaml", spec)))
    assert sum("abuse" in lab for lab in severe.labels) < sum("abuse" in lab for lab in data.labels)

    # the project stores one example per item and every judgement; add-source reports no warning
    from tagwise.cli import main
    from tagwise.project import Project
    spec["labels"]["threshold"] = 1
    write_spec(tmp_path / "c.yaml", spec)
    Project.init(tmp_path / "p")
    summary = Project.open(tmp_path / "p").add_source(tmp_path / "c.yaml")
    assert summary["n_examples"] == len(items) and summary["n_annotations"] == len(data.example)
    assert summary["warnings"] == [] and sorted(summary["annotators"]) == sorted(
        {a for it in items for a in it["judgements"]})


def test_long_file_read_as_wide_warns_about_numeric_label_names(tmp_path, data_dir, capsys):
    """The old misreading: annotator_columns on a long-layout file made labels named 0 … 3; now it is said."""
    from tagwise.cli import main
    from tagwise.project import Project

    items = _convabuse_items(data_dir, 60)
    annotators = _write_long(tmp_path / "long.csv", items)
    write_spec(tmp_path / "wrong.yaml", {"name": "wrong", "path": "long.csv", "columns": {"text": "text"},
                                         "labels": {"format": "single", "annotator_columns": annotators}})
    Project.init(tmp_path / "p")
    assert main(["add-source", str(tmp_path / "p"), str(tmp_path / "wrong.yaml")]) == 0
    err = capsys.readouterr().err
    assert "look like numbers" in err and "'0'" in err and "labels/format long" in err


def test_long_layout_validation(tmp_path):
    (tmp_path / "l.csv").write_text("item,text,label,r1,r2\n1,a text,x,1,\n1,a text,y,0,1\n2,b text,x,maybe,0\n")
    spec = {"path": "l.csv", "labels": {"format": "long", "label_column": "label", "item_column": "item",
                                        "annotator_columns": ["r1", "r2"]}}
    with pytest.raises(TagwiseError, match=r"row 4: annotator column 'r1' has 'maybe'"):
        read_annotated(load_spec(write_spec(tmp_path / "l.yaml", spec)))
    (tmp_path / "l.csv").write_text("item,text,label,r1,r2\n1,a text,x,1,\n1,a text,y,0,1\n2,b text,x,1,0\n")
    data = read_annotated(load_spec(write_spec(tmp_path / "l.yaml", spec)))
    # r1 rated both labels of item 1, r2 only y; item 2 has no row for y: three gaps, said in a warning
    assert [(data.example[j], data.annotator[j], data.labels[j]) for j in range(len(data.example))] == [
        (0, "r1", ["x"]), (0, "r2", ["y"]), (1, "r1", ["x"]), (1, "r2", [])]
    assert data.rows.labels == [[], []] and data.rows.example_ids == ["1", "2"]
    assert any("3 (item, annotator, label)" in w for w in data.rows.warnings)
    (tmp_path / "l.csv").write_text("item,text,label,r1,r2\n1,a text,x,1,\n,b text,x,1,0\n")
    with pytest.raises(TagwiseError, match=r"row 3: empty item id in column 'item'"):
        read_annotated(load_spec(write_spec(tmp_path / "l.yaml", spec)))
    (tmp_path / "l.csv").write_text("item,text,label,r1,r2\n1,a text,x,1,\n1,another text,y,1,\n")
    with pytest.raises(TagwiseError, match=r"rows 2 and 3: item '1' has two different texts"):
        read_annotated(load_spec(write_spec(tmp_path / "l.yaml", spec)))
    del spec["labels"]["label_column"]
    with pytest.raises(TagwiseError, match="labels/label_column"):
        load_spec(write_spec(tmp_path / "l.yaml", spec))


# ----------------------------------------------------------------------------- holdout
def _ge_spec(data_dir, **extra):
    return {"name": "ge", "path": str(data_dir / "goemotions/original_train.tsv"), "header": False,
            "quoting": "none", "columns": {"text": 0, "labels": 1}, "limit": 6000,
            "labels": {"names_file": str(data_dir / "goemotions/original_labels.txt")}, **extra}


def _test_share_per_label(rows, split="test"):
    total, held = collections.Counter(), collections.Counter()
    for s, labels in zip(rows.splits, rows.labels):
        for n in labels:
            total[n] += 1
            held[n] += s == split
    return {n: held[n] / total[n] for n in total}, total


def test_holdout_is_stratified_reproducible_and_stable(tmp_path, data_dir):
    spec = _ge_spec(data_dir, holdout={"test": 0.2, "dev": 0.1, "seed": 0})
    rows = ingest(load_spec(write_spec(tmp_path / "ge.yaml", spec)))
    n = len(rows)
    counts = collections.Counter(rows.splits)
    assert abs(counts["test"] - 0.2 * n) <= 2 and abs(counts["dev"] - 0.1 * n) <= 2
    assert rows.example_ids[0].split(":")[0] == rows.splits[0]  # a made-up id still names its split
    # rows with the same text share a split (no text on both sides of the cut)
    split_of = {}
    for t, s in zip(rows.texts, rows.splits):
        assert split_of.setdefault(t, s) == s
    # label-stratified: every label's test share is close to 0.2, closer than a plain random cut's
    share, total = _test_share_per_label(rows)
    rng = random.Random(0)
    plain = type(rows)(name="plain", texts=rows.texts, labels=rows.labels,
                       splits=[("test" if u < 0.2 else "dev" if u < 0.3 else "train")
                               for u in (rng.random() for _ in rows.texts)])
    plain_share, _ = _test_share_per_label(plain)
    dev_stratified = sum(abs(v - 0.2) for v in share.values()) / len(share)
    dev_plain = sum(abs(v - 0.2) for v in plain_share.values()) / len(share)
    assert dev_stratified < dev_plain / 2
    assert all(share[n] > 0 for n, c in total.items() if c >= 5)  # even a rare label is tested
    # reproducible: the same seed gives the same splits; the same file re-added in another row order too
    again = ingest(load_spec(write_spec(tmp_path / "ge.yaml", spec)))
    assert again.splits == rows.splits
    lines = (data_dir / "goemotions/original_train.tsv").read_text(encoding="utf-8").splitlines()[:6000]
    random.Random(1).shuffle(lines)
    (tmp_path / "shuffled.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shuffled = ingest(load_spec(write_spec(tmp_path / "sh.yaml", {**spec, "path": "shuffled.tsv"})))
    assert dict(zip(shuffled.texts, shuffled.splits)) == dict(zip(rows.texts, rows.splits))
    other_seed = ingest(load_spec(write_spec(tmp_path / "ge2.yaml", {**spec, "holdout": {"test": 0.2, "seed": 1}})))
    assert other_seed.splits != rows.splits and "dev" not in other_seed.splits


def test_holdout_refuses_a_file_with_splits(tmp_path, data_dir):
    with pytest.raises(TagwiseError, match="holdout.*split: 'train'"):
        load_spec(write_spec(tmp_path / "a.yaml", _ge_spec(data_dir, split="train", holdout={"test": 0.2})))
    spec = _ge_spec(data_dir, holdout={"test": 0.2})
    del spec["path"]
    spec["splits"] = {"train": str(data_dir / "goemotions/original_train.tsv"),
                      "test": str(data_dir / "goemotions/original_test.tsv")}
    with pytest.raises(TagwiseError, match=r"already has split\(s\) \['test'\]"):
        load_spec(write_spec(tmp_path / "b.yaml", spec))
    for bad in ({"test": 0.7, "dev": 0.3}, {"test": 0}, {"test": "a fifth"}, {"tests": 0.2}):
        with pytest.raises(TagwiseError, match="holdout"):
            load_spec(write_spec(tmp_path / "c.yaml", _ge_spec(data_dir, holdout=bad)))


def test_holdout_on_a_crowd_cuts_whole_items(tmp_path, hs_items):
    _write_hs_votes(tmp_path, hs_items)
    spec = {"path": "votes.csv", "columns": {"text": "text", "id": "id"}, "holdout": {"test": 0.25, "seed": 3},
            "labels": {"format": "votes", "columns": {k: f"{k}_votes" for k in LABELS}, "count": "n"}}
    data = read_annotated(load_spec(write_spec(tmp_path / "v.yaml", spec)))
    counts = collections.Counter(data.rows.splits)
    assert abs(counts["test"] - 0.25 * len(hs_items)) <= 2 and set(counts) == {"train", "test"}
    assert data.rows.example_ids == [k for k, _ in hs_items]  # ids from the file are kept


# ----------------------------------------------------------------------------- language coverage
def test_a_language_the_encoder_does_not_cover_is_warned_with_one_that_does(tmp_path, data_dir, capsys):
    from tagwise.cli import main
    from tagwise.encoders.registry import USE_LANGUAGES, XLMR_LANGUAGES, encoder_languages
    from tagwise.project import Project

    assert "fi" not in USE_LANGUAGES and "fi" in XLMR_LANGUAGES and len(XLMR_LANGUAGES) >= 90
    assert encoder_languages("hashing") is None and encoder_languages("use+st:all-minilm-l6-v2") == USE_LANGUAGES
    xed = {"path": str(data_dir / "xed/fi-annotated.tsv"), "format": "tsv", "header": False, "quoting": "none",
           "limit": 100, "columns": {"text": 0, "labels": 1},
           "labels": {"names": ["anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust"],
                      "id_base": 1}}
    write_spec(tmp_path / "xed_fi.yaml", {"name": "xed_fi", "language": "fi", **xed})
    write_spec(tmp_path / "xed_en.yaml", {"name": "xed_en", "language": "en-GB", **xed,
                                          "path": str(data_dir / "xed/en-annotated.tsv")})
    Project.init(tmp_path / "p")  # default encoder: use (16 languages)
    assert main(["add-source", str(tmp_path / "p"), str(tmp_path / "xed_en.yaml")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["add-source", str(tmp_path / "p"), str(tmp_path / "xed_fi.yaml")]) == 0
    err = capsys.readouterr().err
    assert "language 'fi' (100 rows) is not among the 15 languages of the encoder 'use'" in err
    assert "`--encoder e5` (multilingual-e5-small, ~100 languages, fi included" in err
    q = Project.init(tmp_path / "q")
    q.store.set_meta("encoder", "hashing")
    assert q.add_source(tmp_path / "xed_fi.yaml")["warnings"] == []
