"""The shared set-up: Optuna storage and MLflow tracking on PostgreSQL, through a real MLflow
server process; and `sweeps ui` serving a study's embedded store on 127.0.0.1."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from sweeps.server import stop_group, wait_healthy
from tests.helpers import browse, cli, free_port, small_study, sweeps, write_study


def start_mlflow_server(backend: str, artifacts: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(artifacts.parent / f"mlflow-server-{port}.log", "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                backend,
                "--artifacts-destination",
                artifacts.as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,  # a file: a pipe nobody reads fills and stops the server (see _Output)
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # mlflow server starts uvicorn: stop both as a group
        )
    proc.log_path = log.name  # where wait_healthy reads why it exited
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/health", proc)
    except RuntimeError:
        stop_group(proc)  # uvicorn too, not only the leader
        raise
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    stop_group(proc)


def port_closed(port: int, limit: float = 15) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.3)
    return False


@pytest.mark.postgres
def test_study_on_postgres_through_mlflow_server(tmp_path, postgres_db):
    optuna_url, mlflow_backend = postgres_db(), postgres_db()
    server, url = start_mlflow_server(mlflow_backend, tmp_path / "artifacts")
    try:
        study = small_study(
            "shared",
            tracking_uri=url,
            storage=optuna_url,
            training={"epochs": 1},
            search={
                "n_trials": 2,
                "sampler": "random",
                "pruner": "none",
                "space": {"tasks": {"subsets": {"min_size": 2}}},
            },
        )
        write_study(tmp_path, study)
        result = sweeps("run", "study.yaml", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "View run" not in result.stdout  # MLflow's per-run URL lines are kept out
        trials = optuna.load_study(study_name="shared", storage=optuna_url).trials
        assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
        client = MlflowClient(url)
        exp = client.get_experiment_by_name("shared").experiment_id
        runs = client.search_runs([exp], "tags.`mtl.kind` = 'trial'")
        assert sorted(r.data.tags["mtl.trial_number"] for r in runs) == ["0", "1"]
        for run in runs:
            tasks = run.data.tags["mtl.tasks"].split(",")
            assert {f"delta/{t}" for t in tasks} <= set(run.data.metrics)
            assert "delta_m" in run.data.metrics
        (parent,) = client.search_runs([exp], "tags.`mtl.kind` = 'study'")
        assert "dashboard.html" in [a.path for a in client.list_artifacts(parent.info.run_id)]
        # the same records are in PostgreSQL itself, not in a local file
        assert not (tmp_path / ".sweeps" / "mlflow.db").exists()
        assert not (tmp_path / ".sweeps" / "optuna.db").exists()
        import psycopg

        with psycopg.connect(mlflow_backend) as conn:
            (count,) = conn.execute("select count(*) from runs").fetchone()
        assert count >= 1 + 2  # the study run and two trials, plus baselines
    finally:
        stop(server)


class _Output:
    """Everything a process prints, read as it comes by a thread of its own. A pipe that nobody
    reads fills at 64 KB and blocks its writer: the MLflow server under `sweeps ui` logs every
    request, and once the test had its ready line it stopped answering mid-test (Chromium's
    net log named the page and its scripts as sent, unanswered; 3 full-suite runs of 7 hung).

    Reads the pipe's file descriptor itself: a buffered reader's ``readline`` pulls lines into
    its buffer where ``select`` cannot see them (a ready line was missed so)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self._data = bytearray()
        self._lock = threading.Lock()
        # a descriptor of its own: the reader may outlive proc's (a server left holding the pipe)
        self._thread = threading.Thread(target=self._read, args=(os.dup(proc.stdout.fileno()),))
        self._thread.daemon = True
        self._thread.start()

    def _read(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 65536):
                with self._lock:
                    self._data += chunk
        finally:
            os.close(fd)

    def text(self) -> str:
        with self._lock:
            return self._data.decode(errors="replace")

    def line_with(self, text: str, timeout: float = 240) -> str:
        """The first whole line that holds ``text``; fails if the output ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = not self._thread.is_alive()
            for line in self.text().split("\n")[:-1]:
                if text in line:
                    return line
            if ended:
                break
            time.sleep(0.1)
        pytest.fail(f"no line with {text!r}: {self.text()[-3000:]}")


@pytest.fixture(scope="module")
def ui_study(tmp_path_factory) -> Path:
    """A finished one-trial study for `sweeps ui` to serve (run in process: what is tested is
    the server `sweeps ui` starts, a real process)."""
    folder = tmp_path_factory.mktemp("ui")
    write_study(folder, small_study("uitest", training={"epochs": 1}))
    result = cli("run", "study.yaml", "--trials", "1", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def test_ui_that_cannot_start_says_so_and_exits_1(ui_study):
    tmp_path = ui_study
    with socket.socket() as taken:  # the port is someone else's
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = sweeps("ui", "study.yaml", "--port", str(port), cwd=tmp_path, timeout=300)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "error: the MLflow UI did not start: it exited with" in result.stderr
    assert "ready on" not in result.stdout


def test_ui_serves_the_embedded_store_on_localhost(ui_study):
    tmp_path = ui_study
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "ui", "study.yaml", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # the URL is printed once /health answers (it used to be printed at start, and
        # refused for half a minute): at that line, one request is answered
        output = _Output(proc)  # read to the end: a full pipe stops the server
        ready = output.line_with(f"MLflow UI ready on http://127.0.0.1:{port}")
        assert "Ctrl-C stops it" in ready
        study_url = ready.split(" ready on ", 1)[1].split(" after ", 1)[0]
        assert study_url.endswith("#/experiments/1?workflowType=machine_learning"), study_url
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        query = (
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=uitest"
        )
        with urllib.request.urlopen(query, timeout=10) as response:
            assert b'"uitest"' in response.read()
        # in a real browser, the trial's run page lists its model (the Models column's source)
        tracking = f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}"
        client = MlflowClient(tracking)
        experiment = client.get_experiment_by_name("uitest").experiment_id
        (trial,) = client.search_runs([experiment], "tags.`mtl.kind` = 'trial'")
        page = f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs/{trial.info.run_id}"
        dom = browse(page, "--dump-dom").stdout
        listed = dom.split('data-testid="key-value-Logged models"', 1)
        assert len(listed) == 2 and "pyfunc" in listed[1][:3000], "no logged model on the page"
        # the run is named for what it is
        assert trial.info.run_name.startswith("trial 0 · amazon+imdb+yelp · ")
        assert trial.info.run_name in dom
        # the page `sweeps ui` prints opens the study as training runs: the runs table and
        # the model registry, not the GenAI overview of traces, tokens and costs
        study_page = browse(study_url, "--dump-dom").stdout
        words = re.sub(r"<(style|script|svg)[^>]*>.*?</\1>", " ", study_page, flags=re.S)
        words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", words))
        assert "Model registry" in words and "study uitest" in words, words[:3000]
        assert "Token Usage" not in words and "Cost Breakdown" not in words
        # the study run's page shows its verdict: the description and the summary metrics
        (study_run,) = client.search_runs([experiment], "tags.`mtl.kind` = 'study'")
        study_dom = browse(
            f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs/{study_run.info.run_id}",
            "--dump-dom",
        ).stdout
        for shown in ("summary/winner_trial", "summary/valid_delta_m", "summary/trials_complete",
                      "Winner, chosen on validation: trial 0"):  # fmt: skip
            assert shown in study_dom, shown
        # stopping `sweeps ui` (SIGTERM to it alone) stops the server it started
        proc.terminate()
        proc.wait(timeout=30)
        assert port_closed(port), "the MLflow server outlived `sweeps ui`"
    finally:
        stop_group(proc)
