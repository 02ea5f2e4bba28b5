"""``sweeps ui`` (the MLflow UI on a study's tracking store) and ``sweeps server`` (a shared
MLflow tracking server on PostgreSQL for a team), bound to 127.0.0.1 unless told otherwise.

Started as ``mlflow server`` with the settings measured on these machines: one worker (more
under uvicorn cost 6x latency per request) and the job runner off (it holds 10 processes and
about 2 GB otherwise).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sweeps.masking import mask
from sweeps.schema import StudySpec


def server_command(
    host: str,
    port: int,
    artifacts: str | None = None,
    allowed_hosts: str | None = None,
) -> list[str]:
    """``mlflow server``'s command line. The backend store goes in the environment
    (``MLFLOW_BACKEND_STORE_URI``, see ``_serve``), so that its password is not in ``ps``."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if artifacts:
        command += ["--artifacts-destination", artifacts]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    return command


def launch_tracking_server(
    backend: str, artifacts: Path, port: int, host: str = "127.0.0.1", wait_s: float = 90.0
) -> tuple[subprocess.Popen, str]:
    """Start ``sweeps server`` in the background (its own process group: stop it with
    ``stop_group``) and wait until ``/health`` answers; returns the process and its URL. The
    server's output goes to ``mlflow-server-PORT.log`` beside ``artifacts``: a pipe that
    nobody reads fills up after a few hundred requests and the server hangs on its next line
    (seen in the soak benchmark)."""
    artifacts.parent.mkdir(parents=True, exist_ok=True)
    log_path = artifacts.parent / f"mlflow-server-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweeps", "server",
             "--artifacts-destination", str(artifacts), "--host", host, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_BACKEND_STORE_URI": backend},
        )  # fmt: skip
    proc.log_path = log_path  # type: ignore[attr-defined]
    url = f"http://{host}:{port}"
    try:
        wait_healthy(f"{url}/health", proc, wait_s)
    except RuntimeError:
        stop_group(proc)
        raise
    return proc, url


def wait_healthy(url: str, proc: subprocess.Popen, wait_s: float = 90.0) -> None:
    """Until ``url`` answers 200; raises ``RuntimeError`` if ``proc`` exits or time runs out
    (an MLflow server takes 6-8 s to start here, up to 27 s on a busy machine)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_path = getattr(proc, "log_path", None)
            if log_path is not None:
                output = Path(log_path).read_text(errors="replace")[-2000:]
            else:
                output = proc.stdout.read()[-2000:] if proc.stdout else ""
            raise RuntimeError(f"the server exited with {proc.returncode}: {output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} was not healthy after {wait_s:.0f} s")


def ui_command(spec: StudySpec, host: str, port: int) -> list[str]:
    artifacts = (spec.workdir_path / "artifacts").as_uri() if spec.embedded else None
    return server_command(host, port, artifacts)


def serve_tracking(
    backend: str, artifacts: str, host: str, port: int, allowed_hosts: str | None
) -> int:
    """``sweeps server``: the team's tracking server. Artifacts go to ``artifacts`` (a folder
    or an object-store URI); runs and metrics to ``backend`` (PostgreSQL, or SQLite)."""
    if "://" not in artifacts:
        folder = Path(artifacts).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        artifacts = folder.as_uri()
    what = f"runs in {mask(backend)}, artifacts in {artifacts}"
    command = server_command(host, port, artifacts, allowed_hosts)
    return _serve(command, backend, host, port, f"MLflow tracking server ({what})")


def serve_ui(spec: StudySpec, host: str, port: int) -> int:
    if spec.tracking.startswith(("http://", "https://")):
        print(f"this study's tracking server is {spec.tracking}: open it in a browser")
        return 0
    if spec.embedded and not (spec.workdir_path / "mlflow.db").exists():
        print(
            f"no runs yet: {spec.workdir_path / 'mlflow.db'} does not exist (run `sweeps run` first)",
            file=sys.stderr,
        )
        return 2
    return _serve(
        ui_command(spec, host, port), spec.tracking, host, port, "MLflow UI", _study_page(spec)
    )


def _study_page(spec: StudySpec) -> str:
    """The study's experiment in the UI's model-training view: MLflow 3.17 follows its own
    workflow selector, GenAI by default, over the experiment's `mlflow.experimentKind` tag."""
    from sweeps.sqlite_stores import mlflow_client  # (it loads mlflow)

    try:
        experiment = mlflow_client(spec.tracking).get_experiment_by_name(spec.name)
    except Exception:  # the page is a convenience: the server itself says what is wrong
        experiment = None
    where = f"#/experiments/{experiment.experiment_id}" if experiment else "#/experiments"
    return f"/{where}?workflowType=machine_learning"


READY_WAIT_S = 180.0  # an MLflow server answered 35-45 s after start on a busy machine


def _serve(
    command: list[str], backend: str, host: str, port: int, what: str, page: str = ""
) -> int:
    """Run the server until Ctrl-C or SIGTERM; its URL is printed once ``/health`` answers
    (a spinner until then: the URL printed at start was refused for half a minute)."""
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": backend,
    }
    # its own process group: mlflow server starts uvicorn as a child, and both must stop with us
    server = subprocess.Popen(command, env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    url = f"http://{_bracketed(host)}:{port}"
    try:
        from rich.console import Console  # only for the spinner

        started = time.monotonic()
        with Console(stderr=True, highlight=False).status(f"starting the {what} on {url} ..."):
            problem = _ready(server, f"http://{_bracketed(_reachable(host))}:{port}/health")
        if problem is not None:
            print(f"error: the {what} did not start: {problem}", file=sys.stderr, flush=True)
            return 1
        took = time.monotonic() - started
        print(f"{what} ready on {url}{page} after {took:.0f} s (Ctrl-C stops it)", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_group(server)


def _ready(server: subprocess.Popen, health: str) -> str | None:
    """None once ``health`` answers 200; else why not (the server exited, or never answered)."""
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return f"it exited with {server.returncode} (its output is above)"
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    return None
        except OSError:
            time.sleep(0.3)
    return f"{health} did not answer within {READY_WAIT_S:.0f} s"


def _reachable(host: str) -> str:
    """Where this machine reaches a server listening on ``host``: for all interfaces (the
    unspecified address of either family, or none), the loopback of that family."""
    try:
        address = ipaddress.ip_address(host.strip("[]")) if host else None
    except ValueError:  # a host name
        return host
    if address is None or address.is_unspecified:
        return "::1" if address is not None and address.version == 6 else "127.0.0.1"
    return host


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process started with ``start_new_session`` and everything it started."""
    if proc.poll() is None and os.getpgid(proc.pid) != proc.pid:
        raise ValueError("stop_group needs a process started with start_new_session=True")
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; its children may not be
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
