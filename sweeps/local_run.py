"""Running a study from this process, with ``workers - 1`` helper processes on this machine
(``sweeps worker`` each, sharing the study's storage): what ``sweeps run --workers N`` and
``Study.run(workers=N)`` both do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sweeps.schema import StudySpec


def worker_command(path: str | Path, trials: int | None, timeout: float | None) -> list[str]:
    """``sweeps worker`` on the study file, as a helper process (here, or in a Ray task)."""
    command = [sys.executable, "-m", "sweeps", "worker", str(path), "--quiet"]
    command += ["--trials", str(trials)] if trials else []
    command += ["--timeout", str(timeout)] if timeout else []
    return command


def run_here(
    spec: StudySpec,
    path: Path,
    trials: int | None,
    workers: int,
    timeout: float | None,
    reporter: Any,
    worker: bool = False,
) -> Any:
    """Run trials until the study has ``trials`` finished ones (see ``run_study``); with
    ``workers`` > 1, helpers started beside this process share the CPU cores and the study.
    A TERM or Ctrl-C that stops this process stops its helpers too."""
    # here, not at the top: optuna, mlflow and torch load only when a study runs
    from sweeps.runner import open_or_create, open_record, run_study

    helpers: list[subprocess.Popen] = []

    def start_helpers() -> None:
        # the study and its MLflow runs exist before the helpers join
        study, created = open_or_create(spec)
        open_record(spec, study, created, {})
        threads = max(1, (os.cpu_count() or 1) // workers)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        command = worker_command(path, trials, timeout)
        for i in range(1, workers):
            helpers.append(subprocess.Popen(command, env={**env, "MTL_WORKER_INDEX": str(i)}))
        import torch  # (torch: as above)

        torch.set_num_threads(threads)

    def wait_for_helpers() -> None:
        from sweeps.interrupts import stopping  # (as above)

        for proc in helpers:  # a TERM sent to this process alone stops its helpers too
            if stopping() and proc.poll() is None:
                proc.terminate()
        for proc in helpers:
            proc.wait()

    try:
        if workers > 1:
            start_helpers()
        return run_study(spec, trials, timeout, reporter, worker=worker, wait_for=wait_for_helpers)
    finally:
        wait_for_helpers()
