"""``sweeps run STUDY.yaml --ray ADDRESS --workers N``: the study's workers as Ray tasks on an
existing Ray cluster, scheduled by Ray with the CPUs and GPUs each asks for.

Each task runs ``sweeps worker STUDY.yaml`` as a child process of its Ray worker: the same
worker loop as on every other launcher (docker compose, Kubernetes, Slurm), against the
study's shared stores, with ``OMP_NUM_THREADS`` set to the task's CPUs and the GPU Ray gave it
(``CUDA_VISIBLE_DEVICES``). Every node needs mtl-sweeps installed and the study file (and its
data) at the same path, as Slurm does. This process creates the study and its MLflow run,
waits for the tasks, and then closes the study (the verdict, the dashboard) as ``sweeps run``
does; it trains nothing itself. Ctrl-C or SIGTERM here cancels the tasks, which stop their
workers with SIGTERM: the trials in flight are recorded as interrupted and do not count.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sweeps.errors import StudyError
from sweeps.local_run import worker_command
from sweeps.schema import StudySpec

STOP_WAIT_S = 120.0  # how long a cancelled task waits for its worker to record and exit


def _worker_task(
    path: str, trials: int | None, timeout: float | None, cpus: float, index: int
) -> dict[str, Any]:
    """One worker, run inside a Ray task: ``sweeps worker`` as a child process."""
    threads = str(max(1, int(cpus)))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "MTL_WORKER_INDEX": str(index)}  # fmt: skip
    proc = subprocess.Popen(
        worker_command(path, trials, timeout), env=env, cwd=str(Path(path).parent)
    )
    import ray  # (inside a Ray task: Ray is loaded)

    context = ray.get_runtime_context()
    try:  # Ray's cancel raises KeyboardInterrupt here, or only sets the task's flag: under
        # load the interrupt never came in 3 tries of 3 (Ray 2.60), so the flag is polled too
        while (code := proc.poll()) is None and not context.is_canceled():
            time.sleep(0.5)
    except KeyboardInterrupt:
        code = None
    if code is None:  # ray.cancel: stop the worker as a TERM would, then report it
        code = _stop(proc, index)
    return {"index": index, "code": code, "host": socket.gethostname()}


def _stop(proc: subprocess.Popen, index: int) -> int:
    """TERM the worker and wait for it to record its trial and exit (KILL after
    ``STOP_WAIT_S``); an interrupt from the same cancel, arriving late, cuts neither the TERM
    nor the wait."""
    deadline = time.monotonic() + STOP_WAIT_S
    sent = False
    while True:
        try:
            if not sent:
                print(f"Ray task {index}: cancelled; stopping its worker (pid {proc.pid})",
                      file=sys.stderr, flush=True)  # fmt: skip
                proc.terminate()
                sent = True
            code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            print(f"Ray task {index}: its worker ended with exit status {code}",
                  file=sys.stderr, flush=True)  # fmt: skip
            return code
        except KeyboardInterrupt:
            if proc.returncode is not None:
                return proc.returncode
            continue
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _wait_recorded(study: Any, since: datetime, deadline: float) -> None:
    """Until no trial started since ``since`` (by this run's workers) is RUNNING, or the
    deadline: the driver returns once its workers' trials are recorded, whatever Ray says of
    the cancelled tasks, before Ray's shutdown ends the job. Another launcher's worker started
    since then is waited for too, within the same deadline."""
    # here, not at the top: optuna loads only when a study runs
    from optuna.trial import TrialState

    while time.monotonic() < deadline:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not [t for t in trials if t.datetime_start and t.datetime_start >= since]:
            return
        time.sleep(0.5)


def _check_answers(address: str) -> None:
    """A HOST:PORT address where nothing listens is refused at once: Ray's own client retries
    a missing head for minutes."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise StudyError(f"--ray {address}: give the head's HOST:PORT (its GCS port), or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            return
    except OSError as exc:
        raise StudyError(
            f"--ray {address}: nothing answers there ({exc.strerror or exc}); start a head with "
            "`ray start --head` and give its address"
        ) from None


def run_on_ray(
    spec: StudySpec,
    path: Path,
    address: str,
    workers: int,
    cpus: float,
    gpus: float,
    trials: int | None,
    timeout: float | None,
    say: Any,
) -> int:
    """Start ``workers`` Ray tasks of ``sweeps worker`` and wait for them; 0 when every one
    ended cleanly, 1 otherwise. Raises StudyError when Ray is missing or the cluster is not
    reached."""
    try:
        import ray  # an optional extra, loaded only for --ray
    except ImportError:
        raise StudyError(
            "--ray: Ray is not installed here; pip install 'mtl-sweeps[ray]'"
        ) from None
    # here, not at the top: optuna and mlflow load only when a study runs
    from sweeps.runner import open_or_create, open_record

    _check_answers(address)
    try:  # the cluster first: a refused address leaves no study run behind
        ray.init(address=address, logging_level="ERROR", log_to_driver=True)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError: Ray's own words
        raise StudyError(
            f"--ray {address}: cannot join the Ray cluster ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no answer'})"
        ) from None
    try:
        # the study and its MLflow runs exist before the workers join
        study, created = open_or_create(spec)
        since = datetime.now()  # (Optuna's trial times are local, naive)
        tracker, parent = open_record(spec, study, created, {})
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_worker_task)
        pending = [
            task.remote(str(path.resolve()), trials, timeout, cpus, i + 1) for i in range(workers)
        ]
        each = f"{cpus:g} CPU" + (f", {gpus:g} GPU" if gpus else "")
        say(f"{workers} worker(s) started as Ray tasks on {address} ({each} each)")
        done: list[dict[str, Any]] = []
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                done += [ray.get(ref) for ref in ready]
        except BaseException as exc:  # Ctrl-C or TERM here, or Ray failing under us
            interrupted = isinstance(exc, KeyboardInterrupt)
            why = "stopping" if interrupted else f"Ray failed ({type(exc).__name__})"
            say(f"{why}: the Ray tasks stop their workers (the trials in flight are recorded)")
            for ref in pending:
                ray.cancel(ref, force=False)
            deadline = time.monotonic() + STOP_WAIT_S + 10
            while pending and time.monotonic() < deadline:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            _wait_recorded(study, since, deadline)
            # as an interrupted `sweeps run` leaves it; a later run resumes the study
            tracker.end_run(parent, "KILLED" if interrupted else "FAILED")
            raise
        failed = [d for d in done if d["code"] != 0]
        for d in failed:
            say(f"Ray worker {d['index']} on {d['host']} ended with exit status {d['code']}")
        return 1 if failed else 0
    finally:
        ray.shutdown()


def study_done(spec: StudySpec, trials: int | None) -> tuple[int, int]:
    """The study's finished trials and its target (``trials``, else ``search.n_trials``)."""
    # here, not at the top: optuna loads only when a study runs
    from sweeps.runner import open_study
    from sweeps.space import grid_size  # (as above)
    from sweeps.study_state import count_finished  # (as above)

    target = trials or spec.search.n_trials
    if spec.search.sampler == "grid":
        target = min(target, grid_size(spec))
    return count_finished(open_study(spec)), target
