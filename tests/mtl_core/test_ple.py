"""CGC and PLE (Tang et al. 2020): shared and task-specific experts mixed by per-task gates.
What the paper's structure implies, checked on the model: a task never reads another task's
experts of the last level; before the last level they reach every task through the shared
gate, so they are shared parameters; the shared and task parts partition the parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_core import TrainConfig, fit
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.models import build_model
from mtl_core.tasks import TaskSpec, TaskType

SPECS = [
    TaskSpec("a", TaskType.binary, "f1", ("0", "1")),
    TaskSpec("b", TaskType.regression, "mse"),
]


def _model(architecture: str, **settings):
    torch.manual_seed(0)
    return build_model(architecture, 4, SPECS, 8, 1, "relu", 0.0, **settings)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_shared_and_task_parameters_partition_the_model(levels):
    model = _model("ple", ple_levels=levels, shared_experts=2, task_experts=2)
    shared = {id(p) for p in model.shared_parameters()}
    own = {t.name: {id(p) for p in model.task_parameters(t.name)} for t in SPECS}
    assert not shared & own["a"] and not shared & own["b"] and not own["a"] & own["b"]
    assert shared | own["a"] | own["b"] == {id(p) for p in model.parameters()}
    gate = model.gate_weights(torch.randn(5, 4), "a")
    assert gate.shape == (5, 4) and torch.allclose(gate.sum(-1), torch.ones(5))  # 2 own + 2


def _outputs_after(model, change) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    before = model(x, "a")
    with torch.no_grad():
        for p in change:
            p.add_(1.0)
    return before, model(x, "a")


def test_a_task_never_reads_another_tasks_last_level_experts():
    cgc = _model("cgc")
    before, after = _outputs_after(cgc, cgc.task_experts[-1]["b"].parameters())
    assert torch.equal(before, after)
    ple = _model("ple", ple_levels=2)
    before, after = _outputs_after(ple, ple.task_experts[-1]["b"].parameters())
    assert torch.equal(before, after)
    # before the last level, b's experts reach a through the shared gate: they are shared
    first = list(ple.task_experts[0]["b"].parameters())
    assert {id(p) for p in first} <= {id(p) for p in ple.shared_parameters()}
    before, after = _outputs_after(ple, first)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize(
    ("architecture", "weighting", "gradients"),
    [("cgc", "equal", "parameters"), ("ple", "pcgrad", "parameters"),
     ("ple", "mgda", "features"), ("cgc", "gradnorm", "parameters")],
)  # fmt: skip
def test_cgc_and_ple_train_with_weightings_and_gradient_methods(architecture, weighting, gradients):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype(np.float32)
    tasks = tasks_from_arrays(
        x, {"a": ((x[:, 0] > 0).astype(int), "binary"), "b": (x[:, 1] * 2, "regression")}
    )
    config = TrainConfig(architecture=architecture, hidden_size=8, epochs=2, schedule="joint",
                         weighting=weighting, gradients=gradients)  # fmt: skip
    result = fit(tasks, config)
    assert set(result.test) == {"a", "b"}
    assert all(np.isfinite(v) for log in result.history for v in log.train_loss.values())
