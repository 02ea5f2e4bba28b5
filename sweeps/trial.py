"""One trial: sample a configuration, train its baselines and its model (once per seed),
record everything in MLflow and hand Optuna the objective.

``run_trial`` is the objective that ``study.optimize`` calls: it returns the validation Δm
(``objective: delta_m``) or each task's validation Δ (``per_task``), raises ``TrialPruned``
for a pruned trial and re-raises a failure after recording it, so that Optuna's own loop
(with its heartbeat) sets the trial's state.

With ``training.seeds: K`` every seed trains the trial's model and each task's baseline; the
Δ of a task is computed per seed (the trial's model of seed s against the baseline of seed s)
and reported as the mean over seeds with ``_std`` (sample standard deviation) and ``_ci95``
(half-width of the 95% Student-t interval, ``t(0.975, K-1) * std / sqrt(K)``). A task's Δ is
significant when that interval excludes zero: ``delta/TASK_significant`` is +1 (significant
gain), -1 (significant negative transfer) or 0.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback

from mtl_core import transfer
from mtl_core.schedules import total_epochs
from mtl_core.train import Callback, EpochLog, FitResult, TrainingDiverged, fit
from sweeps import record
from sweeps.baselines import Baseline, Baselines
from sweeps.interrupts import raise_pending, stopped_by
from sweeps.masking import mask, shown
from sweeps.models import record_model
from sweeps.optuna_storage import STORAGE_ERRORS, disconnected
from sweeps.progress import Reporter
from sweeps.reuse import CONFIG_KEY, config_key, original_of, take_result
from sweeps.schema import StudySpec
from sweeps.space import TrialConfig, config_from_params, sample, trial_problems
from sweeps.study_data import StudyData
from sweeps.tracking import Tracker, TrackingUnavailable
from sweeps.trial_diagnostics import log_diagnostics

WORKER = f"{socket.gethostname()}:{os.getpid()}"  # which process ran a trial


class SurplusTrial(Exception):
    """Another worker started the study's last trial first: this one is not run."""


@dataclass
class TrialOutcome:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL | REUSED (a COMPLETE trial that took an earlier result)
    value: float | None = None  # valid Δm
    delta_m: float | None = None  # test Δm
    note: str = ""
    deltas: dict[str, float] = field(default_factory=dict)


@dataclass
class TrialContext:
    spec: StudySpec
    study: optuna.Study
    data: StudyData
    tracker: Tracker
    parent_run: str
    baselines: Baselines
    reporter: Reporter
    target: int = 0  # finished trials the study should hold
    counts: object = None  # callable: does a frozen trial count towards the target
    outcomes: list[TrialOutcome] = field(default_factory=list)
    recorded_keys: dict[int, str] = field(default_factory=dict)  # sweeps.reuse, older trials


class _Record(Callback):
    """Logs each epoch to MLflow (one seed) and reports the epoch's validation Δm, paired by
    epoch with the baselines' curves, to the pruner."""

    def __init__(
        self,
        ctx: TrialContext,
        trial: optuna.Trial | None,
        run_id: str,
        baselines: dict[str, Baseline],
        log: bool,
        report: bool,
    ):
        self.ctx, self.trial, self.run_id, self.baselines = ctx, trial, run_id, baselines
        self.log_epochs, self.report = log, report and trial is not None
        self.offset = 0
        self.warmup = ctx.spec.pruner_warmup

    def on_train_start(self, tasks, config) -> None:
        # sequential training runs `epochs` epochs per task; the pruner compares trials at the
        # same step, so it sees only the last task's phase, numbered 1..epochs like the others
        self.offset = _phase_offset(config.schedule, config.epochs, len(tasks))

    def on_epoch_end(self, log: EpochLog) -> None:
        raise_pending()  # a signal kept pending (see sweeps.interrupts) stops within an epoch
        e = log.epoch
        self.ctx.reporter.epoch(e, log.epochs)
        step = e - self.offset
        per_task = paired_deltas(log.valid, self.baselines, step)
        value = transfer.delta_m(per_task)
        if self.log_epochs:
            self.ctx.tracker.log(self.run_id, metrics=_epoch_metrics([log], [per_task]))
        elif self.report:  # several seeds: the mean curves come later; this is what Optuna saw
            self.ctx.tracker.log(self.run_id, metrics=[("pruner/valid_delta_m", value, e)])
        if self.report and step >= 1:
            assert self.trial is not None
            self.trial.report(value, step)
            if step > self.warmup and self.trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned at epoch {e}: validation Δm {value:+.2f}% against the baselines "
                    f"at the same epoch is below the earlier trials' at that epoch"
                )


