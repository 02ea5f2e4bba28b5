"""sweeps.status: the trials' table read from a real Optuna storage (trials written with
Optuna's own `create_trial`, no training), and `status` before any run."""

from __future__ import annotations

import io

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

from sweeps.spec import load_spec
from sweeps.status import print_status
from tests.helpers import cli, small_study, write_study


def _trial(number: int, state: TrialState = TrialState.COMPLETE, **attrs):
    width = {"model.hidden_size": 8 + number}
    return create_trial(
        state=state,
        value=attrs.get("valid_delta_m") if state == TrialState.COMPLETE else None,
        params=width,
        distributions={"model.hidden_size": IntDistribution(4, 64)},
        user_attrs=attrs,
    )


def _status(tmp_path, trials, rows: int = 0) -> str:
    study = small_study("table", search={"n_trials": 5, "space": {
        "model.hidden_size": {"low": 4, "high": 64}}})  # fmt: skip
    spec = load_spec(write_study(tmp_path, study))
    spec.workdir_path.mkdir(parents=True, exist_ok=True)
    stored = optuna.create_study(
        study_name=spec.name, storage=spec.optuna_storage, direction="maximize"
    )
    for trial in trials:
        stored.add_trial(trial)
    out = io.StringIO()
    print_status(spec, Console(file=out, width=200, markup=False), rows=rows)
    return out.getvalue()


def test_the_table_lists_the_trials_and_the_best_by_validation_with_its_test_figures(tmp_path):
    text = _status(tmp_path, [
        _trial(0, valid_delta_m=1.5, delta_m=-0.25, deltas={"imdb": 2.0, "yelp": -2.5}),
        _trial(1, valid_delta_m=3.0, delta_m=0.75, deltas={"imdb": 1.0, "yelp": 0.5}),
        _trial(2, TrialState.PRUNED, reason="epoch 1: valid Δm -9.00% below the median"),
        _trial(3, TrialState.PRUNED, surplus=True),
    ])  # fmt: skip
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["0", "1", "2"]  # not the surplus one
    assert "epoch 1: valid Δm -9.00% below the median" in rows[2] and "PRUNED" in rows[2]
    assert "imdb +2.0, yelp -2.5" in rows[0]
    assert "(1 surplus trial(s) started by a worker after the target was met, not shown)" in text
    # chosen on validation (trial 1), its test figures said to be test figures
    assert (
        "best by validation: trial 1, validation Δm +3.00% (its test Δm +0.75%; "
        "test Δ per task: imdb +1.00%, yelp +0.50%)" in text
    )
    assert "one seed per trial: a negative Δ may be noise" in text


def test_rows_shows_the_most_recent_and_says_what_it_left_out(tmp_path):
    trials = [_trial(n, valid_delta_m=float(n), delta_m=0.0, deltas={}) for n in range(4)]
    trials[0] = _trial(0, valid_delta_m=9.0, delta_m=0.0, deltas={})  # the best, not shown
    text = _status(tmp_path, trials, rows=2)
    rows = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert rows == ["2", "3"]
    assert "(2 earlier trial(s) not shown" in text
    assert "best by validation: trial 0, validation Δm +9.00%" in text


def test_status_before_any_run(tmp_path):
    write_study(tmp_path, small_study())
    result = cli("status", "study.yaml", cwd=tmp_path)
    assert result.returncode == 0
    assert "no trials yet" in result.stdout


def test_status_reads_no_baseline_run_and_every_kind_it_shows(tmp_path):
    # a study has about as many baseline runs as trials (a width searched: one per width, task
    # and seed); status shows none of them, so its one search leaves them out
    from sweeps import record
    from sweeps.sqlite_stores import mlflow_client
    from sweeps.verdict import study_runs

    spec = load_spec(write_study(tmp_path, small_study("kinds")))
    spec.workdir_path.mkdir(parents=True)
    client = mlflow_client(spec.tracking)
    experiment = client.create_experiment(spec.name)
    made = {kind: client.create_run(experiment, tags={record.KIND: kind}).info.run_id
            for kind in record.KINDS}  # fmt: skip
    shown = (record.TRIAL, record.CONFIRM, record.TRANSFER)
    runs = study_runs(spec, shown)
    assert {k: [r.info.run_id for r in v] for k, v in runs.items()} == {k: [made[k]] for k in shown}
    every = study_runs(spec)  # the default, for the report and the models: baselines too
    assert [r.info.run_id for r in every[record.BASELINE]] == [made[record.BASELINE]]
    assert record.where(not_kind=["a", "b"]) == "tags.`mtl.kind` != 'a' and tags.`mtl.kind` != 'b'"
