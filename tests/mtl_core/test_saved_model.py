"""A trained model with its featurizer: predict on raw frames, save and load with nothing
executed from the folder, and the featurizer's own transform equal to scikit-learn's."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mtl_core import TaskFrame, TextFeatures, prepare_tasks
from mtl_core import tasks as task_types
from mtl_core.config import TrainConfig
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.data.features import _tabular, fit_feature_space
from mtl_core.data.readers import DataError
from mtl_core.saved_model import (
    FEATURES_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    ModelFileError,
    TrainedModel,
)
from mtl_core.train import fit


def _table(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["good", "bad", "fine", "awful", "great", "dull"])
    frame = pd.DataFrame(
        {
            "text": [" ".join(rng.choice(words, 4)) for _ in range(rows)],
            "age": rng.normal(40, 10, rows),
            "city": rng.choice(["paris", "oslo", "rome"], rows),
        }
    )
    frame.loc[::17, "age"] = np.nan  # imputed with the training median
    positive = frame.text.str.count("good|great") > frame.text.str.count("bad|awful")
    frame["label"] = np.where(positive, "pos", "neg")
    frame["income"] = frame.age.fillna(40) * 0.1 + rng.normal(0, 1, rows)
    frame["kind"] = rng.choice(["x", "y", "z"], rows)
    frame["tag_a"] = (frame.city == "oslo").astype(int)
    frame["tag_b"] = (frame.age.fillna(0) > 40).astype(int)
    return frame


@pytest.fixture(scope="module")
def trained():
    frame = _table()
    tasks, space = prepare_tasks(
        {
            "sentiment": TaskFrame(
                inputs=["text", "age", "city"], target="label", type="binary", frame=frame
            ),
            "income": TaskFrame(
                inputs=["age", "city"], target="income", type="regression", frame=frame
            ),
            "kind": TaskFrame(inputs="text", target="kind", type="multiclass", frame=frame),
            "tags": TaskFrame(
                inputs=["age", "city"], target=["tag_a", "tag_b"], type="multilabel", frame=frame
            ),
        },
        text={"text": TextFeatures(kind="tfidf")},
    )
    config = TrainConfig(hidden_size=16, epochs=2, architecture="mmoe")
    result = fit(tasks, config)
    first = next(iter(tasks.values()))
    model = TrainedModel.from_fit(
        result.model,
        config,
        [t.spec for t in tasks.values()],
        first.input_shape,
        space,
        {"test": result.test},
    )
    return model, frame, tasks, result


def test_save_and_load_give_identical_predictions(trained, tmp_path):
    model, frame, _, _ = trained
    back = TrainedModel.load(model.save(tmp_path / "m"))
    before, after = model.predict(frame), back.predict(frame)
    pd.testing.assert_frame_equal(before, after)
    assert list(before.columns) == [name for name, _ in model.output_columns()]
    assert set(before["sentiment"]) <= {"neg", "pos"}  # classes as labelled in the data
    np.testing.assert_allclose(before["sentiment/p/neg"] + before["sentiment/p/pos"], 1, atol=1e-6)
    assert set(before["tags/tag_a"]) <= {0, 1} and "tags/p/tag_b" in before
    assert before["income"].dtype == np.float64
    assert back.metrics == json.loads(json.dumps(model.metrics))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(
        [MODEL_FILE, WEIGHTS_FILE, FEATURES_FILE]
    )


def test_the_loaded_model_scores_as_training_did(trained, tmp_path):
    """Scores from raw rows, through the saved featurizer, give the metrics fit measured."""
    model, frame, tasks, result = trained
    back = TrainedModel.load(model.save(tmp_path / "m"))
    for name in tasks:  # the loaded featurizer is the fitted one
        before, after = model.space.transform(name, frame), back.space.transform(name, frame)
        assert (before != after).nnz == 0 and before.shape == after.shape
    for name, data in tasks.items():
        x = data.x["test"]
        with torch.no_grad():
            logits = back.model.eval()(torch.from_numpy(x.toarray()), name)
        got = task_types.score(data.spec, data.y["test"], task_types.predict(data.spec, logits))
        for metric, value in result.test[name].items():
            if np.isfinite(value):
                assert got[metric] == pytest.approx(value, abs=1e-6), (name, metric)


def test_the_table_transform_is_scikit_learns(trained):
    """The saved statistics transform rows as the fitted ColumnTransformer does, including
    a category never seen in training (all zeros) and a missing number (the median)."""
    _, frame, _, _ = trained
    train = frame.iloc[:200]
    space = fit_feature_space({"t": train}, {"t": ["age", "city"]})
    block = space.blocks[0]
    reference = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())]),
                ["age"],
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ],
        sparse_threshold=1.0,
    ).fit(_tabular(train, ("age",), ("city",)))
    new = pd.DataFrame({"age": [np.nan, 31.0, 99.0], "city": ["oslo", "lima", None]})
    ours = space.transform("t", new).toarray()
    theirs = np.asarray(
        reference.transform(_tabular(new, ("age",), ("city",))).todense(), dtype=np.float32
    )
    np.testing.assert_array_equal(ours, theirs)
    assert ours[1, 1:].sum() == 0  # "lima": unseen
    assert block.table.median[0] == pytest.approx(float(train.age.median()))


def test_a_missing_or_malformed_input_column_is_named(trained):
    model, frame, _, _ = trained
    with pytest.raises(DataError, match="no column 'age'") as caught:
        model.predict(frame.drop(columns=["age"]))
    assert caught.value.column == "age"
    bad = frame.astype({"age": object})
    bad.loc[5, "age"] = "forty"
    with pytest.raises(DataError, match=r"column 'age', row 6: 'forty' is not a number"):
        model.predict(bad)
    text_only = model.predict(frame[["text"]], tasks=["kind"])  # a task's own columns suffice
    assert list(text_only.columns) == ["kind", "kind/p/x", "kind/p/y", "kind/p/z"]


def test_a_tampered_folder_is_refused_and_nothing_in_it_runs(trained, tmp_path):
    model, frame, _, _ = trained
    folder = model.save(tmp_path / "m")
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    weights = (folder / WEIGHTS_FILE).read_bytes()
    (folder / WEIGHTS_FILE).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError, match=WEIGHTS_FILE):
        TrainedModel.load(folder)
    assert not sentinel.exists()
    (folder / WEIGHTS_FILE).write_bytes(weights)

    described = json.loads((folder / MODEL_FILE).read_text())
    for change, needle in [
        ({"build": {**described["build"], "architecture": "os:system"}}, "architecture"),
        ({"build": {**described["build"], "__reduce__": "x"}}, "build keys"),
        ({"format": 99}, "format 99"),
        ({"tasks": [{**described["tasks"][0], "type": "eval"}]}, "not a saved model"),
    ]:
        (folder / MODEL_FILE).write_text(json.dumps({**described, **change}))
        with pytest.raises(ModelFileError, match=needle):
            TrainedModel.load(folder)
    (folder / MODEL_FILE).write_text(json.dumps(described))

    features = json.loads((folder / FEATURES_FILE).read_text())
    features["blocks"][0]["words"] = features["blocks"][0]["words"][:-1]
    (folder / FEATURES_FILE).write_text(json.dumps(features))
    with pytest.raises(ModelFileError, match=FEATURES_FILE):
        TrainedModel.load(folder)
    (folder / FEATURES_FILE).unlink()
    (folder / MODEL_FILE).unlink()
    with pytest.raises(ModelFileError, match="missing"):
        TrainedModel.load(folder)
    assert not sentinel.exists()


def test_a_model_over_arrays_takes_rows(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    tasks = tasks_from_arrays(x, {"sign": ((x[:, 0] > 0).astype(int), "binary")})
    config = TrainConfig(hidden_size=8, epochs=1)
    result = fit(tasks, config)
    model = TrainedModel.from_fit(result.model, config, [tasks["sign"].spec], (6,), None)
    back = TrainedModel.load(model.save(tmp_path / "a"))
    pd.testing.assert_frame_equal(model.predict(x), back.predict(x))
    assert not (tmp_path / "a" / FEATURES_FILE).exists()
    with pytest.raises(DataError, match=r"rows of shape \(6,\)"):
        back.predict(x[:, :5])


def test_task_towers_are_saved_and_read_back(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    tasks = tasks_from_arrays(x, {"sign": ((x[:, 0] > 0).astype(int), "binary")})
    config = TrainConfig(hidden_size=8, epochs=1, head_layers=2, head_hidden=5)
    result = fit(tasks, config)
    model = TrainedModel.from_fit(result.model, config, [tasks["sign"].spec], (6,), None)
    back = TrainedModel.load(model.save(tmp_path / "t"))
    pd.testing.assert_frame_equal(model.predict(x), back.predict(x))
    described = json.loads((tmp_path / "t" / MODEL_FILE).read_text())
    assert described["build"]["settings"] == {"head_layers": 2, "head_hidden": 5}
    linear = TrainedModel.from_fit(fit(tasks, TrainConfig(hidden_size=8, epochs=1)).model,
                                   TrainConfig(hidden_size=8, epochs=1), [tasks["sign"].spec],
                                   (6,), None)  # fmt: skip
    assert "head_layers" not in linear.build["settings"]  # as saved before towers existed
