"""Methods reached from study.yaml and the command line: `sweeps methods`, distillation from
the baselines (in memory and from MLflow artifacts), and method settings in the search space."""

from __future__ import annotations

import numpy as np
import optuna
from mlflow.tracking import MlflowClient

from mtl_core.methods import CATALOGUE
from sweeps.runner import run_study
from sweeps.spec import load_spec
from tests.helpers import cli, small_study, write_study


def test_methods_lists_every_registered_name_with_its_setting():
    result = cli("methods")
    assert result.returncode == 0, result.stderr
    for entries in CATALOGUE.values():
        for name in entries:
            assert name in result.stdout, name
    for setting in ("model.architecture", "training.schedule", "training.weighting"):
        assert setting in result.stdout


def _two(study: dict) -> dict:
    study["tasks"] = {k: v for k, v in study["tasks"].items() if k in ("imdb", "yelp")}
    return study


def test_distillation_uses_the_baselines_as_teachers_across_runs(tmp_path):
    study = _two(
        small_study(
            "distil",
            training={"epochs": 2, "schedule": "joint", "distill": 0.5},
            search={"n_trials": 1, "sampler": "random", "pruner": "none", "space": {}},
        )
    )
    path = write_study(tmp_path, study)
    spec = load_spec(path)
    run_study(spec)
    client = MlflowClient(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name).experiment_id
    baselines = client.search_runs([experiment], "tags.`mtl.kind` = 'baseline'")
    assert len(baselines) == 2
    for run in baselines:
        task = run.data.tags["mtl.task"]
        folder = client.download_artifacts(run.info.run_id, f"teacher/{task}.npy", str(tmp_path))
        logits = np.load(folder, allow_pickle=False)
        assert logits.shape[0] > 500 and np.isfinite(logits).all()  # one per training row
        assert run.data.params["training.distill"] == "0.0"  # the teacher itself is not distilled
    # a second process: baselines come from MLflow, their logits from the artifacts
    more = study | {"search": study["search"] | {"n_trials": 2}}
    result = cli("run", str(write_study(tmp_path, more)))
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert len(client.search_runs([experiment], "tags.`mtl.kind` = 'baseline'")) == 2
    runs = client.search_runs([experiment], "tags.`mtl.kind` = 'trial'")
    assert {r.data.params["training.distill"] for r in runs} == {"0.5"}


def test_method_settings_are_searchable_and_validated(tmp_path):
    study = _two(
        small_study(
            "method_space",
            model={"hidden_size": 8},
            training={"epochs": 1, "schedule": "joint"},
            search={
                "n_trials": 3,
                "sampler": "random",
                "pruner": "none",
                "space": {
                    "model.architecture": {"choices": ["mmoe"]},
                    "model.experts": {"low": 2, "high": 3},
                    "training.weighting": {"choices": ["gradnorm", "cagrad"]},
                    "training.gradnorm_alpha": {"low": 0.5, "high": 2.0},
                    "training.gradients": {"choices": ["parameters", "features"]},
                    "training.distill": {"low": 0.0, "high": 0.5},
                },
            },
        )
    )
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    trials = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage).trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in trials if t.state != optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3, [t.user_attrs.get("reason") for t in pruned]
    for t in done:
        assert t.params["model.experts"] in (2, 3)

    bad = dict(study)
    bad["training"] = {**study["training"], "optimizer_per_task": True}
    result = cli("validate", str(write_study(tmp_path / "bad", bad)))
    assert result.returncode == 2
    assert "training.optimizer_per_task" in result.stderr and "not `joint`" in result.stderr
    bad["training"] = {**study["training"], "temperature": 0}
    result = cli("validate", str(write_study(tmp_path / "bad2", bad)))
    assert result.returncode == 2 and "training.temperature" in result.stderr
