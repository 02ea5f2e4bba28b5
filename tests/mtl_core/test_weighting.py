"""Loss weightings combine per-task losses; validation of their settings needs no torch."""

from __future__ import annotations

import pytest
import torch

from mtl_core.weighting import build_weighting, weighting_problems

TASKS = ["a", "b"]
SIZES = {"a": 100, "b": 300}


def test_equal_sums_losses():
    w = build_weighting("equal", TASKS, SIZES, {})
    assert w.weights() == {"a": 1.0, "b": 1.0}
    total = w.combine({"a": torch.tensor(2.0), "b": torch.tensor(3.0)})
    assert total.item() == pytest.approx(5.0)


def test_static_uses_the_given_weights_and_needs_one_per_task():
    w = build_weighting("static", TASKS, SIZES, {"a": 0.25, "b": 2.0})
    assert w.combine({"a": torch.tensor(4.0), "b": torch.tensor(1.0)}).item() == pytest.approx(3.0)
    assert weighting_problems("static", TASKS, {"a": 1.0}) == [
        "`static` weighting needs a weight for every task; none given for b"
    ]
    with pytest.raises(ValueError, match="none given for b"):
        build_weighting("static", TASKS, SIZES, {"a": 1.0})


def test_inverse_size_favours_the_smaller_task_and_averages_one():
    w = build_weighting("inverse_size", TASKS, SIZES, {}).weights()
    assert w["a"] == pytest.approx(3 * w["b"])
    assert sum(w.values()) / len(w) == pytest.approx(1.0)
    same = build_weighting("inverse_size", TASKS, {"a": 50, "b": 50}, {}).weights()
    assert same == {"a": 1.0, "b": 1.0}


def test_unknown_weighting_is_a_problem_not_a_crash():
    assert (
        "use one of equal, static, inverse_size" in weighting_problems("softmax_all", TASKS, {})[0]
    )


def test_combined_loss_carries_gradients():
    x = torch.tensor(1.0, requires_grad=True)
    w = build_weighting("static", TASKS, SIZES, {"a": 2.0, "b": 0.5})
    w.combine({"a": x * 3, "b": x * 4}).backward()
    assert x.grad.item() == pytest.approx(2.0 * 3 + 0.5 * 4)
