"""The search on the embedded stores: every sampler and pruner, the multi-objective Pareto
search, and repeated seeds with significance."""

from __future__ import annotations

import math

import optuna
import pytest
from mlflow.tracking import MlflowClient

from sweeps.runner import run_study
from sweeps.spec import load_spec
from tests.helpers import cli, runs_of, small_study, two_tasks, write_study

TWO_TASKS = ["imdb", "yelp"]


def _trials(spec):
    return optuna.load_study(study_name=spec.name, storage=spec.optuna_storage).trials


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "cmaes", "nsga2", "gp"])
def test_every_sampler_runs_a_study(tmp_path, sampler):
    study = two_tasks(
        small_study(
            f"s_{sampler}",
            training={"epochs": 1},
            search={
                "n_trials": 3,
                "sampler": sampler,
                "pruner": "none",
                "space": {
                    "model.hidden_size": {"low": 8, "high": 24, "step": 8},
                    "training.lr": {"low": 0.002, "high": 0.01, "step": 0.004},
                    "training.schedule": {"choices": ["joint", "round_robin"]},
                },
            },
        )
    )
    spec = load_spec(write_study(tmp_path, study))
    summary = run_study(spec)
    trials = _trials(spec)
    assert summary.finished == 3 and len(trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        assert t.params["model.hidden_size"] in (8, 16, 24)
        assert t.params["training.lr"] == pytest.approx(
            min((0.002, 0.006, 0.01), key=lambda v: abs(v - t.params["training.lr"]))
        )
    if sampler == "grid":  # a grid never repeats a point
        points = {tuple(sorted(t.params.items())) for t in trials}
        assert len(points) == 3
    assert len(runs_of(spec, "trial")) == 3


def test_grid_stops_when_the_grid_is_exhausted(tmp_path):
    study = two_tasks(
        small_study(
            "g",
            training={"epochs": 1},
            search={
                "n_trials": 10,
                "sampler": "grid",
                "pruner": "none",
                "space": {"training.schedule": {"choices": ["joint", "round_robin"]}},
            },
        )
    )
    spec = load_spec(write_study(tmp_path, study))
    assert run_study(spec).finished == 2
    assert sorted(t.params["training.schedule"] for t in _trials(spec)) == ["joint", "round_robin"]


def test_hyperband_prunes_by_epoch(tmp_path):
    study = two_tasks(
        small_study(
            "hb",
            training={"epochs": 4},
            search={
                "n_trials": 8,
                "sampler": "random",
                "pruner": "hyperband",
                "space": {"training.lr": {"low": 0.00001, "high": 0.05, "log": True}},
            },
        )
    )
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    trials = _trials(spec)
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "hyperband pruned nothing in 8 trials with lr over 3.7 decades"
    for t in pruned:
        assert max(t.intermediate_values) < 4  # stopped before the last epoch
    for run in runs_of(spec, "trial"):
        if run.data.tags["mtl.state"] == "PRUNED":
            assert "pruned at epoch" in run.data.tags["mtl.error"]


def test_per_task_objective_tags_the_pareto_front(tmp_path):
    study = two_tasks(
        small_study(
            "pareto",
            training={"epochs": 2},
            search={
                "n_trials": 6,
                "sampler": "nsga2",
                "objective": "per_task",
                "space": {
                    "model.hidden_size": {"low": 4, "high": 64, "log": True},
                    "training.lr": {"low": 0.0005, "high": 0.02, "log": True},
                },
            },
        )
    )
    study["search"].pop("pruner")  # left out: a multi-objective study runs unpruned
    path = write_study(tmp_path, study)
    spec = load_spec(path)
    result = cli("run", str(path), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ostudy = optuna.load_study(study_name="pareto", storage=spec.optuna_storage)
    assert len(ostudy.directions) == 2
    front = {t.number for t in ostudy.best_trials}
    assert front and len(ostudy.trials) == 6
    for t in ostudy.trials:  # the objectives are each task's validation Δ
        assert len(t.values) == 2
    runs = runs_of(spec, "trial")
    tagged = {int(r.data.tags["mtl.trial_number"]): r.data.tags["mtl.pareto"] for r in runs}
    assert tagged == {n: ("true" if n in front else "false") for n in range(6)}
    # no trial on the front is dominated by another trial
    values = {t.number: t.values for t in ostudy.trials}
    for n in front:
        assert not any(
            all(o[i] >= values[n][i] for i in range(2)) and o != values[n] for o in values.values()
        )
    listed = ", ".join(f"trial {n}" for n in sorted(front))  # "trials: 0" read as "none"
    assert "Pareto-optimal (by each task's validation Δ): " + listed in result.stdout
    # Optuna (and optuna-dashboard) name each objective, in the order trials return them
    assert ostudy.metric_names == [f"valid Δ {t} (%)" for t in spec.task_names]
    status = cli("status", str(path), cwd=tmp_path)
    assert (
        "Pareto-optimal trials" in status.stdout
        and ", ".join(map(str, sorted(front))) in status.stdout
    )


def test_pruner_with_per_task_is_refused_before_anything_runs(tmp_path):
    study = two_tasks(small_study("mo", search={"objective": "per_task", "pruner": "median"}))
    path = write_study(tmp_path, study)
    result = cli("run", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "search.pruner" in result.stderr and "cannot prune multi-objective" in result.stderr
    assert not (tmp_path / ".sweeps").exists()


def test_seeds_report_means_std_and_significance(tmp_path):
    study = two_tasks(
        small_study("seeds", training={"epochs": 2, "seeds": 3}, search={"n_trials": 1})
    )
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    (trial,) = runs_of(spec, "trial")
    m = trial.data.metrics
    baselines = runs_of(spec, "baseline")
    assert sorted((r.data.tags["mtl.task"], r.data.params["seed"]) for r in baselines) == [
        (t, str(s)) for t in TWO_TASKS for s in (0, 1, 2)
    ]
    for task in TWO_TASKS:
        for suffix in ("", "_std", "_ci95", "_significant"):
            assert f"delta/{task}{suffix}" in m
        assert m[f"delta/{task}_std"] > 0  # three seeds do not agree to the last digit
        assert m[f"delta/{task}_ci95"] == pytest.approx(
            4.302653 * m[f"delta/{task}_std"] / math.sqrt(3), rel=1e-5
        )
        significant = abs(m[f"delta/{task}"]) > m[f"delta/{task}_ci95"]
        assert m[f"delta/{task}_significant"] == (
            math.copysign(1, m[f"delta/{task}"]) if significant else 0
        )
        # the mean over seeds of the per-seed test metric, against the per-seed baselines
        base = [r for r in baselines if r.data.tags["mtl.task"] == task]
        mean_base = sum(r.data.metrics[f"test/{task}/f1"] for r in base) / 3
        assert m[f"baseline/{task}/f1"] == pytest.approx(mean_base)
        assert f"test/{task}/f1_std" in m
    assert "delta_m_std" in m
    # `sweeps status` says which negative Δ are real and which are noise
    (ot,) = _trials(spec)
    assert set(ot.user_attrs["significant"]) == set(TWO_TASKS)
    status = cli("status", str(tmp_path / "study.yaml"), cwd=tmp_path)
    for task in TWO_TASKS:
        value, flag = m[f"delta/{task}"], m[f"delta/{task}_significant"]
        shown = f"{task} {value:+.1f}" + ((" real" if flag else " noise") if value < 0 else "")
        assert shown in status.stdout
    assert "95% interval over the seeds" in status.stdout
    client = MlflowClient(spec.tracking)
    curve = client.get_metric_history(trial.info.run_id, "valid/delta_m_by_epoch")
    assert [p.step for p in curve] == [1, 2]  # one mean curve, not one per seed
    for task in TWO_TASKS:
        assert [
            p.step for p in client.get_metric_history(trial.info.run_id, f"valid/delta/{task}")
        ] == [1, 2]
    # the pruner heard the first seed's epochs, logged as Optuna has them
    told = client.get_metric_history(trial.info.run_id, "pruner/valid_delta_m")
    assert {p.step: p.value for p in told} == pytest.approx(ot.intermediate_values)
    objective = client.get_metric_history(trial.info.run_id, "valid/delta_m")
    assert [p.value for p in objective] == pytest.approx([ot.value])  # one value: the objective
