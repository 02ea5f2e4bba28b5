"""Issue 3's acceptance on a real PostgreSQL and a real MLflow server started by
`sweeps server`: workers sharing one study, a worker killed mid-trial, and password masking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from sweeps.runner import open_study
from sweeps.server import launch_tracking_server, stop_group
from sweeps.spec import load_spec
from tests.helpers import ROOT, cli, free_port, runs_at, small_study, write_study

pytestmark = pytest.mark.postgres


@pytest.fixture
def shared(postgres_db, server):
    """A fresh Optuna database, and the module's MLflow server."""
    return postgres_db(), server


def _worker(path, log, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", "worker", str(path), "--quiet"],
        cwd=path.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        start_new_session=True,
    )


def test_two_workers_run_exactly_the_trials_asked_with_no_duplicate_baseline(tmp_path, shared):
    optuna_url, url = shared
    study = small_study(
        "team",
        tracking_uri=url,
        storage=optuna_url,
        training={"epochs": 1},
        search={
            "n_trials": 8,
            "sampler": "random",
            "pruner": "none",
            "space": {
                "model.hidden_size": {"choices": [8, 16]},
                "training.schedule": {"choices": ["joint", "round_robin"]},
                "tasks": {"subsets": {"min_size": 2}},
            },
        },
    )
    path = write_study(tmp_path, study)
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(2)]
    workers = [_worker(path, log) for log in logs]  # both start a fresh study at once
    for w in workers:
        assert w.wait(timeout=420) == 0, (tmp_path / "w0.log").read_text() + (
            tmp_path / "w1.log"
        ).read_text()
    trials = optuna.load_study(study_name="team", storage=optuna_url).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 8
    assert all(t.user_attrs.get("surplus") for t in trials if t not in complete)
    trial_runs = runs_at(url, "team", "trial")
    assert sorted(int(r.data.tags["mtl.trial_number"]) for r in trial_runs) == sorted(
        t.number for t in complete
    )
    assert all(r.info.status == "FINISHED" for r in trial_runs)
    keys = Counter(r.data.tags["mtl.baseline_key"] for r in runs_at(url, "team", "baseline"))
    assert keys and max(keys.values()) == 1, keys
    assert not [r for r in runs_at(url, "team") if r.info.status == "RUNNING"]
    (parent,) = runs_at(url, "team", "study")
    assert parent.info.status == "FINISHED"
    # both workers trained: the study was shared, not run twice or by one alone
    by_worker = Counter(t.user_attrs["worker"] for t in complete)
    assert len(by_worker) == 2, by_worker
    assert {r.data.tags["mtl.worker"] for r in trial_runs} == set(by_worker)