class _Progress(Callback):
    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def on_epoch_end(self, log: EpochLog) -> None:
        raise_pending()  # (as above)
        self.reporter.epoch(log.epoch, log.epochs)


def _epoch_metrics(
    logs: list[EpochLog], paired: list[dict[str, float]]
) -> list[tuple[str, float, int]]:
    """Per-epoch metrics, the mean over the given seeds' logs of one epoch; ``paired``: each
    seed's per-task validation Δ against its baselines at the same epoch."""
    e = logs[0].epoch
    mean = statistics.fmean
    first = logs[0]
    out = [
        (record.valid(t, m), mean(log.valid[t][m] for log in logs), e)
        for t, scores in first.valid.items()
        for m in scores
    ]
    out += [
        (record.train_loss(t), mean(log.train_loss[t] for log in logs), e) for t in first.train_loss
    ]
    out += [(record.weight(t), mean(log.weights[t] for log in logs), e) for t in first.weights]
    out += [(name, mean(log.method.get(name, 0.0) for log in logs), e) for name in first.method]
    if math.isfinite(first.lr):
        out.append((record.LR, first.lr, e))  # the same for every seed
    norms = [log.grad_norm for log in logs if log.grad_norm]
    if norms:
        out += [(record.grad_norm(k), mean(n[k] for n in norms), e) for k in norms[0]]
    cosines = [log.grad_cos for log in logs if log.grad_cos]
    if cosines:
        out += [
            (record.grad_cos(i, j), mean(c[i][j] for c in cosines), e)
            for i in cosines[0]
            for j in cosines[0][i]
        ]
    measured = [log.affinity for log in logs if log.affinity]
    if measured:  # Z(i→j): how much a step on i's loss lowers j's (see mtl_core.affinity)
        out += [
            (record.affinity(i, j), mean(a[i][j] for a in measured), e)
            for i in measured[0]
            for j in measured[0][i]
        ]
    out += [(record.valid_delta(t), mean(d[t] for d in paired), e) for t in paired[0]]
    out.append((record.VALID_DELTA_M_BY_EPOCH, mean(transfer.delta_m(d) for d in paired), e))
    return out


def paired_deltas(
    valid: dict[str, dict[str, float]], baselines: dict[str, Baseline], epoch: int
) -> dict[str, float]:
    """Each task's validation Δ at ``epoch`` against its baseline's validation metric at the
    same epoch (like with like: a trial is not punished for converging later than a model
    that has reached its final score)."""
    return {
        t: transfer.delta(valid[t][b.metric], b.valid_at(epoch), b.metric)
        for t, b in baselines.items()
    }


def seeds_of(spec: StudySpec) -> list[int]:
    return [spec.seed + i for i in range(spec.training.seeds)]


def is_surplus(ctx: TrialContext, trial: optuna.Trial) -> bool:
    """True when the trials before this one already make the target (finished, running or
    waiting): two workers asked for the last trial at once, and this one came second."""
    live = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    ahead = [
        t
        for t in ctx.study.get_trials(deepcopy=False)
        if t.number < trial.number and (t.state in live or ctx.counts(t))
    ]
    return len(ahead) >= ctx.target


def _recorded_key(ctx: TrialContext, trial: optuna.trial.FrozenTrial) -> str:
    """The configuration key of a trial recorded before keys were (rebuilt from its
    parameters once per process)."""
    if trial.number not in ctx.recorded_keys:
        tasks = str(trial.params.get("tasks", ",".join(ctx.spec.task_names))).split(",")
        config = config_from_params(ctx.spec, tasks, trial.params)
        ctx.recorded_keys[trial.number] = config_key(
            config, ctx.data, ctx.spec.baselines.model_dump()
        )
    return ctx.recorded_keys[trial.number]


def keeps_model(ctx: TrialContext, valid_delta_m: float) -> bool:
    """Without confirmation, a trial logs its model when fewer than ``search.log_models``
    complete trials have a higher validation objective (confirm runs log theirs)."""
    search = ctx.spec.search
    if search.confirms or search.log_models <= 0 or not math.isfinite(valid_delta_m):
        return False
    done = ctx.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    better = [
        t
        for t in done
        if t.user_attrs.get("valid_delta_m", -math.inf) > valid_delta_m
        and "reuses" not in t.user_attrs  # a repeat holds no model of its own
    ]
    return len(better) < search.log_models


