"""sweeps.baselines and sweeps.tuning: tuned baselines are tuned once per task and reused,
`sweeps baselines` lists what a study compares with without training, and tuning needs
something to tune."""

from __future__ import annotations

import optuna

from sweeps.runner import run_study
from sweeps.spec import load_spec
from tests.helpers import cli, runs_of, small_study, two_tasks, write_study

TWO_TASKS = ["imdb", "yelp"]


def test_baselines_command_lists_matched_baselines_without_training(tmp_path):
    study = small_study("bl", training={"epochs": 1}, search={"n_trials": 1})
    write_study(tmp_path, study)
    empty = cli("baselines", "study.yaml", "--show", cwd=tmp_path)
    assert empty.returncode == 0 and "no baseline recorded yet" in empty.stdout
    assert not (tmp_path / ".sweeps" / "mlflow.db").exists()  # showing wrote nothing
    assert cli("run", "study.yaml", cwd=tmp_path).returncode == 0
    shown = cli("baselines", "study.yaml", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "`matched`" in shown.stdout
    for task in ("imdb", "yelp", "amazon"):
        assert task in shown.stdout


def test_tuned_baselines_are_tuned_once_and_reused(tmp_path):
    study = two_tasks(
        small_study(
            "tuned",
            training={"epochs": 1},
            baselines={"mode": "tuned", "trials": 3},
            search={
                "n_trials": 3,
                "space": {
                    "model.hidden_size": {"low": 4, "high": 32, "log": True},
                    "training.schedule": {"choices": ["joint", "round_robin"]},
                },
            },
        )
    )
    path = write_study(tmp_path, study)
    spec = load_spec(path)
    run_study(spec)
    baselines = runs_of(spec, "baseline")
    assert sorted(r.data.tags["mtl.task"] for r in baselines) == TWO_TASKS  # once per task
    for run in baselines:
        assert run.data.tags["mtl.baseline_mode"] == "tuned"
        task = run.data.tags["mtl.task"]
        tuning = optuna.load_study(
            study_name=run.data.params["tuning.study"], storage=spec.optuna_storage
        )
        assert len(tuning.trials) == 3
        assert run.data.params["model.hidden_size"] == str(
            tuning.best_trial.params["model.hidden_size"]
        )
        assert "training.schedule" not in tuning.best_trial.params
        for trial in runs_of(spec, "trial"):  # every trial compares with the same tuned model
            assert trial.data.metrics[f"baseline/{task}/f1"] == run.data.metrics[f"test/{task}/f1"]
    # a re-run with more trials, and `sweeps baselines`, train no baseline again
    run_study(spec, n_trials=4)
    assert len(runs_of(spec, "baseline")) == 2
    shown = cli("baselines", str(path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "reused" in shown.stdout and "tuned" in shown.stdout and "hidden_size=" in shown.stdout
    assert len(runs_of(spec, "baseline")) == 2


def test_tuned_mode_needs_something_to_tune(tmp_path):
    study = two_tasks(
        small_study(
            "nothing",
            baselines={"mode": "tuned"},
            search={"space": {"training.schedule": {"choices": ["joint", "round_robin"]}}},
        )
    )
    result = cli("validate", str(write_study(tmp_path, study)), cwd=tmp_path)
    assert result.returncode == 2 and "baselines.mode" in result.stderr


# what the keys hashed at 39488a2, before towers, CGC/PLE, lr schedules, clipping, class weights
# and the methods added with them existed (sweeps/stable_keys.py)
OLD_BASELINE_MODEL = ["activation", "architecture", "depth", "dropout", "hidden_size", "trunk"]
OLD_BASELINE_TRAINING = [
    "batch_size", "early_stopping", "epochs", "lr", "optimizer", "select", "weight_decay",
]  # fmt: skip
OLD_TRANSFER_MODEL = sorted(OLD_BASELINE_MODEL + ["experts", "sharing_penalty"])
OLD_TRANSFER_TRAINING = [
    "affinity_every", "batch_size", "cagrad_c", "diagnostics_every", "distill",
    "distill_temperature", "dwa_temperature", "early_stopping", "epochs", "gradients",
    "gradnorm_alpha", "lr", "optimizer", "optimizer_per_task", "schedule", "seeds", "select",
    "stch_mu", "stch_warmup", "temperature", "weight_decay", "weighting", "weights",
]  # fmt: skip


def test_settings_added_later_leave_the_record_keys_as_they_were(tmp_path):
    """A study begun before the new settings finds its baselines and pair runs again: at
    their neutral values they stay out of the keys, which hash exactly what they hashed at
    39488a2 (the field lists above, taken from that commit); set, they enter the key. Each is
    a searchable study setting."""
    from sweeps.baselines import _model_key, _training_key
    from sweeps.space import fixed_config
    from sweeps.stable_keys import model_key, training_key

    study = small_study("keys")
    study["search"]["space"] = {
        "training.lr_schedule": {"choices": ["constant", "cosine"]},
        "training.grad_clip": {"choices": [0.0, 1.0]},
        "training.class_weights": {"choices": ["none", "balanced"]},
        "model.head_layers": {"choices": [0, 1]},
    }
    spec = load_spec(write_study(tmp_path, study))
    config = fixed_config(spec)
    assert sorted(_model_key(config.model)) == OLD_BASELINE_MODEL
    assert sorted(_training_key(config.training)) == OLD_BASELINE_TRAINING
    assert sorted(model_key(config.model.model_dump())) == OLD_TRANSFER_MODEL
    assert sorted(training_key(config.training.model_dump(exclude={"device"}))) == (
        OLD_TRANSFER_TRAINING
    )
    changed = spec.training.model_copy(update={"grad_clip": 1.0, "lr_schedule": "cosine"})
    assert _training_key(changed) == {
        **_training_key(spec.training), "grad_clip": 1.0, "lr_schedule": "cosine"
    }  # fmt: skip
    towers = spec.model.model_copy(update={"head_layers": 1})
    assert set(_model_key(towers)) - set(OLD_BASELINE_MODEL) == {"head_layers", "head_hidden"}
    assert cli("validate", str(tmp_path / "study.yaml")).returncode == 0
