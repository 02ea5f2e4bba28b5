"""Issue 8's acceptance study: the grid over every architecture, schedule and weighting method
finishes every combination that can train and records each one that cannot, with its reason."""

from __future__ import annotations

import optuna
from mlflow.tracking import MlflowClient

from mtl_core.data.synthetic import related_tasks
from mtl_core.methods import ARCHITECTURES, SCHEDULES, WEIGHTINGS
from sweeps.runner import run_study
from sweeps.space import combinations
from sweeps.spec import load_spec
from tests.helpers import sweeps, write_study


def _csv_tasks(folder, rows: int = 60) -> dict:
    data = related_tasks(train_rows=rows, eval_rows=rows // 2, features=8, seed=0)
    tasks = {}
    for name in ("a", "b"):
        paths = {}
        for split, frame in data[name].items():
            path = folder / f"{name}_{split}.csv"
            frame.to_csv(path, index=False)
            paths[split] = str(path)
        tasks[name] = {
            "path": paths["train"],
            "inputs": [f"x{k}" for k in range(8)],
            "target": "label",
            "type": "binary",
            "metric": "accuracy",
            "split": paths,
        }
    return tasks


def test_grid_over_every_method_trains_every_valid_combination(tmp_path):
    grid = {
        "model.architecture": {"choices": list(ARCHITECTURES)},
        "training.schedule": {"choices": list(SCHEDULES)},
        "training.weighting": {"choices": list(WEIGHTINGS)},
    }
    study = {
        "name": "every_method",
        "tasks": _csv_tasks(tmp_path),
        "model": {"hidden_size": 4, "experts": 2},
        "training": {"epochs": 1, "batch_size": 32, "weights": {"a": 1.0, "b": 2.0}},
        "search": {"sampler": "grid", "pruner": "none", "n_trials": 1000, "space": grid},
    }
    path = write_study(tmp_path, study)
    spec = load_spec(path)
    found = combinations(spec)
    valid = [settings for settings, reasons in found if not reasons]
    assert len(found) == len(ARCHITECTURES) * len(SCHEDULES) * len(WEIGHTINGS)
    assert 0 < len(valid) < len(found)

    checked = sweeps("validate", str(path))
    assert checked.returncode == 0, checked.stderr
    assert f"{len(valid)} of {len(found)} combinations" in checked.stdout

    run_study(spec)
    trials = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage).trials
    assert len(trials) == len(found)  # the grid is exhausted
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(complete) == len(valid) and len(pruned) == len(found) - len(valid)
    assert all("combination cannot train" in t.user_attrs["reason"] for t in pruned)
    trained = {
        (
            t.params["model.architecture"],
            t.params["training.schedule"],
            t.params["training.weighting"],
        )
        for t in complete
    }
    assert trained == {(s["architecture"], s["schedule"], s["weighting"]) for s in valid}

    client = MlflowClient(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name).experiment_id
    runs = client.search_runs([experiment], "tags.`mtl.kind` = 'trial'", max_results=5000)
    assert len(runs) == len(found)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    by_state: dict[str, list] = {}
    for run in runs:
        by_state.setdefault(run.data.tags["mtl.state"], []).append(run)
    assert len(by_state["COMPLETE"]) == len(valid)
    assert all("combination cannot train" in r.data.tags["mtl.error"] for r in by_state["PRUNED"])
    for run in by_state["COMPLETE"]:
        method = run.data.params["training.weighting"]
        assert "delta_m" in run.data.metrics
        if method != "graddrop":  # every other method has weights, logged per task
            assert {"weight/a", "weight/b"} <= set(run.data.metrics), method
