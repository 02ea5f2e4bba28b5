"""Answers a careful reviewer would sign, end to end on the real command and real stores:
every "best" is the validation arg-max (status, dashboard, report, transfer), models are
scored at their best validation epoch, Optuna's intermediate values are the per-epoch curves
in MLflow, the winners are confirmed with fresh seeds (resumable after a kill), and every
number of the report is one MLflow holds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mtl_core import transfer
from sweeps.plan import baseline_budget
from sweeps.spec import StudySpec, load_spec
from sweeps.sqlite_stores import mlflow_client
from tests.helpers import cli, small_study, write_study

pytestmark = pytest.mark.slow

EPOCHS = 5


def _study(name: str = "evidence", **search) -> dict:
    study = small_study(
        name,
        training={"epochs": EPOCHS, "lr": 0.03},
        search={
            "n_trials": 6,
            "sampler": "random",
            "pruner": "none",
            "confirm": {"top": 2, "seeds": 2},
            "space": {
                "model.hidden_size": {"choices": [8, 32]},
                "training.schedule": {"choices": ["joint", "round_robin"]},
            },
            **search,
        },
    )
    study["tasks"] = {k: v for k, v in study["tasks"].items() if k in ("imdb", "yelp")}
    return study


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evidence")
    path = write_study(folder, _study())
    result = cli("run", str(path), cwd=folder)
    assert result.returncode == 0, result.stderr
    spec = load_spec(path)
    client = MlflowClient(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name)
    runs = client.search_runs([experiment.experiment_id], "", max_results=1000)
    return spec, path, client, runs, result


def _kind(runs, kind: str) -> list:
    return [r for r in runs if r.data.tags.get("mtl.kind") == kind]


def _argmax(runs, metric: str) -> int:
    complete = [r for r in runs if r.data.tags.get("mtl.state") == "COMPLETE"]
    best = max(
        complete, key=lambda r: (r.data.metrics[metric], -int(r.data.tags["mtl.trial_number"]))
    )
    return int(best.data.tags["mtl.trial_number"])


def test_every_best_is_the_validation_arg_max(finished):
    spec, path, client, runs, _ = finished
    trials = _kind(runs, "trial")
    by_valid, by_test = _argmax(trials, "valid/delta_m"), _argmax(trials, "delta_m")
    assert by_valid != by_test, "the fixture should have different validation and test winners"
    confirms = _kind(runs, "confirm")
    winner = max(confirms, key=lambda r: r.data.metrics["valid/delta_m"])
    won = int(winner.data.tags["mtl.confirms"])
    # optuna agrees with MLflow on the objective
    study = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage)
    assert study.best_trial.number == by_valid

    status = cli("status", str(path))
    assert f"best by validation: trial {by_valid}," in status.stdout
    assert f"winner (chosen on validation): trial {won} " in status.stdout
    assert "baselines took" in status.stdout

    page = (spec.workdir_path / "dashboard.html").read_text()
    assert f"winner, chosen on validation: trial {won} " in page
    assert f"best trial by validation: {by_valid} (" in page
    assert f"best trial {by_test}" not in page
    first_row = re.search(r"<tbody><tr><td[^>]*>(\d+)</td>", page)
    assert first_row and int(first_row.group(1)) == by_valid  # leaderboard: validation order

    report = (spec.workdir_path / "report.md").read_text()
    assert f"Winner, chosen on validation: trial {won} " in report
    assert f"The search's best trial by validation was trial {by_valid} " in report
    assert winner.info.run_id in report

    moved = cli("transfer", str(path))
    assert moved.returncode == 0, moved.stderr
    assert f"the settings of best trial {by_valid}" in moved.stdout


def test_runs_are_scored_at_their_best_validation_epoch(finished):
    spec, _, client, runs, _ = finished
    earlier = 0
    for run in _kind(runs, "trial") + _kind(runs, "baseline"):
        if run.info.status != "FINISHED":
            continue
        m = run.data.metrics
        best = int(m["best_epoch"])
        tasks = run.data.tags.get("mtl.tasks") or run.data.tags["mtl.task"]
        for task in tasks.split(","):
            history = client.get_metric_history(run.info.run_id, f"valid/{task}/f1")
            curve = {p.step: p.value for p in history}
            assert sorted(curve) == list(range(1, EPOCHS + 1))
            assert m[f"selected/valid/{task}/f1"] == pytest.approx(curve[best])
            if run.data.tags["mtl.kind"] == "baseline":
                assert curve[best] == max(curve.values())  # a baseline: its own metric
        earlier += best < EPOCHS
    assert earlier, "no run of the fixture peaked before its last epoch"
    # a trial's objective: Δm of its scored epoch against the baselines' scored epochs
    for run in _kind(runs, "trial"):
        if run.data.tags.get("mtl.state") != "COMPLETE":
            continue
        m = run.data.metrics
        per_task = {
            t: transfer.delta(m[f"selected/valid/{t}/f1"], m[f"baseline/valid/{t}/f1"], "f1")
            for t in ("imdb", "yelp")
        }
        assert m["valid/delta_m"] == pytest.approx(transfer.delta_m(per_task))
        assert m["test/delta_m"] == m["delta_m"]


def test_optuna_intermediate_values_are_the_per_epoch_curves(finished):
    spec, _, client, runs, _ = finished
    study = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage)
    by_number = {int(r.data.tags["mtl.trial_number"]): r for r in _kind(runs, "trial")}
    for trial in study.trials:
        history = client.get_metric_history(
            by_number[trial.number].info.run_id, "valid/delta_m_by_epoch"
        )
        assert trial.intermediate_values == pytest.approx({p.step: p.value for p in history})
        assert len(trial.intermediate_values) == EPOCHS


def test_the_best_configurations_are_confirmed_with_fresh_paired_seeds(finished):
    spec, _, client, runs, result = finished
    study = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage)
    assert len(study.trials) == 6  # confirmation does not count towards n_trials
    confirms = _kind(runs, "confirm")
    assert len(confirms) == 2 and all(r.info.status == "FINISHED" for r in confirms)
    ranked = sorted(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: (-t.value, t.number),
    )
    distinct, seen = [], set()
    for t in ranked:
        key = tuple(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            distinct.append(t.number)
    assert sorted(int(r.data.tags["mtl.confirms"]) for r in confirms) == sorted(distinct[:2])
    for run in confirms:
        assert run.data.params["confirm.seeds"] == "1,2"  # the search used seed 0
        m = run.data.metrics
        for name in ("delta_m", "valid/delta_m", "delta/imdb", "delta/yelp"):
            assert {f"{name}_std", f"{name}_ci95", f"{name}_significant"} <= set(m)
        parent = run.data.tags["mlflow.parentRunId"]
        assert _kind([client.get_run(parent)], "study")
    # paired: each confirm seed's baselines were trained with that seed
    seeds = {b.data.tags["mtl.seed"] for b in _kind(runs, "baseline")}
    assert {"1", "2"} <= seeds
    assert "confirm trial" in result.stderr


def test_every_number_in_the_report_is_in_mlflow(finished):
    spec, _, client, _, _ = finished
    experiment = client.get_experiment_by_name(spec.name)
    runs = client.search_runs([experiment.experiment_id], "", max_results=1000)  # after report
    values = {round(v, 2) for r in runs for v in r.data.metrics.values()}
    values |= {round(abs(v), 2) for v in list(values)}
    report = (spec.workdir_path / "report.md").read_text()
    numbers = [float(x) for x in re.findall(r"(?<![\w.])[+-]?\d+\.\d+", report)]
    assert len(numbers) > 10
    missing = [x for x in numbers if round(abs(x), 2) not in values]
    assert not missing, f"numbers of the report that MLflow does not hold: {missing}"
    study_run = _kind(runs, "study")[0]
    assert "report.md" in [a.path for a in client.list_artifacts(study_run.info.run_id)]
    assert "summary/baseline_share_pct" in study_run.data.metrics


def test_report_needs_a_complete_trial(tmp_path):
    path = write_study(tmp_path, _study("empty"))
    result = cli("report", str(path))
    assert result.returncode == 2
    assert "no complete trial yet" in result.stderr and "Traceback" not in result.stderr


def test_validate_counts_the_baselines_and_warns_on_ranges(finished, tmp_path):
    _, path, *_ = finished
    shown = cli("validate", str(path))
    # 2 tasks x 2 widths x (1 search seed + 2 confirmation seeds)
    assert "baselines: at most 12 distinct single-task models" in shown.stdout
    assert "warning" not in shown.stdout
    study = _study()
    study["search"]["space"]["model.hidden_size"] = {"low": 8, "high": 64}
    study["search"]["space"]["training.lr"] = {"low": 0.001, "high": 0.1, "log": True}
    spec = StudySpec.model_validate(study)
    count, warnings = baseline_budget(spec)
    assert count is None
    assert any("search.space.model.hidden_size: a range of 57 values" in w for w in warnings)
    assert any("search.space.training.lr: a continuous range" in w for w in warnings)
    assert all("choices" in w and "baselines.mode: tuned" in w for w in warnings)
    # the schedule is not a baseline setting: no warning however many values
    study["search"]["space"] = {"training.schedule": {"choices": ["joint", "round_robin"]}}
    assert baseline_budget(StudySpec.model_validate(study)) == (6, [])
    # the architecture and mmoe's experts are (a single-task model keeps its experts)
    study["search"]["space"] = {
        "model.architecture": {"choices": ["hard_sharing", "mmoe"]},
        "model.experts": {"choices": [2, 4]},
    }
    assert baseline_budget(StudySpec.model_validate(study))[0] == 6 * 2 * 2


def test_a_confirmation_killed_mid_way_is_resumed(tmp_path):
    study = _study("resume", heartbeat_s=1, n_trials=2, confirm={"top": 1, "seeds": 4})
    path = write_study(tmp_path, study)
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    uri = f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                client = mlflow_client(uri)  # waits while the run creates the fresh store
                experiment = client.get_experiment_by_name("resume")
                running = experiment and client.search_runs(
                    [experiment.experiment_id],
                    "tags.`mtl.kind` = 'confirm' and attributes.status = 'RUNNING'",
                )
            except Exception:  # the store is being created
                running = None
            if running:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the study ended before its confirmation could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    again = cli("run", str(path))
    assert again.returncode == 0, again.stderr
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("resume")
    runs = client.search_runs([experiment.experiment_id], "", max_results=1000)
    confirms = _kind(runs, "confirm")
    finished_runs = [r for r in confirms if r.info.status == "FINISHED"]
    assert len(finished_runs) == 1
    killed = [r for r in confirms if r.info.status == "FAILED"]
    assert len(killed) == 1 and "no heartbeat" in killed[0].data.tags["mtl.error"]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    spec = load_spec(path)
    main = optuna.load_study(study_name="resume", storage=spec.optuna_storage)
    assert len(main.trials) == 2
    assert int(finished_runs[0].data.tags["mtl.confirms"]) == main.best_trial.number
    assert (Path(spec.workdir_path) / "report.md").exists()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test's own ask/tell
def test_confirmation_waits_for_its_deadline_and_redoes_an_interrupted_one(tmp_path):
    from sweeps.confirm import confirm_name, open_confirm_study
    from sweeps.runner import run_study

    study = _study("deadline", n_trials=2, confirm=None)
    study["training"]["epochs"] = 1
    spec = load_spec(write_study(tmp_path, study))
    assert run_study(spec).closed  # the search alone
    confirming = spec.model_copy(
        update={"search": spec.search.model_copy(update={"confirm": _confirm(1, 2)})}
    )
    # past its deadline, confirmation starts nothing and leaves the study open
    late = run_study(confirming, timeout=1e-6)
    assert late.stopped_by_timeout and not late.closed and not late.confirmed
    # a confirmation interrupted elsewhere (Ctrl-C: FAIL, not counted) is enqueued again
    cstudy = open_confirm_study(confirming)
    best = optuna.load_study(study_name=spec.name, storage=spec.optuna_storage).best_trial
    broken = cstudy.ask()
    broken.set_user_attr("confirms", best.number)
    broken.set_user_attr("reason", "interrupted")
    broken.set_user_attr("not_counted", True)
    cstudy.tell(broken, state=optuna.trial.TrialState.FAIL)
    done = run_study(confirming)
    assert done.closed and [o.state for o in done.confirmed] == ["COMPLETE"]
    states = [t.state for t in optuna.load_study(
        study_name=confirm_name(spec), storage=spec.optuna_storage).trials]  # fmt: skip
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    client = MlflowClient(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name).experiment_id
    runs = client.search_runs([experiment], "tags.`mtl.kind` = 'confirm'")
    assert [r.info.status for r in runs] == ["FINISHED"]


def _confirm(top: int, seeds: int):
    from sweeps.spec import ConfirmConfig

    return ConfirmConfig(top=top, seeds=seeds)


def test_with_confirmation_the_confirm_runs_hold_the_models(finished, tmp_path):
    """The winners' models are the confirm runs' (their first fresh seed); the search's
    trials log none, and `predict --trial best` takes the confirmed winner's."""
    import json

    from sweeps.models import has_model

    spec, path, client, runs, _ = finished
    confirms = _kind(runs, "confirm")
    assert confirms and all(has_model(r) for r in confirms)
    assert not [r for r in _kind(runs, "trial") if has_model(r)]
    winner = max(confirms, key=lambda r: r.data.metrics["valid/delta_m"])
    first_seed = winner.data.params["confirm.seeds"].split(",")[0]
    assert winner.data.tags["mtl.model_seed"] == first_seed
    local = client.download_artifacts(winner.info.run_id, "model/data/mtl_model", str(tmp_path))
    described = json.loads((Path(local) / "model.json").read_text())
    assert str(described["metrics"]["seed"]) == first_seed
    rows = tmp_path / "rows.csv"
    rows.write_text("text\nlovely film\nterrible food\n")
    done = cli("predict", str(path), "--input", str(rows), "--out", str(tmp_path / "p.csv"))
    assert done.returncode == 0, done.stderr
    assert winner.info.run_id in done.stdout and "confirm run of trial" in done.stdout
