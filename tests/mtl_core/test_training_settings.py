"""The training settings people reach for: a learning-rate schedule with warm-up, gradient
clipping and balanced class weights, each doing what it says inside `fit`."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from mtl_core import TrainConfig, fit
from mtl_core.data.arrays import tasks_from_arrays
from mtl_core.lr_schedule import lr_factor
from mtl_core.models import build_model
from mtl_core.models.sparse_input import input_batch
from mtl_core.tasks import loss
from mtl_core.train import class_weights


def _tasks(rows: int = 200, positive: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    a = (x[:, 0] > np.quantile(x[:, 0], 1 - positive)).astype(int)
    return tasks_from_arrays(x, {"a": (a, "binary"), "b": (x[:, 1] * 2, "regression")}, seed=seed)


def test_the_schedules_factors():
    cfg = TrainConfig(lr_schedule="cosine", lr_warmup_epochs=2)
    factors = [lr_factor(cfg, e, 6) for e in range(6)]
    assert factors[:2] == [1 / 3, 2 / 3]  # warm-up: (e + 1) / (w + 1)
    assert factors[2] == 1.0 and factors[3:] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * k / 4)) for k in (1, 2, 3)]
    )
    step = TrainConfig(lr_schedule="step", lr_step_every=2, lr_gamma=0.5)
    assert [lr_factor(step, e, 6) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert [lr_factor(TrainConfig(), e, 3) for e in range(3)] == [1, 1, 1]


def test_fit_trains_each_epoch_at_the_scheduled_rate():
    config = TrainConfig(hidden_size=4, epochs=4, lr=0.01, lr_schedule="step", lr_step_every=1,
                         lr_gamma=0.5, lr_warmup_epochs=1, schedule="joint")  # fmt: skip
    result = fit(list(_tasks().values()), config)
    assert [log.lr for log in result.history] == pytest.approx([0.005, 0.01, 0.005, 0.0025])
    flat = fit(list(_tasks().values()), dataclasses.replace(config, lr_schedule="constant",
                                                            lr_warmup_epochs=0))  # fmt: skip
    assert {log.lr for log in flat.history} == {0.01}


def test_grad_clip_bounds_the_update():
    """SGD's first step moves the parameters by lr x the gradient: clipped to a norm of 1e-3
    at lr 1, no parameter vector moves further than 1e-3."""
    tasks = _tasks()
    config = TrainConfig(hidden_size=4, epochs=1, batch_size=1000, optimizer="sgd", lr=1.0,
                         grad_clip=1e-3, schedule="joint", select="last_epoch")  # fmt: skip
    torch.manual_seed(config.seed)
    start = build_model(config.architecture, (4,), [t.spec for t in tasks.values()],
                        config.hidden_size, config.depth, config.activation, config.dropout,
                        trunk=config.trunk, **config.method_settings())  # fmt: skip
    moved = fit(list(tasks.values()), config).model
    delta = torch.sqrt(sum(((p - q.to(p)) ** 2).sum() for p, q in
                           zip(moved.parameters(), start.parameters(), strict=True)))  # fmt: skip
    assert 0 < float(delta) <= 1e-3 * 1.0001
    free = fit(list(tasks.values()), dataclasses.replace(config, grad_clip=0.0)).model
    assert float(torch.sqrt(sum(((p - q.to(p)) ** 2).sum() for p, q in
                                zip(free.parameters(), start.parameters(), strict=True)))) > 1e-2  # fmt: skip


def test_balanced_class_weights_are_scikit_learns_and_lift_the_rare_class():
    tasks = _tasks(rows=400, positive=0.1)
    weights = class_weights(TrainConfig(class_weights="balanced"), list(tasks.values()), "cpu")
    y = tasks["a"].y["train"]
    assert weights["a"].tolist() == pytest.approx(
        [len(y) / (2 * (y == 0).sum()), len(y) / (2 * (y == 1).sum())]
    )
    assert "b" not in weights  # regression: no classes
    assert class_weights(TrainConfig(), list(tasks.values()), "cpu") == {}
    # the weighted loss: each row weighs its class's weight (a weighted mean)
    logits, target = torch.tensor([[0.3], [-1.0], [2.0]]), torch.tensor([1.0, 0.0, 0.0])
    each = torch.nn.functional.binary_cross_entropy_with_logits(
        logits.squeeze(-1), target, reduction="none"
    )
    w = torch.tensor([1.0, 9.0])
    rows = torch.tensor([9.0, 1.0, 1.0])
    assert float(loss(tasks["a"].spec, logits, target, w)) == pytest.approx(
        float((rows * each).sum() / rows.sum())
    )
    # a short fit on a 10% positive task: weighted, the best constant guess is 1/2, not 1/10,
    # so the mean predicted probability of the rare class moves up towards 1/2
    base = TrainConfig(hidden_size=8, epochs=2, lr=0.01, schedule="joint", select="last_epoch")

    def mean_positive(config) -> float:
        model = fit(list(tasks.values()), config).model
        with torch.no_grad():
            return float(torch.sigmoid(model(input_batch(tasks["a"].x["test"]), "a")).mean())

    plain = mean_positive(base)
    balanced = mean_positive(dataclasses.replace(base, class_weights="balanced"))
    assert balanced > plain + 0.05 and 0.4 < balanced < 0.6