def record_first_model(
    ctx: TrialContext,
    run_id: str,
    config: TrialConfig,
    results: list[FitResult],
    seeds: list[int],
) -> bool:
    """Log the first seed's model of a trial or confirm run on its run (``sweeps.models``)."""
    data = ctx.baselines.data_of(config)
    train = config.train_config(seeds[0])
    return record_model(ctx.tracker, run_id, results[0], train, data, seeds[0])


def run_trial(ctx: TrialContext, trial: optuna.Trial) -> float | list[float]:
    try:
        return _run_trial(ctx, trial)
    except KeyboardInterrupt:
        if "reason" not in trial.user_attrs:  # interrupted before its run was set up
            trial.set_user_attr("reason", "interrupted")
            trial.set_user_attr("not_counted", True)
        raise
    except (optuna.TrialPruned, SurplusTrial):
        raise
    except Exception as exc:  # every failure carries its reason: it counts, and status shows it
        if "reason" not in trial.user_attrs:
            trial.set_user_attr("reason", shown(described(exc)))
        if store_failed(exc):  # the store failed, not the trial: the study trains one in its place
            trial.set_user_attr("not_counted", True)
        raise


def store_failed(exc: BaseException) -> bool:
    """The tracking store did not answer, or the Optuna storage lost its database under a
    call (a PostgreSQL restart failed a trial so, and it counted as one of the study's trials).
    Only the storage's own errors: a user's trunk that fails on a refused connection is the
    trial's failure (not counted, it would be trained again and again)."""
    lost = isinstance(exc, STORAGE_ERRORS) and disconnected(exc)  # as the storage retries it
    return isinstance(exc, TrackingUnavailable) or lost