def test_a_worker_killed_mid_trial_is_retried_and_its_runs_closed(tmp_path, shared):
    optuna_url, url = shared
    study = small_study(
        "crash",
        tracking_uri=url,
        storage=optuna_url,
        training={"epochs": 30},
        search={
            "n_trials": 2,
            "sampler": "random",
            "pruner": "none",
            "heartbeat_s": 1,
            "space": {"model.hidden_size": {"choices": [8, 16]}},
        },
    )
    study["tasks"].pop("amazon")  # two tasks train the 30 epochs in two thirds of the time
    path = write_study(tmp_path, study)
    with open(tmp_path / "first.log", "w") as log:
        first = _worker(path, log)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # wait until a trial trains
            try:
                if any(r.info.status == "RUNNING" for r in runs_at(url, "crash", "trial")):
                    break
            except AttributeError:  # the experiment does not exist yet
                pass
            time.sleep(0.5)
        else:
            pytest.fail("no trial started: " + (tmp_path / "first.log").read_text())
        time.sleep(1.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    running = [r for r in runs_at(url, "crash") if r.info.status == "RUNNING"]
    assert any(r.data.tags["mtl.kind"] == "trial" for r in running)  # left behind by the kill
    second = cli("worker", str(path), "--quiet", cwd=tmp_path)  # the retry: proved in process
    assert second.returncode == 0, second.stderr
    trials = optuna.load_study(study_name="crash", storage=optuna_url).trials
    states = Counter(t.state.name for t in trials)
    assert states["COMPLETE"] == 2 and states["FAIL"] == 1, states
    (dead,) = [t for t in trials if t.state.name == "FAIL"]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == dead.params
    runs = runs_at(url, "crash")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    dead_runs = [r for r in runs if r.data.tags.get("mtl.trial_number") == str(dead.number)]
    assert [r.info.status for r in dead_runs] == ["FAILED"]
    assert "no heartbeat" in dead_runs[0].data.tags["mtl.error"]
    assert f"retried as trial {retries[0].number}" in dead_runs[0].data.tags["mtl.error"]
    retry_run = [r for r in runs if r.data.tags.get("mtl.trial_number") == str(retries[0].number)]
    assert retry_run[0].data.tags["mtl.retry_of"] == str(dead.number)
    assert [r.info.status for r in runs_at(url, "crash", "study")] == ["FINISHED"]
    status = cli("status", str(path), cwd=tmp_path)  # what it prints: proved in process
    assert f"retry of trial {dead.number}" in status.stdout


def test_passwords_in_store_uris_are_masked(tmp_path):
    study = small_study(
        "masked",
        storage="postgresql://alice:s3cr3t-pw@127.0.0.1:1/nodb",
        search={"store_retry_s": 2},  # nothing listens on port 1: give up after 2 s
    )
    path = write_study(tmp_path, study)
    validate = cli("validate", str(path), cwd=tmp_path)  # what it prints: proved in process
    assert validate.returncode == 0, validate.stderr
    assert "alice:***@127.0.0.1" in validate.stdout and "s3cr3t" not in validate.stdout
    run = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 1  # nothing listens on port 1
    assert "s3cr3t" not in run.stdout + run.stderr
    assert "retrying for up to 2 s" in run.stderr and "alice:***@" in run.stderr
    from sweeps.masking import mask

    assert mask("postgresql://u:p%40ss@h:5432/db and host=h password=xyz;") == (
        "postgresql://u:***@h:5432/db and host=h password=***;"
    )
    assert mask("http://mlflow:5000") == "http://mlflow:5000"


def test_an_unanswered_storage_is_given_up_after_store_retry_s(tmp_path):
    """The storage retries an unanswered database for ``search.store_retry_s``; opening the
    study must not retry that whole wait again (it did, six times: 2 s became 24 s, and the
    default 120 s twelve minutes)."""
    study = small_study("gone", storage="postgresql://u:pw@127.0.0.1:1/nodb")
    study["search"]["store_retry_s"] = 1
    spec = load_spec(write_study(tmp_path, study))
    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        open_study(spec)
    assert time.monotonic() - started < 6  # one retry budget (1 s) and its backoff, not six


def test_multi_objective_study_tags_its_pareto_front_on_the_shared_stores(tmp_path, shared):
    optuna_url, url = shared
    study = small_study(
        "front", tracking_uri=url, storage=optuna_url, training={"epochs": 1},
        search={"n_trials": 5, "sampler": "tpe", "objective": "per_task", "space": {
            "model.hidden_size": {"low": 4, "high": 64, "log": True}}},
    )  # fmt: skip
    study["tasks"].pop("amazon")
    study["search"].pop("pruner")
    path = write_study(tmp_path, study)
    result = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", str(path), "--quiet"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ostudy = optuna.load_study(study_name="front", storage=optuna_url)
    front = {t.number for t in ostudy.best_trials}
    runs = runs_at(url, "front", "trial")
    assert len(runs) == 5 and front
    assert {
        int(r.data.tags["mtl.trial_number"]) for r in runs if r.data.tags["mtl.pareto"] == "true"
    } == front


def test_sweeps_server_masks_the_password_and_keeps_it_off_command_lines(tmp_path, postgres_db):
    backend = postgres_db().replace("postgres@", "postgres:s3cr3t-pw@")  # trust auth: any password
    proc, url = launch_tracking_server(backend, tmp_path / "artifacts", free_port())
    try:
        deadline, banner = time.monotonic() + 60, ""  # printed once /health answers
        while time.monotonic() < deadline and not banner:
            found = [
                line for line in proc.log_path.read_text().splitlines() if " ready on " in line
            ]
            banner = found[0] if found else ""
            time.sleep(0.2)
        assert "postgres:***@" in banner and "s3cr3t" not in banner
        assert "s3cr3t" not in proc.log_path.read_text()
        assert url.startswith("http://127.0.0.1:")  # bound to localhost unless told otherwise
        port = url.rsplit(":", 1)[1]
        command_lines = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                command_lines.append(open(f"/proc/{pid}/cmdline", "rb").read().decode())
            except (FileNotFoundError, PermissionError, ProcessLookupError):
                continue
        assert any("mlflow\x00server" in c and port in c for c in command_lines)
        assert not [c for c in command_lines if "s3cr3t" in c]  # on no command line at all
        MlflowClient(url).search_experiments()  # and the server does reach its backend
    finally:
        stop_group(proc)
