"""STCH (smooth Tchebycheff scalarisation): its defining properties, then one real fit."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_core import TrainConfig, fit
from mtl_core.weighting import build_weighting
from tests.mtl_core.test_method_properties import _conflicting_tasks

TASKS = ["a", "b", "c"]


def _losses(values):
    return {t: torch.tensor(v, requires_grad=True) for t, v in zip(TASKS, values, strict=True)}


def _warmed(mu: float, nadir=(1.0, 1.0, 1.0)):
    stch = build_weighting("stch", TASKS, {}, {}, stch_mu=mu, stch_warmup=2)
    stch.end_epoch(1, dict(zip(TASKS, nadir, strict=True)), {})
    assert stch.nadir is None  # one warm-up epoch of two
    stch.end_epoch(2, dict(zip(TASKS, nadir, strict=True)), {})
    assert stch.nadir == dict(zip(TASKS, nadir, strict=True))
    return stch


def test_warm_up_minimises_the_sum_of_log_losses():
    stch = build_weighting("stch", TASKS, {}, {})
    losses = _losses([0.5, 2.0, 4.0])
    total = stch.combine(losses)
    assert float(total.detach()) == pytest.approx(math.log(0.5) + math.log(2.0) + math.log(4.0))
    total.backward()
    for t, v in zip(TASKS, [0.5, 2.0, 4.0], strict=True):
        assert float(losses[t].grad) == pytest.approx(1 / v)  # d log L / dL
    assert stch.weights() == {"a": 1.0, "b": 1.0, "c": 1.0}


def test_small_mu_is_the_worst_task_alone_and_large_mu_weighs_every_task_alike():
    ratios = [0.5, 2.0, 1.5]  # against a nadir of 1: b is the worst
    sharp = _warmed(0.01)
    sharp.combine(_losses(ratios))
    w = sharp.weights()
    assert w["b"] == pytest.approx(3.0, abs=1e-6) and w["a"] + w["c"] < 1e-6
    flat = _warmed(100.0)
    flat.combine(_losses(ratios))
    assert all(v == pytest.approx(1.0, abs=0.02) for v in flat.weights().values())
    for mu in (0.01, 0.3, 1.0, 100.0):
        s = _warmed(mu)
        s.combine(_losses(ratios))
        assert sum(s.weights().values()) == pytest.approx(3.0)


def test_the_gradient_is_the_logged_weight_on_each_log_loss_ratio():
    stch = _warmed(0.5, nadir=(0.2, 1.0, 3.0))
    values = [0.4, 0.9, 3.3]
    losses = _losses(values)
    total = stch.combine(losses)
    ratios = torch.tensor([math.log(v / z) for v, z in zip(values, (0.2, 1.0, 3.0), strict=True)])
    expected = 0.5 * 3 * torch.logsumexp(ratios / 0.5, dim=0)
    assert float(total.detach()) == pytest.approx(float(expected), rel=1e-6)
    total.backward()
    for t, v in zip(TASKS, values, strict=True):
        assert float(losses[t].grad) == pytest.approx(stch.weights()[t] / v, rel=1e-5)


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="stch_mu > 0"):
        build_weighting("stch", TASKS, {}, {}, stch_mu=0.0)
    with pytest.raises(ValueError, match="needs at least two tasks"):
        build_weighting("stch", ["a"], {}, {})
    with pytest.raises(ValueError, match="needs schedule `joint`, not `round_robin`"):
        fit(_conflicting_tasks(), TrainConfig(weighting="stch", schedule="round_robin"))


def test_a_joint_fit_takes_the_settings_and_logs_weights_that_sum_to_the_task_count():
    config = TrainConfig(
        weighting="stch", schedule="joint", epochs=3, stch_mu=0.2, stch_warmup=1, device="cpu"
    )
    result = fit(_conflicting_tasks(), config)
    first, *later = [log.weights for log in result.history]
    assert first == {"a": 1.0, "b": 1.0}  # warm-up
    for weights in later:
        assert sum(weights.values()) == pytest.approx(2.0)
        assert weights != {"a": 1.0, "b": 1.0}
