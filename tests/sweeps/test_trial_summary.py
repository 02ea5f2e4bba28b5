"""A trial's summary over seeds: means with their spread, and a metric that a split leaves
undefined (ROC AUC with one class present) recorded as NaN instead of failing the trial."""

from __future__ import annotations

import math

import pytest

from mtl_core.train import FitResult
from sweeps.baselines import Baseline
from sweeps.trial import _summarise


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
