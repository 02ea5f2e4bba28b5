"""Runs a study: opens (or resumes) the Optuna study and its MLflow record, then runs trials
until the study holds enough finished ones.

Counting: a trial counts once it is COMPLETE, PRUNED or FAILED by its own error. A trial whose
worker died (no heartbeat for ``2 x search.heartbeat_s``) is failed by Optuna and retried as a
new trial with the same parameters (``search.retries`` times at most); the dead one does not
count, so no trial is counted twice. A worker never starts a trial that would take the study
past its target: when the trials in flight elsewhere are enough, it waits for them (and takes
over their retries if they die). Two workers asking for the last trial at the same moment are
settled by trial number: the later one is failed at once as surplus, with no MLflow run.

The process that sees the study complete with no trial in flight confirms the winners, closes
the study run and writes the verdict, whether it is ``sweeps run`` or a ``sweeps worker``; the
command then writes the dashboard (``sweeps.cli``: this module imports no dashboard code).
"""

from __future__ import annotations

import os
import random
import socket
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from sweeps import record
from sweeps.baselines import Baselines
from sweeps.confirm import confirm_name, run_confirm
from sweeps.errors import StudyError
from sweeps.interrupts import raise_if_stopped, raise_pending, stopping
from sweeps.masking import mask
from sweeps.optuna_storage import disconnected, make_storage
from sweeps.parent_run import PENDING, creating, parent_run, publish_wait
from sweeps.progress import Reporter
from sweeps.report import write_report
from sweeps.resume_checks import check_resumable
from sweeps.schema import StudySpec
from sweeps.search_registry import PRUNERS, SAMPLERS
from sweeps.space import grid_size
from sweeps.store_faults import StoreUnwritable, unwritable
from sweeps.study_data import load_study_data
from sweeps.study_state import best_of, count_finished, counts, pareto_front
from sweeps.tracking import Tracker, open_tracker
from sweeps.trial import TrialContext, TrialOutcome, run_trial

WAIT_POLL_S = 1.0


@dataclass
class RunSummary:
    study: str
    finished: int
    outcomes: list[TrialOutcome] = field(default_factory=list)
    best_number: int | None = None
    best_value: float | None = None
    pareto: list[int] = field(default_factory=list)
    dashboard: Path | None = None
    report: Path | None = None
    stopped_by_timeout: bool = False
    closed: bool = False  # this process closed the study run
    parent_run: str = ""  # the study's MLflow run
    tracker: Tracker | None = field(default=None, repr=False)
    confirmed: list = field(default_factory=list)  # sweeps.confirm.ConfirmOutcome of this process


def worker_index(worker: bool = False) -> int:
    """0 for the process that runs the study; `--workers` numbers its helpers 1, 2, ...
    (``MTL_WORKER_INDEX``); any other worker takes a number from its host name and process id,
    so replicas in containers (all process 1) still draw differently."""
    if "MTL_WORKER_INDEX" in os.environ:
        return int(os.environ["MTL_WORKER_INDEX"])
    if not worker:
        return 0
    return 1 + zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_000


def make_sampler(spec: StudySpec, offset: int, worker: bool = False) -> optuna.samplers.BaseSampler:
    """The study's sampler (``sweeps.search_registry``). A resumed study must not replay the
    first trials' draws, nor a worker another's: the seed moves with the trials already there
    and with the worker."""
    seed = (spec.seed + offset + 100_003 * worker_index(worker)) % 2**32
    return SAMPLERS.entry(spec.search.sampler).load()(spec, seed)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The study's pruner (``sweeps.search_registry``); none for a multi-objective study."""
    return PRUNERS.entry(spec.search.effective_pruner).load()(spec)


def open_study(spec: StudySpec, worker: bool = False) -> optuna.Study:
    """Create or load the study (see ``open_or_create``)."""
    return open_or_create(spec, worker)[0]


