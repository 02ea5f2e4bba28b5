"""Confirmation: once the search has its trials, the ``search.confirm.top`` best configurations
by validation Δm are trained again with ``search.confirm.seeds`` fresh seeds, and so are their
baselines (the same fresh seeds, paired), so that the winner's figures carry an interval.

The work is a second Optuna study on the study's storage, ``<name>.confirm``: one enqueued
trial per configuration to confirm (user attribute ``confirms``: the search trial's number).
Workers take them with ``study.optimize`` as they take search trials, so a confirmation killed
mid-way is resumed (a SIGKILLed one through its stale heartbeat, then retried; an interrupted
one is enqueued again by the next ``sweeps run``), and two workers confirm different
configurations side by side. Confirm trials never count towards ``search.n_trials``.

Each confirmation is an MLflow run (``mtl.kind=confirm``, ``mtl.confirms=N``, child of the
study run) with a trial's metrics: means over the fresh seeds with ``_std``, ``_ci95`` and
``_significant``. Which configurations are confirmed is decided on validation only; the
seeds are ``seed + training.seeds``, ``seed + training.seeds + 1``, ... (none of the search's).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps import record
from sweeps.interrupts import raise_if_stopped, raise_pending
from sweeps.masking import mask, shown
from sweeps.optuna_storage import make_storage
from sweeps.schema import StudySpec
from sweeps.space import config_from_params
from sweeps.study_state import counts, valid_delta_m
from sweeps.tracking import TrackingUnavailable
from sweeps.trial import (
    WORKER,
    TrialContext,
    _close,
    _mean_curves,
    _summarise,
    check_objective,
    fit_seeds,
    record_first_model,
    record_interrupted,
    sequential_offset,
)

WAIT_POLL_S = 1.0
LIVE = (TrialState.RUNNING, TrialState.WAITING)


@dataclass
class ConfirmOutcome:
    confirms: int  # the search trial's number
    state: str
    valid_delta_m: float | None = None
    note: str = ""


def confirm_name(spec: StudySpec) -> str:
    return f"{spec.name}.confirm"


def confirm_seeds(spec: StudySpec) -> list[int]:
    """Fresh seeds: none of them trained a search trial."""
    assert spec.search.confirm is not None
    first = spec.seed + spec.training.seeds
    return [first + i for i in range(spec.search.confirm.seeds)]


def to_confirm(spec: StudySpec, study: optuna.Study) -> list[FrozenTrial]:
    """The best complete trials by validation Δm, one per distinct configuration."""
    if not spec.search.confirms:
        return []
    assert spec.search.confirm is not None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    scored = sorted(
        (t for t in complete if valid_delta_m(t) is not None),
        key=lambda t: (-valid_delta_m(t), t.number),  # type: ignore[operator]
    )
    chosen, seen = [], set()
    for t in scored:
        key = tuple(sorted((k, repr(v)) for k, v in t.params.items()))
        if key in seen:
            continue
        seen.add(key)
        chosen.append(t)
        if len(chosen) == spec.search.confirm.top:
            break
    return chosen


def open_confirm_study(spec: StudySpec) -> optuna.Study:
    return optuna.create_study(
        study_name=confirm_name(spec),
        storage=make_storage(spec),
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=spec.seed),  # nothing is sampled
    )


def _settled(trial: FrozenTrial) -> bool:
    """Done, in flight, or failed by its own error (then it is not tried again)."""
    return trial.state in LIVE or counts(trial)


def _done(trial: FrozenTrial) -> bool:
    """Confirmed, or failed by its own error (its reason is recorded; it is not redone)."""
    return trial.state == TrialState.COMPLETE or (trial.state == TrialState.FAIL and counts(trial))


def run_confirm(
    ctx: TrialContext, study: optuna.Study, deadline: float | None = None
) -> tuple[list[ConfirmOutcome], bool]:
    """Confirm every configuration ``to_confirm`` names, with any workers doing the same:
    enqueue what no trial settles (again when one was interrupted or its worker died past its
    retries), take waiting trials, wait for running ones. Returns this process's outcomes and
    whether every configuration is done (False when ``deadline``, a ``time.monotonic()``
    value, passed first)."""
    spec = ctx.spec
    wanted = [t.number for t in to_confirm(spec, study)]
    outcomes: list[ConfirmOutcome] = []
    if not wanted:
        return outcomes, True
    cstudy = open_confirm_study(spec)
    ctx.reporter.phase(f"confirming the {len(wanted)} best configuration(s)")
    while True:
        raise_pending()  # a Ctrl-C that arrived during an Optuna storage call
        raise_if_stopped()  # one whose interrupt a store's error replaced
        optuna.storages.fail_stale_trials(cstudy)
        trials = cstudy.get_trials(deepcopy=False)
        of = {n: [t for t in trials if t.user_attrs.get("confirms") == n] for n in wanted}
        if all(any(_done(t) for t in of[n]) for n in wanted):
            return outcomes, True
        if deadline is not None and time.monotonic() >= deadline:
            return outcomes, False
        for n in wanted:
            if not any(_settled(t) for t in of[n]):
                cstudy.enqueue_trial({}, user_attrs={"confirms": n})
        if any(t.state == TrialState.WAITING for t in cstudy.get_trials(deepcopy=False)):
            cstudy.optimize(
                lambda trial: confirm_trial(ctx, study, cstudy, trial, outcomes),
                n_trials=1,
                catch=(Exception,),
                gc_after_trial=False,
            )
            if ctx.tracker.client.down is not None:
                raise ctx.tracker.client.down
            continue
        time.sleep(WAIT_POLL_S)  # confirmed elsewhere; take it over if its worker dies


def confirm_trial(
    ctx: TrialContext,
    study: optuna.Study,
    cstudy: optuna.Study,
    trial: optuna.Trial,
    outcomes: list[ConfirmOutcome],
) -> float:
    spec = ctx.spec
    if "confirms" not in trial.user_attrs:  # another worker took the waiting one first
        trial.set_user_attr("surplus", True)
        raise optuna.TrialPruned("no configuration was waiting to be confirmed")
    number = int(trial.user_attrs["confirms"])
    twin = [
        t
        for t in cstudy.get_trials(deepcopy=False)
        if t.user_attrs.get("confirms") == number
        and t.number < trial.number
        and (t.state in LIVE or t.state == TrialState.COMPLETE)
    ]
    if twin:  # two workers enqueued the same configuration: the earlier one confirms it
        trial.set_user_attr("surplus", True)
        raise optuna.TrialPruned(f"trial {number} is confirmed by confirm trial {twin[0].number}")
    original = study.trials[number]
    tasks = str(original.params.get("tasks", ",".join(spec.task_names))).split(",")
    config = config_from_params(spec, tasks, original.params)
    seeds = confirm_seeds(spec)
    ref = f"confirm:{trial.number}"
    tags = {
        record.KIND: record.CONFIRM,
        record.CONFIRMS: str(number),
        record.CONFIRM_TRIAL: str(trial.number),
        record.TASKS: ",".join(config.tasks),
        record.STATE: "RUNNING",
        record.STUDY: spec.name,
        record.WORKER: WORKER,
    }
    params = {**config.params, "confirm.seeds": ",".join(map(str, seeds))}
    started = time.perf_counter()
    name = record.run_name(f"confirm · trial {number}", config.tasks, config.model, config.training)
    run_id = ctx.tracker.start_run(name, ctx.parent_run, tags, params)
    trial.set_user_attr("mlflow_run_id", run_id)
    trial.set_user_attr("worker", WORKER)
    ctx.reporter.trial_started(number, config.tasks, config.params)
    ctx.reporter.phase(f"confirm · {len(seeds)} fresh seeds")
    times = {"train": 0.0, "baseline": 0.0}
    try:
        results, baselines = fit_seeds(ctx, config, seeds, run_id, times, number=ref)
        summary = _summarise(results, baselines)
        metrics = summary.metrics + _mean_curves(results, baselines, sequential_offset(config))
        seconds = time.perf_counter() - started
        metrics += record.time_metrics(times["train"], times["baseline"], seconds)
        ctx.tracker.log(run_id, metrics=metrics, params={record.DEVICE: results[0].device})
        check_objective(summary, ctx.spec)  # a NaN would be retried for ever
        record_first_model(ctx, run_id, config, results, seeds)
        ctx.tracker.end_run(run_id, "FINISHED", {record.STATE: "COMPLETE"})
    except KeyboardInterrupt:
        record_interrupted(ctx, trial, run_id, started, times)  # the next run confirms it again
        raise
    except Exception as exc:
        reason = shown(f"{type(exc).__name__}: {exc}")
        trial.set_user_attr("reason", reason)
        if isinstance(exc, TrackingUnavailable):  # the store failed, not the model: redo it
            trial.set_user_attr("not_counted", True)
        trial.set_user_attr("traceback", mask(traceback.format_exc()[-4000:]))
        _close(ctx, run_id, started, times, "FAILED", "FAIL", reason)
        outcomes.append(ConfirmOutcome(number, "FAIL", note=reason))
        ctx.reporter.confirmed(number, None, len(seeds), reason)
        raise
    trial.set_user_attr("valid_delta_m", summary.valid_delta_m)
    trial.set_user_attr("delta_m", summary.delta_m)
    trial.set_user_attr("deltas", summary.deltas)
    outcomes.append(ConfirmOutcome(number, "COMPLETE", summary.valid_delta_m))
    ctx.reporter.confirmed(number, summary.valid_delta_m, len(seeds))
    return summary.valid_delta_m
