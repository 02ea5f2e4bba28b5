"""MoCo: tracked task gradients, weights stepped on their Gramian, the update ``Y^T lambda``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_core import TrainConfig, fit
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.moco import MoCo, MoCoAggregator
from mtl_core.train import _strategy


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def test_one_step_is_the_papers_update_by_hand():
    """Step 1 from ``y = 0``, ``lambda = 1/T``: ``y = beta g`` with ``g_t`` at the length of
    its loss, ``lambda = softmax(1/T - gamma (Y Y^T + rho I) / T)``, update ``Y^T lambda``."""
    jacobian = torch.tensor([[3.0, 4.0, 0.0], [0.0, -1.0, 1.0]], dtype=torch.float64)
    losses = torch.tensor([2.0, 0.5], dtype=torch.float64)
    aggregator = MoCoAggregator(beta=0.5, gamma=0.3, rho=0.2)
    aggregator.losses = losses
    update = aggregator(jacobian)

    j, ls = jacobian.numpy(), losses.numpy()
    g = j / np.linalg.norm(j, axis=1, keepdims=True) * ls[:, None]
    y = 0.5 * g
    lambd = _softmax(np.full(2, 0.5) - 0.3 * (y @ y.T + 0.2 * np.eye(2)) @ np.full(2, 0.5))
    assert np.allclose(aggregator.y.numpy(), y)
    assert np.allclose(aggregator.lambd.numpy(), lambd)
    assert np.allclose(update.numpy(), y.T @ lambd)


def test_tracking_averages_the_noise_out_of_the_task_gradients():
    """What MoCo is for: with noisy gradients around a mean, the tracked ``y`` ends near the
    mean, far nearer than any one step's gradient."""
    rng = np.random.default_rng(0)
    mean = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])
    aggregator = MoCoAggregator(beta=0.9, beta_sigma=0.5)  # no losses: gradients as they are
    deviations = []
    for _ in range(2000):
        step = mean + rng.normal(scale=1.0, size=mean.shape)
        deviations.append(np.linalg.norm(step - mean))
        aggregator(torch.tensor(step))
    tracked = np.linalg.norm(aggregator.y.numpy() - mean)
    assert tracked < 0.15 * np.mean(deviations), (tracked, np.mean(deviations))


def test_weight_moves_to_the_task_with_the_smaller_tracked_gradient():
    """MGDA-like: the Gramian step lowers the weight of the task whose tracked gradient is
    longer (a long gradient dominates the min-norm combination)."""
    aggregator = MoCoAggregator(beta=1.0, gamma=0.5, gamma_sigma=0.0)
    aggregator.losses = torch.tensor([4.0, 0.25])  # task a's gradient is 16 times as long
    for _ in range(50):
        aggregator(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    a, b = aggregator.lambd.tolist()
    assert b > 0.8 > 0.2 > a and a + b == pytest.approx(1.0)


def test_a_joint_fit_takes_the_settings_and_logs_weights_on_the_simplex():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype(np.float32)
    a = (x @ rng.normal(size=6) > 0).astype(int)
    b = (x @ rng.normal(size=6) > 0).astype(int)
    tasks = tasks_from_arrays(x, {"a": (a, "binary"), "b": (b, "binary")}, seed=0)
    config = TrainConfig(
        weighting="moco",
        schedule="joint",
        epochs=8,
        lr=0.02,
        moco_gamma=0.05,
        moco_rho=0.1,
        device="cpu",
    )
    method = _strategy(config, list(tasks), {}, config.method_settings())
    assert isinstance(method, MoCo)
    assert (method.aggregator.gamma, method.aggregator.rho) == (0.05, 0.1)
    result = fit(tasks, config)
    for log in result.history:
        assert sum(log.weights.values()) == pytest.approx(1.0)
        assert all(0 < w < 1 for w in log.weights.values())
    assert min(result.valid[t]["accuracy"] for t in tasks) > 0.75  # both tasks learnt
    with pytest.raises(ValueError, match="needs schedule `joint`"):
        fit(tasks, TrainConfig(weighting="moco", schedule="round_robin"))
