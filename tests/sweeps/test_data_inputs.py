"""Real inputs of every common kind (issue 6): a mixed-type table with two targets, text from
separate split files, a folder of .npy arrays, searched feature settings, content-keyed data."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from sweeps.runner import run_study
from sweeps.spec import load_spec
from sweeps.study_data import load_study_data
from tests.helpers import ROOT, SENTIMENT, small_study, write_study

CENSUS = ROOT / "examples" / "census"


def _trial_runs(spec, name):
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name(name).experiment_id
    return client, exp, client.search_runs([exp], "tags.`mtl.kind` = 'trial'")


def _census(folder, filename: str):
    """A census example study, shortened (2 epochs, one seed, one trial), in ``folder``."""
    shutil.copytree(CENSUS / "data", folder / "data")
    study = yaml.safe_load((CENSUS / filename).read_text())
    study["training"].update(epochs=2, seeds=1)
    study["search"] = {"n_trials": 1, "pruner": "none", "confirm": None}
    return load_spec(write_study(folder, study))


def test_census_table_with_two_targets_runs_with_one_forward_pass(tmp_path):
    spec = _census(tmp_path, "study.yaml")
    data = load_study_data(spec)
    income, marital = data.tasks["income"], data.tasks["marital"]
    assert income.x is marital.x  # same rows, same inputs: the joint schedule shares the trunk
    assert income.rows("train") == 1700 and income.rows("valid") == 300
    assert income.rows("test") == 1000  # the banner line of adult.test skipped
    assert income.spec.classes == ("<=50K", ">50K")  # the test file's "<=50K." merged
    assert len(marital.spec.classes) == 7
    names = data.space.feature_names()
    assert "age" in names and "workclass=Private" in names
    assert "workclass=(missing)" in names  # "?" read as missing, kept as a category
    assert "relationship=Husband" not in names  # not an input
    assert data.space.kinds["education_num"] == "numeric"
    assert data.space.kinds["native_country"] == "categorical"
    x = income.x["train"].toarray()
    one_hot = [i for i, n in enumerate(names) if n.startswith("workclass=")]
    assert np.allclose(x[:, one_hot].sum(axis=1), 1.0)  # exactly one category per row
    age = names.index("age")
    assert abs(x[:, age].mean()) < 1e-5 and abs(x[:, age].std() - 1) < 1e-4  # standardised
    run_study(spec)
    _, _, (run,) = _trial_runs(spec, "census")
    assert run.data.tags["mtl.state"] == "COMPLETE", run.data.tags.get("mtl.error")
    assert {"test/income/auc", "test/marital/f1_macro", "delta/income"} <= set(run.data.metrics)


def test_text_from_separate_split_files(tmp_path):
    frame = pd.read_csv(
        SENTIMENT / "imdb_labelled.txt", sep="\t", header=None, names=["text", "label"], quoting=3
    )
    for split, rows in (
        ("train", slice(0, 700)),
        ("valid", slice(700, 850)),
        ("test", slice(850, None)),
    ):
        frame.iloc[rows].to_csv(tmp_path / f"imdb_{split}.csv", index=False)
    study = small_study("splitfiles")
    study["tasks"]["imdb"] = {
        "split": {s: f"imdb_{s}.csv" for s in ("train", "valid", "test")},
        "inputs": "text",
        "target": "label",
        "type": "binary",
    }
    study["search"]["n_trials"] = 1
    spec = load_spec(write_study(tmp_path, study))
    data = load_study_data(spec)
    imdb = data.tasks["imdb"]
    assert (imdb.rows("train"), imdb.rows("valid"), imdb.rows("test")) == (700, 150, 150)
    assert data.space.kinds["text"] == "bow"
    run_study(spec)
    _, _, (run,) = _trial_runs(spec, "splitfiles")
    assert run.data.tags["mtl.state"] == "COMPLETE"
    assert {"test/imdb/f1", "test/yelp/f1", "test/amazon/f1"} <= set(run.data.metrics)


def test_a_folder_of_npy_arrays_trains_the_conv_trunk(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "digits"
    folder.mkdir()
    np.save(folder / "images.npy", digits.images[:600].astype(np.float32) / 16)
    np.save(folder / "digit.npy", digits.target[:600])
    np.save(folder / "odd.npy", digits.target[:600] % 2)
    common = {"path": "digits/", "inputs": "images"}
    study = {
        "name": "npy",
        "tasks": {
            "digit": {**common, "target": "digit", "type": "multiclass"},
            "odd": {**common, "target": "odd", "type": "binary"},
        },
        "model": {"hidden_size": 16, "trunk": "conv", "activation": "relu"},
        "training": {"epochs": 2, "schedule": "joint", "lr": 0.01},
        "search": {"n_trials": 1, "pruner": "none"},
    }
    spec = load_spec(write_study(tmp_path, study))
    data = load_study_data(spec)
    assert data.tasks["digit"].x["train"] is data.tasks["odd"].x["train"]
    assert data.tasks["digit"].input_shape == (8, 8)
    run_study(spec)
    _, _, (run,) = _trial_runs(spec, "npy")
    assert run.data.tags["mtl.state"] == "COMPLETE"
    assert run.data.metrics["test/odd/accuracy"] > 0.6


def test_searched_feature_settings_train_on_their_own_features(tmp_path):
    study = small_study(
        "features",
        search={
            "n_trials": 2,
            "sampler": "grid",
            "space": {"features.text.max_features": {"choices": [50, 800]}},
        },
    )
    del study["tasks"]["amazon"]
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    client, exp, trials = _trial_runs(spec, "features")
    assert sorted(r.data.params["features.text.max_features"] for r in trials) == ["50", "800"]
    baselines = client.search_runs([exp], "tags.`mtl.kind` = 'baseline'")
    keys = {(r.data.tags["mtl.task"], r.data.tags["mtl.baseline_key"]) for r in baselines}
    assert len(keys) == 4  # one baseline per task and feature setting
    from sweeps.space import fixed_config
    from sweeps.study_data import data_for

    config = fixed_config(spec, updates={"features.text": {"max_features": 50}})
    assert data_for(spec, config.features).space.width == 50
    assert load_study_data(spec).space.width == 2000
    for r in trials:  # a trial's metrics differ with its features (not the default data)
        assert r.data.tags["mtl.state"] == "COMPLETE"
    f1 = {
        r.data.params["features.text.max_features"]: r.data.metrics["test/imdb/f1"] for r in trials
    }
    assert f1["50"] != f1["800"]


def test_data_is_kept_by_content_and_read_again_when_edited(tmp_path):
    path = tmp_path / "table.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60).round(3), "y": [0, 1] * 30})
    frame.to_csv(path, index=False)
    task = {"path": "table.csv", "inputs": "x", "target": "y", "type": "binary"}
    spec = load_spec(write_study(tmp_path, {"name": "cache", "tasks": {"t": task}}))
    first = load_study_data(spec)
    assert load_study_data(spec) is first  # read and featurized once per process
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace(",0\n", ",1\n", 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time, same size
    assert path.stat().st_size == stat.st_size
    again = load_study_data(spec)
    assert again is not first
    assert again.fingerprints["t"] != first.fingerprints["t"]


def test_census_with_partial_labels_records_coverage_per_task(tmp_path):
    spec = _census(tmp_path, "partial.yaml")
    data = load_study_data(spec)
    marital = data.tasks["marital"]
    covered = {s: marital.labelled_rows(s) / marital.rows(s) for s in ("train", "valid", "test")}
    assert all(0.2 < c < 0.3 for c in covered.values()), covered  # 25% labelled, every split
    assert data.tasks["income"].labelled is None
    run_study(spec)
    client, exp, (run,) = _trial_runs(spec, "census_partial")
    m = run.data.metrics
    assert run.data.tags["mtl.state"] == "COMPLETE"
    for split in ("train", "valid", "test"):
        assert m[f"data/marital/labelled_rows/{split}"] == marital.labelled_rows(split)
        assert m[f"data/marital/rows/{split}"] == marital.rows(split)
        assert m[f"data/income/labelled_rows/{split}"] == m[f"data/income/rows/{split}"]
    assert {"test/marital/f1_macro", "delta/marital", "delta/income"} <= set(m)
    (baseline,) = client.search_runs(
        [exp], "tags.`mtl.kind` = 'baseline' and tags.`mtl.task` = 'marital'"
    )
    assert baseline.data.metrics["data/marital/labelled_rows/train"] == marital.labelled_rows(
        "train"
    )