def described(exc: BaseException) -> str:
    """``Type: message``, and the first line of what caused it where the message hides it."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    first = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
    if first and first not in text:
        text += f" (caused by {type(cause).__name__}: {first})"
    return text


def _run_trial(ctx: TrialContext, trial: optuna.Trial) -> float | list[float]:
    started = time.perf_counter()
    spec = ctx.spec
    if ctx.target and ctx.counts is not None and is_surplus(ctx, trial):
        trial.set_user_attr("surplus", True)
        raise SurplusTrial(f"trial {trial.number}: the study already has its trials")
    config: TrialConfig = sample(trial, spec)
    tags = {
        record.KIND: record.TRIAL,
        record.TRIAL_NUMBER: str(trial.number),
        record.TASKS: ",".join(config.tasks),
        record.STATE: "RUNNING",
        record.STUDY: spec.name,
        record.WORKER: WORKER,
    }
    retry_of = RetryHeartbeatStaleTrialCallback.retried_trial_number(
        ctx.study.get_trials(deepcopy=False)[trial.number]
    )
    if retry_of is not None:
        tags[record.RETRY_OF] = str(retry_of)
    name = record.run_name(f"trial {trial.number}", config.tasks, config.model, config.training)
    run_id = ctx.tracker.start_run(name, ctx.parent_run, tags, config.params)
    trial.set_user_attr("mlflow_run_id", run_id)
    trial.set_user_attr("worker", WORKER)
    ctx.reporter.trial_started(trial.number, config.tasks, config.params)
    times = {"train": 0.0, "baseline": 0.0}
    try:
        key = config_key(config, ctx.data, spec.baselines.model_dump())
        original = (
            original_of(ctx.study, key, trial.number, lambda t: _recorded_key(ctx, t))
            if spec.search.reuse
            else None
        )
        if original is not None:  # trained already: its result, not a second training
            value, taken = take_result(ctx, trial, original, key, run_id, started, name)
            ctx.outcomes.append(
                TrialOutcome(
                    trial.number,
                    record.REUSED,
                    taken.get("valid_delta_m"),
                    taken.get("delta_m"),
                    note=taken["note"],
                    deltas=taken.get("deltas", {}),
                )
            )
            return value
        trial.set_user_attr(CONFIG_KEY, key)
        problems = trial_problems(config, spec)
        if problems:
            raise optuna.TrialPruned(f"combination cannot train: {'; '.join(problems)}")
        seeds = seeds_of(spec)
        results, baselines = fit_seeds(ctx, config, seeds, run_id, times, trial)
        summary = _summarise(results, baselines)
        metrics = summary.metrics
        if len(seeds) > 1:
            metrics += _mean_curves(results, baselines, sequential_offset(config))
        seconds = time.perf_counter() - started
        metrics += record.time_metrics(times["train"], times["baseline"], seconds)
        ctx.tracker.log(run_id, metrics=metrics, params={record.DEVICE: results[0].device})
        check_objective(summary, spec)
        if keeps_model(ctx, summary.valid_delta_m):
            ctx.reporter.phase("model")
            record_first_model(ctx, run_id, config, results, seeds)
        if config.training.diagnostics_every > 0:
            ctx.reporter.phase("diagnostics")
            data = ctx.baselines.data_of(config)
            log_diagnostics(ctx.tracker, run_id, data, config, results[0], seeds[0])
        affinity = mean_affinity(results)
        if affinity:
            # one line, 6 significant digits: optuna-dashboard drew the nested value as a
            # 3,000-pixel tree on the trial's page (the full value is affinity.csv on the run)
            trial.set_user_attr("affinity", affinity_text(affinity))
            _log_affinity_csv(ctx.tracker, run_id, affinity)
        ctx.tracker.end_run(run_id, "FINISHED", {record.STATE: "COMPLETE"})
        trial.set_user_attr("delta_m", summary.delta_m)
        trial.set_user_attr("valid_delta_m", summary.valid_delta_m)
        trial.set_user_attr("deltas", summary.deltas)
        significance = record.significance({name: v for name, v, _ in summary.metrics})
        if significance:  # +1 / -1: the 95% interval over seeds excludes zero; 0: noise
            trial.set_user_attr("significant", significance)
        ctx.outcomes.append(
            TrialOutcome(
                trial.number,
                "COMPLETE",
                summary.valid_delta_m,
                summary.delta_m,
                deltas=summary.deltas,
            )
        )
        if spec.search.multi_objective:
            return [summary.valid_deltas[t] for t in spec.task_names]
        return summary.valid_delta_m
    except optuna.TrialPruned as exc:
        reason = str(exc) or "pruned"
        # FINISHED, not KILLED: the MLflow UI draws KILLED as a failure; the name says pruned
        _close(ctx, run_id, started, times, "FINISHED", "PRUNED", reason, f"{name} · pruned")
        trial.set_user_attr("reason", shown(reason))
        ctx.outcomes.append(TrialOutcome(trial.number, "PRUNED", note=shown(reason)))
        raise
    except KeyboardInterrupt:
        record_interrupted(ctx, trial, run_id, started, times)  # the next run trains one instead
        raise
    except Exception as exc:
        if isinstance(exc, TrainingDiverged):
            reason = f"training diverged: {exc}"
        elif isinstance(exc, UndefinedObjective):
            reason = str(exc)
        else:
            reason = described(exc)
            trial.set_user_attr("traceback", mask(traceback.format_exc()[-4000:]))
        _close(ctx, run_id, started, times, "FAILED", "FAIL", reason)
        trial.set_user_attr("reason", shown(reason))
        ctx.outcomes.append(TrialOutcome(trial.number, "FAIL", note=shown(reason)))
        raise


class UndefinedObjective(Exception):
    """The trial trained, but its objective is not a number: Optuna would store a FAIL without
    a reason that no study counts, and a study of N trials would never end."""


def check_objective(summary: _Summary, spec: StudySpec) -> None:
    values = dict(summary.valid_deltas)
    if not spec.search.multi_objective:
        values["Δm"] = summary.valid_delta_m
    undefined = sorted(k for k, v in values.items() if not math.isfinite(v))
    if undefined:
        tasks = [t for t in undefined if t != "Δm"] or sorted(summary.valid_deltas)
        raise UndefinedObjective(
            f"the objective is not a number: validation Δ of {', '.join(undefined)} is NaN or"
            f" infinite (the primary metric is undefined on the validation split of"
            f" {', '.join(tasks)}: one class under auc, r2 on one row?); the trial counts as"
            " failed"
        )


def fit_seeds(
    ctx: TrialContext,
    config: TrialConfig,
    seeds: list[int],
    run_id: str,
    times: dict[str, float],
    trial: optuna.Trial | None = None,
    number: int | None = None,
) -> tuple[list[FitResult], list[dict[str, Baseline]]]:
    """Train the configuration once per seed against each task's baseline of that seed (the
    epochs of a multi-task model are selected against the baselines' validation scores);
    ``trial``: the Optuna trial whose pruner hears the first seed's epochs."""
    number = trial.number if trial is not None else number
    results: list[FitResult] = []
    baselines: list[dict[str, Baseline]] = []
    for i, seed in enumerate(seeds):
        suffix = f" seed {seed}" if len(seeds) > 1 else ""
        per_task = ctx.baselines.get_all(
            config.tasks,
            config,
            seed,
            number,
            [_Progress(ctx.reporter)],
            on_task=lambda task, suffix=suffix: ctx.reporter.phase(f"baseline {task}{suffix}"),
        )
        times["baseline"] += sum(b.seconds for b in per_task.values())
        baselines.append(per_task)
        if i == 0:  # which baseline runs this run compares with (learning curves)
            ctx.tracker.log(
                run_id,
                metrics=ctx.baselines.data_of(config).coverage(config.tasks),
                tags={record.baseline_run_tag(t): b.run_id for t, b in per_task.items()},
            )
        ctx.reporter.phase(",".join(config.tasks) + suffix)
        logger = _Record(
            ctx,
            trial,
            run_id,
            per_task,
            log=len(seeds) == 1,
            report=i == 0 and not ctx.spec.search.multi_objective,
        )
        teachers = None
        if config.training.distill > 0:
            teachers = {t: ctx.baselines.teacher(b) for t, b in per_task.items()}
        data = ctx.baselines.data_of(config)
        reference = {t: b.valid for t, b in per_task.items()}
        result = fit(
            data.subset(config.tasks), config.train_config(seed), [logger], teachers, reference
        )
        times["train"] += result.train_seconds
        results.append(result)
    return results, baselines


