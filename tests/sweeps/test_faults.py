"""Issue 7: faults injected into real processes. A fault may cost the trial in flight, never
the study or its record: completed trials keep every metric and nothing is left RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from sweeps.server import launch_tracking_server, stop_group
from sweeps.sqlite_stores import mlflow_client
from tests.helpers import ROOT, cli, free_port, small_study, write_study


def _start(path: Path, log, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(path), "--quiet", *args],
        cwd=path.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )


def _runs(uri: str, name: str, kind: str | None = None):
    client = mlflow_client(uri)  # waits while the run creates a fresh store, never races it
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return []
    query = f"tags.`mtl.kind` = '{kind}'" if kind else ""
    return client.search_runs([exp.experiment_id], query, max_results=1000)


def _wait_for(predicate, what: str, log: Path, timeout: float = 180, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}: "
                        f"{log.read_text()[-3000:]}")  # fmt: skip
        try:
            if predicate():
                return
        except Exception:  # the stores may not exist yet
            pass
        time.sleep(0.3)
    pytest.fail(f"{what} did not happen: {log.read_text()[-3000:]}")


def _midway(
    uri: str, name: str, log: Path, timeout: float = 300, early_in: str | None = None, proc=None
) -> dict[str, dict]:
    """Wait until one trial has completed and another runs; the completed runs' metrics.

    With ``early_in`` (the Optuna storage) the running trial must also have reported its
    first epochs and no more than ten: a signal sent then lands in its training, not in its
    last epoch's record or between trials, where no trial is cut (a slow machine's poll
    used to see a trial late)."""

    def early() -> bool:
        study = optuna.load_study(study_name=name, storage=early_in)
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        return any(1 <= len(t.intermediate_values) <= 10 for t in running)

    def one_done_one_running() -> bool:
        states = [r.data.tags.get("mtl.state") for r in _runs(uri, name, "trial")]
        return "COMPLETE" in states and "RUNNING" in states and (early_in is None or early())

    _wait_for(one_done_one_running, "a completed and a running trial", log, timeout, proc)
    return {
        r.info.run_id: dict(r.data.metrics)
        for r in _runs(uri, name, "trial")
        if r.data.tags["mtl.state"] == "COMPLETE"
    }


def _long_study(name: str, **sections) -> dict:
    study = small_study(name, **{"training": {"epochs": 40}, **sections})
    study["tasks"] = {k: v for k, v in study["tasks"].items() if k in ("imdb", "yelp")}
    return study


def _stopped_midway(folder: Path, name: str, send) -> dict:
    """Start `sweeps run` on a 3-trial study, stop it with ``send(proc)`` once a trial has
    completed and another trains; what a test checks afterwards."""
    study = _long_study(name, training={"epochs": 30}, search={"n_trials": 3, "pruner": "none"})
    path = write_study(folder, study)
    tracking = f"sqlite:///{folder / '.sweeps' / 'mlflow.db'}"
    storage = f"sqlite:///{folder / '.sweeps' / 'optuna.db'}"
    log = folder / "run.log"
    with open(log, "w") as out:
        proc = _start(path, out)
        done = _midway(tracking, name, log, early_in=storage, proc=proc)
        sent = time.monotonic()
        send(proc)
        code = proc.wait(timeout=30)
        stopped_in = time.monotonic() - sent
    trials = optuna.load_study(study_name=name, storage=storage).trials
    (cut,) = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    cut_runs = [
        r
        for r in _runs(tracking, name, "trial")
        if r.data.tags["mtl.trial_number"] == str(cut.number)
    ]
    return dict(path=path, tracking=tracking, storage=storage, log=log.read_text(), done=done,
                code=code, stopped_in=stopped_in, cut=cut, cut_runs=cut_runs)  # fmt: skip


def test_ctrl_c_stops_within_seconds_and_the_next_run_resumes(tmp_path):
    # what Ctrl-C in a terminal sends: SIGINT to the whole process group
    got = _stopped_midway(tmp_path, "ctrl_c", lambda proc: os.killpg(proc.pid, signal.SIGINT))
    assert got["code"] == 130, got["log"]
    assert got["stopped_in"] < 10
    assert "interrupted" in got["log"]
    assert got["cut"].user_attrs["reason"] == "interrupted"
    # its run, if the interrupt came after it was created, is closed (KILLED, or FAILED by the
    # janitor when Ctrl-C arrived while the run was being set up), never left RUNNING
    for run in got["cut_runs"]:
        assert run.info.status in ("KILLED", "FAILED") and run.data.tags["mtl.state"] == "FAIL"

    resumed = cli("run", str(got["path"]), "--quiet", cwd=tmp_path)  # the resume, in process
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name="ctrl_c", storage=got["storage"]).trials
    assert Counter(t.state.name for t in trials) == {"FAIL": 1, "COMPLETE": 3}
    runs = _runs(got["tracking"], "ctrl_c")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    by_id = {r.info.run_id: r for r in runs}
    for run_id, metrics in got["done"].items():  # nothing completed was lost
        assert by_id[run_id].data.metrics == metrics


def test_sigterm_stops_as_ctrl_c_does_and_a_second_signal_does_not_cut_the_clean_up(tmp_path):
    # what `docker compose stop`, a Kubernetes eviction and `timeout` send: to the process
    # alone, not its group; a second signal 20 ms later lands in the clean-up of the first
    def twice(proc) -> None:
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)  # the same signal again (Python runs SIGINT's handler first when
        proc.send_signal(signal.SIGTERM)  # both wait at once: a mixed pair would race)

    got = _stopped_midway(tmp_path, "term", twice)
    assert got["code"] == 143, got["log"]  # 128 + SIGTERM, as a shell reports it
    assert got["stopped_in"] < 10
    assert "interrupted (SIGTERM)" in got["log"] and "Traceback" not in got["log"]
    # recorded by this run, not by a later run's janitor ("no heartbeat")
    assert got["cut"].user_attrs["reason"] == "interrupted"
    assert not [r for r in _runs(got["tracking"], "term") if r.info.status == "RUNNING"]
    (cut_run,) = got["cut_runs"]
    assert cut_run.info.status == "KILLED" and cut_run.data.tags["mtl.state"] == "FAIL"
    assert cut_run.data.tags["mtl.error"] == "interrupted (SIGTERM)"


def test_sigterm_to_a_run_with_workers_stops_its_helpers_too(tmp_path):
    # `timeout` or a script's `kill PID` reaches the parent alone; its helpers must stop too
    study = _long_study("term_helpers", training={"epochs": 15}, search={"n_trials": 8})
    study["search"]["pruner"] = "none"
    path = write_study(tmp_path, study)
    tracking = f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}"
    log = tmp_path / "run.log"

    def helpers() -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                line = open(f"/proc/{pid}/cmdline", "rb").read().decode()
            except OSError:
                continue
            if "sweeps\x00worker" in line and str(path) in line:
                found.append(int(pid))
        return found

    with open(log, "w") as out:
        proc = _start(path, out, "--workers", "2")
        _midway(tracking, "term_helpers", log, proc=proc)
        assert helpers(), "the helper did not start"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # not left running past the test
            pytest.fail(f"no exit 120 s after SIGTERM: {log.read_text()[-4000:]}")
        stopped_in = time.monotonic() - sent
    assert code == 143, log.read_text()
    assert stopped_in < 10  # not after the helper has finished the study alone
    assert helpers() == []  # stopped, not left to finish the study on their own
    assert not [r for r in _runs(tracking, "term_helpers") if r.info.status == "RUNNING"]


def test_tracking_server_stopped_mid_study_stops_the_sweep_then_resumes(tmp_path):
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    port = free_port()
    server, url = launch_tracking_server(backend, tmp_path / "artifacts", port)
    study = _long_study(
        "server_down",
        tracking_uri=url,
        training={"epochs": 8},
        search={"n_trials": 4, "pruner": "none", "store_retry_s": 4},
    )
    path = write_study(tmp_path, study)
    storage = f"sqlite:///{tmp_path / '.sweeps' / 'optuna.db'}"
    log = tmp_path / "run.log"
    try:
        with open(log, "w") as out:
            proc = _start(path, out)

            done = _midway(url, "server_down", log, 300, proc=proc)
            stop_group(server)
            stopped = time.monotonic()
            code = proc.wait(timeout=120)
            took = time.monotonic() - stopped
        text = log.read_text()
        assert code == 1, text
        assert "did not answer" in text and "store_retry_s: 4" in text, text
        assert "Traceback" not in text
        assert took < 60  # the retry is bounded: 4 s of backoff plus the trial's own steps
        trials = optuna.load_study(study_name="server_down", storage=storage).trials
        assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]

        server, url = launch_tracking_server(backend, tmp_path / "artifacts", port)
        resumed = cli("run", str(path), "--quiet", cwd=tmp_path)  # the resume: proved in process
        assert resumed.returncode == 0, resumed.stderr
        runs = _runs(url, "server_down")
        assert not [r for r in runs if r.info.status == "RUNNING"]
        by_id = {r.info.run_id: r for r in runs}
        for run_id, metrics in done.items():  # nothing completed was lost
            assert by_id[run_id].data.metrics == metrics
            assert by_id[run_id].info.status == "FINISHED"
        states = Counter(
            t.state.name
            for t in optuna.load_study(study_name="server_down", storage=storage).trials
        )
        assert states["COMPLETE"] == 4
    finally:
        stop_group(server)


@pytest.mark.postgres
def test_workers_ride_out_a_postgresql_restart(tmp_path, private_postgres):
    # a cluster of the test's own: restarting the shared one would cut other tests' connections
    optuna_url, backend = private_postgres.database(), private_postgres.database()
    server, url = launch_tracking_server(backend, tmp_path / "artifacts", free_port())
    try:
        study = _long_study(
            "pg_restart",
            tracking_uri=url,
            storage=optuna_url,
            training={"epochs": 8},
            search={"n_trials": 4, "pruner": "none", "heartbeat_s": 5, "store_retry_s": 60},
        )
        path = write_study(tmp_path, study)
        log = tmp_path / "worker.log"
        with open(log, "w") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "sweeps", "worker", str(path), "--quiet"],
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                start_new_session=True,
            )

            done = _midway(url, "pg_restart", log, 300, proc=worker)
            private_postgres.restart()
            code = worker.wait(timeout=600)
        assert code == 0, log.read_text()[-3000:]
        trials = optuna.load_study(study_name="pg_restart", storage=optuna_url).trials
        others = [  # a trial the restart failed: why (its reason, Optuna's own)
            (t.number, t.state.name, t.user_attrs.get("reason"), t.user_attrs.get("traceback"))
            for t in trials
            if t.state.name != "COMPLETE"
        ]
        assert Counter(t.state.name for t in trials)["COMPLETE"] == 4, (others, log.read_text())
        runs = _runs(url, "pg_restart")
        assert not [r for r in runs if r.info.status == "RUNNING"]
        by_id = {r.info.run_id: r for r in runs}
        for run_id, metrics in done.items():
            assert by_id[run_id].data.metrics == metrics
    finally:
        stop_group(server)


def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["y"] = x @ np.array([3.0, -2.0, 1.0, 0.5]) * 100
    frame["z"] = x[:, 0] * 50
    frame.to_csv(tmp_path / "table.csv", index=False)
    task = {"path": "table.csv", "inputs": ["a", "b", "c", "d"], "type": "regression"}
    study = {
        "name": "diverge",
        "tasks": {"y": {**task, "target": "y"}, "z": {**task, "target": "z"}},
        "model": {"hidden_size": 8, "activation": "relu"},
        "training": {"epochs": 5, "optimizer": "sgd", "schedule": "joint"},
        "search": {
            "n_trials": 2,
            "sampler": "grid",
            "pruner": "none",
            "space": {"training.lr": {"choices": [0.001, 10.0]}},
        },
    }
    path = write_study(tmp_path, study)
    result = cli("run", str(path), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    storage = f"sqlite:///{tmp_path / '.sweeps' / 'optuna.db'}"
    trials = {
        t.params["training.lr"]: t
        for t in optuna.load_study(study_name="diverge", storage=storage).trials
    }
    assert trials[0.001].state == optuna.trial.TrialState.COMPLETE
    assert trials[10.0].state == optuna.trial.TrialState.FAIL
    assert "diverged" in trials[10.0].user_attrs["reason"]
    assert "epoch 1" in trials[10.0].user_attrs["reason"]  # caught within the first epoch
    tracking = f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}"
    runs = {r.data.params["training.lr"]: r for r in _runs(tracking, "diverge", "trial")}
    assert runs["10.0"].info.status == "FAILED"
    assert "training diverged" in runs["10.0"].data.tags["mtl.error"]
    assert runs["0.001"].info.status == "FINISHED" and "delta_m" in runs["0.001"].data.metrics
