"""Nash-MTL's solver failures are counted and said, not hidden: torchjd keeps the previous
weights when its cvxpy solve fails; the watch counts those steps per epoch and warns once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mtl_core.solver_watch as solver_watch
from mtl_core import TrainConfig, fit
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.gradients import GradientMethod, build_aggregator
from mtl_core.solver_watch import SolverWatch


def test_a_failed_solve_keeps_the_old_weights_and_is_counted(monkeypatch):
    monkeypatch.setattr(solver_watch, "_WARNED", False)
    aggregator = build_aggregator("nash_mtl", 2)
    watch = SolverWatch(aggregator)
    good = torch.tensor([[1.0, 0.2], [0.1, 2.0]])
    aggregator.weighting(good)  # one step: the weights of this Jacobian
    before = aggregator.weighting.prvs_alpha.copy()
    assert watch.epoch_metrics() == {"nash_mtl/solver_failures": 0.0, "nash_mtl/steps": 1.0}
    # a task with a zero gradient: the log barrier has no finite optimum, ECOS fails
    with pytest.warns(RuntimeWarning, match="Nash-MTL's solver failed on a step"):
        kept = aggregator.weighting(torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    # the failed step kept the previous weights (then rescaled to the step's max_norm)
    assert np.array_equal(aggregator.weighting.prvs_alpha, before)
    assert torch.isfinite(kept).all()
    assert watch.epoch_metrics() == {"nash_mtl/solver_failures": 1.0, "nash_mtl/steps": 1.0}
    assert watch.total_failures == 1 and watch.last_note
    assert watch.epoch_metrics()["nash_mtl/steps"] == 0.0  # counters are per epoch


def test_every_epoch_of_a_nash_mtl_fit_logs_its_steps():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    tasks = tasks_from_arrays(
        x, {"a": ((x[:, 0] > 0).astype(int), "binary"), "b": (x[:, 1] * 2, "regression")}
    )
    config = TrainConfig(
        hidden_size=8, epochs=2, batch_size=50, weighting="nash_mtl", schedule="joint", seed=0
    )
    result = fit(list(tasks.values()), config)
    for log in result.history:
        assert set(log.method) == {"nash_mtl/solver_failures", "nash_mtl/steps"}
        assert log.method["nash_mtl/steps"] >= 3  # one solve per step (150 rows / 50)
        assert 0 <= log.method["nash_mtl/solver_failures"] <= log.method["nash_mtl/steps"]
    assert GradientMethod("upgrad", ["a", "b"]).epoch_metrics() == {}  # no solver to watch
