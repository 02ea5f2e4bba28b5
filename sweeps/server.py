"""``sweeps ui``: the MLflow UI on a study's tracking store, bound to 127.0.0.1 by default.

Started as ``mlflow server`` with the settings measured on these machines: one worker (more
under uvicorn cost 6x latency per request) and the job runner off (it holds 10 processes and
about 2 GB otherwise).
"""

from __future__ import annotations

import os
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
    try:
        return subprocess.call(ui_command(spec, host, port), env=env)
    except KeyboardInterrupt:
        return 0
