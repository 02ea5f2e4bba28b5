"""``sweeps ui``: the MLflow UI on a study's tracking store, bound to 127.0.0.1 by default.

Started as ``mlflow server`` with the settings measured on these machines: one worker (more
under uvicorn cost 6x latency per request) and the job runner off (it holds 10 processes and
about 2 GB otherwise).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from sweeps.spec import StudySpec


def ui_command(spec: StudySpec, host: str, port: int) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        spec.tracking,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if spec.embedded:
        command += ["--artifacts-destination", (spec.workdir_path / "artifacts").as_uri()]
    return command


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
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    print(f"MLflow UI on http://{host}:{port} (Ctrl-C stops it)", flush=True)
    # its own process group: mlflow server starts uvicorn as a child, and both must stop with us
    server = subprocess.Popen(ui_command(spec, host, port), env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_group(server)


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