def open_or_create(spec: StudySpec, worker: bool = False) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (its creator makes its MLflow runs:
    ``sweeps.parent_run``). Workers that start a fresh shared storage together race to
    create its tables and the study (optuna#1092): the loser tries again."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the reporter tells what happened
    for attempt in range(6):
        try:
            return _open_study(spec, worker)
        except StudyError:
            raise
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.DuplicatedStudyError) as exc:
            # an unanswered database was already retried for search.store_retry_s by the
            # storage: trying again here would wait six times as long
            if attempt == 5 or disconnected(exc):
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def _open_study(spec: StudySpec, worker: bool) -> tuple[optuna.Study, bool]:
    storage = make_storage(spec)
    try:
        existing = optuna.load_study(study_name=spec.name, storage=storage).trials
        offset, joined = len(existing), True
    except KeyError:
        offset, joined = 0, False
    directions = ["maximize"] * (len(spec.tasks) if spec.search.multi_objective else 1)

    def create(joined: bool) -> optuna.Study:
        return optuna.create_study(
            study_name=spec.name,
            storage=storage,
            load_if_exists=joined,  # else: the unique name makes one caller its creator
            directions=directions,
            # a `sweeps run` that finds the study there draws as a worker does, with a seed
            # of its process: two runs started on one study (or one that lost the race to
            # create it) drew the same parameters for their first trials; the run that
            # creates a study keeps the study's seed, so a study run from scratch is
            # reproducible
            sampler=make_sampler(spec, offset, worker or joined),
            pruner=make_pruner(spec),
        )

    created = not joined
    try:
        study = create(joined)
    except optuna.exceptions.DuplicatedStudyError:  # another process created it just now
        study, created = create(True), False
    with creating(study, created):  # (sweeps.parent_run: joiners wait for its creator)
        if created:
            study.set_user_attr(PENDING, time.time())
        _check_objective(spec, study, directions)
    return study, created


def _check_objective(spec: StudySpec, study: optuna.Study, directions: list[str]) -> None:
    if len(study.directions) != len(directions):
        had = "per_task" if len(study.directions) > 1 else "delta_m"
        where = mask(spec.storage) if spec.storage else "the workdir"
        raise StudyError(
            f"search.objective: study {spec.name!r} already exists in {where}"
            f" with objective {had!r}; give the study a new name to change the objective"
        )
    names = objective_names(spec)
    if study.metric_names != names:  # optuna-dashboard showed "Objective 0"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


def objective_names(spec: StudySpec) -> list[str]:
    """What Optuna (and optuna-dashboard) call the objectives: the validation Δm, or each
    task's validation Δ in the order ``run_trial`` returns them, in % against the baselines."""
    if spec.search.multi_objective:
        return [f"valid Δ {task} (%)" for task in spec.task_names]
    return ["valid Δm (%)"]


def _stop_if_unwritable(spec: StudySpec, tracker: Tracker, exc: BaseException) -> None:
    """A full disk or a read-only file system under a store: one line that says so (Optuna
    hides the cause behind its "Should not reach" when it cannot record a trial's state)."""
    if tracker.client.down is not None:
        raise tracker.client.down from None
    cause = unwritable(exc)
    if cause is not None:
        raise StoreUnwritable(
            f"the Optuna storage {mask(spec.optuna_storage)} cannot be written ({cause}): free "
            "space or make it writable, then run the study again; trials completed so far "
            "keep their record"
        ) from None


def open_record(
    spec: StudySpec, study: optuna.Study, created: bool, fingerprints: dict[str, str]
) -> tuple[Tracker, str]:
    """The study's tracker and its parent run (``sweeps.parent_run``), once the resume checks
    pass (``fingerprints``: the data's; empty where a launcher has not read it, which leaves
    the check of a lost Optuna storage)."""
    with creating(study, created):  # a failure here: the next process does not wait for it
        tracker = open_tracker(spec)
        check_resumable(spec, study, tracker, fingerprints)  # same data, trials not lost
        wait_s = publish_wait(spec.search.store_retry_s)
        return tracker, parent_run(spec.name, study, tracker, created, study_params(spec), wait_s)


def study_params(spec: StudySpec) -> dict[str, object]:
    return {
        "study.tasks": ",".join(spec.task_names),
        "search.sampler": spec.search.sampler,
        "search.pruner": spec.search.effective_pruner,
        "search.objective": spec.search.objective,
        "search.space": ",".join(sorted(spec.search.space)) or "(none)",
        "training.seeds": spec.training.seeds,
        "training.select": spec.training.select,
        "search.confirm": (
            f"top {spec.search.confirm.top}, {spec.search.confirm.seeds} seeds"
            if spec.search.confirms and spec.search.confirm
            else "off"
        ),
        "search.pruner_warmup": spec.pruner_warmup,
        "baselines.mode": spec.baselines.mode,
        "seed": spec.seed,
    }


