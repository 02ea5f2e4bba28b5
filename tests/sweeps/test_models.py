"""The study's models on the record (sweeps.models, sweeps.predict): the best trial by
validation and every baseline hold an MLflow Model that a fresh process loads with
``mlflow.pyfunc`` and that reproduces the run's logged test metrics from raw test rows;
``sweeps predict`` and ``sweeps register`` on the real stores."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sweeps.models import MODEL_PATH, has_model
from sweeps.runner import run_study
from sweeps.spec import load_spec
from tests.helpers import SENTIMENT, cli, small_study, write_study


def _write_splits(folder: Path) -> dict:
    """Two tables with their own split files: review sentences (text) and a small
    numeric + categorical table, so one model reads both kinds of column."""
    reviews = pd.read_csv(
        SENTIMENT / "imdb_labelled.txt", sep="\t", header=None, names=["text", "label"]
    )
    rng = np.random.default_rng(0)
    rows = 400
    table = pd.DataFrame(
        {
            "size": rng.normal(0, 1, rows).round(3),
            "colour": rng.choice(["red", "green", "blue"], rows),
        }
    )
    table["price"] = (2 * table["size"] + (table.colour == "red") + rng.normal(0, 0.3, rows)).round(
        3
    )
    tasks = {}
    for name, frame, spec in [
        ("imdb", reviews, {"inputs": "text", "target": "label", "type": "binary", "metric": "f1"}),
        (
            "price",
            table,
            {
                "inputs": ["size", "colour"],
                "target": "price",
                "type": "regression",
                "metric": "mse",
            },
        ),
    ]:
        cut = {
            "train": frame.iloc[: len(frame) * 6 // 10],
            "valid": frame.iloc[len(frame) * 6 // 10 : len(frame) * 8 // 10],
            "test": frame.iloc[len(frame) * 8 // 10 :],
        }
        for split, part in cut.items():
            part.to_csv(folder / f"{name}_{split}.csv", index=False)
        tasks[name] = {**spec, "split": {s: str(folder / f"{name}_{s}.csv") for s in cut}}
    return tasks


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    spec_dict = small_study(
        "models",
        model={"hidden_size": 16},
        training={"epochs": 3, "lr": 0.01},
        search={
            "n_trials": 3,
            "log_models": 1,
            "space": {"model.hidden_size": {"choices": [8, 16, 32]}},
        },
    )
    spec_dict["tasks"] = _write_splits(folder)  # replaces the review tasks
    path = write_study(folder, spec_dict)
    spec = load_spec(path)
    run_study(spec)
    client = MlflowClient(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name)
    runs = client.search_runs([experiment.experiment_id], "", max_results=1000)
    return spec, path, folder, runs


def _kind(runs, kind):
    return [r for r in runs if r.data.tags.get("mtl.kind") == kind]


def _best(trials):
    done = [r for r in trials if r.data.tags.get("mtl.state") == "COMPLETE"]
    return max(
        done, key=lambda r: (r.data.metrics["valid/delta_m"], -int(r.data.tags["mtl.trial_number"]))
    )


def test_the_best_trial_and_every_baseline_hold_a_model(study):
    _, _, _, runs = study
    trials = sorted(_kind(runs, "trial"), key=lambda r: int(r.data.tags["mtl.trial_number"]))
    assert has_model(_best(trials))
    best_so_far = -math.inf
    for run in trials:  # log_models: 1: a model only where the trial led when it ended
        value = run.data.metrics["valid/delta_m"]
        assert has_model(run) == (value >= best_so_far), run.data.tags["mtl.trial_number"]
        best_so_far = max(best_so_far, value)
    baselines = _kind(runs, "baseline")
    assert baselines and all(has_model(r) for r in baselines)
    history = json.loads(_best(trials).data.tags["mlflow.log-model.history"])
    assert history[0]["artifact_path"] == MODEL_PATH and "python_function" in history[0]["flavors"]


LOAD_AND_SCORE = """
import json, sys
import mlflow.pyfunc, pandas as pd
from sklearn.metrics import f1_score, mean_squared_error
uri, imdb, price = sys.argv[1:]
model = mlflow.pyfunc.load_model(uri)
reviews, table = pd.read_csv(imdb), pd.read_csv(price)
said = model.predict(reviews[["text"]])
valued = model.predict(table[["size", "colour"]])
print(json.dumps({
    "imdb_f1": f1_score(reviews["label"].astype(str), said["imdb"], pos_label="1"),
    "price_mse": mean_squared_error(table["price"], valued["price"]),
    "columns": [list(said.columns), list(valued.columns)],
    "torch_loaded_in_parent": "sweeps.trial" in sys.modules,
}))
"""


def test_a_fresh_process_loads_the_model_and_reproduces_the_logged_test_metrics(study):
    spec, _, folder, runs = study
    best = _best(_kind(runs, "trial"))
    uri = f"runs:/{best.info.run_id}/{MODEL_PATH}"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_SCORE,
            uri,
            folder / "imdb_test.csv",
            folder / "price_test.csv",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"MLFLOW_TRACKING_URI": spec.tracking, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = best.data.metrics
    assert got["imdb_f1"] == pytest.approx(metrics["test/imdb/f1"], abs=1e-6)
    assert got["price_mse"] == pytest.approx(metrics["test/price/mse"], abs=1e-6)
    # a frame with one table's columns feeds that table's task only
    assert got["columns"] == [["imdb", "imdb/p/0", "imdb/p/1"], ["price"]]


def test_predict_writes_each_task_the_file_feeds(study, tmp_path):
    _, path, folder, runs = study
    out = tmp_path / "predictions.parquet"
    done = cli("predict", str(path), "--input", str(folder / "imdb_test.csv"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    best = _best(_kind(runs, "trial"))
    assert best.info.run_id in done.stdout and "(best by validation)" in done.stdout
    assert "price: not predicted, the input lacks 'size', 'colour'" in done.stdout
    written = pd.read_parquet(out)
    assert list(written.columns) == ["imdb", "imdb/p/0", "imdb/p/1"]
    assert len(written) == len(pd.read_csv(folder / "imdb_test.csv"))

    baseline = cli(
        "predict",
        str(path),
        "--input",
        str(folder / "price_test.csv"),
        "--out",
        str(tmp_path / "b.csv"),
        "--baseline",
        "price",
    )
    assert baseline.returncode == 0, baseline.stderr
    compared = best.data.tags["mtl.baseline_run.price"]
    assert "the 'price' baseline of trial" in baseline.stdout and compared in baseline.stdout
    assert list(pd.read_csv(tmp_path / "b.csv").columns) == ["price"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--input", "{folder}/none.csv"], "--input: "),
        (["--out", "{tmp}/p.txt"], "--out: 'p.txt'; predictions are written as .csv or .parquet"),
        (["--trial", "seven"], "--trial: 'seven' is neither 'best' nor a trial number"),
        (["--trial", "99"], "the study has no trial 99"),
        (["--baseline", "nope"], "--baseline: no task 'nope'"),
        (["--input", "{tmp}/wrong.csv"], "no column 'text'"),
        (["--input", "{tmp}/words.csv"], "column 'size', row 2: 'big' is not a number"),
    ],
)
def test_predict_refuses_bad_input_by_name_and_writes_nothing(study, tmp_path, args, needle):
    _, path, folder, _ = study
    pd.DataFrame({"txt": ["a film"]}).to_csv(tmp_path / "wrong.csv", index=False)
    pd.DataFrame({"size": ["1.0", "big"], "colour": ["red", "red"]}).to_csv(
        tmp_path / "words.csv", index=False
    )
    given = {"--input": str(folder / "imdb_test.csv"), "--out": str(tmp_path / "p.csv")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        given[flag] = value.format(folder=folder, tmp=tmp_path)
    done = cli("predict", str(path), *[x for pair in given.items() for x in pair])
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("p.", ".p."))]


def test_register_puts_the_best_model_in_the_registry(study):
    spec, path, folder, runs = study
    done = cli("register", str(path), "--name", "models-best")
    assert done.returncode == 0, done.stderr
    client = MlflowClient(spec.tracking, registry_uri=spec.tracking)
    (version,) = client.search_model_versions("name = 'models-best'")
    assert version.run_id == _best(_kind(runs, "trial")).info.run_id
    import mlflow.pyfunc

    assert f"MLFLOW_TRACKING_URI={spec.tracking}" in done.stdout
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(spec.tracking)  # as the command says to
    try:
        model = mlflow.pyfunc.load_model(f"models:/models-best/{version.version}")
    finally:
        mlflow.set_tracking_uri(before)
    assert "price" in model.predict(pd.read_csv(folder / "price_test.csv")[["size", "colour"]])
    again = cli("register", str(path), "--name", "models-best")
    assert again.returncode == 0 and "version 2" in again.stdout
    refused = cli("register", str(path), "--name", "a/b")
    assert refused.returncode == 2 and "--name: 'a/b'" in refused.stderr
