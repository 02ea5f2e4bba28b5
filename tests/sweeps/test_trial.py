"""sweeps.trial: the pruner compares like with like (a trial's validation metrics at epoch e
against its baselines' at epoch e, not against their final scores; nothing is pruned in the
warm-up), and a trial's summary over seeds gives means with their spread, recording a metric
that a split leaves undefined (ROC AUC with one class present) as NaN instead of failing."""

from __future__ import annotations

import math
import types

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mtl_core.train import EpochLog, FitResult
from sweeps.baselines import Baseline
from sweeps.progress import Reporter
from sweeps.runner import make_pruner
from sweeps.spec import StudySpec
from sweeps.tracking import Tracker
from sweeps.trial import _Record, _summarise, paired_deltas
from tests.helpers import small_study

# baselines that converge slowly: 0.50 after one epoch, 0.85 from epoch 5 on
SLOW_BASELINE = [0.50, 0.60, 0.70, 0.80, 0.85, 0.85]
# a trial a little ahead of them at every epoch, far behind their final 0.85 early on
AHEAD = [0.52, 0.63, 0.74, 0.83, 0.87, 0.88]
# earlier trials: fast tasks whose baselines are at 0.80 from the first epoch, as they are
FAST = [0.80] * 6


def _spec(**search) -> StudySpec:
    study = small_study(
        "pruning", training={"epochs": 6}, search={"pruner": "median", "n_trials": 9, **search}
    )
    return StudySpec.model_validate(study)


def _baselines(curve: list[float]) -> dict[str, Baseline]:
    return {
        t: Baseline(t, "key", "f1", curve[-1], curve[-1], 0.0, True, "run", 0, list(curve), 6)
        for t in ("imdb", "yelp")
    }


def _with_run(ctx, baselines, curve, study) -> int | None:
    """Feed one trial's epochs to the pruner through the real callback; the epoch it was
    pruned at, or None."""
    trial = study.ask()
    record = _Record(ctx, trial, ctx.tracker.start_run("t", None, {}, {}), baselines, False, True)
    record.on_train_start(["imdb", "yelp"], types.SimpleNamespace(schedule="joint", epochs=6))
    for e, value in enumerate(curve, 1):
        valid = {t: {"f1": value} for t in ("imdb", "yelp")}
        try:
            record.on_epoch_end(EpochLog(e, 6, {}, valid, {}))
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return e
    study.tell(trial, 0.0)
    return None


@pytest.fixture
def ctx(tmp_path):
    spec = _spec()
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "pruning")
    return types.SimpleNamespace(spec=spec, reporter=Reporter(), tracker=tracker)


def test_a_trial_ahead_of_its_baselines_epoch_for_epoch_is_not_pruned(ctx):
    study = optuna.create_study(direction="maximize", pruner=make_pruner(ctx.spec))
    for _ in range(4):  # the pruner's start-up trials: level with their fast baselines
        assert _with_run(ctx, _baselines(FAST), FAST, study) is None
    assert _with_run(ctx, _baselines(SLOW_BASELINE), AHEAD, study) is None
    # what Optuna was told is the paired Δ, positive at every epoch
    values = study.trials[-1].intermediate_values
    assert sorted(values) == [1, 2, 3, 4, 5, 6]
    assert all(v > 0 for v in values.values())
    expected = paired_deltas({"imdb": {"f1": AHEAD[1]}, "yelp": {"f1": AHEAD[1]}},
                             _baselines(SLOW_BASELINE), 2)  # fmt: skip
    assert values[2] == pytest.approx(sum(expected.values()) / 2)


def test_the_old_rule_against_final_scores_would_have_pruned_it(ctx):
    study = optuna.create_study(direction="maximize", pruner=make_pruner(ctx.spec))
    for _ in range(4):
        _with_run(ctx, _baselines(FAST), FAST, study)
    # baselines without a curve compare every epoch with their final score (the old rule)
    final_only = {
        t: Baseline(t, "key", "f1", 0.85, 0.85, 0.0, True, "run") for t in ("imdb", "yelp")
    }
    pruned = _with_run(ctx, final_only, AHEAD, study)
    assert pruned == ctx.spec.pruner_warmup + 1  # the first epoch after the warm-up


def test_nothing_is_pruned_in_the_warm_up(ctx):
    assert ctx.spec.pruner_warmup == 2  # a third of 6 epochs
    spec = _spec(pruner_warmup=4)
    ctx.spec = spec
    study = optuna.create_study(direction="maximize", pruner=make_pruner(spec))
    for _ in range(4):
        _with_run(ctx, _baselines(FAST), FAST, study)
    behind = [0.2, 0.3, 0.4, 0.5, 0.5, 0.5]  # behind everything, every epoch
    assert _with_run(ctx, _baselines(FAST), behind, study) == 5