class Janitor:
    """Closes MLflow runs left RUNNING by trials whose worker died, and keeps the
    ``mtl.pareto`` tags of a multi-objective study in step with its front."""

    def __init__(self, spec: StudySpec, study: optuna.Study, tracker: Tracker) -> None:
        self.spec, self.study, self.tracker = spec, study, tracker
        self._pareto: dict[str, bool] = {}
        self._confirm: optuna.Study | None = None

    def is_dead(self, ref: str | int) -> bool:
        """Whether the trial ``ref`` (a search trial's number, or ``confirm:N``) has ended."""
        self.fail_stale()
        trial = self._trial(ref)
        return trial is None or trial.state not in (TrialState.RUNNING, TrialState.WAITING)

    def fail_stale(self) -> None:
        optuna.storages.fail_stale_trials(self.study)
        confirm = self._confirm_study()
        if confirm is not None:
            optuna.storages.fail_stale_trials(confirm)

    def _confirm_study(self) -> optuna.Study | None:
        """The study's confirm trials (``sweeps.confirm``), once there are any."""
        if self._confirm is None and self.spec.search.confirms:
            try:
                self._confirm = optuna.load_study(
                    study_name=confirm_name(self.spec), storage=make_storage(self.spec)
                )
            except KeyError:
                return None
        return self._confirm

    def close_dead_runs(self) -> int:
        """Runs of this study still RUNNING whose trial is no longer running: closed FAILED."""
        runs = self.tracker.search(record.where({record.STUDY: self.spec.name}, "RUNNING"))
        states: dict[str, FrozenTrial] = {
            str(t.number): t for t in self.study.get_trials(deepcopy=False)
        }
        confirm = self._confirm_study()
        if confirm is not None:
            states.update({f"confirm:{t.number}": t for t in confirm.get_trials(deepcopy=False)})
        retried = {}  # the dead trial's ref -> its retry's, within the same study
        for ref, t in states.items():
            dead = RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
            if dead is not None:
                prefix = ref.rsplit(":", 1)[0] + ":" if ":" in ref else ""
                retried[f"{prefix}{dead}"] = ref
        closed = 0
        for run in runs:
            tags = run.data.tags
            if tags.get(record.KIND) == record.STUDY_RUN:
                continue
            number = tags.get(record.TRIAL_NUMBER) or tags.get(record.TRAINED_IN_TRIAL)
            if tags.get(record.KIND) == record.CONFIRM:
                number = f"confirm:{tags.get(record.CONFIRM_TRIAL)}"
            if number is None:
                continue
            trial = states.get(number)
            if trial is not None and trial.state in (TrialState.RUNNING, TrialState.WAITING):
                continue
            why = f"its worker stopped (no heartbeat) during trial {number}"
            if number in retried:
                why += f"; retried as trial {retried[number]}"
            self.tracker.end_run(
                run.info.run_id, "FAILED", {record.STATE: "FAIL", record.ERROR: why}
            )
            closed += 1
        return closed

    def tag_pareto(self, every_run: bool = False) -> None:
        """Set ``mtl.pareto`` where the front changed (``every_run``: on every complete trial,
        as the study ends, since other workers may have moved the front)."""
        if every_run:
            self._pareto.clear()
        if not self.spec.search.multi_objective:
            return
        front = set(pareto_front(self.study))
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            run_id = t.user_attrs.get("mlflow_run_id")
            if not run_id:
                continue
            on_front = t.number in front
            if self._pareto.get(run_id) != on_front:
                self.tracker.log(run_id, tags={record.PARETO: str(on_front).lower()})
                self._pareto[run_id] = on_front

    def _trial(self, ref: str | int) -> FrozenTrial | None:
        study, text = self.study, str(ref)
        if text.startswith("confirm:"):
            study, text = self._confirm_study(), text.removeprefix("confirm:")
        for t in study.get_trials(deepcopy=False) if study is not None else []:
            if str(t.number) == text:
                return t
        return None


