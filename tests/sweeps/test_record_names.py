"""Issue 18: what MLflow and Optuna show reads right: the experiment opens as training runs,
runs are named for what they are, each says the device it trained on, and Optuna names its
objective. Checked on a real study's stores (SQLite, in process)."""

from __future__ import annotations

import optuna
import pytest
import torch

from sweeps.spec import load_spec
from sweeps.sqlite_stores import mlflow_client
from sweeps.tracking import open_tracker
from tests.helpers import cli, runs_of, small_study, two_tasks, write_study


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names")
    study = two_tasks(small_study("names", training={"epochs": 1}))
    study["search"]["n_trials"] = 1
    path = write_study(folder, study)
    result = cli("run", str(path), "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    return load_spec(path)


def test_the_experiment_opens_as_training_runs(finished):
    client = mlflow_client(finished.tracking)
    experiment = client.get_experiment_by_name("names")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # a study begun before the tag gets it when it is next opened
    client.delete_experiment_tag(experiment.experiment_id, "mlflow.experimentKind")
    open_tracker(finished)
    again = client.get_experiment(experiment.experiment_id)
    assert again.tags["mlflow.experimentKind"] == "custom_model_development"


def test_runs_are_named_for_what_they_are_and_say_their_device(finished):
    (trial,) = runs_of(finished, "trial")
    model, training = finished.model, finished.training
    assert trial.info.run_name == (
        f"trial 0 · imdb+yelp · {training.schedule} · {training.weighting} · h{model.hidden_size}"
    )
    baselines = runs_of(finished, "baseline")
    assert sorted(r.info.run_name for r in baselines) == [
        f"baseline · {task} · h{model.hidden_size} · seed 0" for task in ("imdb", "yelp")
    ]
    device = "cuda:0" if torch.cuda.is_available() else "cpu"  # `auto`, as it resolved
    for run in [trial, *baselines]:
        assert run.data.params["device"] == device
        assert run.data.tags["mtl.kind"] in ("trial", "baseline")  # queries read the tags


def test_optuna_names_the_objective(finished):
    study = optuna.load_study(study_name="names", storage=finished.optuna_storage)
    assert study.metric_names == ["valid Δm (%)"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused_by_validate_and_run(tmp_path):
    path = write_study(tmp_path, small_study("gpu", training={"device": "cuda"}))
    for command in ("validate", "run"):
        result = cli(command, str(path), cwd=tmp_path)
        assert result.returncode == 2, result.stdout
        assert "training.device: 'cuda' is asked for" in result.stderr
        assert "sees no CUDA GPU" in result.stderr and "`auto`" in result.stderr
    assert not (tmp_path / ".sweeps").exists()
    # status reads a study trained elsewhere on a GPU: it does not ask
    assert cli("status", str(path), cwd=tmp_path).returncode == 0