def test_with_several_seeds_the_pruner_values_are_logged_as_reported(ctx):
    study = optuna.create_study(direction="maximize", pruner=make_pruner(ctx.spec))
    trial = study.ask()
    run = ctx.tracker.start_run("trial", None, {}, {})
    record = _Record(ctx, trial, run, _baselines(SLOW_BASELINE), log=False, report=True)
    record.on_train_start(["imdb", "yelp"], types.SimpleNamespace(schedule="joint", epochs=6))
    for e, value in enumerate(AHEAD[:3], 1):
        record.on_epoch_end(EpochLog(e, 6, {}, {t: {"f1": value} for t in ("imdb", "yelp")}, {}))
    history = MlflowClient(ctx.tracker.uri).get_metric_history(run, "pruner/valid_delta_m")
    reported = study.trials[0].intermediate_values
    assert {m.step: m.value for m in history} == pytest.approx(reported)


def _result(f1: float, auc: float, epoch: int) -> FitResult:
    scores = {"a": {"f1": f1, "auc": auc}}
    return FitResult(["a"], {"a": "f1"}, [], scores, scores, 0.0, "cpu", best_epoch=epoch)


def test_an_undefined_metric_is_nan_and_the_rest_is_summarised():
    results = [_result(0.6, math.nan, 3), _result(0.7, 0.8, 5)]
    baselines = [{"a": Baseline("a", "k", "f1", 0.5, 0.5, 0.0, True, "r", s)} for s in (0, 1)]
    summary = _summarise(results, baselines)
    m = {name: value for name, value, _ in summary.metrics}
    assert math.isnan(m["selected/valid/a/auc"]) and math.isnan(m["selected/valid/a/auc_std"])
    assert m["selected/valid/a/f1"] == pytest.approx(0.65)
    assert m["best_epoch"] == 4 and m["best_epoch_std"] == pytest.approx(math.sqrt(2))
    assert m["delta/a"] == pytest.approx(30.0)  # (0.65 - 0.5) / 0.5, mean of +20% and +40%
    assert m["test/delta/a"] == m["delta/a"] and m["test/delta_m"] == m["delta_m"]
    assert summary.valid_delta_m == pytest.approx(30.0)


def test_a_trial_whose_objective_is_not_a_number_fails_with_its_reason_and_counts(tmp_path):
    """A validation split holding one class leaves ROC AUC undefined, so the objective is NaN:
    Optuna alone would store a FAIL without a reason that no study counts (an `n_trials: 2`
    study ran 69 trials until it was killed, each FINISHED in MLflow)."""
    import pandas as pd

    from tests.helpers import SENTIMENT, cli, write_study

    frame = pd.read_csv(
        SENTIMENT / "imdb_labelled.txt", sep="\t", header=None, names=["text", "label"], quoting=3
    )
    parts = {"train": frame.iloc[:600], "test": frame.iloc[800:]}
    parts["valid"] = frame.iloc[600:800].query("label == 1")  # one class: AUC undefined
    for split, rows in parts.items():
        rows.to_csv(tmp_path / f"imdb_{split}.csv", index=False)
    study = small_study("nan_objective", training={"epochs": 1}, search={"n_trials": 2})
    study["tasks"]["imdb"] = {
        "split": {s: f"imdb_{s}.csv" for s in parts},
        "inputs": "text",
        "target": "label",
        "type": "binary",
        "metric": "auc",
    }
    study["tasks"].pop("amazon")
    path = write_study(tmp_path, study)
    result = cli("run", str(path), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(
        study_name="nan_objective", storage=f"sqlite:///{tmp_path / '.sweeps' / 'optuna.db'}"
    ).trials
    assert len(trials) == 2  # the study ended: both trials count as finished
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.FAIL
        assert "the objective is not a number" in trial.user_attrs["reason"]
        assert "imdb" in trial.user_attrs["reason"]
    client = MlflowClient(f"sqlite:///{tmp_path / '.sweeps' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("nan_objective").experiment_id
    runs = client.search_runs([experiment], "tags.`mtl.kind` = 'trial'")
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FAILED" and run.data.tags["mtl.state"] == "FAIL"
        assert "the objective is not a number" in run.data.tags["mtl.error"]
        assert math.isnan(run.data.metrics["valid/delta_m"])  # what it measured stays on record


def _chained(outer: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as inner:
            raise outer from inner
    except Exception as exc:
        return exc


def test_a_trial_the_storage_failed_under_is_not_counted_and_says_what_failed():
    import optuna
    import sqlalchemy.exc

    from sweeps.tracking import TrackingUnavailable
    from sweeps.trial import described, store_failed

    dropped = sqlalchemy.exc.OperationalError(
        "COMMIT", {}, Exception("terminating connection due to administrator command")
    )
    commit = "An exception is raised during the commit. This typically happens due to invalid data"
    lost = _chained(optuna.exceptions.StorageInternalError(commit), dropped)
    assert store_failed(lost) and store_failed(TrackingUnavailable("gone"))
    assert "caused by OperationalError: (builtins.Exception) terminating connection" in described(
        lost
    )
    # a value the database refuses: the trial's own failure (not counted, it would repeat)
    too_long = sqlalchemy.exc.DataError("INSERT", {}, Exception("value too long for type"))
    assert not store_failed(_chained(optuna.exceptions.StorageInternalError(commit), too_long))
    # a user's trunk that cannot reach its weights: the trial's failure too
    assert not store_failed(ConnectionRefusedError("[Errno 111] Connection refused"))
    assert described(ValueError("bad")) == "ValueError: bad"