@dataclass
class _Summary:
    metrics: list[tuple[str, float, int]]
    deltas: dict[str, float]  # test Δ per task, mean over seeds
    valid_deltas: dict[str, float]
    delta_m: float
    valid_delta_m: float


def _summarise(results: list[FitResult], baselines: list[dict[str, Baseline]]) -> _Summary:
    """Means over seeds, with _std, _ci95 and _significant companions when K > 1."""
    k = len(results)
    tasks = results[0].tasks
    metric_of = results[0].metric
    out: list[tuple[str, float, int]] = []

    def add(name: str, values: list[float], significance: bool = False) -> float:
        mean = statistics.fmean(values)
        out.append((name, mean, 0))
        if k > 1:  # a metric undefined on a split (auc with one class present) stays NaN
            std = statistics.stdev(values) if all(map(math.isfinite, values)) else math.nan
            out.append((name + record.STD, std, 0))
            if significance:
                half = _t975(k - 1) * std / math.sqrt(k)
                out.append((name + record.CI95, half, 0))
                sign = (
                    0.0 if abs(mean) <= half or not math.isfinite(half) else math.copysign(1, mean)
                )
                out.append((name + record.SIGNIFICANT, sign, 0))
        return mean

    for t in tasks:
        for m in results[0].test[t]:
            add(record.test(t, m), [r.test[t][m] for r in results])
        add(record.baseline(t, metric_of[t]), [b[t].test for b in baselines])
        for m in results[0].valid[t]:
            add(record.selected_valid(t, m), [r.valid[t][m] for r in results])
        add(record.baseline_valid(t, metric_of[t]), [b[t].valid for b in baselines])
    per_seed_test = [
        transfer.deltas(r.primary("test"), {t: b[t].test for t in tasks}, metric_of)
        for r, b in zip(results, baselines, strict=True)
    ]
    per_seed_valid = [
        transfer.deltas(r.primary("valid"), {t: b[t].valid for t in tasks}, metric_of)
        for r, b in zip(results, baselines, strict=True)
    ]
    deltas = {t: add(record.delta(t), [d[t] for d in per_seed_test], True) for t in tasks}
    delta_m = add(record.DELTA_M, [transfer.delta_m(d) for d in per_seed_test], True)
    valid_deltas = {
        t: add(record.selected_valid_delta(t), [d[t] for d in per_seed_valid], True) for t in tasks
    }
    valid_delta_m = add(record.VALID_DELTA_M, [transfer.delta_m(d) for d in per_seed_valid], True)
    add(record.BEST_EPOCH, [float(r.best_epoch) for r in results])
    # the split said in the name (the same values as delta/TASK and delta_m)
    out += [
        ("test/" + name, value, step)
        for name, value, step in list(out)
        if name.startswith(("delta/", "delta_m"))
    ]
    return _Summary(out, deltas, valid_deltas, delta_m, valid_delta_m)


