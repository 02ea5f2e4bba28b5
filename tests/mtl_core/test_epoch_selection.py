"""Which epoch's model is scored: the best on validation by default (one rule for the model as
a whole), early stopping, and the old last-epoch behaviour on request."""

from __future__ import annotations

import math

import pytest

from mtl_core.train import EpochSelector, TrainConfig, fit
from tests.helpers import review_tasks

# a large learning rate on 300 sentences: validation peaks early, then the model overfits
OVERFIT = dict(hidden_size=64, epochs=8, batch_size=16, lr=0.05, device="cpu", seed=3)


@pytest.fixture(scope="module")
def tasks():
    return review_tasks(300, "f1")


def test_the_selector_scores_every_model_by_its_relative_change_in_percent():
    one = EpochSelector({"a": "mse"}, None)  # one task: against its own first epoch
    assert one.score({"a": {"mse": 2.0}}) == 0.0
    assert one.score({"a": {"mse": 1.5}}) == pytest.approx(25.0)  # lower error: +25%
    many = EpochSelector({"a": "f1", "b": "mse"}, {"a": 0.5, "b": 2.0})
    # Δa = +10%, Δb = +25% (mse 1.5 against 2.0): Δm = 17.5
    assert many.score({"a": {"f1": 0.55}, "b": {"mse": 1.5}}) == pytest.approx(17.5)
    first = EpochSelector({"a": "f1", "b": "f1"}, None)  # no reference: the first epoch's
    assert first.score({"a": {"f1": 0.4}, "b": {"f1": 0.8}}) == 0.0
    assert first.score({"a": {"f1": 0.44}, "b": {"f1": 0.8}}) == pytest.approx(5.0)


def test_the_selector_keeps_the_earlier_epoch_on_ties_and_counts_patience_past_min_delta():
    s = EpochSelector({"a": "f1"}, None, patience=2, min_delta=0.05)  # scores in %
    assert s.update(1, 0.50) and s.best_epoch == 1
    assert not s.update(2, 0.50)  # a tie keeps epoch 1
    assert s.update(3, 0.52)  # the best so far, but not by more than min_delta ...
    assert s.best_epoch == 3 and s.stale(3)  # ... so patience ran out at epoch 3
    s2 = EpochSelector({"a": "f1"}, None, patience=2)
    for epoch, score in ((1, 0.5), (2, 0.6), (3, 0.55)):
        s2.update(epoch, score)
    assert not s2.stale(3)  # one epoch since the improvement at epoch 2
    assert not s2.update(4, 0.58) and s2.stale(4)  # two: patience is out
    assert not s2.update(5, float("nan"))  # a NaN score never wins


def test_the_scored_model_is_the_best_validation_epoch_and_matches_a_shorter_run(tasks):
    result = fit(tasks, TrainConfig(schedule="joint", **OVERFIT))
    scores = [log.score for log in result.history]
    assert len(result.history) == 8 and all(math.isfinite(s) for s in scores)
    best = max(range(8), key=lambda e: (scores[e], -e)) + 1
    assert result.best_epoch == best
    assert best < 8, f"the fixture no longer overfits: scores {scores}"
    assert result.valid == result.history[best - 1].valid
    # the test metrics are those of the model as it was after epoch `best`: the same run cut
    # short there (same seed, same batches) gives the same test metrics
    short = fit(
        tasks, TrainConfig(schedule="joint", select="last_epoch", **{**OVERFIT, "epochs": best})
    )
    assert short.test == result.test
    assert short.history[-1].valid == result.valid


def test_last_epoch_keeps_the_old_behaviour(tasks):
    result = fit(tasks, TrainConfig(schedule="joint", select="last_epoch", **OVERFIT))
    assert result.best_epoch == len(result.history) == 8
    assert result.valid == result.history[-1].valid


def test_early_stopping_stops_patience_epochs_after_the_best(tasks):
    full = fit(tasks, TrainConfig(schedule="joint", **OVERFIT))
    stopped = fit(tasks, TrainConfig(schedule="joint", patience=2, **OVERFIT))
    assert stopped.stopped_early
    assert len(stopped.history) < 8
    assert stopped.best_epoch == full.best_epoch
    assert len(stopped.history) >= stopped.best_epoch + 2
    assert stopped.test == full.test  # the same scored model
    assert not full.stopped_early


def test_a_single_task_is_selected_by_its_own_metric(tasks):
    result = fit([tasks["imdb"]], TrainConfig(**OVERFIT))
    f1 = [log.valid["imdb"]["f1"] for log in result.history]
    assert result.valid["imdb"]["f1"] == max(f1)
    assert result.best_epoch == f1.index(max(f1)) + 1


def test_bad_selection_settings_are_refused(tasks):
    with pytest.raises(ValueError, match="select 'best'"):
        fit(tasks, TrainConfig(select="best", **OVERFIT))
    with pytest.raises(ValueError, match="patience >= 0"):
        fit(tasks, TrainConfig(patience=-1, **OVERFIT))
