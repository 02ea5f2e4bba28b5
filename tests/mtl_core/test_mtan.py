"""MTAN (Liu et al. 2019): one global network, each task reading it through soft-attention
masks of its own at every block. Checked: the attended features are the masks times the
global ones, masks lie in (0, 1), a task's output depends on its own attention only, the
global network is the shared part and the parts partition the model; it trains on the conv
trunk (digits) and on an MLP, with weightings and gradient methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from mtl_core import TrainConfig, fit
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.models import build_model
from mtl_core.tasks import TaskSpec, TaskType

SPECS = [
    TaskSpec("a", TaskType.binary, "f1", ("0", "1")),
    TaskSpec("b", TaskType.regression, "mse"),
]


@pytest.mark.parametrize(("shape", "trunk", "depth"), [((8, 8), "conv", 2), ((6,), "mlp", 3)])
def test_attended_features_are_masks_times_the_global_features(shape, trunk, depth):
    torch.manual_seed(0)
    model = build_model("mtan", shape, SPECS, 8, depth, "relu", 0.0, trunk=trunk)
    x = torch.randn(5, *shape)
    z = model.shared(x)
    levels = model._levels(z)
    assert len(levels) == depth + (trunk == "conv")  # conv blocks, then the dense layer
    for task in ("a", "b"):
        masks, attended = model.attend(task, z)
        for mask, out, c in zip(masks, attended, levels, strict=True):
            assert mask.shape == c.shape and bool(((mask > 0) & (mask < 1)).all())
            assert torch.allclose(out, mask * c)
    # the masks are the tasks' own: different tasks, different masks over the same features
    assert not torch.allclose(model.attend("a", z)[0][0], model.attend("b", z)[0][0])


def test_a_task_reads_only_its_own_attention_and_the_global_network_is_shared():
    torch.manual_seed(0)
    model = build_model("mtan", (8, 8), SPECS, 8, 2, "relu", 0.0, trunk="conv")
    shared = {id(p) for p in model.shared_parameters()}
    own = {t.name: {id(p) for p in model.task_parameters(t.name)} for t in SPECS}
    assert shared == {id(p) for p in model.blocks.parameters()}
    assert not shared & own["a"] and not shared & own["b"] and not own["a"] & own["b"]
    assert shared | own["a"] | own["b"] == {id(p) for p in model.parameters()}
    x = torch.randn(4, 8, 8)
    before = model(x, "a")
    with torch.no_grad():
        for p in [*model.attention["b"].parameters(), *model.bridges["b"].parameters()]:
            p.add_(1.0)
    assert torch.equal(before, model(x, "a"))
    with torch.no_grad():
        for p in model.attention["a"].parameters():
            p.add_(0.1)
    assert not torch.allclose(before, model(x, "a"))


def test_mtan_on_the_conv_trunk_learns_digits_and_odd_even():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    tasks = tasks_from_arrays(
        x, {"digit": (digits.target, "multiclass"), "odd": (digits.target % 2, "binary")}
    )
    config = TrainConfig(architecture="mtan", trunk="conv", hidden_size=64, depth=2,
                         activation="relu", epochs=6, lr=0.003, schedule="joint")  # fmt: skip
    result = fit(tasks, config)
    assert result.test["digit"]["accuracy"] > 0.85 and result.test["odd"]["accuracy"] > 0.85


@pytest.mark.parametrize(
    ("weighting", "gradients"),
    [("pcgrad", "parameters"), ("mgda", "features"), ("gradnorm", "parameters")],
)
def test_mtan_trains_with_gradient_methods_on_an_mlp(weighting, gradients):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    tasks = tasks_from_arrays(
        x, {"a": ((x[:, 0] > 0).astype(int), "binary"), "b": (x[:, 1] * 2, "regression")}
    )
    config = TrainConfig(architecture="mtan", hidden_size=8, depth=2, epochs=8, lr=0.02,
                         activation="relu", schedule="joint", weighting=weighting,
                         gradients=gradients)  # fmt: skip
    result = fit(tasks, config)
    assert set(result.test) == {"a", "b"}
    assert all(np.isfinite(v) for log in result.history for v in log.train_loss.values())
    assert result.valid["a"]["accuracy"] > 0.75  # it learns (equal weighting: 0.97)
