"""Issue 8's acceptance grid over every architecture, schedule and weighting method, proved
where each part is proved fastest: the combination rule as a function over the whole grid,
every combination it lets through trained by ``mtl_core.fit`` in this process, and a study on
real stores that trains what can train and records what cannot, with its reason."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mtl_core.data.prepare import TaskFrame, prepare_tasks
from mtl_core.data.synthetic import related_tasks
from mtl_core.methods import (
    ARCHITECTURES,
    GRADIENT_METHODS,
    SCHEDULES,
    WEIGHTINGS,
    combination_problems,
)
from mtl_core.train import TrainConfig, fit
from sweeps.runner import run_study
from sweeps.space import combinations
from sweeps.spec import load_spec
from tests.helpers import cli, write_study

WEIGHTS = {"a": 1.0, "b": 2.0}
COLUMNS = [f"x{k}" for k in range(8)]


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
            "inputs": COLUMNS,
            "target": "label",
            "type": "binary",
            "metric": "accuracy",
            "split": paths,
        }
    return tasks


def _study(folder, space: dict, name: str = "every_method") -> dict:
    return {
        "name": name,
        "tasks": _csv_tasks(folder),
        "model": {"hidden_size": 4, "experts": 2},
        "training": {"epochs": 1, "batch_size": 32, "weights": WEIGHTS},
        "search": {
            "sampler": "grid",
            "pruner": "none",
            "n_trials": 1000,
            "space": space,
            "confirm": None,
        },
    }


FULL_GRID = {
    "model.architecture": {"choices": list(ARCHITECTURES)},
    "training.schedule": {"choices": list(SCHEDULES)},
    "training.weighting": {"choices": list(WEIGHTINGS)},
}


def _grid():
    return itertools.product(ARCHITECTURES, SCHEDULES, WEIGHTINGS)


def _cannot_train(architecture: str, schedule: str, weighting: str) -> bool:
    """The rule in words, for two tasks that each have a weight: methods that combine every
    task's gradients (or losses: stch, gls, famo) need every task in every step; those that act on
    gradients need shared parameters."""
    needs_joint = weighting in GRADIENT_METHODS or weighting in ("gradnorm", "stch", "gls", "famo")
    needs_shared = weighting in GRADIENT_METHODS or weighting == "gradnorm"
    return (needs_joint and schedule != "joint") or (
        needs_shared and architecture == "soft_sharing"
    )


def test_the_combination_rule_over_the_whole_grid(tmp_path):
    path = write_study(tmp_path, _study(tmp_path, FULL_GRID))
    found = combinations(load_spec(path))
    assert len(found) == len(ARCHITECTURES) * len(SCHEDULES) * len(WEIGHTINGS)
    valid = [settings for settings, reasons in found if not reasons]
    assert 0 < len(valid) < len(found)
    for settings, reasons in found:  # the study's view is the rule's, point for point
        assert bool(reasons) == _cannot_train(
            settings["architecture"], settings["schedule"], settings["weighting"]
        ), (settings, reasons)
    assert combination_problems(["a"], weighting="pcgrad", schedule="joint") == [
        "`pcgrad` needs at least two tasks"
    ]
    assert combination_problems(["a", "c"], weighting="static", weights=WEIGHTS) == [
        "`static` weighting needs a weight for every task; none given for c"
    ]
    checked = cli("validate", str(path))
    assert checked.returncode == 0, checked.stderr
    assert f"{len(valid)} of {len(found)} combinations" in checked.stdout


@pytest.fixture(scope="module")
def tiny_tasks():
    data = related_tasks(train_rows=60, eval_rows=30, features=8, seed=0)
    frames = {
        n: TaskFrame(
            inputs=COLUMNS, target="label", type="binary", splits=data[n], metric="accuracy"
        )
        for n in ("a", "b")
    }
    return prepare_tasks(frames)[0]


def test_every_combination_the_rule_allows_trains(tiny_tasks):
    trained = 0
    for arch, schedule, weighting in _grid():
        if combination_problems(
            ["a", "b"], architecture=arch, schedule=schedule, weighting=weighting, weights=WEIGHTS
        ):
            continue
        config = TrainConfig(
            architecture=arch, schedule=schedule, weighting=weighting, weights=WEIGHTS,
            hidden_size=4, experts=2, epochs=1, batch_size=32, device="cpu",
        )  # fmt: skip
        result = fit(tiny_tasks, config)
        for task in ("a", "b"):
            assert math.isfinite(result.test[task]["accuracy"]), (arch, schedule, weighting)
        if weighting not in ("graddrop", "db_mtl"):  # the others weigh tasks: per task
            assert set(result.history[-1].weights) == {"a", "b"}, (arch, schedule, weighting)
        trained += 1
    assert trained == sum(1 for combo in _grid() if not _cannot_train(*combo))


def test_a_grid_study_trains_what_can_train_and_records_what_cannot(tmp_path):
    space = {
        "model.architecture": {"choices": ["hard_sharing", "soft_sharing", "mmoe"]},
        "training.schedule": {"choices": ["joint", "round_robin"]},
        "training.weighting": {"choices": ["equal", "static", "pcgrad", "gradnorm", "graddrop"]},
    }
    spec = load_spec(write_study(tmp_path, _study(tmp_path, space, "some_methods")))
    found = combinations(spec)
    valid = [settings for settings, reasons in found if not reasons]
    assert 0 < len(valid) < len(found) == 30
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
