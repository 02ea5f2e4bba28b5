"""The hard-sharing network and the Δ measures of transfer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from mtl_core.models import build_model
from mtl_core.models.sparse_input import SparseLinear, sparse_batch
from mtl_core.tasks import TaskSpec, TaskType
from mtl_core.transfer import delta, delta_m, deltas

SPECS = [
    TaskSpec("pos", TaskType.binary, "f1", ("no", "yes")),
    TaskSpec("topic", TaskType.multiclass, "accuracy", ("a", "b", "c")),
    TaskSpec("price", TaskType.regression, "rmse"),
]


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "gelu"])
def test_hard_sharing_has_one_trunk_and_a_head_per_task(activation):
    model = build_model(
        "hard_sharing", 20, SPECS, hidden_size=16, depth=3, activation=activation, dropout=0.2
    )
    linears = [m for m in model.trunk if isinstance(m, nn.Linear | SparseLinear)]
    assert isinstance(linears[0], SparseLinear)  # the first layer reads CSR rows
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 16), (16, 16), (16, 16)]
    assert sum(isinstance(m, nn.Dropout) for m in model.trunk) == 3
    x = torch.randn(5, 20)
    assert model(x, "pos").shape == (5, 1)
    assert model(x, "topic").shape == (5, 3)
    assert model(x, "price").shape == (5, 1)
    shared = {id(p) for p in model.shared_parameters()}
    head = {id(p) for p in model.task_parameters("topic")}
    assert shared and head and not shared & head
    assert shared | head | {id(p) for t in ("pos", "price") for p in model.task_parameters(t)} == {
        id(p) for p in model.parameters()
    }


def test_bad_model_settings_name_the_choices():
    with pytest.raises(ValueError, match="activation 'swish'.*sigmoid, relu, tanh, gelu"):
        build_model("hard_sharing", 4, SPECS, 8, 1, "swish", 0.0)
    with pytest.raises(ValueError, match="architecture .tree_sharing..*hard_sharing"):
        build_model("tree_sharing", 4, SPECS, 8, 1, "relu", 0.0)
    with pytest.raises(ValueError, match="at least 1"):
        build_model("hard_sharing", 4, SPECS, 8, 0, "relu", 0.0)


def test_delta_is_positive_when_better_for_both_kinds_of_metric():
    assert delta(0.88, 0.80, "accuracy") == pytest.approx(10.0)
    assert delta(0.72, 0.80, "f1") == pytest.approx(-10.0)
    assert delta(0.9, 1.0, "mse") == pytest.approx(10.0)  # lower error is positive transfer
    assert delta(1.2, 1.0, "rmse") == pytest.approx(-20.0)
    assert delta(0.1, 0.0, "f1") == pytest.approx(10.0)  # zero baseline: absolute points
    assert delta(-0.5, -1.0, "r2") == pytest.approx(50.0)  # negative baseline: |B| keeps the sign


def test_delta_m_averages_the_tasks():
    per_task = deltas({"a": 0.9, "b": 2.0}, {"a": 0.8, "b": 1.6}, {"a": "accuracy", "b": "mae"})
    assert per_task == pytest.approx({"a": 12.5, "b": -25.0})
    assert delta_m(per_task) == pytest.approx(-6.25)


def test_sparse_first_layer_equals_a_dense_linear_layer():
    rng = np.random.default_rng(0)
    dense = rng.random((6, 40)) * (rng.random((6, 40)) < 0.1)  # mostly zeros, one row empty
    dense[3] = 0.0
    matrix = sp.csr_matrix(dense.astype(np.float32))
    layer = SparseLinear(40, 5)
    x = torch.tensor(dense, dtype=torch.float32, requires_grad=False)
    rows = np.array([4, 0, 3, 1])
    out = layer(sparse_batch(matrix, rows))
    expected = x[rows] @ layer.weight + layer.bias
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(layer(x[rows]), expected, atol=1e-6)  # dense input works too
    assert torch.allclose(out[2], layer.bias)  # an empty row gives the bias
    out.sum().backward()
    grad_sparse = layer.weight.grad.clone()
    layer.zero_grad()
    (x[rows] @ layer.weight + layer.bias).sum().backward()
    assert torch.allclose(grad_sparse, layer.weight.grad, atol=1e-6)
    bound = 1 / np.sqrt(40)  # nn.Linear's initialisation
    assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound


@pytest.mark.parametrize("architecture", ["hard_sharing", "mmoe", "cross_stitch", "soft_sharing"])
def test_task_towers_give_each_head_its_own_layers(architecture):
    """model.head_layers / head_hidden: each head is a tower of its own (task parameters),
    under every architecture; the shared part is unchanged, and the single-task baseline has
    the same tower."""
    from mtl_core.config import TrainConfig, single_task_config

    plain = build_model(architecture, 4, SPECS, 8, 1, "relu", 0.0)
    towers = build_model(architecture, 4, SPECS, 8, 1, "relu", 0.0, head_layers=2, head_hidden=5)
    for spec in SPECS:
        head = towers.heads[spec.name]
        linear = [m for m in head.modules() if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linear] == [
            (8, 5),
            (5, 5),
            (5, spec.head_size),
        ]
        assert sum(1 for m in head.modules() if isinstance(m, nn.ReLU)) == 2
        assert {id(p) for p in head.parameters()} <= {
            id(p) for p in towers.task_parameters(spec.name)
        }
        out = towers(torch.zeros(3, 4), spec.name)
        assert out.shape == (3, spec.head_size)
    shared = sum(p.numel() for p in plain.shared_parameters())
    assert sum(p.numel() for p in towers.shared_parameters()) == shared
    wide = build_model(architecture, 4, SPECS, 8, 1, "relu", 0.0, head_layers=1)
    assert wide.heads[SPECS[0].name][0].out_features == 8  # head_hidden 0: hidden_size
    assert single_task_config(TrainConfig(head_layers=2, head_hidden=5)).head_layers == 2
