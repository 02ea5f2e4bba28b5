"""One trial: sample a configuration, train its baselines and its model, record everything."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import optuna

from mtl_core import transfer
from mtl_core.train import Callback, EpochLog, TrainingDiverged, fit
from sweeps.baselines import Baseline, Baselines
from sweeps.progress import Reporter
from sweeps.space import TrialConfig, sample, trial_problems
from sweeps.spec import StudySpec
from sweeps.study_data import StudyData
from sweeps.tracking import Tracker


@dataclass
class TrialOutcome:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
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


class _Record(Callback):
    """Logs each epoch to MLflow and reports the validation Δm to Optuna's pruner."""

    def __init__(
        self, ctx: TrialContext, trial: optuna.Trial, run_id: str, baselines: dict[str, Baseline]
    ):
        self.ctx, self.trial, self.run_id, self.baselines = ctx, trial, run_id, baselines

    def on_epoch_end(self, log: EpochLog) -> None:
        e = log.epoch
        metrics = [
            (f"valid/{t}/{m}", v, e) for t, scores in log.valid.items() for m, v in scores.items()
        ]
        metrics += [(f"train/{t}/loss", v, e) for t, v in log.train_loss.items()]
        metrics += [(f"weight/{t}", v, e) for t, v in log.weights.items()]
        value = _valid_delta_m(log.valid, self.baselines)
        metrics.append(("valid/delta_m", value, e))
        self.ctx.tracker.log(self.run_id, metrics=metrics)
        self.ctx.reporter.epoch(e, log.epochs)
        self.trial.report(value, e)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at epoch {e}: validation Δm {value:+.2f}% is below the median of earlier trials"
            )


class _Progress(Callback):
    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def on_epoch_end(self, log: EpochLog) -> None:
        self.reporter.epoch(log.epoch, log.epochs)


def _valid_delta_m(valid: dict[str, dict[str, float]], baselines: dict[str, Baseline]) -> float:
    per_task = {
        t: transfer.delta(valid[t][b.metric], b.valid, b.metric) for t, b in baselines.items()
    }
    return transfer.delta_m(per_task)


def run_trial(ctx: TrialContext, trial: optuna.Trial) -> TrialOutcome:
    """Run one asked trial to its end and tell Optuna; never raises for a trial's own failure
    (KeyboardInterrupt aside, after recording it)."""
    started = time.perf_counter()
    spec = ctx.spec
    config: TrialConfig = sample(trial, spec)
    tags = {
        "mtl.kind": "trial",
        "mtl.trial_number": str(trial.number),
        "mtl.tasks": ",".join(config.tasks),
        "mtl.state": "RUNNING",
        "mtl.study": spec.name,
    }
    run_id = ctx.tracker.start_run(f"trial {trial.number}", ctx.parent_run, tags, config.params)
    trial.set_user_attr("mlflow_run_id", run_id)
    ctx.reporter.trial_started(trial.number, config.tasks, config.params)
    baseline_s = train_s = 0.0
    try:
        problems = trial_problems(config, spec)
        if problems:
            raise optuna.TrialPruned(f"combination cannot train: {'; '.join(problems)}")
        baselines = {}
        for task in config.tasks:
            ctx.reporter.phase(f"baseline {task}")
            baselines[task] = ctx.baselines.get(task, config, [_Progress(ctx.reporter)])
            baseline_s += baselines[task].seconds
        ctx.reporter.phase(",".join(config.tasks))
        result = fit(
            ctx.data.subset(config.tasks),
            config.train_config(spec.seed),
            [_Record(ctx, trial, run_id, baselines)],
        )
        train_s = result.train_seconds
        metrics_of = result.metric
        test_deltas = transfer.deltas(
            result.primary("test"), {t: b.test for t, b in baselines.items()}, metrics_of
        )
        valid_deltas = transfer.deltas(
            result.primary("valid"), {t: b.valid for t, b in baselines.items()}, metrics_of
        )
        value, delta_m = transfer.delta_m(valid_deltas), transfer.delta_m(test_deltas)
        metrics = [
            (f"test/{t}/{m}", v, 0) for t, scores in result.test.items() for m, v in scores.items()
        ]
        metrics += [(f"baseline/{t}/{b.metric}", b.test, 0) for t, b in baselines.items()]
        metrics += [(f"delta/{t}", d, 0) for t, d in test_deltas.items()]
        metrics += [
            ("delta_m", delta_m, 0),
            ("time/train_s", train_s, 0),
            ("time/baseline_s", baseline_s, 0),
        ]
        metrics.append(("time/trial_s", time.perf_counter() - started, 0))
        ctx.tracker.log(run_id, metrics=metrics)
        ctx.tracker.end_run(run_id, "FINISHED", {"mtl.state": "COMPLETE"})
        trial.set_user_attr("delta_m", delta_m)
        trial.set_user_attr("deltas", test_deltas)
        ctx.study.tell(trial, value)
        return TrialOutcome(trial.number, "COMPLETE", value, delta_m, deltas=test_deltas)
    except optuna.TrialPruned as exc:
        reason = str(exc) or "pruned"
        _close(ctx, run_id, started, train_s, baseline_s, "KILLED", "PRUNED", reason)
        trial.set_user_attr("reason", reason)
        ctx.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return TrialOutcome(trial.number, "PRUNED", note=reason)
    except KeyboardInterrupt:
        _close(ctx, run_id, started, train_s, baseline_s, "KILLED", "FAIL", "interrupted (Ctrl-C)")
        trial.set_user_attr("reason", "interrupted")
        ctx.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    except Exception as exc:
        if isinstance(exc, TrainingDiverged):
            reason = f"training diverged: {exc}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
        _close(ctx, run_id, started, train_s, baseline_s, "FAILED", "FAIL", reason)
        trial.set_user_attr("reason", reason)
        ctx.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return TrialOutcome(trial.number, "FAIL", note=reason)


def _close(
    ctx: TrialContext,
    run_id: str,
    started: float,
    train_s: float,
    baseline_s: float,
    status: str,
    state: str,
    reason: str,
) -> None:
    times = [
        ("time/train_s", train_s, 0),
        ("time/baseline_s", baseline_s, 0),
        ("time/trial_s", time.perf_counter() - started, 0),
    ]
    ctx.tracker.log(run_id, metrics=times)
    ctx.tracker.end_run(run_id, status, {"mtl.state": state, "mtl.error": reason[:5000]})
