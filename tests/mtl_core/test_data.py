"""Readers, labels, splits and the shared feature space, on the real review sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtl_core.data.features import TextFeatures, densify, fit_feature_space
from mtl_core.data.labels import apply_label_map, encode_targets, label_classes
from mtl_core.data.prepare import TaskFrame, prepare_tasks
from mtl_core.data.readers import DataError, read_table
from mtl_core.data.splits import split_frame
from mtl_core.tasks import TaskType
from tests.helpers import SENTIMENT

FILES = ["imdb_labelled.txt", "yelp_labelled.txt", "amazon_cells_labelled.txt"]


@pytest.mark.parametrize("name", FILES)
def test_every_sentiment_file_loads_all_rows(name):
    frame = read_table(SENTIMENT / name, header=False, columns=["text", "label"])
    assert len(frame) == 1000
    assert frame["label"].value_counts().to_dict() == {0: 500, 1: 500}
    assert not frame["text"].str.contains("\t").any()


def test_formats_round_trip(tmp_path):
    frame = pd.DataFrame({"text": ['a, "quoted" one', "plain"], "label": [1, 0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.csv", "t.parquet", "t.jsonl"):
        back = read_table(tmp_path / name)
        assert back["text"].tolist() == frame["text"].tolist(), name
    (tmp_path / "t.tsv").write_text('text\tlabel\nsays "hi\t1\n')
    assert read_table(tmp_path / "t.tsv")["text"].tolist() == ['says "hi']


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="t.xlsx.*unknown format"):
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(DataError, match="absent.csv: no such file"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "two.txt").write_text("a\t1\n")
    with pytest.raises(DataError, match="has 2 columns but `columns` names 3"):
        read_table(tmp_path / "two.txt", header=False, columns=["x", "y", "z"])


def test_a_column_name_given_twice_is_refused_not_renamed(tmp_path):
    # pandas read the second `label` as `label.1`: a task reading `label` got the first silently
    (tmp_path / "twice.csv").write_text("text,label,label\ngood,1,0\nbad,0,1\n")
    with pytest.raises(DataError, match="twice.csv: column names given more than once: 'label'"):
        read_table(tmp_path / "twice.csv")
    (tmp_path / "twice.tsv").write_text("a\tb\ta\n1\t2\t3\n")
    with pytest.raises(DataError, match="more than once: 'a'"):
        read_table(tmp_path / "twice.tsv")
    (tmp_path / "none.txt").write_text("good\t1\n")
    with pytest.raises(DataError, match="more than once: 'x'"):
        read_table(tmp_path / "none.txt", header=False, columns=["x", "x"])
    (tmp_path / "once.csv").write_text("label,label.1\n1,0\n")  # what pandas would make of it
    assert list(read_table(tmp_path / "once.csv").columns) == ["label", "label.1"]


def test_labels():
    stars = pd.Series([1, 2, 3, 4, 5])
    mapped = apply_label_map(stars, {1: "neg", 2: "neg", 3: "neu", 4: "pos", 5: "pos"})
    assert label_classes(TaskType.multiclass, mapped) == ("neg", "neu", "pos")
    with pytest.raises(DataError, match="does not name the raw label"):
        apply_label_map(stars, {1: "neg"})
    with pytest.raises(DataError, match="exactly 2 distinct labels, found 3"):
        label_classes(TaskType.binary, pd.Series([0, 1, 2]))
    assert encode_targets(TaskType.binary, pd.Series(["yes", "no"]), ("no", "yes")).tolist() == [
        1.0,
        0.0,
    ]
    with pytest.raises(DataError, match="numeric"):
        encode_targets(TaskType.regression, pd.Series(["1.5", "abc"]), ())


def test_splits_are_sized_stratified_and_seeded():
    frame = pd.DataFrame({"x": range(200), "y": [0] * 150 + [1] * 50})
    parts = split_frame(frame, 0.15, 0.15, seed=0, stratify=frame["y"])
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [140, 30, 30]
    for part in parts.values():
        assert abs(part["y"].mean() - 0.25) <= 1 / len(part) + 1e-9
    again = split_frame(frame, 0.15, 0.15, seed=0, stratify=frame["y"])
    other = split_frame(frame, 0.15, 0.15, seed=1, stratify=frame["y"])
    assert parts["test"]["x"].tolist() == again["test"]["x"].tolist()
    assert parts["test"]["x"].tolist() != other["test"]["x"].tolist()
    assert set().union(*(set(p["x"]) for p in parts.values())) == set(range(200))
    with pytest.raises(DataError, match="too few"):
        split_frame(frame.head(2), 0.4, 0.4, seed=0)


def _texts(*rows_per_task):
    return {f"t{i}": pd.DataFrame({"text": rows}) for i, rows in enumerate(rows_per_task)}


def test_vocabularies_union_intersection_per_task():
    frames = _texts(["good movie", "bad movie"], ["good food", "bad service"])
    inputs = {"t0": ["text"], "t1": ["text"]}
    union = fit_feature_space(frames, inputs, {"text": TextFeatures(vocabulary="union")})
    assert union.blocks[0].words == ("bad", "food", "good", "movie", "service")
    inter = fit_feature_space(frames, inputs, {"text": TextFeatures(vocabulary="intersection")})
    assert inter.blocks[0].words == ("bad", "good")
    per = fit_feature_space(frames, inputs, {"text": TextFeatures(vocabulary="per_task")})
    assert [b.words for b in per.blocks] == [
        ("bad", "good", "movie"),
        ("bad", "food", "good", "service"),
    ]
    x0 = per.transform("t0", frames["t0"]).toarray()
    assert x0.shape == (2, 7) and x0[:, 3:].sum() == 0  # nothing outside its own block
    assert union.fingerprint() != inter.fingerprint()


def test_max_features_keeps_the_most_frequent_words_and_tfidf_weights():
    frames = _texts(["good good movie", "good plot"], ["good food", "good movie"])
    inputs = {"t0": ["text"], "t1": ["text"]}
    space = fit_feature_space(
        frames, inputs, {"text": TextFeatures(max_features=2, vocabulary="union")}
    )
    assert space.blocks[0].words == ("good", "movie")  # the two most frequent, sorted
    tfidf = fit_feature_space(frames, inputs, {"text": TextFeatures(kind="tfidf")})
    row = tfidf.transform("t0", pd.DataFrame({"text": ["good movie"]})).toarray()[0]
    assert 0 < row.max() <= 1.0 and np.isclose(np.linalg.norm(row), 1.0)


def test_vocabulary_comes_from_training_rows_only():
    tasks, space = prepare_tasks(
        {
            "a": TaskFrame(
                splits={
                    "train": pd.DataFrame({"text": ["alpha beta", "beta"], "y": [1, 0]}),
                    "valid": pd.DataFrame({"text": ["gamma"], "y": [1]}),
                    "test": pd.DataFrame({"text": ["delta beta"], "y": [0]}),
                },
                inputs="text",
                target="y",
                type="binary",
            )
        }
    )
    assert space.blocks[0].words == ("alpha", "beta")
    assert tasks["a"].x["test"].toarray().tolist() == [[0.0, 1.0]]


def test_numeric_columns_are_standardised_on_training_rows():
    frames = {"t": pd.DataFrame({"v": [1.0, 3.0]})}
    space = fit_feature_space(frames, {"t": ["v"]})
    out = space.transform("t", pd.DataFrame({"v": [2.0, 5.0]})).toarray().ravel()
    assert out.tolist() == pytest.approx([0.0, 3.0])


def test_densify_makes_whole_batches():
    frames = _texts(["good movie", "bad movie", "fine"])
    space = fit_feature_space(frames, {"t0": ["text"]})
    matrix = space.transform("t0", frames["t0"])
    batch = densify(matrix, np.array([2, 0]))
    assert batch.dtype == np.float32 and batch.shape == (2, space.width)
    assert batch.tolist() == matrix[[2, 0]].toarray().tolist()


def test_prepare_tasks_names_the_missing_column():
    frame = pd.DataFrame({"text": ["a b"] * 20, "label": [0, 1] * 10})
    with pytest.raises(DataError, match="task 'a'.*no column 'stars'"):
        prepare_tasks({"a": TaskFrame(frame=frame, inputs="text", target="stars", type="binary")})


def test_column_kinds_are_detected_and_declared_kinds_win():
    from mtl_core.data.features import column_kind

    assert column_kind(pd.Series([1.5, None, 3.0])) == "numeric"
    assert column_kind(pd.Series(["1", "2.5", "x"] + ["4"] * 30)) == "numeric"  # "x" is bad
    assert column_kind(pd.Series(["Private", "State-gov", "Private", None] * 5)) == "categorical"
    assert column_kind(pd.Series(["a fine film", "not good at all"] * 5)) == "bow"
    assert column_kind(pd.Series([f"id{i}" for i in range(20)])) == "bow"  # mostly distinct
    assert column_kind(pd.Series(["a", "b"] * 5), declared="bow") == "bow"


def test_numeric_missing_values_take_the_training_median():
    frames = {"t": pd.DataFrame({"v": [1.0, None, 3.0, 10.0]})}
    space = fit_feature_space(frames, {"t": ["v"]})
    mean, std = space.scaling("v")
    assert mean == pytest.approx((1 + 3 + 3 + 10) / 4)  # the gap filled with the median 3
    out = space.transform("t", pd.DataFrame({"v": [None]})).toarray()
    assert out[0, 0] == pytest.approx((3 - mean) / std)


def test_categories_come_from_training_rows_and_missing_is_a_category():
    train = pd.DataFrame({"c": ["red", "blue", None, "red"], "v": [1, 2, 3, 4]})
    kinds = {"c": TextFeatures(kind="categorical")}  # 2 distinct of 3: detected as text
    space = fit_feature_space({"t": train}, {"t": ["c", "v"]}, kinds)
    assert space.feature_names() == ["v", "c=(missing)", "c=blue", "c=red"]
    rows = pd.DataFrame({"c": ["green", None, "blue"], "v": [1, 2, 3]})
    out = space.transform("t", rows).toarray()
    assert out[0, 1:].tolist() == [0, 0, 0]  # unseen in training: all zeros
    assert out[1, 1:].tolist() == [1, 0, 0] and out[2, 1:].tolist() == [0, 1, 0]
    other = fit_feature_space(
        {"t": train.assign(c=["red", "red", "red", "blue"])}, {"t": ["c", "v"]}, kinds
    )
    assert other.fingerprint() != space.fingerprint()


def test_label_map_merges_stars_into_three_classes():
    frame = pd.DataFrame({"text": ["great food here", "awful place", "okay i guess"] * 10})
    frame["stars"] = [5, 1, 3] * 10
    stars = {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}
    tasks, _ = prepare_tasks(
        {
            "y": TaskFrame(
                frame=frame, inputs="text", target="stars", type="multiclass", label_map=stars
            )
        }
    )
    assert tasks["y"].spec.classes == ("negative", "neutral", "positive")
    assert sorted(set(tasks["y"].y["train"].tolist())) == [0, 1, 2]


def test_data_errors_carry_where_they_are_as_fields():
    good = pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "label": [0, 1, 0, 1]})
    splits = {"train": good, "valid": good.rename(columns={"text": "body"}), "test": good}
    with pytest.raises(DataError) as caught:
        prepare_tasks(
            {"reviews": TaskFrame(splits=splits, inputs="text", target="label", type="binary")}
        )
    err = caught.value
    assert (err.task, err.split, err.column) == ("reviews", "valid", "text")
    assert str(err) == f"task 'reviews': {err.reason}" and "(valid split)" in err.reason
    rows = good.assign(label=[0, 1, None, 1])
    with pytest.raises(DataError) as caught:
        prepare_tasks({"t": TaskFrame(frame=rows, inputs="text", target="label", type="binary")})
    assert (caught.value.task, caught.value.split, caught.value.row) == ("t", None, 3)
    assert caught.value.within(task="other", split="train").task == "t"  # known fields stay


def test_readers_are_registry_entries_and_every_table_format_round_trips(tmp_path):
    from mtl_core.data.readers import FORMATS, TABLE_FORMATS
    from mtl_core.registry import READERS

    assert set(TABLE_FORMATS) == {n for n, e in READERS.items() if e.table}
    assert set(FORMATS.values()) == set(TABLE_FORMATS) and FORMATS[".txt"] == "tsv"
    frame = pd.DataFrame({"text": ['say "hi', "b"], "n": [1, 2]})
    for fmt in TABLE_FORMATS:
        path = tmp_path / f"t.{fmt}"
        writers = {"csv": lambda p: frame.to_csv(p, index=False),
                   "tsv": lambda p: frame.to_csv(p, sep="\t", index=False, quoting=3),
                   "parquet": lambda p: frame.to_parquet(p),
                   "jsonl": lambda p: frame.to_json(p, orient="records", lines=True)}  # fmt: skip
        writers[fmt](path)
        back = read_table(path)
        assert list(back["text"]) == list(frame["text"]) and list(back["n"]) == [1, 2], fmt
    with pytest.raises(DataError, match="unknown format 'npz'; use csv, tsv, parquet, jsonl"):
        read_table(tmp_path / "t.csv", format="npz")


def test_a_space_of_categorical_columns_only_has_a_fingerprint():
    """It once raised: the numeric scaler of a block without numbers is never fitted."""
    frame = pd.DataFrame({"city": ["oslo", "rome", "oslo", "lima"] * 5})
    space = fit_feature_space({"t": frame}, {"t": ["city"]})
    assert len(space.fingerprint()) == 16 and space.width == 3
