"""No configuration trained twice: a trial that draws the settings of a finished trial takes
its result (Optuna: the same value and per-epoch values, so sampler and pruner learn from it;
MLflow: a REUSED run linked to the original, with no figures of its own, so nothing counts the
configuration twice), and trains nothing."""

from __future__ import annotations

import optuna
from mlflow.tracking import MlflowClient

from sweeps.reuse import config_key
from sweeps.runner import run_study
from sweeps.space import fixed_config
from sweeps.spec import load_spec
from sweeps.study_data import load_study_data
from sweeps.transfer_matrix import pair_matrix
from tests.helpers import cli, runs_of, small_study, two_tasks, write_study


def _one_configuration(name: str, **search) -> dict:
    return two_tasks(
        small_study(
            name,
            search={
                "n_trials": 3,
                "space": {"model.hidden_size": {"choices": [16]}},
                "reuse": True,  # the default; the test helper turns it off
                **search,
            },
        )
    )


def test_a_repeated_configuration_takes_the_first_trials_result(tmp_path):
    spec = load_spec(write_study(tmp_path, _one_configuration("again")))
    summary = run_study(spec)
    assert summary.finished == 3 and summary.best_number == 0
    study = optuna.load_study(study_name="again", storage=spec.optuna_storage)
    first, *repeats = study.trials
    assert "reuses" not in first.user_attrs
    for t in repeats:
        assert t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["reuses"] == 0
        assert t.value == first.value and t.intermediate_values == first.intermediate_values
        assert t.user_attrs["deltas"] == first.user_attrs["deltas"]
    client = MlflowClient(spec.tracking)
    runs = {int(r.data.tags["mtl.trial_number"]): r for r in runs_of(spec, "trial")}
    assert runs[0].data.tags["mtl.state"] == "COMPLETE" and "delta_m" in runs[0].data.metrics
    for number in (1, 2):
        run = runs[number]
        assert run.info.status == "FINISHED" and run.data.tags["mtl.state"] == "REUSED"
        assert run.data.tags["mtl.reuses"] == "0"
        assert run.info.run_name.endswith("· same as trial 0")
        assert not [k for k in run.data.metrics if "delta" in k], "a repeat holds no figures"
        assert run.data.metrics["time/train_s"] == 0 and run.data.metrics["time/baseline_s"] == 0
        trained = {k: v for k, v in runs[0].data.params.items() if k != "device"}
        assert client.get_run(run.info.run_id).data.params == trained  # it trained nowhere
    assert len(runs_of(spec, "baseline")) == 2, "one baseline per task, trained once"
    # what reads the record counts the configuration once
    assert pair_matrix(spec.task_names, runs.values()).count("imdb", "yelp") == 1
    report = (spec.workdir_path / "report.md").read_text()
    assert "3 trials (1 complete, 2 reused)" in report
    status = cli("status", str(tmp_path / "study.yaml"))
    assert status.returncode == 0
    assert status.stdout.count("REUSED") == 2 and "same settings as trial 0" in status.stdout
    assert cli("dashboard", str(tmp_path / "study.yaml")).returncode == 0
    page = (spec.workdir_path / "dashboard.html").read_text()
    assert "same settings as trial 0: its result, not trained again" in page
    # its model is the original's: asking for the repeat says so
    done = cli("predict", str(tmp_path / "study.yaml"), "--trial", "1",
               "--input", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv"))  # fmt: skip
    assert done.returncode == 2 and "its model is trial 0's (--trial 0)" in done.stderr


def test_a_multi_objective_repeat_takes_every_value(tmp_path):
    study = _one_configuration("pareto", objective="per_task", pruner="none")
    study["search"]["n_trials"] = 2
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    first, repeat = optuna.load_study(study_name="pareto", storage=spec.optuna_storage).trials
    assert repeat.user_attrs["reuses"] == 0 and repeat.values == first.values
    assert len(first.values) == 2


def test_reuse_false_trains_every_trial(tmp_path):
    study = _one_configuration("retrain")
    study["search"].update(n_trials=2, reuse=False)
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    trials = optuna.load_study(study_name="retrain", storage=spec.optuna_storage).trials
    assert not [t for t in trials if "reuses" in t.user_attrs]
    assert {r.data.tags["mtl.state"] for r in runs_of(spec, "trial")} == {"COMPLETE"}
    assert trials[0].user_attrs["config_key"] == trials[1].user_attrs["config_key"]


def test_the_key_is_every_effective_setting_and_the_data(tmp_path):
    spec = load_spec(write_study(tmp_path, two_tasks(small_study("keys"))))
    data = load_study_data(spec)
    base = fixed_config(spec)
    assert config_key(base, data) == config_key(fixed_config(spec), data)
    for updates in (
        {"training": {"epochs": 3}},  # a fixed setting changed between runs counts too
        {"model": {"hidden_size": 17}},
        {"training": {"seeds": 2}},
    ):
        assert config_key(fixed_config(spec, updates=updates), data) != config_key(base, data)
    assert config_key(fixed_config(spec, ["imdb"]), data) != config_key(base, data)


def test_a_trial_recorded_before_keys_is_found_by_its_parameters(tmp_path):
    """A study begun before this feature has COMPLETE trials without `config_key`: their key
    is rebuilt from their parameters, and it is the key they would have recorded."""
    from sweeps.reuse import original_of
    from sweeps.space import config_from_params

    study = _one_configuration("older")
    study["search"].update(n_trials=1, reuse=False)
    spec = load_spec(write_study(tmp_path, study))
    run_study(spec)
    (recorded,) = optuna.load_study(study_name="older", storage=spec.optuna_storage).trials
    data = load_study_data(spec)
    tasks = recorded.params.get("tasks", ",".join(spec.task_names)).split(",")
    rebuilt = config_key(
        config_from_params(spec, tasks, recorded.params), data, spec.baselines.model_dump()
    )
    assert rebuilt == recorded.user_attrs["config_key"]
    memory = optuna.create_study(direction="maximize")
    memory.add_trial(
        optuna.trial.create_trial(
            params=recorded.params, distributions=recorded.distributions, value=1.0
        )
    )  # an older trial: no config_key attribute
    assert original_of(memory, rebuilt, 5) is None
    found = original_of(memory, rebuilt, 5, key_of=lambda t: rebuilt)
    assert found is not None and found.number == 0