def run_study(
    spec: StudySpec,
    n_trials: int | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
    worker: bool = False,
    wait_for: Callable[[], None] | None = None,
) -> RunSummary:
    """Run trials until the study has ``n_trials`` finished ones (default ``search.n_trials``)
    or ``timeout`` seconds pass; then, if the study is complete, close its run and write the
    verdict. ``wait_for`` returns once this process's local helper workers are done."""
    reporter = reporter or Reporter()
    target = n_trials or spec.search.n_trials
    if spec.search.sampler == "grid":
        target = min(target, grid_size(spec))
    timeout = timeout if timeout is not None else spec.search.timeout
    data = load_study_data(spec)
    study, created = open_or_create(spec, worker)
    tracker, parent = open_record(spec, study, created, data.fingerprints)
    janitor = Janitor(spec, study, tracker)
    janitor.fail_stale()
    janitor.close_dead_runs()
    ctx = TrialContext(
        spec,
        study,
        data,
        tracker,
        parent,
        Baselines(spec, data, tracker, parent, janitor.is_dead),
        reporter,
        target=target,
        counts=counts,
    )
    summary = RunSummary(spec.name, count_finished(study), parent_run=parent, tracker=tracker)
    confirmed = False
    deadline = time.monotonic() + timeout if timeout else None
    who = f"worker {worker_index(worker)}: " if worker else ""  # whose line it is
    reporter.start(spec.name, summary.finished, max(target, summary.finished), who)
    status = "FINISHED"
    try:
        while True:
            raise_pending()  # a Ctrl-C that arrived during an Optuna storage call
            raise_if_stopped()  # one whose interrupt a store's error replaced
            janitor.fail_stale()
            janitor.close_dead_runs()
            trials = study.get_trials(deepcopy=False)
            done = sum(counts(t) for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            waiting = sum(t.state == TrialState.WAITING for t in trials)
            if done >= target:
                break
            if deadline is not None and time.monotonic() >= deadline:
                summary.stopped_by_timeout = True
                break
            if done + running >= target and not waiting:
                time.sleep(WAIT_POLL_S)  # the last trials run elsewhere; take over if they die
                continue
            before = len(ctx.outcomes)
            try:
                study.optimize(
                    lambda trial: run_trial(ctx, trial),
                    n_trials=1,
                    catch=(Exception,),
                    gc_after_trial=False,
                )
            except Exception as exc:  # Optuna's own record of the trial failed
                _stop_if_unwritable(spec, tracker, exc)
                if stopping():  # while recording an interrupted trial: still a stop
                    raise KeyboardInterrupt from exc
                raise
            if tracker.client.down is not None:  # the trial failed on it: stop, say why
                raise tracker.client.down
            janitor.tag_pareto()
            if len(ctx.outcomes) > before:
                outcome = ctx.outcomes[-1]
                _, best = best_of(study)
                finished = sum(counts(t) for t in study.get_trials(deepcopy=False))
                reporter.trial_finished(
                    outcome.number, outcome.state, outcome.value, best, outcome.note, finished
                )
        if not summary.stopped_by_timeout and spec.search.confirms:
            summary.confirmed, confirmed = run_confirm(ctx, study, deadline)
            summary.stopped_by_timeout = not confirmed
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        reporter.stop()
        if wait_for is not None:
            wait_for()
        summary.outcomes = ctx.outcomes
        summary.finished = count_finished(study)
        summary.best_number, summary.best_value = best_of(study)
        summary.pareto = pareto_front(study)
        in_flight = any(
            t.state in (TrialState.RUNNING, TrialState.WAITING)
            for t in study.get_trials(deepcopy=False)
        )
        done = summary.finished >= target and not in_flight
        if spec.search.confirms and status != "KILLED":
            done = done and confirmed
        if (status == "KILLED" and not worker) or done:
            janitor.close_dead_runs()
            janitor.tag_pareto(every_run=True)
            if status != "KILLED":
                summary.report = _write_report(spec, tracker)
            tracker.end_run(parent, status)
            summary.closed = True
    return summary


def _write_report(spec: StudySpec, tracker: Tracker) -> Path | None:
    try:
        return write_report(spec, quiet_missing=True, tracker=tracker)
    except Exception as exc:  # the record of the trials matters more than the report
        print(f"warning: the report could not be written: {exc}", file=sys.stderr)
        return None