def _mean_curves(
    results: list[FitResult], baselines: list[dict[str, Baseline]], offset: int = 0
) -> list[tuple[str, float, int]]:
    out = []
    for e in range(min(len(r.history) for r in results)):  # early stopping: the common epochs
        logs = [r.history[e] for r in results]
        paired = [
            paired_deltas(log.valid, b, e + 1 - offset)
            for log, b in zip(logs, baselines, strict=True)
        ]
        out += _epoch_metrics(logs, paired)
    return out


def sequential_offset(config: TrialConfig) -> int:
    """Epochs before a sequential schedule's last phase (0 for other schedules): from there on
    its epochs are paired with the baselines' epochs 1, 2, ..."""
    return _phase_offset(config.training.schedule, config.training.epochs, len(config.tasks))


def _phase_offset(schedule: str, epochs: int, n_tasks: int) -> int:
    """Epochs before the last task's phase of a schedule that trains ``epochs`` per task."""
    return total_epochs(schedule, epochs, n_tasks) - epochs


def mean_affinity(results: list[FitResult]) -> dict[str, dict[str, float]] | None:
    """Z(i→j) averaged over every measured epoch of every seed."""
    measured = [log.affinity for r in results for log in r.history if log.affinity]
    if not measured:
        return None
    first = measured[0]
    return {i: {j: statistics.fmean(a[i][j] for a in measured) for j in first[i]} for i in first}


def affinity_text(affinity: dict[str, dict[str, float]]) -> str:
    """Z(i→j) as one line of JSON, 6 significant digits as affinity.csv (``affinity_of`` reads
    it back)."""
    rounded = {i: {j: float(f"{v:.6g}") for j, v in row.items()} for i, row in affinity.items()}
    return json.dumps(rounded, separators=(",", ":"))


def affinity_of(value: object) -> dict[str, dict[str, float]]:
    """A trial's ``affinity`` user attribute: the JSON line, or the nested mapping that
    studies begun before it hold."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})  # type: ignore[arg-type]


def _log_affinity_csv(tracker: Tracker, run_id: str, affinity: dict) -> None:
    tasks = list(affinity)
    lines = ["from," + ",".join(tasks)]  # row: the task stepped on; column: the task measured
    lines += [f"{i}," + ",".join(f"{affinity[i][j]:.6g}" for j in tasks) for i in tasks]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "affinity.csv"
        path.write_text("\n".join(lines) + "\n")
        tracker.log_artifact(run_id, path)


def _t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy import stats  # scipy.stats loads only when an interval is computed

    return float(stats.t.ppf(0.975, dof))


def record_interrupted(
    ctx: TrialContext, trial: optuna.Trial, run_id: str, started: float, times: dict[str, float]
) -> None:
    """Record an interrupted trial (or confirmation) as not counted, as far as the stores
    answer: a store that fails here must not replace the interrupt, or the command would catch
    that error as a failed trial and train on."""
    writes = (
        lambda: trial.set_user_attr("reason", "interrupted"),
        lambda: trial.set_user_attr("not_counted", True),
        lambda: _close(
            ctx, run_id, started, times, "KILLED", "FAIL", f"interrupted ({stopped_by()})"
        ),
    )
    for write in writes:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - the stop goes on; the next run takes it over
            print(
                f"warning: trial {trial.number}'s interruption could not be recorded "
                f"({type(exc).__name__}); the next run takes the trial over",
                file=sys.stderr,
                flush=True,
            )


def _close(
    ctx: TrialContext,
    run_id: str,
    started: float,
    times: dict[str, float],
    status: str,
    state: str,
    reason: str,
    name: str | None = None,
) -> None:
    seconds = time.perf_counter() - started
    ctx.tracker.log(run_id, metrics=record.time_metrics(times["train"], times["baseline"], seconds))
    ctx.tracker.end_run(run_id, status, {record.STATE: state, **record.error_tag(reason)}, name)
