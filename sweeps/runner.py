"""Runs a study: opens (or resumes) the Optuna study and its MLflow record, then asks, trains
and tells trials until the study holds enough finished ones."""

from __future__ import annotations

import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from sweeps.baselines import Baselines
from sweeps.progress import Reporter
from sweeps.spec import StudySpec
from sweeps.study_data import load_study_data
from sweeps.tracking import Tracker
from sweeps.trial import TrialContext, TrialOutcome, run_trial

FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


@dataclass
class RunSummary:
    study: str
    finished: int
    outcomes: list[TrialOutcome] = field(default_factory=list)
    best_number: int | None = None
    best_value: float | None = None
    dashboard: Path | None = None
    stopped_by_timeout: bool = False


def make_sampler(spec: StudySpec, offset: int, worker: bool = False) -> optuna.samplers.BaseSampler:
    # A resumed study must not replay the first trials' draws, nor a worker another's: the seed
    # moves with the trials already there and with the worker.
    seed = (spec.seed + offset + 100_003 * worker_index(worker)) % 2**32
    if spec.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def worker_index(worker: bool = False) -> int:
    """0 for the process that runs the study; `--workers` numbers its helpers 1, 2, ...
    (``MTL_WORKER_INDEX``); any other worker takes a number from its host name and process id,
    so replicas in containers (all process 1) still draw differently."""
    if "MTL_WORKER_INDEX" in os.environ:
        return int(os.environ["MTL_WORKER_INDEX"])
    if not worker:
        return 0
    return 1 + zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_000


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    if spec.search.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)


def open_study(spec: StudySpec, worker: bool = False) -> optuna.Study:
    if spec.storage is None:
        spec.workdir_path.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(spec.optuna_storage)
    try:
        existing = optuna.load_study(study_name=spec.name, storage=storage).trials
        offset = len(existing)
    except KeyError:
        offset = 0
    return optuna.create_study(
        study_name=spec.name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(spec, offset, worker),
        pruner=make_pruner(spec),
    )


def open_tracker(spec: StudySpec) -> Tracker:
    artifacts = spec.workdir_path / "artifacts" if spec.embedded else None
    if spec.embedded:
        spec.workdir_path.mkdir(parents=True, exist_ok=True)
    return Tracker(spec.tracking, spec.name, artifacts)


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def best_of(study: optuna.Study) -> tuple[int | None, float | None]:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None, None
    best = max(complete, key=lambda t: t.value)
    return best.number, best.value


def study_params(spec: StudySpec) -> dict[str, object]:
    return {
        "study.tasks": ",".join(spec.task_names),
        "search.sampler": spec.search.sampler,
        "search.pruner": spec.search.pruner,
        "search.objective": spec.search.objective,
        "search.space": ",".join(sorted(spec.search.space)) or "(none)",
        "seed": spec.seed,
    }


def run_study(
    spec: StudySpec,
    n_trials: int | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
    dashboard_out: Path | None = None,
    worker: bool = False,
    wait_for: Callable[[], None] | None = None,
) -> RunSummary:
    """Run trials until the study has ``n_trials`` finished ones (default ``search.n_trials``)
    or ``timeout`` seconds pass; then write the dashboard and log it on the study run. A
    ``worker`` only runs trials: the process that started the study closes it, after
    ``wait_for`` returns (its local helper workers are done)."""
    reporter = reporter or Reporter()
    target = n_trials or spec.search.n_trials
    timeout = timeout if timeout is not None else spec.search.timeout
    data = load_study_data(spec)
    study = open_study(spec, worker)
    tracker = open_tracker(spec)
    parent = tracker.study_run(spec.name, study_params(spec), reopen=not worker)
    study.set_user_attr("mlflow_parent_run_id", parent)
    ctx = TrialContext(
        spec, study, data, tracker, parent, Baselines(spec, data, tracker, parent), reporter
    )
    summary = RunSummary(spec.name, count_finished(study))
    deadline = time.monotonic() + timeout if timeout else None
    reporter.start(spec.name, summary.finished, max(target, summary.finished))
    status = "FINISHED"
    try:
        while count_finished(study) < target:
            if deadline is not None and time.monotonic() >= deadline:
                summary.stopped_by_timeout = True
                break
            outcome = run_trial(ctx, study.ask())
            summary.outcomes.append(outcome)
            _, best = best_of(study)
            reporter.trial_finished(
                outcome.number, outcome.state, outcome.value, best, outcome.note
            )
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        reporter.stop()
        if wait_for is not None:
            wait_for()
        summary.finished = count_finished(study)
        summary.best_number, summary.best_value = best_of(study)
        if not worker:
            summary.dashboard = _write_dashboard(spec, tracker, parent, dashboard_out)
            tracker.end_run(parent, status)
    return summary


def _write_dashboard(
    spec: StudySpec, tracker: Tracker, parent: str, out: Path | None
) -> Path | None:
    path = (out or spec.workdir_path) / "dashboard.html"
    try:
        from dashboards import build_dashboard

        build_dashboard(spec.tracking, spec.name, path)
        tracker.log_artifact(parent, path)
    except Exception as exc:  # the record of the trials matters more than the page
        import sys

        print(f"warning: the dashboard could not be written: {exc}", file=sys.stderr)
        return None
    return path
