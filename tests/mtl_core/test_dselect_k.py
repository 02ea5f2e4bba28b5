"""DSelect-k (Hazimeh et al. 2021): each task's gate is a smooth binary encoding that, once
its selectors leave the smooth-step's band, puts weight on at most ``k`` experts; at the start
it weighs every expert about alike; the experts are the shared parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_core import TrainConfig, fit
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.models import build_model
from mtl_core.models.dselect_k import smooth_step
from mtl_core.tasks import TaskSpec, TaskType

SPECS = [
    TaskSpec("a", TaskType.binary, "f1", ("0", "1")),
    TaskSpec("b", TaskType.regression, "mse"),
]


def _model(**settings):
    torch.manual_seed(0)
    return build_model("dselect_k", 4, SPECS, 8, 1, "relu", 0.0, **settings)


def test_smooth_step_is_binary_outside_its_band_and_smooth_at_its_edges():
    gamma = 2.0
    t = torch.tensor([-5.0, -1.0, 0.0, 1.0, 5.0], requires_grad=True)
    s = smooth_step(t, gamma)
    assert s.tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    (slope,) = torch.autograd.grad(s.sum(), t)
    assert slope[[0, 1, 3, 4]].abs().max() < 1e-6  # flat at the band's edges: C^1
    assert float(slope[2]) == pytest.approx(3 / (2 * gamma))


@pytest.mark.parametrize("experts", [4, 3, 8])
def test_the_gate_starts_near_uniform_and_its_rows_are_distributions(experts):
    model = _model(experts=experts, dselect_k=2)
    weights = model.gate_weights(torch.randn(16, 4), "a")
    assert weights.shape == (16, experts)
    assert torch.allclose(weights.sum(-1), torch.ones(16), atol=1e-6)
    assert (weights - 1 / experts).abs().max() < 0.05


def test_binary_selectors_put_weight_on_at_most_k_experts():
    """Selector logits outside the band encode expert 5 and expert 2 (k = 2 of 8): only those
    two carry weight, in the proportions of the mixture's softmax."""
    model = _model(experts=8, dselect_k=2, dselect_gamma=1.0)
    gate = model.gates["a"]
    codes = [5, 2]  # bits, least significant first: 5 = 1,0,1; 2 = 0,1,0
    with torch.no_grad():
        gate.selectors.weight.zero_()
        gate.selectors.bias.copy_(
            torch.tensor([1.0 if (c >> b) & 1 else -1.0 for c in codes for b in range(3)])
        )
        gate.mixture.weight.zero_()
        gate.mixture.bias.copy_(torch.tensor([0.3, -0.2]))
    weights = model.gate_weights(torch.randn(7, 4), "a")
    alpha = torch.softmax(torch.tensor([0.3, -0.2]), 0)
    expected = torch.zeros(8)
    expected[5], expected[2] = alpha
    assert torch.allclose(weights, expected.expand(7, 8), atol=1e-6)
    assert int((weights[0] > 0).sum()) == 2


def test_experts_are_the_shared_parameters_and_the_parts_partition_the_model():
    model = _model(experts=4)
    shared = {id(p) for p in model.shared_parameters()}
    own = {t.name: {id(p) for p in model.task_parameters(t.name)} for t in SPECS}
    assert shared == {id(p) for p in model.experts.parameters()}
    assert not shared & own["a"] and not shared & own["b"] and not own["a"] & own["b"]
    assert shared | own["a"] | own["b"] == {id(p) for p in model.parameters()}
    # inside the band the selectors learn: the gate is differentiable
    x = torch.randn(8, 4)
    model(x, "a").sum().backward()
    assert model.gates["a"].selectors.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("weighting", "gradients"),
    [("equal", "parameters"), ("pcgrad", "parameters"), ("mgda", "features")],
)
def test_dselect_k_trains_with_weightings_and_gradient_methods(weighting, gradients):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    tasks = tasks_from_arrays(
        x, {"a": ((x[:, 0] > 0).astype(int), "binary"), "b": (x[:, 1] * 2, "regression")}
    )
    config = TrainConfig(architecture="dselect_k", hidden_size=8, epochs=15, lr=0.02,
                         schedule="joint", weighting=weighting, gradients=gradients,
                         experts=4, dselect_k=2)  # fmt: skip
    result = fit(tasks, config)
    assert result.valid["a"]["accuracy"] > 0.85  # hard sharing: 0.98, mmoe 0.97 (equal)
    assert result.valid["b"]["mse"] < 0.2 * float(np.var(x[:, 1] * 2))
