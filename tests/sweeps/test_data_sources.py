"""Built-in sources, .npz arrays and several targets of one table (issue 6, first part)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mtl_core.data.builtin import load_builtin, realised_correlation
from sweeps.runner import run_study
from sweeps.spec import load_spec
from sweeps.study_data import load_study_data
from tests.helpers import cli, write_study


def _study(name: str, tasks: dict, **sections) -> dict:
    return {
        "name": name,
        "tasks": tasks,
        "model": {"hidden_size": 16},
        "training": {"epochs": 2, "schedule": "joint"},
        "search": {"n_trials": 1, "pruner": "none"},
        **sections,
    }


def test_targets_of_one_builtin_table_share_rows_and_inputs(tmp_path):
    tasks = {
        "sin": {"path": "builtin:sincos", "inputs": "x", "target": "sin", "type": "regression"},
        "cos": {"path": "builtin:sincos", "inputs": "x", "target": "cos", "type": "regression"},
    }
    spec = load_spec(write_study(tmp_path, _study("sincos", tasks)))
    data = load_study_data(spec)
    sin, cos = data.tasks["sin"], data.tasks["cos"]
    assert sin.x is cos.x  # one input matrix per split: the joint schedule runs one forward
    assert sin.rows("train") == 1400 and cos.rows("valid") == 300
    mean, std = data.space.scaling("x")
    x = sin.x["train"].toarray().ravel() * std + mean
    assert np.allclose(np.sin(x), sin.y["train"], atol=1e-5)
    assert np.allclose(np.cos(x), cos.y["train"], atol=1e-5)
    run_study(spec)
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name("sincos").experiment_id
    (run,) = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
    assert run.data.tags["mtl.state"] == "COMPLETE" and "test/sin/mse" in run.data.metrics


def test_a_csv_read_by_two_tasks_is_split_once(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    frame["big"] = (frame["a"] > 0).astype(int)
    frame["size"] = frame["b"] * 2
    frame.to_csv(tmp_path / "table.csv", index=False)
    common = {"path": "table.csv", "inputs": ["a", "b", "c"]}
    tasks = {
        "big": {**common, "target": "big", "type": "binary"},
        "size": {**common, "target": "size", "type": "regression"},
    }
    data = load_study_data(load_spec(write_study(tmp_path, _study("table", tasks))))
    assert data.tasks["big"].x is data.tasks["size"].x
    for split in ("train", "valid", "test"):  # the same rows, in the same order
        x = data.tasks["big"].x[split].toarray()
        a_mean, a_std = data.space.scaling("a")
        a = x[:, 0] * a_std + a_mean
        assert np.array_equal(data.tasks["big"].y[split], (a > 0).astype(np.float32))
    b_mean, b_std = data.space.scaling("b")
    b = data.tasks["size"].x["test"].toarray()[:, 1] * b_std + b_mean
    assert np.allclose(data.tasks["size"].y["test"], 2 * b, atol=1e-4)


def test_digits_run_with_the_conv_trunk_from_a_study(tmp_path):
    tasks = {
        "digit": {"path": "builtin:digits", "inputs": "images", "target": "digit",
                  "type": "multiclass"},
        "odd": {"path": "builtin:digits", "inputs": "images", "target": "odd", "type": "binary"},
    }  # fmt: skip
    study = _study(
        "digits",
        tasks,
        model={"hidden_size": 64, "activation": "relu"},
        training={"epochs": 4, "schedule": "joint", "lr": 0.003},
    )
    spec = load_spec(write_study(tmp_path, study))
    data = load_study_data(spec)
    assert data.tasks["digit"].input_shape == (8, 8)
    assert data.tasks["digit"].x["train"] is data.tasks["odd"].x["train"]
    validated = cli("validate", str(tmp_path / "study.yaml"))
    assert validated.returncode == 0 and "images [array] 8×8 for digit,odd" in validated.stdout
    run_study(spec)
    client = MlflowClient(spec.tracking)
    exp = client.get_experiment_by_name("digits").experiment_id
    (run,) = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
    assert run.data.metrics["test/digit/accuracy"] > 0.85
    assert run.data.metrics["test/odd/f1"] > 0.85


def test_npz_arrays_and_their_bad_cases(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((300, 6, 6, 2)).astype(np.float32)
    label = (images[:, :3].mean(axis=(1, 2, 3)) > images[:, 3:].mean(axis=(1, 2, 3))).astype(int)
    np.savez(tmp_path / "images.npz", pixels=images, top=label, bright=images.mean(axis=(1, 2, 3)))
    tasks = {
        "top": {"path": "images.npz", "inputs": "pixels", "target": "top", "type": "binary"},
        "bright": {"path": "images.npz", "inputs": "pixels", "target": "bright",
                   "type": "regression"},
    }  # fmt: skip
    path = write_study(tmp_path, _study("npz", tasks))
    data = load_study_data(load_spec(path))
    assert (
        data.tasks["top"].input_shape == (6, 6, 2)
        and data.tasks["top"].x["train"] is data.tasks["bright"].x["train"]
    )
    result = cli("run", str(path), "--quiet")
    assert result.returncode == 0, result.stderr

    for task in tasks.values():  # the bad studies live in other folders
        task["path"] = str(tmp_path / "images.npz")
    tasks["top"]["target"] = "nope"
    bad = cli("validate", str(write_study(tmp_path / "bad", _study("npz", tasks))))
    assert bad.returncode == 2
    assert "tasks.top.target" in bad.stderr and "has no array 'nope'" in bad.stderr
    assert "pixels" in bad.stderr  # and says what it holds
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    tasks["top"] = {**tasks["top"], "path": str(tmp_path / "broken.npz"), "target": "top"}
    broken = cli("validate", str(write_study(tmp_path / "bad2", _study("npz", tasks))))
    assert (
        broken.returncode == 2
        and "tasks.top.path" in broken.stderr
        and "broken.npz" in broken.stderr
    )


@pytest.mark.parametrize(
    ("path", "options", "expected"),
    [
        ("builtin:weather", None, "no such source"),
        ("builtin:sincos", {"wobble": 1}, "unknown option(s) ['wobble']"),
        ("data.csv", {"rows": 5}, "`options` apply to built-in sources"),
        # issue 19: out of range, each reached numpy (a traceback, exit 1) or memory
        ("builtin:sincos", {"rows": -5}, "option rows must lie in [10, 1,000,000], got -5"),
        ("builtin:sincos", {"rows": 1e12}, "option rows must lie in"),
        ("builtin:sincos", {"rows": 2.5}, "option rows must be a whole number"),
        ("builtin:sincos", {"seed": -1}, "option seed must lie in [0, 4,294,967,295]"),
        ("builtin:sincos", {"noise": -0.1}, "option noise must lie in [0, 100]"),
        ("builtin:mmoe", {"dim": 1}, "option dim must lie in [2, 10,000]"),
        ("builtin:mmoe", {"rows": 1_000_000, "dim": 1000}, "rows x columns is 1,000,000,000"),
        ("builtin:related", {"noise": 0.9}, "option noise must lie in [0, 0.5]"),
    ],
)
def test_bad_builtin_sources_name_the_field(tmp_path, path, options, expected):
    task = {"path": path, "inputs": "x", "target": "sin", "type": "regression"}
    if options:
        task["options"] = options
    result = cli("validate", str(write_study(tmp_path, _study("bad", {"sin": task}))))
    assert result.returncode == 2, result.stdout
    assert "tasks.sin" in result.stderr and expected in result.stderr


def test_mmoe_source_realised_correlation_falls_with_p():
    found = [
        realised_correlation(load_builtin("mmoe", {"correlation": p, "rows": 4000}))
        for p in (1.0, 0.8, 0.5, 0.0)
    ]
    assert found == sorted(found, reverse=True)
    assert found[0] > 0.95 and abs(found[-1]) < 0.1
    assert found[1] < 0.8  # lower than p: the sines decorrelate the labels
