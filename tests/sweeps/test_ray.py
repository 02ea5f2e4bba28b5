"""`sweeps run --ray ADDRESS --workers N` against a real local Ray head (started here on
127.0.0.1), with the study on a real PostgreSQL and a real MLflow server: exactly the trials
asked, each baseline trained once, nothing left RUNNING, both workers training; Ctrl-C on the
driver stops the workers with their trials recorded; an address where no head answers is
refused at once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from tests.helpers import ROOT, assert_refused, cli, free_port, runs_at, small_study, write_study

pytestmark = pytest.mark.postgres
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'mtl-sweeps[ray]')")


RAY_TEMP: list[str] = []  # the head's folder, for its workers' logs in a failure's message


def _worker_logs(limit: int = 1500) -> str:
    """The end of each Ray worker's output (where `sweeps worker` prints), for a message."""
    found = sorted(Path(RAY_TEMP[-1]).glob("session_latest/logs/worker-*")) if RAY_TEMP else []
    tails = [(path.name, path.read_text(errors="replace")[-limit:]) for path in found]
    return "\n".join(f"--- {name}\n{text}" for name, text in tails if text.strip())


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head of this module's own on 127.0.0.1 (two CPUs), stopped with its processes."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are long
    RAY_TEMP.append(temp)
    log = open(Path(temp) / "head.log", "w")
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (Path(temp) / "head.log").read_text():
            assert head.poll() is None, (Path(temp) / "head.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Ray head did not start in 120 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:  # the head's processes are its session's: SIGKILL them all (a TERM took 35 s)
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _study(tmp_path, optuna_url, url, name, epochs, trials):
    study = small_study(
        name,
        tracking_uri=url,
        storage=optuna_url,
        training={"epochs": epochs},
        search={
            "n_trials": trials,
            "sampler": "random",
            "pruner": "none",
            "space": {
                "model.hidden_size": {"choices": [8, 16]},
                "training.schedule": {"choices": ["joint", "round_robin"]},
                "tasks": {"subsets": {"min_size": 2}},
            },
        },
    )
    return write_study(tmp_path, study)


def _run(path, address, log):
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(path), "--ray", address, "--workers", "2"],
        cwd=path.parent, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
    )  # fmt: skip


def test_two_ray_workers_run_exactly_the_trials_asked(tmp_path, postgres_db, server, ray_head):
    optuna_url, url = postgres_db(), server
    path = _study(tmp_path, optuna_url, url, "on_ray", epochs=1, trials=4)
    with open(tmp_path / "run.log", "w") as log:
        driver = _run(path, ray_head, log)
        code = driver.wait(timeout=540)
    output = (tmp_path / "run.log").read_text()
    assert code == 0, output[-4000:]
    assert "2 worker(s) started as Ray tasks" in output and "best by validation" in output
    trials = optuna.load_study(study_name="on_ray", storage=optuna_url).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    assert all(t.user_attrs.get("surplus") for t in trials if t not in complete)
    keys = Counter(r.data.tags["mtl.baseline_key"] for r in runs_at(url, "on_ray", "baseline"))
    assert keys and max(keys.values()) == 1, keys  # each baseline trained once
    assert not [r for r in runs_at(url, "on_ray") if r.info.status == "RUNNING"]
    (parent,) = runs_at(url, "on_ray", "study")
    assert parent.info.status == "FINISHED"  # the driver closed the study
    # both Ray tasks ran a worker on the study to its end; which of them trained how many
    # trials depends on when each started (a second Ray worker process can start late)
    assert output.count("worker done: the study has 4 finished trials") == 2, output[-3000:]
    assert 1 <= len({t.user_attrs["worker"] for t in complete}) <= 2  # host:pid of each


def test_ctrl_c_on_the_driver_stops_the_ray_workers_with_their_trials_recorded(
    tmp_path, postgres_db, server, ray_head
):
    optuna_url, url = postgres_db(), server
    path = _study(tmp_path, optuna_url, url, "stopped_on_ray", epochs=3000, trials=4)
    with open(tmp_path / "run.log", "w") as log:
        driver = _run(path, ray_head, log)
        storage = optuna.storages.RDBStorage(optuna_url)
        deadline = time.monotonic() + 240
        while True:  # both workers have a trial in flight
            try:
                running = optuna.load_study(
                    study_name="stopped_on_ray", storage=storage
                ).get_trials(states=(optuna.trial.TrialState.RUNNING,))
            except KeyError:
                running = []
            if len(running) == 2:
                break
            assert driver.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the workers did not start their trials"
            time.sleep(1)
        time.sleep(3)
        driver.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = driver.wait(timeout=180)
    output = (tmp_path / "run.log").read_text() + "\n" + _worker_logs()
    assert code == 130, output[-6000:]
    assert time.monotonic() - started < 150  # the workers stop within seconds; not a hang
    trials = optuna.load_study(study_name="stopped_on_ray", storage=optuna_url).trials
    in_flight = {t.number for t in running}  # a worker that started late may find one done
    stopped = [t for t in trials if t.number in in_flight]
    states = {t.number: (t.state.name, t.user_attrs.get("reason")) for t in stopped}
    assert len(stopped) == 2, output[-6000:]
    assert all(t.state == optuna.trial.TrialState.FAIL for t in stopped), (states, output[-6000:])
    assert all("interrupted" in t.user_attrs.get("reason", "") for t in stopped), (
        states, output[-6000:])  # fmt: skip
    others = [t for t in trials if t.number not in in_flight]  # finished before the signal
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in others), others
    assert not [r for r in runs_at(url, "stopped_on_ray") if r.info.status == "RUNNING"]


def test_an_address_where_no_head_answers_is_refused_at_once(tmp_path):
    write_study(tmp_path, small_study("no_head"))
    port = free_port()  # bound, then released: nothing listens there
    result = cli("run", "study.yaml", "--ray", f"127.0.0.1:{port}", cwd=tmp_path)
    assert_refused(result, ["nothing answers there", "ray start --head"], tmp_path)
